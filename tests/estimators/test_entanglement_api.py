"""The entanglement interface shared by every estimator family.

Each family is fitted once on nine features (a 3 x 3 image, padded to 4 x 4
in the q-CNN; nine steps for the RAC), its weights then randomised so that the
class states are genuinely entangled. Every number is checked against the
dense state enumerated from the torch network and cut by a plain SVD.
"""

import inspect
import math
import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier
from skqcnn._layout import quadtree_leaf_order
from skqcnn._partitions import block_mask, partition_mask
from skqcnn.entanglement import CutBond, spectrum_from_amplitudes
from skqcnn.entanglement._reused_input_mincut import rac_rank_lower_bound
from skqcnn.entanglement._enumeration import enumerate_amplitudes
from skqcnn.entanglement._monte_carlo import renyi2_monte_carlo
from skqcnn.exceptions import MonteCarloConvergenceWarning

from _states import SPREAD, family_name, randomise

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CLASSES = (QCNNClassifier, OverlappingConvACClassifier, DeepRACClassifier)
FAMILIES = {
    "qcnn": lambda: QCNNClassifier(channels=2, max_epochs=1, random_state=0,
                                   dtype=np.float64),
    "convac": lambda: OverlappingConvACClassifier(
        channels=(2,), kernel_size=2, pooling=None, representation="legendre", n_freq=1,
        max_epochs=1, random_state=0, dtype=np.float64),
    # Nine one-feature steps: the default would read 9 features as 3 rows of 3.
    "rac": lambda: DeepRACClassifier(hidden_size=2, n_layers=2, representation="legendre",
                                     n_freq=1, sequence_shape=(9, 1), max_epochs=1,
                                     random_state=0, dtype=np.float64),
}
_rng = np.random.default_rng(0)
X = _rng.uniform(size=(30, 9))
Y = np.array(["a", "b", "c"])[np.arange(30) % 3]


@pytest.fixture(scope="module", params=list(FAMILIES))
def fitted(request):
    clf = randomise(FAMILIES[request.param]().fit(X, Y), spread=SPREAD[request.param])
    amplitudes = enumerate_amplitudes(clf.net_.module_.network, 9, clf.local_dim_)
    return clf, amplitudes


def dense_spectra(clf, amplitudes, in_a):
    return [spectrum_from_amplitudes(psi, in_a, clf.local_dim_) for psi in amplitudes]


def renyi(p, alpha):
    if alpha == 1:
        return -np.sum(p * np.log(p))
    if np.isinf(alpha):
        return -np.log(p.max())
    return np.log(np.sum(p**alpha)) / (1 - alpha)


GEOMETRY = {"qcnn": (3, 3), "convac": (3, 3), "rac": (9,)}
MASK = np.array([1, 0, 0, 1, 1, 0, 0, 0, 1], dtype=bool)
PARTITIONS = [None, "left_right", "interleaved", "checkerboard", ("block", 2), MASK,
              [0, 4, 8], [8, 0]]
IMAGE_PARTITIONS = ["up_down", MASK.reshape(3, 3)]


def test_same_signatures_on_every_family():
    for method in ("entanglement_entropy", "schmidt_spectrum", "schmidt_rank_bound"):
        signatures = {inspect.signature(getattr(cls, method)) for cls in CLASSES}
        assert len(signatures) == 1, method
    parameters = inspect.signature(QCNNClassifier.entanglement_entropy).parameters
    assert {name: p.default for name, p in parameters.items() if name != "self"} == dict(
        partition=None, alpha=2, classes=None, base=None, method="auto", n_samples=2000,
        random_state=None, return_std=False, max_cut_dim=4096, verbose=0,
        monte_carlo_options=None)
    parameters = inspect.signature(QCNNClassifier.schmidt_spectrum).parameters
    assert list(parameters) == ["self", "partition", "classes", "tol", "max_cut_dim"]
    assert parameters["tol"].default is None
    assert all(cls.default_partition == "left_right" for cls in CLASSES)


@pytest.mark.parametrize("partition", PARTITIONS, ids=repr)
def test_every_partition_matches_the_dense_state(fitted, partition):
    check_against_dense_state(*fitted, partition)


