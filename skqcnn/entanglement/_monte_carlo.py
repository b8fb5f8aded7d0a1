"""Monte Carlo estimate of the Renyi-2 entropy of a network state."""

import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ..exceptions import MonteCarloConvergenceWarning
from ._convac_maps import ConvACMaps, ConvACUpdater
from ._diagnostics import effective_sample_size, split_r_hat
from ._enumeration import float64_eval_copy
from ._sampling import (
    FullUpdater,
    RecurrentMaps,
    RecurrentUpdater,
    TemperedChains,
    geometric_ladder,
    is_recurrent,
    swapped_amplitudes,
)

# Chains agree below this rank-normalised split R-hat (Vehtari et al., 2021).
_MAX_R_HAT = 1.05
# Below this many effective samples the standard error is itself too uncertain.
_MIN_ESS = 100
# Fewest samples whose replicas differ inside and outside A, as a fraction of
# all (and never more than _MIN_ESS): the battery's estimates held 8 % or more.
_MIN_INFORMATIVE_FRACTION = 0.05
# Swap values up to exp(this) are averaged directly: sums of millions of them
# stay far below float64's largest value, about exp(709).
_MAX_LOG_VALUE = 300.0
# Relative resolution of swap values: ratios of amplitudes whose logarithms
# reach 1e5 (a T=256 RAC) carry rounding errors near 1e-11.
_RESOLUTION = 1e-10
# Most moves between two jumps: four in the default burn-in of 500 moves.
_JUMP_EVERY = 125


@dataclass(frozen=True)
class Renyi2Estimate:
    """Per-class swap-estimator result.

    Attributes
    ----------
    classes : ndarray of int
        Classes estimated, in the order of the other arrays.
    entropy : ndarray of float
        ``S_2 = -log(purity)`` (nats); negative where the purity estimate
        exceeds 1, NaN where it is not positive.
    stderr : ndarray of float
        Standard error of ``entropy`` by the delta method,
        ``purity_stderr / purity``; NaN where ``entropy`` is.
    purity : ndarray of float
        Estimate of ``Tr rho_A^2``: the mean of all swap values; inf only
        where that mean exceeds float64's range (``entropy`` stays finite).
    purity_stderr : ndarray of float
        Standard deviation of the swap values over the square root of
        ``ess``.
    r_hat : ndarray of float
        Rank-normalised split R-hat of the swap values over the chains; above
        1.05 the chains disagree.
    ess : ndarray of float
        Effective sample size of the swap values.
    acceptance : ndarray of float
        Single-site Metropolis acceptance rate of all walkers.
    exchange_acceptance : ndarray of float
        Acceptance of exchanges between adjacent temperatures (empty without
        replica exchange).
    jump_acceptance : ndarray of float
        Acceptance rate of jumps (independence proposals) of all walkers; 0
        without them.
    n_samples : int
        Swap samples per class (``n_chains * samples_per_chain``).
    n_chains : int
        Independent chain pairs per class.
    n_informative : ndarray of int
        Swap samples per class whose two replicas differ both inside and
        outside A. The swap value of any other sample is 1 whatever the
        state, so the estimate's departure from a product state rests on
        these samples alone.

    Examples
    --------
    >>> import torch
    >>> from skqcnn.entanglement._monte_carlo import renyi2_monte_carlo
    >>> psi = torch.tensor([[2.0], [1.0], [1.0], [-1.0]], dtype=torch.float64)
    >>> est = renyi2_monte_carlo(lambda c: psi[2 * c[:, 0] + c[:, 1]], 2, 2,
    ...                          [True, False], n_samples=4096, random_state=0)
    >>> est.classes, round(float(est.purity[0]), 1), est.n_samples, est.n_chains
    (array([0]), 0.6, 4096, 16)
    """

    classes: np.ndarray
    entropy: np.ndarray
    stderr: np.ndarray
    purity: np.ndarray
    purity_stderr: np.ndarray
    r_hat: np.ndarray
    ess: np.ndarray
    acceptance: np.ndarray
    exchange_acceptance: np.ndarray
    jump_acceptance: np.ndarray
    n_samples: int
    n_chains: int
    n_informative: np.ndarray


