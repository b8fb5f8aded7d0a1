"""skorch callbacks used by skqcnn estimators, also usable on their own."""

from ._batchnorm import BatchNormRecalibration
from ._finite_loss import FiniteLossGuard

__all__ = ["BatchNormRecalibration", "FiniteLossGuard"]
