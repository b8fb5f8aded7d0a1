"""QCNNClassifier: predictions, sklearn integration, devices and bad input."""

import pickle
import re
from unittest import mock

import joblib
import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skqcnn import QCNNClassifier

FAST = dict(max_epochs=3, random_state=0)


def test_digits_accuracy_floor(digits_split):
    """A guard well below the benchmark target (see benchmarks/bench_qcnn.py)."""
    X_train, X_test, y_train, y_test = digits_split
    clf = QCNNClassifier(max_epochs=12, random_state=0).fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.90


def test_predict_is_argmax_abs_score_and_proba_is_born_rule(fitted_qcnn, small_digits):
    X, _ = small_digits
    scores = fitted_qcnn.amplitudes(X)
    assert scores.shape == (len(X), 4)
    np.testing.assert_array_equal(
        fitted_qcnn.predict(X), fitted_qcnn.classes_[np.abs(scores).argmax(axis=1)]
    )
    np.testing.assert_allclose(fitted_qcnn.decision_function(X), np.log(np.abs(scores)),
                               rtol=1e-12)
    proba = fitted_qcnn.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(proba, scores**2 / (scores**2).sum(axis=1, keepdims=True))


def test_binary_decision_function_is_half_log_odds(small_digits):
    X, y = small_digits
    keep = y < 2
    clf = QCNNClassifier(**FAST).fit(X[keep], y[keep])
    decision = clf.decision_function(X[keep])
    proba = clf.predict_proba(X[keep])
    assert decision.shape == (keep.sum(),)
    np.testing.assert_allclose(decision, 0.5 * np.log(proba[:, 1] / proba[:, 0]), atol=1e-6)
    np.testing.assert_array_equal(clf.predict(X[keep]), clf.classes_[(decision > 0).astype(int)])


def test_string_labels_and_fitted_attributes(small_digits):
    X, y = small_digits
    labels = np.array(["zero", "one", "two", "three"])[y]
    clf = QCNNClassifier(channels=("constant", 3), **FAST).fit(X, labels)
    assert set(clf.predict(X)) <= set(labels)
    assert clf.n_features_in_ == 64 and clf.image_shape_ == (8, 8)
    assert clf.channels_ == (3,) * 6 and clf.local_dim_ == 3
    assert clf.input_min_ == 0.0 and clf.input_max_ == 16.0
    assert clf.device_ == "cpu"
    assert len(clf.history_) == 3 and np.isfinite(clf.history_[:, "train_loss"]).all()


def test_random_state_makes_training_deterministic(small_digits):
    X, y = small_digits
    a = QCNNClassifier(**FAST).fit(X, y).decision_function(X)
    b = QCNNClassifier(**FAST).fit(X, y).decision_function(X)
    np.testing.assert_array_equal(a, b)
    c = QCNNClassifier(max_epochs=3, random_state=1).fit(X, y).decision_function(X)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd"])
def test_optimizer_is_fused_on_cpu_and_foreach_elsewhere(small_digits, optimizer):
    X, y = small_digits
    clf = QCNNClassifier(optimizer=optimizer, **FAST).fit(X, y)
    defaults = clf.net_.optimizer_.defaults
    assert defaults["fused"] is True and not defaults["foreach"]
    assert np.isfinite(clf.history_[:, "train_loss"]).all()
    with mock.patch("skqcnn._base.FUSED_OPTIMIZER_DEVICES", ()):
        defaults = QCNNClassifier(optimizer=optimizer, **FAST).fit(X, y).net_.optimizer_.defaults
    assert defaults["foreach"] is True and not defaults["fused"]


