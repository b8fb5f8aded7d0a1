"""Numerical stress: deep networks, long products, float32, absurd learning rates.

Product networks multiply hundreds of factors, so float32 training can
overflow. The contract: training either stays finite or stops with the
documented ``ValueError`` of :class:`~skqcnn.callbacks.FiniteLossGuard`; a fit
that returns never predicts NaN; and the entanglement engine, which rescales
with log-norms, gives finite numbers for networks whose raw amplitudes are far
outside floating-point range.
"""

import math

import numpy as np
import pytest
import torch

from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier
from skqcnn.entanglement import network_log_amplitudes, tree_log_norms

NON_FINITE = "became non-finite"
SIDE = 32
N_STEPS = 256


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def stripes(n_samples, seed=0):
    """32 x 32 float32 images: horizontal (class 0) or vertical (1) stripes in noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples) % 2
    period = rng.integers(2, 6, size=n_samples)[:, None]
    phase = np.arange(SIDE)[None, :] // period % 2
    images = rng.normal(scale=0.3, size=(n_samples, SIDE, SIDE))
    images += np.where(y[:, None, None] == 0, phase[:, :, None], phase[:, None, :])
    return images.reshape(n_samples, -1).astype(np.float32), y


def long_sequences(n_samples, n_steps=N_STEPS, seed=0):
    """float32 sequences whose class is whether the mean is above 1/2."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n_samples, n_steps)).astype(np.float32)
    y = (X.mean(axis=1) > 0.5).astype(int)
    y[:2] = [0, 1]
    return X, y


def fit_or_documented_error(clf, X, y):
    """The fitted estimator, or None when training stopped with the documented error."""
    try:
        return clf.fit(X, y)
    except ValueError as error:
        assert NON_FINITE in str(error) and "Lower the learning rate" in str(error), error
        return None


def assert_sane_predictions(clf, X):
    proba = clf.predict_proba(X)
    assert np.all(np.isfinite(proba)) and np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert set(clf.predict(X)) <= set(clf.classes_)
    scores = clf.decision_function(X)
    assert np.all(np.isfinite(scores))


def assert_finite_log_amplitudes(clf, n_sites, n_configs=64, seed=0):
    """log|Psi_y(s)| is finite on random configurations (no raw product overflows)."""
    log_amplitude = network_log_amplitudes(clf.net_.module_.network, clf.local_dim_)
    generator = torch.Generator().manual_seed(seed)
    configs = torch.randint(clf.local_dim_, (n_configs, n_sites), generator=generator)
    log_abs, sign = log_amplitude(configs)
    # An amplitude may be exactly zero (-inf, sign 0); it must not be NaN or +inf.
    assert not torch.isnan(log_abs).any() and not torch.isposinf(log_abs).any()
    assert torch.isfinite(log_abs[sign != 0]).all()
    assert (sign != 0).any()


def assert_entropies_in_range(entropies, rank_bound):
    assert np.all(np.isfinite(entropies)) and np.all(entropies >= 0)
    assert np.all(entropies <= math.log(rank_bound) + 1e-9)


# Deep networks on 32 x 32 float32 images and 256-step sequences.

@pytest.fixture(scope="module")
def qcnn_32():
    """A q-CNN on 32 x 32 images: ten levels of pairwise products."""
    X, y = stripes(48)
    clf = QCNNClassifier(channels=("constant", 2), max_epochs=2, batch_size=16,
                         random_state=0)
    return clf.fit(X, y), X


def test_deep_qcnn_float32_predictions(qcnn_32):
    clf, X = qcnn_32
    assert len(clf.channels_) == 10
    assert_sane_predictions(clf, X)


def test_deep_qcnn_float32_saturated_inputs(qcnn_32):
    clf, X = qcnn_32
    # Uniform images at either end of the training range, and images far
    # outside it, which are clipped to those ends.
    saturated = np.vstack([np.full((1, X.shape[1]), X.min()), np.full((1, X.shape[1]), X.max()),
                           X[:4] * 1e30, -X[:4] * 1e30])
    assert_sane_predictions(clf, saturated)


