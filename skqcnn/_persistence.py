"""Save and load fitted estimators without pickle.

A saved estimator is one safetensors file. Its header, which safetensors
keeps as JSON, carries skqcnn's metadata: a format marker and version, the
estimator class, and a JSON payload with the hyperparameters, the fitted
attributes, skorch's training history, the entanglement rows and the JSON
part of the optimizer state. Every tensor (module weights and buffers,
optimizer moments, the BatchNorm statistics a resumed fit starts from) lies
in the body as raw bytes. Reading it parses JSON and copies bytes: nothing
in the file is imported or executed, so loading cannot run code.

JSON has no tuples, numpy arrays or tensors, so the payload tags them: a
value that is a JSON object with a single ``"__tag__"`` key is a tagged
value. Plain dicts whose keys are all strings without a leading ``"__"``
stay plain objects, the others become tagged lists of pairs, so the two
never collide.
"""

import hashlib
import inspect
import json
import os
import uuid
import warnings

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from skorch.callbacks import Callback
from skorch.history import History
from sklearn.utils.validation import check_is_fitted

from . import __version__
from . import callbacks as _callbacks
from ._base import NetworkClassifierBase, _module_device, resolve_device
from ._convac import OverlappingConvACClassifier
from ._qcnn import QCNNClassifier
from ._rac import DeepRACClassifier

FORMAT_MARKER = "skqcnn-estimator"
FORMAT_VERSION = 1

_KEY_FORMAT = "skqcnn.format"
_KEY_FORMAT_VERSION = "skqcnn.format_version"
_KEY_VERSION = "skqcnn.version"
_KEY_ESTIMATOR = "skqcnn.estimator"
_KEY_PAYLOAD = "skqcnn.payload"
_KEY_DIGEST = "skqcnn.sha256"

_MODULE_PREFIX = "module/"

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

_NUMPY_KINDS = "biufU"


class _Unrepresentable(Exception):
    """A value with no safe JSON form (an object whose state is code)."""

    def __init__(self, value):
        super().__init__(value)
        self.value = value

    def describe(self):
        """What the value is, for messages: its class, not a repr that may be huge."""
        if isinstance(self.value, np.ndarray):
            return f"ndarray of dtype {self.value.dtype}"
        kind = type(self.value)
        return f"{kind.__module__}.{kind.__qualname__}"


def _class_name(cls):
    """The name a file records for an estimator class."""
    public = f"skqcnn.{cls.__name__}"
    if _BUILTIN_ESTIMATORS.get(public) is cls:
        return public
    return f"{cls.__module__}.{cls.__qualname__}"


