"""Monte Carlo Renyi-2 against exact enumeration on many small networks.

Random and briefly trained ConvACs (1-D and 2-D) and RACs (1 to 3 layers),
including a multi-modal ConvAC (``convac2d-2``: two isolated peaks of
``|Psi|^2``) that single-site Metropolis gets wrong by far more than its error
bar, while its chains disagree. The full battery is slow; a few
networks run by default. ``python tests/entanglement/test_monte_carlo_battery.py`` prints
the z-score distribution quoted in ``docs/monte_carlo.rst``.
"""

import sys
import warnings

import numpy as np
import pytest
import torch
from _identity_norms import identity_normalisations

from skqcnn.entanglement._enumeration import enumerate_amplitudes
from skqcnn.entanglement._monte_carlo import renyi2_monte_carlo
from skqcnn.entanglement._spectra import entropy_from_spectrum, spectrum_from_amplitudes
from skqcnn.exceptions import MonteCarloConvergenceWarning
from skqcnn.nn._convac import OverlappingConvACNetwork
from skqcnn.nn._rac import DeepRACNetwork

# Below this the state is nearly a product of one dominant configuration and
# every chain sits on it: a z-score of a vanishing error is meaningless there.
MIN_ENTROPY = 0.05


def _spread(net, seed, spread):
    """float64 copy with parameters ``1 + spread * normal`` and identity BatchNorms.

    States that are neither product states nor dominated by one configuration;
    with spread 1 a ConvAC's ``|Psi|^2`` has several separated modes.
    """
    net = net.double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "norms" not in name:
                p.copy_(1.0 + spread * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return identity_normalisations(net)


def _trained(net, seed, n_sites, local_dim, steps=30):
    """A ``_spread(net, seed, 0.7)`` network after Adam steps of least squares on random labels.

    Eval mode throughout, so the BatchNorms stay identities and the weights
    move the way gradient steps move them, which random draws do not imitate.
    """
    net = _spread(net, seed, 0.7).eval()
    gen = torch.Generator().manual_seed(seed)
    features = torch.cat((torch.ones(64, n_sites, 1, dtype=torch.float64),
                          torch.rand(64, n_sites, local_dim - 1, generator=gen,
                                     dtype=torch.float64)), dim=2)
    target = torch.randn(64, net.n_classes, generator=gen, dtype=torch.float64)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(net(features), target).backward()
        optimizer.step()
    return net


def _exact(net, n_sites, local_dim, in_a):
    psi = enumerate_amplitudes(net, n_sites, local_dim)
    return entropy_from_spectrum(spectrum_from_amplitudes(psi, in_a, local_dim), alpha=2)


def _families():
    """``(family, quota, make(seed) -> (network, n_sites, local_dim, in_a))``."""
    half8, odd8 = np.arange(8) < 4, np.arange(8) % 2 == 1
    grid = np.arange(9).reshape(3, 3) % 3
    yield "convac1d", 12, lambda seed: (_spread(
        OverlappingConvACNetwork((8,), 3, (2, 2), 2, 1), seed, 1.0), 8, 3,
        odd8 if seed % 2 else half8)
    yield "convac1d-k3", 4, lambda seed: (_spread(
        OverlappingConvACNetwork((10,), 2, (2,), 3, 1), seed, 0.7), 10, 2, np.arange(10) < 5)
    yield "convac2d", 8, lambda seed: (_spread(
        OverlappingConvACNetwork((3, 3), 3, (2,), 2, 1), seed, 0.7), 9, 3,
        (grid < 1 + seed % 2).ravel())
    yield "convac2d-trained", 6, lambda seed: (_trained(
        OverlappingConvACNetwork((3, 3), 3, (2, 2), 2, 1), seed, 9, 3), 9, 3,
        (grid == 0).ravel())
    for layers, (steps, local_dim, spread) in {1: (8, 3, 2.0), 2: (8, 2, 2.0),
                                               3: (7, 3, 1.5)}.items():
        yield f"rac{layers}", 6, lambda seed, layers=layers, steps=steps, local_dim=local_dim, \
            spread=spread: (_spread(DeepRACNetwork(steps, local_dim, (2,) * layers, 1), seed,
                                    spread), steps, local_dim,
                            np.arange(steps) < steps // 2 if seed % 2
                            else np.arange(steps) % 2 == 0)
        yield f"rac{layers}-trained", 3, lambda seed, layers=layers, steps=steps, \
            local_dim=local_dim: (_trained(DeepRACNetwork(steps, local_dim, (3,) * layers, 1),
                                           seed, steps, local_dim), steps, local_dim,
                                  np.arange(steps) < steps // 2)


def _networks():
    """``(name, network, n_sites, local_dim, in_a, exact)`` of the whole battery.

    Each family contributes the first seeds, up to its quota, whose exact
    ``S_2`` exceeds ``MIN_ENTROPY``; the first is the multi-modal ConvAC.
    """
    for family, quota, make in _families():
        kept = 0
        for seed in range(40):
            net, n_sites, local_dim, in_a = make(seed)
            exact = _exact(net, n_sites, local_dim, in_a)
            if exact > MIN_ENTROPY:
                yield f"{family}-{seed}", net, n_sites, local_dim, in_a, exact
                kept += 1
                if kept == quota:
                    break


def _z_score(net, n_sites, local_dim, in_a, exact, seed, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = renyi2_monte_carlo(net, n_sites, local_dim, in_a, 2048, random_state=seed,
                                 **options)
    flagged = any(issubclass(w.category, MonteCarloConvergenceWarning) for w in caught)
    return est, (est.entropy[0] - exact) / est.stderr[0], flagged


def battery(**options):
    """``(name, exact, estimate, stderr, z, r_hat, warned)`` of every battery network."""
    for index, (name, net, n_sites, local_dim, in_a, exact) in enumerate(_networks()):
        est, z, flagged = _z_score(net, n_sites, local_dim, in_a, exact, index, **options)
        yield name, exact, est.entropy[0], est.stderr[0], z, est.r_hat[0], flagged


def _check(rows):
    z = np.array([row[4] for row in rows])
    assert np.all(np.isfinite(z))
    assert np.mean(np.abs(z) <= 3) >= 0.95, rows
    assert np.max(np.abs(z)) <= 5, rows


@pytest.mark.slow
def test_full_battery_is_within_three_standard_errors():
    rows = list(battery())
    assert len(rows) >= 50
    _check(rows)


def _case(family, seed):
    make = next(make for name, _, make in _families() if name == family)
    net, n_sites, local_dim, in_a = make(seed)
    return net, n_sites, local_dim, in_a, _exact(net, n_sites, local_dim, in_a)


@pytest.mark.parametrize("family, seed", [("convac2d", 2), ("convac1d", 2), ("rac2", 2)])
def test_small_battery(family, seed):
    net, n_sites, local_dim, in_a, exact = _case(family, seed)
    assert exact > MIN_ENTROPY
    _, z, _ = _z_score(net, n_sites, local_dim, in_a, exact, seed)
    assert abs(z) <= 3


def test_multimodal_convac_needs_jumps():
    # convac2d-2: |Psi|^2 has two isolated peaks of weight 0.25 each, on the
    # constant configurations all-0 and all-2, whose single-site neighbours
    # are far less likely. Without jumps single-site chains stay on the peak
    # they reach and miss the entanglement entirely; every chain pair then
    # sees swap values equal to 1 up to rounding, which no diagnostic computed
    # from the draws can question. Jumps, and the start they give, find both.
    net, n_sites, local_dim, in_a, exact = _case("convac2d", 2)
    _, z, _ = _z_score(net, n_sites, local_dim, in_a, exact, 0, jumps=False, n_temperatures=1)
    assert abs(z) > 5
    _, z, _ = _z_score(net, n_sites, local_dim, in_a, exact, 0, n_temperatures=1)
    assert abs(z) <= 3


def _histogram(rows):
    z = np.abs([row[4] for row in rows])
    edges = [0, 1, 2, 3, 4, 5, np.inf]
    counts, _ = np.histogram(z, bins=edges)
    return {f"{lo}-{hi}": int(c) for lo, hi, c in zip(edges[:-1], edges[1:], counts)}


if __name__ == "__main__":
    torch.set_num_threads(1)
    settings = {"default": {}}
    if "--compare" in sys.argv:
        settings["single-site"] = {"n_temperatures": 1}
    for label, options in settings.items():
        rows = []
        for row in battery(**options):
            print("  %-22s exact %.3f mc %.3f +- %.3f z %+.2f r_hat %.3f warned %s" % row,
                  flush=True)
            rows.append(row)
        z = np.array([row[4] for row in rows])
        print(f"{label}: {len(rows)} networks, |z| histogram {_histogram(rows)}, "
              f"max |z| {np.abs(z).max():.2f}, within 3: {np.mean(np.abs(z) <= 3):.3f}, "
              f"warned {sum(row[6] for row in rows)}")