@pytest.mark.parametrize("partition", IMAGE_PARTITIONS, ids=repr)
def test_image_partitions_match_the_dense_state(fitted, partition):
    if not isinstance(fitted[0], DeepRACClassifier):
        check_against_dense_state(*fitted, partition)


def check_against_dense_state(clf, amplitudes, partition):
    geometry = GEOMETRY[family_name(clf)]
    in_a = partition_mask("left_right" if partition is None else partition, geometry)
    dense = dense_spectra(clf, amplitudes, in_a)
    spectra = clf.schmidt_spectrum(partition)
    assert isinstance(spectra, list) and len(spectra) == 3
    for p, reference in zip(spectra, dense):
        assert p.dtype == np.float64 and np.all(np.diff(p) <= 0)
        np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-12)
        # Numerical zeros may be kept on one side and dropped on the other.
        size = max(p.size, reference.size)
        np.testing.assert_allclose(np.pad(p, (0, size - p.size)),
                                   np.pad(reference, (0, size - reference.size)), atol=1e-10)
    for alpha in (0.5, 1, 2, 3, np.inf):
        entropies = clf.entanglement_entropy(partition, alpha=alpha)
        assert isinstance(entropies, np.ndarray) and entropies.shape == (3,)
        np.testing.assert_allclose(entropies, [renyi(p, alpha) for p in dense], atol=1e-8)
    bound, cut = clf.schmidt_rank_bound(partition, return_cut=True)
    assert isinstance(bound, int) and bound == clf.schmidt_rank_bound(partition)
    assert all(isinstance(bond, CutBond) for bond in cut)
    assert math.prod(bond.dim for bond in cut) == bound
    # The numerical rank: whole spectra keep round-off beyond it.
    assert max(np.count_nonzero(p > 1e-12 * p[0]) for p in dense) <= bound
    assert bound <= clf.local_dim_ ** min(in_a.sum(), (~in_a).sum())


def test_complement_classes_base_and_std(fitted):
    clf, _ = fitted
    mask = clf._partition_mask("checkerboard")
    entropies = clf.entanglement_entropy(mask)
    assert entropies.max() > 0.05
    np.testing.assert_allclose(clf.entanglement_entropy(~mask), entropies, atol=1e-9)
    assert clf.schmidt_rank_bound(mask) == clf.schmidt_rank_bound(~mask)
    np.testing.assert_array_equal(clf.entanglement_entropy(mask, classes=["c", "a"]),
                                  entropies[[2, 0]])
    np.testing.assert_array_equal(clf.entanglement_entropy(mask, classes="b"), entropies[1:2])
    np.testing.assert_allclose(clf.entanglement_entropy(mask, base=2), entropies / np.log(2))
    values, std = clf.entanglement_entropy(mask, return_std=True)
    np.testing.assert_array_equal(values, entropies)
    np.testing.assert_array_equal(std, 0.0)
    np.testing.assert_array_equal(clf.entanglement_entropy(), clf.entanglement_entropy(
        clf.default_partition))
    # With alpha=0 excluded, the Renyi entropies decrease with the order.
    ladder = [clf.entanglement_entropy(mask, alpha=a) for a in (0.5, 1, 2, 3, np.inf)]
    assert np.all(np.diff(ladder, axis=0) <= 1e-10)


def test_spectrum_tolerance(fitted):
    clf, _ = fitted
    full = clf.schmidt_spectrum("interleaved")
    trimmed = clf.schmidt_spectrum("interleaved", tol=0.05)
    for p, q in zip(full, trimmed):
        kept = p[p > 0.05 * p[0]]
        assert q.size == kept.size < p.size
        np.testing.assert_allclose(q, kept / kept.sum())
    # tol=0 drops exact zeros only, as the engine's normalised_spectrum does.
    for p, q in zip(full, clf.schmidt_spectrum("interleaved", tol=0.0)):
        np.testing.assert_allclose(q, p[p > 0] / p[p > 0].sum(), rtol=1e-14)