class _Encoder:
    """Turns Python values into JSON values, collecting tensors on the side.

    Tensors are stored under their path in the encoded structure (e.g.
    ``"optimizer/state/3/exp_avg"``), which makes the file readable with any
    safetensors tool.
    """

    def __init__(self):
        self.tensors = {}

    def encode(self, value, path):
        kind = type(value)
        if value is None or kind in (bool, int, float, str):
            return value
        if kind is tuple:
            return {"__tuple__": [self.encode(v, f"{path}/{i}") for i, v in enumerate(value)]}
        if kind is list:
            return [self.encode(v, f"{path}/{i}") for i, v in enumerate(value)]
        if kind is dict:
            return self._encode_dict(value, path)
        if isinstance(value, np.generic) and value.dtype.kind in _NUMPY_KINDS:
            return {"__npscalar__": {"dtype": value.dtype.str, "value": value.item()}}
        if kind is np.ndarray:
            return self._encode_array(value, path)
        if isinstance(value, np.dtype) and value.kind in _NUMPY_KINDS:
            return {"__npdtype__": value.str}
        if isinstance(value, type) and issubclass(value, np.generic):
            return self._encode_scalar_type(value)
        if isinstance(value, torch.Tensor):
            return self._encode_tensor(value, path)
        if kind in _CALLBACK_CLASSES.values():
            return {"__callback__": {
                "class": kind.__name__,
                "params": self.encode(value.get_params(deep=False), f"{path}/params"),
            }}
        raise _Unrepresentable(value)

    def _encode_dict(self, value, path):
        if all(type(k) is str and not k.startswith("__") for k in value):
            return {k: self.encode(v, f"{path}/{k}") for k, v in value.items()}
        return {"__dict__": [
            [self.encode(k, f"{path}/key{i}"), self.encode(v, f"{path}/{k}")]
            for i, (k, v) in enumerate(value.items())
        ]}

    def _encode_scalar_type(self, value):
        # Abstract types (np.floating) have no dtype of their own.
        try:
            dtype = np.dtype(value)
        except TypeError:
            raise _Unrepresentable(value) from None
        if dtype.type is not value or dtype.kind not in _NUMPY_KINDS:
            raise _Unrepresentable(value)
        return {"__npclass__": dtype.str}

    def _encode_array(self, value, path):
        if value.dtype.kind == "O":
            data = [self.encode(v, f"{path}/{i}") for i, v in enumerate(value.ravel().tolist())]
        elif value.dtype.kind in _NUMPY_KINDS:
            data = value.ravel().tolist()
        else:
            raise _Unrepresentable(value)
        return {"__ndarray__": {"dtype": value.dtype.str, "shape": list(value.shape),
                                "data": data}}

    def _encode_tensor(self, value, path):
        if path in self.tensors:
            raise ValueError(f"two tensors would be stored under {path!r}")
        self.tensors[path] = _cpu_copy(value)
        return {"__tensor__": path}


def _cpu_copy(tensor):
    # A copy owns its storage: safetensors refuses tensors that share memory.
    return tensor.detach().to("cpu", copy=True).contiguous()


