"""Machinery shared by every skqcnn estimator.

An estimator is a plain scikit-learn ``BaseEstimator`` that builds a skorch
``NeuralNet`` in ``fit`` and keeps it as ``net_``: hyperparameters stay plain
constructor arguments (so ``clone`` and grid searches see exactly what the user
passed) and are validated in ``fit``.
"""

import copy
import inspect
import math
import numbers
from abc import ABCMeta, abstractmethod

import numpy as np
import torch
from skorch import NeuralNet
from torch.func import functional_call
from skorch.callbacks import Callback, EarlyStopping, LRScheduler, ProgressBar
from skorch.dataset import ValidSplit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import Interval, Options, boolean, random_state, validate_parameters
from .callbacks import (
    BatchNormRecalibration,
    EntanglementHistory,
    EntanglementTracker,
    EpochSeededShuffle,
    FiniteLossGuard,
    NotLearningCheck,
    labelled_partitions,
)
from .nn._layers import REPRESENTATIONS, LocalBasis, basis_domain
from .nn._losses import LOSSES

OPTIMIZERS = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
}
DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


class ScoredNetwork(torch.nn.Module):
    """Local basis followed by a network: raw scaled inputs to scores alpha_y."""

    def __init__(self, basis, network):
        super().__init__()
        self.basis = basis
        self.network = network

    def forward(self, x):
        """Scores of shape (batch, n_classes)."""
        return self.network(self.basis(x))


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


def _module_device(module):
    return next(module.parameters()).device


def _float64_scores(module, inputs, device, batch_size):
    """Eval-mode scores of ``inputs`` computed in float64, batch by batch.

    Whatever the training dtype: in float32, BLAS picks its blocking by the
    batch size, so a sample's score would change (~1e-7) with the samples
    that share its batch; float64 also holds products over many levels that
    overflow float32. The module runs on float64 copies of its floating
    parameters and buffers (``functional_call``), which costs far less than
    copying the module.
    """
    module.eval()
    state = {name: tensor.double() if tensor.is_floating_point() else tensor
             for name, tensor in [*module.named_parameters(), *module.named_buffers()]}
    with torch.no_grad():
        scores = [functional_call(module, state, (batch.to(device=device,
                                                           dtype=torch.float64),)).cpu()
                  for batch in inputs.split(batch_size)]
    return torch.cat(scores).numpy()


def _check_dtype(name, value):
    try:
        dtype = np.dtype(value)
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


def _takes_generator(build_network):
    return "generator" in inspect.signature(build_network).parameters


