"""Dense network states by enumeration, and the Monte Carlo Renyi-2 estimator."""

import warnings

import numpy as np
import pytest
import torch
from _identity_norms import identity_normalisations

from skqcnn.entanglement._diagnostics import effective_sample_size, split_r_hat
from skqcnn.entanglement._enumeration import configurations, enumerate_amplitudes
from skqcnn.entanglement._monte_carlo import (
    Renyi2Estimate,
    network_log_amplitudes,
    renyi2_monte_carlo,
)
from skqcnn.entanglement._sampling import RecurrentMaps, RecurrentUpdater
from skqcnn.entanglement._spectra import entropy_from_spectrum, spectrum_from_amplitudes
from skqcnn.exceptions import MonteCarloConvergenceWarning
from skqcnn.nn._convac import OverlappingConvACNetwork
from skqcnn.nn._rac import DeepRACNetwork

torch.set_num_threads(1)


def _random(net, seed, spread=None):
    """float64 copy with standard normal parameters, or ``1 + spread * normal``.

    With a spread the BatchNorms become identities; this gives states that are
    neither product states nor dominated by a single configuration.
    """
    net = net.double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            # Drawn for every parameter, so that the others do not depend on
            # which ones are normalisations.
            noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
            if spread is None:
                p.copy_(noise)
            elif "norms" not in name:
                p.copy_(1.0 + spread * noise)
    return net if spread is None else identity_normalisations(net)


def _contract(amplitudes, features, local_dim):
    """Amplitude tensor contracted with one feature vector per site."""
    tensor = amplitudes.reshape((amplitudes.shape[0],) + (local_dim,) * features.shape[0])
    for vector in features:
        tensor = np.tensordot(tensor, vector, axes=([1], [0]))
    return tensor


def test_configurations_are_in_c_order():
    configs = configurations(0, 27, n_sites=3, local_dim=3).numpy()
    assert configs[5].tolist() == [0, 1, 2]
    np.testing.assert_array_equal(configs @ (3 ** np.arange(2, -1, -1)), np.arange(27))


@pytest.mark.parametrize(
    "net, n_sites, local_dim",
    [
        (OverlappingConvACNetwork((6,), 3, (2,), 1, 2), 6, 3),
        (OverlappingConvACNetwork((4, 4), 2, (2, 2), 1, 3, pooling=2), 16, 2),
        (DeepRACNetwork(6, 3, (3,), 2), 6, 3),
    ],
)
def test_multilinear_when_every_input_is_used_once(net, n_sites, local_dim):
    # Kernel-1 ConvACs and depth-1 RACs use each site once, so the score is
    # the amplitude tensor contracted with the per-site features.
    net = _random(net, 0)
    amplitudes = enumerate_amplitudes(net, n_sites, local_dim, batch_size=1000)
    features = torch.randn(3, n_sites, local_dim, dtype=torch.float64)
    scores = net.eval()(features).detach().numpy()
    for b in range(3):
        expected = _contract(amplitudes, features[b].numpy(), local_dim)
        np.testing.assert_allclose(expected, scores[b], rtol=1e-9,
                                   atol=1e-12 * np.abs(scores[b]).max())


@pytest.mark.parametrize(
    "net, n_sites, local_dim",
    [
        (OverlappingConvACNetwork((2, 3), 3, (2, 2), 2, 2), 6, 3),
        (DeepRACNetwork(6, 3, (2, 2), 2), 6, 3),
    ],
)
def test_amplitudes_are_one_hot_scores_of_networks_with_reuse(net, n_sites, local_dim):
    net = _random(net, 1)
    amplitudes = enumerate_amplitudes(net, n_sites, local_dim, batch_size=100)
    index = np.random.default_rng(0).choice(local_dim**n_sites, size=20, replace=False)
    configs = configurations(0, local_dim**n_sites, n_sites, local_dim)[index]
    features = torch.nn.functional.one_hot(configs, local_dim).double()
    np.testing.assert_allclose(amplitudes[:, index].T, net.eval()(features).detach().numpy(),
                               rtol=1e-12)
    # Overlapping windows and stacked recurrences re-use inputs: the score is
    # not multilinear, so contracting Psi with general features differs.
    features = torch.randn(n_sites, local_dim, dtype=torch.float64)
    score = net(features[None]).detach().numpy()[0]
    assert not np.allclose(_contract(amplitudes, features.numpy(), local_dim), score)


