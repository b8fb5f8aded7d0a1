"""Min-cut rank bounds of duplicated trees, exact ranks, and depth-1 RAC MPS."""

import itertools
import math

import numpy as np
import pytest
import torch

from skqcnn.entanglement._reused_input_mincut import (
    convac_rank_bound,
    rac_rank_bound,
    rac_rank_lower_bound,
)
from skqcnn.entanglement._enumeration import enumerate_amplitudes
from skqcnn.entanglement._mps import mps_block_spectra, rac_mps_entropies, rac_to_mps
from skqcnn.entanglement._spectra import entropy_from_spectrum, spectrum_from_amplitudes
from skqcnn.nn._convac import OverlappingConvACNetwork
from skqcnn.nn._rac import DeepRACNetwork

torch.set_num_threads(1)

# ---------------------------------------------------------------------------
# An independent exhaustive min-cut: expand the duplicated tree explicitly and
# try every assignment of its delta nodes to side A, side B or "cut".


class _Tree:
    """Explicit duplicated tree: delta nodes and the linear maps between them."""

    def __init__(self):
        self.dims = []
        # (parent delta, child, input dim, output dim); child is ("delta", j),
        # ("leaf", side) with side 0 for A and 1 for B, or ("free",).
        self.links = []

    def delta(self, dim):
        self.dims.append(dim)
        return len(self.dims) - 1


