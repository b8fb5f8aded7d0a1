"""Plots of an entanglement history: entropy per class over training."""

from collections.abc import Iterable, Mapping

import numpy as np

from .._entanglement_history import EntanglementHistory
from ._matplotlib import require_matplotlib, resolve_axes

_LOSS_KEYS = ("train_loss", "valid_loss")


def _history(history):
    """``history`` (a sequence of dict rows or a fitted estimator) as an EntanglementHistory."""
    if hasattr(history, "entanglement_history_"):
        rows = history.entanglement_history_
        if rows is None:
            rows = []
    elif isinstance(history, (str, bytes, Mapping)) or not isinstance(history, Iterable):
        if hasattr(history, "fit"):
            raise ValueError(
                f"{type(history).__name__} has no entanglement_history_: it is "
                "not fitted, or was fitted without entanglement tracking. Fit it "
                "with the track_entanglement= parameter to record a history."
            )
        raise TypeError(
            "history must be a sequence of dict rows with keys 'epoch', "
            "'partition', 'class' and 'entropy', or a fitted estimator with "
            f"entanglement_history_; got {type(history).__name__}."
        )
    else:
        rows = history
    return EntanglementHistory(rows)


def _entropy_table(history, partition, classes):
    """The history, partition label, epochs, class labels and (epochs, classes) entropies."""
    history = _history(history)
    epochs, entropy, labels = history.as_array(partition, classes=classes,
                                               return_classes=True)
    label = history.partitions[0] if partition is None else partition
    return history, label, epochs, labels, entropy


def _epoch_losses(history, partition, classes, key):
    """The loss ``key`` per epoch; the rows of one epoch must agree."""
    epochs, values = history.as_array(partition, classes=classes, value=key)
    agree = np.isclose(values, values[:, :1], equal_nan=True).all(axis=1)
    if not agree.all():
        epoch = epochs[np.flatnonzero(~agree)[0]]
        raise ValueError(
            f"The rows of epoch {epoch} disagree on {key}: one epoch has one loss."
        )
    return values[:, 0]


def _check_unit(unit):
    if not isinstance(unit, str):
        raise TypeError(f"unit must be a str such as 'nats' or 'bits', got {unit!r}.")