def test_deep_qcnn_entanglement_is_finite(qcnn_32):
    clf, _ = qcnn_32
    assert np.all(np.isfinite(tree_log_norms(clf.tree_network())))
    for partition in ("left_right", "up_down"):
        entropies = clf.entanglement_entropy(partition)
        assert_entropies_in_range(entropies, clf.schmidt_rank_bound(partition))
        for spectrum in clf.schmidt_spectrum(partition):
            assert abs(spectrum.sum() - 1) < 1e-12 and np.all(spectrum > 0)
        # Spectrum and replica trick (forced by max_cut_dim=1) agree.
        np.testing.assert_allclose(
            clf.entanglement_entropy(partition, alpha=2, max_cut_dim=1),
            clf.entanglement_entropy(partition, alpha=2), rtol=1e-8, atol=1e-9)
    # Cuts through hundreds of bonds: Renyi-2 by the replica trick only.
    for partition in ("checkerboard", "interleaved"):
        entropies = clf.entanglement_entropy(partition, alpha=2)
        assert_entropies_in_range(entropies, clf.schmidt_rank_bound(partition))


@pytest.fixture(scope="module")
def convac_32():
    """An overlapping ConvAC on 32 x 32 images, five conv and pooling layers."""
    X, y = stripes(48, seed=1)
    clf = OverlappingConvACClassifier(channels=("constant", 4), n_layers=5, kernel_size=2,
                                      pooling=2, max_epochs=2, batch_size=16, random_state=0)
    return clf.fit(X, y), X


def test_deep_convac_float32(convac_32):
    clf, X = convac_32
    assert_sane_predictions(clf, X)
    bound = clf.schmidt_rank_bound(("block", 4))
    assert 1 < bound <= clf.local_dim_ ** 16


def test_deep_convac_log_amplitudes_are_finite(convac_32):
    clf, _ = convac_32
    assert_finite_log_amplitudes(clf, SIDE * SIDE)


@pytest.fixture(scope="module")
def rac_256():
    """A two-layer RAC over 256 steps."""
    X, y = long_sequences(48)
    clf = DeepRACClassifier(hidden_size=4, n_layers=2, max_epochs=2, batch_size=16,
                            sequence_shape=(N_STEPS, 1), random_state=0)
    return clf.fit(X, y), X


def test_long_sequence_rac_float32(rac_256):
    clf, X = rac_256
    assert clf.sequence_shape_ == (N_STEPS, 1)
    assert_sane_predictions(clf, X)
    assert_finite_log_amplitudes(clf, N_STEPS)
    for k in (1, 64, 128):
        bound = clf.schmidt_rank_bound(k)
        assert clf.schmidt_rank_lower_bound(k) <= bound <= clf.local_dim_ ** k


def test_long_sequence_one_layer_rac_exact_entropy():
    """The MPS path is exact at any length: 256 steps, every contiguous cut."""
    X, y = long_sequences(32, seed=2)
    clf = DeepRACClassifier(hidden_size=3, n_layers=1, max_epochs=2, batch_size=16,
                            sequence_shape=(N_STEPS, 1), random_state=0).fit(X, y)
    assert_sane_predictions(clf, X)
    for k in (1, 17, 128, 255):
        suffix = np.arange(N_STEPS) >= N_STEPS - k
        entropies = clf.entanglement_entropy(k)
        assert_entropies_in_range(entropies, clf.schmidt_rank_bound(k))
        # A suffix A and its complement, a prefix, are the same cut.
        np.testing.assert_allclose(clf.entanglement_entropy(~suffix), entropies, atol=1e-9)
        for spectrum in clf.schmidt_spectrum(k):
            assert abs(spectrum.sum() - 1) < 1e-12


# Learning rates far too large.

def tiny_data():
    rng = np.random.default_rng(0)
    return rng.uniform(size=(20, 16)), np.arange(20) % 2