def test_spectrum_tolerance_drops_values_at_the_threshold(fitted, monkeypatch):
    clf, _ = fitted
    spectrum = np.array([0.5, 0.25, 0.25, 0.0])
    monkeypatch.setattr(type(clf), "_exact_spectra",
                        lambda self, in_a, indices, max_cut_dim: [spectrum.copy()])
    np.testing.assert_array_equal(clf.schmidt_spectrum(tol=0.0)[0], [0.5, 0.25, 0.25])
    np.testing.assert_array_equal(clf.schmidt_spectrum(tol=0.5)[0], [1.0])


def test_monte_carlo_is_the_engine_estimate(fitted):
    """Wiring: every family hands its network and site mask to the one sampler."""
    clf, _ = fitted
    in_a = clf._partition_mask("interleaved")
    estimate, std = clf.entanglement_entropy("interleaved", alpha=2, method="monte_carlo",
                                             classes=["b"], n_samples=256, random_state=0,
                                             return_std=True, base=2)
    direct = renyi2_monte_carlo(clf.net_.module_.network, 9, clf.local_dim_, in_a, 256,
                                classes=[1], random_state=0)
    np.testing.assert_array_equal(estimate, direct.entropy / np.log(2))
    np.testing.assert_array_equal(std, direct.stderr / np.log(2))


def test_monte_carlo_agrees_with_the_exact_value():
    clf = randomise(FAMILIES["rac"]().fit(X, Y), spread=SPREAD["rac"])
    exact = clf.entanglement_entropy(alpha=2, classes=["b"])
    assert exact[0] > 0.1
    estimate, std = clf.entanglement_entropy(alpha=2, classes=["b"], method="monte_carlo",
                                             n_samples=4096, random_state=0, return_std=True)
    assert 0 < std[0] < 0.5 * exact[0]
    assert abs(estimate[0] - exact[0]) <= 4 * std[0]


# One vocabulary: the same sites on the same geometry, whichever family asks.

@pytest.mark.parametrize("partition, geometry, expected", [
    ("left_right", (5,), [1, 1, 1, 0, 0]),
    ("left_right", (2, 3), [1, 1, 0, 1, 1, 0]),
    ("up_down", (3, 2), [1, 1, 1, 1, 0, 0]),
    ("interleaved", (2, 3), [0, 1, 0, 1, 0, 1]),
    ("interleaved", (3, 3), [0, 1, 0, 1, 0, 1, 0, 1, 0]),
    ("checkerboard", (2, 2), [0, 1, 1, 0]),
    ("checkerboard", (4,), [0, 1, 0, 1]),
    (("block", 3), (5,), [0, 1, 1, 1, 0]),
    (("block", 1), (3, 3), [0, 0, 0, 0, 1, 0, 0, 0, 0]),
    ([5, 0], (2, 3), [1, 0, 0, 0, 0, 1]),
    ([0, 1], (2, 3), [1, 1, 0, 0, 0, 0]),
    (np.array([[1, 0, 0], [0, 0, 1]], dtype=bool), (2, 3), [1, 0, 0, 0, 0, 1]),
    ([True, False, False], (3,), [1, 0, 0]),
])
def test_partition_vocabulary(partition, geometry, expected):
    np.testing.assert_array_equal(partition_mask(partition, geometry), np.array(expected, bool))


def test_int_partition_is_a_suffix_of_steps():
    np.testing.assert_array_equal(partition_mask(3, (8,), int_suffix=True),
                                  np.arange(8) >= 5)
    np.testing.assert_array_equal(block_mask((4, 4), 2).reshape(4, 4)[1:3, 1:3], True)


