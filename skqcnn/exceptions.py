"""Warnings that skqcnn emits.

Both derive from scikit-learn's :class:`~sklearn.exceptions.ConvergenceWarning`,
so a filter on that class (as in scikit-learn scripts) covers them too.
"""

from sklearn.exceptions import ConvergenceWarning

__all__ = ["MonteCarloConvergenceWarning", "NotLearningWarning"]


class MonteCarloConvergenceWarning(ConvergenceWarning):
    """Monte Carlo chains disagree or hold too few effective samples.

    The estimate and its standard error are returned anyway; the message
    says which diagnostic failed and what to raise.
    """


class NotLearningWarning(ConvergenceWarning):
    """Training ended no better than a trivial classifier.

    Emitted when the training loss stays at the level of all-zero scores or
    the training accuracy stays at chance; the message names the likely fix.
    """
