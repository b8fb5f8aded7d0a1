"""skorch callbacks used by skqcnn estimators, also usable on their own."""

from ._batchnorm import BatchNormRecalibration
from ._entanglement import (
    EntanglementHistory,
    EntanglementTracker,
    labelled_partitions,
    partition_label,
)
from ._finite_loss import FiniteLossGuard
from ._not_learning import NotLearningCheck
from ._shuffle import EpochSeededShuffle

__all__ = [
    "BatchNormRecalibration",
    "EntanglementHistory",
    "EntanglementTracker",
    "EpochSeededShuffle",
    "FiniteLossGuard",
    "NotLearningCheck",
    "labelled_partitions",
    "partition_label",
]