def test_training_batches_run_in_training_mode_after_a_callback_switches_a_submodule(
        small_digits):
    # The net sets a module's mode only when some submodule is in the other
    # one: a callback that puts one BatchNorm into eval mode after every
    # batch must not leave it there for the next training batch. skorch
    # calls on_grad_computed after the batch's forward and backward passes.
    from skorch.callbacks import Callback

    from skqcnn.nn import ConstantChannelBatchNorm

    class EvalOneNorm(Callback):
        def on_batch_end(self, net, **kwargs):
            next(m for m in net.module_.modules()
                 if isinstance(m, ConstantChannelBatchNorm)).eval()

    modes = []

    class RecordModes(Callback):
        def on_grad_computed(self, net, named_parameters, **kwargs):
            modes.append([m.training for m in net.module_.modules()])

    X, y = small_digits
    QCNNClassifier(callbacks=[EvalOneNorm(), RecordModes()], **FAST).fit(X, y)
    assert len(modes) > 3 and all(all(batch) for batch in modes)


def test_fit_leaves_global_torch_rng_alone(small_digits):
    X, y = small_digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    QCNNClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_inputs_outside_training_range_are_clipped(fitted_qcnn, small_digits):
    X, _ = small_digits
    far = X[:5].copy()
    far[far == 16] = 1000.0
    far[far == 0] = -50.0
    clipped = np.clip(far, 0, 16)
    np.testing.assert_allclose(
        fitted_qcnn.decision_function(far), fitted_qcnn.decision_function(clipped)
    )


def test_symmetric_pooling_is_invariant_under_swapping_pair_members(small_digits):
    X, y = small_digits
    clf = QCNNClassifier(symmetric_pooling=True, **FAST).fit(X, y)
    leaves = clf.leaf_features_
    swapped = X.copy()
    # Swap the two pixels of every bottom-level pooling pair.
    swapped[:, leaves[0::2]], swapped[:, leaves[1::2]] = X[:, leaves[1::2]], X[:, leaves[0::2]]
    np.testing.assert_allclose(clf.decision_function(swapped), clf.decision_function(X), rtol=1e-5)
    default = QCNNClassifier(**FAST).fit(X, y)
    assert not np.allclose(default.decision_function(swapped), default.decision_function(X))


@pytest.mark.parametrize("image_shape", [(64,), (4, 16), (16, 4)])
def test_other_image_shapes(small_digits, image_shape):
    X, y = small_digits
    clf = QCNNClassifier(image_shape=image_shape, max_epochs=10, random_state=0).fit(X, y)
    assert clf.image_shape_ == image_shape
    assert clf.score(X, y) > 0.6


def test_padding_to_power_of_two(small_digits):
    X, y = small_digits
    X = X[:, :48]  # a 6x8 image: rows padded to 8
    clf = QCNNClassifier(image_shape=(6, 8), max_epochs=10, random_state=0).fit(X, y)
    assert (clf.leaf_features_ == -1).sum() == 16
    assert clf.score(X, y) > 0.6


def test_legendre_and_cross_entropy(small_digits):
    X, y = small_digits
    clf = QCNNClassifier(representation="legendre", n_freq=2, loss="cross_entropy", **FAST)
    clf.fit(X, y)
    assert clf.local_dim_ == 3
    assert clf.score(X, y) > 0.5


def test_early_stopping_restores_best_epoch(small_digits):
    X, y = small_digits
    clf = QCNNClassifier(early_stopping=True, n_iter_no_change=2, max_epochs=30,
                         lr=0.05, random_state=0).fit(X, y)
    valid = clf.history_[:, "valid_loss"]
    assert len(valid) < 30
    assert min(valid) == valid[-3]


def test_verbose_shows_progress(small_digits, capsys):
    X, y = small_digits
    QCNNClassifier(max_epochs=1, verbose=1, random_state=0).fit(X, y)
    captured = capsys.readouterr()
    assert "train_loss" in captured.out
    assert "it/s" in captured.err or "batch" in captured.err or "%" in captured.err
    # verbose=0 prints nothing, and builds no epoch table to print.
    quiet = QCNNClassifier(max_epochs=1, random_state=0).fit(X, y)
    assert capsys.readouterr() == ("", "")
    assert "print_log" not in dict(quiet.net_.callbacks_)


