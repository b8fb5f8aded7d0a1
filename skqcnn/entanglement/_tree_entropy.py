"""Exact entanglement of tree networks for any bipartition.

Two exact methods, both run once per distinct subtree pattern:

* **Schmidt spectrum.** Every subtree tensor is kept as
  ``Phi[s_A, s_B, i] = sum_ab U_A[s_A, a] U_B[s_B, b] T[a, b, i]`` with
  isometries ``U_A``, ``U_B`` that are never formed, only the core ``T``.
  Subtrees with physical leaves on one side only are Gram matrices
  (``G <- (A^L G A^L^T) * (A^R G A^R^T)``, ``O(D^3)``) and get a square-root
  factor when they meet the other side. Pooling multiplies cores channel by channel
  and re-compresses the ``a`` and ``b`` dimensions by SVD, which keeps them at
  the ranks of the subtree's matricisations. Its cost is polynomial in the
  minimum-cut weight, which is checked first.
* **Replica trick** for integer Renyi orders (``DESIGN.md`` section 2): a
  tensor with ``2 alpha`` channel indices per subtree. Its cost is
  ``D**(2 alpha + 1)`` per subtree pattern whatever the cut.

Every pattern is stored after its parent's matrix. Where a level has distinct
left and right matrices, patterns are also told apart by which child of their
parent they are (see :class:`~skqcnn.entanglement._tree.SubtreePatterns`), so
that this matrix is well defined; there are then at most twice as many.
"""

import math

import numpy as np

from ._mincut import CutCosts
from ._spectra import entropy_from_spectrum, log_base, normalised_spectrum, positive_order
from ._tree import (
    LABEL_A,
    LABEL_B,
    GramTable,
    SubtreePatterns,
    parity_split,
    partition_labels,
)

MAX_CORE_ELEMENTS = 2**25
"""Largest core (float64 values) the spectrum method forms: 256 MiB."""

MAX_REPLICA_ELEMENTS = 2**26
"""Largest number of float64 values the replica method holds at once: 512 MiB."""

DEFAULT_MAX_CUT_DIM = 4096

_EPS = np.finfo(np.float64).eps
_SIDE_A, _SIDE_B, _SIDE_NONE = 0, 1, 2


def tree_schmidt_spectra(
    network, in_a, *, classes=None, max_cut_dim=DEFAULT_MAX_CUT_DIM
):
    """Exact Schmidt spectra of tree-network states across a bipartition.

    Works for any bipartition of the physical leaves. The method's cost is
    polynomial in the minimum-cut weight (the Schmidt-rank bound of
    :func:`tree_min_cut`), so the bound is checked first: above
    ``max_cut_dim``, or when an intermediate core would exceed
    ``MAX_CORE_ELEMENTS`` float64 values (``2**25``), a ValueError points to
    Renyi entropies of integer order, which stay exact at any cut.

    Parameters
    ----------
    network : TreeNetwork
        The network whose class states are analysed.
    in_a : array-like of bool, shape (n_leaves,)
        True for the leaves of subsystem A. Fixed leaves must be False; both
        sides must hold a physical leaf.
    classes : sequence of int or None, default=None
        Readout rows to analyse; None means all.
    max_cut_dim : int, default=4096
        Largest minimum-cut weight accepted.

    Returns
    -------
    spectra : list of ndarray
        One per selected class: the squared Schmidt coefficients of the
        normalised state, descending, summing to 1, numerical zeros (below
        ``1e-14`` of the largest) dropped.

    Raises
    ------
    ValueError
        For an invalid bipartition, or a cut too large for the method.

    Examples
    --------
    A two-leaf network whose state is the Bell pair ``|00> + |11>``:

    >>> import numpy as np
    >>> from skqcnn.entanglement import TreeNetwork, tree_schmidt_spectra
    >>> bell = TreeNetwork(2, [np.eye(2)], np.array([[1.0, 1.0]]))
    >>> tree_schmidt_spectra(bell, [True, False])
    [array([0.5, 0.5])]
    """
    bipartition = _Bipartition(network, in_a)
    selected = _class_indices(classes, network.n_classes)
    obstacle = bipartition.spectrum_obstacle(max_cut_dim)
    if obstacle is not None:
        raise ValueError(obstacle + " " + _REPLICA_HINT)
    return bipartition.spectra(selected)


