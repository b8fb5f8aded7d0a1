"""skqcnn: tensor-network classifiers for scikit-learn, and their entanglement.

Estimators
----------
QCNNClassifier
    The q-CNN of Anagiannis & Cheng.
OverlappingConvACClassifier
    The overlapping convolutional arithmetic circuit of Levine et al.
DeepRACClassifier
    The deep recurrent arithmetic circuit of Levine et al.

Functions
---------
save, load
    Persistence without pickle: JSON and safetensors in one file, optionally
    signed with an HMAC key.

Subpackages
-----------
entanglement
    Exact and Monte Carlo entanglement of network states. Its tree engine
    needs only numpy, scipy and opt_einsum.
nn
    The torch modules.
callbacks
    skorch callbacks, among them the entanglement tracker.
datasets
    The digits, MNIST and Fashion-MNIST, and the local/global task.
plotting
    Entropy during training, Schmidt spectra and rank bounds; needs
    matplotlib (``pip install "skqcnn[plot]"``).
"""

import importlib

__version__ = "0.1.0"

# Estimators load torch and skorch; importing them lazily keeps
# ``import skqcnn.entanglement`` light for users of the engine alone.
_ESTIMATORS = {
    "DeepRACClassifier": "._rac",
    "OverlappingConvACClassifier": "._convac",
    "QCNNClassifier": "._qcnn",
}
_FUNCTIONS = {
    "load": "._persistence",
    "save": "._persistence",
}
_LAZY = {**_ESTIMATORS, **_FUNCTIONS}

__all__ = [*sorted(_ESTIMATORS), *sorted(_FUNCTIONS), "__version__"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