def plot_entropy_history(history, *, partition=None, classes=None, unit="nats", ax=None):
    """Entanglement entropy of each class against the training epoch.

    One thin line per class and a thick black line for their mean at each
    epoch, as in figure 2(c, d) of Anagiannis & Cheng.

    Parameters
    ----------
    history : sequence of dict or fitted estimator
        Rows ``{"epoch", "partition", "class", "entropy", ...}``, one per
        epoch, partition and class (epoch 0: before training), such as
        ``estimator.entanglement_history_``; or an estimator fitted with
        entanglement tracking, whose ``entanglement_history_`` is used.
    partition : str or None, default=None
        The partition to plot. None is allowed when the history holds a single
        partition.
    classes : array-like or None, default=None
        Class labels to plot, in this order; the mean is over these. None means
        every class in the history, sorted when the labels can be.
    unit : str, default="nats"
        Unit of the entropies, shown on the y-axis: ``"nats"`` for the
        default natural logarithm, ``"bits"`` for a history recorded with
        ``base=2``.
    ax : matplotlib Axes or None, default=None
        Axes to draw on; None draws on a new figure.

    Returns
    -------
    ax : matplotlib Axes
        The class lines in class order, then the mean line, labelled with the
        class labels and ``"mean"``. The legend sits outside the Axes, to their
        right, so that it hides no line.

    Raises
    ------
    ValueError
        If the history is empty, lacks a partition or class asked for, holds
        several partitions and none was chosen, or does not have exactly one
        row per epoch and class; or if an estimator has no history.
    ImportError
        If matplotlib is not installed.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from skqcnn.plotting import plot_entropy_history
    >>> history = [
    ...     {"epoch": epoch, "partition": "left_right", "class": label,
    ...      "entropy": epoch / 4 + label / 2, "train_loss": 1 / epoch,
    ...      "valid_loss": float("nan")}
    ...     for epoch in (1, 2, 3) for label in (0, 1)
    ... ]
    >>> ax = plot_entropy_history(history, ax=Figure().subplots())
    >>> [line.get_label() for line in ax.get_lines()]
    ['0', '1', 'mean']
    >>> ax.get_lines()[-1].get_ydata()
    array([0.5 , 0.75, 1.  ])
    """
    require_matplotlib()
    from matplotlib.ticker import MaxNLocator

    _check_unit(unit)
    _, partition, epochs, labels, entropy = _entropy_table(history, partition, classes)
    ax = resolve_axes(ax)
    for j, label in enumerate(labels):
        ax.plot(epochs, entropy[:, j], lw=1, alpha=0.8, label=str(label))
    ax.plot(epochs, entropy.mean(axis=1), color="black", lw=3, label="mean")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"entanglement entropy ({unit})")
    ax.set_title(f"partition {partition}")
    # Ten classes and a mean fill the Axes' height: inside, the legend would
    # cover the curves.
    ax.legend(title="class", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return ax


def plot_entropy_vs_loss(history, *, partition=None, loss="train_loss", classes=None,
                         per_class=False, trend=False, colorbar=True, unit="nats", ax=None):
    """Entanglement entropy against the loss, one point per epoch.

    Each point is the mean entropy over the classes at one epoch, placed at
    that epoch's loss and coloured by the epoch; a thin grey line joins the
    points in epoch order (figure 3(a) of Anagiannis & Cheng).

    Parameters
    ----------
    history : sequence of dict or fitted estimator
        As in :func:`plot_entropy_history`; rows also need the ``loss`` key.
    partition : str or None, default=None
        The partition to plot. None is allowed when the history holds a single
        partition.
    loss : {"train_loss", "valid_loss"}, default="train_loss"
        The loss on the x-axis. ``"valid_loss"`` needs a fit with a validation
        split. Epochs whose loss is NaN (such as epoch 0, before training) are
        left out.
    classes : array-like or None, default=None
        Class labels to average over (and to draw with ``per_class``). None
        means every class in the history.
    per_class : bool, default=False
        Also draw each class's entropy against the loss as a thin line.
    trend : bool, default=False
        Also draw the least-squares line of the mean entropy against the loss,
        labelled with their Pearson correlation ``r``; the trend the papers
        describe is the sign of ``r``.
    colorbar : bool, default=True
        Add a colourbar for the epochs to the figure of ``ax``.
    unit : str, default="nats"
        Unit of the entropies, shown on the y-axis.
    ax : matplotlib Axes or None, default=None
        Axes to draw on; None draws on a new figure.

    Returns
    -------
    ax : matplotlib Axes
        The points are ``ax.collections[0]``; with ``per_class`` the class
        lines are ``ax.get_lines()[1:]``, after the joining line; with
        ``trend`` the trend line is the last line.

    Raises
    ------
    ValueError
        As :func:`plot_entropy_history`; also for an unknown ``loss``, a loss
        that differs between the rows of one epoch, a loss that is NaN at
        every epoch, or ``trend=True`` with fewer than two distinct losses.
    ImportError
        If matplotlib is not installed.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from skqcnn.plotting import plot_entropy_vs_loss
    >>> history = [
    ...     {"epoch": epoch, "partition": "left_right", "class": label,
    ...      "entropy": epoch / 4 + label / 2, "train_loss": 1 / epoch,
    ...      "valid_loss": float("nan")}
    ...     for epoch in (1, 2, 4) for label in (0, 1)
    ... ]
    >>> ax = plot_entropy_vs_loss(history, ax=Figure().subplots())
    >>> ax.collections[0].get_offsets().tolist()
    [[1.0, 0.5], [0.5, 0.75], [0.25, 1.25]]
    >>> ax.collections[0].get_array().tolist()
    [1.0, 2.0, 4.0]
    """
    require_matplotlib()
    from matplotlib.ticker import MaxNLocator

    if loss not in _LOSS_KEYS:
        raise ValueError(f"loss must be one of {list(_LOSS_KEYS)}, got {loss!r}.")
    _check_unit(unit)
    history, partition, epochs, labels, entropy = _entropy_table(history, partition, classes)
    losses = _epoch_losses(history, partition, classes, loss)
    known = ~np.isnan(losses)
    if not known.any():
        hint = (" Fit with early_stopping=True (it holds out validation_fraction) to record "
                "it, or use loss='train_loss'." if loss == "valid_loss" else "")
        raise ValueError(f"{loss} is NaN at every epoch.{hint}")
    epochs, losses = epochs[known], losses[known]
    entropy = entropy[known]
    mean = entropy.mean(axis=1)
    if trend and (np.unique(losses).size < 2 or np.unique(mean).size < 2):
        raise ValueError(
            "trend=True fits a line through the points, which needs at least two "
            "distinct losses and two distinct entropies."
        )

    ax = resolve_axes(ax)
    ax.plot(losses, mean, color="0.6", lw=0.8, zorder=1)
    if per_class:
        for j, label in enumerate(labels):
            ax.plot(losses, entropy[:, j], lw=0.8, alpha=0.7, label=str(label), zorder=1)
    points = ax.scatter(losses, mean, c=epochs.astype(float), cmap="viridis",
                        zorder=2, label="mean over classes")
    if trend:
        slope, intercept = np.polyfit(losses, mean, 1)
        pearson = np.corrcoef(losses, mean)[0, 1]
        ends = np.array([losses.min(), losses.max()])
        ax.plot(ends, slope * ends + intercept, color="black", lw=1.5, ls="--", zorder=3,
                label=f"least-squares line, r = {pearson:+.2f}")
    if colorbar:
        bar = ax.figure.colorbar(points, ax=ax, label="epoch")
        bar.locator = MaxNLocator(integer=True)
        bar.update_ticks()
    ax.set_xlabel(loss.replace("_", " "))
    ax.set_ylabel(("mean entanglement entropy" if not per_class else "entanglement entropy")
                  + f" ({unit})")
    ax.set_title(f"partition {partition}")
    if per_class or trend:
        ax.legend(fontsize="small")
    return ax