def test_score_degree_in_a_site_counts_its_copies_in_the_duplicated_tree():
    # Scaling the features of one site by lam multiplies the score by
    # lam ** (number of copies of the site in DUP): with K = 3 and the window
    # t-1..t+1, an edge site has 2 copies after one layer and an interior site
    # 3; with K = 2 (window t..t+1) the first site has 1 and the last 2. For a
    # depth-2 RAC, x_t has T - t + 1 copies (t counted from 1).
    lam = 2.0
    features = torch.rand(1, 6, 3, dtype=torch.float64) + 0.5
    cases = [
        (OverlappingConvACNetwork((6,), 3, (2,), 3, 1), {0: 2, 2: 3, 5: 2}),
        (OverlappingConvACNetwork((6,), 3, (2,), 2, 1), {0: 1, 3: 2, 5: 2}),
        (OverlappingConvACNetwork((6,), 3, (2, 2), 3, 1), {0: 5, 2: 9}),
        (DeepRACNetwork(6, 3, (2, 2), 1), {0: 6, 3: 3, 5: 1}),
    ]
    for net, degrees in cases:
        net = _random(net, 2).eval()
        base = net(features).item()
        for site, degree in degrees.items():
            scaled = features.clone()
            scaled[0, site] *= lam
            assert net(scaled).item() == pytest.approx(base * lam**degree, rel=1e-9)


def test_enumeration_refuses_large_systems():
    net = OverlappingConvACNetwork((23,), 2, (2,), 2, 1)
    with pytest.raises(ValueError, match=r"2\*\*23 = 8388608 .* Monte Carlo"):
        enumerate_amplitudes(net, 23, 2)