def tree_renyi_entropies(network, in_a, alpha, *, classes=None, base=None):
    """Exact Renyi entropies of integer order by the replica trick.

    ``Tr rho_A**alpha`` is a contraction of ``2 alpha`` copies of the network,
    carried up the tree as one tensor with ``2 alpha`` channel indices per
    distinct subtree (``DESIGN.md`` section 2), and divided by
    ``(Tr rho)**alpha`` from the Gram recursion. Log scales are tracked, so
    thousands of leaves neither overflow nor underflow. The cost does not
    depend on the cut: about ``D**(2 alpha + 1)`` per distinct subtree.

    Parameters
    ----------
    network : TreeNetwork
        The network whose class states are analysed.
    in_a : array-like of bool, shape (n_leaves,)
        True for the leaves of subsystem A.
    alpha : int
        Renyi order, an integer >= 2.
    classes : sequence of int or None, default=None
        Readout rows to analyse; None means all.
    base : float or None, default=None
        Logarithm base; None means nats.

    Returns
    -------
    entropies : ndarray of shape (n_selected_classes,)
        Renyi-``alpha`` entropy of each selected class's normalised state.

    Raises
    ------
    ValueError
        For an invalid bipartition or order, or when the replica tensors
        would hold more than ``MAX_REPLICA_ELEMENTS`` float64 values
        (``2**26``, 512 MiB) at once.

    Examples
    --------
    >>> import numpy as np
    >>> from skqcnn.entanglement import TreeNetwork, tree_renyi_entropies
    >>> bell = TreeNetwork(2, [np.eye(2)], np.array([[1.0, 1.0]]))
    >>> tree_renyi_entropies(bell, [True, False], alpha=2, base=2)
    array([1.])
    """
    order = _integer_order(alpha)
    if order is None:
        raise ValueError(
            f"The replica method needs an integer alpha >= 2, got {alpha!r}; use "
            "tree_entropies or tree_schmidt_spectra for other orders."
        )
    bipartition = _Bipartition(network, in_a)
    selected = _class_indices(classes, network.n_classes)
    obstacle = bipartition.replica_obstacle(order)
    if obstacle is not None:
        raise ValueError(obstacle)
    return bipartition.renyi(order, selected) / log_base(base)


def tree_entropies(
    network, in_a, *, alpha=1, classes=None, base=None, max_cut_dim=DEFAULT_MAX_CUT_DIM
):
    """Exact von Neumann or Renyi entanglement entropies across a bipartition.

    Strategy: when the minimum-cut weight is at most ``max_cut_dim`` (and the
    cores fit in ``MAX_CORE_ELEMENTS``) the exact Schmidt spectrum is computed
    and any order is available. Otherwise an integer order ``alpha >= 2`` uses
    the replica trick, which is exact at any cut; other orders raise.

    Parameters
    ----------
    network : TreeNetwork
        The network whose class states are analysed.
    in_a : array-like of bool, shape (n_leaves,)
        True for the leaves of subsystem A.
    alpha : float, default=1
        Renyi order; 1 is von Neumann, ``np.inf`` the min-entropy.
    classes : sequence of int or None, default=None
        Readout rows to analyse; None means all.
    base : float or None, default=None
        Logarithm base; None means nats.
    max_cut_dim : int, default=4096
        Largest minimum-cut weight for the spectrum method.

    Returns
    -------
    entropies : ndarray of shape (n_selected_classes,)
        Entropy of each selected class's normalised state.

    Raises
    ------
    ValueError
        For ``alpha <= 0``, an invalid bipartition, a non-integer order at a
        cut beyond ``max_cut_dim``, or replica tensors beyond
        ``MAX_REPLICA_ELEMENTS``.

    Examples
    --------
    >>> import numpy as np
    >>> from skqcnn.entanglement import TreeNetwork, tree_entropies
    >>> bell = TreeNetwork(2, [np.eye(2)], np.array([[1.0, 1.0]]))
    >>> tree_entropies(bell, [True, False], base=2)
    array([1.])
    >>> tree_entropies(bell, [True, False], alpha=2, base=2)
    array([1.])
    """
    alpha = positive_order(alpha)
    bipartition = _Bipartition(network, in_a)
    selected = _class_indices(classes, network.n_classes)
    obstacle = bipartition.spectrum_obstacle(max_cut_dim)
    if obstacle is None:
        spectra = bipartition.spectra(selected)
        return np.array([entropy_from_spectrum(p, alpha, base) for p in spectra])
    order = _integer_order(alpha)
    if order is None:
        raise ValueError(
            f"{obstacle} Renyi entropies of order alpha={alpha!r} need the spectrum. "
            + _REPLICA_HINT
        )
    replica_obstacle = bipartition.replica_obstacle(order)
    if replica_obstacle is not None:
        raise ValueError(f"{obstacle} {replica_obstacle}")
    return bipartition.renyi(order, selected) / log_base(base)


