"""Convergence diagnostics of several Markov chains: effective sample size and split R-hat.

Both follow Vehtari, Gelman, Simpson, Carpenter and Buerkner, "Rank-normalization,
folding, and localization: an improved R-hat", Bayesian Analysis 16 (2021),
and the multi-chain effective sample size of Geyer's initial monotone sequence
(Geyer, Statistical Science 7, 1992) described there.
"""

import numpy as np
from scipy import stats


def _split(draws):
    """Each chain cut into its first and second half (a middle draw is dropped)."""
    half = draws.shape[1] // 2
    return np.concatenate((draws[:, :half], draws[:, draws.shape[1] - half:]), axis=0)


def _r_hat(draws):
    n = draws.shape[1]
    within = draws.var(axis=1, ddof=1).mean()
    between = n * draws.mean(axis=1).var(ddof=1)
    if within == 0:
        return 1.0 if between == 0 else np.inf
    return float(np.sqrt(((n - 1) / n * within + between / n) / within))


def _rank_normalised(draws):
    ranks = stats.rankdata(draws, method="average").reshape(draws.shape)
    return stats.norm.ppf((ranks - 0.375) / (draws.size + 0.25))


def split_r_hat(draws):
    """Rank-normalised split R-hat of several chains.

    The larger of the R-hat of the rank-normalised draws (sensitive to chains
    sitting in different places) and of their folded ranks (sensitive to
    chains of different spread); values near 1 mean the chains agree.

    Parameters
    ----------
    draws : array-like of shape (n_chains, n_draws)
        ``n_draws >= 4``.

    Returns
    -------
    r_hat : float

    Examples
    --------
    >>> import numpy as np
    >>> from skqcnn.entanglement._diagnostics import split_r_hat
    >>> rng = np.random.default_rng(0)
    >>> round(split_r_hat(rng.normal(size=(4, 1000))), 2)
    1.0
    >>> split_r_hat(rng.normal(size=(4, 1000)) + np.arange(4)[:, None]) > 1.5
    True
    """
    draws = np.asarray(draws, dtype=np.float64)
    if draws.ndim != 2 or draws.shape[1] < 4:
        raise ValueError(f"draws must have shape (n_chains, n_draws >= 4), got {draws.shape}.")
    split = _split(draws)
    folded = np.abs(split - np.median(split))
    return max(_r_hat(_rank_normalised(split)), _r_hat(_rank_normalised(folded)))


def _autocovariance(chain):
    """Biased autocovariance of one chain at every lag, by FFT."""
    n = chain.size
    centred = chain - chain.mean()
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(centred, size)
    return np.fft.irfft(spectrum * np.conjugate(spectrum), size)[:n] / n


def effective_sample_size(draws):
    """Effective number of independent draws of several chains.

    The autocorrelation at lag ``t`` combines all chains,
    ``rho_t = 1 - (W - mean_m gamma_{m,t}) / var_plus``, so that chains which
    disagree lower it; the sum over lags stops at Geyer's initial positive
    sequence, made monotone.

    Parameters
    ----------
    draws : array-like of shape (n_chains, n_draws)
        ``n_draws >= 4``.

    Returns
    -------
    ess : float
        Between ``1`` and ``n_chains * n_draws * log10(n_chains * n_draws)``
        (antithetic chains can exceed the number of draws); ``n_chains *
        n_draws`` for constant draws.

    Examples
    --------
    >>> import numpy as np
    >>> from skqcnn.entanglement._diagnostics import effective_sample_size
    >>> rng = np.random.default_rng(0)
    >>> 3000 < effective_sample_size(rng.normal(size=(4, 1000))) < 5000
    True
    >>> ar = np.zeros((4, 1000))
    >>> for t in range(1, 1000):
    ...     ar[:, t] = 0.9 * ar[:, t - 1] + rng.normal(size=4)
    >>> 100 < effective_sample_size(ar) < 400
    True
    """
    draws = np.asarray(draws, dtype=np.float64)
    if draws.ndim != 2 or draws.shape[1] < 4:
        raise ValueError(f"draws must have shape (n_chains, n_draws >= 4), got {draws.shape}.")
    m, n = draws.shape
    total = m * n
    if np.ptp(draws) == 0:
        # Centring on a mean that rounding moves off the common value would
        # leave autocovariances of 1e-31 that all look correlated.
        return float(total)
    gamma = np.array([_autocovariance(chain) for chain in draws])
    within = gamma[:, 0].mean() * n / (n - 1)
    var_plus = within * (n - 1) / n
    if m > 1:
        var_plus += draws.mean(axis=1).var(ddof=1)
    if var_plus == 0:
        return float(total)
    rho = 1.0 - (within - gamma.mean(axis=0)) / var_plus
    rho[0] = 1.0
    # Sums of consecutive pairs are positive for a reversible chain; stop at
    # the first that is not, and keep the pair sums non-increasing.
    pairs = rho[: n - n % 2].reshape(-1, 2).sum(axis=1)
    stop = np.flatnonzero(pairs <= 0)
    pairs = pairs[: stop[0] if stop.size else pairs.size]
    pairs = np.minimum.accumulate(pairs)
    tau = -1.0 + 2.0 * pairs.sum()
    return float(total / max(tau, 1.0 / np.log10(total)))
