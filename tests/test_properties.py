"""Property-based tests of the three estimators (hypothesis).

Every example fits a tiny network (a few epochs, two or three channels, a
dozen samples), so a test runs dozens of fits in seconds. Examples are
derandomised and the example database is off: a CI run explores exactly the
same cases every time. Each property runs a fast profile by default and a
larger one under the ``slow`` marker.
"""

import functools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier
from skqcnn.entanglement import enumerate_amplitudes, spectrum_from_amplitudes

PROFILES = [
    pytest.param(25, id="fast"),
    pytest.param(150, id="thorough", marks=pytest.mark.slow),
]
FAMILIES = ("qcnn", "convac", "rac")
# Entropies come from float64 SVDs or replica contractions of O(1) tensors.
ATOL = 1e-9
BATCH_SIZE = 8


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_property(max_examples, strategies, check):
    """Run ``check`` under hypothesis with reproducible settings."""
    settings(
        max_examples=max_examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )(given(**strategies)(check))()


def make(family, image_shape=None, **params):
    """A tiny estimator of ``family`` for inputs of shape ``image_shape``."""
    base = dict(max_epochs=2, batch_size=BATCH_SIZE, random_state=0)
    if family == "qcnn":
        return QCNNClassifier(channels=2, image_shape=image_shape, **base, **params)
    if family == "convac":
        kernel = 1 if image_shape is None else min(2, *image_shape)
        return OverlappingConvACClassifier(channels=(2,), kernel_size=kernel, pooling=None,
                                           image_shape=image_shape, **base, **params)
    return DeepRACClassifier(hidden_size=2, n_layers=1, sequence_shape=image_shape,
                             **base, **params)


@st.composite
def datasets(draw, max_features=9):
    """``(X, y, image_shape)`` with every class present.

    Features are multiples of 1/4, exact in every dtype tried below, so a
    change of dtype or layout changes nothing but the container.
    """
    n_classes = draw(st.integers(2, 4))
    n_samples = draw(st.integers(n_classes, 12))
    if draw(st.booleans()):
        height, width = draw(st.integers(1, 3)), draw(st.integers(2, 3))
        image_shape, n_features = (height, width), height * width
    else:
        n_features = draw(st.integers(1, max_features))
        image_shape = None
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 9, size=(n_samples, n_features)) / 4.0
    y = rng.permutation(np.arange(n_samples) % n_classes)
    return X, y, image_shape


@pytest.mark.parametrize("max_examples", PROFILES)
def test_fit_predict_invariants(max_examples):
    def check(family, data, dtype):
        X, y, image_shape = data
        clf = make(family, image_shape, dtype=dtype).fit(X, y)
        np.testing.assert_array_equal(clf.classes_, np.unique(y))
        assert clf.n_features_in_ == X.shape[1]
        # Unseen rows, some outside the training range (clipped to it).
        X_new = np.vstack([X, X[:3] * 3 - 1])
        proba = clf.predict_proba(X_new)
        predicted = clf.predict(X_new)
        assert proba.shape == (X_new.shape[0], clf.classes_.size)
        assert np.all(np.isfinite(proba)) and np.all(proba >= 0)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
        assert set(predicted) <= set(clf.classes_)
        # The predicted class is a most probable one.
        index = np.searchsorted(clf.classes_, predicted)
        rows = np.arange(X_new.shape[0])
        np.testing.assert_array_equal(proba[rows, index], proba.max(axis=1))
        scores = clf.decision_function(X_new)
        expected = (X_new.shape[0],) if clf.classes_.size == 2 else proba.shape
        assert scores.shape == expected and np.all(np.isfinite(scores))
        if clf.classes_.size == 2:
            # One column: positive exactly where classes_[1] is predicted
            # (ties aside, which the Born rule puts at proba 1/2).
            decided = proba[:, 1] != 0.5
            np.testing.assert_array_equal((scores > 0)[decided],
                                          (predicted == clf.classes_[1])[decided])
        else:
            # scikit-learn's contract: the largest score is the predicted class
            # (a negative amplitude's largest, too), and it orders as predict_proba.
            top = scores.max(axis=1, keepdims=True)
            assert np.all((scores == top)[rows, index])
            less_probable = proba[:, :, None] < proba[:, None, :]
            assert np.all((scores[:, :, None] <= scores[:, None, :])[less_probable])

    run_property(max_examples, dict(family=st.sampled_from(FAMILIES), data=datasets(),
                                    dtype=st.sampled_from([np.float32, np.float64])), check)


