"""The file: a safetensors file whose header carries skqcnn's fields.

The header fields are strings: a format marker and version, the skqcnn
version that wrote the file, the estimator class, the JSON payload, a
SHA-256 digest of everything else and, when the writer passed a key, an
HMAC-SHA256 of the same content. The body holds the tensors.

What the digests protect against. The SHA-256 digest detects accidental
damage (truncation, flipped bits, an edited header): it is no secret, so
whoever can write the file can recompute it. The HMAC, computed with a key
only the writer and the reader know, also detects deliberate changes by
anyone without the key. Neither hides the content, and neither makes a
file from an untrusted source safe to trust: the HMAC only tells that the
holder of the key wrote it.
"""

import hashlib
import hmac
import json
import os
import uuid

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from .. import __version__

FORMAT_MARKER = "skqcnn-estimator"
FORMAT_VERSION = 2
# Version 1 lacked callback state dicts and the HMAC; it is still read.
READABLE_VERSIONS = (1, 2)

KEY_FORMAT = "skqcnn.format"
KEY_FORMAT_VERSION = "skqcnn.format_version"
KEY_VERSION = "skqcnn.version"
KEY_ESTIMATOR = "skqcnn.estimator"
KEY_PAYLOAD = "skqcnn.payload"
KEY_DIGEST = "skqcnn.sha256"
KEY_HMAC = "skqcnn.hmac_sha256"

_CONTENT_KEYS = (KEY_FORMAT, KEY_FORMAT_VERSION, KEY_VERSION, KEY_ESTIMATOR, KEY_PAYLOAD)


class FileError(Exception):
    """A problem that ``load`` reports as a ValueError naming the file."""


def check_key(key):
    """``key`` as bytes; None stays None.

    Parameters
    ----------
    key : bytes, bytearray, str or None
        A str is encoded as UTF-8.

    Returns
    -------
    key : bytes or None
    """
    if key is None:
        return None
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError(f"key must be bytes, a str or None, got {type(key).__name__}.")
    if not key:
        raise ValueError("key must not be empty: an empty HMAC key authenticates nothing.")
    return bytes(key)


def _digest(fields, tensors, key=None):
    """SHA-256 (or HMAC-SHA256 with ``key``) of the fields and tensors, in canonical order.

    safetensors has no checksum of its own: a flipped bit in the tensor data
    would otherwise load as a silently different model.
    """
    digest = hashlib.sha256() if key is None else hmac.new(key, digestmod=hashlib.sha256)
    for name in sorted(fields):
        digest.update(json.dumps([name, fields[name]]).encode())
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def write(path, fields, tensors, key=None):
    """Write ``tensors`` and the content ``fields``, with their digests, to ``path``.

    The file is written next to ``path`` and moved in place, so a crash never
    leaves half a file there. It is created with the permissions of any new
    file (``0o666`` less the umask).
    """
    fields = dict(fields)
    fields[KEY_DIGEST] = _digest(fields, tensors)
    if key is not None:
        fields[KEY_HMAC] = _digest({k: fields[k] for k in _CONTENT_KEYS}, tensors, key)
    folder = check_save_path(path)
    data = safetensors_bytes(tensors, metadata=fields)
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        # os.open applies the umask to 0o666, as for any new file (mkstemp would give 0o600).
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def check_save_path(path):
    """The folder of ``path``, where a file can be saved; an error naming the fix if not."""
    path = os.fspath(path)
    if not path or path.endswith((os.sep, "/")) or os.path.isdir(path):
        raise ValueError(
            f"Cannot save to {path!r}: it is {'empty' if not path else 'a directory'}. Give a "
            f"file name, such as {os.path.join(path, 'model.safetensors')!r}."
        )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot save to {path!r}: no directory {folder!r}.")
    return folder


def read(path, expected_class_check, key=None):
    """The checked header fields and tensors of ``path``.

    Parameters
    ----------
    path : str
    expected_class_check : callable
        Called with the estimator class name the header records, before the
        tensors are read; raises if that class is not wanted.
    key : bytes or None
        The HMAC key, if the file must be signed with one.

    Returns
    -------
    fields : dict of str to str
    tensors : dict of str to torch.Tensor
    """
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a directory, not a file written by skqcnn.save.")
    try:
        with safe_open(path, framework="pt", device="cpu") as handle:
            fields = handle.metadata() or {}
            _check_header(path, fields)
            expected_class_check(fields.get(KEY_ESTIMATOR, ""))
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except SafetensorError as error:
        raise ValueError(
            f"{path!r} is not a readable safetensors file, so not a file written by "
            f"skqcnn.save; it may be truncated or corrupted ({error})."
        ) from None
    content = {name: value for name, value in fields.items()
               if name not in (KEY_DIGEST, KEY_HMAC)}
    if fields.get(KEY_DIGEST) != _digest(content, tensors):
        raise ValueError(
            f"{path!r} is corrupted: its content does not match the SHA-256 digest "
            f"recorded when it was saved."
        )
    _check_hmac(path, fields, content, tensors, key)
    return fields, tensors


def _check_header(path, fields):
    if fields.get(KEY_FORMAT) != FORMAT_MARKER:
        raise ValueError(
            f"{path!r} is a safetensors file but holds no skqcnn estimator (its "
            f"metadata has no {KEY_FORMAT!r} marker); read plain tensor files with "
            f"safetensors itself."
        )
    version = fields.get(KEY_FORMAT_VERSION, "")
    writer = fields.get(KEY_VERSION, "an unknown version")
    if version not in [str(v) for v in READABLE_VERSIONS]:
        raise ValueError(
            f"{path!r} was written by skqcnn {writer} in format version {version}; this "
            f"skqcnn ({__version__}) reads format versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}. Load it with a matching skqcnn, "
            f"or refit."
        )
    allowed = set(_CONTENT_KEYS) | {KEY_DIGEST} | ({KEY_HMAC} if version != "1" else set())
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValueError(
            f"{path!r} has header fields {unknown} that skqcnn {__version__} does not "
            f"write; it was not written by skqcnn.save, or by a newer version."
        )


def _check_hmac(path, fields, content, tensors, key):
    signature = fields.get(KEY_HMAC)
    if key is None:
        if signature is not None:
            raise ValueError(
                f"{path!r} is signed with a key (HMAC-SHA256): pass the key to "
                f"skqcnn.load(..., key=...) to check who wrote it."
            )
        return
    if signature is None:
        raise ValueError(
            f"{path!r} is not signed, so the key cannot vouch for it: it was saved "
            f"without key=, or its signature was removed."
        )
    if not hmac.compare_digest(signature, _digest(content, tensors, key)):
        raise ValueError(
            f"{path!r} does not match its HMAC for this key: it was signed with another "
            f"key, or changed after signing."
        )
