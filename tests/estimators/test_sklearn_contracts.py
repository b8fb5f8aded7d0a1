"""scikit-learn's contracts that its estimator checks leave to luck or skip.

The checks fit well-separated blobs, where a network's amplitudes rarely turn
negative, and call an estimator from one thread; these tests make negative
amplitudes and concurrent calls happen on purpose, and score with skorch's
scoring callbacks and a changed parameter after fitting.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from skorch.callbacks import EpochScoring

import skqcnn
from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier

from _states import SPREAD, randomise

FAMILIES = {
    "qcnn": lambda **p: QCNNClassifier(channels=4, **p),
    "convac": lambda **p: OverlappingConvACClassifier(channels=(4,), **p),
    "rac": lambda **p: DeepRACClassifier(hidden_size=4, n_layers=1, **p),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_largest_decision_is_the_prediction(family, small_digits):
    X, y = small_digits
    clf = FAMILIES[family](max_epochs=2, random_state=0, dtype=np.float64).fit(X, y)
    # Random weights give amplitudes of both signs, as the cross-entropy
    # loss, blind to signs, also does.
    randomise(clf, SPREAD[family])
    amplitudes = clf.amplitudes(X)
    assert 0.2 < (amplitudes < 0).mean() < 0.8
    decision = clf.decision_function(X)
    np.testing.assert_array_equal(clf.classes_[decision.argmax(axis=1)], clf.predict(X))
    np.testing.assert_allclose(decision, np.log(np.abs(amplitudes)), rtol=1e-12)
    np.testing.assert_allclose(clf.predict_proba(X),
                               amplitudes**2 / (amplitudes**2).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("family", FAMILIES)
def test_predict_from_threads_leaves_the_model_unchanged(family, small_digits):
    X, y = small_digits
    clf = FAMILIES[family](max_epochs=2, random_state=0, dtype=np.float32).fit(X, y)
    expected = clf.predict_proba(X)
    parameters = dict(clf.net_.module_.named_parameters())
    # Several evaluations of one float32 module at once, as a threading
    # backend or a web server would run them.
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: clf.predict_proba(X), range(16)))
    for result in results:
        np.testing.assert_array_equal(result, expected)
    for name, parameter in clf.net_.module_.named_parameters():
        assert parameter is parameters[name]
        assert isinstance(parameter, torch.nn.Parameter) and parameter.dtype == torch.float32
    clf.set_params(warm_start=True, max_epochs=3).fit(X, y)
    assert len(clf.history_) == 3


@pytest.mark.parametrize("cls", [QCNNClassifier, OverlappingConvACClassifier,
                                 DeepRACClassifier])
def test_skorch_scoring_callbacks_score_the_classes(cls, small_digits):
    X, y = small_digits
    callbacks = [("accuracy", EpochScoring("accuracy", on_train=True, name="train_accuracy")),
                 ("log_loss", EpochScoring("neg_log_loss", on_train=True,
                                           name="train_log_loss"))]
    # Default widths: they learn the four digits within the four epochs.
    clf = cls(max_epochs=4, random_state=0, callbacks=callbacks).fit(X, y)
    accuracy = clf.history_[:, "train_accuracy"]
    log_loss = clf.history_[:, "train_log_loss"]
    # Scored from the training passes: they improve with the training loss.
    assert all(0 <= a <= 1 for a in accuracy) and accuracy[-1] > max(0.8, accuracy[0])
    assert all(np.isfinite(log_loss)) and log_loss[-1] > log_loss[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_changed_representation_does_not_change_a_fitted_model(family, small_digits,
                                                                tmp_path):
    X, y = small_digits
    clf = FAMILIES[family](max_epochs=2, random_state=0).fit(X, y)
    expected = clf.predict_proba(X)
    # The built basis decides how inputs are scaled, as it decides everything
    # else about the network; the parameter applies at the next fit.
    clf.set_params(representation="legendre")
    np.testing.assert_array_equal(clf.predict_proba(X), expected)
    # A file records the parameters that load rebuilds the network from.
    with pytest.raises(ValueError, match=r"changed since the fit: "
                                         r"representation='fourier' -> 'legendre'"):
        skqcnn.save(clf, tmp_path / "model.safetensors")
    clf.set_params(representation="fourier")
    skqcnn.save(clf, tmp_path / "model.safetensors")
    np.testing.assert_array_equal(skqcnn.load(tmp_path / "model.safetensors").predict_proba(X),
                                  expected)
