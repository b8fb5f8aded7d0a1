"""The q-CNN's tree engine behind the shared interface, checked on small images.

The interface itself (partitions, options, errors) is tested on every family
in test_entanglement_api.py; this file keeps what only the tree network has.
"""

import copy
import time

import numpy as np
import pytest
import torch

from skqcnn import QCNNClassifier
from skqcnn.entanglement import spectrum_from_amplitudes, tree_dense_amplitudes


def assert_same_spectrum(tree, dense):
    """Equal up to round-off; the tree stops at its min-cut weight, dense SVDs do not."""
    assert tree.size <= dense.size
    np.testing.assert_allclose(tree, dense[:tree.size], atol=1e-10)
    np.testing.assert_allclose(dense[tree.size:], 0.0, atol=1e-10)


@pytest.fixture(scope="module")
def fitted_4x4():
    """A float64 q-CNN on 4x4 images (16 sites of dimension 2: 2**16 amplitudes)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(120, 16))
    y = np.argmax(X.reshape(-1, 4, 4).sum(axis=1), axis=1) % 3
    return QCNNClassifier(channels=(3, 3, 4, 4), representation="legendre", n_freq=1,
                          max_epochs=5, random_state=0, dtype=np.float64).fit(X, y), X


def feature_order_amplitudes(clf):
    """Dense states with sites in feature (column) order, from the folded network."""
    network = clf.tree_network()
    amplitudes = tree_dense_amplitudes(network)
    leaves = clf.leaf_features_[clf.leaf_features_ >= 0]
    shape = (network.n_classes,) + (clf.local_dim_,) * leaves.size
    # Dense amplitudes list physical leaves in tree order; move them to feature order.
    return np.moveaxis(amplitudes.reshape(shape), list(range(1, leaves.size + 1)),
                       list(1 + leaves)).reshape(network.n_classes, -1)


def test_folded_network_reproduces_the_scores(fitted_4x4):
    clf, X = fitted_4x4
    amplitudes = feature_order_amplitudes(clf)
    features = clf.net_.module_.basis(torch.as_tensor(clf._scale_inputs(X[:4]))).numpy()
    for sample, feats in zip(clf.amplitudes(X[:4]), features):
        product = feats[0]
        for site in feats[1:]:
            product = np.multiply.outer(product, site).ravel()
        np.testing.assert_allclose(amplitudes @ product, sample, rtol=1e-10, atol=1e-12)


def test_float32_network_folds_as_its_float64_copy():
    # The fold casts the BatchNorm statistics before combining them: a float32
    # network's tree is its float64 copy's, bit for bit (1e-7 apart before).
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(80, 16))
    clf = QCNNClassifier(max_epochs=2, random_state=0).fit(X, np.arange(80) % 2)
    wide = copy.deepcopy(clf)
    wide.net_.module_.double()
    for partition in ("left_right", "up_down"):
        np.testing.assert_array_equal(clf.entanglement_entropy(partition, alpha=1),
                                      wide.entanglement_entropy(partition, alpha=1))


@pytest.mark.parametrize("partition", ["left_right", "up_down", "checkerboard"])
def test_tree_spectra_match_the_folded_dense_state(fitted_4x4, partition):
    clf, _ = fitted_4x4
    in_a = clf._partition_mask(partition)
    amplitudes = feature_order_amplitudes(clf)
    dense = [spectrum_from_amplitudes(psi, in_a, clf.local_dim_) for psi in amplitudes]
    for spectrum, reference in zip(clf.schmidt_spectrum(partition), dense):
        assert_same_spectrum(spectrum, reference)
    # The replica trick, forced by a tiny max_cut_dim, agrees with the spectrum.
    np.testing.assert_allclose(clf.entanglement_entropy(partition, alpha=2, max_cut_dim=1),
                               [-np.log(np.sum(p**2)) for p in dense], atol=1e-9)


def test_top_split_costs_one_top_bond(fitted_4x4):
    clf, _ = fitted_4x4
    bound, cut = clf.schmidt_rank_bound("left_right", return_cut=True)
    assert [bond.level for bond in cut] == [clf.leaf_features_.size.bit_length() - 2]
    assert bound == cut[0].dim


def test_product_state_has_zero_entropy():
    rng = np.random.default_rng(2)
    X, y = rng.uniform(size=(60, 16)), np.arange(60) % 2
    clf = QCNNClassifier(channels=(3, 3, 3, 3), max_epochs=1, random_state=0).fit(X, y)
    with torch.no_grad():
        for weight in clf.net_.module_.network.convs[1:]:
            # Above level 1 only the constant channel survives: Psi = c e_0 x ... x e_0.
            weight.zero_()
    for partition in ("left_right", "up_down", "interleaved"):
        np.testing.assert_allclose(clf.entanglement_entropy(partition, alpha=2), 0.0, atol=1e-12)
    assert all(p.size == 1 for p in clf.schmidt_spectrum("up_down"))


def test_padded_image_entanglement_uses_only_physical_sites():
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(80, 6))
    y = (X[:, 0] > X[:, 5]).astype(int)
    clf = QCNNClassifier(image_shape=(2, 3), channels=(3, 3, 3), max_epochs=3, random_state=0,
                         dtype=np.float64).fit(X, y)
    amplitudes = feature_order_amplitudes(clf)
    assert amplitudes.shape == (2, 3**6)
    in_a = clf._partition_mask("up_down")
    reference = [spectrum_from_amplitudes(psi, in_a, 3) for psi in amplitudes]
    for spectrum, expected in zip(clf.schmidt_spectrum("up_down"), reference):
        assert_same_spectrum(spectrum, expected)


def test_left_right_is_fast_at_32x32():
    """Sanity bound only; benchmarks/bench_entanglement_tree.py has the figures."""
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(40, 1024))
    y = np.arange(40) % 10
    clf = QCNNClassifier(channels=("constant", 8), max_epochs=1, random_state=0).fit(X, y)
    start = time.perf_counter()
    entropies = clf.entanglement_entropy("left_right")
    assert time.perf_counter() - start < 2.0
    assert entropies.shape == (10,) and np.all(np.isfinite(entropies))
    assert np.all(np.isfinite(clf.entanglement_entropy("checkerboard", alpha=2)))


def test_auto_estimates_where_the_replica_contraction_is_refused(fitted_4x4, monkeypatch):
    # Over the engine's operation budget the exact Renyi-2 entropy is refused
    # before it runs (a ContractionTooLarge ValueError naming the limit), and
    # method="auto" returns the Monte Carlo estimate instead of raising it.
    from skqcnn.entanglement import ContractionTooLarge, _tree_entropy

    clf, _ = fitted_4x4
    # max_cut_dim=1 sends every cut to the replica trick; a budget of 0 refuses it.
    monkeypatch.setattr(_tree_entropy, "MAX_REPLICA_FLOPS", 0)
    with pytest.raises(ValueError, match="MAX_REPLICA_FLOPS=0.*Monte Carlo estimate"):
        clf.entanglement_entropy("left_right", method="exact", max_cut_dim=1)
    with pytest.raises(ContractionTooLarge, match="MAX_REPLICA_FLOPS=0"):
        _tree_entropy.tree_renyi_entropies(clf.tree_network(), clf._leaf_mask(
            clf._partition_mask("left_right")), alpha=2)
    options = dict(n_samples=1500, random_state=0, return_std=True)
    auto, auto_std = clf.entanglement_entropy("left_right", max_cut_dim=1, **options)
    estimate, std = clf.entanglement_entropy("left_right", method="monte_carlo", **options)
    np.testing.assert_array_equal(auto, estimate)
    assert np.all(std > 0) and np.all(np.isfinite(auto))
    monkeypatch.undo()
    exact = clf.entanglement_entropy("left_right", method="exact", max_cut_dim=1)
    assert np.all(np.abs(auto - exact) < 5 * auto_std + 1e-3)