_REPLICA_HINT = (
    "Integer Renyi orders stay exact at any cut: use alpha=2 (the replica trick, "
    "tree_renyi_entropies), or raise max_cut_dim."
)


class _Bipartition:
    """What both exact methods share for one network and one bipartition."""

    def __init__(self, network, in_a):
        self.network = network
        labels = partition_labels(in_a, network.fixed_leaves)
        self.patterns = SubtreePatterns.from_labels(labels, parity_split(network))
        self.costs = CutCosts.from_labels(network.bond_dims, labels, self.patterns)
        self.grams = GramTable.from_network(network)
        n_a = self.patterns.count(LABEL_A)
        n_b = self.patterns.count(LABEL_B)
        self.mixed = [(a > 0) & (b > 0) for a, b in zip(n_a, n_b)]
        self.side = [
            np.where(a > 0, _SIDE_A, np.where(b > 0, _SIDE_B, _SIDE_NONE))
            for a, b in zip(n_a, n_b)
        ]
        self.gram_id = [
            gram_ids[first]
            for gram_ids, first in zip(self.grams.patterns.ids, self.patterns.first)
        ]

    # -- feasibility ------------------------------------------------------

    def spectrum_obstacle(self, max_cut_dim):
        """Why the spectrum method is out of reach, or None."""
        bound = self.costs.bound
        if bound > max_cut_dim:
            return (
                f"The minimum cut of this bipartition has weight {_format_int(bound)} "
                f"(the Schmidt-rank bound), above max_cut_dim={max_cut_dim}."
            )
        largest = self._largest_core()
        if largest > MAX_CORE_ELEMENTS:
            return (
                f"The minimum cut has weight {bound}, but the spectrum method would "
                f"form a core of {_format_int(largest)} float64 values, above "
                f"MAX_CORE_ELEMENTS={MAX_CORE_ELEMENTS}."
            )
        return None

    def _largest_core(self):
        """Upper bound on the largest core the spectrum method forms.

        The ``a`` rank of a subtree is at most its cut with the leg above it on
        side B, the ``b`` rank at most its cut with that leg on side A.
        """
        dims, patterns, costs = self.network.bond_dims, self.patterns, self.costs
        n_levels = patterns.n_levels
        shapes, largest = {}, 0
        for level in range(1, n_levels + 1):
            current = {}
            for k in np.flatnonzero(self.mixed[level]).tolist():
                a1, b1 = self._core_shape(level - 1, patterns.left[level][k], shapes)
                a2, b2 = self._core_shape(level - 1, patterns.right[level][k], shapes)
                width = dims[level] if level < n_levels else 1
                largest = max(largest, a1 * a2 * b1 * b2 * width)
                cost_a, cost_b = costs.pooled[level][k]
                current[k] = (min(a1 * a2, cost_b), min(b1 * b2, cost_a))
            shapes = current
        return largest

    def _core_shape(self, level, pattern, mixed_shapes):
        if self.mixed[level][pattern]:
            return mixed_shapes[pattern]
        cost_a, cost_b, _ = self.costs.edge[level][pattern]
        side = self.side[level][pattern]
        return {_SIDE_A: (cost_b, 1), _SIDE_B: (1, cost_a)}.get(side, (1, 1))

    def replica_obstacle(self, alpha):
        """Why the replica method for this order is out of reach, or None."""
        dims = self.network.bond_dims
        n_levels = self.patterns.n_levels
        n_mixed = [int(m.sum()) for m in self.mixed]
        held = 0
        for level in range(1, n_levels + 1):
            if not n_mixed[level]:
                continue
            width = max(dims[level : level + 2]) if level < n_levels else dims[level]
            held = max(
                held,
                n_mixed[level - 1] * dims[level] ** (2 * alpha)
                + (n_mixed[level] + 3) * width ** (2 * alpha),
            )
        if held > MAX_REPLICA_ELEMENTS:
            widest = max(dims[1:])
            return (
                f"The replica method for alpha={alpha} carries tensors of up to "
                f"{widest}**{2 * alpha} values and would hold about "
                f"{_format_int(held)} float64 values at once, above "
                f"MAX_REPLICA_ELEMENTS={MAX_REPLICA_ELEMENTS}; lower alpha or the "
                "bond dimensions."
            )
        return None

    # -- Schmidt spectra --------------------------------------------------

    def spectra(self, classes):
        """Schmidt spectra of the selected classes (the cut is assumed feasible)."""
        patterns, pairs = self.patterns, self.network.matrix_pairs
        n_levels = patterns.n_levels
        cores = {}
        for level in range(1, n_levels):
            factors, current = {}, {}
            for k in np.flatnonzero(self.mixed[level]).tolist():
                left = self._child_core(
                    level - 1, patterns.left[level][k], cores, factors
                )
                right = self._child_core(
                    level - 1, patterns.right[level][k], cores, factors
                )
                parent = pairs[level][patterns.parity[level][k]]
                current[k] = _pool_cores(left, right) @ parent.T
            cores = current
        left = self._child_core(n_levels - 1, patterns.left[-1][0], cores, {})
        right = self._child_core(n_levels - 1, patterns.right[-1][0], cores, {})
        return [self._root_spectrum(left, right, y) for y in classes]

    def _child_core(self, level, pattern, mixed_cores, factors):
        """Core of a child after its parent's matrix, memoised in ``factors``."""
        if self.mixed[level][pattern]:
            return mixed_cores[pattern]
        if pattern not in factors:
            factors[pattern] = self._gram_core(level, pattern)
        return factors[pattern]

    def _gram_core(self, level, pattern):
        """Core ``T[a, b, i]`` of a one-sided subtree after its parent's matrix."""
        factor = self.grams.factor[level][self.gram_id[level][pattern]]
        core = _compress_leading(factor.T)
        if self.side[level][pattern] == _SIDE_A:
            return core[:, None, :]
        return core[None, :, :]

    def _root_spectrum(self, left, right, cls):
        a1, b1, width = left.shape
        a2, b2, _ = right.shape
        product = (left * self.network.readout[cls]).reshape(-1, width) @ right.reshape(
            -1, width
        ).T
        matrix = (
            product.reshape(a1, b1, a2, b2).transpose(0, 2, 1, 3).reshape(a1 * a2, -1)
        )
        return normalised_spectrum(np.linalg.svd(matrix, compute_uv=False) ** 2)

    # -- replica trick ----------------------------------------------------

    def renyi(self, alpha, classes):
        """Renyi-alpha entropies in nats (the replica cost is assumed feasible)."""
        patterns, pairs, grams = self.patterns, self.network.matrix_pairs, self.grams
        n_levels = patterns.n_levels
        tensors = {}
        for level in range(1, n_levels + 1):
            closed, current = {}, {}
            for k in np.flatnonzero(self.mixed[level]).tolist():
                left, log_left = self._child_replica(
                    level - 1, patterns.left[level][k], alpha, tensors, closed
                )
                right, log_right = self._child_replica(
                    level - 1, patterns.right[level][k], alpha, tensors, closed
                )
                pooled = left * right
                scale = np.abs(pooled).max()
                if scale > 0:
                    pooled /= scale
                # Rounding noise outside the span of the channel states would
                # be amplified by a matrix that cancels the states themselves.
                span = grams.span[level][self.gram_id[level][k]]
                if span.shape[1] < span.shape[0]:
                    pooled = _apply_to_every_axis(pooled, span.T)
                if level < n_levels:
                    parent = pairs[level][patterns.parity[level][k]]
                    pooled = _apply_to_every_axis(pooled, _through(span, parent))
                current[k] = (pooled, log_left + log_right + np.log(scale))
            tensors = current
        root, log_root = tensors[0]
        readout = self.network.readout[classes]
        log_traces = grams.log_squared_norms(readout)
        if not np.all(np.isfinite(log_traces)):
            raise ValueError("The state has zero or non-finite norm.")
        rows = _through(grams.span[-1][0], readout)
        entropies = []
        for row, log_trace in zip(rows, log_traces):
            power = _contract_every_axis(root, row)
            if not power > 0:
                raise ValueError(
                    f"Tr rho_A**{alpha} came out as {power:.3g}: the contraction lost "
                    "all precision."
                )
            log_power = np.log(power) + log_root
            # Round-off of a product state must not read as a negative entropy.
            entropy = (log_power - alpha * log_trace) / (1 - alpha)
            entropies.append(entropy if entropy > 0 else 0.0)
        return np.array(entropies)

    def _child_replica(self, level, pattern, alpha, mixed_tensors, closed):
        """Replica tensor and log scale of a child after its parent's matrix."""
        if self.mixed[level][pattern]:
            return mixed_tensors[pattern]
        if pattern not in closed:
            gram_id = self.gram_id[level][pattern]
            factor = self.grams.factor[level][gram_id]
            closed[pattern] = (
                _closed_replica(factor @ factor.T, self.side[level][pattern], alpha),
                alpha * self.grams.log_scale[level][gram_id],
            )
        return closed[pattern]


