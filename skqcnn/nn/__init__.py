"""Torch modules of the skqcnn networks, usable without the estimators."""

from ._calibration import recalibrate_statistics
from ._convac import OverlappingConvACNetwork
from ._layers import ConstantChannelBatchNorm, LocalBasis, SequenceBasis
from ._losses import BornCrossEntropy, SquareLoss
from ._qcnn import QCNNNetwork
from ._rac import DeepRACNetwork

__all__ = [
    "BornCrossEntropy",
    "ConstantChannelBatchNorm",
    "DeepRACNetwork",
    "LocalBasis",
    "OverlappingConvACNetwork",
    "QCNNNetwork",
    "SequenceBasis",
    "SquareLoss",
    "recalibrate_statistics",
]