def _short_repr(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Decoder:
    """The inverse of :class:`_Encoder`, given the file's tensors."""

    def __init__(self, tensors):
        self.tensors = tensors

    def decode(self, value):
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (tag, body), = value.items()
            handler = self._TAGS.get(tag)
            if handler is not None:
                return handler(self, body)
        if any(key.startswith("__") for key in value):
            raise ValueError(f"unknown tagged value {_short_repr(value)}")
        return {key: self.decode(v) for key, v in value.items()}

    def _tuple(self, body):
        return tuple(self.decode(body))

    def _dict(self, body):
        return {self.decode(key): self.decode(v) for key, v in body}

    def _scalar(self, body):
        return _numpy_dtype(body["dtype"]).type(body["value"])

    def _array(self, body):
        dtype = _numpy_dtype(body["dtype"], allow_object=True)
        shape = tuple(int(n) for n in body["shape"])
        if dtype.kind == "O":
            flat = np.empty(len(body["data"]), dtype=object)
            # Element by element: a slice assignment would unpack sequences.
            for i, item in enumerate(body["data"]):
                flat[i] = self.decode(item)
        else:
            flat = np.array(body["data"], dtype=dtype)
        return flat.reshape(shape)

    def _npdtype(self, body):
        return _numpy_dtype(body)

    def _npclass(self, body):
        return _numpy_dtype(body).type

    def _tensor(self, body):
        if body not in self.tensors:
            raise ValueError(f"the payload refers to a tensor {body!r} the file lacks")
        return self.tensors[body]

    def _callback(self, body):
        cls = _CALLBACK_CLASSES.get(body["class"])
        if cls is None:
            raise ValueError(f"unknown callback class {body['class']!r}")
        return cls(**self.decode(body["params"]))

    _TAGS = {
        "__tuple__": _tuple,
        "__dict__": _dict,
        "__npscalar__": _scalar,
        "__ndarray__": _array,
        "__npdtype__": _npdtype,
        "__npclass__": _npclass,
        "__tensor__": _tensor,
        "__callback__": _callback,
    }


def _numpy_dtype(text, allow_object=False):
    dtype = np.dtype(text)
    if dtype.kind not in _NUMPY_KINDS + ("O" if allow_object else ""):
        raise ValueError(f"unsupported numpy dtype {text!r}")
    return dtype


def _digest(fields, tensors):
    """SHA-256 of the metadata fields and of every tensor, in canonical order.

    safetensors has no checksum of its own: a flipped bit in the tensor data
    would otherwise load as a silently different model.
    """
    digest = hashlib.sha256()
    for key in sorted(fields):
        digest.update(json.dumps([key, fields[key]]).encode())
    for key in sorted(tensors):
        tensor = tensors[key].contiguous()
        digest.update(json.dumps([key, str(tensor.dtype), list(tensor.shape)]).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save(estimator, path):
    """Write a fitted skqcnn estimator to a safetensors file, without pickle.

    Hyperparameters, fitted attributes, skorch's training history and the
    entanglement history go to JSON in the file's header; the network's
    weights and buffers, the optimizer state and the BatchNorm statistics
    training had left go to the body as raw tensors, copied to the CPU.
    With them, :func:`load` followed by ``set_params(warm_start=True).fit``
    continues training where it stopped.

    Parameters
    ----------
    estimator : QCNNClassifier, OverlappingConvACClassifier or DeepRACClassifier
        A fitted estimator (or a subclass of one; :func:`load` then needs
        ``expected_class=``).
    path : str or os.PathLike
        Destination, replaced if it exists; ``.safetensors`` is the suggested
        suffix. The file is written next to it first and moved in place, so a
        crash never leaves half a file under ``path``.

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
        no JSON form.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.

    See Also
    --------
    load : Read the file back.

    Notes
    -----
    The file's metadata records a format version (now 1); :func:`load`
    refuses files of other versions with a message that names both.

    Security: :func:`load` parses JSON and raw tensors only, and builds
    nothing but skqcnn's own estimator and callback classes, so a file from
    an untrusted source cannot run code. joblib and pickle files, in
    contrast, run code when loaded: load those only from sources you trust.

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
    ...     skqcnn.save(clf, path)
    ...     restored = skqcnn.load(path)
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
    path = os.fspath(path)
    encoder = _Encoder()
    payload = {
        "params": _encode_params(estimator, encoder),
        "attributes": _encode_attributes(estimator, encoder),
        **_encode_training_state(estimator.net_, encoder),
    }
    tensors = {f"{_MODULE_PREFIX}{name}": _cpu_copy(tensor)
               for name, tensor in estimator.net_.module_.state_dict().items()}
    tensors.update(encoder.tensors)
    fields = {
        _KEY_FORMAT: FORMAT_MARKER,
        _KEY_FORMAT_VERSION: str(FORMAT_VERSION),
        _KEY_VERSION: __version__,
        _KEY_ESTIMATOR: _class_name(type(estimator)),
        _KEY_PAYLOAD: json.dumps(payload),
    }
    fields[_KEY_DIGEST] = _digest(fields, tensors)
    _write_atomically(tensors, fields, path)


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
                    _Encoder().encode(item, "probe")
                    kept.append(item)
                except _Unrepresentable as error:
                    dropped.append(f"the callback {error.describe()} (only skqcnn's own "
                                   f"callbacks are stored)")
            value = type(value)(kept) if kept else defaults[name]
        try:
            encoded[name] = encoder.encode(value, f"params/{name}")
        except _Unrepresentable as error:
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
    params = estimator.get_params(deep=False)
    encoded = {}
    for name, value in vars(estimator).items():
        if name in params or name in ("net_", "entanglement_history_"):
            continue
        try:
            encoded[name] = encoder.encode(value, f"attributes/{name}")
        except _Unrepresentable as error:
            if name.startswith("_"):
                # Private configuration that is no fitted state (for instance
                # scikit-learn's metadata-routing requests) may be left out.
                continue
            raise TypeError(
                f"skqcnn.save cannot store the fitted attribute {name} "
                f"({error.describe()}) in JSON."
            ) from None
    return encoded


def _encode_training_state(net, encoder):
    callbacks = {}
    for name, callback in net.callbacks_:
        if isinstance(callback, _callbacks.BatchNormRecalibration):
            state = {"training_statistics_": callback.training_statistics_}
        elif isinstance(callback, _callbacks.EntanglementTracker):
            state = {"history_": list(callback.history_), "seconds_": callback.seconds_}
        else:
            continue
        callbacks[name] = encoder.encode(state, f"callbacks/{name}")
    try:
        history = encoder.encode(list(net.history), "history")
    except _Unrepresentable as error:
        raise TypeError(
            f"skqcnn.save cannot store skorch's history: a callback recorded a "
            f"{error.describe()} in it, which has no JSON form."
        ) from None
    return {
        "seed": int(dict(net.callbacks_)["epoch_shuffle"].seed),
        "history": history,
        "optimizer": encoder.encode(net.optimizer_.state_dict(), "optimizer"),
        "callbacks": callbacks,
    }


def _write_atomically(tensors, fields, path):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot save to {path!r}: no directory {folder!r}.")
    # Created by safetensors with the usual permissions (mkstemp's are 0600).
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        save_file(tensors, temporary, metadata=fields)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def load(path, *, expected_class=None, device=None):
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

    Returns
    -------
    estimator : QCNNClassifier, OverlappingConvACClassifier or DeepRACClassifier
        The fitted estimator; ``device_`` tells where its network lives.

    Raises
    ------
    ValueError
        If the file is not a safetensors file, is truncated or corrupted (its
        SHA-256 digest does not match), is no skqcnn estimator, comes from
        another skqcnn format version, or names an unknown estimator class.
        The message names the file and what is wrong.
    TypeError
        If the file holds another class than ``expected_class``.
    FileNotFoundError
        If there is no file at ``path``.

    See Also
    --------
    save : Write the file.

    Notes
    -----
    Security: only JSON and raw tensors are parsed and only skqcnn's own
    estimator and callback classes are built. joblib and pickle files, in
    contrast, run code when loaded: load those only from sources you trust.

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
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a directory, not a file written by skqcnn.save.")
    fields, tensors = _read(path, expected_class)
    try:
        payload = json.loads(fields[_KEY_PAYLOAD])
        decoder = _Decoder(tensors)
        return _rebuild(fields, payload, decoder, tensors, expected_class, device)
    except _FileError as error:
        raise ValueError(f"{path!r}: {error}") from error.__cause__
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError,
            RuntimeError) as error:
        raise ValueError(
            f"{path!r} passed its integrity check but its content cannot be rebuilt "
            f"({type(error).__name__}: {error}). Was it written by skqcnn.save?"
        ) from error


class _FileError(Exception):
    """A problem that ``load`` reports as a ValueError naming the file."""


def _read(path, expected_class):
    """Checked metadata and tensors of ``path``."""
    try:
        with safe_open(path, framework="pt", device="cpu") as handle:
            fields = handle.metadata() or {}
            _check_header(path, fields, expected_class)
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except SafetensorError as error:
        raise ValueError(
            f"{path!r} is not a readable safetensors file, so not a file written by "
            f"skqcnn.save; it may be truncated or corrupted ({error})."
        ) from None
    if fields.get(_KEY_DIGEST) != _digest(
            {k: v for k, v in fields.items() if k != _KEY_DIGEST}, tensors):
        raise ValueError(
            f"{path!r} is corrupted: its content does not match the SHA-256 digest "
            f"recorded when it was saved."
        )
    return fields, tensors


def _check_header(path, fields, expected_class):
    if fields.get(_KEY_FORMAT) != FORMAT_MARKER:
        raise ValueError(
            f"{path!r} is a safetensors file but holds no skqcnn estimator (its "
            f"metadata has no {_KEY_FORMAT!r} marker); read plain tensor files with "
            f"safetensors itself."
        )
    version = fields.get(_KEY_FORMAT_VERSION, "")
    writer = fields.get(_KEY_VERSION, "an unknown version")
    if version != str(FORMAT_VERSION):
        raise ValueError(
            f"{path!r} was written by skqcnn {writer} in format version {version}; this "
            f"skqcnn ({__version__}) reads format version {FORMAT_VERSION}. Load it with "
            f"a matching skqcnn, or refit."
        )
    saved = fields.get(_KEY_ESTIMATOR, "")
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
        raise _FileError(
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
        raise _FileError(f"its device parameter is invalid: {error}") from error
    if resolved.startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(
            f"The model was saved for device={saved_device!r}, but CUDA is not available: "
            f"it is loaded on the CPU.", UserWarning, stacklevel=4,
        )
        return "cpu"
    index = torch.device(resolved).index
    if index is not None and index >= torch.cuda.device_count():
        raise _FileError(
            f"it asks for device {resolved!r}, but this machine has "
            f"{torch.cuda.device_count()} CUDA device(s); pass device= to load."
        )
    return resolved


def _rebuild(fields, payload, decoder, tensors, expected_class, device):
    cls = _resolve_class(fields[_KEY_ESTIMATOR], expected_class)
    params = decoder.decode(payload["params"])
    known = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise _FileError(
            f"it sets parameters {unknown} that {cls.__name__} of skqcnn {__version__} "
            f"does not have (written by skqcnn {fields.get(_KEY_VERSION)})."
        )
    estimator = cls(**params)
    attributes = decoder.decode(payload["attributes"])
    # Where the network lives is decided here, not by the saving machine.
    attributes.pop("device_", None)
    for name, value in attributes.items():
        setattr(estimator, name, value)
    estimator.device_ = _load_device(estimator.device, device)
    torch_dtype = estimator._validate_common_params()
    # Building draws initial weights, which the file's replace: the user's
    # global torch generator must not advance.
    with torch.random.fork_rng(devices=[]):
        net = estimator._build_net(estimator.n_features_in_, torch_dtype, int(payload["seed"]))
        net.initialize()
    # Building recomputes the layout attributes; the file's are authoritative.
    for name, value in attributes.items():
        setattr(estimator, name, value)
    _load_module_state(net, tensors)
    try:
        net.optimizer_.load_state_dict(decoder.decode(payload["optimizer"]))
    except (ValueError, KeyError, RuntimeError) as error:
        raise _FileError(f"its optimizer state does not fit the network: {error}") from error
    net.history = History(decoder.decode(payload["history"]))
    _restore_callbacks(net, decoder.decode(payload["callbacks"]))
    estimator.net_ = net
    estimator._collect_entanglement_history()
    return estimator


def _load_module_state(net, tensors):
    state = {key[len(_MODULE_PREFIX):]: tensor for key, tensor in tensors.items()
             if key.startswith(_MODULE_PREFIX)}
    expected = net.module_.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(name for name in set(state) & set(expected)
                         if state[name].shape != expected[name].shape)
    if missing or unexpected or wrong_shape:
        raise _FileError(
            "its network weights do not fit the network its parameters describe "
            f"(missing: {missing}, unexpected: {unexpected}, wrong shape: {wrong_shape})."
        )
    net.module_.load_state_dict(state, strict=True)


def _restore_callbacks(net, saved):
    device = _module_device(net.module_)
    for name, callback in net.callbacks_:
        state = saved.get(name)
        if state is None:
            continue
        if isinstance(callback, _callbacks.BatchNormRecalibration):
            statistics = state["training_statistics_"]
            callback.training_statistics_ = None if statistics is None else {
                key: tensor.to(device) for key, tensor in statistics.items()
            }
        elif isinstance(callback, _callbacks.EntanglementTracker):
            callback.history_ = _callbacks.EntanglementHistory(state["history_"])
            callback.seconds_ = float(state["seconds_"])
