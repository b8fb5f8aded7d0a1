"""Exact entanglement of tree networks for any bipartition.

Two exact methods, both run once per distinct subtree pattern:

* **Schmidt spectrum.** Every subtree tensor is kept as
  ``Phi[s_A, s_B, i] = sum_ab U_A[s_A, a] U_B[s_B, b] T[a, b, i]`` with
  isometries ``U_A``, ``U_B`` that are never formed, only the core ``T``.
  Subtrees with physical leaves on one side only are Gram matrices
  (``G <- (A^L G A^L^T) * (A^R G A^R^T)``, ``O(D^3)``) and get a square-root
  factor when they meet the other side. Pooling multiplies cores channel by
  channel and re-compresses the ``a`` and ``b`` dimensions by SVD, which keeps
  them at the ranks of the subtree's matricisations. Its cost is dominated by
  SVDs whose sides are bounded by the minimum-cut weight; it is estimated
  (floating-point operations and memory) before anything is computed.
* **Replica trick** for integer Renyi orders (``docs/theory.rst``, section "Replica trick"):
  ``Tr rho_A**alpha`` as a network of ``2 alpha`` copies of the tree, each
  distinct mixed subtree a tensor (or, when that tensor would be too large, a
  small network) with ``2 alpha`` channel indices. Contraction orders come
  from opt_einsum's path optimisers, with their cost known before the
  contraction runs. The cost does not depend on the cut weight.

Every pattern is stored after its parent's matrix. Where a level has distinct
left and right matrices, patterns are also told apart by which child of their
parent they are (see :class:`~skqcnn.entanglement._tree.SubtreePatterns`), so
that this matrix is well defined; there are then at most twice as many.
"""

import itertools
import math
import numbers
import string

import numpy as np
import opt_einsum as oe

from ._mincut import CutCosts
from ._spectra import (
    entropy_from_spectrum,
    log_base,
    normalised_spectrum,
    positive_order,
    relative_tolerance,
)
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
"""Largest number of float64 values one replica tensor may hold: 512 MiB."""

MAX_REPLICA_FLOPS = 2**41
"""Largest planned operation count of a replica contraction (about 2.2e12)."""

DEFAULT_MAX_CUT_DIM = 4096

_EPS = np.finfo(np.float64).eps
_SIDE_A, _SIDE_B, _SIDE_NONE = 0, 1, 2

# A replica tensor this small is always formed densely (2**20 values, 8 MiB).
_SMALL_REPLICA_ELEMENTS = 2**20
# Networks with more operands are formed densely when they fit.
_MAX_LAZY_OPERANDS = 24
# Operations charged per numpy call of a planned contraction, so that plans
# sliced into many small steps pay for their Python overhead (tens of us).
_CALL_FLOPS = 2**16
# Results formed on every pass of a loop are sliced down to this many values
# (2 MiB) where that adds at most a fraction _LOOP_SLACK - 1 of operations.
_CACHE_ELEMENTS = 2**18
_LOOP_SLACK = 1.25
# Batched sums go to numpy.matmul when both kept sides have this many values.
_MIN_GEMM_SIDE = 16
# Exact dynamic-programming paths up to this many operands, greedy beyond
# (opt_einsum's randomised optimisers reseed the global ``random`` module).
_MAX_DP_OPERANDS = 20
# Below this many operations the spectrum method is never refused.
_MIN_SPECTRUM_BUDGET = 2**30


def tree_schmidt_spectra(
    network, in_a, *, classes=None, max_cut_dim=DEFAULT_MAX_CUT_DIM, tol=None
):
    """Exact Schmidt spectra of tree-network states across a bipartition.

    Works for any bipartition of the physical leaves. The work is estimated
    before anything is computed, and refused with a ValueError that points to
    Renyi entropies of integer order (exact at any cut) when

    - the minimum-cut weight (the Schmidt-rank bound of :func:`tree_min_cut`)
      exceeds ``max_cut_dim``;
    - the estimated work exceeds that of one Schmidt decomposition of rank
      ``max_cut_dim``, ``4 * max_cut_dim**3`` floating-point operations
      (``2.7e11`` for the default 4096; never less than ``2**30``). The
      work is dominated by one SVD per class of a matrix whose sides are
      each at most the product of two subtree ranks and whose rank is at
      most the cut weight: about ``4 m n**2`` operations for an ``m x n``
      matrix, ``m >= n``. Ten classes at a cut of weight ``3**7 = 2187`` (a
      4x4 q-CNN with local dimension 3 and ``channels=("linear", 4)``, root
      matrix ``2187 x 3159``) need about ``6e11``: refused at the default,
      accepted for one class;
    - an intermediate core would exceed ``MAX_CORE_ELEMENTS`` float64 values
      (``2**25``).

    Parameters
    ----------
    network : TreeNetwork
        The network whose class states are analysed.
    in_a : array-like of bool, shape (n_leaves,)
        True for the leaves of subsystem A. Fixed leaves must be False; both
        sides must hold a physical leaf.
    classes : array-like of int or None, default=None
        Readout rows (integer indices in ``[0, n_classes)``) to analyse; None
        means all.
    max_cut_dim : int, default=4096
        Largest minimum-cut weight accepted; it also sets the work budget
        above.
    tol : float or None, default=None
        None returns the whole computed spectrum: its length is the smaller
        side of the final SVD or the minimum-cut weight, whichever is less
        (beyond the weight the rank bound makes every value zero), with
        exact zeros kept and nothing else dropped. Intermediate compressions drop
        only directions below ``max(shape) * eps`` of their largest singular
        value (the ``numpy.linalg.matrix_rank`` convention), so values below
        about ``1e-15`` of the largest are round-off. A float in ``[0, 1)``
        drops the values at or below ``tol`` times the largest.

    Returns
    -------
    spectra : list of ndarray
        One per selected class: the squared Schmidt coefficients of the
        normalised state, descending, summing to 1.

    Raises
    ------
    ValueError
        For an invalid bipartition, class index, ``max_cut_dim`` or ``tol``,
        or a cut too costly for the method.
    TypeError
        For a ``max_cut_dim``, ``tol`` or ``classes`` of the wrong type.

    Examples
    --------
    A two-leaf network whose state is the Bell pair ``|00> + |11>``:

    >>> import numpy as np
    >>> from skqcnn.entanglement import TreeNetwork, tree_schmidt_spectra
    >>> bell = TreeNetwork(2, [np.eye(2)], np.array([[1.0, 1.0]]))
    >>> tree_schmidt_spectra(bell, [True, False])
    [array([0.5, 0.5])]
    """
    max_cut_dim = _checked_max_cut_dim(max_cut_dim)
    tol = relative_tolerance(tol)
    bipartition = _Bipartition(network, in_a)
    selected = class_indices(classes, network.n_classes)
    obstacle = bipartition.spectrum_obstacle(max_cut_dim, selected.size)
    if obstacle is not None:
        raise ValueError(obstacle + " " + _REPLICA_HINT)
    return bipartition.spectra(selected, tol)