def _pool_cores(left, right):
    """Channel-wise product of two cores, re-compressed on ``a`` and on ``b``."""
    a1, b1, width = left.shape
    a2, b2, _ = right.shape
    product = left[:, None, :, None, :] * right[None, :, None, :, :]
    core = _compress_leading(product.reshape(a1 * a2, b1 * b2, width))
    core = _compress_leading(core.transpose(1, 0, 2)).transpose(1, 0, 2)
    norm = np.linalg.norm(core)
    return core / norm if norm > 0 else core


def _compress_leading(core):
    """Replace the leading index by the row space it spans (an isometry on it).

    Singular values below ``max(shape) * eps`` of the largest are numerical
    zeros and are dropped, the rank convention of ``numpy.linalg.matrix_rank``.
    """
    n_rows = core.shape[0]
    if n_rows == 1:
        return core
    matrix = core.reshape(n_rows, -1)
    _, singular, right = np.linalg.svd(matrix, full_matrices=False)
    rank = max(1, int(np.sum(singular > singular[0] * max(matrix.shape) * _EPS)))
    return (singular[:rank, None] * right[:rank]).reshape((rank,) + core.shape[1:])


def _through(span, matrix):
    """``matrix`` acting on span coordinates, or unchanged when the span is full."""
    return matrix @ span if span.shape[1] < span.shape[0] else matrix