def network_log_amplitudes(network, local_dim, *, device=None):
    """Callable giving ``(log |Psi_y(s)|, sign Psi_y(s))`` for integer configurations.

    A float64 eval-mode copy of the network is evaluated on one-hot features;
    its ``log_forward`` is used when it has one (it avoids underflow of long
    products), otherwise the log of ``forward``.

    Parameters
    ----------
    network : torch.nn.Module
        Maps features ``(batch, n_sites, local_dim)`` to ``(batch, n_classes)``.
    local_dim : int
    device : str or torch.device or None, default=None
        None keeps the network's device.

    Returns
    -------
    amplitude_fn : callable
        ``amplitude_fn(configs)`` with ``configs`` an int64 tensor
        ``(batch, n_sites)`` returns two float64 tensors ``(batch, n_classes)``;
        its ``device`` attribute is where configurations should live.

    Examples
    --------
    >>> import torch
    >>> from skqcnn.entanglement._monte_carlo import network_log_amplitudes
    >>> from skqcnn.nn._convac import OverlappingConvACNetwork
    >>> net = OverlappingConvACNetwork((4,), 2, (2,), 2, n_classes=3)
    >>> log_abs, sign = network_log_amplitudes(net, 2)(torch.zeros(5, 4, dtype=torch.int64))
    >>> log_abs.shape
    torch.Size([5, 3])
    """
    return _log_amplitude_fn(float64_eval_copy(network, device), local_dim)


def _log_amplitude_fn(net, local_dim):
    """``network_log_amplitudes`` of a network that is already a float64 eval copy."""
    has_log = hasattr(net, "log_forward")

    def amplitude_fn(configs):
        features = torch.nn.functional.one_hot(configs, local_dim).to(torch.float64)
        with torch.no_grad():
            if has_log:
                return net.log_forward(features)
            scores = net(features)
        return torch.log(scores.abs()), torch.sign(scores)

    first = next(net.parameters(), None)
    amplitude_fn.device = first.device if first is not None else torch.device("cpu")
    return amplitude_fn


def _as_log_amplitudes(amplitude_fn):
    """A user callable returning amplitudes or ``(log_abs, sign)``, as ``(log_abs, sign)``."""
    def evaluate(configs):
        out = amplitude_fn(configs)
        if isinstance(out, tuple):
            return out
        return torch.log(out.abs()), torch.sign(out)

    evaluate.device = getattr(amplitude_fn, "device", torch.device("cpu"))
    return evaluate


