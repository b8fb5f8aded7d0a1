"""Plots of training-time entanglement, Schmidt spectra and rank bounds.

matplotlib is an optional dependency (``pip install "skqcnn[plot]"``): this
package imports without it, and each function raises an ``ImportError`` naming
that command when called without it. Every function draws on the Axes given
as ``ax`` (None: a new figure) and returns it.

Functions
---------
plot_entropy_history
    Entropy of each class and their mean against the epoch.
plot_entropy_vs_loss
    Mean entropy against the training or validation loss, per epoch.
plot_schmidt_spectra
    Schmidt spectra as (grouped) bars.
plot_rank_vs_bound
    Measured Schmidt rank or entropy and its bounds against block size.
"""

from ._bounds import plot_rank_vs_bound
from ._history import plot_entropy_history, plot_entropy_vs_loss
from ._spectra import plot_schmidt_spectra

__all__ = [
    "plot_entropy_history",
    "plot_entropy_vs_loss",
    "plot_rank_vs_bound",
    "plot_schmidt_spectra",
]
