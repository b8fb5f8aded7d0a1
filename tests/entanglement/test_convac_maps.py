"""The engine's ConvAC maps and light-cone updater against the network, and the
log-domain average of swap values."""

import subprocess
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from skqcnn.entanglement._convac_maps import ConvACMaps, ConvACUpdater
from skqcnn.entanglement._monte_carlo import _summarise, _warn, renyi2_monte_carlo
from skqcnn.exceptions import MonteCarloConvergenceWarning
from skqcnn.nn._convac import OverlappingConvACNetwork

torch.set_num_threads(1)

# (image_shape, channels, kernel_size, pooling): 1D and 2D, with and without
# pooling, odd sides, clipped pooling blocks, and kernels larger than a map
# (the 5x5 image pooled by 2 gives a 3x3 then a 2x2 map under a kernel of 4).
GEOMETRIES = [
    ((7,), (3, 2), 3, None),
    ((9,), (2, 2), 4, 2),
    ((5, 7), (3, 2), 3, 2),
    ((6, 5), (2, 2), 2, None),
    ((5, 5), (2, 2, 2), 4, 2),
    ((3, 3), (2,), 5, 2),
]


def _network(shape, channels, kernel, pooling, seed=0, local_dim=3):
    """A float64 eval-mode ConvAC whose every statistic and affine map is off identity."""
    gen = torch.Generator().manual_seed(seed)
    net = OverlappingConvACNetwork(shape, local_dim, channels, kernel, 4, pooling=pooling,
                                   generator=gen).double()
    with torch.no_grad():
        for norm in net.norms:
            for p in norm.parameters():
                p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
            norm.running_mean.add_(0.3 * torch.rand(norm.running_mean.shape, generator=gen,
                                                    dtype=torch.float64))
            norm.running_var.add_(torch.rand(norm.running_var.shape, generator=gen,
                                             dtype=torch.float64))
        net.running_log_scale.normal_(generator=gen)
    return net.eval()


@torch.no_grad()
def _reference(net, configs):
    return net.log_forward(torch.nn.functional.one_hot(configs, net.local_dim).double())


@pytest.mark.parametrize("shape, channels, kernel, pooling", GEOMETRIES)
def test_maps_reproduce_log_forward_on_one_hot_configurations(shape, channels, kernel,
                                                              pooling):
    net = _network(shape, channels, kernel, pooling)
    n_sites = net.n_sites
    configs = torch.randint(3, (64, n_sites), generator=torch.Generator().manual_seed(1))
    # The constant configurations carry the bias paths: include them.
    configs[:3] = torch.arange(3).unsqueeze(1)
    log_abs, sign = ConvACMaps(net.folded_maps())(configs)
    ref_log, ref_sign = _reference(net, configs)
    # Log-amplitudes of hundreds to thousands: float64 rounding is about 1e-13 of them.
    np.testing.assert_allclose(log_abs, ref_log, rtol=1e-12, atol=1e-9)
    assert torch.equal(sign, ref_sign)
    assert log_abs.abs().max() > 10


@pytest.mark.parametrize("shape, channels, kernel, pooling", GEOMETRIES)
def test_light_cone_updates_match_full_evaluation(shape, channels, kernel, pooling):
    net = _network(shape, channels, kernel, pooling, seed=2)
    maps = ConvACMaps(net.folded_maps())
    gen = torch.Generator().manual_seed(3)
    n_sites, batch = net.n_sites, 24
    configs = torch.randint(3, (batch, n_sites), generator=gen)
    updater = ConvACUpdater(maps, configs)
    for step in range(40):
        site = int(torch.randint(n_sites, (), generator=gen))
        values = torch.randint(3, (batch,), generator=gen)
        proposal = configs.clone()
        proposal[:, site] = values
        new_log, _ = updater.propose(site, values)
        np.testing.assert_allclose(new_log, _reference(net, proposal)[0], rtol=1e-11,
                                   atol=1e-8)
        keep = torch.rand(batch, generator=gen) < 0.5
        updater.accept(keep)
        configs = torch.where(keep.unsqueeze(1), proposal, configs)
        if step % 10 == 9:
            # A jump: whole new configurations in some rows.
            proposal = torch.randint(3, (batch, n_sites), generator=gen)
            updater.propose_configs(proposal)
            updater.accept(keep)
            configs = torch.where(keep.unsqueeze(1), proposal, configs)
    np.testing.assert_allclose(updater.log_amplitudes()[0], _reference(net, configs)[0],
                               rtol=1e-11, atol=1e-8)
    assert torch.equal(updater.configs, configs)

    first, second = torch.arange(0, batch, 2), torch.arange(1, batch, 2)
    masks = [np.arange(n_sites) < n_sites // 3, np.arange(n_sites) >= 2,
             np.arange(n_sites) % 2 == 0]
    for in_a in (torch.as_tensor(m) for m in masks):
        log_abs, sign = updater.swapped(first, second, in_a)
        a, b = configs[first], configs[second]
        for swapped, got_log, got_sign in ((torch.where(in_a, a, b), log_abs[0], sign[0]),
                                           (torch.where(in_a, b, a), log_abs[1], sign[1])):
            ref_log, ref_sign = _reference(net, swapped)
            np.testing.assert_allclose(got_log, ref_log, rtol=1e-11, atol=1e-8)
            assert torch.equal(got_sign, ref_sign)