class NetworkClassifierBase(ClassifierMixin, BaseEstimator, metaclass=ABCMeta):
    """Shared ``fit``/``predict`` of the skqcnn classifiers.

    Subclasses list every hyperparameter in their own ``__init__`` signature
    (scikit-learn reads it), store their family's parameters and pass the
    common ones on here; they define :meth:`_build_network`. Data validation,
    input scaling, training through skorch and prediction live here.

    ``_parameter_constraints`` maps every constructor parameter to its check
    (see :mod:`skqcnn._validation`); a subclass merges this table into its
    own (``{**Base._parameter_constraints, "name": check}``). ``fit`` checks
    them all before it reads the data.
    """

    _parameter_constraints = {
        "representation": Options(REPRESENTATIONS),
        "n_freq": Interval(numbers.Integral, 1),
        "loss": Options(LOSSES),
        "optimizer": Options(OPTIMIZERS),
        "lr": Interval(numbers.Real, 0, closed_low=False),
        "weight_decay": Interval(numbers.Real, 0),
        "batch_size": Interval(numbers.Integral, 1),
        "max_epochs": Interval(numbers.Integral, 1),
        "early_stopping": boolean,
        "validation_fraction": Interval(numbers.Real, 0, 1, closed_low=False),
        "n_iter_no_change": Interval(numbers.Integral, 1),
        "track_entanglement": _check_track_entanglement,
        "track_every": Interval(numbers.Integral, 1),
        "callbacks": _check_callbacks,
        "warm_start": boolean,
        "accelerator": _check_accelerator,
        "device": _check_device,
        "dtype": _check_dtype,
        "random_state": random_state,
        "verbose": _check_verbose,
    }

    def __init__(self, *, representation, n_freq, loss, optimizer, lr, weight_decay,
                 batch_size, max_epochs, early_stopping, validation_fraction,
                 n_iter_no_change, track_entanglement, track_every, callbacks, warm_start,
                 accelerator, device, dtype, random_state, verbose):
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
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    @abstractmethod
    def _build_network(self, n_features, local_dim, n_classes, generator):
        """Return the torch network, its initial weights drawn from ``generator``.

        The network maps features of shape (batch, n_features, local_dim) to
        scores (batch, n_classes). The hyperparameters are valid already;
        the checks that need ``n_features`` and the fitted attributes
        describing the layout belong here.
        """

    def _build_basis(self, n_features):
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
        return DTYPES[np.dtype(self.dtype)]

    def _scale_inputs(self, X):
        """Affine map into the basis domain, clipped to the training range."""
        low, high = basis_domain(self.representation)
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
        try:
            if resume:
                self._resume_training(X, y_encoded)
            else:
                self._train_new(X, y_encoded, encoder.classes_, torch_dtype)
        except BaseException:
            # A failed fit leaves no half-trained network that could predict NaN.
            self._discard_network()
            raise
        self._collect_entanglement_history()
        return self

    def _train_new(self, X, y_encoded, classes, torch_dtype):
        self.classes_ = classes
        self.input_min_ = float(X.min())
        self.input_max_ = float(X.max())
        self.device_ = resolve_device(self.device)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        # Set before training: the trackers analyse this estimator while the net trains.
        self.net_ = self._build_net(X.shape[1], torch_dtype, seed)
        self.net_.fit(self._scale_inputs(X), y_encoded)
        self._check_trained_scores(X)
        if self.accelerator is not None:
            self._release_accelerator()
            self.device_ = str(_module_device(self.net_.module_))

    def _check_trained_scores(self, X):
        """Training that ends with finite weights can still overflow the scores."""
        try:
            self._scores(X)
        except ValueError as error:
            # Scores are computed in float64 whatever the training dtype, so
            # the weights themselves are too large: a smaller step is the fix.
            raise ValueError(
                f"The scores on the training data became non-finite after training "
                f"({error}) Lower the learning rate (lr={self.lr}) or max_epochs "
                f"(max_epochs={self.max_epochs})."
            ) from None

    def _build_net(self, n_features, torch_dtype, seed):
        """The untrained skorch net; sets ``local_dim_`` and the layout attributes.

        Initial weights come from a generator of this fit's own, seeded with
        ``seed``: fits in parallel threads share no random stream, and torch's
        global generator is left as the user had it.
        """
        generator = torch.Generator().manual_seed(seed)
        basis = self._build_basis(n_features)
        self.local_dim_ = basis.local_dim
        build_args = (n_features, self.local_dim_, self.classes_.size)
        # The ConvAC's _build_network takes no generator until the ConvAC
        # rewrite lands; it then draws from the global generator.
        if _takes_generator(self._build_network):
            network = self._build_network(*build_args, generator=generator)
        else:
            network = self._build_network(*build_args)
        return self._make_net(ScoredNetwork(basis, network), torch_dtype, seed)

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
        remaining = self.max_epochs - len(self.net_.history)
        if remaining <= 0:
            return
        schedule = dict(self.net_.callbacks_)["lr_schedule"]
        if schedule.T_max != self.max_epochs:
            # A raised max_epochs stretches the cosine schedule to the new
            # length; the scheduler resumes from the optimizer's current rate,
            # so that rate is set to the stretched schedule's value here.
            schedule.set_params(T_max=self.max_epochs)
            done = len(self.net_.history)
            for group in self.net_.optimizer_.param_groups:
                group["lr"] = (group["initial_lr"]
                               * (1 + math.cos(math.pi * done / self.max_epochs)) / 2)
        if self.accelerator is not None:
            self.net_.accelerator = self.accelerator
            self.net_._initialize_accelerator()
        self.net_.partial_fit(self._scale_inputs(X), y_encoded, epochs=remaining)
        self._check_trained_scores(X)
        if self.accelerator is not None:
            self._release_accelerator()

    def _discard_network(self):
        for name in ("net_", "entanglement_history_"):
            if hasattr(self, name):
                delattr(self, name)

    def _default_tracked_partitions(self):
        """Partitions that ``track_entanglement=True`` records."""
        return self.default_partition

    def _user_callbacks(self):
        """Copies of the ``callbacks`` and ``track_entanglement`` callbacks, bound."""
        named = []
        if self.track_entanglement is not None and self.track_entanglement is not False:
            partitions = (self._default_tracked_partitions()
                          if self.track_entanglement is True else self.track_entanglement)
            named.append(("entanglement_tracker",
                          EntanglementTracker(partitions, every=self.track_every)))
        for item in self.callbacks or ():
            name, callback = _named_callback(item)
            named.append((name or type(callback).__name__, clone(callback, safe=False)))
        for _, callback in named:
            if isinstance(callback, EntanglementTracker):
                callback.bind(self)
        return named

    def _collect_entanglement_history(self):
        trackers = [callback for _, callback in self.net_.callbacks_
                    if isinstance(callback, EntanglementTracker)]
        if not trackers:
            if hasattr(self, "entanglement_history_"):
                del self.entanglement_history_
            return
        self.entanglement_history_ = EntanglementHistory(
            row for tracker in trackers for row in tracker.history_
        )

    def _make_net(self, module, torch_dtype, seed):
        callbacks = [
            ("finite_loss", FiniteLossGuard()),
            ("lr_schedule", LRScheduler(
                policy=torch.optim.lr_scheduler.CosineAnnealingLR,
                T_max=self.max_epochs,
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
        # After recalibration: it judges the eval-mode network that predict uses.
        callbacks.append(("not_learning", NotLearningCheck()))
        callbacks.extend(self._user_callbacks())
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        net_kwargs = {"optimizer__weight_decay": self.weight_decay}
        if self.optimizer == "sgd":
            net_kwargs["optimizer__momentum"] = 0.9
        net_class = NeuralNet
        if self.accelerator is None:
            net_kwargs["device"] = self.device_
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
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=train_split,
            callbacks=callbacks,
            iterator_train__shuffle=True,
            iterator_train__generator=torch.Generator(),
            # A loader without a generator draws its base seed from the global one.
            iterator_valid__generator=torch.Generator(),
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
            self.device_ = str(_module_device(self.net_.module_))

    def _scores(self, X):
        check_is_fitted(self)
        X = validate_data(self, self._flatten_input(X, fitting=False), dtype=np.float64,
                          reset=False)
        module = self.net_.module_
        inputs = torch.as_tensor(self._scale_inputs(X))
        device = _module_device(module)
        scores = _float64_scores(module, inputs, device, self.batch_size)
        overflow = ~np.isfinite(scores).all(axis=1)
        if overflow.any() and hasattr(module.network, "log_forward"):
            # Products over many levels can leave even float64's range: those
            # rows come from the log-amplitudes, divided by their largest
            # score, which keeps every ratio predict and predict_proba use.
            wide = copy.deepcopy(module).double().eval()
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
        """Raw scores alpha_y of the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            The amplitudes ``alpha_y(x) = <x|Psi_y>``. For two classes,
            scikit-learn expects one column: it is
            ``log|alpha_1| - log|alpha_0|``, half the log-odds of
            :meth:`predict_proba`, positive when ``classes_[1]`` is predicted.
        """
        scores = self._scores(X)
        if scores.shape[1] == 2:
            log_abs = np.log(np.maximum(np.abs(scores), np.finfo(np.float64).tiny))
            return log_abs[:, 1] - log_abs[:, 0]
        return scores

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
        scores = self._scores(X)
        # Dividing by the largest score first keeps squares in range.
        peak = np.abs(scores).max(axis=1, keepdims=True)
        weights = (scores / np.where(peak > 0, peak, 1.0)) ** 2
        weights[peak[:, 0] == 0] = 1.0
        return weights / weights.sum(axis=1, keepdims=True)

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

    def _class_indices(self, classes):
        """Row indices of ``classes`` (labels from ``classes_``); None = all."""
        check_is_fitted(self)
        if classes is None:
            return np.arange(self.classes_.size)
        labels = list(self.classes_)
        wanted = np.atleast_1d(np.asarray(classes, dtype=self.classes_.dtype))
        missing = [c for c in wanted.tolist() if c not in labels]
        if missing or wanted.size == 0:
            raise ValueError(
                f"classes must be a non-empty list of labels from classes_ "
                f"{self.classes_.tolist()}; unknown: {missing}."
            )
        return np.array([labels.index(c) for c in wanted.tolist()])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags
