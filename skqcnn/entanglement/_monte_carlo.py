"""Monte Carlo estimate of the Renyi-2 entropy of a network state."""

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ._enumeration import float64_eval_copy


@dataclass(frozen=True)
class Renyi2Estimate:
    """Per-class swap-estimator result.

    Attributes
    ----------
    classes : ndarray of int
        Classes estimated, in the order of the other arrays.
    entropy : ndarray of float
        ``S_2 = -log Tr rho_A^2`` (nats); NaN where the purity estimate is not
        positive.
    stderr : ndarray of float
        Standard error of ``entropy`` by the delta method,
        ``stderr(purity) / purity``.
    purity : ndarray of float
        Estimate of ``Tr rho_A^2``: the mean of the chain means.
    purity_stderr : ndarray of float
        Standard deviation of the chain means over ``sqrt(n_chains)``;
        independent chains make it honest under autocorrelation.
    acceptance : ndarray of float
        Metropolis acceptance rate after burn-in.
    n_samples : int
        Swap samples per class (``n_chains * samples_per_chain``).

    Examples
    --------
    >>> import torch
    >>> from skqcnn.entanglement._monte_carlo import renyi2_monte_carlo
    >>> psi = torch.tensor([[2.0], [1.0], [1.0], [-1.0]], dtype=torch.float64)
    >>> est = renyi2_monte_carlo(lambda c: psi[2 * c[:, 0] + c[:, 1]], 2, 2,
    ...                          [True, False], n_samples=4096, random_state=0)
    >>> est.classes, round(float(est.purity[0]), 1), est.n_samples
    (array([0]), 0.6, 4096)
    """

    classes: np.ndarray
    entropy: np.ndarray
    stderr: np.ndarray
    purity: np.ndarray
    purity_stderr: np.ndarray
    acceptance: np.ndarray
    n_samples: int


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
    net = float64_eval_copy(network, device)
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


