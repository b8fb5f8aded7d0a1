"""What each estimator does with bad input: one list of cases, tested and documented.

``CASES`` is the single source of truth. ``test_bad_input`` runs every case
against every estimator family it applies to, and ``test_docs_table_is_current``
checks that ``docs/bad_inputs.rst`` holds exactly the table rendered from
``CASES``, so the page cannot drift from the behaviour. After editing
``CASES``, rewrite the table with::

    python tests/test_bad_inputs.py
"""

import functools
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.exceptions import NotFittedError

from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.rst"
BEGIN, END = ".. begin-generated-cases", ".. end-generated-cases"


@dataclass(frozen=True)
class Family:
    """An estimator family with tiny hyperparameters and a cached fit."""

    name: str
    cls: type
    params: dict

    def make(self, **params):
        return self.cls(**{**self.params, **params})

    def fitted(self):
        return _fitted(self.name)


# Legendre with n_freq=1 gives local dimension 2: the ConvAC and RAC states
# are small enough for the exact path, so option checks behind it are reached.
# The RAC reads the nine features as nine steps (its default would be 3 x 3).
FAMILIES = {
    "qcnn": Family("qcnn", QCNNClassifier, dict(channels=2, max_epochs=1, random_state=0)),
    "convac": Family("convac", OverlappingConvACClassifier, dict(
        channels=2, n_layers=1, kernel_size=2, pooling=None, representation="legendre",
        n_freq=1, max_epochs=1, random_state=0)),
    "rac": Family("rac", DeepRACClassifier, dict(
        hidden_size=2, n_layers=1, sequence_shape=(9, 1), representation="legendre",
        n_freq=1, max_epochs=1, random_state=0)),
}
ALL = tuple(FAMILIES)
QCNN, CONVAC, RAC = ("qcnn",), ("convac",), ("rac",)
SECTIONS = {
    "data": "Training data",
    "predict": "Prediction",
    "partition": "Partitions",
    "analysis": "Entanglement options",
    "params": "Hyperparameters",
}
CLASS_NAMES = {"qcnn": "QCNNClassifier", "convac": "OverlappingConvACClassifier",
               "rac": "DeepRACClassifier"}

# Nine features: a 3 x 3 image (padded to 4 x 4 in the q-CNN) or nine steps.
# Exact enumeration of 2**9 amplitudes keeps the analysis cases fast.
_rng = np.random.default_rng(0)
X = _rng.uniform(size=(24, 9))
Y = np.arange(24) % 2
# A 4 x 4 image for the cases that need a size the others lack.
X16 = _rng.uniform(size=(24, 16))


@functools.cache
def _fitted(name):
    return FAMILIES[name].make().fit(X, Y)


def with_value(row, col, value):
    """A copy of X with one entry replaced."""
    out = X.copy()
    out[row, col] = value
    return out


@dataclass(frozen=True)
class Case:
    """One bad input and what it must get.

    ``call(family)`` performs the bad call; it must raise ``error`` with a
    message containing ``fragment`` (plain text, not a regex).
    """

    id: str
    section: str
    what: str
    call: Callable
    error: type
    fragment: str
    families: tuple = ALL
    needs_no_cuda: bool = False


