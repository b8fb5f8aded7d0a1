"""The skorch net trained through Hugging Face Accelerate.

Imported only when an estimator gets ``accelerator=``: ``accelerate`` is an
optional extra.
"""

from skorch import NeuralNet
from skorch.hf import AccelerateMixin


class AcceleratedNeuralNet(AccelerateMixin, NeuralNet):
    """skorch ``NeuralNet`` whose training steps go through an ``Accelerator``."""