@torch.no_grad()
def renyi2_monte_carlo(amplitude_fn, n_sites, local_dim, in_a, n_samples, *, classes=None,
                       n_chains=128, burn_in=None, thinning=None, random_state=None):
    """Renyi-2 entropy of each class's network state by the swap estimator.

    ``Tr rho_A^2 = E[Psi(s_A s'_B) Psi(s'_A s_B) / (Psi(s) Psi(s'))]`` with
    ``s`` and ``s'`` independent samples of ``|Psi|^2`` (Hastings, Gonzalez,
    Kallin and Melko, PRL 104, 157201, 2010; NetKet's
    ``Renyi2EntanglementEntropy``). Each class runs ``n_chains`` pairs of
    Metropolis chains, all vectorised into one batch. A proposal moves one
    site to a uniformly chosen other state, the same site in every chain
    (sites in a fresh random order every sweep), and is accepted with
    probability ``min(1, |Psi(s')|^2 / |Psi(s)|^2)`` computed from
    log-amplitudes. After a burn-in, one swap sample is taken every
    ``thinning`` proposals.

    Because every chain changes the same site, a network with a
    ``local_updater`` method (such as
    :class:`~skqcnn.nn.OverlappingConvACNetwork`) re-evaluates only the light
    cone of that site, which makes a proposal far cheaper than a forward pass
    on large images.

    Single-site moves mix slowly between configurations of high ``|Psi|^2``
    that differ at several sites; the chain-to-chain spread then understates
    the error. Check a result against a longer ``burn_in`` and ``thinning``.
    The estimator's relative variance grows like ``exp(S_2)``, so large
    entropies need many samples.

    Parameters
    ----------
    amplitude_fn : callable or torch.nn.Module
        ``amplitude_fn(configs)`` with ``configs`` an int64 tensor
        ``(batch, n_sites)`` returns ``(log_abs, sign)``, each
        ``(batch, n_classes)``, or plain amplitudes ``(batch, n_classes)``. A
        network is evaluated through a float64 eval-mode copy
        (:func:`network_log_amplitudes`).
    n_sites : int
    local_dim : int
    in_a : array-like of bool, shape (n_sites,)
        Sites in subsystem A.
    n_samples : int
        Swap samples per class, rounded up to a multiple of ``n_chains``.
    classes : sequence of int or None, default=None
        Classes to estimate; None means all. Every class has its own chains,
        so the cost grows linearly with their number.
    n_chains : int, default=128
        Independent chain pairs per class; the standard error comes from the
        spread of their means.
    burn_in : int or None, default=None
        Proposals per chain discarded first; None means ``20 * n_sites``.
    thinning : int or None, default=None
        Proposals per chain between swap samples; None means ``n_sites``.
    random_state : int, numpy.random.Generator or None, default=None

    Returns
    -------
    result : Renyi2Estimate

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
    """
    updater_factory = None
    if isinstance(amplitude_fn, torch.nn.Module):
        if hasattr(amplitude_fn, "local_updater"):
            updater_factory = float64_eval_copy(amplitude_fn).local_updater
        amplitude_fn = network_log_amplitudes(amplitude_fn, local_dim)
    device = getattr(amplitude_fn, "device", torch.device("cpu"))
    in_a = torch.as_tensor(np.asarray(in_a, dtype=bool).ravel(), device=device)
    if in_a.numel() != n_sites:
        raise ValueError(f"in_a must have n_sites={n_sites} entries, got {in_a.numel()}.")
    if local_dim < 2:
        raise ValueError(f"local_dim must be >= 2 for Metropolis moves, got {local_dim}.")
    burn_in = 20 * n_sites if burn_in is None else int(burn_in)
    thinning = n_sites if thinning is None else int(thinning)
    per_chain = max(1, math.ceil(n_samples / n_chains))
    seed = int(np.random.default_rng(random_state).integers(2**62))
    gen = torch.Generator(device=device).manual_seed(seed)

    def evaluate(configs):
        out = amplitude_fn(configs)
        if isinstance(out, tuple):
            return out
        return torch.log(out.abs()), torch.sign(out)

    if classes is None:
        probe = torch.zeros(1, n_sites, dtype=torch.int64, device=device)
        classes = range(evaluate(probe)[0].shape[1])
    classes = np.asarray(list(classes), dtype=np.int64)
    n_cls = classes.size
    # One row per (class, replica, chain); column picks that row's class.
    configs = torch.randint(local_dim, (n_cls * 2 * n_chains, n_sites), generator=gen,
                            device=device)
    rows = torch.arange(configs.shape[0], device=device)
    column = torch.as_tensor(np.repeat(classes, 2 * n_chains), device=device)
    if updater_factory is None:
        updater = _FullUpdater(evaluate, configs)
    else:
        updater = updater_factory(configs)

    def pick(out, column, rows=rows):
        return out[0][rows, column].double(), out[1][rows, column].double()

    log_abs, sign = pick(updater.log_amplitudes(), column)
    order = []

    def step(configs, log_abs, sign):
        if not order:
            order.extend(torch.randperm(n_sites, generator=gen, device=device).tolist())
        site = order.pop()
        move = torch.randint(1, local_dim, (configs.shape[0],), generator=gen, device=device)
        values = (configs[:, site] + move) % local_dim
        new_log, new_sign = pick(updater.propose(site, values), column)
        threshold = torch.log(torch.rand(configs.shape[0], generator=gen, device=device,
                                         dtype=torch.float64))
        # A chain started on a zero amplitude moves freely until it finds support.
        accept = (threshold < 2.0 * (new_log - log_abs)) | torch.isneginf(log_abs)
        updater.accept(accept)
        configs = configs.clone()
        configs[:, site] = torch.where(accept, values, configs[:, site])
        return (configs, torch.where(accept, new_log, log_abs),
                torch.where(accept, new_sign, sign), accept)

    for _ in range(burn_in):
        configs, log_abs, sign, _ = step(configs, log_abs, sign)
    in_a_row = in_a.unsqueeze(0)
    sums = torch.zeros(n_cls, n_chains, dtype=torch.float64, device=device)
    accepted = torch.zeros(configs.shape[0], dtype=torch.float64, device=device)
    half = column.view(n_cls, 2, n_chains)[:, 0].reshape(-1)
    for _ in range(per_chain):
        for _ in range(thinning):
            configs, log_abs, sign, accept = step(configs, log_abs, sign)
            accepted += accept
        pair = configs.view(n_cls, 2, n_chains, n_sites)
        first, second = pair[:, 0].reshape(-1, n_sites), pair[:, 1].reshape(-1, n_sites)
        swapped = torch.cat((torch.where(in_a_row, first, second),
                             torch.where(in_a_row, second, first)))
        swap_log, swap_sign = pick(evaluate(swapped), torch.cat((half, half)),
                                   rows=torch.arange(swapped.shape[0], device=device))
        cur_log = log_abs.view(n_cls, 2, n_chains)
        cur_sign = sign.view(n_cls, 2, n_chains)
        swap_log = swap_log.view(2, n_cls, n_chains)
        swap_sign = swap_sign.view(2, n_cls, n_chains)
        exponent = swap_log.sum(0) - cur_log.sum(1)
        sums += swap_sign.prod(0) * cur_sign.prod(1) * torch.exp(exponent)
    chain_means = (sums / per_chain).cpu().numpy()
    purity = chain_means.mean(axis=1)
    purity_stderr = chain_means.std(axis=1, ddof=1) / math.sqrt(n_chains)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = np.where(purity > 0, -np.log(np.where(purity > 0, purity, 1.0)), np.nan)
        stderr = np.where(purity > 0, purity_stderr / purity, np.nan)
    if np.any(~(purity > 0)):
        warnings.warn(
            "The swap estimate of Tr rho_A^2 is not positive for some classes; the "
            "estimator's variance is too large for this partition and sample size.",
            RuntimeWarning,
        )
    acceptance = accepted.view(n_cls, 2 * n_chains).mean(1).cpu().numpy() / max(
        per_chain * thinning, 1
    )
    return Renyi2Estimate(
        classes=classes,
        entropy=entropy,
        stderr=stderr,
        purity=purity,
        purity_stderr=purity_stderr,
        acceptance=acceptance,
        n_samples=per_chain * n_chains,
    )


class _FullUpdater:
    """Single-site proposals evaluated by a full call of the amplitude function."""

    def __init__(self, evaluate, configs):
        self.evaluate = evaluate
        self.configs = configs
        self.current = evaluate(configs)
        self.pending = None

    def log_amplitudes(self):
        return self.current

    def propose(self, site, values):
        proposal = self.configs.clone()
        proposal[:, site] = values
        self.pending = (proposal, self.evaluate(proposal))
        return self.pending[1]

    def accept(self, mask):
        proposal, (new_log, new_sign) = self.pending
        keep = mask.unsqueeze(1)
        self.configs = torch.where(keep, proposal, self.configs)
        self.current = (torch.where(keep, new_log, self.current[0]),
                        torch.where(keep, new_sign, self.current[1]))
        self.pending = None
