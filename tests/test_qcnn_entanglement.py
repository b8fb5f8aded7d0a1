"""Entanglement of fitted q-CNNs, checked against brute force on small images."""

import time

import numpy as np
import pytest
import torch

from skqcnn import QCNNClassifier
from skqcnn.entanglement import spectrum_from_amplitudes, tree_dense_amplitudes


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
    for sample, feats in zip(clf.decision_function(X[:4]), features):
        product = feats[0]
        for site in feats[1:]:
            product = np.multiply.outer(product, site).ravel()
        np.testing.assert_allclose(amplitudes @ product, sample, rtol=1e-10, atol=1e-12)


PARTITIONS = [
    "left_right",
    "up_down",
    "interleaved",
    "checkerboard",
    np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=bool),
    [0, 5, 6, 15, 3],
]


@pytest.mark.parametrize("partition", PARTITIONS, ids=lambda p: p if isinstance(p, str) else "mask")
def test_entropies_and_spectra_match_brute_force(fitted_4x4, partition):
    clf, _ = fitted_4x4
    in_a = clf._partition_leaves(partition)[0]
    amplitudes = feature_order_amplitudes(clf)
    dense = [spectrum_from_amplitudes(psi, in_a, clf.local_dim_) for psi in amplitudes]
    for spectrum, reference in zip(clf.schmidt_spectrum(partition), dense):
        np.testing.assert_allclose(spectrum, reference, atol=1e-10)
    for alpha in (1, 2, 3, 0.5):
        expected = [-(p * np.log(p)).sum() if alpha == 1 else np.log((p**alpha).sum()) / (1 - alpha)
                    for p in dense]
        np.testing.assert_allclose(clf.entanglement_entropy(partition, alpha=alpha), expected,
                                   atol=1e-8)
    bound = clf.schmidt_rank_bound(partition)
    assert isinstance(bound, int)
    assert all(p.size <= bound for p in dense)
    assert bound <= min(clf.local_dim_ ** in_a.sum(), clf.local_dim_ ** (~in_a).sum())


def test_invariants_and_options(fitted_4x4):
    clf, _ = fitted_4x4
    mask = clf._partition_leaves("checkerboard")[0]
    np.testing.assert_allclose(clf.entanglement_entropy(mask), clf.entanglement_entropy(~mask),
                               atol=1e-10)
    renyi = [clf.entanglement_entropy("up_down", alpha=a) for a in (0.5, 1, 2, 3, np.inf)]
    assert all(np.all(hi >= lo - 1e-12) for hi, lo in zip(renyi, renyi[1:]))
    both = clf.entanglement_entropy("left_right")
    np.testing.assert_allclose(clf.entanglement_entropy("left_right", classes=[2, 0]),
                               both[[2, 0]])
    np.testing.assert_allclose(clf.entanglement_entropy("left_right", base=2), both / np.log(2))
    bound, cut = clf.schmidt_rank_bound("left_right", return_cut=True)
    assert np.prod([bond.dim for bond in cut]) == bound


def test_cut_threshold_error_names_weight_and_alpha_2(fitted_4x4):
    clf, _ = fitted_4x4
    weight = clf.schmidt_rank_bound("interleaved")
    with pytest.raises(ValueError, match=rf"(?s){weight}.*max_cut_dim=8.*alpha=2"):
        clf.entanglement_entropy("interleaved", max_cut_dim=8)
    renyi2 = clf.entanglement_entropy("interleaved", alpha=2, max_cut_dim=8)
    np.testing.assert_allclose(renyi2, clf.entanglement_entropy("interleaved", alpha=2), atol=1e-9)


@pytest.mark.parametrize("partition, message", [
    ("diagonal", "Unknown partition 'diagonal'"),
    (np.zeros(16, dtype=bool), "leaves subsystem A or B empty"),
    (np.ones((4, 4), dtype=bool), "leaves subsystem A or B empty"),
    (np.ones((2, 8), dtype=bool), r"must have shape \(4, 4\) or \(16,\)"),
    ([16], r"indices must lie in \[0, 16\)"),
])
def test_bad_partitions(fitted_4x4, partition, message):
    clf, _ = fitted_4x4
    with pytest.raises(ValueError, match=message):
        clf.entanglement_entropy(partition)


def test_bad_classes_and_alpha(fitted_4x4):
    clf, _ = fitted_4x4
    with pytest.raises(ValueError, match="unknown: \\[7\\]"):
        clf.entanglement_entropy(classes=[7])
    with pytest.raises(ValueError, match="alpha"):
        clf.entanglement_entropy(alpha=0)


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
    in_a = clf._partition_leaves("up_down")[0]
    reference = [spectrum_from_amplitudes(psi, in_a, 3) for psi in amplitudes]
    for spectrum, expected in zip(clf.schmidt_spectrum("up_down"), reference):
        np.testing.assert_allclose(spectrum, expected, atol=1e-10)


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
