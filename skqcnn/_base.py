"""Machinery shared by every skqcnn estimator.

An estimator is a plain scikit-learn ``BaseEstimator`` that builds a skorch
``NeuralNet`` in ``fit`` and keeps it as ``net_``: hyperparameters stay plain
constructor arguments (so ``clone`` and grid searches see exactly what the user
passed) and are validated in ``fit``.
"""

import contextlib
import copy
import functools
import math
import numbers
import threading
import warnings
import weakref
from abc import ABCMeta, abstractmethod

import numpy as np
import torch
from skorch import NeuralNet
from torch.func import functional_call
from skorch.callbacks import Callback, EarlyStopping, LRScheduler, ProgressBar
from skorch.dataset import ValidSplit
from skorch.utils import to_tensor
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._data_loading import BatchFetchDataset, ShuffledBatches, collate_fetched_batch
from ._validation import Interval, Options, boolean, random_state, validate_parameters
from .callbacks import (
    BatchNormRecalibration,
    EntanglementHistory,
    EntanglementTracker,
    EpochSeededShuffle,
    FiniteLossGuard,
    labelled_partitions,
)
from .callbacks._not_learning import warn_if_not_learning
from ._partitions import partition_mask
from .entanglement._monte_carlo import renyi2_monte_carlo
from .entanglement._spectra import (
    entropy_from_spectrum,
    log_base,
    normalised_spectrum,
    positive_order,
)
from .entanglement._tree_entropy import DEFAULT_MAX_CUT_DIM
from .nn._device import module_device
from .nn._layers import REPRESENTATIONS, LocalBasis, basis_domain
from .nn._losses import LOSSES

OPTIMIZERS = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
}
# Devices whose fused optimizer kernels the estimators use (float32 and float64).
FUSED_OPTIMIZER_DEVICES = ("cpu", "cuda")
DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
ENTROPY_METHODS = ("auto", "exact", "monte_carlo")


class ExactUnavailable(Exception):
    """Raised by a family's exact path: why it cannot run on this state and cut.

    The public methods turn it into one ValueError that adds the call that
    works instead.
    """


class ScoredNetwork(torch.nn.Module):
    """Local basis followed by a network: raw scaled inputs to scores alpha_y."""

    def __init__(self, basis, network):
        super().__init__()
        self.basis = basis
        self.network = network

    def forward(self, x):
        """Scores of shape (batch, n_classes)."""
        return self.network(self.basis(x))


class TrainingNet(NeuralNet):
    """skorch ``NeuralNet`` that sets a module's mode only when it changes.

    skorch sets training or evaluation mode before every batch, and
    :meth:`torch.nn.Module.train` assigns the flag of every submodule through
    ``Module.__setattr__``: for the q-CNN that was about 3 percent of a
    10-epoch fit (``benchmarks/bench_qcnn.py``, wrapper overhead 1.23 ->
    1.18). Reading the flags is cheap, so a module whose submodules are all
    in the requested mode is left alone, and one with any other (a callback
    may switch a submodule) is set as skorch sets it.
    """

    def predict_proba(self, X):
        """Born-rule probabilities of the encoded classes ``0 .. n_classes - 1``.

        skorch's scoring callbacks (``EpochScoring("accuracy")``) score this
        net, on the scaled inputs and the encoded labels the estimator gave
        it, from the outputs of the epoch's own forward passes where they
        cache them (skorch's default). The module's outputs are amplitudes,
        so they become probabilities as the estimator's do.
        """
        scores = torch.cat([y.detach().cpu() for y in self.forward_iter(X, training=False)])
        return born_probabilities(scores.double().numpy())

    def predict(self, X):
        """Encoded class of the largest probability; see :meth:`predict_proba`."""
        return self.predict_proba(X).argmax(axis=1)

    def get_split_datasets(self, X, y=None, **fit_params):
        """As skorch's; keeps the training split for recalibrated validation."""
        dataset_train, dataset_valid = super().get_split_datasets(X, y, **fit_params)
        self._training_split = dataset_train
        return dataset_train, dataset_valid

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """As skorch's; a validation pass scores a recalibrated copy of the module.

        The running BatchNorm statistics lag behind the weights until
        :class:`~skqcnn.callbacks.BatchNormRecalibration` recomputes them at
        the end of training, and a product network multiplies that lag: the
        eval-mode loss of the module itself overstated the held-out loss
        several times early in training, and early stopping restored poor
        epochs. The copy is recalibrated on the training split, as the final
        model is on the training data; training and the saved best weights
        use the module itself.
        """
        recalibration = dict(self.callbacks_).get("batchnorm_recalibration")
        if training or iterator is None or recalibration is None:
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        module = self.module_
        self.module_ = recalibration.recalibrated_copy(self, self._training_split)
        try:
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        finally:
            self.module_ = module

    def __getstate__(self):
        # skorch serialises module_ here: not while a float64 evaluation has
        # swapped its parameters out (pickle and copy.deepcopy both come here).
        module = self.__dict__.get("module_")
        with _evaluation_lock(module) if module is not None else contextlib.nullcontext():
            state = super().__getstate__()
        # The training split is data of the last fit, not part of the model.
        state.pop("_training_split", None)
        return state

    def _set_training(self, training=True):
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module) and any(
                    submodule.training != training for submodule in module.modules()):
                module.train(training)


class CompiledTrainingNet(TrainingNet):
    """skorch ``NeuralNet`` whose training forward passes run through ``torch.compile``.

    ``module_`` stays the eager module, so that saved state, predictions and
    the entanglement analysis are those of an uncompiled net (skorch's own
    ``compile=True`` would replace ``module_`` by a compiled wrapper whose
    state dict keys differ). The compiled forward is built on the first
    training batch; if building or running it fails, a ``RuntimeWarning`` says
    why, the batch is redone eagerly and so is the rest of training.
    """

    def train_step_single(self, batch, **fit_params):
        """As skorch's, through the compiled forward while that works."""
        if self.__dict__.get("compiled_forward_") is not False:
            try:
                return super().train_step_single(batch, **fit_params)
            except Exception as error:  # any failure, compiler or runtime: train eagerly
                self.compiled_forward_ = False
                warnings.warn(
                    f"compile=True: torch.compile failed ({type(error).__name__}: {error}); "
                    f"training continues without compilation.",
                    RuntimeWarning, stacklevel=2,
                )
                # A failed backward may have left part of the gradients.
                self.optimizer_.zero_grad()
        return super().train_step_single(batch, **fit_params)

    def infer(self, x, **fit_params):
        """As skorch's; training batches go through the compiled forward."""
        if not self.module_.training or self.__dict__.get("compiled_forward_") is False:
            return super().infer(x, **fit_params)
        if self.__dict__.get("compiled_forward_") is None:
            self.compiled_forward_ = torch.compile(self.module_.forward)
        return self.compiled_forward_(to_tensor(x, device=self.device), **fit_params)

    def __getstate__(self):
        # A compiled function does not pickle; the next fit compiles again.
        state = super().__getstate__()
        if state.get("compiled_forward_") is not False:
            state.pop("compiled_forward_", None)
        return state


