"""OverlappingConvACClassifier and DeepRACClassifier as estimators."""

import math

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

from skqcnn import DeepRACClassifier, OverlappingConvACClassifier
from skqcnn.entanglement._duplicated import rac_rank_lower_bound
from skqcnn.entanglement._monte_carlo import renyi2_monte_carlo


@pytest.fixture(scope="module")
def tiny_sequences():
    """Sequences of 8 steps; the class says whether the mean is above 0.5.

    A global product of local factors is a sum of local terms in log space,
    so every family can learn this.
    """
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(200, 8))
    y = (X.mean(axis=1) > 0.5).astype(int)
    return X, y


def with_random_weights(clf, seed=0, spread=1.0):
    """A refit copy whose weights are ``1 + spread * normal`` and BatchNorms identities.

    Trained toy models have nearly product class states; these weights give
    states that are neither product states nor dominated by one configuration.
    """
    clf = clone(clf).set_params(max_epochs=1).fit(*clf._fit_data)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in clf.net_.module_.network.state_dict().items():
            if "norms" in name or "log_scale" in name:
                tensor.fill_(1.0 if name.endswith(("weight", "running_var")) else 0.0)
            else:
                noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
                tensor.copy_(1.0 + spread * noise)
    return clf


@pytest.fixture(scope="module")
def fitted_convac_1d(tiny_sequences):
    X, y = tiny_sequences
    clf = OverlappingConvACClassifier(channels=(4, 4), kernel_size=3, pooling=2, lr=0.003,
                                      representation="fourier", n_freq=1, max_epochs=40,
                                      random_state=0, dtype=np.float64).fit(X, y)
    clf._fit_data = (X, y)
    return clf


@pytest.fixture(scope="module")
def fitted_rac(tiny_sequences):
    X, y = tiny_sequences
    clf = DeepRACClassifier(hidden_size=3, n_layers=2, max_epochs=10, random_state=0,
                            dtype=np.float64).fit(X, y)
    clf._fit_data = (X, y)
    return clf


def test_convac_learns_and_reports_layout(fitted_convac_1d, tiny_sequences):
    X, y = tiny_sequences
    assert fitted_convac_1d.image_shape_ == (8,)
    assert fitted_convac_1d.channels_ == (4, 4)
    assert fitted_convac_1d.score(X, y) > 0.8


def test_rac_learns_and_reports_layout(fitted_rac, tiny_sequences):
    X, y = tiny_sequences
    assert fitted_rac.sequence_shape_ == (8, 1)
    assert fitted_rac.hidden_sizes_ == (3, 3)
    assert fitted_rac.score(X, y) > 0.8


@pytest.mark.parametrize("fixture", ["fitted_convac_1d", "fitted_rac"])
def test_exact_entanglement_invariants(request, fixture):
    clf = request.getfixturevalue(fixture)
    in_a = np.arange(8) >= 5
    spectra = clf.schmidt_spectrum(in_a)
    bound = clf.schmidt_rank_bound(in_a)
    for p in spectra:
        np.testing.assert_allclose(p.sum(), 1.0)
        assert np.all(np.diff(p) <= 1e-15)
        assert p.size <= bound
    entropies = clf.entanglement_entropy(in_a)
    complement = clf.entanglement_entropy(~in_a)
    np.testing.assert_allclose(entropies, complement, atol=1e-9)
    renyi2 = clf.entanglement_entropy(in_a, alpha=2)
    assert np.all(renyi2 <= entropies + 1e-12)
    np.testing.assert_allclose(
        clf.entanglement_entropy(in_a, base=2), entropies / np.log(2), rtol=1e-12
    )


def test_monte_carlo_renyi2_matches_exact(tiny_sequences):
    X, y = tiny_sequences
    clf = DeepRACClassifier(hidden_size=2, representation="legendre", max_epochs=1,
                            random_state=0, dtype=np.float64).fit(X, y)
    clf._fit_data = (X, y)
    clf = with_random_weights(clf, seed=2, spread=2.0)
    in_a = np.arange(8) >= 4
    exact = clf.entanglement_entropy(in_a, alpha=2, classes=[1])
    assert exact[0] > 0.3
    estimate, std = clf.entanglement_entropy(in_a, alpha=2, classes=[1], method="monte_carlo",
                                             n_samples=4096, random_state=0, return_std=True)
    assert 0 < std[0] < 0.5 * exact[0]
    assert abs(estimate[0] - exact[0]) <= 3 * std[0]


def test_convac_monte_carlo_is_the_engine_estimate(tiny_sequences):
    """Wiring only: single-site Metropolis can mix poorly on multi-modal states
    (see renyi2_monte_carlo), which the engine's own tests cover."""
    X, y = tiny_sequences
    clf = OverlappingConvACClassifier(channels=(2, 2), kernel_size=2, max_epochs=1,
                                      random_state=0, dtype=np.float64).fit(X, y)
    in_a = np.arange(8) % 2 == 1
    estimate, std = clf.entanglement_entropy("interleaved", alpha=2, method="monte_carlo",
                                             n_samples=1024, random_state=0, return_std=True)
    direct = renyi2_monte_carlo(clf.net_.module_.network, 8, clf.local_dim_, in_a, 1024,
                                classes=[0, 1], random_state=0)
    np.testing.assert_array_equal(estimate, direct.entropy)
    np.testing.assert_array_equal(std, direct.stderr)


