"""Capture a fitted estimator into a file's fields and tensors, and rebuild it.

Everything estimator-specific is asked of the estimator through its public
interface and two declared hooks: ``_fitted_state`` (the fitted attributes
and their types) and ``_initialized_net(seed)`` (an empty net to load
weights into). Callbacks give and take their state through
``state_dict``/``load_state_dict``.
"""

import inspect
import json
import numbers
import os
import warnings

import torch
from skorch.callbacks import Callback
from skorch.history import History
from sklearn.utils.validation import check_is_fitted

from .. import __version__
from .. import callbacks as _callbacks
from .._base import NetworkClassifierBase, resolve_device
from .._convac import OverlappingConvACClassifier
from .._qcnn import QCNNClassifier
from .._rac import DeepRACClassifier
from . import _format
from ._codec import Decoder, Encoder, Unrepresentable, cpu_copy

_BUILTIN_ESTIMATORS = {
    f"skqcnn.{cls.__name__}": cls
    for cls in (QCNNClassifier, OverlappingConvACClassifier, DeepRACClassifier)
}

# Callbacks rebuilt from a file: skqcnn's own, looked up by name in this
# fixed table, never imported from a path the file names.
_CALLBACK_CLASSES = {
    name: getattr(_callbacks, name) for name in _callbacks.__all__
    if isinstance(getattr(_callbacks, name), type)
    and issubclass(getattr(_callbacks, name), Callback)
}

_MODULE_PREFIX = "module/"
_PAYLOAD_KEYS = {"params", "attributes", "seed", "history", "optimizer", "callbacks"}
# Attributes a fitted estimator holds besides its declared _fitted_state.
_REBUILT_ATTRIBUTES = {"net_", "device_"}


def _class_name(cls):
    """The name a file records for an estimator class."""
    public = f"skqcnn.{cls.__name__}"
    if _BUILTIN_ESTIMATORS.get(public) is cls:
        return public
    return f"{cls.__module__}.{cls.__qualname__}"