def _explicit_convac(image_shape, local_dim, channels, kernel, pooling, in_a):
    tree = _Tree()
    dims = [local_dim] + [1 + r for r in channels]
    left = (kernel - 1) // 2
    step = pooling or 1
    shapes = [tuple(image_shape)]
    for _ in channels:
        shapes.append(tuple(n // step for n in shapes[-1]))
    side = np.asarray(in_a).reshape(image_shape)

    def expand(layer, position):
        node = tree.delta(dims[layer])
        for q in itertools.product(range(step), repeat=len(image_shape)):
            for o in itertools.product(range(kernel), repeat=len(image_shape)):
                below = tuple(step * p + qq + oo - left for p, qq, oo in zip(position, q, o))
                if any(b < 0 or b >= n for b, n in zip(below, shapes[layer - 1])):
                    child = ("free",)
                elif layer == 1:
                    child = ("leaf", 0 if side[below] else 1)
                else:
                    child = ("delta", expand(layer - 1, below))
                tree.links.append((node, child, dims[layer - 1], dims[layer]))
        return node

    top = len(channels)
    root = tree.delta(dims[top])
    for position in itertools.product(*(range(n) for n in shapes[top])):
        tree.links.append((root, ("delta", expand(top, position)), dims[top], dims[top]))
    return tree


def _explicit_rac(n_steps, local_dim, hidden_sizes, in_a):
    tree = _Tree()
    dims = [local_dim] + [1 + r for r in hidden_sizes]

    def expand(layer, t):
        node = tree.delta(dims[layer])
        hidden = ("free",) if t == 0 else ("delta", expand(layer, t - 1))
        tree.links.append((node, hidden, dims[layer], dims[layer]))
        if layer == 1:
            below = ("leaf", 0 if in_a[t] else 1)
        else:
            below = ("delta", expand(layer - 1, t))
        tree.links.append((node, below, dims[layer - 1], dims[layer]))
        return node

    expand(len(hidden_sizes), n_steps - 1)
    return tree


def _exhaustive_log_min_cut(tree):
    """Minimum over all assignments (0: A, 1: B, 2: cut) of every delta node."""
    n = len(tree.dims)
    # cost[p, c]: a map between endpoints in states p and c (a leaf is A or B,
    # a fixed vector behaves as a cut node) sits on the cheaper side w; a leg is
    # cut when its other end is an uncut node on the other side.
    tables = []
    for _, child, d_in, d_out in tree.links:
        table = np.empty((3, 3))
        for p, c in itertools.product(range(3), repeat=2):
            table[p, c] = min(
                (p not in (2, w)) * np.log(d_out) + (c not in (2, w)) * np.log(d_in)
                for w in (0, 1)
            )
        tables.append(table)
    best = np.inf
    chunk = 3 ** min(n, 10)
    for start in range(0, 3**n, chunk):
        codes = np.arange(start, min(start + chunk, 3**n))
        states = (codes[:, None] // 3 ** np.arange(n)) % 3
        cost = (states == 2) @ np.log(np.asarray(tree.dims, dtype=float))
        for (parent, child, _, _), table in zip(tree.links, tables):
            if child[0] == "delta":
                cost += table[states[:, parent], states[:, child[1]]]
            else:
                cost += table[states[:, parent], child[1] if child[0] == "leaf" else 2]
        best = min(best, cost.min())
    return best


def _capped(log_cut, local_dim, in_a):
    n_a = int(np.sum(in_a))
    return min(log_cut, n_a * np.log(local_dim), (len(in_a) - n_a) * np.log(local_dim))


CONVAC_CASES = [
    # image_shape, M, channels, K, P
    ((4,), 3, (1, 2), 2, None),
    ((4,), 2, (3, 1), 2, None),
    ((3,), 3, (2, 1), 3, None),
    ((5,), 2, (1,), 3, None),
    ((4,), 3, (2, 2), 2, 2),
    ((4, 4), 2, (1, 2), 2, 2),
    ((2, 3), 3, (2,), 2, None),
]


@pytest.mark.parametrize("image_shape, local_dim, channels, kernel, pooling", CONVAC_CASES)
def test_convac_dp_matches_exhaustive_min_cut(image_shape, local_dim, channels, kernel,
                                              pooling):
    rng = np.random.default_rng(0)
    n_sites = math.prod(image_shape)
    masks = [np.arange(n_sites) < 1, np.arange(n_sites) % 2 == 0]
    masks += [rng.random(n_sites) < 0.5 for _ in range(3)]
    for in_a in masks:
        tree = _explicit_convac(image_shape, local_dim, channels, kernel, pooling, in_a)
        expected = _capped(_exhaustive_log_min_cut(tree), local_dim, in_a)
        bound = convac_rank_bound(image_shape, local_dim, channels, kernel, pooling, in_a)
        assert math.log(bound) == pytest.approx(expected, abs=1e-9), in_a


@pytest.mark.parametrize(
    "n_steps, local_dim, hidden_sizes",
    [(3, 3, (1, 2)), (3, 2, (2, 1)), (2, 3, (1, 1, 2)), (4, 3, (2,))],
)
def test_rac_dp_matches_exhaustive_min_cut(n_steps, local_dim, hidden_sizes):
    for in_a in itertools.product([False, True], repeat=n_steps):
        in_a = np.array(in_a)
        tree = _explicit_rac(n_steps, local_dim, hidden_sizes, in_a)
        expected = _capped(_exhaustive_log_min_cut(tree), local_dim, in_a)
        bound = rac_rank_bound(n_steps, local_dim, hidden_sizes, in_a)
        assert math.log(bound) == pytest.approx(expected, abs=1e-9), in_a


def test_return_cut_multiplies_to_the_bound():
    in_a = np.zeros(32, dtype=bool)
    in_a[8:24] = True
    bound, cut = convac_rank_bound((32,), 3, (4, 4), 3, None, in_a, return_cut=True)
    assert bound == math.prod(dim**count for dim, count in cut.values())
    assert bound < 3**16
    assert set(cut) == {"sites", "layer 1", "layer 2"}
    bound, cut = rac_rank_bound(12, 2, (3,), np.arange(12) >= 4, return_cut=True)
    assert (bound, cut) == (4, {"layer 1": (4, 1)})


def test_bounds_are_exact_integers_for_large_systems():
    in_a = np.zeros((32, 32), dtype=bool)
    in_a[:, :16] = True
    assert convac_rank_bound((32, 32), 3, (8, 8, 8), 3, None, in_a) == 3**512
    bound = rac_rank_bound(256, 3, (4,), np.arange(256) >= 128)
    assert bound == 5


def test_mask_size_is_checked():
    with pytest.raises(ValueError, match="one per site"):
        convac_rank_bound((4,), 2, (2,), 2, None, [True, False])
    with pytest.raises(ValueError, match="one per site"):
        rac_rank_bound(4, 2, (2,), [True])


def test_rac_lower_bound_values():
    assert [rac_rank_lower_bound(3, 3, n) for n in (1, 2, 3)] == [3, 6, 10]
    assert rac_rank_lower_bound(10, 2, 4) == math.comb(5, 4)


# ---------------------------------------------------------------------------
# Exact ranks of random networks against the bounds.


def _gaussian(net, seed):
    """float64 network with every parameter standard normal."""
    net = net.double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return net


def _orthogonal(net, seed):
    """float64 network with scaled orthogonal maps and identity BatchNorms.

    Gaussian products give Schmidt spectra that decay smoothly past any
    threshold; these weights keep a clear gap between the nonzero singular
    values and round-off, so ranks can be read off reliably.
    """
    net = net.double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "norms" in name:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
                continue
            flat = p.reshape(-1, p.shape[-1])
            size = max(flat.shape)
            q, _ = torch.linalg.qr(torch.randn(size, size, generator=gen, dtype=p.dtype))
            block = q[: flat.shape[0], : flat.shape[1]] * math.sqrt(flat.shape[1])
            p.copy_(block.reshape(p.shape))
        for name, buffer in net.named_buffers():
            if "running_mean" in name:
                buffer.zero_()
    return net


def _rank(psi, in_a, local_dim, rtol=1e-10):
    in_a = np.asarray(in_a, dtype=bool)
    sites_a, sites_b = np.flatnonzero(in_a), np.flatnonzero(~in_a)
    tensor = psi.reshape((local_dim,) * in_a.size).transpose(tuple(sites_a) + tuple(sites_b))
    singular = np.linalg.svd(tensor.reshape(local_dim**sites_a.size, -1), compute_uv=False)
    return int(np.sum(singular > rtol * singular[0]))


def _blocks(n_sites, alpha):
    """Contiguous blocks of size alpha: at the start and in the middle."""
    blocks = []
    for start in (0, (n_sites - alpha) // 2):
        in_a = np.zeros(n_sites, dtype=bool)
        in_a[start:start + alpha] = True
        blocks.append(in_a)
    return blocks


@pytest.mark.parametrize(
    "channels, kernel, pooling, seed",
    [((2, 2), 2, None, 0), ((2, 2), 3, None, 1), ((3,), 3, None, 0), ((2, 2), 2, 2, 0)],
)
def test_convac_exact_ranks_never_exceed_the_bound(channels, kernel, pooling, seed):
    n_sites, local_dim = (8, 3) if pooling else (10, 3)
    net = _gaussian(OverlappingConvACNetwork((n_sites,), local_dim, channels, kernel, 2,
                                             pooling=pooling), seed)
    amplitudes = enumerate_amplitudes(net, n_sites, local_dim)
    rng = np.random.default_rng(seed)
    masks = [m for alpha in range(1, n_sites // 2 + 1) for m in _blocks(n_sites, alpha)]
    masks += [rng.random(n_sites) < 0.5 for _ in range(4)]
    for in_a in masks:
        bound = convac_rank_bound((n_sites,), local_dim, channels, kernel, pooling, in_a)
        for psi in amplitudes:
            assert _rank(psi, in_a, local_dim) <= bound, in_a


def test_convac_block_ranks_grow_while_block_is_below_depth_times_kernel():
    # L * K = 4: interior blocks of 1..4 sites have ranks 3, 9, 23, 31 (then 32).
    n_sites, local_dim, channels, kernel = 10, 3, (3, 3), 2
    net = _gaussian(OverlappingConvACNetwork((n_sites,), local_dim, channels, kernel, 1), 1)
    psi = enumerate_amplitudes(net, n_sites, local_dim)[0]
    ranks = [_rank(psi, _blocks(n_sites, alpha)[1], local_dim)
             for alpha in range(1, len(channels) * kernel + 1)]
    assert ranks[0] == local_dim
    assert all(b > a for a, b in zip(ranks, ranks[1:])), ranks


def test_convac_kernel_one_rank_is_the_folded_top_dimension():
    # Without overlaps every site feeds one chain of maps into the global
    # product, a delta of the folded dimension 1 + r_L (the constant channel
    # included): rank <= min(1 + r_L, M^|A|, M^|B|), which the DP returns and
    # generic weights reach.
    n_sites, local_dim, channels = 10, 3, (2, 3)
    net = _orthogonal(OverlappingConvACNetwork((n_sites,), local_dim, channels, 1, 2), 0)
    amplitudes = enumerate_amplitudes(net, n_sites, local_dim)
    rng = np.random.default_rng(1)
    masks = [m for alpha in (1, 2, 5) for m in _blocks(n_sites, alpha)]
    masks += [rng.random(n_sites) < 0.5 for _ in range(3)]
    for in_a in masks:
        bound = convac_rank_bound((n_sites,), local_dim, channels, 1, None, in_a)
        n_a = int(in_a.sum())
        assert bound == min(1 + channels[-1], local_dim ** min(n_a, n_sites - n_a))
        for psi in amplitudes:
            assert _rank(psi, in_a, local_dim) == bound


def test_rac_depth_one_rank_is_at_most_the_folded_hidden_dimension():
    n_steps, local_dim, hidden = 8, 3, 2
    net = _gaussian(DeepRACNetwork(n_steps, local_dim, (hidden,), 2), 0)
    amplitudes = enumerate_amplitudes(net, n_steps, local_dim)
    for n_a in range(1, n_steps):
        in_a = np.arange(n_steps) >= n_steps - n_a
        bound = rac_rank_bound(n_steps, local_dim, (hidden,), in_a)
        assert bound == min(1 + hidden, local_dim**n_a)
        for psi in amplitudes:
            assert _rank(psi, in_a, local_dim) <= bound


def test_rac_depth_two_ranks_between_theorem_two_and_the_min_cut():
    n_steps, local_dim, hidden = 8, 3, 3
    for seed in (0, 2):
        net = _orthogonal(DeepRACNetwork(n_steps, local_dim, (hidden, hidden), 2), seed)
        amplitudes = enumerate_amplitudes(net, n_steps, local_dim)
        for n_a in (1, 2, 3):
            in_a = np.arange(n_steps) >= n_steps - n_a
            lower = rac_rank_lower_bound(hidden, local_dim, n_a)
            upper = rac_rank_bound(n_steps, local_dim, (hidden, hidden), in_a)
            for psi in amplitudes:
                assert lower <= _rank(psi, in_a, local_dim) <= upper
        rng = np.random.default_rng(seed)
        for _ in range(4):
            in_a = rng.random(n_steps) < 0.5
            upper = rac_rank_bound(n_steps, local_dim, (hidden, hidden), in_a)
            for psi in amplitudes:
                assert _rank(psi, in_a, local_dim) <= upper


# ---------------------------------------------------------------------------
# Depth-1 RAC as an MPS.


def test_mps_entropies_match_enumeration():
    n_steps, local_dim = 8, 3
    net = _gaussian(DeepRACNetwork(n_steps, local_dim, (3,), 3), 0)
    with torch.no_grad():
        net.norms[0].running_mean.normal_()
        net.norms[0].running_var.uniform_(0.5, 2.0)
    amplitudes = enumerate_amplitudes(net, n_steps, local_dim)
    for alpha in (1.0, 2.0):
        entropies = rac_mps_entropies(net, alpha=alpha)
        assert entropies.shape == (3, n_steps - 1)
        for y, psi in enumerate(amplitudes):
            exact = [
                entropy_from_spectrum(
                    spectrum_from_amplitudes(psi, np.arange(n_steps) >= n_steps - n, local_dim),
                    alpha=alpha,
                )
                for n in range(1, n_steps)
            ]
            np.testing.assert_allclose(entropies[y], exact, rtol=0, atol=1e-8)
    assert np.max(entropies) > 0.1


def test_mps_spectra_match_enumeration_and_handle_long_chains():
    net = _gaussian(DeepRACNetwork(6, 2, (2,), 1), 3)
    psi = enumerate_amplitudes(net, 6, 2)[0]
    spectra = mps_block_spectra(*rac_to_mps(net), [0, 2, 6])[0]
    dense = spectrum_from_amplitudes(psi, np.arange(6) >= 4, 2)
    # The MPS spectrum stops at its bond dimension; the dense SVD keeps round-off beyond.
    np.testing.assert_allclose(spectra[1], dense[:spectra[1].size], atol=1e-12)
    np.testing.assert_allclose(dense[spectra[1].size:], 0.0, atol=1e-12)
    np.testing.assert_allclose(spectra[0], [1.0])
    np.testing.assert_allclose(spectra[2], [1.0])
    long = rac_mps_entropies(DeepRACNetwork(500, 3, (3,), 2), n_a=[1, 250, 499])
    assert np.all(np.isfinite(long))


def test_mps_rejects_deep_networks():
    with pytest.raises(ValueError, match="depth-1"):
        rac_to_mps(DeepRACNetwork(4, 2, (2, 2), 1))