@torch.no_grad()
def renyi2_monte_carlo(network, n_sites, local_dim, in_a, n_samples, *, classes=None,
                       random_state=None, verbose=0, n_chains=16, n_temperatures=4,
                       beta_min=0.1, jumps=True, burn_in=None, thinning=None,
                       batch_size=512):
    """Renyi-2 entropy of each class's network state by the swap estimator.

    ``Tr rho_A^2 = E[Psi(s_A s'_B) Psi(s'_A s_B) / (Psi(s) Psi(s'))]`` with
    ``s`` and ``s'`` independent samples of ``|Psi|^2`` (Hastings, Gonzalez,
    Kallin and Melko, PRL 104, 157201, 2010); ``S_2 = -log Tr rho_A^2``.
    See :doc:`/monte_carlo` for the method, its validation and timings.

    **Chains.** Every class has ``n_chains`` independent pairs of chains (one
    chain for ``s``, one for ``s'``), all batched into one tensor. A chain is a
    replica-exchange ladder of ``n_temperatures`` walkers sampling
    ``|Psi|^(2 beta)`` at geometrically spaced ``beta`` from 1 down to
    ``beta_min``: each walker makes single-site Metropolis moves (a site set
    to a uniformly chosen other state; the same site in every walker, sites in
    a fresh random order every sweep) and adjacent walkers exchange
    temperatures after every move. Flatter targets cross between the modes of
    ``|Psi|^2`` that single-site moves at ``beta = 1`` cannot leave, and hand
    their configurations down the ladder. Only the ``beta = 1`` walker is
    measured, every ``thinning`` moves after ``burn_in`` moves. Once per
    sweep (at least every 125 moves) every walker also *jumps*: it proposes
    one of the constant configurations or a random one (see ``jumps``),
    which reaches isolated spikes of ``|Psi|^2`` that neither single-site
    moves nor tempering find.

    **Start.** With ``jumps``, every walker starts from its random
    configuration or one of the constant ones, drawn with probability
    proportional to ``|Psi|^(2 beta) / q`` (``q`` the jump proposal), so that
    chains start on the spikes that the jumps would otherwise have to find.

    **Light cones.** Because every walker changes the same site, a network
    with ``folded_maps()`` (the overlapping ConvAC) re-evaluates only the
    light cone of that site, and a network with ``folded_layers()`` and
    ``n_steps`` (the deep RAC) re-evaluates only the steps from that site on,
    from cached prefixes; both are evaluated by the engine on the exported
    eval-mode maps. The swapped pairs of a ConvAC are evaluated by the light
    cone of the bounding box of ``A`` or of its complement, whichever is
    smaller, when it covers at most half the image.

    **Swap values** are kept as logarithm and sign, and averaged after
    division by the largest where they exceed ``exp(300)``: chains far from
    the bulk of ``|Psi|^2`` give huge but finite estimates (with a warning),
    never an overflow to inf or NaN.

    **Error bars.** ``purity_stderr`` is the standard deviation of the swap
    values over the square root of their effective sample size (Geyer's
    initial monotone sequence over all chains, which counts the disagreement
    between chains as variance); ``stderr`` is ``purity_stderr / purity`` (the
    delta method). A :class:`~skqcnn.exceptions.MonteCarloConvergenceWarning`
    says which diagnostic failed and what to raise when the rank-normalised
    split R-hat exceeds 1.05, when there are fewer than 100 effective samples,
    or when the purity estimate is impossible (above 1 by more than three
    standard errors, ``S_2`` below 0 by more than three of its standard
    errors, or not positive).

    **Negative entropies and NaN.** The entropy is that of the mean purity,
    never clipped: a purity estimate a little above 1 (states of small
    ``S_2``) gives a small negative entropy, a fluctuation to be read with
    its ``stderr``. A purity estimate ``<= 0``
    (the swap values are signed, and their relative variance grows like
    ``exp(S_2)``) has no logarithm: ``entropy`` and ``stderr`` are NaN for that
    class, ``purity`` and ``purity_stderr`` keep the estimate, and a
    warning says to raise ``n_samples``.

    Parameters
    ----------
    network : torch.nn.Module or callable
        A network mapping features ``(batch, n_sites, local_dim)`` to scores
        ``(batch, n_classes)``, evaluated on one-hot features through a float64
        eval-mode copy (:func:`network_log_amplitudes`); or a callable
        ``f(configs)`` on int64 configurations ``(batch, n_sites)`` returning
        ``(log_abs, sign)`` or plain amplitudes, each ``(batch, n_classes)``.
    n_sites : int
    local_dim : int
        At least 2.
    in_a : array-like of bool, shape (n_sites,)
        Sites in subsystem A.
    n_samples : int
        Swap samples per class, at least 100; rounded up to a multiple of the
        number of chains.
    classes : sequence of int or None, default=None
        Classes to estimate; None means all. Every class has its own chains,
        so the cost grows linearly with their number.
    random_state : int, numpy.random.Generator or None, default=None
    verbose : int, default=0
        A progress bar over the Metropolis moves when positive.
    n_chains : int, default=16
        Independent chain pairs per class; at most ``n_samples // 10`` are
        used, so that every chain holds at least 10 samples.
    n_temperatures : int, default=4
        Walkers per replica-exchange ladder; 1 is plain single-site
        Metropolis. The cost of a move grows about linearly with it.
    beta_min : float, default=0.1
        Inverse temperature of the hottest walker, in ``(0, 1)``.
    jumps : bool, default=True
        Every ``min(n_sites, 125)`` moves (once per sweep on networks of up
        to 125 sites, four times in the default burn-in of larger ones),
        every walker also proposes an independent configuration: one of the
        ``local_dim`` constant configurations or a uniformly random one,
        accepted by Metropolis-Hastings. Networks with a constant channel can
        put isolated spikes of ``|Psi|^2`` there. Each jump costs a full
        evaluation of every walker.
    burn_in : int or None, default=None
        Moves per walker discarded first; None means ``min(20 * n_sites, 500)``.
    thinning : int or None, default=None
        Moves per walker between swap samples; None means ``min(n_sites, 4)``.
    batch_size : int, default=512
        Configurations per network call when evaluating swapped pairs.

    Returns
    -------
    result : Renyi2Estimate

    Warns
    -----
    MonteCarloConvergenceWarning
        When the chains disagree, hold too few effective samples, or the
        purity estimate is impossible; the estimate is returned anyway.

    Examples
    --------
    Two qubits in the state ``(2, 1, 1, -1) / sqrt(7)``, one class, whose
    exact ``S_2`` is 0.458:

    >>> import torch
    >>> from skqcnn.entanglement._monte_carlo import renyi2_monte_carlo
    >>> psi = torch.tensor([[2.0], [1.0], [1.0], [-1.0]], dtype=torch.float64)
    >>> def amplitude_fn(configs):
    ...     return psi[2 * configs[:, 0] + configs[:, 1]]
    >>> est = renyi2_monte_carlo(amplitude_fn, 2, 2, [True, False], n_samples=4096,
    ...                          random_state=0)
    >>> bool(abs(est.entropy[0] - 0.458) < 3 * est.stderr[0] < 0.3)
    True
    >>> bool(est.r_hat[0] < 1.05 and est.ess[0] > 1000)
    True
    """
    n_samples = _check_int("n_samples", n_samples, 100)
    n_chains = _check_int("n_chains", n_chains, 1)
    n_temperatures = _check_int("n_temperatures", n_temperatures, 1)
    if not isinstance(jumps, (bool, np.bool_)):
        raise TypeError(f"jumps must be a bool, got {jumps!r}.")
    batch_size = _check_int("batch_size", batch_size, 1)
    if not 0 < beta_min < 1:
        raise ValueError(f"beta_min must lie in (0, 1), got {beta_min!r}.")
    if local_dim < 2:
        raise ValueError(f"local_dim must be >= 2 for Metropolis moves, got {local_dim}.")
    burn_in = (min(20 * n_sites, 500) if burn_in is None
               else _check_int("burn_in", burn_in, 0))
    thinning = min(n_sites, 4) if thinning is None else _check_int("thinning", thinning, 1)

    net = None
    if isinstance(network, torch.nn.Module):
        net = float64_eval_copy(network)
        evaluate = _log_amplitude_fn(net, local_dim)
    else:
        evaluate = _as_log_amplitudes(network)
    device = getattr(evaluate, "device", torch.device("cpu"))
    in_a = torch.as_tensor(np.asarray(in_a, dtype=bool).ravel(), device=device)
    if in_a.numel() != n_sites:
        raise ValueError(f"in_a must have n_sites={n_sites} entries, got {in_a.numel()}.")
    n_chains = min(n_chains, n_samples // 10)
    per_chain = math.ceil(n_samples / n_chains)
    seed = int(np.random.default_rng(random_state).integers(2**62))
    gen = torch.Generator(device=device).manual_seed(seed)

    if classes is None:
        probe = torch.zeros(1, n_sites, dtype=torch.int64, device=device)
        classes = range(evaluate(probe)[0].shape[1])
    classes = np.asarray(list(classes), dtype=np.int64)
    n_cls = classes.size
    # Rows: (class, replica, chain, walker); a group is one ladder.
    n_groups = n_cls * 2 * n_chains
    configs = torch.randint(local_dim, (n_groups * n_temperatures, n_sites), generator=gen,
                            device=device)
    progress = tqdm(total=burn_in + per_chain * thinning, disable=not verbose,
                    desc="Renyi-2 Monte Carlo", unit="move")
    column = torch.as_tensor(np.repeat(classes, 2 * n_chains * n_temperatures), device=device)
    if net is not None and hasattr(net, "folded_maps"):
        # Swapped pairs and jumps are evaluated by the same folded maps,
        # folded once instead of at every call of the network's log_forward.
        convac = ConvACMaps(net.folded_maps(), device=device)
        evaluate = convac

        def make_updater(configs):
            return ConvACUpdater(convac, configs)
    elif net is not None and is_recurrent(net):
        # Swapped pairs and jumps are evaluated by the same folded maps: fewer
        # tensor operations per step than the network's own log_forward.
        maps = RecurrentMaps(net, device=device)
        evaluate = maps

        def make_updater(configs):
            return RecurrentUpdater(maps, configs)
    else:
        def make_updater(configs):
            return FullUpdater(evaluate, configs)
    betas = geometric_ladder(n_temperatures, beta_min, device=device)
    chains = TemperedChains(make_updater(configs), evaluate, configs, column, betas, n_sites,
                            local_dim, gen, jumps=jumps)

    def move():
        chains.step()
        # A jump costs about one full evaluation of every walker: once per
        # sweep, but early enough in the burn-in of a large network to count.
        if jumps and chains.n_proposals % min(n_sites, _JUMP_EVERY) == 0:
            chains.jump()
        progress.update()

    pair_column = torch.as_tensor(np.repeat(classes, n_chains), device=device)
    # Swap values as logarithm and sign: a ratio of amplitudes can exceed float64.
    draw_log = torch.empty(n_cls * n_chains, per_chain, dtype=torch.float64, device=device)
    draw_sign = torch.empty_like(draw_log)
    pair = (n_cls, 2, n_chains)
    informative = torch.zeros(n_cls, dtype=torch.int64, device=device)
    with progress:
        for _ in range(burn_in):
            move()
        for sample in range(per_chain):
            for _ in range(thinning):
                move()
            rows, sampled, log_abs, sign = chains.sampled()
            first, second = (rows.view(pair)[:, i].reshape(-1) for i in range(2))
            differ = sampled.view(*pair, n_sites).diff(dim=1).squeeze(1) != 0
            informative += ((differ & in_a).any(-1) & (differ & ~in_a).any(-1)).sum(-1)
            if hasattr(chains.updater, "swapped"):
                logs, signs = chains.updater.swapped(first, second, in_a)
                pick = torch.arange(pair_column.numel(), device=device)
                logs, signs = logs[:, pick, pair_column], signs[:, pick, pair_column]
            else:
                sampled = sampled.view(*pair, n_sites)
                logs, signs = swapped_amplitudes(
                    evaluate, sampled[:, 0].reshape(-1, n_sites),
                    sampled[:, 1].reshape(-1, n_sites), pair_column, in_a, batch_size)
            log_abs, sign = log_abs.view(pair), sign.view(pair)
            draw_log[:, sample] = (logs.sum(0) - log_abs[:, 0].reshape(-1)
                                   - log_abs[:, 1].reshape(-1))
            draw_sign[:, sample] = (signs.prod(0) * sign[:, 0].reshape(-1)
                                    * sign[:, 1].reshape(-1))
    shape = (n_cls, n_chains, per_chain)
    result = _summarise(draw_log.view(shape).cpu().numpy(), draw_sign.view(shape).cpu().numpy(),
                        classes, chains, n_temperatures, informative.cpu().numpy())
    _warn(result, n_chains, n_temperatures, thinning)
    return result


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} of type "
                        f"{type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}.")
    return int(value)