FAMILIES = {
    "qcnn": lambda **kw: QCNNClassifier(channels=2, random_state=0, **kw),
    "convac": lambda **kw: OverlappingConvACClassifier(
        channels=2, n_layers=1, kernel_size=2, pooling=None, random_state=0, **kw),
    "rac": lambda **kw: DeepRACClassifier(hidden_size=2, n_layers=1, random_state=0, **kw),
}

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_infinite_learning_rate_is_rejected(family, dtype):
    X, y = tiny_data()
    with pytest.raises(ValueError, match="lr must be finite"):
        FAMILIES[family](lr=np.inf, max_epochs=2, dtype=dtype).fit(X, y)


@pytest.mark.parametrize("max_epochs", [1, 2])
@pytest.mark.parametrize("lr", [1e3, 1e6, 1e12])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_huge_learning_rate_never_predicts_nan(family, lr, max_epochs):
    # Some of these diverge in the last optimizer step, after the last loss
    # was checked: the weights or the training scores must catch that.
    X, y = tiny_data()
    clf = fit_or_documented_error(FAMILIES[family](lr=lr, max_epochs=max_epochs), X, y)
    if clf is not None:
        assert_sane_predictions(clf, X)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_diverging_training_raises(family):
    X, y = tiny_data()
    with pytest.raises(ValueError, match=NON_FINITE + r".*Lower the learning rate"):
        FAMILIES[family](lr=1e12, max_epochs=2).fit(X, y)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_extreme_finite_inputs(family):
    X, y = tiny_data()
    # max - min = 3.4e308 is beyond float64's range though every value is finite.
    X_extreme = (2 * X - 1) * 1.7e308
    assert np.all(np.isfinite(X_extreme))
    clf = FAMILIES[family](max_epochs=1).fit(X_extreme, y)
    assert_sane_predictions(clf, X_extreme)


# Larger versions: default widths, more samples and epochs.

SLOW_DTYPES = [pytest.param(np.float32, marks=pytest.mark.slow, id="float32"),
               pytest.param(np.float64, marks=pytest.mark.slow, id="float64")]


@pytest.mark.parametrize("dtype", SLOW_DTYPES)
def test_deep_qcnn_default_width(dtype):
    X, y = stripes(128, seed=3)
    clf = QCNNClassifier(max_epochs=4, dtype=dtype, random_state=0).fit(X, y)
    assert_sane_predictions(clf, X)
    assert np.all(np.isfinite(tree_log_norms(clf.tree_network())))
    assert_entropies_in_range(clf.entanglement_entropy("left_right"),
                              clf.schmidt_rank_bound("left_right"))
    # A cut through two mixed subtree levels: the replica trick, exact.
    assert_entropies_in_range(clf.entanglement_entropy("up_down", alpha=2, method="exact"),
                              clf.schmidt_rank_bound("up_down"))
    # Every level mixed: the plan is refused before it runs, and says why.
    with pytest.raises(ValueError, match="MAX_REPLICA_FLOPS.*Monte Carlo estimate"):
        clf.entanglement_entropy("checkerboard", alpha=2, method="exact")


@pytest.fixture(scope="module", params=SLOW_DTYPES)
def convac_32_default(request):
    X, y = stripes(128, seed=4)
    clf = OverlappingConvACClassifier(n_layers=4, max_epochs=4, dtype=request.param,
                                      random_state=0)
    return clf.fit(X, y), X


def test_deep_convac_default_width(convac_32_default):
    clf, X = convac_32_default
    assert_sane_predictions(clf, X)


def test_deep_convac_default_width_log_amplitudes(convac_32_default):
    clf, _ = convac_32_default
    assert_finite_log_amplitudes(clf, SIDE * SIDE)


@pytest.mark.slow
@pytest.mark.parametrize("n_layers", [2, 3])
def test_long_sequence_rac_default_width(n_layers):
    X, y = long_sequences(128, seed=5)
    clf = DeepRACClassifier(n_layers=n_layers, max_epochs=4, sequence_shape=(N_STEPS, 1),
                            random_state=0).fit(X, y)
    assert_sane_predictions(clf, X)
    assert_finite_log_amplitudes(clf, N_STEPS)