def save(estimator, path, *, key=None):
    """Write a fitted skqcnn estimator to a safetensors file, without pickle.

    Hyperparameters, fitted attributes, skorch's training history and the
    callbacks' states (among them the entanglement history) go to JSON in the
    file's header; the network's weights and buffers, the optimizer state and
    the BatchNorm statistics training had left go to the body as raw tensors,
    copied to the CPU. With them, :func:`load` followed by
    ``set_params(warm_start=True).fit`` continues training where it stopped.

    Parameters
    ----------
    estimator : QCNNClassifier, OverlappingConvACClassifier or DeepRACClassifier
        A fitted estimator (or a subclass of one; :func:`load` then needs
        ``expected_class=``).
    path : str or os.PathLike
        Destination file, replaced if it exists; ``.safetensors`` is the
        suggested suffix. The file is written next to it first and moved in
        place, so a crash never leaves half a file under ``path``. It gets
        the permissions of any new file (``0o666`` less the umask).
    key : bytes, str or None, default=None
        A secret key: the file then also carries an HMAC-SHA256 of its
        content, and :func:`load` reads it only with the same key.

    Warns
    -----
    UserWarning
        For hyperparameters that hold live objects, which have no safe
        representation: an ``accelerate.Accelerator``, a ``RandomState``
        instance, callbacks other than skqcnn's own (for instance skorch's
        ``Checkpoint``). The file records their defaults instead (for
        ``callbacks``, the list without them); set them again after
        :func:`load` if needed. The training seed itself is kept, so a resumed
        fit is unaffected.

    Raises
    ------
    TypeError
        If ``estimator`` is not a skqcnn estimator, or a fitted attribute has
        no JSON form or is not declared in the class's ``_fitted_state``.
    ValueError
        If ``path`` is a directory, ``key`` is empty, or a hyperparameter
        that shaped the network (all but ``max_epochs``, ``warm_start``,
        ``verbose``, ``accelerator``, ``device``, ``callbacks`` and
        ``random_state``) changed since the fit.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.

    See Also
    --------
    load : Read the file back.

    Notes
    -----
    The file's metadata records a format version (now 2); :func:`load`
    reads versions 1 and 2 and refuses others with a message that names them.

    Security: :func:`load` parses JSON and raw tensors only, builds nothing
    but skqcnn's own estimator and callback classes, and sets only the fitted
    attributes the class declares, with the types it declares, so a file from
    an untrusted source cannot run code. The SHA-256 digest in the file
    detects damage, not tampering: anyone can recompute it. Pass ``key=`` to
    both functions to detect tampering by anyone without the key. joblib and
    pickle files, in contrast, run code when loaded: load those only from
    sources you trust.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> import skqcnn
    >>> X, y = load_digits(n_class=2, return_X_y=True)
    >>> clf = skqcnn.QCNNClassifier(channels=(2,) * 6, batch_size=120, max_epochs=2,
    ...                             device="cpu", random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "qcnn.safetensors")
    ...     skqcnn.save(clf, path, key=b"my secret")
    ...     restored = skqcnn.load(path, key=b"my secret")
    >>> bool((restored.predict(X) == clf.predict(X)).all())
    True
    """
    if not isinstance(estimator, NetworkClassifierBase):
        raise TypeError(
            f"skqcnn.save writes skqcnn estimators (QCNNClassifier, "
            f"OverlappingConvACClassifier, DeepRACClassifier), got "
            f"{type(estimator).__name__}. Use joblib for other estimators."
        )
    check_is_fitted(estimator)
    changed = estimator._changed_fixed_params()
    if changed:
        # load rebuilds the network from the hyperparameters the file records.
        raise ValueError(
            f"skqcnn.save records the hyperparameters that load rebuilds the network "
            f"from, and these changed since the fit: {'; '.join(changed)}. Set them back "
            f"before saving, or fit again."
        )
    key = _format.check_key(key)
    path = os.fspath(path)
    encoder = Encoder(_CALLBACK_CLASSES)
    payload = {
        "params": _encode_params(estimator, encoder),
        "attributes": _encode_attributes(estimator, encoder),
        **_encode_training_state(estimator.net_, encoder),
    }
    tensors = {f"{_MODULE_PREFIX}{name}": cpu_copy(tensor)
               for name, tensor in estimator.net_.module_.state_dict().items()}
    tensors.update(encoder.tensors)
    fields = {
        _format.KEY_FORMAT: _format.FORMAT_MARKER,
        _format.KEY_FORMAT_VERSION: str(_format.FORMAT_VERSION),
        _format.KEY_VERSION: __version__,
        _format.KEY_ESTIMATOR: _class_name(type(estimator)),
        _format.KEY_PAYLOAD: json.dumps(payload),
    }
    _format.write(path, fields, tensors, key)


def _encode_params(estimator, encoder):
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(type(estimator).__init__).parameters.items()
    }
    encoded, dropped = {}, []
    for name, value in estimator.get_params(deep=False).items():
        if name == "callbacks" and isinstance(value, (list, tuple)) and value:
            # Callbacks are dropped one by one: skqcnn's own survive.
            kept = []
            for item in value:
                try:
                    Encoder(_CALLBACK_CLASSES).encode(item, "probe")
                    kept.append(item)
                except Unrepresentable as error:
                    dropped.append(f"the callback {error.describe()} (only skqcnn's own "
                                   f"callbacks are stored)")
            value = type(value)(kept) if kept else defaults[name]
        try:
            encoded[name] = encoder.encode(value, f"params/{name}")
        except Unrepresentable as error:
            dropped.append(f"{name} ({error.describe()})")
            encoded[name] = encoder.encode(defaults[name], f"params/{name}")
    if dropped:
        warnings.warn(
            f"skqcnn.save cannot store live objects safely and records defaults instead "
            f"of: {'; '.join(dropped)}. Set them again after skqcnn.load if you need "
            f"them.",
            UserWarning, stacklevel=3,
        )
    return encoded


