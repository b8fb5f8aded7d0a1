"""Exact entanglement of tree networks against brute force and invariants.

Every brute-force comparison runs on networks with one matrix per level
("shared") and with separate left and right matrices ("pair", the q-CNN's
case), the latter exercising the subtree patterns that remember whether they
are a left or a right child.
"""

import functools
import itertools
import math
import re
from collections import deque

import numpy as np
import pytest

from skqcnn.entanglement import (
    CutBond,
    TreeNetwork,
    entropy_from_spectrum,
    normalised_spectrum,
    min_cut_from_bond_dims,
    spectrum_from_amplitudes,
    tree_dense_amplitudes,
    tree_entropies,
    tree_log_norms,
    tree_min_cut,
    tree_renyi_entropies,
    tree_schmidt_spectra,
)

from skqcnn.entanglement import _tree_entropy
from skqcnn.entanglement._tree import SubtreePatterns

TOL = 1e-8
KINDS = ("shared", "pair")


def random_network(
    rng, local_dim, dims, n_classes=2, fixed=None, scale=1.0, kind="shared"
):
    """Gaussian matrices and readout; ``dims`` are D[1..L].

    ``kind`` "shared" gives one matrix per level, "pair" a distinct left and
    right matrix per level, "mixed" pairs on odd levels and shared matrices
    on even ones.
    """
    bond = (local_dim,) + tuple(dims)

    def matrix(level):
        pair = kind == "pair" or (kind == "mixed" and level % 2 == 1)
        shape = ((2,) if pair else ()) + (bond[level + 1], bond[level])
        return scale * rng.normal(size=shape)

    matrices = [matrix(level) for level in range(len(dims))]
    return TreeNetwork(
        local_dim, matrices, rng.normal(size=(n_classes, bond[-1])), fixed
    )


def padded(spectrum, size):
    out = np.zeros(size)
    out[: len(spectrum)] = spectrum
    return out


# (local_dim, D[1..L], fixed leaves): constant, increasing, decreasing and
# bottleneck schedules, 8 and 16 leaves, with and without padding.
SCHEDULES = {
    "M2-N8-constant": (2, (3, 3, 3), None),
    "M3-N8-increasing": (3, (2, 4, 7), None),
    "M3-N8-decreasing-padded": (3, (6, 4, 2), [0, 0, 0, 0, 0, 1, 0, 1]),
    "M2-N8-bottleneck": (2, (4, 1, 5), None),
    "M2-N16-constant": (2, (3, 3, 3, 3), None),
    "M2-N16-increasing-padded": (2, (2, 3, 5, 6), [1] + [0] * 12 + [0, 1, 1]),
    "M2-N16-bottleneck": (2, (4, 2, 1, 4), None),
    "M3-N16-decreasing-padded": (3, (5, 4, 3, 2), [0, 1, 0, 1] * 2 + [1, 1, 0, 0] * 2),
}


def schedule_fixed(name):
    local_dim, dims, fixed = SCHEDULES[name]
    if fixed is None:
        return np.zeros(2 ** len(dims), dtype=bool)
    return np.array(fixed, dtype=bool)


@functools.cache
def schedule_case(name, kind="shared"):
    local_dim, dims, _ = SCHEDULES[name]
    seed = sorted(SCHEDULES).index(name) + 100 * ("shared", "pair", "mixed").index(
        kind
    )
    network = random_network(
        np.random.default_rng(seed),
        local_dim,
        dims,
        n_classes=2,
        fixed=schedule_fixed(name),
        kind=kind,
    )
    return network, tree_dense_amplitudes(network)


