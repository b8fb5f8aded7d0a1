"""A tagged JSON codec for the values a fitted estimator holds.

JSON has no tuples, numpy arrays or tensors, so the codec tags them: a value
that is a JSON object with a single ``"__tag__"`` key is a tagged value.
Plain dicts whose keys are all strings without a leading ``"__"`` stay plain
objects, the others become tagged lists of pairs, so the two never collide.
Tensors are not put into the JSON: the encoder collects them under their
path in the encoded structure (e.g. ``"optimizer/state/3/exp_avg"``) and the
JSON names that path. Objects of the registered classes (skqcnn's callbacks)
are stored as their class name and ``get_params``; the decoder rebuilds them
from its own table of classes, never from a name the data supplies.

The codec knows nothing of estimators or files.
"""

import numpy as np
import torch

_NUMPY_KINDS = "biufU"


class Unrepresentable(Exception):
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


def cpu_copy(tensor):
    """A contiguous CPU copy that owns its storage (safetensors refuses shared memory)."""
    return tensor.detach().to("cpu", copy=True).contiguous()


class Encoder:
    """Turns Python values into JSON values, collecting tensors on the side.

    Parameters
    ----------
    classes : dict of str to type
        The classes whose instances are stored by name and parameters.
    """

    def __init__(self, classes):
        self.classes = classes
        self.tensors = {}

    def encode(self, value, path):
        """The JSON form of ``value``; tensors go to :attr:`tensors` under ``path``."""
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
        if self.classes.get(kind.__name__) is kind:
            return {"__callback__": {
                "class": kind.__name__,
                "params": self.encode(value.get_params(deep=False), f"{path}/params"),
            }}
        raise Unrepresentable(value)

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
            raise Unrepresentable(value) from None
        if dtype.type is not value or dtype.kind not in _NUMPY_KINDS:
            raise Unrepresentable(value)
        return {"__npclass__": dtype.str}

    def _encode_array(self, value, path):
        if value.dtype.kind == "O":
            data = [self.encode(v, f"{path}/{i}") for i, v in enumerate(value.ravel().tolist())]
        elif value.dtype.kind in _NUMPY_KINDS:
            data = value.ravel().tolist()
        else:
            raise Unrepresentable(value)
        return {"__ndarray__": {"dtype": value.dtype.str, "shape": list(value.shape),
                                "data": data}}

    def _encode_tensor(self, value, path):
        if path in self.tensors:
            raise ValueError(f"two tensors would be stored under {path!r}")
        self.tensors[path] = cpu_copy(value)
        return {"__tensor__": path}


def _short_repr(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Decoder:
    """The inverse of :class:`Encoder`, given the stored tensors.

    Parameters
    ----------
    tensors : dict of str to torch.Tensor
    classes : dict of str to type
        The classes an encoded object may name.

    Attributes
    ----------
    used : set of str
        The tensors the decoded values referred to.
    """

    def __init__(self, tensors, classes):
        self.tensors = tensors
        self.classes = classes
        self.used = set()

    def decode(self, value):
        """The Python value of the JSON value ``value``."""
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
        self.used.add(body)
        return self.tensors[body]

    def _object(self, body):
        cls = self.classes.get(body["class"])
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
        "__callback__": _object,
    }


def _numpy_dtype(text, allow_object=False):
    dtype = np.dtype(text)
    if dtype.kind not in _NUMPY_KINDS + ("O" if allow_object else ""):
        raise ValueError(f"unsupported numpy dtype {text!r}")
    return dtype
