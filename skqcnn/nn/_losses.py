"""Losses on raw network scores alpha_y."""

import torch
from torch import nn
from torch.nn import functional as F


class SquareLoss(nn.Module):
    """One-hot square loss ``sum_y (alpha_y - [y == label])**2``, averaged over
    the batch (Anagiannis & Cheng eq. 48).

    Examples
    --------
    >>> import torch
    >>> from skqcnn.nn import SquareLoss
    >>> SquareLoss()(torch.tensor([[1.0, 0.0], [0.5, 0.5]]), torch.tensor([0, 1])).item()
    0.25
    """

    def forward(self, scores, target):
        """Loss of ``scores`` (batch, n_classes) against int labels (batch,)."""
        one_hot = F.one_hot(target.long(), scores.shape[1]).to(scores.dtype)
        return ((scores - one_hot) ** 2).sum(dim=1).mean()


class BornCrossEntropy(nn.Module):
    """Cross-entropy of the Born-rule probabilities ``alpha_y**2 / sum alpha**2``.

    The same probabilities as ``predict_proba``, computed from ``log alpha**2``
    so that small scores do not underflow.

    Examples
    --------
    >>> import math, torch
    >>> from skqcnn.nn import BornCrossEntropy
    >>> loss = BornCrossEntropy()(torch.tensor([[1.0, 1.0]]), torch.tensor([0]))
    >>> math.isclose(loss.item(), math.log(2), rel_tol=1e-6)
    True
    """

    def forward(self, scores, target):
        """Mean negative log Born probability of the int labels."""
        log_weights = torch.log(scores.square() + torch.finfo(scores.dtype).tiny)
        log_norm = torch.logsumexp(log_weights, dim=1)
        return (log_norm - log_weights.gather(1, target.long()[:, None])[:, 0]).mean()


LOSSES = {"square": SquareLoss, "cross_entropy": BornCrossEntropy}