def partitions(n_leaves, fixed, seed):
    """Named bipartitions, fixed leaves moved out of A, degenerate ones dropped."""
    p = np.arange(n_leaves)
    rng = np.random.default_rng(seed)
    masks = {
        "top": p < n_leaves // 2,
        "second-level": p < n_leaves // 4,
        "second-level-odd": (p // (n_leaves // 4)) % 2 == 1,
        "interleaved": p % 2 == 1,
        "checkerboard": ((p & 1) ^ ((p >> 1) & 1)) == 1,
        "random-1": rng.random(n_leaves) < 0.5,
        "random-2": rng.random(n_leaves) < 0.3,
        "single-leaf": p == int(np.flatnonzero(~fixed)[-1]),
    }
    out = {}
    for name, mask in masks.items():
        mask = mask & ~fixed
        if mask.any() and (mask | fixed).sum() < n_leaves:
            out[name] = mask
    return out


BRUTE_FORCE_CASES = [
    (schedule, partition, kind)
    for kind in KINDS
    for schedule in SCHEDULES
    for partition in partitions(
        schedule_fixed(schedule).size, schedule_fixed(schedule), 0
    )
]


@pytest.mark.parametrize("schedule, partition, kind", BRUTE_FORCE_CASES)
def test_exact_methods_match_dense_svd(schedule, partition, kind):
    network, amplitudes = schedule_case(schedule, kind)
    in_a = partitions(network.n_leaves, network.fixed_leaves, seed=0)[partition]
    assert_exact_methods_match(network, amplitudes, in_a)


def assert_exact_methods_match(network, amplitudes, in_a):
    """Spectra, entropies and replica Renyi entropies against the dense SVD."""
    on_physical = in_a[~network.fixed_leaves]
    spectra = tree_schmidt_spectra(network, in_a)
    bound, _ = tree_min_cut(network, in_a)
    replica = {alpha: tree_renyi_entropies(network, in_a, alpha) for alpha in (2, 3)}
    entropies = {
        alpha: tree_entropies(network, in_a, alpha=alpha) for alpha in (1, 2, 3, np.inf)
    }
    for y in range(network.n_classes):
        reference = spectrum_from_amplitudes(
            amplitudes[y], on_physical, network.local_dim
        )
        size = max(len(reference), len(spectra[y]))
        np.testing.assert_allclose(
            padded(spectra[y], size), padded(reference, size), rtol=0, atol=TOL
        )
        assert np.isclose(spectra[y].sum(), 1.0, rtol=0, atol=1e-12)
        assert np.all(np.diff(spectra[y]) <= 0)
        # The whole computed spectrum: no longer than the cut allows, and the
        # dense reference's values beyond the bound are round-off.
        assert len(spectra[y]) <= bound
        assert np.all(reference[bound:] < 1e-12)
        for alpha, values in entropies.items():
            expected = entropy_from_spectrum(reference, alpha)
            assert values[y] == pytest.approx(expected, abs=TOL)
        for alpha, values in replica.items():
            expected = entropy_from_spectrum(reference, alpha)
            assert values[y] == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("schedule", ["M2-N16-increasing-padded", "M3-N8-increasing"])
def test_mixed_shared_and_pair_levels_match_dense_svd(schedule):
    network, amplitudes = schedule_case(schedule, "mixed")
    assert network.shared_levels == tuple(
        level % 2 == 0 for level in range(network.n_levels)
    )
    named = partitions(network.n_leaves, network.fixed_leaves, seed=1)
    for name in ("interleaved", "checkerboard", "random-1", "second-level-odd"):
        assert_exact_methods_match(network, amplitudes, named[name])


def evaluate_by_definition(network, configuration):
    """The network on one configuration of its physical leaves, node by node."""
    digits = iter(configuration)
    eye = np.eye(network.local_dim)
    nodes = [eye[0] if fixed else eye[next(digits)] for fixed in network.fixed_leaves]
    for matrix in network.matrices:
        left, right = (matrix, matrix) if matrix.ndim == 2 else matrix
        nodes = [
            (left @ nodes[2 * t]) * (right @ nodes[2 * t + 1])
            for t in range(len(nodes) // 2)
        ]
    return network.readout @ nodes[0]


@pytest.mark.parametrize("kind", ["shared", "pair", "mixed"])
@pytest.mark.parametrize("schedule", ["M3-N8-decreasing-padded", "M2-N16-bottleneck"])
def test_dense_amplitudes_follow_the_definition(schedule, kind):
    network, amplitudes = schedule_case(schedule, kind)
    rng = np.random.default_rng(3)
    shape = (network.local_dim,) * network.n_physical
    assert amplitudes.shape == (network.n_classes, math.prod(shape))
    for flat in rng.integers(0, amplitudes.shape[1], size=20):
        configuration = np.unravel_index(flat, shape)
        np.testing.assert_allclose(
            amplitudes[:, flat], evaluate_by_definition(network, configuration)
        )


def test_dense_amplitudes_refuse_huge_states():
    network = random_network(np.random.default_rng(0), 3, (2, 2, 2, 2, 2))
    with pytest.raises(ValueError, match="amplitudes per class"):
        tree_dense_amplitudes(network)


# -- invariants ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_complementary_subsystems_have_equal_entropies(kind):
    network, _ = schedule_case("M2-N16-increasing-padded", kind)
    rng = np.random.default_rng(11)
    physical = ~network.fixed_leaves
    for _ in range(5):
        in_a = (rng.random(network.n_leaves) < 0.5) & physical
        in_b = physical & ~in_a
        for alpha in (1, 2, 3):
            np.testing.assert_allclose(
                tree_entropies(network, in_a, alpha=alpha),
                tree_entropies(network, in_b, alpha=alpha),
                rtol=0,
                atol=TOL,
            )
        np.testing.assert_allclose(
            tree_renyi_entropies(network, in_a, 2),
            tree_renyi_entropies(network, in_b, 2),
            rtol=0,
            atol=TOL,
        )


@pytest.mark.parametrize("kind", KINDS)
def test_renyi_entropies_do_not_increase_with_the_order(kind):
    network, _ = schedule_case("M2-N16-constant", kind)
    rng = np.random.default_rng(12)
    for _ in range(5):
        in_a = rng.random(network.n_leaves) < 0.5
        values = np.array(
            [
                tree_entropies(network, in_a, alpha=alpha)
                for alpha in (0.5, 1, 2, 3, 7, np.inf)
            ]
        )
        assert np.all(np.diff(values, axis=0) <= 1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_schmidt_rank_never_exceeds_the_min_cut_bound(kind):
    rng = np.random.default_rng(13)
    for name in SCHEDULES:
        network, _ = schedule_case(name, kind)
        for _ in range(4):
            in_a = (rng.random(network.n_leaves) < 0.5) & ~network.fixed_leaves
            if not in_a.any() or (in_a | network.fixed_leaves).all():
                continue
            bound, _ = tree_min_cut(network, in_a)
            assert all(len(p) <= bound for p in tree_schmidt_spectra(network, in_a))


@pytest.mark.parametrize("kind", KINDS)
def test_product_state_has_zero_entropy(kind):
    rng = np.random.default_rng(14)
    bond = (3, 4, 4, 5)

    # Rank-one matrices make every node a multiple of one fixed vector.
    def rank_one(level):
        return np.outer(rng.normal(size=bond[level + 1]), rng.normal(size=bond[level]))

    if kind == "pair":
        matrices = [np.stack([rank_one(level), rank_one(level)]) for level in range(3)]
    else:
        matrices = [rank_one(level) for level in range(3)]
    network = TreeNetwork(3, matrices, rng.normal(size=(2, 5)))
    for in_a in (np.arange(8) < 4, np.arange(8) % 2 == 1, np.arange(8) == 5):
        spectra = tree_schmidt_spectra(network, in_a)
        assert all(len(p) == 1 for p in spectra)
        np.testing.assert_allclose(tree_entropies(network, in_a), 0.0, atol=1e-12)
        np.testing.assert_allclose(
            tree_renyi_entropies(network, in_a, 2), 0.0, atol=1e-12
        )


@pytest.mark.parametrize("kind", KINDS)
def test_rescaling_changes_norms_but_not_entropies(kind):
    network, _ = schedule_case("M3-N8-increasing", kind)
    c = 7.5
    scaled = TreeNetwork(
        network.local_dim,
        [c * m for m in network.matrices],
        3.0 * network.readout,
        network.fixed_leaves,
    )
    for in_a in (np.arange(8) < 4, np.arange(8) % 3 == 0):
        np.testing.assert_allclose(
            tree_entropies(scaled, in_a), tree_entropies(network, in_a), atol=1e-12
        )
        np.testing.assert_allclose(
            tree_renyi_entropies(scaled, in_a, 3),
            tree_renyi_entropies(network, in_a, 3),
            atol=1e-10,
        )
    # Every level doubles the power of c: Psi scales by c**(2**(L+1) - 2).
    shift = (2**4 - 2) * math.log(c) + math.log(3.0)
    np.testing.assert_allclose(
        tree_log_norms(scaled), tree_log_norms(network) + shift, rtol=1e-12
    )


@pytest.mark.parametrize("kind", KINDS)
def test_log_norms_match_the_dense_state(kind):
    for name in ("M3-N8-decreasing-padded", "M2-N16-bottleneck"):
        network, amplitudes = schedule_case(name, kind)
        np.testing.assert_allclose(
            tree_log_norms(network),
            np.log(np.linalg.norm(amplitudes, axis=1)),
            rtol=1e-12,
        )


@pytest.mark.parametrize(
    "schedule", ["M3-N8-decreasing-padded", "M2-N16-increasing-padded"]
)
def test_pair_of_equal_matrices_is_the_shared_form(schedule):
    shared, amplitudes = schedule_case(schedule)
    doubled = TreeNetwork(
        shared.local_dim,
        [np.stack([m, m]) for m in shared.matrices],
        shared.readout,
        shared.fixed_leaves,
    )
    assert doubled.shared_levels == (True,) * shared.n_levels
    assert doubled.bond_dims == shared.bond_dims
    for a, b in zip(doubled.matrix_pairs, shared.matrix_pairs):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(
        tree_dense_amplitudes(doubled), amplitudes, rtol=1e-13, atol=0
    )
    np.testing.assert_allclose(
        tree_log_norms(doubled), tree_log_norms(shared), rtol=1e-13
    )
    for name, in_a in partitions(shared.n_leaves, shared.fixed_leaves, 2).items():
        for a, b in zip(
            tree_schmidt_spectra(doubled, in_a), tree_schmidt_spectra(shared, in_a)
        ):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=name)
        for alpha in (1, 2, np.inf):
            np.testing.assert_allclose(
                tree_entropies(doubled, in_a, alpha=alpha),
                tree_entropies(shared, in_a, alpha=alpha),
                rtol=0,
                atol=1e-12,
            )
        np.testing.assert_allclose(
            tree_renyi_entropies(doubled, in_a, 3),
            tree_renyi_entropies(shared, in_a, 3),
            rtol=0,
            atol=1e-12,
        )
        assert tree_min_cut(doubled, in_a) == tree_min_cut(shared, in_a)
    # A perturbed pair is a different network, with a different state.
    perturbed = [m.copy() for m in doubled.matrices]
    perturbed[0][1, 0, 0] += 1e-3
    perturbed = TreeNetwork(
        shared.local_dim, perturbed, shared.readout, shared.fixed_leaves
    )
    assert perturbed.shared_levels[0] is False
    assert not np.allclose(tree_dense_amplitudes(perturbed), amplitudes)


@pytest.mark.parametrize("n_levels", [3, 5])
def test_split_patterns_have_a_definite_parent_matrix(n_levels):
    """Nodes of one pattern have the same subtree and, where split, the same side."""
    rng = np.random.default_rng(70 + n_levels)
    n_leaves = 2**n_levels
    for _ in range(10):
        labels = rng.integers(0, 3, size=n_leaves)
        split = tuple(bool(b) for b in rng.random(n_levels) < 0.5)
        plain = SubtreePatterns.from_labels(labels)
        patterns = SubtreePatterns.from_labels(labels, split)
        assert patterns.n_levels == n_levels
        for level in range(n_levels + 1):
            ids = patterns.ids[level]
            width = 2**level
            subtrees = labels.reshape(-1, width)
            first = patterns.first[level]
            np.testing.assert_array_equal(ids[first], np.arange(first.size))
            # Same pattern <=> same leaf labels (and same side where split).
            key = [tuple(row) for row in subtrees]
            if level < n_levels and split[level]:
                key = [k + (t % 2,) for t, k in enumerate(key)]
                assert np.all(patterns.parity[level][ids] == np.arange(ids.size) % 2)
            assert len(set(key)) == first.size
            assert all(
                key[t] == key[first[ids[t]]] for t in range(ids.size)
            )
            assert first.size <= 2 * plain.first[level].size
            if level == 0:
                np.testing.assert_array_equal(patterns.leaf_labels[ids], labels)
            else:
                np.testing.assert_array_equal(
                    patterns.left[level][ids], patterns.ids[level - 1][0::2]
                )
                np.testing.assert_array_equal(
                    patterns.right[level][ids], patterns.ids[level - 1][1::2]
                )
        for label in range(3):
            counts = patterns.count(label)
            for level in range(n_levels + 1):
                expected = (labels.reshape(-1, 2**level) == label).sum(axis=1)
                np.testing.assert_array_equal(
                    counts[level][patterns.ids[level]], expected
                )


def test_replica_survives_a_cancelling_bottleneck():
    """Channels carrying no state must not feed rounding noise upwards.

    Behind a one-channel bottleneck the five channels of level 3 all hold
    multiples of one state, and the top matrix nearly cancels them. Rounding
    noise in the other channel directions, raised to ``2 alpha`` copies,
    would swamp the replica trace.
    """
    rng = np.random.default_rng(60)
    squares = np.array([1.8, 0.6, 0.1, 0.7, -0.9]) ** 2
    top = rng.normal(size=5)
    top -= (top @ squares - 0.01 * np.linalg.norm(top) * np.linalg.norm(squares)) * (
        squares / (squares @ squares)
    )
    matrices = [
        rng.normal(size=(2, 2)),
        rng.normal(size=(1, 2)),
        np.sqrt(squares)[:, None],
        top[None, :],
    ]
    network = TreeNetwork(2, matrices, np.ones((1, 1)))
    amplitudes = tree_dense_amplitudes(network)[0]
    for in_a in (np.arange(16) == 0, np.arange(16) % 3 == 0):
        reference = spectrum_from_amplitudes(amplitudes, in_a, 2)
        for alpha in (2, 3, 4):
            assert tree_renyi_entropies(network, in_a, alpha)[0] == pytest.approx(
                entropy_from_spectrum(reference, alpha), abs=TOL
            )


# -- minimum cut ----------------------------------------------------------------


def exhaustive_min_cut(bond_dims, in_a, fixed):
    """Cheapest cut over every side assignment of the pooling nodes.

    A pooling node is on side A, on side B, or split (cost ``D[l]`` once, all
    its legs free). Each matrix copy touches only its two neighbours, so its
    side is minimised directly for every assignment of the pooling nodes.
    """
    n_levels = len(bond_dims) - 1
    deltas = [
        (level, t)
        for level in range(1, n_levels + 1)
        for t in range(2 ** (n_levels - level))
    ]
    best = None
    for states in itertools.product("ABS", repeat=len(deltas)):
        state = dict(zip(deltas, states))
        cost = math.prod(
            bond_dims[level] for (level, _), s in state.items() if s == "S"
        )
        for level in range(1, n_levels + 1):
            for p in range(2 ** (n_levels - level + 1)):
                if level == 1:
                    below = None if fixed[p] else ("A" if in_a[p] else "B")
                else:
                    below = state[(level - 1, p)]
                above = state[(level, p // 2)]
                cost *= min(
                    (bond_dims[level - 1] if below not in (None, "S", side) else 1)
                    * (bond_dims[level] if above not in ("S", side) else 1)
                    for side in "AB"
                )
        best = cost if best is None else min(best, cost)
    return best


def cut_separates(n_levels, in_a, fixed, cut):
    """True when removing the cut bonds leaves no path from A to B leaves."""
    removed = {(b.level, b.position, b.leg) for b in cut}
    graph = {}

    def join(u, v, bond):
        if bond not in removed:
            graph.setdefault(u, []).append(v)
            graph.setdefault(v, []).append(u)

    for level in range(1, n_levels + 1):
        for p in range(2 ** (n_levels - level + 1)):
            matrix = ("matrix", level, p)
            if level == 1:
                join(("leaf", p), matrix, (0, p, "leaf"))
            else:
                join(("delta", level - 1, p), matrix, (level, p, "input"))
            if (level, p // 2, "delta") not in removed:
                join(matrix, ("delta", level, p // 2), (level, p, "output"))
    for level in range(1, n_levels + 1):
        for t in range(2 ** (n_levels - level)):
            if (level, t, "delta") in removed:
                for neighbour in graph.pop(("delta", level, t), []):
                    graph[neighbour].remove(("delta", level, t))
    start = [("leaf", p) for p in np.flatnonzero(in_a)]
    seen, queue = set(start), deque(start)
    while queue:
        for v in graph.get(queue.popleft(), []):
            if v not in seen:
                seen.add(v)
                queue.append(v)
    targets = {("leaf", p) for p in np.flatnonzero(~in_a & ~fixed)}
    return not (seen & targets)


@pytest.mark.parametrize("n_levels", [2, 3])
def test_min_cut_matches_exhaustive_search(n_levels):
    rng = np.random.default_rng(20 + n_levels)
    n_leaves = 2**n_levels
    checked = 0
    while checked < (40 if n_levels == 2 else 12):
        bond_dims = tuple(int(d) for d in rng.integers(1, 8, size=n_levels + 1))
        fixed = rng.random(n_leaves) < 0.2
        in_a = (rng.random(n_leaves) < 0.5) & ~fixed
        if not in_a.any() or (in_a | fixed).all():
            continue
        bound, cut = min_cut_from_bond_dims(bond_dims, in_a, fixed)
        assert bound == exhaustive_min_cut(bond_dims, in_a, fixed)
        assert math.prod(bond.dim for bond in cut) == bound
        assert cut_separates(n_levels, in_a, fixed, cut)
        local_dim = bond_dims[0]
        assert bound <= min(
            local_dim ** in_a.sum(), local_dim ** (~in_a & ~fixed).sum()
        )
        checked += 1


def test_min_cut_of_the_design_example():
    # q-CNN channels (3, 2, 6) plus a constant channel, M = 3, N = 8.
    bound, cut = min_cut_from_bond_dims((3, 4, 3, 7), np.arange(8) < 4)
    assert bound == 3
    assert [bond.dim for bond in cut] == [3]
    network = random_network(np.random.default_rng(0), 3, (4, 3, 7))
    assert tree_min_cut(network, np.arange(8) < 4)[0] == 3
    assert max(len(p) for p in tree_schmidt_spectra(network, np.arange(8) < 4)) == 3


def test_min_cut_is_exact_for_huge_bounds():
    n_levels, p = 10, np.arange(1024)
    bound, cut = min_cut_from_bond_dims((3,) + (41,) * n_levels, p % 2 == 1)
    assert isinstance(bound, int)
    assert bound == 3**512
    assert len(cut) == 512 and all(b == CutBond(0, b.position, "leaf", 3) for b in cut)


def numerical_rank(network, in_a):
    psi = tree_dense_amplitudes(network)[0].reshape(
        (network.local_dim,) * network.n_leaves
    )
    order = list(np.flatnonzero(in_a)) + list(np.flatnonzero(~in_a))
    matrix = np.transpose(psi, order).reshape(
        network.local_dim ** int(in_a.sum()), -1
    )
    return np.linalg.matrix_rank(matrix)


def test_min_cut_bound_is_usually_tight():
    """Gaussian networks reach the bound in most cases, far more with pairs.

    Each random structure (bond dimensions, random half) gets a network with
    one matrix per level and one with separate left and right matrices. With
    a shared matrix two sibling leaves on one side span only the symmetric
    subspace, ``M(M+1)/2 < M**2`` dimensions, and the rank falls short of the
    bound. Measured over seeds 30-39 of 150 cases each: 0.896 on average
    (0.86-0.93) with shared matrices and 0.991 (0.98-1.00) with pairs; this
    seed gives 0.893 and 0.987. The pairs' few misses are numerical: other
    draws of the same structure reach the bound, but products of Gaussian
    matrices push the smallest singular values below ``matrix_rank``'s
    tolerance.
    """
    rng = np.random.default_rng(30)
    tight = {kind: 0 for kind in KINDS}
    total = 0
    while total < 150:
        n_levels = int(rng.choice([3, 4]))
        local_dim = int(rng.choice([2, 3])) if n_levels == 3 else 2
        dims = rng.integers(1, 7, size=n_levels)
        networks = {
            kind: random_network(rng, local_dim, dims, n_classes=1, kind=kind)
            for kind in KINDS
        }
        in_a = rng.random(2**n_levels) < 0.5
        if in_a.all() or not in_a.any():
            continue
        bound, _ = tree_min_cut(networks["shared"], in_a)
        assert tree_min_cut(networks["pair"], in_a)[0] == bound
        for kind, network in networks.items():
            rank = numerical_rank(network, in_a)
            assert rank <= bound
            tight[kind] += rank == bound
        total += 1
    fractions = {kind: count / total for kind, count in tight.items()}
    print(f"min-cut bound reached in {tight} of {total} cases: {fractions}")
    assert fractions["shared"] >= 0.8
    assert fractions["pair"] >= 0.97
    assert fractions["pair"] > fractions["shared"] + 0.05


# -- scale --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_thousand_leaves_with_large_weights_stay_finite(kind):
    rng = np.random.default_rng(40)
    n_levels, width = 10, 41
    network = random_network(
        rng, 3, (width,) * n_levels, n_classes=3, scale=5.0, kind=kind
    )
    p = np.arange(network.n_leaves)
    for in_a in (p < 512, p < 256):
        spectra = tree_schmidt_spectra(network, in_a)
        assert all(np.isclose(s.sum(), 1.0, atol=1e-12) for s in spectra)
        entropies = tree_entropies(network, in_a)
        assert np.all(np.isfinite(entropies)) and np.all(entropies >= 0)
    log_norms = tree_log_norms(network)
    assert np.all(np.isfinite(log_norms)) and np.all(log_norms > 700)


@pytest.mark.parametrize("kind", KINDS)
def test_replica_agrees_with_spectrum_at_scale(kind):
    rng = np.random.default_rng(41)
    network = random_network(rng, 3, (7,) * 10, n_classes=2, scale=4.0, kind=kind)
    p = np.arange(network.n_leaves)
    for in_a in (p < 512, p < 128):
        np.testing.assert_allclose(
            tree_renyi_entropies(network, in_a, 2),
            tree_entropies(network, in_a, alpha=2),
            rtol=0,
            atol=1e-10,
        )
    interleaved = tree_entropies(network, p % 2 == 1, alpha=2)
    assert np.all(np.isfinite(interleaved)) and np.all(interleaved > 100)


# -- errors -------------------------------------------------------------------


@pytest.fixture
def small_network():
    fixed = np.array([0, 0, 0, 0, 0, 0, 0, 1], dtype=bool)
    return random_network(np.random.default_rng(50), 2, (3, 3, 3), fixed=fixed)


@pytest.mark.parametrize(
    "in_a, message",
    [
        (np.zeros(8, dtype=bool), "A is empty"),
        (np.arange(8) < 7, "A is full"),
        (np.ones(4, dtype=bool), "one entry per leaf"),
        (np.arange(8) >= 6, "fixed"),
        (np.linspace(0, 1, 8), "boolean mask"),
    ],
)
def test_invalid_bipartitions(small_network, in_a, message):
    for function in (tree_schmidt_spectra, tree_entropies, tree_min_cut):
        with pytest.raises(ValueError, match=message):
            function(small_network, in_a)
    with pytest.raises(ValueError, match=message):
        tree_renyi_entropies(small_network, in_a, 2)


@pytest.mark.parametrize("alpha", [-1, -np.inf, np.nan])
def test_negative_orders(small_network, alpha):
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        tree_entropies(small_network, np.arange(8) < 4, alpha=alpha)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        entropy_from_spectrum([0.5, 0.5], alpha=alpha)


def test_an_order_beyond_the_floats_is_the_min_entropy(small_network):
    # float(10**400) overflows; the entropy of that order is S_inf to float
    # precision, and -10**400 is a negative order.
    in_a = np.arange(8) < 4
    np.testing.assert_array_equal(tree_entropies(small_network, in_a, alpha=10**400),
                                  tree_entropies(small_network, in_a, alpha=np.inf))
    assert entropy_from_spectrum([0.75, 0.25], alpha=10**400) == -np.log(0.75)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        entropy_from_spectrum([0.5, 0.5], alpha=-10**400)


@pytest.mark.parametrize("alpha", [True, "2", None, [2]])
def test_orders_of_the_wrong_type(small_network, alpha):
    in_a = np.arange(8) < 4
    for call in (
        lambda: tree_entropies(small_network, in_a, alpha=alpha),
        lambda: tree_renyi_entropies(small_network, in_a, alpha),
        lambda: entropy_from_spectrum([0.5, 0.5], alpha=alpha),
    ):
        with pytest.raises(TypeError, match="alpha must be a real number"):
            call()


@pytest.mark.parametrize("alpha", [1, 1.5, 0, np.inf])
def test_replica_needs_an_integer_order(small_network, alpha):
    with pytest.raises(ValueError, match="integer alpha >= 2"):
        tree_renyi_entropies(small_network, np.arange(8) < 4, alpha)


def test_large_cut_points_to_renyi_2():
    network = random_network(np.random.default_rng(51), 3, (9,) * 6)
    interleaved = np.arange(64) % 2 == 1
    for call in (
        lambda: tree_entropies(network, interleaved),
        lambda: tree_entropies(network, interleaved, alpha=0.5),
        lambda: tree_schmidt_spectra(network, interleaved),
    ):
        with pytest.raises(ValueError, match="weight 1853020188851841"):
            call()
    with pytest.raises(ValueError, match="alpha=2"):
        tree_entropies(network, interleaved, alpha=1)
    values = tree_entropies(network, interleaved, alpha=2)
    np.testing.assert_allclose(values, tree_renyi_entropies(network, interleaved, 2))


def test_max_cut_dim_is_the_switch(small_network):
    in_a = (np.arange(8) % 2 == 1) & ~small_network.fixed_leaves
    bound, _ = tree_min_cut(small_network, in_a)
    tree_schmidt_spectra(small_network, in_a, max_cut_dim=bound)
    with pytest.raises(ValueError, match=f"weight {bound}"):
        tree_schmidt_spectra(small_network, in_a, max_cut_dim=bound - 1)


def test_replica_of_a_wide_level_is_sliced_not_refused():
    # One level of 300 channels: every pairwise order of the two Gram pairs
    # and the readout forms a 300**4 intermediate unless it is sliced.
    network = random_network(np.random.default_rng(52), 2, (300,))
    in_a = np.array([1, 0], dtype=bool)
    plan = _tree_entropy._Bipartition(network, in_a).replica_plan(2, np.arange(2))
    assert plan.largest <= _tree_entropy.MAX_REPLICA_ELEMENTS
    np.testing.assert_allclose(
        tree_renyi_entropies(network, in_a, 2),
        tree_entropies(network, in_a, alpha=2),
        rtol=1e-10,
    )


def test_replica_operation_limit(monkeypatch):
    network = random_network(np.random.default_rng(52), 2, (30, 30))
    in_a = np.arange(4) % 2 == 0
    plan = _tree_entropy._Bipartition(network, in_a).replica_plan(3, np.arange(2))
    monkeypatch.setattr(_tree_entropy, "MAX_REPLICA_FLOPS", plan.flops - 1)
    with pytest.raises(ValueError, match=re.escape(f"about {plan.flops:.2g} operations")):
        tree_renyi_entropies(network, in_a, 3)


@pytest.mark.parametrize(
    "classes, error, message",
    [
        ([2], ValueError, r"in \[0, 2\), got \[2\]"),
        ([-1], ValueError, r"got \[-1\] outside"),
        ([], ValueError, "non-empty"),
        ([0.5], TypeError, "integer readout-row indices"),
        ([True], TypeError, "integer readout-row indices"),
        (["a"], TypeError, "integer readout-row indices"),
        ([[0, 1]], ValueError, "1-D"),
    ],
)
def test_invalid_classes(small_network, classes, error, message):
    in_a = np.arange(8) < 4
    for call in (
        lambda: tree_entropies(small_network, in_a, classes=classes),
        lambda: tree_schmidt_spectra(small_network, in_a, classes=classes),
        lambda: tree_renyi_entropies(small_network, in_a, 2, classes=classes),
    ):
        with pytest.raises(error, match=message):
            call()


@pytest.mark.parametrize(
    "value, error", [(-1, ValueError), (0, ValueError), (2.5, TypeError),
                     (True, TypeError), ("4096", TypeError), (None, TypeError)]
)
def test_invalid_max_cut_dim(small_network, value, error):
    in_a = np.arange(8) < 4
    for function in (tree_entropies, tree_schmidt_spectra):
        with pytest.raises(error, match="max_cut_dim must be a positive int"):
            function(small_network, in_a, max_cut_dim=value)


def test_selected_classes(small_network):
    in_a = np.arange(8) < 4
    everything = tree_entropies(small_network, in_a, alpha=2)
    np.testing.assert_allclose(
        tree_entropies(small_network, in_a, alpha=2, classes=[1]), everything[1:]
    )
    np.testing.assert_allclose(
        tree_renyi_entropies(small_network, in_a, 2, classes=[1, 0], base=2),
        everything[::-1] / np.log(2),
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"matrices": []}, "at least one level"),
        ({"matrices": [np.ones((3, 3))]}, r"shape \(D\[1\], 2\)"),
        ({"matrices": [np.ones((3, 2)), np.ones((2, 2))]}, r"shape \(D\[2\], 3\)"),
        ({"readout": np.ones((2, 4))}, r"readout must have shape \(n_classes, 3\)"),
        ({"readout": np.ones(3)}, "readout must have shape"),
        ({"fixed_leaves": np.zeros(3, dtype=bool)}, "fixed_leaves must be"),
        ({"fixed_leaves": np.zeros(4)}, "fixed_leaves must be"),
        ({"local_dim": 0}, "local_dim"),
        ({"readout": np.array([[1.0, np.nan, 0.0]])}, "non-finite"),
        ({"matrices": [np.ones((3, 3, 2)), np.ones((3, 3))]}, r"\(2, D\[1\], 2\)"),
        ({"matrices": [np.ones((2, 3, 3)), np.ones((3, 3))]}, r"\(2, D\[1\], 2\)"),
        (
            {"matrices": [np.ones((2, 3, 2)), np.ones((2, 3, 2))]},
            r"shape \(D\[2\], 3\)",
        ),
        ({"matrices": [np.ones((1, 2, 3, 2)), np.ones((3, 3))]}, "left and right"),
        ({"matrices": [np.ones(2), np.ones((3, 3))]}, "left and right"),
        ({"matrices": [np.ones((2, 3, 2)), np.full((2, 3, 3), np.inf)]}, "non-finite"),
    ],
)
def test_invalid_networks(kwargs, message):
    arguments = {
        "local_dim": 2,
        "matrices": [np.ones((3, 2)), np.ones((3, 3))],
        "readout": np.ones((2, 3)),
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        TreeNetwork(**arguments)


def test_network_is_a_read_only_copy():
    matrix = np.eye(2)
    network = TreeNetwork(2, [matrix], np.ones((1, 2)))
    matrix[0, 0] = 5.0
    assert network.matrices[0][0, 0] == 1.0
    with pytest.raises(ValueError):
        network.matrices[0][0, 0] = 3.0
    with pytest.raises(ValueError):
        network.matrix_pairs[0][1, 0, 0] = 3.0
    assert network.bond_dims == (2, 2) and network.n_physical == 2


def test_pair_matrices_are_stored_as_given():
    rng = np.random.default_rng(53)
    pair = rng.normal(size=(2, 4, 3))
    shared = rng.normal(size=(5, 4))
    network = TreeNetwork(3, [pair, shared], np.ones((2, 5)))
    assert network.bond_dims == (3, 4, 5)
    assert network.matrices[0].shape == (2, 4, 3)
    assert network.matrices[1].shape == (5, 4)
    assert [m.shape for m in network.matrix_pairs] == [(2, 4, 3), (2, 5, 4)]
    assert network.shared_levels == (False, True)
    np.testing.assert_array_equal(network.matrix_pairs[0], pair)
    np.testing.assert_array_equal(network.matrix_pairs[1][0], shared)
    np.testing.assert_array_equal(network.matrix_pairs[1][1], shared)
    pair[0, 0, 0] = 9.0
    assert network.matrices[0][0, 0, 0] != 9.0
    with pytest.raises(ValueError):
        network.matrices[0][0, 0, 0] = 3.0
    assert repr(network) == (
        "TreeNetwork(local_dim=3, bond_dims=(3, 4, 5), n_classes=2, n_fixed=0)"
    )


# -- orders, whole spectra and cost limits --------------------------------------


def test_large_finite_orders_tend_to_the_min_entropy():
    p = np.array([0.6, 0.4])
    assert entropy_from_spectrum(p, alpha=2000) == pytest.approx(
        -np.log(0.6) * 2000 / 1999, rel=1e-12
    )
    rng = np.random.default_rng(70)
    spectrum = rng.random(50) ** 4
    orders = [2.0, 10.0, 1e2, 1e3, 1e5, 1e8, 1e12, np.inf]
    values = np.array([entropy_from_spectrum(spectrum, alpha) for alpha in orders])
    assert np.all(np.isfinite(values))
    assert np.all(np.diff(values) <= 1e-14)
    minimum = -np.log(spectrum.max() / spectrum.sum())
    # S_alpha - S_inf <= log(rank) / (alpha - 1): continuous at infinity.
    for alpha, value in zip(orders[:-1], values[:-1]):
        assert 0 <= value - minimum <= np.log(50) / (alpha - 1) + 1e-12
    assert values[-1] == minimum


def test_hartley_and_small_orders():
    spectrum = np.array([0.5, 0.25, 0.25, 0.0])
    assert entropy_from_spectrum(spectrum, alpha=0) == pytest.approx(np.log(3))
    for alpha in (0.1, 0.5, 0.9):
        expected = np.log(np.sum(spectrum[:3] ** alpha)) / (1 - alpha)
        assert entropy_from_spectrum(spectrum, alpha) == pytest.approx(expected, rel=1e-14)
    # alpha -> 0 and alpha -> 1 approach Hartley and von Neumann.
    assert entropy_from_spectrum(spectrum, 1e-9) == pytest.approx(np.log(3), rel=1e-8)
    assert entropy_from_spectrum(spectrum, 1 + 1e-9) == pytest.approx(
        entropy_from_spectrum(spectrum, 1), rel=1e-7
    )


def test_dense_spectrum_is_whole_by_default():
    rng = np.random.default_rng(71)
    # Rank 2 across a 3-site | 2-site cut of qubits (8 x 4 matrix).
    matrix = rng.normal(size=(8, 2)) @ rng.normal(size=(2, 4))
    amplitudes = matrix.ravel()
    in_a = np.array([True, True, True, False, False])
    whole = spectrum_from_amplitudes(amplitudes, in_a, 2)
    assert whole.shape == (4,) and np.all(whole >= 0)
    assert np.all(whole[2:] < 1e-28)
    cut = spectrum_from_amplitudes(amplitudes, in_a, 2, tol=1e-12)
    np.testing.assert_allclose(cut, whole[:2] / whole[:2].sum(), rtol=1e-14)
    assert normalised_spectrum([1.0, 3.0, -1e-20, 0.0]).tolist() == [0.75, 0.25, 0, 0]


@pytest.mark.parametrize("kind", KINDS)
def test_tree_spectra_are_whole_and_match_the_dense_svd(kind):
    network, amplitudes = schedule_case("M2-N16-increasing-padded", kind)
    for in_a in partitions(network.n_leaves, network.fixed_leaves, seed=3).values():
        bound, _ = tree_min_cut(network, in_a)
        on_physical = in_a[~network.fixed_leaves]
        rank = np.linalg.matrix_rank(
            np.transpose(
                amplitudes[0].reshape((2,) * network.n_physical),
                np.r_[np.flatnonzero(on_physical), np.flatnonzero(~on_physical)],
            ).reshape(2 ** on_physical.sum(), -1)
        )
        for tol in (None, 1e-12):
            spectrum = tree_schmidt_spectra(network, in_a, classes=[0], tol=tol)[0]
            reference = spectrum_from_amplitudes(amplitudes[0], on_physical, 2, tol=tol)
            if tol is None:
                assert rank <= len(spectrum) <= bound
            else:
                assert len(spectrum) == len(reference) <= rank
            size = max(len(spectrum), len(reference))
            np.testing.assert_allclose(
                padded(spectrum, size), padded(reference, size), rtol=0, atol=TOL
            )
            assert tree_entropies(network, in_a, alpha=0.5, classes=[0], tol=tol)[
                0
            ] == pytest.approx(entropy_from_spectrum(reference, 0.5), abs=1e-7)


@pytest.mark.parametrize("tol, error", [(-0.1, ValueError), (1.0, ValueError),
                                        (True, TypeError), ("1e-12", TypeError)])
def test_invalid_tol(small_network, tol, error):
    in_a = np.arange(8) < 4
    with pytest.raises(error, match="tol must be"):
        tree_schmidt_spectra(small_network, in_a, tol=tol)
    with pytest.raises(error, match="tol must be"):
        normalised_spectrum([1.0, 2.0], tol=tol)


def test_costly_spectrum_is_refused_before_it_starts():
    # A 4x4 q-CNN with local dimension 3 and channels ("linear", 4) has bond
    # dimensions (3, 9, 13, 17, 21); this cut weighs 3**7 = 2187, within the
    # default max_cut_dim, but the spectra of 10 classes need about 6e11
    # operations (minutes), against a budget of 4 * 4096**3.
    rng = np.random.default_rng(72)
    network = random_network(rng, 3, (9, 13, 17, 21), n_classes=10, kind="pair")
    in_a = np.array([1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    assert tree_min_cut(network, in_a)[0] == 2187
    for call in (
        lambda: tree_entropies(network, in_a),
        lambda: tree_schmidt_spectra(network, in_a),
    ):
        with pytest.raises(ValueError, match=r"weight 2187.*operations.*alpha=2"):
            call()
    # Integer orders switch to the replica trick instead.
    np.testing.assert_allclose(
        tree_entropies(network, in_a, alpha=2),
        tree_renyi_entropies(network, in_a, 2),
        rtol=1e-12,
    )


@pytest.mark.parametrize("alpha", [2, 3])
def test_replica_of_wide_bonds_matches_dense_svd(alpha):
    """Bond dimensions whose replica tensors are kept as networks."""
    rng = np.random.default_rng(73)
    network = random_network(rng, 2, (4, 40, 40), n_classes=2, kind="pair")
    amplitudes = tree_dense_amplitudes(network)
    for in_a in (np.arange(8) % 4 < 2, np.arange(8) % 2 == 1):
        values = tree_renyi_entropies(network, in_a, alpha)
        for y in range(2):
            reference = spectrum_from_amplitudes(amplitudes[y], in_a, 2)
            assert values[y] == pytest.approx(
                entropy_from_spectrum(reference, alpha), rel=1e-10
            )


@pytest.mark.parametrize("in_a", [np.arange(8) % 4 < 2, np.arange(8) % 2 == 1])
def test_sliced_replica_matches_dense_svd(monkeypatch, in_a):
    """With a tiny memory limit the contraction is sliced; results stay exact.

    The first cut needs two nested loops, with results kept across the
    inner one and computed outside the loops they do not depend on.
    """
    rng = np.random.default_rng(74)
    network = random_network(rng, 2, (4, 40, 40), n_classes=2, kind="pair")
    expected = tree_renyi_entropies(network, in_a, 2)
    monkeypatch.setattr(_tree_entropy, "MAX_REPLICA_ELEMENTS", 40**3)
    plan = _tree_entropy._Bipartition(network, in_a).replica_plan(2, np.arange(2))
    assert plan.largest <= 40**3
    assert plan.root.sliced and plan.root.kept
    np.testing.assert_allclose(
        tree_renyi_entropies(network, in_a, 2), expected, rtol=1e-12
    )
    amplitudes = tree_dense_amplitudes(network)
    for y in range(2):
        reference = spectrum_from_amplitudes(amplitudes[y], in_a, 2)
        assert expected[y] == pytest.approx(entropy_from_spectrum(reference, 2), rel=1e-10)
