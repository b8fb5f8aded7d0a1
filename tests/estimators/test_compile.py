"""compile=True: training through torch.compile, and its fallback to eager mode."""

import pickle
import warnings

import numpy as np
import pytest
import torch

from skqcnn import DeepRACClassifier, QCNNClassifier


def _failing_compile(function, **kwargs):
    def compiled(*args, **kwargs):
        raise RuntimeError("no C++ compiler found")
    return compiled


def _tracing_compile(calls):
    def compile_(function, **kwargs):
        def compiled(*args, **kwargs):
            calls.append(args[0].shape)
            return function(*args, **kwargs)
        return compiled
    return compile_


@pytest.mark.parametrize("cls", [QCNNClassifier, DeepRACClassifier])
def test_failed_compilation_warns_and_trains_eagerly(cls, small_digits, monkeypatch):
    X, y = small_digits
    params = dict(max_epochs=2, batch_size=100, random_state=0, device="cpu")
    eager = cls(**params).fit(X, y)
    monkeypatch.setattr(torch, "compile", _failing_compile)
    with pytest.warns(RuntimeWarning, match=r"compile=True: torch\.compile failed "
                                            r"\(RuntimeError: no C\+\+ compiler found\)"):
        fallback = cls(compile=True, **params).fit(X, y)
    # The failed batch was redone eagerly: the very same training.
    np.testing.assert_array_equal(fallback.decision_function(X), eager.decision_function(X))


def test_only_training_batches_are_compiled(small_digits, monkeypatch):
    X, y = small_digits
    calls = []
    monkeypatch.setattr(torch, "compile", _tracing_compile(calls))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        clf = QCNNClassifier(compile=True, max_epochs=2, batch_size=100, random_state=0,
                             device="cpu").fit(X, y)
    # 300 samples: 3 batches per epoch, and nothing else (recalibration, scoring).
    assert len(calls) == 6
    eager = QCNNClassifier(max_epochs=2, batch_size=100, random_state=0, device="cpu").fit(X, y)
    np.testing.assert_array_equal(clf.decision_function(X), eager.decision_function(X))
    # The compiled function is not pickled; the module and its state are the eager ones.
    restored = pickle.loads(pickle.dumps(clf))
    assert "compiled_forward_" not in vars(restored.net_)
    assert set(restored.net_.module_.state_dict()) == set(eager.net_.module_.state_dict())
    np.testing.assert_array_equal(restored.decision_function(X), clf.decision_function(X))


def test_compile_does_not_combine_with_an_accelerator(small_digits):
    X, y = small_digits
    class Accelerator:
        def prepare(self, *objects):
            return objects

        def unwrap_model(self, model):
            return model

    with pytest.raises(ValueError, match=r"compile=True does not combine with accelerator=; "
                                         r"compile through Accelerate instead"):
        QCNNClassifier(compile=True, accelerator=Accelerator()).fit(X, y)


@pytest.mark.slow
def test_compiled_training_matches_eager_training(small_digits):
    X, y = small_digits
    params = dict(max_epochs=2, batch_size=100, random_state=0, device="cpu",
                  dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        compiled = QCNNClassifier(compile=True, **params).fit(X, y)
    eager = QCNNClassifier(**params).fit(X, y)
    np.testing.assert_allclose(compiled.decision_function(X), eager.decision_function(X),
                               rtol=1e-7, atol=1e-9)