@pytest.mark.parametrize("shape, top_split", [
    ((5,), "left_right"), ((7,), "left_right"), ((3, 5), "left_right"), ((3, 5), "up_down"),
    ((6, 8), "up_down"), ((7, 3), "left_right"), ((8, 8), "left_right"),
])
def test_qcnn_top_split_is_the_named_half(shape, top_split):
    order, _ = quadtree_leaf_order(shape, top_split)
    first_half = order[: order.size // 2]
    root = np.zeros(math.prod(shape), dtype=bool)
    root[first_half[first_half >= 0]] = True
    np.testing.assert_array_equal(root, partition_mask(top_split, shape))


def test_named_partitions_mean_the_same_sites_on_every_image_family():
    rng = np.random.default_rng(1)
    X15, y = rng.uniform(size=(20, 15)), np.arange(20) % 2
    qcnn = QCNNClassifier(image_shape=(3, 5), channels=2, max_epochs=1, random_state=0)
    convac = OverlappingConvACClassifier(image_shape=(3, 5), channels=(2,), kernel_size=2,
                                         max_epochs=1, random_state=0, pooling=None)
    qcnn.fit(X15, y), convac.fit(X15, y)
    for name in ("left_right", "up_down", "interleaved", "checkerboard", ("block", 3)):
        np.testing.assert_array_equal(qcnn._partition_mask(name), convac._partition_mask(name))
    # "left_right" is the q-CNN's top split: one bond of the top level is cut.
    bound, cut = qcnn.schmidt_rank_bound("left_right", return_cut=True)
    assert len(cut) == 1 and bound == 1 + qcnn.channels_[-2]


# Beyond the exact limits, method="auto" answers with Monte Carlo or explains.

def test_auto_beyond_enumeration_explains_and_names_the_working_call():
    # A 5 x 5 image of M = 2 holds 2**25 amplitudes, just past enumeration.
    X25 = np.random.default_rng(2).uniform(size=(20, 25))
    clf = OverlappingConvACClassifier(channels=(2,), kernel_size=2, pooling=None,
                                      representation="legendre", n_freq=1, max_epochs=1,
                                      random_state=0).fit(X25, np.arange(20) % 2)
    with pytest.raises(ValueError, match=r"(?s)alpha=1 entropy.*2\*\*25.*2\*\*22.*alpha=2\).*"
                                         r"Monte Carlo") as error:
        clf.entanglement_entropy(alpha=1)
    assert "method='monte_carlo'" not in str(error.value)
    with pytest.raises(ValueError, match=r"above the limit of 2\*\*22 = 4194304"):
        clf.entanglement_entropy(alpha=2, method="exact")
    with pytest.raises(ValueError, match=r"(?s)Schmidt spectrum.*entanglement_entropy"):
        clf.schmidt_spectrum()
    # The default order, Renyi-2, answers: by Monte Carlo, with its standard error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MonteCarloConvergenceWarning)
        estimate, std = clf.entanglement_entropy(classes=[0], random_state=0, return_std=True)
    assert estimate.shape == std.shape == (1,)
    assert np.isfinite(estimate).all() and (std > 0).all()
    # The rank bound needs no amplitudes.
    bound, cut = clf.schmidt_rank_bound(("block", 3), return_cut=True)
    assert bound == math.prod(bond.dim for bond in cut) <= 2**9


def test_qcnn_heavy_cut_uses_the_replica_trick_or_explains():
    clf = randomise(FAMILIES["qcnn"]().fit(X, Y), spread=SPREAD["qcnn"])
    weight = clf.schmidt_rank_bound("interleaved")
    with pytest.raises(ValueError, match=rf"(?s)alpha=0.5 entropy.*weight {weight}.*"
                                         r"max_cut_dim=8.*alpha=2\).*replica"):
        clf.entanglement_entropy("interleaved", alpha=0.5, max_cut_dim=8)
    with pytest.raises(ValueError, match=rf"(?s)Schmidt spectrum.*weight {weight}") as error:
        clf.schmidt_spectrum("interleaved", max_cut_dim=8)
    assert "alpha >= 2" not in str(error.value)
    np.testing.assert_allclose(clf.entanglement_entropy("interleaved", alpha=3, max_cut_dim=8),
                               clf.entanglement_entropy("interleaved", alpha=3), atol=1e-9)


def test_one_layer_rac_uses_its_mps_form_beyond_enumeration():
    rng = np.random.default_rng(3)
    X40 = rng.uniform(size=(64, 40))
    y = (X40.mean(axis=1) > 0.5).astype(int)
    clf = DeepRACClassifier(hidden_size=3, n_layers=1, max_epochs=1, dtype=np.float64,
                            random_state=0).fit(X40, y)
    assert clf.local_dim_**40 > 2**22
    entropies = clf.entanglement_entropy(10)
    assert np.all(np.isfinite(entropies)) and np.all(entropies <= np.log(4) + 1e-9)
    np.testing.assert_allclose(clf.entanglement_entropy(np.arange(40) < 30), entropies)
    assert len(clf.schmidt_spectrum()) == 2
    with pytest.raises(ValueError, match="exact at any length for a contiguous cut"):
        clf.schmidt_spectrum([0, 5])


def test_rac_theorem2_lower_bound():
    clf = FAMILIES["rac"]().fit(X, Y)
    m, r = clf.local_dim_, 2
    assert clf.schmidt_rank_lower_bound(2) == math.comb(min(r, m) + 1, 2)
    assert rac_rank_lower_bound(r, m, 2) == clf.schmidt_rank_lower_bound(2)
    with pytest.raises(ValueError, match=r"last \|A\| steps with \|A\| <= \|B\|"):
        clf.schmidt_rank_lower_bound(np.arange(9) < 2)
    with pytest.raises(ValueError, match="empty"):
        clf.schmidt_rank_lower_bound([])


# Bad input: one message per mistake, the same on every family.

@pytest.mark.parametrize("call, error, message", [
    (lambda c: c.schmidt_rank_bound(("left_right", 3)), ValueError,
     r"'left_right' takes no size: pass the string 'left_right'"),
    (lambda c: c.schmidt_rank_bound(("block",)), ValueError,
     r"A block partition is \('block', size\)"),
    (lambda c: c.schmidt_rank_bound(("block", 2, 3)), ValueError,
     r"A block partition is \('block', size\)"),
    (lambda c: c.schmidt_rank_bound(("block", 10)), ValueError, "Block size must be an int"),
    (lambda c: c.entanglement_entropy("diagonal"), ValueError, "Unknown partition 'diagonal'"),
    (lambda c: c.entanglement_entropy([]), ValueError, "leaves subsystem A or B empty"),
    (lambda c: c.entanglement_entropy(np.ones(9, bool)), ValueError, "A or B empty"),
    (lambda c: c.entanglement_entropy(np.array([1, 0, 1, 0, 0, 0, 0, 0, 1])), ValueError,
     r"(?s)mask or a list of indices.*astype\(bool\).*np.flatnonzero"),
    (lambda c: c.entanglement_entropy(np.ones(5, bool)), ValueError,
     r"A boolean partition mask must have shape"),
    (lambda c: c.entanglement_entropy([0, 9]), ValueError, r"indices must lie in \[0, 9\)"),
    (lambda c: c.entanglement_entropy({0, 1}), ValueError, "unordered"),
    (lambda c: c.entanglement_entropy(classes=["z"]), ValueError,
     r"classes must be a non-empty list of labels from classes_ \['a', 'b', 'c'\]; "
     r"unknown: \['z'\]"),
    (lambda c: c.entanglement_entropy(classes=[0]), ValueError, r"unknown: \[0\]"),
    (lambda c: c.entanglement_entropy(method="sampling"), ValueError, "method must be one of"),
    (lambda c: c.entanglement_entropy(alpha=1, method="monte_carlo"), ValueError,
     "Monte Carlo estimates the Renyi-2 entropy only: method='monte_carlo' needs alpha=2"),
    (lambda c: c.entanglement_entropy(alpha=True), TypeError, "alpha must be a real number"),
    (lambda c: c.entanglement_entropy(alpha="2"), TypeError, "alpha must be a real number"),
    (lambda c: c.entanglement_entropy(alpha=-1), ValueError, "alpha must be >= 0"),
    (lambda c: c.entanglement_entropy(max_cut_dim=-1), ValueError, "max_cut_dim must be a positive int"),
    (lambda c: c.entanglement_entropy(max_cut_dim=2.5), TypeError, "max_cut_dim must be a positive int"),
    (lambda c: c.entanglement_entropy(return_std=1), TypeError, "return_std must be a bool"),
    (lambda c: c.entanglement_entropy(verbose=-1), ValueError, "verbose must be a non-negative int"),
    (lambda c: c.entanglement_entropy(verbose="yes"), TypeError, "verbose must be a non-negative int"),
    (lambda c: c.entanglement_entropy(alpha=2, method="monte_carlo", n_samples=0), ValueError,
     "n_samples must be an int >= 100"),
    (lambda c: c.schmidt_rank_bound(return_cut="yes"), TypeError, "return_cut must be a bool"),
    (lambda c: c.entanglement_entropy(alpha=2, monte_carlo_options=[("n_chains", 2)]),
     TypeError, "monte_carlo_options must be a dict"),
    (lambda c: c.entanglement_entropy(alpha=2, monte_carlo_options={"chains": 2}),
     ValueError, r"monte_carlo_options has unknown keys \['chains'\]"),
    (lambda c: c.schmidt_spectrum(tol=1.5), ValueError, "tol must be a real number >= 0 and < 1"),
    (lambda c: c.schmidt_spectrum(alpha=2), TypeError, "unexpected keyword argument 'alpha'"),
])
def test_bad_arguments(fitted, call, error, message):
    clf, _ = fitted
    with pytest.raises(error, match=message):
        call(clf)


def test_family_specific_partition_errors(fitted):
    clf, _ = fitted
    if isinstance(clf, DeepRACClassifier):
        with pytest.raises(ValueError, match="1 <= k < 9"):
            clf.entanglement_entropy(9)
        with pytest.raises(ValueError, match="'up_down' splits the rows of an image"):
            clf.entanglement_entropy("up_down")
        with pytest.raises(ValueError, match=r"must have shape \(9,\); got \(3, 3\)"):
            clf.entanglement_entropy(MASK.reshape(3, 3))
    else:
        with pytest.raises(ValueError, match="an int k .* is for DeepRACClassifier only"):
            clf.entanglement_entropy(3)
        with pytest.raises(ValueError, match=r"must have shape \(3, 3\) or \(9,\); got \(9, 1\)"):
            clf.entanglement_entropy(MASK.reshape(9, 1))


@pytest.mark.parametrize("cls", CLASSES)
def test_unfitted(cls):
    for method in ("entanglement_entropy", "schmidt_spectrum", "schmidt_rank_bound"):
        with pytest.raises(NotFittedError):
            getattr(cls(), method)()


def test_hartley_entropy_counts_the_nonzero_schmidt_values(fitted):
    clf, _ = fitted
    spectra = clf.schmidt_spectrum("left_right")
    hartley = clf.entanglement_entropy("left_right", alpha=0)
    np.testing.assert_allclose(hartley, [np.log(np.count_nonzero(p)) for p in spectra],
                               rtol=1e-12)


def test_monte_carlo_options_reach_the_sampler():
    clf = randomise(FAMILIES["rac"]().fit(X, Y), spread=SPREAD["rac"])
    options = {"n_chains": 8, "burn_in": 50, "thinning": 2, "n_temperatures": 2}
    first = clf.entanglement_entropy(alpha=2, classes=["a"], method="monte_carlo",
                                     n_samples=400, random_state=0,
                                     monte_carlo_options=options)
    again = clf.entanglement_entropy(alpha=2, classes=["a"], method="monte_carlo",
                                     n_samples=400, random_state=0,
                                     monte_carlo_options=options)
    default = clf.entanglement_entropy(alpha=2, classes=["a"], method="monte_carlo",
                                       n_samples=400, random_state=0)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, default)
    with pytest.raises(ValueError, match="burn_in"):
        clf.entanglement_entropy(alpha=2, method="monte_carlo",
                                 monte_carlo_options={"burn_in": -1})


def test_default_partition_of_one_column_and_of_one_site():
    rng = np.random.default_rng(1)
    X8 = rng.uniform(size=(40, 8))
    y = np.arange(40) % 2
    clf = QCNNClassifier(image_shape=(8, 1), max_epochs=1, random_state=0,
                         dtype=np.float64).fit(X8, y)
    np.testing.assert_array_equal(clf.entanglement_entropy(),
                                  clf.entanglement_entropy("up_down"))
    single = QCNNClassifier(max_epochs=1, random_state=0).fit(X8[:, :1], y)
    with pytest.raises(ValueError, match="fitted on a single site"):
        single.entanglement_entropy()
