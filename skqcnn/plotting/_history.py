"""Plots of an entanglement history: entropy per class over training."""

import numbers
from collections.abc import Iterable, Mapping

import numpy as np

from ._matplotlib import require_matplotlib, resolve_axes

_ROW_KEYS = ("epoch", "partition", "class", "entropy")
_LOSS_KEYS = ("train_loss", "valid_loss")


def _history_rows(history):
    """The rows of ``history`` (a sequence of dicts or a fitted estimator)."""
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
    rows = list(rows)
    if not rows:
        raise ValueError("The entanglement history is empty: there is nothing to plot.")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(
                f"History row {i} is a {type(row).__name__}; expected a dict with "
                f"keys {list(_ROW_KEYS)}."
            )
        missing = [key for key in _ROW_KEYS if key not in row]
        if missing:
            raise ValueError(f"History row {i} lacks the key(s) {missing}.")
        epoch = row["epoch"]
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(
                f"History row {i} has epoch {epoch!r}; epochs are integers >= 0."
            )
        if isinstance(row["entropy"], bool) or not isinstance(row["entropy"], numbers.Real):
            raise TypeError(
                f"History row {i} has entropy {row['entropy']!r}; expected a real number."
            )
    return rows


def _check_unit(unit):
    if not isinstance(unit, str):
        raise TypeError(f"unit must be a str such as 'nats' or 'bits', got {unit!r}.")


class _EntropyTable:
    """Entropies of one partition on an (epoch, class) grid.

    Attributes: ``partition``, ``epochs`` (sorted ints), ``classes`` (labels in
    the order asked for, else sorted if they can be), ``entropy`` (n_epochs x
    n_classes) and ``rows`` (the history rows of those cells).
    """

    def __init__(self, history, partition, classes):
        rows = _history_rows(history)
        partitions = list(dict.fromkeys(row["partition"] for row in rows))
        if partition is None:
            if len(partitions) > 1:
                raise ValueError(
                    f"The history has {len(partitions)} partitions {partitions}; "
                    "choose one with partition=."
                )
            partition = partitions[0]
        elif partition not in partitions:
            raise ValueError(
                f"Partition {partition!r} is not in the history; it has {partitions}."
            )
        rows = [row for row in rows if row["partition"] == partition]

        present = list(dict.fromkeys(row["class"] for row in rows))
        try:
            # The order of classes_, whatever the order of the rows.
            present = sorted(present)
        except TypeError:
            pass
        if classes is None:
            selected = present
        else:
            # A lone label (possibly a string) means that one class.
            labels = [classes] if np.ndim(classes) == 0 else list(classes)
            if not labels:
                raise ValueError("classes is empty; pass None for all classes.")
            unknown = [label for label in labels if label not in present]
            if unknown:
                raise ValueError(
                    f"Classes {unknown} are not in the history of partition "
                    f"{partition!r}; it has {present}."
                )
            selected = list(dict.fromkeys(labels))
        column = {label: j for j, label in enumerate(selected)}
        rows = [row for row in rows if row["class"] in column]

        epochs = sorted({int(row["epoch"]) for row in rows})
        line = {epoch: i for i, epoch in enumerate(epochs)}
        entropy = np.full((len(epochs), len(selected)), np.nan)
        cell_rows = np.full(entropy.shape, None, dtype=object)
        filled = np.zeros(entropy.shape, dtype=bool)
        for row in rows:
            i, j = line[int(row["epoch"])], column[row["class"]]
            if filled[i, j]:
                raise ValueError(
                    f"The history has two rows for epoch {epochs[i]}, class "
                    f"{selected[j]!r}, partition {partition!r}."
                )
            cell_rows[i, j] = row
            filled[i, j] = True
            entropy[i, j] = float(row["entropy"])
        holes = np.argwhere(~filled)
        if holes.size:
            i, j = holes[0]
            raise ValueError(
                f"The history has no row for epoch {epochs[i]}, class "
                f"{selected[j]!r}, partition {partition!r}: every class needs a "
                "row at every recorded epoch."
            )
        self.partition = partition
        self.epochs = np.asarray(epochs)
        self.classes = selected
        self.entropy = entropy
        self.rows = cell_rows

    def losses(self, key):
        """The loss ``key`` per epoch; the rows of one epoch must agree."""
        values = np.empty(self.rows.shape)
        for (i, j), row in np.ndenumerate(self.rows):
            if key not in row:
                raise ValueError(f"History rows lack the key {key!r}.")
            value = row[key]
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(
                    f"{key} at epoch {self.epochs[i]} is {value!r}; expected a real number."
                )
            values[i, j] = float(value)
        agree = np.isclose(values, values[:, :1], equal_nan=True).all(axis=1)
        if not agree.all():
            epoch = self.epochs[np.flatnonzero(~agree)[0]]
            raise ValueError(
                f"The rows of epoch {epoch} disagree on {key}: one epoch has one loss."
            )
        return values[:, 0]


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
    table = _EntropyTable(history, partition, classes)
    ax = resolve_axes(ax)
    for j, label in enumerate(table.classes):
        ax.plot(table.epochs, table.entropy[:, j], lw=1, alpha=0.8, label=str(label))
    ax.plot(table.epochs, table.entropy.mean(axis=1), color="black", lw=3, label="mean")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"entanglement entropy ({unit})")
    ax.set_title(f"partition {table.partition}")
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
    table = _EntropyTable(history, partition, classes)
    losses = table.losses(loss)
    known = ~np.isnan(losses)
    if not known.any():
        hint = (" Fit with a validation split (train_split) to record it, or use "
                "loss='train_loss'." if loss == "valid_loss" else "")
        raise ValueError(f"{loss} is NaN at every epoch.{hint}")
    epochs, losses = table.epochs[known], losses[known]
    entropy = table.entropy[known]
    mean = entropy.mean(axis=1)
    if trend and (np.unique(losses).size < 2 or np.unique(mean).size < 2):
        raise ValueError(
            "trend=True fits a line through the points, which needs at least two "
            "distinct losses and two distinct entropies."
        )

    ax = resolve_axes(ax)
    ax.plot(losses, mean, color="0.6", lw=0.8, zorder=1)
    if per_class:
        for j, label in enumerate(table.classes):
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
    ax.set_title(f"partition {table.partition}")
    if per_class or trend:
        ax.legend(fontsize="small")
    return ax