def _encode_attributes(estimator, encoder):
    declared = type(estimator)._fitted_state
    params = estimator.get_params(deep=False)
    undeclared = sorted(
        name for name in vars(estimator)
        if name.endswith("_") and not name.startswith("_") and name not in params
        and name not in declared and name not in _REBUILT_ATTRIBUTES
    )
    if undeclared:
        raise TypeError(
            f"skqcnn.save stores the fitted attributes {type(estimator).__name__} declares "
            f"in _fitted_state; {undeclared} are not declared there. Add them to the "
            f"class's _fitted_state with their types."
        )
    encoded = {}
    # In the order fit set them, which load repeats.
    for name in [name for name in vars(estimator) if name in declared]:
        try:
            encoded[name] = encoder.encode(getattr(estimator, name), f"attributes/{name}")
        except Unrepresentable as error:
            raise TypeError(
                f"skqcnn.save cannot store the fitted attribute {name} "
                f"({error.describe()}) in JSON."
            ) from None
    return encoded


def _stateful_callbacks(net):
    """skqcnn's callbacks that have a state dict, by name."""
    return {name: callback for name, callback in net.callbacks_
            if type(callback) in _CALLBACK_CLASSES.values() and hasattr(callback, "state_dict")}


def _encode_training_state(net, encoder):
    stateful = _stateful_callbacks(net)
    seeds = [callback.state_dict()["seed"] for callback in stateful.values()
             if isinstance(callback, _callbacks.EpochSeededShuffle)]
    if len(seeds) != 1:
        raise TypeError(
            f"skqcnn.save expects one EpochSeededShuffle in the net's callbacks, found "
            f"{len(seeds)}."
        )
    try:
        history = encoder.encode(list(net.history), "history")
    except Unrepresentable as error:
        raise TypeError(
            f"skqcnn.save cannot store skorch's history: a callback recorded a "
            f"{error.describe()} in it, which has no JSON form."
        ) from None
    return {
        "seed": seeds[0],
        "history": history,
        "optimizer": encoder.encode(net.optimizer_.state_dict(), "optimizer"),
        "callbacks": {name: encoder.encode(callback.state_dict(), f"callbacks/{name}")
                      for name, callback in stateful.items()},
    }


def load(path, *, expected_class=None, device=None, key=None):
    """Read an estimator written by :func:`save`.

    The file's JSON and raw tensors are parsed; nothing is unpickled or
    imported, so loading cannot run code from the file. The estimator comes
    back fitted, with the same hyperparameters (except those :func:`save`
    warned about), fitted attributes, ``history_`` and
    ``entanglement_history_``, predictions and entropies, and with the
    optimizer state: after ``set_params(warm_start=True)``, ``fit`` continues
    an interrupted fit as if it had never stopped (exactly so on the CPU),
    and a raised ``max_epochs`` trains further.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.
    expected_class : type, str or None, default=None
        The estimator class the file must hold, as a class or its name
        (``"QCNNClassifier"``). A subclass of a skqcnn estimator defined in
        your code loads only when passed here. None accepts skqcnn's
        estimators.
    device : str or None, default=None
        Where to put the network: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or
        ``"auto"``. None resolves the saved ``device`` parameter on this
        machine; a model saved for CUDA then loads on the CPU when there is
        no CUDA (with a warning), while an explicit ``device="cuda"`` without
        CUDA is an error. The ``device`` hyperparameter keeps its saved value.
    key : bytes, str or None, default=None
        The key the file was saved with. A file saved with a key loads only
        with it; with a key, an unsigned file is refused.

    Returns
    -------
    estimator : QCNNClassifier, OverlappingConvACClassifier or DeepRACClassifier
        The fitted estimator; ``device_`` tells where its network lives.

    Raises
    ------
    ValueError
        If the file is not a safetensors file, is truncated or corrupted (its
        SHA-256 digest does not match), fails its HMAC check (wrong key, no
        key, or no signature), is no skqcnn estimator, comes from an
        unreadable skqcnn format version, names an unknown estimator class,
        or sets anything the class does not declare (a parameter, a fitted
        attribute, a callback state: the message names the key).
    TypeError
        If the file holds another class than ``expected_class``, or a fitted
        attribute of another type than the class declares.
    FileNotFoundError
        If there is no file at ``path``.

    See Also
    --------
    save : Write the file.

    Notes
    -----
    Security: only JSON and raw tensors are parsed, only skqcnn's own
    estimator and callback classes are built, and only the declared fitted
    attributes are set. The SHA-256 digest detects damage, not tampering;
    a file saved with ``key=`` detects tampering by anyone without the key.
    joblib and pickle files, in contrast, run code when loaded: load those
    only from sources you trust.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> import skqcnn
    >>> X, y = load_digits(n_class=2, return_X_y=True)
    >>> clf = skqcnn.QCNNClassifier(channels=(2,) * 6, batch_size=120, max_epochs=2,
    ...                             device="cpu", random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "qcnn.safetensors")
    ...     skqcnn.save(clf, path)
    ...     restored = skqcnn.load(path, expected_class=skqcnn.QCNNClassifier)
    >>> np.array_equal(restored.entanglement_entropy(), clf.entanglement_entropy())
    True
    >>> len(restored.history_), restored.device_
    (2, 'cpu')
    """
    path = os.fspath(path)
    device = _requested_device(device)
    key = _format.check_key(key)
    fields, tensors = _format.read(
        path, lambda saved: _check_expected_class(path, saved, expected_class), key)
    try:
        payload = json.loads(fields[_format.KEY_PAYLOAD])
        if fields[_format.KEY_FORMAT_VERSION] == "1":
            payload = _upgrade_version_1(payload)
        return _rebuild(fields, payload, tensors, expected_class, device)
    except _format.FileError as error:
        raise ValueError(f"{path!r}: {error}") from error.__cause__
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError,
            RuntimeError) as error:
        raise ValueError(
            f"{path!r} passed its integrity check but its content cannot be rebuilt "
            f"({type(error).__name__}: {error}). Was it written by skqcnn.save?"
        ) from error