def tree_renyi_entropies(network, in_a, alpha, *, classes=None, base=None):
    """Exact Renyi entropies of integer order by the replica trick.

    ``Tr rho_A**alpha`` is a contraction of ``2 alpha`` copies of the network,
    carried up the tree with ``2 alpha`` channel indices per distinct subtree
    (``docs/theory.rst``, section "Replica trick"), and divided by ``(Tr rho)**alpha`` from the
    Gram recursion. Log scales are tracked, so thousands of leaves neither
    overflow nor underflow. The cost does not depend on the cut weight.

    A subtree's tensor has ``D**(2 alpha)`` values (``D`` the bond dimension
    above it). It is formed when it has at most ``2**20`` values (from its
    children in a fixed order, optimal for dense children), or once its
    network exceeds 24 tensors and it fits in ``MAX_REPLICA_ELEMENTS``
    (``2**26``); otherwise it stays a network of the matrices and Gram
    matrices it is made of. The selected classes are one more index of the
    last contraction, so that everything that does not involve the readout
    is done once. Networks are contracted in the order with the fewest
    operations from opt_einsum (exact dynamic programming up to 20 tensors,
    greedy beyond); where an intermediate would exceed
    ``MAX_REPLICA_ELEMENTS``, an index is sliced locally, at the step that
    sums it, so that the operation count stays that of the order. Orders,
    peak memory and operation counts are known before anything is
    contracted. For the ``"up_down"`` cut of a 16x16 q-CNN (two mixed
    subtree levels, ``alpha=2``, 10 classes) this plans ``2.0e9`` operations
    with ``D = 65`` (``channels=("linear", 8)``) and ``5.5e10`` with
    ``D = 145`` (``("linear", 18)``). Refused: more than
    ``MAX_REPLICA_FLOPS`` operations (``2**41``), or intermediates above
    ``MAX_REPLICA_ELEMENTS`` that slicing cannot reduce.

    Parameters
    ----------
    network : TreeNetwork
        The network whose class states are analysed.
    in_a : array-like of bool, shape (n_leaves,)
        True for the leaves of subsystem A.
    alpha : int
        Renyi order, an integer >= 2.
    classes : array-like of int or None, default=None
        Readout rows (integer indices) to analyse; None means all.
    base : float or None, default=None
        Logarithm base; None means nats.

    Returns
    -------
    entropies : ndarray of shape (n_selected_classes,)
        Renyi-``alpha`` entropy of each selected class's normalised state.

    Raises
    ------
    ValueError
        For an invalid bipartition, order or class index.
    ContractionTooLarge
        A :class:`ValueError`: the planned contraction would hold more than
        ``MAX_REPLICA_ELEMENTS`` float64 values at once or take more than
        ``MAX_REPLICA_FLOPS`` operations (``2**41``).

    Examples
    --------
    >>> import numpy as np
    >>> from skqcnn.entanglement import TreeNetwork, tree_renyi_entropies
    >>> bell = TreeNetwork(2, [np.eye(2)], np.array([[1.0, 1.0]]))
    >>> tree_renyi_entropies(bell, [True, False], alpha=2, base=2)
    array([1.])
    """
    order = _integer_order(positive_order(alpha))
    if order is None:
        raise ValueError(
            f"The replica method needs an integer alpha >= 2, got {alpha!r}; use "
            "tree_entropies or tree_schmidt_spectra for other orders."
        )
    scale = log_base(base)
    bipartition = _Bipartition(network, in_a)
    selected = class_indices(classes, network.n_classes)
    plan = bipartition.replica_plan(order, selected)
    obstacle = _replica_obstacle(plan)
    if obstacle is not None:
        raise ContractionTooLarge(obstacle)
    return bipartition.renyi(plan, selected) / scale


