"""Warn when a fit ends no better than a trivial classifier."""

import warnings

import numpy as np
import torch
from skorch.callbacks import Callback

from ..exceptions import NotLearningWarning


class NotLearningCheck(Callback):
    """Warn with :class:`~skqcnn.exceptions.NotLearningWarning` when training failed.

    When training ends, the fit has not learnt if the loss of its final
    scores on the training data is no lower than the loss of all-zero scores
    (what an untrained product network drifts to), or if its accuracy there is
    no better than always predicting the most frequent class. The message
    says which, and names the likely fix from the loss curve of the epochs: a
    loss that ended above where it started, or that reached ten times the
    loss of all-zero scores (a diverging step), asks for a lower learning
    rate; one that fell too slowly for more epochs or a larger rate; float32
    training is named when float64 is not in use. The fit itself is kept.

    skqcnn's estimators do not add this callback: they run the same check,
    ``warn_if_not_learning``, on the eval-mode scores they compute after
    training anyway (to check that they are finite).

    Examples
    --------
    >>> import warnings
    >>> import torch
    >>> from skorch import NeuralNet
    >>> from skqcnn.callbacks import NotLearningCheck
    >>> from skqcnn.exceptions import NotLearningWarning
    >>> from skqcnn.nn import SquareLoss
    >>> X = torch.ones(40, 3)
    >>> y = torch.cat([torch.zeros(30), torch.ones(10)]).long()
    >>> net = NeuralNet(torch.nn.Linear(3, 2), criterion=SquareLoss, max_epochs=2,
    ...                 train_split=None, callbacks=[NotLearningCheck()], verbose=0)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = net.fit(X, y)
    >>> any(issubclass(w.category, NotLearningWarning) for w in caught)
    True
    """

    def on_train_end(self, net, X=None, y=None, **kwargs):
        """Compare the last training loss and the training accuracy with chance."""
        if X is not None and y is not None:
            warn_if_not_learning(net, net.forward(X, training=False), y, stacklevel=3)

    def __repr__(self):
        return "<NotLearningCheck()>"


def warn_if_not_learning(net, scores, y, *, stacklevel=2):
    """The check of :class:`NotLearningCheck` on scores already computed.

    Estimators call it on the scores of their own finiteness check,
    which saves a second pass over the training data.

    Parameters
    ----------
    net : skorch.NeuralNet
        The trained net: its history, criterion, ``lr`` and ``max_epochs``.
    scores : torch.Tensor or ndarray of shape (n_samples, n_classes)
        Eval-mode scores of the training samples.
    y : array-like of int of shape (n_samples,)
        Their encoded classes.
    stacklevel : int, default=2
        Passed to :func:`warnings.warn`.
    """
    losses = [row["train_loss"] for row in net.history if "train_loss" in row]
    if not losses:
        return
    scores = torch.as_tensor(scores)
    y = torch.as_tensor(np.asarray(y), device=scores.device)
    with torch.no_grad():
        zero_loss = float(net.criterion_(torch.zeros_like(scores), y))
        # The final model's, not the last epoch's average over changing weights.
        final_loss = float(net.criterion_(scores, y))
    accuracy = float((scores.abs().argmax(dim=1) == y).double().mean())
    chance = float(np.bincount(y.cpu().numpy()).max() / len(y))
    problems = []
    if not final_loss < zero_loss:
        problems.append(f"the training loss {final_loss:.4g} is no lower than the "
                        f"{zero_loss:.4g} of all-zero scores")
    if accuracy <= chance:
        problems.append(f"the training accuracy {accuracy:.3f} is no better than "
                        f"always predicting the most frequent class ({chance:.3f})")
    if not problems:
        return
    if max(losses) > 10 * zero_loss:
        fixes = [f"lower the learning rate (lr={net.lr}): the training loss reached "
                 f"{max(losses):.4g}, more than ten times that of all-zero scores"]
    elif len(losses) > 1 and losses[-1] > losses[0]:
        fixes = [f"lower the learning rate (lr={net.lr}): the loss rose from "
                 f"{losses[0]:.4g} to {losses[-1]:.4g}"]
    else:
        fixes = [f"train longer (max_epochs={net.max_epochs}) or with a larger "
                 f"learning rate (lr={net.lr})"]
    if next(net.module_.parameters()).dtype != torch.float64:
        fixes.append("if the scores of many multiplied levels vanish or overflow in "
                     "float32, train in float64 (dtype=np.float64)")
    warnings.warn(
        f"Training ended without learning: {' and '.join(problems)}, after "
        f"{len(losses)} epoch(s). Likely fix: {'; or '.join(fixes)}.",
        NotLearningWarning, stacklevel=stacklevel + 1,
    )
