"""The skorch net trained through Hugging Face Accelerate.

Imported only when an estimator gets ``accelerator=``: ``accelerate`` is an
optional extra.
"""

from skorch.hf import AccelerateMixin

from ._base import TrainingNet


class AcceleratedNeuralNet(AccelerateMixin, TrainingNet):
    """The estimators' ``TrainingNet`` with training steps through an ``Accelerator``."""