def _summarise(log_values, signs, classes, chains, n_temperatures, n_informative):
    """Per-class purity, entropy, standard errors and diagnostics from the swap values.

    The swap values arrive as logarithm and sign, ``(n_classes, n_chains,
    per_chain)``; where a class's largest value exceeds ``exp(_MAX_LOG_VALUE)``
    its values are divided by the largest before averaging, so that ratios
    beyond float64's range still give a finite entropy and standard error
    (the ESS and R-hat do not depend on the scale).
    """
    n_cls = log_values.shape[0]
    zero = signs == 0
    # NaN (0 / 0) or +inf (over 0): a chain on a vanishing amplitude.
    defined = ~(np.isnan(log_values) | np.isposinf(log_values) & ~zero).reshape(
        n_cls, -1).any(axis=1)
    safe_log = np.where(zero | ~np.isfinite(log_values), -np.inf, log_values)
    top = safe_log.reshape(n_cls, -1).max(axis=1)
    # Values within float64's range are averaged as they are (rank-based
    # diagnostics then see their exact ties).
    top = np.where(np.isfinite(top) & (top > _MAX_LOG_VALUE), top, 0.0)
    with np.errstate(invalid="ignore"):
        scaled = np.where(zero, 0.0, signs * np.exp(safe_log - top[:, None, None]))
    scaled[~defined] = np.nan
    flat = scaled.reshape(n_cls, -1)
    mean = flat.mean(axis=1)
    # Swap values closer than float64 resolves them are ties for the
    # diagnostics: otherwise the rank-based R-hat of chains whose values all
    # equal 1 up to rounding measures the rounding.
    with np.errstate(invalid="ignore"):
        resolution = _RESOLUTION * np.nanmax(np.abs(flat), axis=1, initial=0.0)
        step = np.where(resolution > 0, resolution, 1.0)[:, None, None]
        resolved = np.round(scaled / step) * step
    ess = np.array([effective_sample_size(d) if ok else np.nan
                    for d, ok in zip(resolved, defined)])
    r_hat = np.array([split_r_hat(d) if ok else np.nan for d, ok in zip(resolved, defined)])
    with np.errstate(invalid="ignore"):
        # No finer than the values are resolved: chains whose swap values all
        # equal 1 up to rounding would otherwise report an error of 1e-17 and
        # an estimate below 0 by many of them.
        scaled_stderr = np.maximum(flat.std(axis=1, ddof=1) / np.sqrt(ess), resolution)
    positive = mean > 0
    safe = np.where(positive, mean, 1.0)
    # 0.0 - x: a purity of exactly 1 gives S_2 = 0, not -0.
    entropy = np.where(positive, 0.0 - (top + np.log(safe)), np.nan)
    stderr = np.where(positive, scaled_stderr / safe, np.nan)
    # Beyond float64 only where the estimate is itself absurd (far above 1).
    with np.errstate(over="ignore"):
        purity, purity_stderr = mean * np.exp(top), scaled_stderr * np.exp(top)
    acceptance = chains.acceptance().view(n_cls, -1).mean(1).cpu().numpy()
    return Renyi2Estimate(
        classes=classes, entropy=entropy, stderr=stderr, purity=purity,
        purity_stderr=purity_stderr, r_hat=r_hat, ess=ess, acceptance=acceptance,
        exchange_acceptance=chains.exchange_rates() if n_temperatures > 1 else np.zeros(0),
        jump_acceptance=chains.jump_acceptance().view(n_cls, -1).mean(1).cpu().numpy(),
        n_samples=log_values.shape[1] * log_values.shape[2], n_chains=log_values.shape[1],
        n_informative=n_informative,
    )