def resolve_device(device, require_available=True):
    """``"auto"`` means CUDA when available, else CPU.

    With ``require_available``, asking for CUDA on a machine without it is a
    ``ValueError``; the loader turns such a saved device into the CPU.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda"):
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}."
        )
    if require_available and resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} but CUDA is not available here; use 'auto' or 'cpu'."
        )
    return str(resolved)


def _is_plain(value):
    """Whether a hyperparameter value is numbers, strings, arrays and containers of them."""
    if value is None or isinstance(value, (bool, numbers.Number, str, np.generic)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biufU"
    if isinstance(value, (tuple, list)):
        return all(_is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_plain(item) for key, item in value.items())
    return False


def _same_value(a, b):
    """Whether two hyperparameter values are equal, arrays and nested containers included."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[key], b[key]) for key in a)
    if isinstance(a, (tuple, list, dict)) or isinstance(b, (tuple, list, dict)):
        return False
    return bool(a == b)


_EVALUATION_LOCKS = weakref.WeakKeyDictionary()
_EVALUATION_LOCKS_GUARD = threading.Lock()


def _evaluation_lock(module):
    """The lock under which one module is evaluated in float64.

    ``functional_call`` swaps float64 copies into the module's attributes and
    swaps the originals back: two evaluations of one module at once (threads
    calling ``predict``) would restore each other's copies, leaving a float32
    network with float64 tensors that are no longer its parameters.
    """
    with _EVALUATION_LOCKS_GUARD:
        return _EVALUATION_LOCKS.setdefault(module, threading.Lock())


def _eval_scores(module, batches, device, dtype=torch.float64):
    """Eval-mode scores of the input ``batches`` (tensors) computed in ``dtype``.

    Float64 by default, whatever the training dtype: in float32, BLAS picks
    its blocking by the batch size, so a sample's score would change (~1e-7)
    with the samples that share its batch; float64 also holds products over
    many levels that overflow float32. The module runs on copies of its
    floating parameters and buffers in ``dtype`` (``functional_call``), which
    costs far less than copying the module, or on its own where they already
    are in ``dtype``; one evaluation of a module runs at a time.
    """
    with _evaluation_lock(module), torch.no_grad():
        module.eval()
        tensors = [*module.named_parameters(), *module.named_buffers()]
        if all(tensor.dtype == dtype for _, tensor in tensors if tensor.is_floating_point()):
            forward = module
        else:
            state = {name: tensor.to(dtype) if tensor.is_floating_point() else tensor
                     for name, tensor in tensors}
            forward = functools.partial(functional_call, module, state)
        scores = [forward(batch.to(device=device, dtype=dtype)).cpu() for batch in batches]
    return torch.cat(scores).double().numpy()


def born_probabilities(scores):
    """Rows of ``scores**2`` normalised to sum 1; a row of zeros is uniform."""
    # Dividing by the largest score first keeps squares in range.
    peak = np.abs(scores).max(axis=1, keepdims=True)
    weights = (scores / np.where(peak > 0, peak, 1.0)) ** 2
    weights[peak[:, 0] == 0] = 1.0
    return weights / weights.sum(axis=1, keepdims=True)


def _check_dtype(name, value):
    try:
        # np.dtype(None) is float64: None is not a choice, though.
        dtype = None if value is None else np.dtype(value)
    except TypeError:
        dtype = None
    if dtype not in DTYPES:
        raise ValueError(f"{name} must be np.float32 or np.float64, got {value!r}.")


def _check_device(name, value):
    # Whether CUDA is there is checked when training starts: skqcnn.load
    # validates a CUDA model's parameters on a machine without CUDA.
    resolve_device(value, require_available=False)


def _check_verbose(name, value):
    # skorch reads any int >= 0; True is the common spelling of 1.
    if not isinstance(value, (bool, np.bool_)):
        Interval(numbers.Integral, 0)(name, value)


def _check_track_entanglement(name, value):
    # The form only: partitions are resolved against the fitted layout when
    # the tracker binds.
    if value is not None and not isinstance(value, (bool, np.bool_)):
        labelled_partitions(value)


def _check_callbacks(name, value):
    if value is None:
        return
    if not isinstance(value, (list, tuple)):
        raise TypeError(
            f"{name} must be a list of skorch callbacks or (name, callback) pairs, "
            f"got {value!r}."
        )
    for item in value:
        callback_name, callback = _named_callback(item)
        if not isinstance(callback, Callback) or not (
            callback_name is None or isinstance(callback_name, str)
        ):
            raise TypeError(
                f"{name} must hold skorch callbacks or (name, callback) pairs, got {item!r}."
            )


def _named_callback(item):
    return item if isinstance(item, tuple) and len(item) == 2 else (None, item)


def _check_accelerator(name, value):
    if value is not None and not (hasattr(value, "prepare") and hasattr(value, "unwrap_model")):
        raise TypeError(f"{name} must be an accelerate.Accelerator or None, got {value!r}.")


def _check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}.")


_MONTE_CARLO_OPTIONS = ("n_chains", "n_temperatures", "beta_min", "jumps", "burn_in",
                        "thinning", "batch_size")


