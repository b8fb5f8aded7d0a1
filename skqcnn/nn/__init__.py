"""Torch modules of the skqcnn networks, usable without the estimators."""

from ._layers import ConstantChannelBatchNorm, LocalBasis
from ._losses import BornCrossEntropy, SquareLoss
from ._qcnn import QCNNNetwork

__all__ = [
    "BornCrossEntropy",
    "ConstantChannelBatchNorm",
    "LocalBasis",
    "QCNNNetwork",
    "SquareLoss",
]