def test_enumeration_leaves_the_network_unchanged():
    net = OverlappingConvACNetwork((4,), 2, (2,), 2, 2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    enumerate_amplitudes(net, 4, 2)
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def _exact_renyi2(amplitudes, in_a, local_dim):
    return np.array([
        entropy_from_spectrum(spectrum_from_amplitudes(psi, in_a, local_dim), alpha=2)
        for psi in amplitudes
    ])


@pytest.mark.parametrize(
    "net, local_dim, in_a",
    [
        (_random(OverlappingConvACNetwork((8,), 3, (2, 2), 2, 1), 18, spread=1.0), 3,
         np.arange(8) < 4),
        (_random(OverlappingConvACNetwork((8,), 3, (2, 2), 2, 1), 18, spread=1.0), 3,
         np.arange(8) % 2 == 0),
        (_random(DeepRACNetwork(8, 2, (2, 2), 1), 2, spread=2.0), 2, np.arange(8) < 4),
    ],
)
def test_monte_carlo_agrees_with_enumeration(net, local_dim, in_a):
    exact = _exact_renyi2(enumerate_amplitudes(net, 8, local_dim), in_a, local_dim)
    # Entangled enough for a relative error to mean something.
    assert exact[0] > 0.2
    est = renyi2_monte_carlo(net, 8, local_dim, in_a, n_samples=2048, n_chains=64,
                             burn_in=400, thinning=8, random_state=0)
    assert isinstance(est, Renyi2Estimate)
    assert est.n_samples == 2048
    assert 0 < est.stderr[0] < 0.2
    assert abs(est.entropy[0] - exact[0]) < 3 * est.stderr[0]
    assert abs(np.exp(-exact[0]) - est.purity[0]) < 3 * est.purity_stderr[0]
    assert 0.05 < est.acceptance[0] < 1


def test_monte_carlo_accepts_plain_amplitude_functions_and_is_reproducible():
    net = _random(OverlappingConvACNetwork((6,), 2, (2,), 2, 2), 3, spread=0.5)
    amplitudes = enumerate_amplitudes(net, 6, 2)
    places = torch.tensor(2 ** np.arange(5, -1, -1))
    table = torch.from_numpy(amplitudes.T.copy())

    def amplitude_fn(configs):
        return table[(configs * places).sum(dim=1)]

    in_a = np.arange(6) >= 3
    first = renyi2_monte_carlo(amplitude_fn, 6, 2, in_a, 1024, n_chains=32, burn_in=60,
                               thinning=6, random_state=5)
    again = renyi2_monte_carlo(amplitude_fn, 6, 2, in_a, 1024, n_chains=32, burn_in=60,
                               thinning=6, random_state=5)
    np.testing.assert_array_equal(first.entropy, again.entropy)
    assert first.classes.tolist() == [0, 1]
    exact = _exact_renyi2(amplitudes, in_a, 2)
    assert np.all(np.abs(first.entropy - exact) < 3 * first.stderr)
    # The same estimate from the network itself, for one class.
    from_net = renyi2_monte_carlo(net, 6, 2, in_a, 1024, classes=[1], n_chains=32,
                                  burn_in=60, thinning=6, random_state=5)
    assert from_net.classes.tolist() == [1]
    assert abs(from_net.entropy[0] - exact[1]) < 3 * from_net.stderr[0]


def test_network_log_amplitudes_match_enumeration():
    net = _random(DeepRACNetwork(5, 3, (2, 2), 2), 4)
    configs = configurations(0, 3**5, 5, 3)
    log_abs, sign = network_log_amplitudes(net, 3)(configs)
    amplitudes = enumerate_amplitudes(net, 5, 3)
    np.testing.assert_allclose((sign * torch.exp(log_abs)).numpy().T, amplitudes, rtol=1e-10)


def test_monte_carlo_checks_its_inputs():
    net = DeepRACNetwork(4, 2, (2,), 1)
    with pytest.raises(ValueError, match="n_sites=4"):
        renyi2_monte_carlo(net, 4, 2, [True, False], 128)


@pytest.mark.parametrize("options, error, match", [
    ({"n_samples": 0}, ValueError, "n_samples must be >= 100, got 0"),
    ({"n_samples": -5}, ValueError, "n_samples must be >= 100, got -5"),
    ({"n_samples": 1}, ValueError, "n_samples must be >= 100, got 1"),
    ({"n_samples": 1.5}, TypeError, "n_samples must be an int, got 1.5 of type float"),
    ({"n_samples": True}, TypeError, "n_samples must be an int"),
    ({"n_samples": 128, "n_chains": 0}, ValueError, "n_chains must be >= 1"),
    ({"n_samples": 128, "n_temperatures": 2.0}, TypeError, "n_temperatures must be an int"),
    ({"n_samples": 128, "beta_min": 1.0}, ValueError, r"beta_min must lie in \(0, 1\)"),
    ({"n_samples": 128, "thinning": 0}, ValueError, "thinning must be >= 1"),
])
def test_monte_carlo_rejects_bad_options(options, error, match):
    net = DeepRACNetwork(4, 2, (2,), 1)
    options = {"network": net, "n_sites": 4, "local_dim": 2, "in_a": [True] * 2 + [False] * 2,
               **options}
    with pytest.raises(error, match=match):
        renyi2_monte_carlo(**options)


def _table_fn(psi):
    """Amplitude function of a dense one-class qubit state, C order."""
    n_sites = int(np.log2(psi.size))
    places = torch.tensor(2 ** np.arange(n_sites - 1, -1, -1))
    table = torch.as_tensor(psi, dtype=torch.float64)[:, None]
    return lambda configs: table[(configs * places).sum(dim=1)]


def _ghz(n_sites, background=1e-3):
    psi = np.full(2**n_sites, background)
    psi[0] = psi[-1] = 1.0
    return psi


def test_single_site_chains_stuck_in_separate_modes_are_flagged():
    # Two modes, all-0 and all-1, separated by amplitudes 1000 times smaller:
    # single-site chains stay where they start, and the chains disagree.
    with pytest.warns(MonteCarloConvergenceWarning, match=r"chains disagree .* R-hat"):
        est = renyi2_monte_carlo(_table_fn(_ghz(8)), 8, 2, np.arange(8) < 4, 2048,
                                 n_temperatures=1, jumps=False, random_state=0)
    assert est.r_hat[0] > 1.5


@pytest.mark.parametrize("options", [{"jumps": False}, {}])
def test_replica_exchange_and_jumps_cross_between_modes(options):
    psi = _ghz(8)
    in_a = np.arange(8) < 4
    exact = _exact_renyi2(psi[None], in_a, 2)[0]
    est = renyi2_monte_carlo(_table_fn(psi), 8, 2, in_a, 2048, random_state=0, **options)
    assert abs(est.entropy[0] - exact) < 3 * est.stderr[0] < 0.5
    assert est.exchange_acceptance.shape == (3,) and np.all(est.exchange_acceptance > 0.1)


def test_negative_entropy_is_reported_with_its_error():
    # S_2 = 0.008: the purity estimate may exceed 1, and its logarithm is kept.
    rng = np.random.default_rng(0)
    psi = np.array([1.0, 0.5])
    for _ in range(5):
        psi = np.kron(psi, [1.0, 0.5])
    psi = psi + 0.02 * rng.normal(size=psi.size)
    in_a = np.arange(6) < 3
    exact = _exact_renyi2(psi[None], in_a, 2)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Of 160 samples, fewer than 100 have replicas that differ on both sides.
        warnings.filterwarnings("ignore", message="Only .* drew replicas")
        est = renyi2_monte_carlo(_table_fn(psi), 6, 2, in_a, 160, random_state=17)
    assert est.purity[0] > 1 and est.entropy[0] < 0
    assert est.entropy[0] == pytest.approx(-np.log(est.purity[0]))
    assert abs(est.entropy[0] - exact) < 3 * est.stderr[0]


def test_non_positive_purity_gives_nan_with_a_warning():
    # A random state of 10 qubits has S_2 near 3 across the middle: 100 swap
    # samples can average to a negative purity.
    psi = np.random.default_rng(0).normal(size=2**10)
    with pytest.warns(MonteCarloConvergenceWarning, match="not positive, so its entropy is NaN"):
        est = renyi2_monte_carlo(_table_fn(psi), 10, 2, np.arange(10) < 5, 100, random_state=4)
    assert est.purity[0] < 0 and np.isfinite(est.purity_stderr[0])
    assert np.isnan(est.entropy[0]) and np.isnan(est.stderr[0])


def test_vanishing_amplitudes_are_explained():
    def zero(configs):
        return torch.zeros(configs.shape[0], 1, dtype=torch.float64)

    with pytest.warns(MonteCarloConvergenceWarning, match="amplitude is exactly 0"):
        est = renyi2_monte_carlo(zero, 4, 2, np.arange(4) < 2, 100, random_state=0)
    assert np.isnan(est.entropy[0]) and np.isnan(est.r_hat[0])


def test_few_effective_samples_are_flagged():
    net = _random(OverlappingConvACNetwork((8,), 3, (2, 2), 2, 1), 1, spread=1.0)
    with pytest.warns(MonteCarloConvergenceWarning, match="effective samples .* Raise n_samples"):
        est = renyi2_monte_carlo(net, 8, 3, np.arange(8) < 4, 100, n_chains=4, thinning=1,
                                 random_state=0)
    assert est.ess[0] < 100


@pytest.mark.filterwarnings("ignore::skqcnn.exceptions.MonteCarloConvergenceWarning")
def test_progress_bar_when_verbose(capsys):
    net = _random(DeepRACNetwork(6, 2, (2, 2), 1), 0, spread=1.0)
    renyi2_monte_carlo(net, 6, 2, np.arange(6) < 3, 100, random_state=0, verbose=1)
    assert "Renyi-2 Monte Carlo" in capsys.readouterr().err
    renyi2_monte_carlo(net, 6, 2, np.arange(6) < 3, 100, random_state=0)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("hidden_sizes", [(3,), (2, 3), (3, 2, 2)])
def test_recurrent_light_cone_updates_match_full_evaluation(hidden_sizes):
    net = _random(DeepRACNetwork(12, 3, hidden_sizes, 2), 4).eval()
    gen = torch.Generator().manual_seed(0)
    configs = torch.randint(3, (20, 12), generator=gen)
    maps = RecurrentMaps(net, rescale_every=3)
    updater = RecurrentUpdater(maps, configs)

    def full(configs):
        return net.log_forward(torch.nn.functional.one_hot(configs, 3).double())

    for step in range(30):
        site = 5 * step % 12
        values = torch.randint(3, (20,), generator=gen)
        proposal = configs.clone()
        proposal[:, site] = values
        new_log, new_sign = updater.propose(site, values)
        expected_log, expected_sign = full(proposal)
        torch.testing.assert_close(new_log, expected_log, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(new_sign, expected_sign)
        mask = torch.rand(20, generator=gen) < 0.5
        updater.accept(mask)
        configs = torch.where(mask[:, None], proposal, configs)
    for computed in (updater.log_amplitudes(), maps(configs)):
        torch.testing.assert_close(computed, full(configs), rtol=1e-9, atol=1e-9)


def test_diagnostics_see_chains_that_disagree():
    rng = np.random.default_rng(0)
    iid = rng.normal(size=(8, 200))
    assert split_r_hat(iid) < 1.02
    assert 1200 < effective_sample_size(iid) < 2000
    # Each chain wanders around its own level: every draw is noisy, but the
    # chains together hold about as much information as 8 draws.
    stuck = iid * 0.1 + rng.normal(size=(8, 1))
    assert split_r_hat(stuck) > 1.5
    assert effective_sample_size(stuck) < 50
    with pytest.raises(ValueError, match=r"shape \(n_chains, n_draws >= 4\)"):
        effective_sample_size(iid[:, :3])
    # Equal draws whose mean rounds off their value: every draw counts.
    assert effective_sample_size(np.full((16, 125), 1.0 + 2**-50)) == 16 * 125


def test_samples_that_cannot_see_the_entanglement_are_flagged():
    # |Psi|^2 concentrated on 000000: the two replicas mostly coincide, and a
    # swap of replicas that agree inside or outside A gives 1 whatever the state.
    psi = 0.01 * np.random.default_rng(0).normal(size=2**6)
    psi[0] = 1.0
    with pytest.warns(MonteCarloConvergenceWarning, match="drew replicas that differ both"):
        est = renyi2_monte_carlo(_table_fn(psi), 6, 2, np.arange(6) < 3, 2000, random_state=0)
    assert 0 < est.n_informative[0] < 100


def test_informative_samples_are_counted_per_class_and_need_both_sides():
    # Class 0 is uniform inside A and fixed outside it: replicas always agree
    # outside A, so no swap can tell anything. Class 1 is uniform everywhere.
    fixed = np.kron(np.full(8, 1.0), np.eye(8)[0])
    table = torch.as_tensor(np.stack([fixed, np.full(64, 1.0)], axis=1))
    places = torch.tensor(2 ** np.arange(5, -1, -1))

    def amplitudes(configs):
        return table[(configs * places).sum(dim=1)]

    with pytest.warns(MonteCarloConvergenceWarning, match="Only 0 of 2000 samples of classes 0 "):
        est = renyi2_monte_carlo(amplitudes, 6, 2, np.arange(6) < 3, 2000, random_state=0)
    assert est.n_informative[0] == 0 and est.n_informative[1] > 1000


def test_a_product_state_is_seen_by_many_samples():
    # Powers of 2: every swap value is exactly 1, and S_2 exactly 0, not -0.
    psi = np.array([1.0])
    for _ in range(6):
        psi = np.kron(psi, [1.0, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = renyi2_monte_carlo(_table_fn(psi), 6, 2, np.arange(6) < 3, 2000, random_state=0)
    assert est.n_informative[0] >= 100
    assert est.entropy[0] == 0 and not np.signbit(est.entropy[0])