def tree_entropies(
    network,
    in_a,
    *,
    alpha=1,
    classes=None,
    base=None,
    max_cut_dim=DEFAULT_MAX_CUT_DIM,
    tol=None,
):
    """Exact von Neumann or Renyi entanglement entropies across a bipartition.

    Strategy: when the Schmidt spectrum is within the limits of
    :func:`tree_schmidt_spectra` (cut weight and work bounded through
    ``max_cut_dim``) it is computed and any order is available. Otherwise an
    integer order ``alpha >= 2`` uses the replica trick
    (:func:`tree_renyi_entropies`), which is exact at any cut; other orders
    raise a ValueError that names the weight or the work. Both decisions are
    taken from estimates, before the work starts.

    Parameters
    ----------
    network : TreeNetwork
        The network whose class states are analysed.
    in_a : array-like of bool, shape (n_leaves,)
        True for the leaves of subsystem A.
    alpha : float, default=1
        Renyi order, ``0 <= alpha <= inf``; 1 is von Neumann, ``np.inf`` the
        min-entropy, 0 the Hartley entropy (the log of the number of positive
        spectrum values: pass ``tol`` for a numerical rank).
    classes : array-like of int or None, default=None
        Readout rows (integer indices) to analyse; None means all.
    base : float or None, default=None
        Logarithm base; None means nats.
    max_cut_dim : int, default=4096
        Largest minimum-cut weight for the spectrum method, which also sets
        its work budget (see :func:`tree_schmidt_spectra`).
    tol : float or None, default=None
        Spectrum values at or below ``tol`` times the largest are dropped
        before the entropy (see :func:`tree_schmidt_spectra`); it matters for
        ``alpha < 1`` only at the level of round-off, and for ``alpha=0``
        it decides the rank. Not used by the replica trick.

    Returns
    -------
    entropies : ndarray of shape (n_selected_classes,)
        Entropy of each selected class's normalised state.

    Raises
    ------
    ValueError
        For a negative or NaN ``alpha``, an invalid bipartition or class
        index, or a non-integer order beyond the spectrum's limits.
    ContractionTooLarge
        A :class:`ValueError`: an integer order whose replica contraction is
        beyond its limits.
    TypeError
        For an ``alpha``, ``max_cut_dim``, ``tol`` or ``classes`` of the wrong
        type.

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
    max_cut_dim = _checked_max_cut_dim(max_cut_dim)
    tol = relative_tolerance(tol)
    scale = log_base(base)
    bipartition = _Bipartition(network, in_a)
    selected = class_indices(classes, network.n_classes)
    obstacle = bipartition.spectrum_obstacle(max_cut_dim, selected.size)
    if obstacle is None:
        spectra = bipartition.spectra(selected, tol)
        return np.array([entropy_from_spectrum(p, alpha, base) for p in spectra])
    order = _integer_order(alpha)
    if order is None:
        raise ValueError(
            f"{obstacle} Renyi entropies of order alpha={alpha!r} need the spectrum. "
            + _REPLICA_HINT
        )
    plan = bipartition.replica_plan(order, selected)
    replica_obstacle = _replica_obstacle(plan)
    if replica_obstacle is not None:
        raise ContractionTooLarge(f"{obstacle} {replica_obstacle}")
    return bipartition.renyi(plan, selected) / scale


_REPLICA_HINT = (
    "Integer Renyi orders stay exact at any cut: use alpha=2 (the replica trick, "
    "tree_renyi_entropies), fewer classes, or raise max_cut_dim."
)


class ContractionTooLarge(ValueError):
    """An exact contraction was refused before it ran: its planned operations
    or memory exceed the engine's limits (``MAX_REPLICA_FLOPS``,
    ``MAX_REPLICA_ELEMENTS``).

    A :class:`ValueError`, raised by :func:`tree_renyi_entropies` and
    :func:`tree_entropies`; the message gives the planned cost and the
    limit. Estimators catch it and, with ``method="auto"``, estimate the
    Renyi-2 entropy by Monte Carlo instead.
    """


def _replica_obstacle(plan):
    """Why a planned replica contraction is out of reach, or None."""
    if plan.largest > MAX_REPLICA_ELEMENTS:
        return (
            f"The replica contraction for alpha={plan.alpha} would hold a tensor of "
            f"{_format_int(plan.largest)} float64 values, above "
            f"MAX_REPLICA_ELEMENTS={MAX_REPLICA_ELEMENTS}; lower alpha or the bond "
            "dimensions."
        )
    if plan.flops > MAX_REPLICA_FLOPS:
        return (
            f"The replica contraction for alpha={plan.alpha} would take about "
            f"{plan.flops:.2g} operations, above MAX_REPLICA_FLOPS={MAX_REPLICA_FLOPS}"
            "; lower alpha, the number of classes or the bond dimensions."
        )
    return None


def _svd_flops(rows, cols, vectors=False):
    """Operation count of an SVD (Golub-Kahan bidiagonalisation and its vectors)."""
    large, small = max(rows, cols), min(rows, cols)
    return 4 * large * small**2 + (8 * small**3 if vectors else 0)


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

    def spectrum_obstacle(self, max_cut_dim, n_classes):
        """Why the spectrum method is out of reach, or None."""
        bound = self.costs.bound
        if bound > max_cut_dim:
            return (
                f"The minimum cut of this bipartition has weight {_format_int(bound)} "
                f"(the Schmidt-rank bound), above max_cut_dim={max_cut_dim}."
            )
        flops, largest, root = self.spectrum_cost(n_classes)
        if largest > MAX_CORE_ELEMENTS:
            return (
                f"The minimum cut has weight {bound}, but the spectrum method would "
                f"form a core of {_format_int(largest)} float64 values, above "
                f"MAX_CORE_ELEMENTS={MAX_CORE_ELEMENTS}."
            )
        budget = max(_svd_flops(max_cut_dim, max_cut_dim), _MIN_SPECTRUM_BUDGET)
        if flops > budget:
            return (
                f"The minimum cut has weight {bound}, but the spectrum of "
                f"{n_classes} class(es) would take about {flops:.2g} operations "
                f"(an SVD of a {root[0]} x {root[1]} matrix per class), above the "
                f"budget of max(4 * max_cut_dim**3, 2**30) = {budget:.2g} for "
                f"max_cut_dim={max_cut_dim} (one decomposition of that rank)."
            )
        return None

    def spectrum_cost(self, n_classes):
        """Estimated operations, largest core and root matrix shape of the spectra.

        Ranks are bounded by the shapes they come from and by the cut: the
        ``a`` rank of a subtree is at most its cut with the leg above it on
        side B, the ``b`` rank at most its cut with that leg on side A.
        """
        dims, patterns, costs = self.network.bond_dims, self.patterns, self.costs
        n_levels = patterns.n_levels
        shapes, largest, flops = {}, 0, 0
        for level in range(1, n_levels):
            current = {}
            for k in np.flatnonzero(self.mixed[level]).tolist():
                a1, b1 = self._core_shape(level - 1, patterns.left[level][k], shapes)
                a2, b2 = self._core_shape(level - 1, patterns.right[level][k], shapes)
                width = dims[level]
                largest = max(largest, a1 * a2 * b1 * b2 * width)
                cost_a, cost_b = costs.pooled[level][k]
                rank_a = min(a1 * a2, cost_b, b1 * b2 * width)
                rank_b = min(b1 * b2, cost_a, rank_a * width)
                flops += _svd_flops(a1 * a2, b1 * b2 * width, vectors=True)
                flops += _svd_flops(b1 * b2, rank_a * width, vectors=True)
                flops += 2 * rank_a * rank_b * width * dims[level + 1]
                current[k] = (rank_a, rank_b)
            shapes = current
        a1, b1 = self._core_shape(n_levels - 1, patterns.left[-1][0], shapes)
        a2, b2 = self._core_shape(n_levels - 1, patterns.right[-1][0], shapes)
        rows, cols = a1 * a2, b1 * b2
        largest = max(largest, rows * cols)
        flops += n_classes * (
            2 * rows * cols * dims[n_levels] + _svd_flops(rows, cols)
        )
        return flops, largest, (rows, cols)

    def _core_shape(self, level, pattern, mixed_shapes):
        if self.mixed[level][pattern]:
            return mixed_shapes[pattern]
        cost_a, cost_b, _ = self.costs.edge[level][pattern]
        side = self.side[level][pattern]
        return {_SIDE_A: (cost_b, 1), _SIDE_B: (1, cost_a)}.get(side, (1, 1))

    # -- Schmidt spectra --------------------------------------------------

    def spectra(self, classes, tol):
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
        return [self._root_spectrum(left, right, y, tol) for y in classes]

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

    def _root_spectrum(self, left, right, cls, tol):
        a1, b1, width = left.shape
        a2, b2, _ = right.shape
        product = (left * self.network.readout[cls]).reshape(-1, width) @ right.reshape(
            -1, width
        ).T
        matrix = (
            product.reshape(a1, b1, a2, b2).transpose(0, 2, 1, 3).reshape(a1 * a2, -1)
        )
        # The rank is at most the cut weight: values beyond it are round-off.
        singular = np.linalg.svd(matrix, compute_uv=False)[: self.costs.bound]
        return normalised_spectrum(singular**2, tol=tol)

    # -- replica trick ----------------------------------------------------

    def replica_plan(self, alpha, classes):
        """The replica contraction for this order, planned but not yet run."""
        return _ReplicaPlan(self, alpha, classes.size)

    def renyi(self, plan, classes):
        """Renyi entropies in nats of the selected classes, by a planned replica."""
        alpha, grams = plan.alpha, self.grams
        readout = self.network.readout[classes]
        log_traces = grams.log_squared_norms(readout)
        if not np.all(np.isfinite(log_traces)):
            raise ValueError("The state has zero or non-finite norm.")
        rows = _through(grams.span[-1][0], readout)
        entropies = []
        for log_power, log_trace in zip(plan.run(rows), log_traces):
            # Round-off of a product state must not read as a negative entropy.
            entropy = (log_power - alpha * log_trace) / (1 - alpha)
            entropies.append(entropy if entropy > 0 else 0.0)
        return np.array(entropies)


class _Network:
    """A replica tensor kept as a network: operand ids, their labels, open labels."""

    def __init__(self, operands, indices, open_labels):
        self.operands = operands
        self.indices = indices
        self.open = open_labels


class _ReplicaPlan:
    """Planned contraction of ``Tr rho_A**alpha`` for one bipartition.

    Every distinct mixed subtree becomes a network with ``2 alpha`` open
    indices: its children's networks (a one-sided child is ``alpha`` copies
    of its Gram matrix) joined at the pooling delta, then the span and the
    parent matrix on every open index. A network becomes one dense tensor when
    that tensor is small, or when the network grows past
    ``_MAX_LAZY_OPERANDS`` operands and the tensor fits in
    ``MAX_REPLICA_ELEMENTS``; otherwise it stays a network, so that a cut
    through wide bonds is never formed as ``D**(2 alpha)`` values. Dense
    children are combined in a fixed order (each child, their product, then
    one matrix per index) unless that order needs an intermediate above
    ``MAX_REPLICA_ELEMENTS``; networks get an order from opt_einsum, sliced
    by :class:`_Contraction`. Everything is planned before anything is
    contracted, so ``flops`` (operations) and ``largest`` (float64 values of
    the largest intermediate) are known in advance; ``steps`` are the dense
    tensors to form, in order, and ``root`` the final contraction, with the
    selected classes as its one open index.

    Every operand is divided by its largest magnitude and the log of that
    scale is carried, as is that of every dense result.
    """

    def __init__(self, bipartition, alpha, n_classes):
        self.alpha = alpha
        self.arrays, self.log_scales, self.shapes = [], [], []
        self.dims = {}
        self.steps = []
        self.flops, self.largest = 0, 0
        patterns, grams = bipartition.patterns, bipartition.grams
        pairs = bipartition.network.matrix_pairs
        n_levels = patterns.n_levels
        networks = {}
        for level in range(1, n_levels + 1):
            closed, current = {}, {}
            for k in np.flatnonzero(bipartition.mixed[level]).tolist():
                node = self._labels(bipartition.network.bond_dims[level])
                operands, indices, groups = [], [], []
                for child in (patterns.left[level][k], patterns.right[level][k]):
                    groups.append(len(operands))
                    if bipartition.mixed[level - 1][child]:
                        self._attach(networks[child], node, operands, indices)
                        continue
                    if child not in closed:
                        gram_id = bipartition.gram_id[level - 1][child]
                        factor = grams.factor[level - 1][gram_id]
                        closed[child] = self._operand(
                            factor @ factor.T, grams.log_scale[level - 1][gram_id]
                        )
                    # On side B each copy's ket pairs with its own bra, on
                    # side A ket_k pairs with bra_{k+1}.
                    shift = 1 if bipartition.side[level - 1][child] == _SIDE_A else 0
                    for copy in range(alpha):
                        operands.append(closed[child])
                        bra = node[alpha + (copy + shift) % alpha]
                        indices.append((node[copy], bra))
                groups = [groups[1], len(operands) - groups[1]]
                # Rounding noise outside the span of the channel states would
                # be amplified by a matrix that cancels the states themselves.
                span = grams.span[level][bipartition.gram_id[level][k]]
                top = node
                if span.shape[1] < span.shape[0]:
                    top = self._apply(span.T, top, operands, indices)
                if level < n_levels:
                    parent = pairs[level][patterns.parity[level][k]]
                    top = self._apply(_through(span, parent), top, operands, indices)
                network = _Network(operands, indices, top)
                size = math.prod(self.dims[label] for label in top)
                # Children that are single tensors have an optimal order: each
                # child, their product, then one matrix at a time.
                dense = all(
                    not bipartition.mixed[level - 1][child]
                    or len(networks[child].operands) == 1
                    for child in (patterns.left[level][k], patterns.right[level][k])
                )
                if size <= _SMALL_REPLICA_ELEMENTS or (
                    len(operands) > _MAX_LAZY_OPERANDS and size <= MAX_REPLICA_ELEMENTS
                ):
                    network = self._densify(
                        network, _fixed_path(groups, len(operands)) if dense else None
                    )
                current[k] = network
            networks = current
        root = networks[0]
        self.row = len(self.arrays)
        self.arrays.append(None)
        self.log_scales.append(0.0)
        self.shapes.append((n_classes, self.dims[root.open[0]]))
        # The classes are one open index of the last contraction, so that the
        # work that does not involve the readout is done once for all of them.
        (label,) = self._labels(n_classes, 1)
        operands = [self.row] * len(root.open) + root.operands
        indices = [(label, node) for node in root.open] + root.indices
        self.root = self._step(_Network(operands, indices, (label,)))

    def _labels(self, dim, count=None):
        first = len(self.dims)
        count = 2 * self.alpha if count is None else count
        labels = tuple(range(first, first + count))
        self.dims.update(dict.fromkeys(labels, int(dim)))
        return labels

    def _operand(self, array, log_scale=0.0):
        scale = np.abs(array).max()
        if scale > 0:
            array = array / scale
            log_scale += np.log(scale)
        self.arrays.append(array)
        self.log_scales.append(log_scale)
        self.shapes.append(array.shape)
        return len(self.arrays) - 1

    def _apply(self, matrix, labels, operands, indices):
        """Put ``matrix`` on every one of ``labels``; return the new labels."""
        operand = self._operand(matrix)
        out = self._labels(matrix.shape[0])
        for new, old in zip(out, labels):
            operands.append(operand)
            indices.append((new, old))
        return out

    def _attach(self, child, node, operands, indices):
        """Copy a child's network in, its open labels joined to ``node``."""
        rename = dict(zip(child.open, node))
        for labels in child.indices:
            for label in labels:
                if label not in rename:
                    rename[label] = self._labels(self.dims[label], 1)[0]
        operands.extend(child.operands)
        indices.extend(
            tuple(rename[label] for label in labels) for labels in child.indices
        )

    def _step(self, network, fixed=None):
        """Plan one contraction and add its cost to the plan's.

        ``fixed`` is a contraction order to use unless one of its
        intermediates exceeds ``MAX_REPLICA_ELEMENTS``; otherwise, and for
        None, opt_einsum gives the order with the fewest operations, whatever
        its memory: :class:`_Contraction` then slices it.
        """
        used = sorted({label for labels in network.indices for label in labels})
        symbol = {label: oe.get_symbol(n) for n, label in enumerate(used)}
        equation = ",".join(
            "".join(symbol[label] for label in labels) for labels in network.indices
        ) + "->" + "".join(symbol[label] for label in network.open)
        shapes = [
            tuple(self.dims[label] for label in labels) for labels in network.indices
        ]
        search = "dp" if len(shapes) <= _MAX_DP_OPERANDS else "greedy"
        _, info = oe.contract_path(
            equation, *shapes, shapes=True, optimize=fixed or search
        )
        if fixed and info.largest_intermediate > MAX_REPLICA_ELEMENTS:
            # Wide children with narrow spans: the spans first.
            _, info = oe.contract_path(
                equation, *shapes, shapes=True, optimize=search
            )
        plan = _Contraction(network, info, self.dims, symbol)
        self.flops += plan.flops
        self.largest = max(self.largest, plan.largest)
        return plan

    def _densify(self, network, fixed=None):
        step = self._step(network, fixed)
        self.arrays.append(None)
        self.log_scales.append(0.0)
        self.shapes.append(tuple(self.dims[label] for label in network.open))
        self.steps.append((len(self.arrays) - 1, step))
        return _Network([len(self.arrays) - 1], [network.open], network.open)

    def _contract(self, step):
        arrays = [self.arrays[i] for i in step.operands]
        log_scale = sum(self.log_scales[i] for i in step.operands)
        return step.run(arrays), log_scale

    def run(self, rows):
        """``log Tr rho_A**alpha`` (unnormalised states) for each readout row."""
        for target, step in self.steps:
            value, log_scale = self._contract(step)
            scale = np.abs(value).max()
            if scale > 0:
                value /= scale
            self.arrays[target] = value
            self.log_scales[target] = log_scale + np.log(scale)
        # Each class's row is scaled on its own; it enters 2 alpha times.
        scales = np.abs(rows).max(axis=1)
        self.arrays[self.row] = rows / scales[:, None]
        powers, log_scale = self._contract(self.root)
        for power in powers:
            if not power > 0:
                raise ValueError(
                    f"Tr rho_A**{self.alpha} came out as {float(power):.3g}: the "
                    "contraction lost all precision."
                )
        return np.log(powers) + log_scale + 2 * self.alpha * np.log(scales)