def _monte_carlo_options(options):
    """The sampler's extra keywords, checked by name here and by value there."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(
            f"monte_carlo_options must be a dict or None, got {options!r}.")
    unknown = sorted(set(options) - set(_MONTE_CARLO_OPTIONS))
    if unknown:
        raise ValueError(
            f"monte_carlo_options has unknown keys {unknown}; use {list(_MONTE_CARLO_OPTIONS)}.")
    return dict(options)


def _hashable(value):
    try:
        hash(value)
    except TypeError:
        return False
    return True


class NetworkClassifierBase(ClassifierMixin, BaseEstimator, metaclass=ABCMeta):
    """Shared ``fit``/``predict`` of the skqcnn classifiers.

    Subclasses list every hyperparameter in their own ``__init__`` signature
    (scikit-learn reads it), store their family's parameters and pass the
    common ones on here; they define :meth:`_build_module`. Data validation,
    input scaling, training through skorch and prediction live here.

    ``_fitted_state`` maps every fitted attribute that :func:`skqcnn.load`
    restores to the type it must have; a subclass that sets more fitted
    attributes extends it (``{**Base._fitted_state, "name_": type}``). The
    network itself is rebuilt by :meth:`_initialized_net`.

    ``_parameter_constraints`` maps every constructor parameter to its check
    (see :mod:`skqcnn._validation`); a subclass merges this table into its
    own (``{**Base._parameter_constraints, "name": check}``). ``fit`` checks
    them all before it reads the data.
    """

    # Peak learning rate per loss when lr=None (resolved into lr_ by fit).
    _default_lr = {"square": 0.01, "cross_entropy": 0.01}
    # Epochs when max_epochs=None (resolved into max_epochs_ by fit).
    _default_epochs = 40

    # Most samples per batch of the float64 evaluation behind predict, score
    # and the check after training, whatever the training batch_size: in 32s
    # the q-CNN spent as long in Python per batch as in arithmetic (a q-CNN's
    # check after a fit on the digits took 54 ms in 32s, 11 ms in 256s and
    # 9 ms in one batch). Large inputs get fewer, so that a batch holds at
    # most _EVALUATION_INPUT_VALUES input values (32 MB in float64).
    _evaluation_batch_size = 512
    _EVALUATION_INPUT_VALUES = 2**22

    # device_ is not listed: skqcnn.load decides where the network lives.
    _fitted_state = {
        "n_features_in_": numbers.Integral,
        "feature_names_in_": np.ndarray,
        "classes_": np.ndarray,
        "input_min_": numbers.Real,
        "input_max_": numbers.Real,
        "local_dim_": numbers.Integral,
        "lr_": numbers.Real,
        "max_epochs_": numbers.Integral,
        "_input_shape": (tuple, type(None)),
        "_fit_params": dict,
    }

    # Hyperparameters a warm start may change. The others shaped the network,
    # its optimizer, its data or its callbacks, which a warm start continues
    # as they are (_fit_params holds their values of the first fit).
    _RESUMABLE_PARAMS = frozenset({"max_epochs", "warm_start", "verbose", "accelerator",
                                   "device", "callbacks", "random_state"})

    _parameter_constraints = {
        "representation": Options(REPRESENTATIONS),
        "n_freq": Interval(numbers.Integral, 1),
        "loss": Options(LOSSES),
        "optimizer": Options(OPTIMIZERS),
        "lr": Interval(numbers.Real, 0, closed_low=False, allow_none=True),
        "weight_decay": Interval(numbers.Real, 0),
        "batch_size": Interval(numbers.Integral, 1),
        "max_epochs": Interval(numbers.Integral, 1, allow_none=True),
        "early_stopping": boolean,
        "validation_fraction": Interval(numbers.Real, 0, 1, closed_low=False),
        "n_iter_no_change": Interval(numbers.Integral, 1),
        "track_entanglement": _check_track_entanglement,
        "track_every": Interval(numbers.Integral, 1),
        "callbacks": _check_callbacks,
        "warm_start": boolean,
        "accelerator": _check_accelerator,
        "compile": boolean,
        "device": _check_device,
        "dtype": _check_dtype,
        "random_state": random_state,
        "verbose": _check_verbose,
    }

    def __init__(self, *, representation, n_freq, loss, optimizer, lr, weight_decay,
                 batch_size, max_epochs, early_stopping, validation_fraction,
                 n_iter_no_change, track_entanglement, track_every, callbacks, warm_start,
                 accelerator, compile, device, dtype, random_state, verbose):
        self.representation = representation
        self.n_freq = n_freq
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.track_entanglement = track_entanglement
        self.track_every = track_every
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.accelerator = accelerator
        self.compile = compile
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    @abstractmethod
    def _build_module(self, n_features, local_dim, n_classes, generator):
        """Return the torch network, its initial weights drawn from ``generator``.

        The network maps features of shape (batch, n_features, local_dim) to
        scores (batch, n_classes). The hyperparameters are valid already;
        the checks that need ``n_features`` and the fitted attributes
        describing the layout belong here.
        """

    def _build_local_basis(self, n_features):
        """The torch module mapping scaled inputs to per-site local vectors."""
        return LocalBasis(self.representation, self.n_freq)

    def _flatten_input(self, X, fitting):
        """Flatten 3-D input ``(n_samples, a, b)`` for estimators that take it.

        Fitting records the sample shape in ``_input_shape`` (None for 2-D
        input), which :meth:`_shape_from_input` hands to the layout; at
        predict time a 3-D input must have the fitted sample shape.
        """
        if isinstance(X, (list, tuple)):
            X = np.asarray(X)
        takes_3d = self._input_shape_param is not None and getattr(X, "ndim", 2) == 3
        if fitting:
            self._input_shape = tuple(X.shape[1:]) if takes_3d else None
        if not takes_3d:
            return X
        if not fitting:
            check_is_fitted(self)
            name, fitted = self._input_shape_param, self._fitted_input_shape()
            if tuple(X.shape[1:]) != fitted:
                raise ValueError(
                    f"X holds samples of shape {tuple(X.shape[1:])}, but this estimator was "
                    f"fitted with {name}_={fitted}; pass samples of shape {fitted} or "
                    f"(n_samples, {math.prod(fitted)}) arrays."
                )
        return X.reshape(X.shape[0], -1)

    #: The parameter that a 3-D input's sample shape stands for; None: 2-D input only.
    _input_shape_param = None

    def _fitted_input_shape(self):
        """The fitted value of ``_input_shape_param``, e.g. ``image_shape_``."""
        return getattr(self, f"{self._input_shape_param}_")

    def _shape_from_input(self, given):
        """``given`` (the shape parameter), or the sample shape of 3-D training input."""
        shape = getattr(self, "_input_shape", None)
        if shape is None:
            return given
        if given is not None and tuple(given) != shape:
            raise ValueError(
                f"{self._input_shape_param}={given!r}, but X holds samples of shape {shape}; "
                f"pass {self._input_shape_param}=None to use the shape of X."
            )
        return shape

    def _validate_common_params(self):
        """Check every hyperparameter against the table; return the torch dtype."""
        validate_parameters(self)
        if self.compile and self.accelerator is not None:
            raise ValueError(
                "compile=True does not combine with accelerator=; compile through "
                "Accelerate instead: Accelerator(dynamo_backend='inductor')."
            )
        return DTYPES[np.dtype(self.dtype)]

    def _scale_inputs(self, X):
        """Affine map into the basis domain, clipped to the training range.

        The domain is the built basis's, not the ``representation``
        parameter's, which ``set_params`` may have changed since; skorch
        holds the built module as ``module`` until training initialises it.
        """
        module = getattr(self.net_, "module_", self.net_.module)
        low, high = basis_domain(module.basis.representation)
        # Halved, so that max - min stays finite for inputs near float64's limits.
        span = self.input_max_ / 2 - self.input_min_ / 2
        unit = np.clip((X / 2 - self.input_min_ / 2) / (span if span > 0 else 1.0), 0.0, 1.0)
        return (low + (high - low) * unit).astype(self._numpy_dtype(), copy=False)

    def _numpy_dtype(self):
        return np.dtype(self.dtype)

    def fit(self, X, y):
        """Fit the network on ``X`` (n_samples, n_features) and labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Dense, finite inputs. They are mapped into the basis domain by an
            affine map fitted here (``input_min_``, ``input_max_``).
        y : array-like of shape (n_samples,)
            Class labels; at least two classes.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        torch_dtype = self._validate_common_params()
        resolve_device(self.device)
        resume = bool(self.warm_start) and self.__sklearn_is_fitted__()
        if resume:
            self._check_unchanged_params()
        X = self._flatten_input(X, fitting=not resume)
        if resume and getattr(X, "ndim", 2) == 2 and np.shape(X)[1] != self.n_features_in_:
            raise ValueError(
                f"warm_start=True continues training the network fitted on "
                f"{self.n_features_in_} features; X has {np.shape(X)[1]}. Set "
                f"warm_start=False to start anew."
            )
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2,
                             reset=not resume)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if resume and not np.array_equal(encoder.classes_, self.classes_):
            raise ValueError(
                f"warm_start=True continues training on the classes of the first fit, "
                f"{self.classes_.tolist()}; got {encoder.classes_.tolist()}. Set "
                f"warm_start=False to start anew."
            )
        if encoder.classes_.size < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes in y; got 1 class "
                f"({encoder.classes_[0]!r})."
            )
        y_encoded = encoder.transform(y).astype(np.int64)
        if self.early_stopping:
            self._check_validation_split(y_encoded, encoder.classes_.size)
        if resume:
            self._resume_training(X, y_encoded)
            return self
        try:
            self._train_new(X, y_encoded, encoder.classes_, torch_dtype)
        except BaseException:
            # A failed fit leaves no half-trained network that could predict NaN.
            self._discard_network()
            raise
        return self

    def _check_validation_split(self, y_encoded, n_classes):
        """A ValueError naming validation_fraction where the stratified split cannot be made."""
        n_valid = math.ceil(self.validation_fraction * y_encoded.size)
        n_train = y_encoded.size - n_valid
        smallest = int(np.bincount(y_encoded).min())
        # As scikit-learn's StratifiedShuffleSplit, which skorch's ValidSplit uses.
        if min(n_valid, n_train) < n_classes or smallest < 2:
            raise ValueError(
                f"early_stopping=True holds out validation_fraction="
                f"{self.validation_fraction} of the {y_encoded.size} samples, stratified: "
                f"{n_valid} for validation and {n_train} for training, and each needs at "
                f"least one sample of each of the {n_classes} classes (the rarest has "
                f"{smallest}). Raise validation_fraction, give more samples, or set "
                f"early_stopping=False."
            )

    def _fixed_params(self):
        """The hyperparameters a warm start must find as the first fit left them.

        Copies of the plain values only (numbers, strings, arrays and
        containers of them), which the model's file can hold; others, such as
        a torch mask among the tracked partitions, go unchecked.
        """
        fixed = {name: copy.deepcopy(value)
                 for name, value in self.get_params(deep=False).items()
                 if name not in self._RESUMABLE_PARAMS and _is_plain(value)}
        fixed["dtype"] = np.dtype(self.dtype).name
        return fixed

    def _changed_fixed_params(self):
        """``"name=first -> now"`` for each fixed hyperparameter changed since the fit."""
        # Files saved before _fit_params existed carry no record to compare.
        first = getattr(self, "_fit_params", None)
        if first is None:
            return []
        return [f"{name}={first[name]!r} -> {value!r}"
                for name, value in self._fixed_params().items()
                if name in first and not _same_value(value, first[name])]

    def _check_unchanged_params(self):
        """A ValueError, before anything is touched, if a warm start would ignore a change."""
        changed = self._changed_fixed_params()
        if changed:
            raise ValueError(
                f"warm_start=True continues the fitted network, which these "
                f"hyperparameters shaped; they changed since: {'; '.join(changed)}. Set them "
                f"back, or set warm_start=False to fit anew. A warm start may change only "
                f"{sorted(self._RESUMABLE_PARAMS)}."
            )

    def _train_new(self, X, y_encoded, classes, torch_dtype):
        # First, so that an interrupted fit resumes against them too.
        self._fit_params = self._fixed_params()
        self.classes_ = classes
        self.input_min_ = float(X.min())
        self.input_max_ = float(X.max())
        self.device_ = resolve_device(self.device)
        self.lr_ = self._resolve_lr()
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        # Set before training: the trackers analyse this estimator while the net trains.
        self.net_ = self._untrained_skorch_net(X.shape[1], torch_dtype, seed)
        self.net_.fit(self._scale_inputs(X), y_encoded)
        self._check_trained_scores(X, y_encoded)
        if self.accelerator is not None:
            self._release_accelerator()
            self.device_ = str(module_device(self.net_.module_))

    def _check_trained_scores(self, X, y_encoded):
        """Training that ends with finite weights can still overflow the scores.

        The same scores then tell whether the fit learnt anything
        (:class:`~skqcnn.callbacks.NotLearningCheck`, without a second pass
        over the data). They are computed in the training dtype, and only the
        rows that are not finite there again in float64: the check needs
        finite scores and a loss, not float64's last digits, and the float64
        pass took 0.12 s of a 3 s default ConvAC fit on the digits (0.09 s
        in float32).
        """
        try:
            # X is fit's validated array: validating it again against the
            # feature names of a DataFrame would warn that it has none.
            scores = self._validated_scores(X, dtype=DTYPES[np.dtype(self.dtype)])
        except ValueError as error:
            # Only rows not finite in float64 raise, whatever the training
            # dtype, so the weights themselves are too large: a smaller step
            # is the fix.
            raise ValueError(
                f"The scores on the training data became non-finite after training "
                f"({error}) Lower the learning rate (lr={self.lr_}) or max_epochs "
                f"(max_epochs={self.max_epochs_})."
            ) from None
        warn_if_not_learning(self.net_, scores, y_encoded, stacklevel=4)

    def _untrained_skorch_net(self, n_features, torch_dtype, seed, resolve_max_epochs=True):
        """The untrained skorch net; sets ``local_dim_`` and the layout attributes.

        Initial weights come from a generator of this fit's own, seeded with
        ``seed``: fits in parallel threads share no random stream, and torch's
        global generator is left as the user had it. ``max_epochs_`` is
        resolved anew unless ``resolve_max_epochs`` is False (a loaded
        network keeps the length of the schedule it was trained on).
        """
        generator = torch.Generator().manual_seed(seed)
        basis = self._build_local_basis(n_features)
        self.local_dim_ = basis.local_dim
        network = self._build_module(n_features, self.local_dim_, self.classes_.size,
                                      generator)
        if resolve_max_epochs:
            self.max_epochs_ = self._resolve_max_epochs()
        return self._make_skorch_net(ScoredNetwork(basis, network), torch_dtype, seed)

    def _resolve_lr(self):
        """The peak learning rate: ``lr``, or where it is None the family's for ``loss``."""
        return self._default_lr[self.loss] if self.lr is None else self.lr

    def _resolve_max_epochs(self):
        """Training epochs: ``max_epochs``, or where it is None the family's default.

        Called once the network is built, so that a family's default may
        depend on the fitted input shape.
        """
        return self._default_max_epochs() if self.max_epochs is None else self.max_epochs

    def _default_max_epochs(self):
        return self._default_epochs

    def _initialized_net(self, seed):
        """The hook of :func:`skqcnn.load`: an initialized net to load a file into.

        Called on an estimator whose hyperparameters, ``_fitted_state``
        attributes and ``device_`` are set, it validates the hyperparameters
        and returns the skorch net ``fit`` would build for them, initialized
        (module, optimizer, callbacks) but with untrained weights that the
        file then replaces. Torch's global generator does not advance.

        Parameters
        ----------
        seed : int
            The training seed the file records (shuffling and validation split).

        Returns
        -------
        net : skorch.NeuralNet
        """
        torch_dtype = self._validate_common_params()
        if not hasattr(self, "lr_"):
            # Saved before lr_ existed, when lr had no None: the rule gives lr.
            self.lr_ = self._resolve_lr()
        # A file saved before max_epochs_ existed gets it from the rule; a
        # newer one keeps the length of the schedule it was trained on.
        net = self._untrained_skorch_net(self.n_features_in_, torch_dtype, seed,
                                         resolve_max_epochs=not hasattr(self, "max_epochs_"))
        net.initialize()
        return net

    def _release_accelerator(self):
        """Unwrap what Accelerate prepared, so the estimator pickles and clones.

        skorch unwraps the module after training; the optimizer, the LR
        scheduler's reference to it and the accelerator's own registry of
        prepared objects are left to us.
        """
        net = self.net_
        net.optimizer_ = getattr(net.optimizer_, "optimizer", net.optimizer_)
        for _, callback in net.callbacks_:
            if isinstance(callback, LRScheduler):
                callback.lr_scheduler_.optimizer = net.optimizer_
        self.accelerator.free_memory()

    def _resume_training(self, X, y_encoded):
        max_epochs = self._resolve_max_epochs()
        remaining = max_epochs - len(self.net_.history)
        if remaining <= 0:
            return
        # A failed resume gives back the model it started from, not a
        # half-trained one (an Accelerate net holds its accelerator, which
        # does not copy: that model is discarded). The net's trackers refer
        # to this estimator, which the copy keeps.
        before = (None if self.accelerator is not None else
                  (copy.deepcopy(self.net_, {id(self): self}), self.max_epochs_))
        try:
            self._train_further(X, y_encoded, max_epochs, remaining)
        except BaseException:
            self._discard_network()
            if before is not None:
                self.net_, self.max_epochs_ = before
            raise

    def _train_further(self, X, y_encoded, max_epochs, remaining):
        self.max_epochs_ = self.net_.max_epochs = max_epochs
        schedule = dict(self.net_.callbacks_)["lr_schedule"]
        if schedule.T_max != self.max_epochs_:
            # A raised max_epochs stretches the cosine schedule to the new
            # length; the scheduler resumes from the optimizer's current rate,
            # so that rate is set to the stretched schedule's value here.
            schedule.set_params(T_max=self.max_epochs_)
            done = len(self.net_.history)
            for group in self.net_.optimizer_.param_groups:
                group["lr"] = (group["initial_lr"]
                               * (1 + math.cos(math.pi * done / self.max_epochs_)) / 2)
        if self.accelerator is not None:
            self.net_.accelerator = self.accelerator
            self.net_._initialize_accelerator()
        self.net_.partial_fit(self._scale_inputs(X), y_encoded, epochs=remaining)
        self._check_trained_scores(X, y_encoded)
        if self.accelerator is not None:
            self._release_accelerator()

    def _discard_network(self):
        # entanglement_history_ is read from the net's trackers: it goes with the net.
        if hasattr(self, "net_"):
            del self.net_

    def _default_tracked_partitions(self):
        """Partitions that ``track_entanglement=True`` records."""
        return self._resolved_default_partition()

    def _user_callbacks(self):
        """Copies of the ``callbacks`` and ``track_entanglement`` callbacks, bound."""
        named = []
        track = self.track_entanglement
        if isinstance(track, np.bool_):
            track = bool(track)
        if track is not None and track is not False:
            partitions = self._default_tracked_partitions() if track is True else track
            named.append(("entanglement_tracker",
                          EntanglementTracker(partitions, every=self.track_every)))
        for item in self.callbacks or ():
            name, callback = _named_callback(item)
            named.append((name or type(callback).__name__, clone(callback, safe=False)))
        tracked = {}
        for name, callback in named:
            if isinstance(callback, EntanglementTracker):
                # Classes are resolved here, once; the tracker sees only labels and a
                # measuring function, never the estimator's internals.
                labels = self.classes_[self._class_indices(callback.classes)]
                callback.bind(functools.partial(self.entanglement_entropy, classes=labels),
                              labels.tolist())
                for label in callback.labelled_partitions_:
                    if label in tracked:
                        # Their rows would be indistinguishable in entanglement_history_.
                        raise ValueError(
                            f"Two entanglement trackers record the partition label "
                            f"{label!r} (callbacks {tracked[label]!r} and {name!r}), whose "
                            f"rows entanglement_history_ could not tell apart. Label one "
                            f"tracker's partitions with a dict {{label: partition}}, or "
                            f"track the partition once."
                        )
                    tracked[label] = name
        return named

    @property
    def entanglement_history_(self):
        """The rows of the net's entanglement trackers, in the order of the trackers.

        Read from the trackers each time, so a fitted, resumed or loaded
        estimator has no second copy to keep in step. Absent (``hasattr`` is
        False) when the estimator is not fitted or was fitted without tracking.
        """
        net = getattr(self, "net_", None)
        trackers = [] if net is None else [callback for _, callback in net.callbacks_
                                           if isinstance(callback, EntanglementTracker)]
        if not trackers:
            raise AttributeError(
                f"{type(self).__name__} has no entanglement_history_: it is not fitted, or "
                f"was fitted without entanglement tracking (track_entanglement=)."
            )
        return EntanglementHistory(row for tracker in trackers for row in tracker.history_)

    def _make_skorch_net(self, module, torch_dtype, seed):
        callbacks = [
            ("finite_loss", FiniteLossGuard()),
            ("lr_schedule", LRScheduler(
                policy=torch.optim.lr_scheduler.CosineAnnealingLR,
                T_max=self.max_epochs_,
            )),
            ("epoch_shuffle", EpochSeededShuffle(seed)),
        ]
        train_split = None
        if self.early_stopping:
            train_split = ValidSplit(self.validation_fraction, stratified=True,
                                     random_state=seed)
            callbacks.append(("early_stopping", EarlyStopping(
                monitor="valid_loss", patience=self.n_iter_no_change, load_best=True,
            )))
        # After early stopping has restored the best weights.
        callbacks.append(("batchnorm_recalibration", BatchNormRecalibration()))
        callbacks.extend(self._user_callbacks())
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        net_kwargs = {"optimizer__weight_decay": self.weight_decay}
        if self.accelerator is None and torch.device(self.device_).type in FUSED_OPTIMIZER_DEVICES:
            # One kernel per step for every parameter: a default q-CNN fit on
            # the digits took half the CPU time of foreach's.
            net_kwargs["optimizer__fused"] = True
        else:
            # One kernel per operation for all parameters, not one per tensor.
            net_kwargs["optimizer__foreach"] = True
        if self.optimizer == "sgd":
            net_kwargs["optimizer__momentum"] = 0.9
        net_class = CompiledTrainingNet if self.compile else TrainingNet
        if self.accelerator is None:
            net_kwargs.update(device=self.device_, iterator_train=ShuffledBatches)
            if not self.verbose:
                # skorch's PrintLog tabulates every epoch, printed or not.
                net_kwargs["callbacks__print_log"] = None
        else:
            from ._accelerate import AcceleratedNeuralNet

            net_class = AcceleratedNeuralNet
            # PrintLog prints through any sink but the builtin print, whatever
            # verbose says; Accelerate's print speaks for the main process only.
            sink = self.accelerator.print if self.verbose else print
            net_kwargs.update(accelerator=self.accelerator, device=None,
                              callbacks__print_log__sink=sink)
        return net_class(
            module=module.to(torch_dtype),
            criterion=LOSSES[self.loss],
            optimizer=OPTIMIZERS[self.optimizer],
            lr=self.lr_,
            max_epochs=self.max_epochs_,
            batch_size=int(self.batch_size),
            train_split=train_split,
            callbacks=callbacks,
            dataset=BatchFetchDataset,
            iterator_train__shuffle=True,
            iterator_train__generator=torch.Generator(),
            iterator_train__collate_fn=collate_fetched_batch,
            # A loader without a generator draws its base seed from the global one.
            iterator_valid__generator=torch.Generator(),
            iterator_valid__collate_fn=collate_fetched_batch,
            verbose=self.verbose,
            **net_kwargs,
        )

    @property
    def history_(self):
        """skorch's training history: one row per epoch, with losses."""
        check_is_fitted(self)
        return self.net_.history

    def __sklearn_is_fitted__(self):
        return hasattr(self, "net_")

    def __setstate__(self, state):
        # skorch maps CUDA tensors to the CPU when unpickled without CUDA.
        super().__setstate__(state)
        if hasattr(self, "net_"):
            self.device_ = str(module_device(self.net_.module_))

    def _scores(self, X):
        check_is_fitted(self)
        X = validate_data(self, self._flatten_input(X, fitting=False), dtype=np.float64,
                          reset=False)
        return self._validated_scores(X)

    def _validated_scores(self, X, dtype=torch.float64):
        """Scores of an array that ``fit`` or :meth:`_scores` validated.

        Evaluated in ``dtype``; rows that are not finite in a narrower dtype
        are evaluated again in float64, and rows not finite in float64 come
        from the log-amplitudes where the network has them.
        """
        module = self.net_.module_
        inputs = torch.as_tensor(self._scale_inputs(X))
        device = module_device(module)
        batch_size = max(1, min(self._evaluation_batch_size,
                                self._EVALUATION_INPUT_VALUES // inputs.shape[1]))
        scores = _eval_scores(module, inputs.split(batch_size), device, dtype)
        overflow = ~np.isfinite(scores).all(axis=1)
        if overflow.any() and dtype != torch.float64:
            scores[overflow] = self._validated_scores(X[overflow])
            return scores
        if overflow.any() and hasattr(module.network, "log_forward"):
            # Products over many levels can leave even float64's range: those
            # rows come from the log-amplitudes, divided by their largest
            # score, which keeps every ratio predict and predict_proba use.
            with _evaluation_lock(module):
                wide = copy.deepcopy(module)
            wide = wide.double().eval()
            with torch.no_grad():
                batch = inputs[torch.as_tensor(overflow)].to(device=device, dtype=torch.float64)
                log_abs, sign = (t.cpu().numpy()
                                 for t in wide.network.log_forward(wide.basis(batch)))
            scores[overflow] = sign * np.exp(log_abs - log_abs.max(axis=1, keepdims=True))
        if not np.isfinite(scores).all():
            raise ValueError(
                f"The network's scores are not finite in float64 for "
                f"{int((~np.isfinite(scores).all(axis=1)).sum())} of {len(scores)} samples; "
                f"the weights or these inputs are outside the range it can evaluate."
            )
        return scores

    def decision_function(self, X):
        """Log-magnitudes ``log|alpha_y|`` of the network's amplitudes.

        Monotone in the Born-rule probabilities, so the largest one is the
        class :meth:`predict` returns. The signed amplitudes themselves are
        :meth:`amplitudes`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            ``log|alpha_y(x)|``, a zero amplitude counted as float64's
            smallest normal number, so that every score is finite; a row
            whose amplitudes leave float64's range is shifted by its largest
            (as :meth:`amplitudes` scales it). For two
            classes, scikit-learn expects one column: it is
            ``log|alpha_1| - log|alpha_0|``, half the log-odds of
            :meth:`predict_proba`, positive when ``classes_[1]`` is predicted.
        """
        scores = self._scores(X)
        log_abs = np.log(np.maximum(np.abs(scores), np.finfo(np.float64).tiny))
        if scores.shape[1] == 2:
            return log_abs[:, 1] - log_abs[:, 0]
        return log_abs

    def amplitudes(self, X):
        """The network's amplitudes ``alpha_y(x) = <x|Psi_y>``, with their signs.

        Evaluated in float64 whatever the training ``dtype``. The square of
        an amplitude is its class's unnormalised Born-rule weight; see
        :ref:`entanglement` for the states ``Psi_y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        amplitudes : ndarray of float64 of shape (n_samples, n_classes)
            Columns in the order of ``classes_``. A row whose amplitudes
            leave float64's range is divided by its largest magnitude, which
            keeps their ratios.
        """
        return self._scores(X)

    def predict_proba(self, X):
        """Born-rule probabilities ``alpha_y**2 / sum_y' alpha_y'**2``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to 1. A sample whose scores are all zero gets the uniform
            distribution.
        """
        return born_probabilities(self._scores(X))

    def predict(self, X):
        """Class of the largest ``|alpha_y|``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        scores = self._scores(X)
        return self.classes_[np.argmax(np.abs(scores), axis=1)]

    # Entanglement of the class states, one interface for every family. A
    # family supplies only what differs: its site geometry (``_site_geometry``,
    # ``_int_partitions``), its exact path (``_exact_spectra`` and, when it
    # has a faster one, ``_exact_entropies``) and its rank bound
    # (``_rank_bound``). Monte Carlo samples ``net_.module_.network`` on
    # one-hot site vectors, which every family's network accepts.

    default_partition = "left_right"
    """Subsystem A when ``partition=None``: the first half of the sites.

    On an image of one column (``W == 1``), which has no left and right half,
    ``partition=None`` takes the top half (``"up_down"``) instead."""

    _int_partitions = False

    def _site_geometry(self):
        """Shape of the sites that partitions refer to."""
        return self.image_shape_

    @abstractmethod
    def _exact_spectra(self, in_a, classes, max_cut_dim):
        """Exact Schmidt spectra of ``classes`` (row indices) across the site mask.

        Raises :class:`ExactUnavailable` when the exact path cannot run here.
        """

    @abstractmethod
    def _rank_bound(self, in_a):
        """``(bound, cut)``: the min-cut Schmidt-rank bound and a list of CutBond."""

    def _exact_entropies(self, in_a, alpha, classes, max_cut_dim):
        """Exact entropies in nats; raises :class:`ExactUnavailable` like the spectra."""
        return np.array([entropy_from_spectrum(p, alpha)
                         for p in self._exact_spectra(in_a, classes, max_cut_dim)])

    def _renyi2_route(self):
        """What ``entanglement_entropy(..., alpha=2)`` gives where exact methods stop."""
        return "a Monte Carlo Renyi-2 estimate with its standard error (return_std=True)"

    def _partition_mask(self, partition):
        """Boolean mask over the sites for ``partition`` (None: the default)."""
        check_is_fitted(self)
        geometry = self._site_geometry()
        if math.prod(geometry) < 2:
            raise ValueError(
                f"{type(self).__name__} was fitted on a single site (geometry {geometry}): "
                f"entanglement needs at least two sites to split into A and B."
            )
        if partition is None:
            partition = self._resolved_default_partition()
        return partition_mask(partition, geometry, int_suffix=self._int_partitions)

    def _resolved_default_partition(self):
        """``default_partition``, or ``"up_down"`` where the sites form a single column."""
        geometry = self._site_geometry()
        if self.default_partition == "left_right" and len(geometry) == 2 and geometry[1] == 1:
            # A single column has no left and right half: split it top and bottom.
            return "up_down"
        return self.default_partition

    def _class_indices(self, classes):
        """Row indices of ``classes`` (labels from ``classes_``); None = all."""
        # classes_ is all this needs: the net binds its trackers before net_ exists.
        check_is_fitted(self, "classes_")
        if classes is None:
            return np.arange(self.classes_.size)
        rows = {label: row for row, label in enumerate(self.classes_.tolist())}
        wanted = np.atleast_1d(np.asarray(classes, dtype=object))
        # Labels are compared as given: casting "a" to int labels would fail.
        unknown = ([c for c in wanted.tolist() if not _hashable(c) or c not in rows]
                   if wanted.ndim == 1 else [classes])
        if unknown or wanted.size == 0:
            raise ValueError(
                f"classes must be a non-empty list of labels from classes_ "
                f"{self.classes_.tolist()}; unknown: {unknown}."
            )
        return np.array([rows[c] for c in wanted.tolist()], dtype=np.int64)

    def _not_exact(self, what, why):
        return ValueError(
            f"{what} cannot be computed exactly here: {why} "
            f"`entanglement_entropy(partition, alpha=2)` (method='auto') gives "
            f"{self._renyi2_route()}."
        )

    def entanglement_entropy(self, partition=None, *, alpha=2, classes=None, base=None,
                             method="auto", n_samples=2000, random_state=None,
                             return_std=False, max_cut_dim=DEFAULT_MAX_CUT_DIM, verbose=0,
                             monte_carlo_options=None):
        """Entanglement entropy of each class's normalised network state.

        The state ``|Psi_y>`` is the network evaluated on one-hot basis
        vectors in place of the local features. Exact values are computed in
        float64: on the q-CNN from its folded tree network (the Schmidt
        spectrum when the minimum cut weighs at most ``max_cut_dim``; the
        replica trick for integer ``alpha >= 2`` at any cut); on the ConvAC
        and the deep RAC by enumerating all ``M**N`` amplitudes (``M**N <=
        2**22``), and for a one-layer RAC and a contiguous cut from its
        matrix-product form at any length. See :ref:`entanglement`.

        Parameters
        ----------
        partition : str, tuple, int, array-like of bool, array-like of int or None, \
default=None
            Subsystem A: ``"left_right"``, ``"up_down"``, ``"interleaved"``,
            ``"checkerboard"``, ``("block", size)``, an int ``k`` (deep RAC:
            the last ``k`` steps), a boolean mask of the site geometry's shape
            or ``(n_sites,)``, or a list of site indices. None means
            ``default_partition``.
        alpha : float, default=2
            Renyi order, ``>= 0``: 0 is the Hartley entropy (the logarithm of
            the number of non-zero Schmidt values; pass ``tol`` to
            :meth:`schmidt_spectrum` for a numerical rank), 1 von Neumann,
            ``np.inf`` the min-entropy. The default, Renyi-2, is the one
            order that every family answers at every size: exactly on the
            q-CNN (from its Schmidt spectrum, or by the replica trick where
            the cut is too heavy for it), by enumeration on small ConvACs and
            RACs, and by Monte Carlo, with a standard error, beyond them.
            Pass ``alpha=1`` for the von Neumann entropy where an exact
            method can run.
        classes : array-like or None, default=None
            Labels from ``classes_`` to analyse; None means all.
        base : float or None, default=None
            Logarithm base; None means natural logarithms (nats), 2 gives bits.
        method : {"auto", "exact", "monte_carlo"}, default="auto"
            ``"exact"`` raises a ValueError saying why when no exact method
            can run. ``"monte_carlo"`` estimates the Renyi-2 entropy
            (``alpha=2`` only) with the swap estimator on Metropolis samples
            of ``|Psi_y|^2``. ``"auto"`` is exact when possible, else Monte
            Carlo for ``alpha=2``, else a ValueError that says why exact
            methods cannot run and names the call that works.
        n_samples : int, default=2000
            Swap samples per class for Monte Carlo, at least 100.
        random_state : int, numpy.random.Generator or None, default=None
            Seeds the Monte Carlo chains. They draw on the network's device, so
            a seed repeats its estimate on that device; on CUDA it gives
            another stream, and another estimate, than on the CPU.
        return_std : bool, default=False
            Also return standard errors (zeros for exact values).
        max_cut_dim : int, default=4096
            q-CNN: largest minimum-cut weight (the Schmidt-rank bound) for
            which the spectrum is formed. Enumeration does not use it.
        verbose : int, default=0
            Progress of the Monte Carlo chains.
        monte_carlo_options : dict or None, default=None
            More keyword arguments of
            :func:`skqcnn.entanglement.renyi2_monte_carlo` (``n_chains``,
            ``n_temperatures``, ``beta_min``, ``jumps``, ``burn_in``,
            ``thinning``, ``batch_size``): what a
            :class:`~skqcnn.exceptions.MonteCarloConvergenceWarning` asks to
            raise. See :ref:`monte_carlo`.

        Returns
        -------
        entropies : ndarray of shape (n_classes,) or (len(classes),)
        std : ndarray of the same shape
            Only with ``return_std=True``.

        Examples
        --------
        >>> import numpy as np
        >>> from skqcnn import QCNNClassifier
        >>> X = np.random.default_rng(0).uniform(size=(40, 16))
        >>> clf = QCNNClassifier(max_epochs=1, random_state=0).fit(X, np.arange(40) % 2)
        >>> clf.entanglement_entropy().shape
        (2,)
        """
        check_is_fitted(self)
        alpha = positive_order(alpha)
        scale = log_base(base)
        if not isinstance(method, str) or method not in ENTROPY_METHODS:
            raise ValueError(f"method must be one of {ENTROPY_METHODS}, got {method!r}.")
        Interval(numbers.Integral, 100)("n_samples", n_samples)
        _check_flag("return_std", return_std)
        Interval(numbers.Integral, 1)("max_cut_dim", max_cut_dim)
        _check_verbose("verbose", verbose)
        options = _monte_carlo_options(monte_carlo_options)
        in_a = self._partition_mask(partition)
        indices = self._class_indices(classes)
        if method == "monte_carlo" and alpha != 2:
            raise ValueError(
                f"Monte Carlo estimates the Renyi-2 entropy only: method='monte_carlo' "
                f"needs alpha=2, got alpha={alpha:g}. The default method='auto' computes "
                f"other orders exactly where possible."
            )
        if method != "monte_carlo":
            try:
                entropies = self._exact_entropies(in_a, alpha, indices, max_cut_dim) / scale
            except ExactUnavailable as why:
                if method == "exact" or alpha != 2:
                    raise self._not_exact(f"The alpha={alpha:g} entropy", why) from None
            else:
                return (entropies, np.zeros_like(entropies)) if return_std else entropies
        estimate = renyi2_monte_carlo(self.net_.module_.network, in_a.size, self.local_dim_,
                                      in_a, n_samples, classes=indices,
                                      random_state=random_state, verbose=verbose,
                                      **options)
        entropies, std = estimate.entropy / scale, estimate.stderr / scale
        return (entropies, std) if return_std else entropies

    def schmidt_spectrum(self, partition=None, *, classes=None, tol=None,
                         max_cut_dim=DEFAULT_MAX_CUT_DIM):
        """Exact normalised squared Schmidt coefficients of each class state.

        Computed as in :meth:`entanglement_entropy`'s exact methods; there is
        no estimate of a whole spectrum, so beyond their limits a ValueError
        says why and names the entropy that can still be had.

        Parameters
        ----------
        partition : str, tuple, int, array-like of bool, array-like of int or None, \
default=None
            As in :meth:`entanglement_entropy`.
        classes : array-like or None, default=None
            Labels from ``classes_``; None means all.
        tol : float or None, default=None
            None returns the whole computed spectrum. A float in ``[0, 1)``
            drops the values at or below ``tol`` times the largest (``tol=0``
            the zeros only) and renormalises the rest to sum 1, as
            :func:`~skqcnn.entanglement.normalised_spectrum` does.
        max_cut_dim : int, default=4096
            As in :meth:`entanglement_entropy`.

        Returns
        -------
        spectra : list of ndarray of float64
            One array per class, descending, summing to 1.

        Examples
        --------
        >>> import numpy as np
        >>> from skqcnn import QCNNClassifier
        >>> X = np.random.default_rng(0).uniform(size=(40, 16))
        >>> clf = QCNNClassifier(max_epochs=1, random_state=0).fit(X, np.arange(40) % 2)
        >>> spectra = clf.schmidt_spectrum("up_down")
        >>> len(spectra), bool(abs(spectra[0].sum() - 1) < 1e-12)
        (2, True)
        """
        check_is_fitted(self)
        if tol is not None:
            Interval(numbers.Real, 0, 1)("tol", tol)
        Interval(numbers.Integral, 1)("max_cut_dim", max_cut_dim)
        in_a = self._partition_mask(partition)
        indices = self._class_indices(classes)
        try:
            spectra = self._exact_spectra(in_a, indices, max_cut_dim)
        except ExactUnavailable as why:
            raise self._not_exact("The Schmidt spectrum", why) from None
        if tol is None:
            return spectra
        return [normalised_spectrum(p, tol) for p in spectra]

    def schmidt_rank_bound(self, partition=None, *, return_cut=False):
        """Minimum-cut upper bound on the Schmidt rank of every class state.

        The rank of ``Psi_y`` matricised as A x B is at most the product of
        the bond dimensions crossed by any cut of its network that separates
        A from B (Levine et al., ICLR 2018). On the q-CNN the network is the
        folded tree; on the ConvAC and the deep RAC it is the duplicated tree
        of Levine et al. (PRL 2019), every copy of a site on its side. Pooling
        nodes are delta tensors and count once; bonds have the folded
        dimension (with the constant channel). Capped by ``M**|A|`` and
        ``M**|B|``. The bound holds for every class and every weight setting.

        Parameters
        ----------
        partition : str, tuple, int, array-like of bool, array-like of int or None, \
default=None
            As in :meth:`entanglement_entropy`.
        return_cut : bool, default=False
            Also return the bonds that a minimum cut crosses.

        Returns
        -------
        bound : int
            A Python int, exact however large.
        cut : list of skqcnn.entanglement.CutBond
            Only with ``return_cut=True``; the product of their ``dim`` is
            ``bound``. On the duplicated trees a bond's ``position`` is None
            (the cut is counted per layer, not located).

        Examples
        --------
        >>> import math
        >>> import numpy as np
        >>> from skqcnn import QCNNClassifier
        >>> X = np.random.default_rng(0).uniform(size=(40, 16))
        >>> clf = QCNNClassifier(max_epochs=1, random_state=0).fit(X, np.arange(40) % 2)
        >>> bound, cut = clf.schmidt_rank_bound(return_cut=True)
        >>> bound == math.prod(bond.dim for bond in cut)
        True
        """
        check_is_fitted(self)
        _check_flag("return_cut", return_cut)
        bound, cut = self._rank_bound(self._partition_mask(partition))
        return (bound, cut) if return_cut else bound

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags
