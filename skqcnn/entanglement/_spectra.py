"""Entropies and Schmidt spectra from dense amplitudes or from spectra.

Everything here works in float64. These functions are the reference that every
faster method in :mod:`skqcnn.entanglement` is tested against.
"""

import numpy as np


def positive_order(alpha):
    """``alpha`` as a float, checked to be a Renyi order (> 0, inf allowed)."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a positive number, got {alpha!r}.") from None
    if not value > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}.")
    return value


def log_base(base):
    """Natural logarithm of ``base`` (1 for None), checked to be a logarithm base."""
    if base is None:
        return 1.0
    try:
        value = float(base)
    except (TypeError, ValueError):
        value = np.nan
    if not (0 < value < np.inf and value != 1):
        raise ValueError(f"base must be None or a positive number other than 1, got {base!r}.")
    return float(np.log(value))


def entropy_from_spectrum(spectrum, alpha=1.0, base=None):
    """Von Neumann or Renyi entropy of a normalised Schmidt spectrum.

    Parameters
    ----------
    spectrum : array-like of shape (rank,)
        Non-negative squared Schmidt coefficients. They are normalised to sum 1
        here, so any positive scale is accepted.
    alpha : float, default=1.0
        Renyi order. ``alpha=1`` gives the von Neumann entropy
        ``-sum p log p``; other positive values give
        ``log(sum p**alpha) / (1 - alpha)``; ``np.inf`` gives ``-log max p``.
    base : float or None, default=None
        Logarithm base. None means the natural logarithm (nats).

    Returns
    -------
    entropy : float

    Examples
    --------
    >>> from skqcnn.entanglement import entropy_from_spectrum
    >>> round(entropy_from_spectrum([0.5, 0.5]), 6)
    0.693147
    >>> entropy_from_spectrum([0.5, 0.5], base=2)
    1.0
    """
    p = np.asarray(spectrum, dtype=np.float64)
    total = p.sum()
    if p.ndim != 1 or total <= 0 or not np.isfinite(total) or np.any(p < 0):
        raise ValueError(
            "spectrum must be a 1-D array of non-negative finite values with a "
            "positive sum."
        )
    # Normalise before dropping zeros: tiny weights can underflow in the division.
    p = p / total
    p = p[p > 0]
    alpha = positive_order(alpha)
    if alpha == 1:
        value = float(-np.sum(p * np.log(p)))
    elif np.isinf(alpha):
        value = float(-np.log(p.max()))
    else:
        value = float(np.log(np.sum(p**alpha)) / (1.0 - alpha))
    # -0.0 and rounding noise of a product state read as exactly zero.
    value = value if value > 0 else 0.0
    return float(value / log_base(base))


def spectrum_from_amplitudes(amplitudes, in_a, local_dim):
    """Schmidt spectrum of a dense state across the bipartition A | B.

    Parameters
    ----------
    amplitudes : ndarray of shape (local_dim ** n_sites,)
        The state, sites in order, the last site varying fastest (C order).
    in_a : array-like of bool, shape (n_sites,)
        True for the sites in subsystem A.
    local_dim : int
        Dimension of each site.

    Returns
    -------
    spectrum : ndarray of float64
        Normalised squared Schmidt coefficients, descending, zeros dropped at
        a relative tolerance of ``1e-14``.

    Examples
    --------
    >>> import numpy as np
    >>> from skqcnn.entanglement import spectrum_from_amplitudes
    >>> bell = np.array([1.0, 0.0, 0.0, 1.0])
    >>> spectrum_from_amplitudes(bell, [True, False], local_dim=2)
    array([0.5, 0.5])
    """
    in_a = np.asarray(in_a, dtype=bool)
    n_sites = in_a.size
    psi = np.asarray(amplitudes, dtype=np.float64).reshape((local_dim,) * n_sites)
    sites_a = np.flatnonzero(in_a)
    sites_b = np.flatnonzero(~in_a)
    matrix = np.transpose(psi, tuple(sites_a) + tuple(sites_b)).reshape(
        local_dim ** sites_a.size, -1
    )
    singular = np.linalg.svd(matrix, compute_uv=False)
    return normalised_spectrum(singular**2)


def normalised_spectrum(weights, rtol=1e-14):
    """Sort, drop numerical zeros and normalise squared Schmidt coefficients.

    Parameters
    ----------
    weights : array-like of shape (k,)
        Non-negative weights (squared singular values or eigenvalues of a
        reduced density matrix). Tiny negative values from round-off are
        treated as zero.
    rtol : float, default=1e-14
        Weights below ``rtol * max(weights)`` are dropped.

    Returns
    -------
    spectrum : ndarray of float64
        Descending, summing to 1.

    Examples
    --------
    >>> from skqcnn.entanglement import normalised_spectrum
    >>> normalised_spectrum([1.0, 3.0, -1e-20])
    array([0.75, 0.25])
    """
    w = np.sort(np.asarray(weights, dtype=np.float64).ravel())[::-1]
    if w.size == 0 or w[0] <= 0 or not np.isfinite(w[0]):
        raise ValueError("The state has zero or non-finite norm.")
    w = w[w > rtol * w[0]]
    return w / w.sum()