def _upgrade_version_1(payload):
    """Version 1 stored two callbacks' attributes instead of state dicts."""
    callbacks = {}
    for name, state in payload.get("callbacks", {}).items():
        state = {key.rstrip("_"): value for key, value in state.items()}
        if "history" in state:
            # Its last rows were measured at the end of the last epoch.
            state["epoch_end_rows"] = None
        callbacks[name] = state
    payload = dict(payload)
    payload["callbacks"] = callbacks
    # device_ was stored, but where the network lives is decided by load.
    payload["attributes"] = {name: value for name, value in payload["attributes"].items()
                             if name != "device_"}
    return payload


def _check_expected_class(path, saved, expected_class):
    if expected_class is not None and not _names_match(saved, expected_class):
        wanted = expected_class if isinstance(expected_class, str) else _class_name(
            expected_class)
        raise TypeError(f"{path!r} holds a {saved}, not the expected {wanted}.")


def _names_match(saved, expected_class):
    if isinstance(expected_class, str):
        return expected_class in (saved, saved.rpartition(".")[2])
    if not (isinstance(expected_class, type)
            and issubclass(expected_class, NetworkClassifierBase)):
        raise TypeError(
            f"expected_class must be a skqcnn estimator class or its name, got "
            f"{expected_class!r}."
        )
    return _class_name(expected_class) == saved


def _resolve_class(saved, expected_class):
    if isinstance(expected_class, type):
        return expected_class
    cls = _BUILTIN_ESTIMATORS.get(saved)
    if cls is None:
        raise _format.FileError(
            f"it holds an estimator of the unknown class {saved!r}. If that is your own "
            f"subclass of a skqcnn estimator, pass it as expected_class."
        )
    return cls


def _requested_device(device):
    """Check ``load``'s own ``device`` argument before reading anything."""
    if device is None:
        return None
    resolved = resolve_device(device, require_available=False)
    if resolved.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asks for CUDA, which is not available here.")
    return resolved


def _load_device(saved_device, requested):
    if requested is not None:
        return requested
    try:
        resolved = resolve_device(saved_device, require_available=False)
    except ValueError as error:
        raise _format.FileError(f"its device parameter is invalid: {error}") from error
    if resolved.startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(
            f"The model was saved for device={saved_device!r}, but CUDA is not available: "
            f"it is loaded on the CPU.", UserWarning, stacklevel=4,
        )
        return "cpu"
    index = torch.device(resolved).index
    if index is not None and index >= torch.cuda.device_count():
        raise _format.FileError(
            f"it asks for device {resolved!r}, but this machine has "
            f"{torch.cuda.device_count()} CUDA device(s); pass device= to load."
        )
    return resolved


