"""Entropies and Schmidt spectra from dense amplitudes or from spectra.

Everything here works in float64. These functions are the reference that every
faster method in :mod:`skqcnn.entanglement` is tested against.
"""

import math
import numbers

import numpy as np

MAX_AMPLITUDES = 2**22
"""Largest number of amplitudes per class that any dense (brute-force) state holds."""


def positive_order(alpha):
    """``alpha`` as a float, checked to be a Renyi order (``0 <= alpha <= inf``).

    An int beyond the range of floats is ``inf``: the entropies of orders
    that large equal the min-entropy to float precision.

    Raises
    ------
    TypeError
        If ``alpha`` is not a real number (bools and strings included).
    ValueError
        If ``alpha`` is NaN or negative.
    """
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, numbers.Real):
        raise TypeError(
            f"alpha must be a real number (the Renyi order), got {alpha!r} of type "
            f"{type(alpha).__name__}."
        )
    try:
        value = float(alpha)
    except OverflowError:
        value = math.inf if alpha > 0 else -math.inf
    if not value >= 0:
        raise ValueError(
            f"alpha must be >= 0 (0 Hartley, 1 von Neumann, np.inf min-entropy), "
            f"got {alpha!r}."
        )
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


def relative_tolerance(tol):
    """``tol`` as a float in ``[0, 1)``, or None; checked."""
    if tol is None:
        return None
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, numbers.Real):
        raise TypeError(f"tol must be None or a real number, got {tol!r}.")
    if not 0 <= tol < 1:
        raise ValueError(
            f"tol must be None or in [0, 1) (a fraction of the largest value), got "
            f"{tol!r}."
        )
    return float(tol)


def entropy_from_spectrum(spectrum, alpha=1.0, base=None):
    """Von Neumann or Renyi entropy of a normalised Schmidt spectrum.

    Parameters
    ----------
    spectrum : array-like of shape (rank,)
        Non-negative squared Schmidt coefficients. They are normalised to sum 1
        here, so any positive scale is accepted.
    alpha : float, default=1.0
        Renyi order, ``0 <= alpha <= inf``. ``alpha=1`` gives the von Neumann
        entropy ``-sum p log p``; ``np.inf`` gives the min-entropy
        ``-log max p``; ``alpha=0`` gives the Hartley entropy, the log of the
        number of strictly positive entries of ``spectrum`` as given (no
        tolerance is applied here, so round-off values count: pass a spectrum
        cut at a tolerance, e.g. ``tol=1e-12``, for a numerical rank). Other
        orders give ``log(sum p**alpha) / (1 - alpha)``, evaluated in log space
        as ``(alpha log p_max + log sum (p / p_max)**alpha) / (1 - alpha)``,
        so that large finite orders tend to the min-entropy instead of
        overflowing.
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
    >>> round(entropy_from_spectrum([0.6, 0.4], alpha=2000), 4)
    0.5111
    """
    p = np.asarray(spectrum, dtype=np.float64)
    total = p.sum()
    if p.ndim != 1 or total <= 0 or not np.isfinite(total) or np.any(p < 0):
        raise ValueError(
            "spectrum must be a 1-D array of non-negative finite values with a "
            "positive sum."
        )
    alpha = positive_order(alpha)
    # Normalise before dropping zeros: tiny weights can underflow in the division.
    p = p / total
    p = p[p > 0]
    log_top = np.log(p.max())
    if alpha == 0:
        value = float(np.log(p.size))
    elif alpha == 1:
        value = float(-np.sum(p * np.log(p)))
    elif np.isinf(alpha):
        value = float(-log_top)
    else:
        # Each term is at most 1 and the largest is exactly 1: no overflow, and
        # the sum is >= 1, so its log is finite for every order.
        tail = np.log(np.sum(np.exp(alpha * (np.log(p) - log_top))))
        value = float((alpha * log_top + tail) / (1.0 - alpha))
    # -0.0 and rounding noise of a product state read as exactly zero.
    value = value if value > 0 else 0.0
    return float(value / log_base(base))


def spectrum_from_amplitudes(amplitudes, in_a, local_dim, tol=None):
    """Schmidt spectrum of a dense state across the bipartition A | B.

    One SVD of the ``local_dim**|A| x local_dim**|B|`` matricisation: its
    cost grows as ``min**2 * max`` of those dimensions, and the state itself
    is limited to ``MAX_AMPLITUDES`` (``2**22``) amplitudes by the functions
    that build it.

    Parameters
    ----------
    amplitudes : ndarray of shape (local_dim ** n_sites,)
        The state, sites in order, the last site varying fastest (C order).
    in_a : array-like of bool, shape (n_sites,)
        True for the sites in subsystem A.
    local_dim : int
        Dimension of each site.
    tol : float or None, default=None
        See :func:`normalised_spectrum`. None keeps every singular value.

    Returns
    -------
    spectrum : ndarray of float64
        Normalised squared Schmidt coefficients, descending. With
        ``tol=None`` its length is ``min(local_dim**|A|, local_dim**|B|)``:
        the whole computed spectrum, zeros and round-off included.

    Examples
    --------
    >>> import numpy as np
    >>> from skqcnn.entanglement import spectrum_from_amplitudes
    >>> bell = np.array([1.0, 0.0, 0.0, 1.0])
    >>> spectrum_from_amplitudes(bell, [True, False], local_dim=2)
    array([0.5, 0.5])
    >>> product = np.array([1.0, 0.0, 0.0, 0.0])
    >>> spectrum_from_amplitudes(product, [True, False], local_dim=2)
    array([1., 0.])
    >>> spectrum_from_amplitudes(product, [True, False], local_dim=2, tol=1e-12)
    array([1.])
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
    return normalised_spectrum(singular**2, tol=tol)


def normalised_spectrum(weights, tol=None):
    """Sort, clip and normalise squared Schmidt coefficients.

    Parameters
    ----------
    weights : array-like of shape (k,)
        Non-negative weights (squared singular values or eigenvalues of a
        reduced density matrix).
    tol : float or None, default=None
        None keeps all ``k`` weights; negative ones (round-off of an
        eigenvalue solver) are clipped to 0 and kept, so the length is the
        size of the computation, not a numerical rank. A float in ``[0, 1)``
        drops the weights at or below ``tol * max(weights)`` (``tol=0``
        drops the zeros only).

    Returns
    -------
    spectrum : ndarray of float64
        Descending, summing to 1.

    Raises
    ------
    ValueError
        If the weights have no positive finite maximum, or ``tol`` is out of
        range.

    Examples
    --------
    >>> from skqcnn.entanglement import normalised_spectrum
    >>> normalised_spectrum([1.0, 3.0, -1e-20])
    array([0.75, 0.25, 0.  ])
    >>> normalised_spectrum([1.0, 3.0, -1e-20], tol=1e-12)
    array([0.75, 0.25])
    """
    tol = relative_tolerance(tol)
    w = np.sort(np.asarray(weights, dtype=np.float64).ravel())[::-1]
    if w.size == 0 or w[0] <= 0 or not np.all(np.isfinite(w)):
        raise ValueError("The state has zero or non-finite norm.")
    w = np.maximum(w, 0.0) if tol is None else w[w > tol * w[0]]
    return w / w.sum()
