"""Warn when a fit ends no better than a trivial classifier."""

import warnings

import numpy as np
import torch
from skorch.callbacks import Callback

from ..exceptions import NotLearningWarning


class NotLearningCheck(Callback):
    """Warn with :class:`~skqcnn.exceptions.NotLearningWarning` when training failed.

    When training ends, the fit has not learnt if its last training loss is no
    lower than the loss of all-zero scores (what an untrained product network
    drifts to), or if its accuracy on the training data is no better than
    always predicting the most frequent class. The message says which, and
    names the likely fix from the loss curve: a loss that ended above where it
    started asks for a lower learning rate, one that fell too slowly for more
    epochs or a larger rate; float32 training is named when float64 is not in
    use. The fit itself is kept.

    Examples
    --------
    >>> import warnings
    >>> from sklearn.datasets import load_digits
    >>> from skqcnn import QCNNClassifier
    >>> from skqcnn.exceptions import NotLearningWarning
    >>> X, y = load_digits(n_class=2, return_X_y=True)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = QCNNClassifier(lr=1e-9, max_epochs=1, random_state=0).fit(X, y)
    >>> any(issubclass(w.category, NotLearningWarning) for w in caught)
    True
    """

    def on_train_end(self, net, X=None, y=None, **kwargs):
        """Compare the last training loss and the training accuracy with chance."""
        losses = [row["train_loss"] for row in net.history if "train_loss" in row]
        if X is None or y is None or not losses:
            return
        y = torch.as_tensor(np.asarray(y))
        scores = net.forward(X, training=False)
        with torch.no_grad():
            zero_loss = float(net.criterion_(torch.zeros_like(scores), y.to(scores.device)))
        accuracy = float((scores.abs().argmax(dim=1).cpu() == y).double().mean())
        chance = float(np.bincount(y.numpy()).max() / len(y))
        problems = []
        if losses[-1] >= zero_loss:
            problems.append(f"the training loss {losses[-1]:.4g} is no lower than the "
                            f"{zero_loss:.4g} of all-zero scores")
        if accuracy <= chance:
            problems.append(f"the training accuracy {accuracy:.3f} is no better than "
                            f"always predicting the most frequent class ({chance:.3f})")
        if not problems:
            return
        if len(losses) > 1 and losses[-1] > losses[0]:
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
            NotLearningWarning, stacklevel=2,
        )

    def __repr__(self):
        return "<NotLearningCheck()>"
