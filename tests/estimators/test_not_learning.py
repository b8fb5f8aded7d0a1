"""NotLearningCheck: a fit that ends no better than chance says so, and why."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier
from skqcnn.exceptions import NotLearningWarning

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAMILIES = {
    "qcnn": lambda **kw: QCNNClassifier(channels=2, batch_size=16, random_state=0, **kw),
    "rac": lambda **kw: DeepRACClassifier(hidden_size=4, batch_size=16, random_state=0, **kw),
    "convac": lambda **kw: OverlappingConvACClassifier(channels=2, batch_size=16, random_state=0,
                                                       **kw),
}


@pytest.fixture(scope="module")
def two_digits():
    X, y = load_digits(n_class=2, return_X_y=True)
    return X[:120], y[:120]


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_learning_rate_warns_with_the_fix(family, two_digits):
    X, y = two_digits
    with pytest.warns(NotLearningWarning) as record:
        clf = FAMILIES[family](lr=1e-9, max_epochs=1).fit(X, y)
    message = str(record[0].message)
    assert message.startswith("Training ended without learning: the training")
    assert "train longer (max_epochs=1) or with a larger learning rate (lr=1e-09)" in message
    assert "dtype=np.float64" in message
    # The fit is kept.
    assert clf.predict(X).shape == y.shape


# The ConvAC's loss turns non-finite at such rates, which FiniteLossGuard reports.
@pytest.mark.parametrize("family", ["qcnn", "rac"])
def test_diverged_fit_is_told_to_lower_the_learning_rate(family, two_digits):
    X, y = two_digits
    with pytest.warns(NotLearningWarning) as record:
        # Steps this large throw the loss far above where it starts, then it
        # falls: it was advised a larger rate still.
        FAMILIES[family](lr=1e3, max_epochs=2).fit(X, y)
    message = str(record[0].message)
    assert "lower the learning rate (lr=1000.0): the training loss reached" in message
    assert "larger learning rate" not in message


def test_judges_the_final_model_not_the_epoch_average():
    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotLearningWarning)
        # The one epoch's average loss, over weights from random to trained,
        # is above that of all-zero scores; the trained model's is far below.
        clf = QCNNClassifier(max_epochs=1, random_state=0).fit(X[:600], y[:600])
    assert clf.history_[-1, "train_loss"] > 1 and clf.score(X[:600], y[:600]) > 0.7


def test_constant_inputs_warn_at_chance_and_float64_is_not_suggested_twice():
    X = np.ones((40, 4))
    y = np.r_[np.zeros(30), np.ones(10)]
    with pytest.warns(NotLearningWarning, match=r"no better than always predicting the "
                                                r"most frequent class \(0\.750\)") as record:
        FAMILIES["qcnn"](max_epochs=2, dtype=np.float64).fit(X, y)
    assert "float64" not in str(record[0].message)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_fit_that_learns_does_not_warn(family, two_digits):
    X, y = two_digits
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotLearningWarning)
        # 8 steps an epoch: the ConvAC's products need more of them (0.825 after 5 epochs).
        clf = FAMILIES[family](max_epochs=10 if family == "convac" else 5).fit(X, y)
    assert clf.score(X, y) > 0.9


@pytest.mark.parametrize("family", FAMILIES)
def test_check_scores_rows_that_are_not_finite_in_the_training_dtype_again_in_float64(
        family, two_digits, monkeypatch):
    import skqcnn._base as base

    X, y = two_digits
    clf = FAMILIES[family](max_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotLearningWarning)
        clf.fit(X, y)
    float64 = clf._validated_scores(X)
    evaluate, judged = base._eval_scores, []

    def float32_overflows_on_row_3(module, batches, device, dtype=base.torch.float64):
        scores = evaluate(module, batches, device, dtype)
        if dtype == base.torch.float32:
            # Every float32 score is rounded from the float64 one.
            assert np.allclose(scores, evaluate(module, batches, device), rtol=1e-4, atol=1e-5)
            scores[3] = np.inf
        return scores

    monkeypatch.setattr(base, "_eval_scores", float32_overflows_on_row_3)
    monkeypatch.setattr(base, "warn_if_not_learning",
                        lambda net, scores, y_encoded, stacklevel: judged.append(scores))
    clf._check_trained_scores(X, np.searchsorted(clf.classes_, y))
    scores = judged[0]
    assert np.isfinite(scores).all()
    # Row 3 again in float64 (whose last digits depend on the batch), the
    # others as float32 rounded them.
    np.testing.assert_allclose(scores[3], float64[3], rtol=1e-12)
    assert not np.array_equal(np.delete(scores, 3, axis=0), np.delete(float64, 3, axis=0))