CASES = [
    # Training data.
    Case("X-nan", "data", "NaN in ``X``",
         lambda f: f.make().fit(with_value(0, 0, np.nan), Y),
         ValueError, "Input X contains NaN"),
    Case("X-inf", "data", "infinity in ``X``",
         lambda f: f.make().fit(with_value(0, 0, np.inf), Y),
         ValueError, "Input X contains infinity"),
    Case("X-1d", "data", "1-D ``X``",
         lambda f: f.make().fit(X[:, 0], Y),
         ValueError, "Expected 2D array, got 1D array"),
    Case("X-3d-shape", "data", "3-D ``X`` whose sample shape contradicts the shape parameter",
         lambda f: f.make(**{shape_name(f): (9, 1)}).fit(X.reshape(24, 3, 3), Y),
         ValueError, "but X holds samples of shape (3, 3); pass"),
    Case("X-4d", "data", "4-D ``X``",
         lambda f: f.make().fit(X.reshape(24, 3, 3, 1), Y),
         ValueError, "Found array with dim 4"),
    Case("X-empty", "data", "``X`` with no rows",
         lambda f: f.make().fit(X[:0], Y[:0]),
         ValueError, "Found array with 0 sample(s)"),
    Case("X-one-row", "data", "a single training sample",
         lambda f: f.make().fit(X[:1], Y[:1]),
         ValueError, "a minimum of 2 is required"),
    Case("X-no-columns", "data", "``X`` with no columns",
         lambda f: f.make().fit(X[:, :0], Y),
         ValueError, "Found array with 0 feature(s)"),
    Case("X-sparse", "data", "a scipy sparse matrix",
         lambda f: f.make().fit(scipy.sparse.csr_matrix(X), Y),
         TypeError, "Sparse data was passed"),
    Case("X-complex", "data", "complex ``X``",
         lambda f: f.make().fit(X + 1j, Y),
         ValueError, "Complex data not supported"),
    Case("X-strings", "data", "``X`` of non-numeric strings",
         lambda f: f.make().fit(np.full(X.shape, "a"), Y),
         ValueError, "could not convert string to float"),
    Case("y-one-class", "data", "``y`` with a single class",
         lambda f: f.make().fit(X, np.zeros(24)),
         ValueError, "needs at least 2 classes in y"),
    Case("y-continuous", "data", "continuous ``y`` (a regression target)",
         lambda f: f.make().fit(X, np.linspace(0, 1, 24)),
         ValueError, "Unknown label type: continuous"),
    Case("y-mixed", "data", "``y`` mixing strings and numbers",
         lambda f: f.make().fit(X, np.array([1, "a"] * 12, dtype=object)),
         ValueError, "Unknown label type"),
    Case("y-nan", "data", "NaN in ``y``",
         lambda f: f.make().fit(X, np.r_[Y[:-1], np.nan]),
         ValueError, "Input y contains NaN"),
    Case("y-2d", "data", "2-D ``y``",
         lambda f: f.make().fit(X, np.c_[Y, Y]),
         ValueError, "y should be a 1d array"),
    Case("y-length", "data", "``y`` shorter than ``X``",
         lambda f: f.make().fit(X, Y[:10]),
         ValueError, "inconsistent numbers of samples"),
    Case("non-finite-loss", "data", "a training loss that overflows (here ``lr=1e30``)",
         lambda f: f.make(lr=1e30, optimizer="sgd", max_epochs=2).fit(X, Y),
         ValueError, "The training loss became non-finite"),
    Case("warm-start-features", "data",
         "``warm_start=True`` refit on another number of features",
         lambda f: f.make(warm_start=True).fit(X, Y).fit(X16, Y),
         ValueError, "warm_start=True continues training the network fitted on 9 features; "
         "X has 16"),
    Case("warm-start-classes", "data",
         "``warm_start=True`` refit on other classes",
         lambda f: f.make(warm_start=True).fit(X, Y).fit(X, Y + 5),
         ValueError, "warm_start=True continues training on the classes of the first fit"),

    # Prediction.
    Case("unfitted-predict", "predict", "``predict`` before ``fit``",
         lambda f: f.make().predict(X),
         NotFittedError, "is not fitted yet"),
    Case("unfitted-proba", "predict", "``predict_proba`` before ``fit``",
         lambda f: f.make().predict_proba(X),
         NotFittedError, "is not fitted yet"),
    Case("predict-n-features", "predict", "a different number of features",
         lambda f: f.fitted().predict(X[:, :5]),
         ValueError, "X has 5 features, but"),
    Case("predict-nan", "predict", "NaN in ``X``",
         lambda f: f.fitted().predict(with_value(3, 3, np.nan)),
         ValueError, "Input X contains NaN"),
    Case("predict-1d", "predict", "a single sample as a 1-D array",
         lambda f: f.fitted().predict(X[0]),
         ValueError, "Expected 2D array, got 1D array"),
    Case("predict-empty", "predict", "``X`` with no rows",
         lambda f: f.fitted().predict(X[:0]),
         ValueError, "Found array with 0 sample(s)"),
    Case("predict-sparse", "predict", "a scipy sparse matrix",
         lambda f: f.fitted().predict_proba(scipy.sparse.csr_matrix(X)),
         TypeError, "Sparse data was passed"),
    Case("predict-image-shape", "predict",
         "3-D ``X`` whose images differ from ``image_shape_``",
         lambda f: f.fitted().predict(X.reshape(24, 9, 1)),
         ValueError, "fitted with image_shape_=(3, 3); pass samples of shape (3, 3)",
         families=QCNN + CONVAC),
    Case("predict-sequence-shape", "predict",
         "3-D ``X`` whose steps differ from ``sequence_shape_``",
         lambda f: f.make(sequence_shape=None).fit(X.reshape(24, 3, 3), Y)
         .predict(X.reshape(24, 9, 1)),
         ValueError, "fitted with sequence_shape_=(3, 3); pass samples of shape (3, 3)",
         families=RAC),

    # Partitions.
    Case("unfitted-entropy", "partition", "``entanglement_entropy`` before ``fit``",
         lambda f: f.make().entanglement_entropy(),
         NotFittedError, "is not fitted yet"),
    Case("unfitted-bound", "partition", "``schmidt_rank_bound`` before ``fit``",
         lambda f: f.make().schmidt_rank_bound(),
         NotFittedError, "is not fitted yet"),
    Case("partition-empty", "partition", "no site in A, ``[]``",
         lambda f: f.fitted().entanglement_entropy([]),
         ValueError, "leaves subsystem A or B empty"),
    Case("partition-everything", "partition", "every site in A",
         lambda f: f.fitted().entanglement_entropy(np.ones(9, dtype=bool)),
         ValueError, "leaves subsystem A or B empty"),
    Case("partition-name", "partition", "an unknown partition name",
         lambda f: f.fitted().entanglement_entropy("diagonal"),
         ValueError, "Unknown partition 'diagonal'; use a name from"),
    Case("partition-rows-of-steps", "partition", "``\"up_down\"`` on the steps of a sequence",
         lambda f: f.fitted().schmidt_rank_bound("up_down"),
         ValueError, "'up_down' splits the rows of an image", families=RAC),
    Case("partition-name-arguments", "partition",
         "arguments to a name that takes none, ``(\"left_right\", 3)``",
         lambda f: f.fitted().schmidt_rank_bound(("left_right", 3)),
         ValueError, "The partition 'left_right' takes no size"),
    Case("partition-block-size", "partition", "a block larger than the input",
         lambda f: f.fitted().schmidt_rank_bound(("block", 10)),
         ValueError, "Block size must be an int in [1,"),
    Case("partition-block-no-size", "partition", "``(\"block\",)`` without a size",
         lambda f: f.fitted().schmidt_rank_bound(("block",)),
         ValueError, "A block partition is ('block', size)"),
    Case("partition-out-of-range", "partition", "an index past the last feature",
         lambda f: f.fitted().entanglement_entropy([0, 9]),
         ValueError, "Partition indices must lie in [0, 9)"),
    Case("partition-negative", "partition", "a negative index",
         lambda f: f.fitted().entanglement_entropy([-1, 2]),
         ValueError, "Partition indices must lie in [0, 9)"),
    Case("partition-ambiguous-ints", "partition",
         "a 0/1 integer array with one entry per site: mask or indices?",
         lambda f: f.fitted().entanglement_entropy(np.array([1, 0, 1, 0, 0, 0, 0, 0, 1])),
         ValueError, "is it a mask or a list of indices?"),
    Case("partition-mask-shape", "partition", "a boolean mask of the wrong shape",
         lambda f: f.fitted().entanglement_entropy(np.ones(5, dtype=bool)),
         ValueError, "A boolean partition mask must have shape"),
    Case("partition-floats", "partition", "non-integer indices",
         lambda f: f.fitted().entanglement_entropy([0.5, 1.0]),
         ValueError, "A partition must be a name from"),
    Case("partition-nested", "partition", "a 2-D list of indices",
         lambda f: f.fitted().entanglement_entropy([[0, 1]]),
         ValueError, "A partition must be a name from"),
    Case("partition-set", "partition", "a set of indices",
         lambda f: f.fitted().entanglement_entropy({0, 1}),
         ValueError, "A partition must be a name from"),
    Case("partition-int", "partition", "an int where only sequences take one",
         lambda f: f.fitted().schmidt_rank_bound(3),
         ValueError, "A partition must be a name from", families=QCNN + CONVAC),
    Case("partition-int-range", "partition", "an int ``k`` outside ``1 <= k < T``",
         lambda f: f.fitted().schmidt_rank_bound(9),
         ValueError, "1 <= k < 9", families=RAC),

    # Entanglement options.
    Case("alpha-negative", "analysis", "``alpha=-1``",
         lambda f: f.fitted().entanglement_entropy(alpha=-1),
         ValueError, "alpha must be >= 0"),
    Case("alpha-nan", "analysis", "``alpha=nan``",
         lambda f: f.fitted().entanglement_entropy(alpha=np.nan),
         ValueError, "alpha must be >= 0"),
    Case("alpha-none", "analysis", "``alpha=None``",
         lambda f: f.fitted().entanglement_entropy(alpha=None),
         TypeError, "alpha must be a real number"),
    Case("base-one", "analysis", "``base=1``",
         lambda f: f.fitted().entanglement_entropy(base=1),
         ValueError, "base"),
    Case("base-nonpositive", "analysis", "a negative ``base``",
         lambda f: f.fitted().entanglement_entropy(base=-2),
         ValueError, "base"),
    Case("classes-unknown", "analysis", "``classes`` not in ``classes_``",
         lambda f: f.fitted().entanglement_entropy(classes=[5]),
         ValueError, "classes must be a non-empty list of labels from classes_"),
    Case("classes-empty", "analysis", "``classes=[]``",
         lambda f: f.fitted().schmidt_spectrum(classes=[]),
         ValueError, "classes must be a non-empty list of labels from classes_"),
    Case("classes-type", "analysis", "string ``classes`` for integer labels",
         lambda f: f.fitted().entanglement_entropy(classes=["a"]),
         ValueError, "classes must be a non-empty list of labels from classes_"),
    Case("max-cut-dim", "analysis", "``alpha=1`` at a cut heavier than ``max_cut_dim``",
         lambda f: f.fitted().entanglement_entropy(alpha=1, max_cut_dim=1),
         ValueError, "above max_cut_dim=1", families=QCNN),
    Case("alpha-bool", "analysis", "``alpha=True``",
         lambda f: f.fitted().entanglement_entropy(alpha=True),
         TypeError, "alpha must be a real number"),
    Case("max-cut-dim-value", "analysis", "``max_cut_dim=-1``",
         lambda f: f.fitted().entanglement_entropy(max_cut_dim=-1),
         ValueError, "max_cut_dim must be a positive int"),
    Case("method", "analysis", "an unknown ``method``",
         lambda f: f.fitted().entanglement_entropy(method="sampling"),
         ValueError, "method must be one of"),
    Case("monte-carlo-alpha", "analysis", "``method=\"monte_carlo\"`` with ``alpha != 2``",
         lambda f: f.fitted().entanglement_entropy(alpha=1, method="monte_carlo"),
         ValueError, "Monte Carlo estimates the Renyi-2 entropy only"),
    Case("n-samples", "analysis", "``n_samples=0`` for Monte Carlo",
         lambda f: f.fitted().entanglement_entropy(alpha=2, method="monte_carlo",
                                                   n_samples=0, classes=[0]),
         ValueError, "n_samples must be an int >= 100"),
    Case("return-cut", "analysis", "a non-bool ``return_cut``",
         lambda f: f.fitted().schmidt_rank_bound(return_cut="yes"),
         TypeError, "return_cut must be a bool"),
    Case("exact-too-large", "analysis", "``method=\"exact\"`` beyond 2**22 amplitudes",
         lambda f: f.make(representation="fourier", n_layers=2,
                          **({"sequence_shape": (16, 1)} if f.name == "rac" else {}))
         .fit(X16, Y)
         .entanglement_entropy([0, 2], method="exact"),
         ValueError, "above the limit of 2**22 = 4194304", families=CONVAC + RAC),
    Case("lower-bound-shallow", "analysis", "``schmidt_rank_lower_bound`` of one layer",
         lambda f: f.fitted().schmidt_rank_lower_bound(2),
         ValueError, "Theorem 2 concerns deep RACs", families=RAC),
    Case("lower-bound-prefix", "analysis", "``schmidt_rank_lower_bound`` for a prefix A",
         lambda f: f.make(n_layers=2).fit(X, Y).schmidt_rank_lower_bound([0, 1]),
         ValueError, "Theorem 2 needs A to be the last |A| steps", families=RAC),

    # Hyperparameters, checked in fit.
    Case("channels-schedule", "params", "an unknown channel schedule",
         lambda f: f.make(**{channels_name(f): ("quadratic", 4)}).fit(X, Y),
         ValueError, "schedule 'quadratic'; use one of"),
    Case("channels-width", "params", "a schedule width of 0",
         lambda f: f.make(**{channels_name(f): ("linear", 0)}).fit(X, Y),
         ValueError, "the width must be a positive int"),
    Case("channels-entry", "params", "a channel count of 0 in a tuple",
         lambda f: f.make(**{channels_name(f): (2, 0, 2, 2)}).fit(X, Y),
         ValueError, "must hold positive ints"),
    Case("channels-length", "params", "a tuple with the wrong number of levels",
         lambda f: f.make(channels=(2, 2, 2)).fit(X, Y),
         ValueError, "has 3 entries but the network has 4 layers", families=QCNN),
    Case("channels-empty", "params", "an empty channel tuple",
         lambda f: f.make(**{channels_name(f): ()}).fit(X, Y),
         ValueError, "0 entries"),
    Case("channels-zero", "params", "``channels=0`` (``hidden_size=0``)",
         lambda f: f.make(**{channels_name(f): 0}).fit(X, Y),
         ValueError, "positive"),
    Case("channels-negative", "params", "a negative int ``channels``",
         lambda f: f.make(**{channels_name(f): -3}).fit(X, Y),
         ValueError, "must be a positive int, got -3"),
    Case("channels-type", "params", "a bare schedule name, ``channels=\"linear\"``",
         lambda f: f.make(**{channels_name(f): "linear"}).fit(X, Y),
         TypeError, "must be an int, a tuple of ints or (schedule, width)"),
    Case("lr-negative", "params", "a negative learning rate",
         lambda f: f.make(lr=-0.1).fit(X, Y),
         ValueError, "lr must be None or a real number > 0, got -0.1"),
    Case("lr-zero", "params", "``lr=0``",
         lambda f: f.make(lr=0.0).fit(X, Y),
         ValueError, "lr must be None or a real number > 0, got 0.0"),
    Case("lr-nan", "params", "``lr=nan``",
         lambda f: f.make(lr=np.nan).fit(X, Y),
         ValueError, "lr must be"),
    Case("lr-type", "params", "a string learning rate",
         lambda f: f.make(lr="0.1").fit(X, Y),
         TypeError, "lr must be None or a real number > 0, got '0.1'"),
    Case("weight-decay", "params", "a negative ``weight_decay``",
         lambda f: f.make(weight_decay=-1).fit(X, Y),
         ValueError, "weight_decay must be a real number >= 0, got -1"),
    Case("weight-decay-inf", "params", "``weight_decay=inf``",
         lambda f: f.make(weight_decay=np.inf).fit(X, Y),
         ValueError, "weight_decay must be finite"),
    Case("batch-size", "params", "``batch_size=0``",
         lambda f: f.make(batch_size=0).fit(X, Y),
         ValueError, "batch_size must be a positive int, got 0"),
    Case("batch-size-type", "params", "a float ``batch_size``",
         lambda f: f.make(batch_size=2.5).fit(X, Y),
         TypeError, "batch_size must be a positive int, got 2.5"),
    Case("max-epochs", "params", "``max_epochs=0``",
         lambda f: f.make(max_epochs=0).fit(X, Y),
         ValueError, "max_epochs must be None or a positive int, got 0"),
    Case("max-epochs-bool", "params", "``max_epochs=True``",
         lambda f: f.make(max_epochs=True).fit(X, Y),
         TypeError, "max_epochs must be None or a positive int, got True"),
    Case("validation-fraction", "params", "``validation_fraction=1``",
         lambda f: f.make(validation_fraction=1.0, early_stopping=True).fit(X, Y),
         ValueError, "validation_fraction must be a real number > 0 and < 1, got 1.0"),
    Case("validation-fraction-nan", "params", "``validation_fraction=nan``",
         lambda f: f.make(validation_fraction=np.nan, early_stopping=True).fit(X, Y),
         ValueError, "validation_fraction"),
    Case("n-iter-no-change", "params", "``n_iter_no_change=0``",
         lambda f: f.make(n_iter_no_change=0).fit(X, Y),
         ValueError, "n_iter_no_change must be a positive int, got 0"),
    Case("early-stopping-type", "params", "``early_stopping=\"yes\"``",
         lambda f: f.make(early_stopping="yes").fit(X, Y),
         TypeError, "early_stopping must be a bool"),
    Case("warm-start-type", "params", "``warm_start=\"yes\"``",
         lambda f: f.make(warm_start="yes").fit(X, Y),
         TypeError, "warm_start must be a bool"),
    Case("compile-type", "params", "``compile=\"yes\"``",
         lambda f: f.make(compile="yes").fit(X, Y),
         TypeError, "compile must be a bool"),
    Case("callbacks-type", "params", "``callbacks`` that is not a list",
         lambda f: f.make(callbacks="progress").fit(X, Y),
         TypeError, "callbacks must be a list of skorch callbacks"),
    Case("callbacks-item", "params", "a ``callbacks`` entry that is not a callback",
         lambda f: f.make(callbacks=[1]).fit(X, Y),
         TypeError, "callbacks must hold skorch callbacks"),
    Case("accelerator-type", "params", "an ``accelerator`` that is not an Accelerator",
         lambda f: f.make(accelerator=object()).fit(X, Y),
         TypeError, "accelerator must be an accelerate.Accelerator or None"),
    Case("track-every", "params", "``track_every=0``",
         lambda f: f.make(track_entanglement=True, track_every=0).fit(X, Y),
         ValueError, "track_every must be a positive int, got 0"),
    Case("track-entanglement-type", "params", "a float ``track_entanglement``",
         lambda f: f.make(track_entanglement=0.5).fit(X, Y),
         TypeError, "Partitions to track must be a partition name"),
    Case("verbose", "params", "``verbose=-1``",
         lambda f: f.make(verbose=-1).fit(X, Y),
         ValueError, "verbose must be a non-negative int, got -1"),
    Case("track-partition", "params", "an unknown partition in ``track_entanglement``",
         lambda f: f.make(track_entanglement="diagonal").fit(X, Y),
         ValueError, "Unknown partition 'diagonal'"),
    Case("dtype", "params", "``dtype=np.float16``",
         lambda f: f.make(dtype=np.float16).fit(X, Y),
         ValueError, "dtype must be np.float32 or np.float64"),
    Case("dtype-int", "params", "``dtype=np.int32``",
         lambda f: f.make(dtype=np.int32).fit(X, Y),
         ValueError, "dtype must be np.float32 or np.float64"),
    Case("dtype-torch", "params", "a torch dtype",
         lambda f: f.make(dtype=torch.float64).fit(X, Y),
         ValueError, "dtype must be np.float32 or np.float64"),
    Case("device", "params", "an unknown device string",
         lambda f: f.make(device="tpu").fit(X, Y),
         ValueError, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    Case("device-type", "params", "a device that is not a string",
         lambda f: f.make(device=3).fit(X, Y),
         ValueError, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    Case("device-no-cuda", "params", "``device=\"cuda\"`` on a machine without CUDA",
         lambda f: f.make(device="cuda").fit(X, Y),
         ValueError, "CUDA", needs_no_cuda=True),
    Case("device-meta", "params", "``device=\"meta\"``",
         lambda f: f.make(device="meta").fit(X, Y),
         ValueError, "device"),
    Case("representation", "params", "an unknown ``representation``",
         lambda f: f.make(representation="chebyshev").fit(X, Y),
         ValueError, "representation must be one of"),
    Case("n-freq", "params", "``n_freq=0``",
         lambda f: f.make(n_freq=0).fit(X, Y),
         ValueError, "n_freq must be a positive int, got 0"),
    Case("loss", "params", "an unknown ``loss``",
         lambda f: f.make(loss="hinge").fit(X, Y),
         ValueError, "loss must be one of"),
    Case("optimizer", "params", "an unknown ``optimizer``",
         lambda f: f.make(optimizer="lbfgs").fit(X, Y),
         ValueError, "optimizer must be one of"),
    Case("validation-split", "params",
         "``early_stopping=True`` with a ``validation_fraction`` too small for every class",
         lambda f: f.make(early_stopping=True, validation_fraction=0.01).fit(X, Y),
         ValueError, "Raise validation_fraction, give more samples, or set early_stopping=False"),
    Case("optimizer-array", "params", "an array as ``optimizer``",
         lambda f: f.make(optimizer=np.array(["adam", "sgd"])).fit(X, Y),
         ValueError, "optimizer must be one of"),
    Case("dtype-none", "params", "``dtype=None``",
         lambda f: f.make(dtype=None).fit(X, Y),
         ValueError, "dtype must be np.float32 or np.float64, got None"),
    Case("random-state", "params", "a string ``random_state``",
         lambda f: f.make(random_state="seed").fit(X, Y),
         ValueError, "random_state must be None, an int in [0, 2**32 - 1]"),
    Case("random-state-negative", "params", "a negative ``random_state``",
         lambda f: f.make(random_state=-1).fit(X, Y),
         ValueError, "got -1 (Seed must be between 0 and 2**32 - 1)"),
    Case("image-shape", "params", "an ``image_shape`` that does not hold ``n_features``",
         lambda f: f.make(image_shape=(3, 5)).fit(X, Y),
         ValueError, "holds 15 pixels but X has 9 features", families=QCNN + CONVAC),
    Case("image-shape-3d", "params", "a 3-D ``image_shape``",
         lambda f: f.make(image_shape=(3, 3, 1)).fit(X, Y),
         ValueError, "image_shape must be (H, W) or (N,) with positive entries",
         families=QCNN + CONVAC),
    Case("image-shape-int", "params", "an int ``image_shape``",
         lambda f: f.make(image_shape=9).fit(X, Y),
         TypeError, "image_shape must be None or (H, W) or (N,) of ints",
         families=QCNN + CONVAC),
    Case("image-shape-strings", "params", "an ``image_shape`` of strings",
         lambda f: f.make(image_shape=("a", "b")).fit(X, Y),
         TypeError, "image_shape must be None or (H, W) or (N,) of ints",
         families=QCNN + CONVAC),
    Case("image-shape-float", "params", "a non-integer ``image_shape``",
         lambda f: f.make(image_shape=(3.0, 3)).fit(X, Y),
         TypeError, "image_shape must be None or (H, W) or (N,) of ints",
         families=QCNN + CONVAC),
    Case("top-split", "params", "an unknown ``top_split``",
         lambda f: f.make(top_split="diagonal").fit(X, Y),
         ValueError, "top_split must be one of", families=QCNN),
    Case("symmetric-pooling", "params", "a non-bool ``symmetric_pooling``",
         lambda f: f.make(symmetric_pooling="yes").fit(X, Y),
         TypeError, "symmetric_pooling must be a bool", families=QCNN),
    Case("kernel-size", "params", "``kernel_size=0``",
         lambda f: f.make(kernel_size=0).fit(X, Y),
         ValueError, "kernel_size must be None or a positive int, got 0", families=CONVAC),
    Case("kernel-size-large", "params", "a kernel larger than the image",
         lambda f: f.make(kernel_size=4).fit(X, Y),
         ValueError, "is larger than the image", families=CONVAC),
    Case("pooling", "params", "``pooling=0``",
         lambda f: f.make(pooling=0).fit(X, Y),
         ValueError, "pooling must be None or a positive int, got 0", families=CONVAC),
    Case("pooling-bool", "params", "``pooling=True``",
         lambda f: f.make(pooling=True).fit(X, Y),
         TypeError, "pooling must be None or a positive int, got True",
         families=CONVAC),
    Case("n-layers", "params", "``n_layers=0``",
         lambda f: f.make(n_layers=0).fit(X, Y),
         ValueError, "a positive int, got 0", families=CONVAC + RAC),
    Case("n-layers-bool", "params", "``n_layers=True``",
         lambda f: f.make(n_layers=True).fit(X, Y),
         TypeError, "a positive int, got True",
         families=CONVAC + RAC),
    Case("sequence-shape", "params", "a ``sequence_shape`` that does not hold ``n_features``",
         lambda f: f.make(sequence_shape=(3, 5)).fit(X, Y),
         ValueError, "needs T * F = 15 features but X has 9", families=RAC),
    Case("sequence-shape-1d", "params", "a 1-D ``sequence_shape``",
         lambda f: f.make(sequence_shape=(9,)).fit(X, Y),
         ValueError, "sequence_shape must be (T, F) with positive entries", families=RAC),
    Case("sequence-shape-zero", "params", "a ``sequence_shape`` with an empty side",
         lambda f: f.make(sequence_shape=(0, 9)).fit(X, Y),
         ValueError, "with positive entries (an empty sequence has no steps)", families=RAC),
    Case("sequence-shape-int", "params", "an int ``sequence_shape``",
         lambda f: f.make(sequence_shape=9).fit(X, Y),
         TypeError, "sequence_shape must be None or (T, F) of ints", families=RAC),
    Case("sequence-shape-float", "params", "a non-integer ``sequence_shape``",
         lambda f: f.make(sequence_shape=(3.5, 3)).fit(X, Y),
         TypeError, "sequence_shape must be None or (T, F) of ints", families=RAC),
    Case("sequence-shape-strings", "params", "a ``sequence_shape`` of strings",
         lambda f: f.make(sequence_shape=("a", 1)).fit(X, Y),
         TypeError, "sequence_shape must be None or (T, F) of ints", families=RAC),
]


def channels_name(family):
    return "hidden_size" if family.name == "rac" else "channels"


def shape_name(family):
    return "sequence_shape" if family.name == "rac" else "image_shape"


def _params():
    for case in CASES:
        for name in case.families:
            marks = []
            if case.needs_no_cuda:
                marks.append(pytest.mark.skipif(torch.cuda.is_available(),
                                                reason="CUDA is available here"))
            yield pytest.param(case, FAMILIES[name], marks=marks, id=f"{case.id}-{name}")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("case, family", list(_params()))
def test_bad_input(case, family):
    with pytest.raises(case.error, match=re.escape(case.fragment)):
        case.call(family)


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES)
def test_every_parameter_has_one_constraint(family):
    assert set(family.cls._parameter_constraints) == set(family.cls().get_params())


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES)
def test_parameters_are_checked_before_the_data(family):
    # X=None would fail validate_data: the parameter error must come first.
    message = "lr must be None or a real number > 0, got -1"
    with pytest.raises(ValueError, match=re.escape(message)):
        family.make(lr=-1).fit(None, None)