def test_engine_does_not_import_the_torch_modules():
    code = ("import sys, skqcnn.entanglement._monte_carlo, skqcnn.entanglement._convac_maps; "
            "print(any(m.startswith('skqcnn.nn') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.strip() == "False"


def _chains(n_classes):
    return SimpleNamespace(
        acceptance=lambda: torch.ones(n_classes),
        jump_acceptance=lambda: torch.zeros(n_classes),
        exchange_rates=lambda: np.zeros(0),
    )


def test_swap_values_beyond_float64_give_a_finite_and_correct_entropy():
    # Swap values as (log, sign): 8 chains of 50 draws, a few negative. The
    # same draws multiplied by exp(1000) (far beyond float64's exp(709)) must
    # give the same ESS and R-hat and an entropy smaller by exactly 1000.
    rng = np.random.default_rng(0)
    values = rng.normal(0.6, 0.3, size=(1, 8, 50))
    log_values, signs = np.log(np.abs(values)), np.sign(values)
    direct = _summarise(log_values, signs, np.array([0]), _chains(1), 1, np.array([400]))
    assert direct.purity[0] == pytest.approx(values.mean(), rel=1e-12)
    assert direct.entropy[0] == pytest.approx(-np.log(values.mean()), rel=1e-12)
    with np.errstate(over="raise"):
        huge = _summarise(log_values + 1000.0, signs, np.array([0]), _chains(1), 1,
                          np.array([400]))
    assert np.isfinite(huge.entropy[0]) and np.isfinite(huge.stderr[0])
    assert huge.entropy[0] == pytest.approx(direct.entropy[0] - 1000.0, rel=1e-12)
    assert huge.stderr[0] == pytest.approx(direct.stderr[0], rel=1e-9)
    assert huge.ess[0] == pytest.approx(direct.ess[0], rel=1e-9)
    # The two draws either side of the median tie in the folded ranks, and
    # rounding of the shifted logarithms may break that tie: not exactly equal.
    assert huge.r_hat[0] == pytest.approx(direct.r_hat[0], rel=1e-3)
    # A purity estimate beyond float64 is reported as inf, the entropy stays finite.
    assert np.isinf(huge.purity[0])


@pytest.mark.parametrize("n_informative", [0, 400])
def test_swap_values_equal_up_to_rounding_give_no_error_below_their_resolution(n_informative):
    # Swap values equal to 1 up to rounding (a product state, or chains that
    # all sit on one configuration): the estimate is 0 within the resolution
    # of the values, not below 0 by many standard errors of 1e-17.
    rng = np.random.default_rng(1)
    log_values = rng.normal(0.0, 2e-16, size=(1, 8, 50)) + 3e-16
    result = _summarise(log_values, np.ones_like(log_values), np.array([0]), _chains(1), 1,
                        np.array([n_informative]))
    assert result.entropy[0] == pytest.approx(-3e-16, abs=1e-16)
    assert result.stderr[0] == pytest.approx(1e-10, rel=1e-6)
    if n_informative:
        # Replicas that differ on both sides saw a product state.
        with warnings.catch_warnings():
            warnings.simplefilter("error", MonteCarloConvergenceWarning)
            _warn(result, 8, 1, 1)
    else:
        # Replicas that never differed on both sides saw nothing.
        with pytest.warns(MonteCarloConvergenceWarning, match="Only 0 of 400 samples"):
            _warn(result, 8, 1, 1)


def _paired_bits_fn(configs):
    """Four qubits, log |Psi| = 400 where sites 0, 1 repeat sites 2, 3, else 0: the
    maximally entangled S_2 = log 4 across (0, 1) | (2, 3), with swap values of
    chains off the diagonal near exp(1600)."""
    diagonal = (configs[:, :2] == configs[:, 2:]).all(dim=1)
    log_abs = torch.where(diagonal, 400.0, 0.0).to(torch.float64)
    return log_abs[:, None], torch.ones_like(log_abs)[:, None]


@pytest.mark.filterwarnings("ignore:Monte Carlo chains disagree")
def test_chains_far_from_the_bulk_give_a_finite_estimate_and_a_warning():
    in_a = np.arange(4) < 2
    # No burn-in, no jumps and no tempering: the first samples come from
    # random configurations, off the diagonal, and their swap values overflow
    # float64 (the estimate was NaN when they were averaged directly).
    with pytest.warns(MonteCarloConvergenceWarning, match="far from the bulk"):
        est = renyi2_monte_carlo(_paired_bits_fn, 4, 2, in_a, 200, burn_in=0, thinning=1,
                                 jumps=False, n_temperatures=1, random_state=0)
    assert np.isfinite(est.entropy[0]) and est.entropy[0] < -100
    # Burnt in, the same state gives its exact entropy.
    est = renyi2_monte_carlo(_paired_bits_fn, 4, 2, in_a, 2000, random_state=0)
    assert abs(est.entropy[0] - np.log(4)) < 3 * est.stderr[0] < 0.3