def _warn(result, n_chains, n_temperatures, thinning):
    """One MonteCarloConvergenceWarning per failed diagnostic, naming the classes."""
    def classes_where(mask):
        return ", ".join(str(c) for c in result.classes[mask])

    def values(array, mask, spec=".3g"):
        return ", ".join(format(v, spec) for v in array[mask])

    undefined = np.isnan(result.purity)
    if undefined.any():
        warnings.warn(
            f"The swap values of classes {classes_where(undefined)} are not defined: some "
            f"chains sit on configurations whose amplitude is exactly 0 (the network "
            f"state vanishes there or underflows in float64), so entropy, stderr, r_hat "
            f"and ess are NaN. Raise burn_in, or check the network's amplitudes on "
            f"one-hot inputs.",
            MonteCarloConvergenceWarning, stacklevel=4,
        )
    bad = ~(result.r_hat <= _MAX_R_HAT) & ~undefined
    if bad.any():
        warnings.warn(
            f"Monte Carlo chains disagree for classes {classes_where(bad)} (split R-hat "
            f"{values(result.r_hat, bad, '.3f')} > {_MAX_R_HAT}): the chains have not mixed "
            f"between the modes of |Psi|^2. Raise n_temperatures (now {n_temperatures}), "
            f"burn_in and thinning (now {thinning}), or n_samples.",
            MonteCarloConvergenceWarning, stacklevel=4,
        )
    # Ties of every swap value give an error bar of the resolution floor,
    # which no diagnostic of the values can question: count instead the
    # samples that could have told the state from a product across the cut.
    # A fraction as well as a number: well-mixed chains of the smallest
    # n_samples have fewer than _MIN_ESS such samples however entangled.
    fewest = min(_MIN_ESS, math.ceil(_MIN_INFORMATIVE_FRACTION * result.n_samples))
    blind = (result.n_informative < fewest) & ~undefined
    if blind.any():
        warnings.warn(
            f"Only {values(result.n_informative, blind, 'd')} of {result.n_samples} samples "
            f"of classes {classes_where(blind)} drew replicas that differ both inside and "
            f"outside A (fewer than {fewest}); every other swap value is 1 whatever the "
            f"state, so the estimate and its standard error rest on those few and may miss "
            f"the entanglement entirely. Either |Psi|^2 is concentrated on few "
            f"configurations (use an exact method where the state is small enough) or "
            f"n_samples is too small: raise it.",
            MonteCarloConvergenceWarning, stacklevel=4,
        )
    few = ~(result.ess >= _MIN_ESS) & ~undefined
    if few.any():
        warnings.warn(
            f"Only {values(result.ess, few)} effective samples of {result.n_samples} for "
            f"classes {classes_where(few)} (fewer than {_MIN_ESS}): the standard error is "
            f"itself uncertain. Raise n_samples or thinning (now {thinning}).",
            MonteCarloConvergenceWarning, stacklevel=4,
        )
    # purity - 3 purity_stderr > 1, in logarithms as the purity may exceed
    # float64; or S_2 below 0 by more than three of its own standard errors,
    # which catches swap values so large that their standard error is as well.
    with np.errstate(invalid="ignore", divide="ignore"):
        above = ((-result.entropy + np.log(1 - 3 * result.stderr) > 0)
                 | (result.entropy + 3 * result.stderr < 0))
    if above.any():
        warnings.warn(
            f"The estimate of S_2 for classes {classes_where(above)} is "
            f"{values(result.entropy, above)} +- {values(result.stderr, above)}, below 0 "
            f"(Tr rho_A^2 above its maximum 1) by more than three standard errors: the "
            f"error bars are too small, or some chains are still far from the bulk of "
            f"|Psi|^2, where swap values are huge. Raise burn_in, n_samples, n_chains "
            f"(now {n_chains}) and n_temperatures (now {n_temperatures}).",
            MonteCarloConvergenceWarning, stacklevel=4,
        )
    nonpositive = result.purity <= 0
    if nonpositive.any():
        warnings.warn(
            f"The estimate of Tr rho_A^2 for classes {classes_where(nonpositive)} is "
            f"{values(result.purity, nonpositive)} +- "
            f"{values(result.purity_stderr, nonpositive)}, not positive, so its entropy "
            f"is NaN: the swap estimator's variance grows like exp(S_2), and this "
            f"partition needs more samples. Raise n_samples.",
            MonteCarloConvergenceWarning, stacklevel=4,
        )