def test_cases_are_well_formed():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    for case in CASES:
        assert re.fullmatch(r"[a-z0-9-]+|[A-Za-z0-9-]+", case.id), case.id
        assert case.section in SECTIONS, case.id
        assert set(case.families) <= set(FAMILIES) and case.families, case.id
        # The rendered table puts fragments in double backquotes.
        assert "`" not in case.fragment and case.fragment.strip() == case.fragment, case.id


def render_table():
    """The rst block that docs/bad_inputs.rst holds between its markers."""
    lines = [BEGIN, ""]
    for section, title in SECTIONS.items():
        lines += [
            title,
            "-" * len(title),
            "",
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 16 32 18 14 30",
            "",
            "   * - Case",
            "     - Bad input",
            "     - Estimators",
            "     - Raises",
            "     - Message contains",
        ]
        for case in (c for c in CASES if c.section == section):
            families = ("all" if case.families == ALL else ", ".join(
                f":class:`~skqcnn.{CLASS_NAMES[name]}`" for name in case.families))
            lines += [
                f"   * - ``{case.id}``",
                f"     - {case.what}",
                f"     - {families}",
                f"     - ``{case.error.__name__}``",
                f"     - ``{case.fragment}``",
            ]
        lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


def _generated_block(text):
    start, stop = text.index(BEGIN), text.index(END) + len(END) + 1
    return start, stop


def test_docs_table_is_current():
    text = DOC.read_text(encoding="utf-8")
    start, stop = _generated_block(text)
    assert text[start:stop] == render_table(), (
        "docs/bad_inputs.rst is out of date: run `python tests/test_bad_inputs.py`."
    )
    for case in CASES:
        assert f"``{case.id}``" in text


def write_docs_table():
    text = DOC.read_text(encoding="utf-8")
    start, stop = _generated_block(text)
    DOC.write_text(text[:start] + render_table() + text[stop:], encoding="utf-8")


if __name__ == "__main__":
    write_docs_table()
    sys.exit(0)
