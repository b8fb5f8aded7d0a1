"""Bar plots of Schmidt spectra."""

import numbers
from collections.abc import Mapping

import numpy as np

from ._matplotlib import require_matplotlib, resolve_axes


def _check_spectrum(values, name):
    try:
        spectrum = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a 1-D array of real numbers.") from exc
    if spectrum.ndim != 1 or spectrum.size == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D array, got shape {spectrum.shape}."
        )
    if not np.all(np.isfinite(spectrum)) or np.any(spectrum < 0):
        raise ValueError(f"{name} must hold finite, non-negative values.")
    return np.sort(spectrum)[::-1]


def _split_spectra(spectra):
    """``(labels or None, names, arrays)`` from the accepted input forms.

    ``names`` say which spectrum an error is about.
    """
    if isinstance(spectra, Mapping):
        if not spectra:
            raise ValueError("spectra is empty.")
        return ([str(key) for key in spectra], [f"spectra[{key!r}]" for key in spectra],
                list(spectra.values()))
    if isinstance(spectra, np.ndarray):
        if spectra.ndim == 1:
            return None, ["spectra"], [spectra]
        if spectra.ndim == 2:
            return None, [f"spectra[{k}]" for k in range(len(spectra))], list(spectra)
        raise ValueError(
            f"An array of spectra must be 1-D or 2-D, got shape {spectra.shape}."
        )
    if isinstance(spectra, (str, bytes)) or not hasattr(spectra, "__len__"):
        raise TypeError(
            "spectra must be a 1-D array, a list of 1-D arrays or a dict of them, "
            f"got {type(spectra).__name__}."
        )
    if len(spectra) == 0:
        raise ValueError("spectra is empty.")
    if all(isinstance(value, numbers.Real) for value in spectra):
        return None, ["spectra"], [spectra]
    return None, [f"spectra[{k}]" for k in range(len(spectra))], list(spectra)


def plot_schmidt_spectra(spectra, *, labels=None, n_values=None, log=False, ax=None):
    """Schmidt spectra as bars, grouped when there are several.

    Parameters
    ----------
    spectra : array-like or list of array-like or dict
        One spectrum (a 1-D array of squared Schmidt coefficients, such as one
        entry of ``estimator.schmidt_spectrum(...)``), a list of them (one per
        class: bars grouped by index), a 2-D array (one spectrum per row), or a
        dict from label to spectrum. Values are plotted as given, sorted in
        descending order.
    labels : list of str or None, default=None
        One legend label per spectrum. None labels the spectra of a list by
        their position and those of a dict by their keys; a single spectrum
        then has no legend.
    n_values : int or None, default=None
        Show only the ``n_values`` largest values of each spectrum.
    log : bool, default=False
        Logarithmic y-axis, to see the small Schmidt values.
    ax : matplotlib Axes or None, default=None
        Axes to draw on; None draws on a new figure.

    Returns
    -------
    ax : matplotlib Axes
        ``ax.containers`` holds one bar container per spectrum, in order; bar
        ``i`` sits at ``x = i + 1`` (plus the group offset).

    Raises
    ------
    ValueError
        If a spectrum is empty, not 1-D, negative or not finite, if ``labels``
        has the wrong length, or if ``n_values`` is not a positive integer.
    ImportError
        If matplotlib is not installed.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from skqcnn.plotting import plot_schmidt_spectra
    >>> spectra = {"class 0": [0.5, 0.3, 0.2], "class 1": [0.9, 0.1]}
    >>> ax = plot_schmidt_spectra(spectra, ax=Figure().subplots())
    >>> ax.containers[0].datavalues
    array([0.5, 0.3, 0.2])
    >>> ax.containers[1].datavalues
    array([0.9, 0.1])
    """
    require_matplotlib()
    from matplotlib.ticker import MaxNLocator

    default_labels, names, raw = _split_spectra(spectra)
    values = [_check_spectrum(spectrum, name) for name, spectrum in zip(names, raw, strict=True)]
    many = len(values) > 1
    if isinstance(labels, str):
        raise TypeError("labels must be a list of strings, one per spectrum, not a str.")
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(labels) != len(values):
            raise ValueError(
                f"labels has {len(labels)} entries for {len(values)} spectra."
            )
    elif default_labels is not None:
        labels = default_labels
    elif many:
        labels = [str(k) for k in range(len(values))]
    if n_values is not None:
        if isinstance(n_values, bool) or not isinstance(n_values, numbers.Integral) \
                or n_values < 1:
            raise ValueError(f"n_values must be a positive integer or None, got {n_values!r}.")
        values = [spectrum[:n_values] for spectrum in values]

    ax = resolve_axes(ax)
    width = 0.8 / len(values)
    for k, spectrum in enumerate(values):
        # Centre each group of bars on its integer Schmidt index.
        x = np.arange(1, spectrum.size + 1) + (k - (len(values) - 1) / 2) * width
        ax.bar(x, spectrum, width=width, label=None if labels is None else labels[k])
    longest = max(spectrum.size for spectrum in values)
    if longest <= 20:
        ax.set_xticks(np.arange(1, longest + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("Schmidt index i")
    ax.set_ylabel("squared Schmidt coefficient p_i")
    if labels is not None:
        ax.legend(fontsize="small")
    return ax
