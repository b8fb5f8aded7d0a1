"""Measured Schmidt ranks or entropies against their bounds, by block size."""

import math
import numbers

import numpy as np

from ._matplotlib import require_matplotlib, resolve_axes

_QUANTITIES = ("rank", "entropy")


def _as_objects(values, name, max_ndim):
    """``values`` as an object array, so that huge Python ints stay exact."""
    array = np.asarray(values, dtype=object)
    if not 1 <= array.ndim <= max_ndim:
        shapes = "(n_sizes,)" if max_ndim == 1 else "(n_sizes,) or (n_runs, n_sizes)"
        raise ValueError(f"{name} must have shape {shapes}, got shape {array.shape}.")
    for value in array.flat:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must hold real numbers, got {value!r}.")
    return array


def _plotted(values, name, is_rank, log2):
    """The y-values drawn for ``values``: ranks (maybe as log2) or entropies."""
    def convert(value):
        if not isinstance(value, numbers.Integral) and not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}.")
        if is_rank and value < 1:
            raise ValueError(f"{name} holds {value!r}, but a Schmidt rank is at least 1.")
        if is_rank and log2:
            # math.log2 is exact in range for Python ints of any size.
            return math.log2(value)
        try:
            return float(value)
        except OverflowError:
            raise ValueError(
                f"{name} holds a value too large for a float; plot it with log2=True."
            ) from None

    return np.array([convert(value) for value in values.flat]).reshape(values.shape)


def plot_rank_vs_bound(sizes, measured, upper_bound=None, lower_bound=None, *,
                       quantity="rank", log2=True, label=None, color=None, ax=None):
    """Measured Schmidt rank or entropy and its bounds, against block size.

    For the scaling laws of Levine et al. (PRL 2019): Theorem 1 (volume law of
    overlapping convolutional networks, with the min-cut upper bound) and
    Theorem 2 (logarithmic growth in deep recurrent networks, with its lower
    bound). The measured values are drawn as a solid line with markers, the
    upper bound dashed and the lower bound dotted, all in one colour.

    Parameters
    ----------
    sizes : array-like of shape (n_sizes,)
        Block sizes ``|A|``, the x-axis.
    measured : array-like of shape (n_sizes,) or (n_runs, n_sizes)
        Measured Schmidt ranks (``quantity="rank"``) or entropies in bits
        (``quantity="entropy"``; pass ``base=2`` to ``entanglement_entropy``).
        With several runs (random seeds, say) the line is the mean of the
        plotted values (of ``log2`` rank with ``log2=True``) and a shaded band
        spans their minimum to maximum.
    upper_bound, lower_bound : array-like of shape (n_sizes,) or None, default=None
        Bounds on the Schmidt rank, such as ``schmidt_rank_bound`` or
        ``rac_rank_bound`` and ``rac_rank_lower_bound``; Python ints of any
        size are fine with ``log2=True``.
    quantity : {"rank", "entropy"}, default="rank"
        What ``measured`` holds. Every Renyi entropy in bits is at most
        ``log2`` of the rank, so entropies are drawn against ``log2`` of the
        upper bound; a lower bound on the rank does not bound an entropy and
        is refused.
    log2 : bool, default=True
        Draw ``log2`` of the ranks (bits) on a linear axis, which keeps bounds
        beyond the float range exact. False draws the ranks themselves;
        entropies need True.
    label : str or None, default=None
        Legend label of the measured line (None: ``"measured"``); the bounds'
        labels name it too, so that several calls can share one Axes.
    color : matplotlib colour or None, default=None
        Colour of all lines; None takes the next colour of the Axes' cycle.
    ax : matplotlib Axes or None, default=None
        Axes to draw on; None draws on a new figure.

    Returns
    -------
    ax : matplotlib Axes
        Lines drawn in order: measured, upper bound, lower bound (those given).

    Raises
    ------
    ValueError
        If shapes disagree, a value is not finite, a rank is below 1, a rank
        is too large for a float with ``log2=False``, ``quantity`` is unknown,
        or an entropy comes with a lower bound or ``log2=False``.
    TypeError
        If a value is not a real number.
    ImportError
        If matplotlib is not installed.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from skqcnn.plotting import plot_rank_vs_bound
    >>> ax = plot_rank_vs_bound([1, 2, 3], [2, 4, 4], upper_bound=[2, 4, 8],
    ...                         ax=Figure().subplots())
    >>> [line.get_ydata().tolist() for line in ax.get_lines()]
    [[1.0, 2.0, 2.0], [1.0, 2.0, 3.0]]
    >>> ax.get_ylabel()
    'log2 Schmidt rank (bits)'
    """
    require_matplotlib()
    from matplotlib.ticker import MaxNLocator

    if quantity not in _QUANTITIES:
        raise ValueError(f"quantity must be one of {list(_QUANTITIES)}, got {quantity!r}.")
    is_rank = quantity == "rank"
    if not is_rank and not log2:
        raise ValueError(
            "Entropies are compared with log2 of the rank bound: use log2=True, "
            "with entropies in bits."
        )
    if not is_rank and lower_bound is not None:
        raise ValueError(
            "A lower bound on the Schmidt rank does not bound the entropy; plot "
            "measured ranks (quantity='rank') against it instead."
        )
    x = _plotted(_as_objects(sizes, "sizes", 1), "sizes", False, False)
    y = _plotted(_as_objects(measured, "measured", 2), "measured", is_rank, log2)
    if y.shape[-1] != x.size:
        raise ValueError(
            f"measured has {y.shape[-1]} values per run for {x.size} sizes."
        )
    bounds = {}
    for name, bound in (("upper bound", upper_bound), ("lower bound", lower_bound)):
        if bound is not None:
            key = name.replace(" ", "_")
            values = _plotted(_as_objects(bound, key, 1), key, True, log2)
            if values.size != x.size:
                raise ValueError(f"{key} has {values.size} values for {x.size} sizes.")
            bounds[name] = values

    ax = resolve_axes(ax)
    runs = y if y.ndim == 2 else None
    if runs is not None:
        y = runs.mean(axis=0)
    (line,) = ax.plot(x, y, "o-", color=color, label="measured" if label is None else label)
    color = line.get_color()
    if runs is not None:
        ax.fill_between(x, runs.min(axis=0), runs.max(axis=0), color=color, alpha=0.2,
                        linewidth=0)
    suffix = "" if label is None else f", {label}"
    if not is_rank:
        suffix += " (log2 rank)"
    styles = {"upper bound": ("--", 1.5), "lower bound": (":", 2.5)}
    for name, values in bounds.items():
        style, width = styles[name]
        ax.plot(x, values, style, color=color, lw=width, label=name + suffix)
    if np.all(x == np.round(x)):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("block size |A|")
    if is_rank:
        ax.set_ylabel("log2 Schmidt rank (bits)" if log2 else "Schmidt rank")
    else:
        ax.set_ylabel("entropy (bits)")
    ax.legend(fontsize="small")
    return ax