def test_one_layer_rac_uses_exact_mps_form_beyond_enumeration():
    rng = np.random.default_rng(3)
    X = rng.uniform(size=(64, 40))
    y = (X.mean(axis=1) > 0.5).astype(int)
    clf = DeepRACClassifier(hidden_size=3, n_layers=1, max_epochs=1, dtype=np.float64,
                            random_state=0).fit(X, y)
    assert clf.local_dim_**40 > 2**22
    entropies = clf.entanglement_entropy(10)
    assert np.all(np.isfinite(entropies)) and np.all(entropies <= np.log(4) + 1e-9)
    np.testing.assert_allclose(clf.entanglement_entropy(np.arange(40) < 30), entropies)
    with pytest.raises(ValueError, match="above the limit"):
        clf.schmidt_spectrum([0, 5])


def test_rac_partitions_and_theorem2_bound(fitted_rac):
    half = fitted_rac._site_partition("half")
    np.testing.assert_array_equal(half, np.arange(8) >= 4)
    np.testing.assert_array_equal(fitted_rac._site_partition(3), np.arange(8) >= 5)
    m, r = fitted_rac.local_dim_, 3
    assert fitted_rac.schmidt_rank_lower_bound(2) == math.comb(min(r, m) + 1, 2)
    assert rac_rank_lower_bound(r, m, 2) == fitted_rac.schmidt_rank_lower_bound(2)
    with pytest.raises(ValueError, match="last \\|A\\| steps with \\|A\\| <= \\|B\\|"):
        fitted_rac.schmidt_rank_lower_bound(np.arange(8) < 2)
    with pytest.raises(ValueError, match="1 <= k < 8"):
        fitted_rac.entanglement_entropy(8)


def test_rac_sequence_shapes(tiny_sequences):
    X, y = tiny_sequences
    X16 = np.hstack([X, X[:, ::-1]])
    flat = DeepRACClassifier(hidden_size=3, sequence_shape=(8, 2), max_epochs=2, random_state=0)
    flat.fit(X16, y)
    assert flat.sequence_shape_ == (8, 2) and flat.local_dim_ == 1 + 2 * 2
    cube = DeepRACClassifier(hidden_size=3, max_epochs=2, random_state=0)
    cube.fit(X16.reshape(-1, 8, 2), y)
    assert cube.sequence_shape_ == (8, 2)
    np.testing.assert_allclose(cube.decision_function(X16.reshape(-1, 8, 2)),
                               flat.decision_function(X16))


def test_convac_2d_blocks_and_persistence(small_digits, tmp_path):
    X, y = small_digits
    clf = OverlappingConvACClassifier(channels=(4,), kernel_size=3, max_epochs=3,
                                      random_state=0).fit(X, y)
    bounds = [clf.schmidt_rank_bound(("block", size)) for size in (1, 2, 3)]
    assert bounds[0] == clf.local_dim_ and bounds == sorted(bounds)
    path = tmp_path / "convac.joblib"
    joblib.dump(clf, path)
    np.testing.assert_array_equal(joblib.load(path).predict(X), clf.predict(X))


def test_grid_search_over_schedules(tiny_sequences):
    X, y = tiny_sequences
    grid = GridSearchCV(
        DeepRACClassifier(max_epochs=2, random_state=0),
        {"hidden_size": [("constant", 2), ("wide_base", 4)]}, cv=2,
    ).fit(X, y)
    assert grid.best_estimator_.hidden_sizes_ in [(2, 2), (4, 2)]


@pytest.mark.parametrize("params, message", [
    (dict(kernel_size=9), "kernel_size=9 is larger than the image"),
    (dict(kernel_size=0), "kernel_size must be a positive int"),
    (dict(pooling=3), "pool"),
    (dict(pooling=-1), "pooling must be None or a positive int"),
    (dict(channels=("nope", 2)), "Unknown channels schedule"),
])
def test_convac_bad_hyperparameters(tiny_sequences, params, message):
    X, y = tiny_sequences
    with pytest.raises(ValueError, match=message):
        OverlappingConvACClassifier(max_epochs=1, **params).fit(X, y)


@pytest.mark.parametrize("params, error, message", [
    (dict(sequence_shape=(3, 3)), ValueError, "needs T \\* F = 9 features but X has 8"),
    (dict(sequence_shape=(0, 8)), ValueError, "an empty sequence has no steps"),
    (dict(sequence_shape=7), TypeError, "sequence_shape must be None or"),
    (dict(n_layers=0), ValueError, "n_layers must be a positive int"),
    (dict(hidden_size=(2, -1)), ValueError, "hidden_size must hold positive ints"),
])
def test_rac_bad_hyperparameters(tiny_sequences, params, error, message):
    X, y = tiny_sequences
    with pytest.raises(error, match=message):
        DeepRACClassifier(max_epochs=1, **params).fit(X, y)


def test_entanglement_errors(fitted_convac_1d):
    with pytest.raises(ValueError, match="method must be one of"):
        fitted_convac_1d.entanglement_entropy(method="guess")
    with pytest.raises(ValueError, match="Monte Carlo estimates the Renyi-2 entropy only"):
        fitted_convac_1d.entanglement_entropy(method="monte_carlo", alpha=1)
    with pytest.raises(ValueError, match="leaves subsystem A or B empty"):
        fitted_convac_1d.entanglement_entropy(np.zeros(8, dtype=bool))
    with pytest.raises(ValueError, match="Unknown partition 'half'"):
        fitted_convac_1d.entanglement_entropy("half")
    with pytest.raises(NotFittedError):
        OverlappingConvACClassifier().schmidt_rank_bound()