def _fixed_path(groups, n_operands):
    """An opt_einsum path: each leading group alone, the two results' product,
    then every remaining operand swept into the last one."""
    path, remaining = [], n_operands
    for size in groups:
        path.append(tuple(range(size)))
        remaining -= size - 1
    if len(groups) == 2:
        path.append((remaining - 2, remaining - 1))
        remaining -= 1
    while remaining > 1:
        path.append((0, remaining - 1))
        remaining -= 1
    return path


class _Contraction:
    """A network's contraction tree in a given order, sliced where needed.

    Each step of the opt_einsum order is a node whose children are operands
    or earlier steps; a label is summed at the one step that joins the last
    of its tensors. Where a result would exceed ``MAX_REPLICA_ELEMENTS``
    values, a label it holds is *sliced*: the step that sums the label loops
    over its values and accumulates, and the steps below it that hold the
    label are computed for one value at a time, on slices. A result is
    computed for the loop values it depends on, outermost first, up to the
    first loop it does not depend on; it is computed for all values of the
    loops inside that one at once and kept, so that nothing is recomputed
    for the values of a loop it does not depend on. Without such nesting the
    operation count is that of the unsliced order. Labels are chosen greedily
    among those of the largest result, for the smallest peak memory, then
    the fewest operations, with ``_CALL_FLOPS`` charged per numpy call; then
    results formed on every pass of a loop are sliced further, down to
    ``_CACHE_ELEMENTS``, where that costs at most ``_LOOP_SLACK`` times the
    operations (a large product streamed through memory on every pass is
    slower than many small ones). A product that its parent sums over is
    not formed: the parent takes its factors (see :meth:`_fusable`).
    ``flops`` and ``largest`` (values of the largest result) are those of
    the sliced plan; ``sliced`` lists its loops.
    """

    def __init__(self, network, info, dims, symbol):
        label_of = {s: label for label, s in symbol.items()}
        self.operands = network.operands
        self.dims = dims
        n_leaves = len(network.operands)
        self.terms = [tuple(labels) for labels in network.indices]
        self.children = [()] * n_leaves
        self.flops_of = [0] * n_leaves
        self.summed = {}
        current = list(range(n_leaves))
        for positions, removed, equation, _, _ in info.contraction_list:
            node = len(self.terms)
            self.children.append(tuple(current.pop(p) for p in positions))
            inputs, output = equation.split("->")
            self.terms.append(tuple(label_of[s] for s in output))
            joined = set(inputs.replace(",", ""))
            self.flops_of.append(
                oe.helpers.flop_count(
                    joined, bool(removed), len(positions), info.size_dict
                )
            )
            for s in joined - set(output):
                self.summed[label_of[s]] = node
            current.append(node)
        (self.root,) = current
        self.parent = {
            child: node
            for node, children in enumerate(self.children)
            for child in children
        }
        self.below = [frozenset(term) for term in self.terms]
        for node in range(n_leaves, len(self.terms)):
            self.below[node] = self.below[node].union(
                *(self.below[child] for child in self.children[node])
            )
        self.loops = [()] * len(self.terms)
        self._slice()
        self.sliced = [label for loops in self.loops for label in loops]
        self.fixed, _, around = self._walk()
        # Results computed for fewer loops than surround them are kept.
        self.kept = {
            node
            for node in range(n_leaves, len(self.terms))
            if len(self.fixed[node]) < len(around[node])
        }
        self.equations = [None] * len(self.terms)
        self._steps = {}
        self.views = [()] * len(self.terms)
        for node in range(n_leaves, len(self.terms)):
            inner = set(self.fixed[node] + self.loops[node])
            for child in self.children[node]:
                # Labels the child's result still has but this step fixes.
                self.views[child] = tuple(
                    label in inner and label not in self.fixed[child]
                    for label in self.terms[child]
                    if label not in self.fixed[child]
                )
            inputs = ",".join(
                "".join(
                    symbol[label] for label in self.terms[child] if label not in inner
                )
                for child in self.children[node]
            )
            output = "".join(
                symbol[label]
                for label in self.terms[node]
                if label not in self.fixed[node]
            )
            self.equations[node] = f"{inputs}->{output}"
        self.fused = {}
        for node in range(n_leaves, len(self.terms)):
            product = self._fusable(node)
            if product is not None:
                self.fused[node] = product
                left, right = self.equations[node].split("->")[0].split(",")
                inputs = self.equations[product].split("->")[0]
                other = right if self.children[node][0] == product else left
                output = self.equations[node].split("->")[1]
                self.equations[node] = f"{inputs},{other}->{output}"

    def _fusable(self, node):
        """The child whose product ``node`` should take in one pass, or None.

        A step that multiplies two results without summing, whose parent
        sums over a part of it with a factor of no other labels, is never
        formed: the parent multiplies and sums all three at once.
        """
        children = self.children[node]
        if len(children) != 2 or set(self.terms[node]) >= set().union(
            *(self.terms[child] for child in children)
        ):
            return None
        for product, other in (children, children[::-1]):
            grand = self.children[product]
            if (
                len(grand) == 2
                and not self.loops[product]
                and product not in self.kept
                and not any(self.views[product])
                and set(self.terms[product])
                == set().union(*(self.terms[g] for g in grand))
                and set(self.terms[other]) <= set(self.terms[product])
            ):
                return product
        return None

    def _walk(self):
        """Per node: the loop labels it is computed for, its executions, and
        the loops around it (outermost first).

        A node is computed for the loops around it that it depends on, up to
        the first loop it does not depend on, when its result for all values
        of the loops inside that one fits in ``MAX_REPLICA_ELEMENTS``; else
        for every loop it depends on. Either way only for labels its parent
        is computed for or loops over. It runs once per value of the loops
        around it down to the innermost one it is computed for.
        """
        around = [()] * len(self.terms)
        fixed = [()] * len(self.terms)
        runs = [1] * len(self.terms)
        for node in range(len(self.terms) - 1, -1, -1):
            if node >= len(self.operands) and around[node]:
                parent = self.parent[node]
                allowed = set(fixed[parent] + self.loops[parent])
                labels = around[node]
                depends = [
                    label in self.below[node] and label in allowed for label in labels
                ]
                first = depends.index(False) if False in depends else len(labels)
                hoisted = tuple(l for l, d in zip(labels[:first], depends) if d)
                every = tuple(l for l, d in zip(labels, depends) if d)
                fixed[node] = (
                    hoisted
                    if self._size_for(node, hoisted) <= MAX_REPLICA_ELEMENTS
                    else every
                )
                last = max((labels.index(l) + 1 for l in fixed[node]), default=0)
                runs[node] = math.prod(self.dims[label] for label in labels[:last])
            for child in self.children[node]:
                around[child] = around[node] + self.loops[node]
        return fixed, runs, around

    def _size_for(self, node, fixed):
        """Values of a node's result computed for the labels ``fixed``."""
        return math.prod(
            self.dims[label] for label in self.terms[node] if label not in fixed
        )

    def _cost(self):
        """Operations (calls included), largest result, and that result's node."""
        fixed, runs, _ = self._walk()
        flops, largest, widest = 0, 0, self.root
        for node in range(len(self.operands), len(self.terms)):
            calls = math.prod(self.dims[label] for label in self.loops[node])
            share = math.prod(self.dims[label] for label in fixed[node])
            flops += runs[node] * (self.flops_of[node] // share + calls * _CALL_FLOPS)
            size = self._size_for(node, fixed[node])
            if size >= largest:
                largest, widest = size, node
        return flops, largest, widest

    def _slice(self):
        self.flops, self.largest, widest = self._cost()
        while self.largest > MAX_REPLICA_ELEMENTS:
            best = min(self._trials(widest), default=None)
            if best is None or best[0] >= self.largest:
                return
            self.largest, self.flops, widest, node, label = best
            self.loops[node] += (label,)
        # Results formed on every pass of a loop are worth slicing further
        # while they are larger than a cache, as long as the operation count
        # stays within _LOOP_SLACK of the plan's.
        done = set()
        while True:
            fixed, runs, around = self._walk()
            size = {
                node: self._size(node, fixed)
                for node in range(len(self.operands), len(self.terms))
                if around[node] and node not in done
            }
            if not size or max(size.values()) <= _CACHE_ELEMENTS:
                return
            target = max(size, key=size.get)
            done.add(target)
            trials = [
                trial
                for trial in self._trials(target)
                if trial[0] <= max(self.largest, MAX_REPLICA_ELEMENTS)
                and trial[1] <= _LOOP_SLACK * self.flops
                and self._size(target, self._walk()[0], trial[3:]) < size[target]
            ]
            if trials:
                _, flops, _, node, label = min(trials, key=lambda trial: trial[1])
                self.loops[node] += (label,)
                self.flops, self.largest, _ = self._cost()

    def _size(self, node, fixed, extra=None):
        """Values of a node's result; ``extra`` is a trial loop ``(node, label)``."""
        if extra is not None:
            self.loops[extra[0]] += (extra[1],)
            fixed = self._walk()[0]
            self.loops[extra[0]] = self.loops[extra[0]][:-1]
        return self._size_for(node, fixed[node])

    def _trials(self, widest):
        """``(largest, flops, widest node, loop node, label)`` of each new loop
        on a label of ``widest``'s result."""
        fixed, _, _ = self._walk()
        for label in self.terms[widest]:
            if label in fixed[widest] or label not in self.summed:
                continue
            node = self.summed[label]
            if label in self.loops[node]:
                continue
            self.loops[node] += (label,)
            flops, largest, where = self._cost()
            self.loops[node] = self.loops[node][:-1]
            yield largest, flops, where, node, label

    def run(self, arrays):
        """The contracted tensor."""
        self._memo = {}
        try:
            return self._result(self.root, arrays, {})
        finally:
            self._memo = {}

    def _result(self, node, arrays, values):
        """A node's result for the current values of the labels it is computed for."""
        if not self.children[node]:
            return arrays[node]
        key = tuple(values[label] for label in self.fixed[node])
        if node in self._memo and self._memo[node][0] == key:
            return self._memo[node][1]
        loops, total = self.loops[node], None
        for point in itertools.product(*(range(self.dims[label]) for label in loops)):
            inner = {**values, **dict(zip(loops, point))}
            parts = self._parts(node, arrays, inner)
            if node not in self._steps:
                self._steps[node] = _compile_step(
                    self.equations[node], parts, node in self.fused
                )
            result = self._steps[node](parts)
            if total is None:
                total = result if not loops else np.array(result)
            else:
                total += result
        if node in self.kept:
            self._memo[node] = (key, total)
        return total

    def _parts(self, node, arrays, values):
        """The operands of a node's step, sliced to the current loop values."""
        parts = []
        for child in self.children[node]:
            if self.fused.get(node) == child:
                parts.extend(self._parts(child, arrays, values))
                continue
            part = self._result(child, arrays, values)
            if any(self.views[child]):
                labels = [l for l in self.terms[child] if l not in self.fixed[child]]
                part = part[
                    tuple(
                        values[label] if view else slice(None)
                        for label, view in zip(labels, self.views[child])
                    )
                ]
            parts.append(part)
        return parts


def _compile_step(equation, operands, fused=False):
    """A function contracting operands like ``operands`` by ``equation``.

    ``fused`` steps (a product and the sum over it, see
    ``_Contraction._fusable``) are one pass of numpy's einsum.
    A step runs once per loop value, so its order and layout are settled
    once. numpy's einsum runs at several ns per value where a step keeps a
    shared index and sums nothing: such products are done by broadcasting,
    and batched matrix products by ``numpy.matmul``, both in the memory
    layout of the larger operand (a copy to another layout costs as much as
    the step), returning a view in the order asked for. Batched dot and
    matrix-vector products go to numpy's einsum, which streams through them;
    the rest to opt_einsum (BLAS where it can).
    """
    inputs, output = equation.split("->")
    terms = inputs.split(",")
    # numpy's einsum takes ASCII letters only.
    letters = dict(zip(sorted(set(inputs) - {","}), string.ascii_letters))
    letters[","], letters["-"], letters[">"] = ",", "-", ">"
    local = "".join(letters[s] for s in equation)
    if fused:
        return lambda parts: np.einsum(local, *parts)
    general = oe.contract_expression(equation, *(x.shape for x in operands))
    if len(terms) != 2 or not set(inputs) - {","} <= set(output) | (
        set(terms[0]) & set(terms[1])
    ):
        return lambda parts: general(*parts)
    (left, right), (a, b) = terms, operands
    summed = [s for s in left if s in right and s not in output]
    batch = set(left) & set(right) & set(output)
    size = dict(zip(left, a.shape)) | dict(zip(right, b.shape))
    thin = min(
        math.prod(size[s] for s in left if s not in right),
        math.prod(size[s] for s in right if s not in left),
    )
    if summed and not batch:
        return lambda parts: general(*parts)
    if summed and thin < _MIN_GEMM_SIDE:
        return lambda parts: np.einsum(local, *parts)
    swap = a.size < b.size
    if swap:
        (left, right), (a, b) = (right, left), (b, a)
    layout = _by_stride(left, a)
    if not summed:
        order = layout + "".join(s for s in _by_stride(right, b) if s not in left)
        first, second = _aligner(left, order), _aligner(right, order)
        back = [order.index(s) for s in output]

        def product(parts):
            x, y = parts[::-1] if swap else parts
            return (first(x) * second(y)).transpose(back)

        return product
    summed = [s for s in layout if s in summed]
    batch = [s for s in layout if s in batch]
    left_only = [s for s in layout if s not in right]
    right_only = [s for s in _by_stride(right, b) if s not in left]
    first = [left.index(s) for s in batch + left_only + summed]
    second = [right.index(s) for s in batch + summed + right_only]
    n_batch = math.prod(size[s] for s in batch)
    n_summed = math.prod(size[s] for s in summed)
    order = batch + left_only + right_only
    shape = [size[s] for s in order]
    back = [order.index(s) for s in output]

    def matmul(parts):
        x, y = parts[::-1] if swap else parts
        x = x.transpose(first).reshape(n_batch, -1, n_summed)
        y = y.transpose(second).reshape(n_batch, n_summed, -1)
        return np.matmul(x, y).reshape(shape).transpose(back)

    return matmul


def _by_stride(term, array):
    """The labels of ``array`` in the order of its memory layout."""
    return "".join(
        term[n] for n in sorted(range(len(term)), key=lambda n: -array.strides[n])
    )


def _aligner(term, output):
    """A function viewing an array (labels ``term``) so that it broadcasts to
    ``output``."""
    order = sorted(range(len(term)), key=lambda n: output.index(term[n]))
    index = tuple(slice(None) if s in term else None for s in output)
    return lambda array: array.transpose(order)[index]


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


def class_indices(classes, n_classes):
    """Checked readout-row indices; None means all rows.

    Labels are the estimators' business: they map them to these indices.
    """
    if classes is None:
        return np.arange(n_classes)
    selected = np.atleast_1d(np.asarray(classes))
    if selected.ndim != 1 or selected.size == 0:
        raise ValueError(
            f"classes must be a non-empty 1-D list of indices, got shape "
            f"{selected.shape}."
        )
    if selected.dtype == bool or not np.issubdtype(selected.dtype, np.integer):
        raise TypeError(
            f"classes must be None or integer readout-row indices, got {classes!r}."
        )
    outside = selected[(selected < 0) | (selected >= n_classes)]
    if outside.size:
        raise ValueError(
            f"classes must be indices in [0, {n_classes}), got {outside.tolist()} "
            "outside that range."
        )
    return selected.astype(np.int64)


def _checked_max_cut_dim(value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"max_cut_dim must be a positive int, got {value!r}.")
    if value < 1:
        raise ValueError(f"max_cut_dim must be a positive int, got {value!r}.")
    return int(value)


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