@pytest.mark.parametrize("family", ["qcnn", "convac", "rac"])
def test_last_batch_of_one_sample(family):
    """Nine samples in batches of eight: BatchNorm sees a training batch of one."""
    X, y = np.arange(18.0).reshape(9, 2), np.arange(9) % 2
    clf = make(family).fit(X, y)
    assert np.all(np.isfinite(clf.predict_proba(X)))


@pytest.mark.parametrize("family", ["qcnn", "convac", "rac"])
def test_scores_do_not_depend_on_the_samples_beside(family):
    """Prediction evaluates in batches of its own size (not ``batch_size``),
    fewer samples a batch for large inputs: 600 samples at once give every
    sample the scores it has alone, and so do batches capped at 7 samples."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 9, size=(600, 6)) / 4.0
    y = np.arange(600) % 3
    clf = make(family).fit(X[:40], y[:40])
    together = clf.decision_function(X)
    alone = np.vstack([clf.decision_function(X[i:i + 1]) for i in range(0, 600, 37)])
    np.testing.assert_allclose(together[::37], alone, rtol=1e-12, atol=1e-300)
    clf._EVALUATION_INPUT_VALUES = 7 * 6
    np.testing.assert_allclose(clf.decision_function(X), together, rtol=1e-12, atol=1e-300)


CONTAINERS = {
    "float64": lambda X: X,
    "float32": lambda X: X.astype(np.float32),
    "fortran": np.asfortranarray,
    "list": lambda X: X.tolist(),
    "int64 (x4)": lambda X: (X * 4).astype(np.int64),
    "uint8 (x4)": lambda X: (X * 4).astype(np.uint8),
}


@pytest.mark.parametrize("max_examples", PROFILES)
def test_input_container_does_not_matter(max_examples):
    """dtype, memory order and lists give the same fit; scale is learned away."""

    def check(family, data, container):
        X, y, image_shape = data
        reference = make(family, image_shape).fit(X, y)
        converted = CONTAINERS[container](X)
        clf = make(family, image_shape).fit(converted, y)
        # Integer containers hold 4 X: the fitted affine map absorbs the
        # factor, so the scaled inputs and everything after are the same.
        np.testing.assert_allclose(clf.predict_proba(converted), reference.predict_proba(X),
                                   rtol=1e-6, atol=1e-9)
        np.testing.assert_array_equal(clf.predict(converted), reference.predict(X))

    run_property(max_examples, dict(family=st.sampled_from(FAMILIES), data=datasets(),
                                    container=st.sampled_from(sorted(CONTAINERS))), check)


def relabel(y, kind):
    """An order-preserving relabelling, so the encoded targets are unchanged."""
    if kind == "strings":
        return np.array([f"class {label:02d}" for label in y])
    if kind == "sparse ints":
        return np.array([-3, 7, 100, 2**40])[y]
    if kind == "floats":
        return y * 2.0 - 1.0
    return y.astype(bool)


@pytest.mark.parametrize("max_examples", PROFILES)
def test_relabelling_classes_changes_nothing(max_examples):
    def check(family, data, kind):
        X, y, image_shape = data
        if kind == "bools":
            y = y % 2
        reference = make(family, image_shape).fit(X, y)
        y_new = relabel(y, kind)
        clf = make(family, image_shape).fit(X, y_new)
        np.testing.assert_array_equal(clf.classes_, relabel(reference.classes_, kind))
        np.testing.assert_array_equal(clf.predict_proba(X), reference.predict_proba(X))
        np.testing.assert_array_equal(clf.predict(X), relabel(reference.predict(X), kind))

    run_property(max_examples, dict(
        family=st.sampled_from(FAMILIES), data=datasets(),
        kind=st.sampled_from(["strings", "sparse ints", "floats", "bools"])), check)


# Fitted models for the entanglement properties, one per layout, fitted once:
# hypothesis then varies only the partition.
QCNN_LAYOUTS = [(4, 4), (3, 5), (2, 3), (7,), (1, 6)]
CONVAC_LAYOUTS = [(3, 3), (2, 4), (7,)]
RAC_LAYOUTS = [(6, 1), (4, 2), (7, 1)]


def _toy_data(n_features, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(24, n_features))
    y = (X[:, : max(1, n_features // 2)].mean(axis=1) > 0.5).astype(int)
    y[:2] = [0, 1]
    return X, y


@functools.cache
def fitted(family, layout, n_layers=1):
    n_features = math.prod(layout)
    X, y = _toy_data(n_features)
    params = dict(max_epochs=3, dtype=np.float64, random_state=0)
    if family == "qcnn":
        # Local dimension 2 keeps the spectrum method's cores small at
        # scattered cuts (with the Fourier basis, M = 3, one 4 x 4 spectrum
        # can take a minute); max_cut_dim=1 still forces the replica path.
        return QCNNClassifier(channels=3, representation="legendre", n_freq=1,
                              image_shape=layout, **params).fit(X, y)
    if family == "convac":
        return OverlappingConvACClassifier(
            channels=(2,) * n_layers, kernel_size=min(2, *layout), pooling=None,
            representation="legendre", n_freq=1, image_shape=layout, **params).fit(X, y)
    return DeepRACClassifier(hidden_size=2, n_layers=n_layers, sequence_shape=layout,
                             representation="legendre", n_freq=1, **params).fit(X, y)


@st.composite
def masks(draw, n_sites):
    """A boolean mask over ``n_sites`` with both sides non-empty."""
    n_a = draw(st.integers(1, n_sites - 1))
    chosen = draw(st.permutations(range(n_sites)))[:n_a]
    mask = np.zeros(n_sites, dtype=bool)
    mask[chosen] = True
    return mask


def check_entropy_bounds(entropies, spectra, rank_bound, n_a, n_b, local_dim):
    """0 <= S <= log(rank) <= log(rank bound) <= log(min(M^|A|, M^|B|))."""
    assert np.all(np.isfinite(entropies)) and np.all(entropies >= 0)
    assert rank_bound <= local_dim ** min(n_a, n_b)
    for entropy, spectrum in zip(entropies, spectra):
        assert np.all(spectrum >= 0) and np.all(np.diff(spectrum) <= 0)
        assert abs(spectrum.sum() - 1) < 1e-12
        # Whole spectra keep round-off beyond the rank: bound the numerical rank.
        rank = np.count_nonzero(spectrum > 1e-12 * spectrum[0])
        assert rank <= rank_bound
        assert entropy <= math.log(rank) + ATOL


def qcnn_named_mask(name, layout):
    """The documented partitions: the first ceil(n / 2) columns or rows, checkerboard."""
    grids = np.indices(layout)
    if name == "checkerboard":
        return grids.sum(axis=0).ravel() % 2 == 1
    axis = len(layout) - 1 if name == "left_right" else 0
    return grids[axis].ravel() < math.ceil(layout[axis] / 2)


@pytest.mark.parametrize("max_examples", PROFILES)
def test_qcnn_entanglement_invariants(max_examples):
    @st.composite
    def cases(draw):
        layout = draw(st.sampled_from(QCNN_LAYOUTS))
        names = ["left_right", "checkerboard"] + (["up_down"] if len(layout) == 2 else [])
        name = draw(st.sampled_from([None] + names))
        if name is not None:
            mask = qcnn_named_mask(name, layout)
            if 0 < mask.sum() < mask.size:
                return layout, name, mask
        return layout, None, draw(masks(math.prod(layout)))

    def check(case):
        layout, name, mask = case
        clf = fitted("qcnn", layout)
        entropy = clf.entanglement_entropy(mask)
        if name is not None:
            np.testing.assert_array_equal(clf.entanglement_entropy(name), entropy)
        spectra = clf.schmidt_spectrum(mask)
        check_entropy_bounds(entropy, spectra, clf.schmidt_rank_bound(mask), mask.sum(),
                             (~mask).sum(), clf.local_dim_)
        np.testing.assert_allclose(entropy, clf.entanglement_entropy(~mask), atol=ATOL)
        # Every spelling of the same partition gives the same numbers.
        np.testing.assert_array_equal(clf.entanglement_entropy(np.flatnonzero(mask)), entropy)
        np.testing.assert_array_equal(clf.entanglement_entropy(mask.reshape(layout)), entropy)
        np.testing.assert_array_equal(clf.entanglement_entropy(mask.tolist()), entropy)
        np.testing.assert_allclose(clf.entanglement_entropy(mask, base=2),
                                   entropy / math.log(2), atol=ATOL)
        np.testing.assert_array_equal(
            clf.entanglement_entropy(mask, classes=[clf.classes_[1]]), entropy[1:])
        # Renyi entropies do not increase with the order.
        renyi = [clf.entanglement_entropy(mask, alpha=a) for a in (0.5, 1, 2, 3, np.inf)]
        assert np.all(np.diff(renyi, axis=0) <= ATOL)
        # The replica trick (forced by a tiny max_cut_dim) agrees with the spectrum.
        np.testing.assert_allclose(clf.entanglement_entropy(mask, alpha=2, max_cut_dim=1),
                                   renyi[2], rtol=1e-8, atol=ATOL)
        np.testing.assert_allclose(
            [-math.log(np.sum(p**2)) for p in spectra], renyi[2], rtol=1e-10, atol=ATOL)

    run_property(max_examples, dict(case=cases()), check)


def block(layout, size):
    """The centred ``size``-block of Theorem 1, built from its definition."""
    mask = np.zeros(layout, dtype=bool)
    corner = [(side - size) // 2 for side in layout]
    mask[tuple(slice(c, c + size) for c in corner)] = True
    return mask.ravel()


@pytest.mark.parametrize("max_examples", PROFILES)
def test_convac_entanglement_invariants(max_examples):
    @st.composite
    def cases(draw):
        layout = draw(st.sampled_from(CONVAC_LAYOUTS))
        n_layers = draw(st.integers(1, 2))
        n_sites = math.prod(layout)
        kind = draw(st.sampled_from(["mask", "indices", "block", "name"]))
        if kind == "block":
            # A block covering every site leaves B empty.
            sizes = [s for s in range(1, min(layout) + 1) if s ** len(layout) < n_sites]
            size = draw(st.sampled_from(sizes))
            return layout, n_layers, ("block", size), block(layout, size)
        if kind == "name":
            name = draw(st.sampled_from(["left_right", "checkerboard", "interleaved"]))
            named = {
                "left_right": np.indices(layout)[-1].ravel() < math.ceil(layout[-1] / 2),
                "checkerboard": np.indices(layout).sum(axis=0).ravel() % 2 == 1,
                "interleaved": np.arange(n_sites) % 2 == 1,
            }
            return layout, n_layers, name, named[name]
        mask = draw(masks(n_sites))
        return layout, n_layers, mask if kind == "mask" else np.flatnonzero(mask), mask

    def check(case):
        layout, n_layers, partition, mask = case
        clf = fitted("convac", layout, n_layers)
        entropy = clf.entanglement_entropy(partition)
        np.testing.assert_array_equal(entropy, clf.entanglement_entropy(mask))
        spectra = clf.schmidt_spectrum(partition)
        check_entropy_bounds(entropy, spectra, clf.schmidt_rank_bound(partition), mask.sum(),
                             (~mask).sum(), clf.local_dim_)
        np.testing.assert_allclose(entropy, clf.entanglement_entropy(~mask), atol=ATOL)
        assert clf.schmidt_rank_bound(partition) == clf.schmidt_rank_bound(~mask)
        renyi = [clf.entanglement_entropy(mask, alpha=a) for a in (0.5, 1, 2, np.inf)]
        assert np.all(np.diff(renyi, axis=0) <= ATOL)

    run_property(max_examples, dict(case=cases()), check)


@pytest.mark.parametrize("max_examples", PROFILES)
def test_rac_entanglement_invariants(max_examples):
    @st.composite
    def cases(draw):
        layout = draw(st.sampled_from(RAC_LAYOUTS))
        return layout, draw(st.integers(1, 2)), draw(st.integers(1, layout[0] - 1))

    def check(case):
        layout, n_layers, k = case
        clf = fitted("rac", layout, n_layers)
        n_steps = layout[0]
        suffix = np.arange(n_steps) >= n_steps - k
        entropy = clf.entanglement_entropy(k)
        np.testing.assert_array_equal(entropy, clf.entanglement_entropy(suffix))
        np.testing.assert_array_equal(entropy, clf.entanglement_entropy(np.flatnonzero(suffix)))
        np.testing.assert_allclose(entropy, clf.entanglement_entropy(~suffix), atol=ATOL)
        if k == n_steps // 2:
            # "left_right" is the first ceil(T / 2) steps: the complement of this suffix.
            np.testing.assert_allclose(entropy, clf.entanglement_entropy("left_right"),
                                       atol=ATOL)
        spectra = clf.schmidt_spectrum(k)
        check_entropy_bounds(entropy, spectra, clf.schmidt_rank_bound(k), k, n_steps - k,
                             clf.local_dim_)
        # Brute force: the dense state of every class, cut by a plain SVD.
        # For one layer the estimator takes its MPS path instead.
        amplitudes = enumerate_amplitudes(clf.net_.module_.network, n_steps, clf.local_dim_)
        for c, spectrum in enumerate(spectra):
            dense = spectrum_from_amplitudes(amplitudes[c], suffix, clf.local_dim_)
            rank = min(dense.size, spectrum.size)
            np.testing.assert_allclose(spectrum[:rank], dense[:rank], atol=1e-10)
            assert abs(dense[rank:].sum()) < 1e-10 and abs(spectrum[rank:].sum()) < 1e-10

    run_property(max_examples, dict(case=cases()), check)


@pytest.mark.parametrize("max_examples", PROFILES)
def test_rac_three_dimensional_input(max_examples):
    """(n, T, F) input is the same as (n, T * F) with ``sequence_shape=(T, F)``."""

    @st.composite
    def cases(draw):
        n_steps, n_step_features = draw(st.integers(1, 5)), draw(st.integers(1, 3))
        n_samples = draw(st.integers(2, 10))
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        X = rng.uniform(size=(n_samples, n_steps, n_step_features))
        y = np.arange(n_samples) % 2
        return X, y, draw(st.integers(1, 2))

    def check(case):
        X, y, n_layers = case
        shape = X.shape[1:]
        flat = X.reshape(X.shape[0], -1)
        params = dict(hidden_size=2, n_layers=n_layers, max_epochs=2, random_state=0)
        from_3d = DeepRACClassifier(**params).fit(X, y)
        from_2d = DeepRACClassifier(sequence_shape=shape, **params).fit(flat, y)
        assert from_3d.sequence_shape_ == from_2d.sequence_shape_ == shape
        assert from_3d.n_features_in_ == flat.shape[1]
        np.testing.assert_array_equal(from_3d.predict_proba(X), from_2d.predict_proba(flat))
        # A fitted 3-D model takes flattened rows too.
        np.testing.assert_array_equal(from_3d.predict_proba(flat), from_2d.predict_proba(flat))
        assert from_3d.local_dim_ == 1 + 2 * shape[1]

    run_property(max_examples, dict(case=cases()), check)