def _closed_replica(gram, side, alpha):
    """Replica tensor of a one-sided subtree from its Gram matrix.

    Indices are ``(ket_1..ket_alpha, bra_1..bra_alpha)``. On side B each copy's
    ket pairs with its own bra, on side A ket_k pairs with bra_{k+1}.
    """
    shift = 1 if side == _SIDE_A else 0
    operands = []
    for k in range(alpha):
        operands += [gram, [k, alpha + (k + shift) % alpha]]
    return np.einsum(*operands, list(range(2 * alpha)))


def _apply_to_every_axis(tensor, matrix):
    """Apply ``matrix`` to every index of a tensor with equal dimensions.

    Each step is one matrix product that transforms the leading index and
    moves it last, so after ``ndim`` steps the order is restored.
    """
    n_axes, d_in = tensor.ndim, matrix.shape[1]
    out = tensor
    for _ in range(n_axes):
        out = out.reshape(d_in, -1).T @ matrix.T
    return out.reshape((matrix.shape[0],) * n_axes)


def _contract_every_axis(tensor, vector):
    out = tensor
    for _ in range(tensor.ndim):
        out = vector @ out.reshape(vector.size, -1)
    return float(out[0])


def _class_indices(classes, n_classes):
    if classes is None:
        return np.arange(n_classes)
    selected = np.atleast_1d(np.asarray(classes))
    if (
        selected.ndim != 1
        or not np.issubdtype(selected.dtype, np.integer)
        or np.any((selected < 0) | (selected >= n_classes))
    ):
        raise ValueError(
            f"classes must be integers in [0, {n_classes}), got {classes!r}."
        )
    return selected


def _integer_order(alpha):
    """``alpha`` as an int when it is an integer >= 2, else None."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        return None
    if np.isfinite(value) and value >= 2 and value.is_integer():
        return int(value)
    return None


def _format_int(value):
    """An exact integer, or its order of magnitude when it is very long."""
    if value < 10**30:
        return str(value)
    return f"about 10**{math.log10(value):.1f}"