def _unknown_keys(kind, names, known):
    unknown = sorted(set(names) - set(known), key=str)
    if unknown:
        raise _format.FileError(f"it sets the {kind} {unknown}, which skqcnn does not read "
                                f"there.")


def _declared_attributes(cls, attributes):
    declared = cls._fitted_state
    unknown = sorted(set(attributes) - set(declared), key=str)
    if unknown:
        raise _format.FileError(
            f"it sets the attributes {unknown}, which {cls.__name__} does not declare as "
            f"fitted state (its _fitted_state: {sorted(declared)})."
        )
    for name, value in attributes.items():
        if not isinstance(value, declared[name]) or isinstance(value, bool):
            expected = declared[name]
            raise _format.FileError(
                f"its fitted attribute {name} is a {type(value).__name__}, not a "
                f"{getattr(expected, '__name__', expected)}."
            )
    return attributes


def _rebuild(fields, payload, tensors, expected_class, device):
    cls = _resolve_class(fields[_format.KEY_ESTIMATOR], expected_class)
    if not isinstance(payload, dict):
        raise _format.FileError("its payload is not a JSON object.")
    _unknown_keys("payload keys", payload, _PAYLOAD_KEYS)
    decoder = Decoder(tensors, _CALLBACK_CLASSES)
    params = decoder.decode(payload["params"])
    known = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise _format.FileError(
            f"it sets parameters {unknown} that {cls.__name__} of skqcnn {__version__} "
            f"does not have (written by skqcnn {fields.get(_format.KEY_VERSION)})."
        )
    estimator = cls(**params)
    attributes = _declared_attributes(cls, decoder.decode(payload["attributes"]))
    seed = payload["seed"]
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise _format.FileError(f"its seed is {seed!r}, not an int.")
    for name, value in attributes.items():
        setattr(estimator, name, value)
    estimator.device_ = _load_device(estimator.device, device)
    net = estimator._initialized_net(int(seed))
    # Building may recompute the layout attributes; the file's are authoritative.
    for name, value in attributes.items():
        setattr(estimator, name, value)
    _load_module_state(net, tensors)
    try:
        net.optimizer_.load_state_dict(decoder.decode(payload["optimizer"]))
    except (ValueError, KeyError, RuntimeError) as error:
        raise _format.FileError(
            f"its optimizer state does not fit the network: {error}") from error
    net.history = History(decoder.decode(payload["history"]))
    _restore_callbacks(net, decoder.decode(payload["callbacks"]))
    stray = sorted(name for name in tensors
                   if not name.startswith(_MODULE_PREFIX) and name not in decoder.used)
    if stray:
        raise _format.FileError(f"it holds tensors {stray} that nothing refers to.")
    estimator.net_ = net
    return estimator


def _load_module_state(net, tensors):
    state = {name[len(_MODULE_PREFIX):]: tensor for name, tensor in tensors.items()
             if name.startswith(_MODULE_PREFIX)}
    expected = net.module_.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(name for name in set(state) & set(expected)
                         if state[name].shape != expected[name].shape)
    if missing or unexpected or wrong_shape:
        raise _format.FileError(
            "its network weights do not fit the network its parameters describe "
            f"(missing: {missing}, unexpected: {unexpected}, wrong shape: {wrong_shape})."
        )
    net.module_.load_state_dict(state, strict=True)


def _restore_callbacks(net, saved):
    if not isinstance(saved, dict):
        raise _format.FileError("its callback states are not a JSON object.")
    stateful = _stateful_callbacks(net)
    _unknown_keys("callback states", saved, stateful)
    for name, state in saved.items():
        try:
            stateful[name].load_state_dict(state)
        except (TypeError, ValueError) as error:
            raise _format.FileError(f"the state of its callback {name!r}: {error}") from error