def test_pipeline_cross_val_and_grid_search(small_digits):
    X, y = small_digits
    pipe = make_pipeline(FunctionTransformer(np.sqrt), QCNNClassifier(max_epochs=10, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=2)
    assert scores.shape == (2,) and scores.min() > 0.5
    grid = GridSearchCV(
        QCNNClassifier(**FAST),
        {"channels": [("constant", 2), ("linear", 2), (2, 3, 4, 5, 6, 7)]},
        cv=2, n_jobs=2,
    ).fit(X, y)
    assert grid.best_params_["channels"] in [("constant", 2), ("linear", 2), (2, 3, 4, 5, 6, 7)]
    assert grid.best_estimator_.channels_ == resolve(grid.best_params_["channels"])


def resolve(channels):
    from skqcnn._schedules import resolve_channels

    return resolve_channels(channels, 6)


def test_clone_keeps_tuple_channels():
    clf = QCNNClassifier(channels=(2, 3, 4, 5, 6, 7))
    assert clone(clf).get_params()["channels"] == (2, 3, 4, 5, 6, 7)


def test_joblib_round_trip(fitted_qcnn, small_digits, tmp_path):
    X, _ = small_digits
    path = tmp_path / "model.joblib"
    joblib.dump(fitted_qcnn, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.decision_function(X), fitted_qcnn.decision_function(X))
    np.testing.assert_array_equal(loaded.entanglement_entropy(), fitted_qcnn.entanglement_entropy())


def test_cuda_pickle_loads_on_cpu_only_machine(small_digits):
    """As skorch tests it: a net whose device is CUDA, unpickled without CUDA."""
    X, y = small_digits
    clf = QCNNClassifier(**FAST).fit(X, y)
    expected = clf.decision_function(X)
    clf.net_.device = "cuda"
    clf.device_ = "cuda"
    blob = pickle.dumps(clf)
    with mock.patch("torch.cuda.is_available", lambda: False):
        with pytest.warns(UserWarning, match="no CUDA devices are available"):
            loaded = pickle.loads(blob)
    assert loaded.device_ == "cpu"
    np.testing.assert_array_equal(loaded.decision_function(X), expected)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_auto_trains_on_cuda(small_digits):
    X, y = small_digits
    clf = QCNNClassifier(**FAST).fit(X, y)
    assert clf.device_.startswith("cuda")
    assert next(clf.net_.module_.parameters()).is_cuda
    assert clf.score(X, y) > 0.5


# --- bad input -----------------------------------------------------------------


def test_unfitted_raises_not_fitted(small_digits):
    X, _ = small_digits
    clf = QCNNClassifier()
    for method in (clf.predict, clf.predict_proba, clf.decision_function, clf.amplitudes):
        with pytest.raises(NotFittedError):
            method(X)
    with pytest.raises(NotFittedError):
        clf.entanglement_entropy()
    with pytest.raises(NotFittedError):
        clf.history_


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_inputs(small_digits, fitted_qcnn, bad):
    X, y = small_digits
    X_bad = X.copy()
    X_bad[3, 5] = bad
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        QCNNClassifier(**FAST).fit(X_bad, y)
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        fitted_qcnn.predict(X_bad)


def test_wrong_number_of_features_at_predict(fitted_qcnn, small_digits):
    X, _ = small_digits
    with pytest.raises(ValueError, match="X has 63 features, but QCNNClassifier is expecting 64"):
        fitted_qcnn.predict(X[:, :63])


def test_sparse_input_is_rejected(small_digits):
    X, y = small_digits
    with pytest.raises(TypeError, match="dense data is required"):
        QCNNClassifier(**FAST).fit(scipy.sparse.csr_matrix(X), y)


def test_single_class_and_single_sample(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match="needs at least 2 classes in y; got 1 class"):
        QCNNClassifier(**FAST).fit(X[y == 0], y[y == 0])
    with pytest.raises(ValueError, match="1 sample"):
        QCNNClassifier(**FAST).fit(X[:1], y[:1])


def test_non_finite_training_loss_names_the_knobs(small_digits):
    X, y = small_digits
    clf = QCNNClassifier(lr=1e6, optimizer="sgd", max_epochs=5, random_state=0)
    with pytest.raises(ValueError, match=re.escape("Lower the learning rate (lr=1000000.0)")) as info:
        clf.fit(X, y)
    assert "dtype=np.float64" in str(info.value)
