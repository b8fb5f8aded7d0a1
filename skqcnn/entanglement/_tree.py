"""Tree tensor networks: the network object, its dense state and its norms.

A :class:`TreeNetwork` is what a q-CNN (non-overlapping ConvAC) folds into once
its affine steps carry a constant channel (``docs/theory.rst``, sections
"Network states" and "Tree networks").
Identical subtrees are shared through *subtree patterns*: two subtrees with the
same leaf labels in the same order have the same tensor, so every computation
here runs once per distinct pattern, not once per node.
"""

from dataclasses import dataclass, field

import numpy as np

from ._spectra import MAX_AMPLITUDES

# Leaf labels of a bipartition; LABEL_FIXED marks a padded site holding e_0.
LABEL_B, LABEL_A, LABEL_FIXED = 0, 1, 2

_EPS = np.finfo(np.float64).eps

@dataclass(frozen=True, eq=False, repr=False)
class TreeNetwork:
    """A binary tree tensor network with same-channel product pooling.

    Leaves ``0 .. 2**L - 1`` hold vectors in ``R^local_dim``: a physical leaf
    holds the local basis vector of its site, a fixed (padded) leaf holds
    ``e_0``. For level ``l = 1 .. L`` node ``t`` is
    ``u = (A^L_l v[2t]) * (A^R_l v[2t+1])`` (elementwise) with ``v`` the nodes
    of level ``l - 1``: the left and the right member of every pooling pair
    have their own matrix. ``matrices[l - 1]`` is either one matrix
    ``A_l = A^L_l = A^R_l`` shared by both members, or the stacked pair
    ``(A^L_l, A^R_l)``. The amplitude of class ``y`` is
    ``readout[y] @ u_root``. The network state ``Psi_y`` is the tensor over
    the physical leaves in leaf order.

    Parameters
    ----------
    local_dim : int
        Local dimension ``M`` of a physical leaf.
    matrices : sequence of ndarray
        ``L >= 1`` entries, one per level; ``matrices[l]`` has shape
        ``(D[l+1], D[l])`` (one matrix shared by left and right children) or
        ``(2, D[l+1], D[l])`` (left matrix, right matrix), with
        ``D[0] == local_dim``. Levels of both kinds may be mixed. Stored as
        read-only float64 copies in the shape given.
    readout : ndarray of shape (n_classes, D[L])
        One row per class.
    fixed_leaves : ndarray of bool, shape (2**L,), default=None
        True for padded sites; None means no padding.

    Attributes
    ----------
    matrix_pairs : tuple of ndarray
        ``matrix_pairs[l]`` of shape ``(2, D[l+1], D[l])`` is ``(A^L, A^R)``
        of level ``l + 1``, whichever form was given (read-only).
    shared_levels : tuple of bool
        ``shared_levels[l]`` is True when the left and right matrices of
        level ``l + 1`` are identical, so that subtrees need not remember
        which child of their parent they are.

    Raises
    ------
    ValueError
        If the shapes do not chain, a pair does not hold exactly two
        matrices, the leaf mask has the wrong length, or an entry is not
        finite.

    Examples
    --------
    >>> import numpy as np
    >>> from skqcnn.entanglement import TreeNetwork
    >>> net = TreeNetwork(2, [np.eye(2), np.ones((3, 2))], np.ones((1, 3)))
    >>> net
    TreeNetwork(local_dim=2, bond_dims=(2, 2, 3), n_classes=1, n_fixed=0)
    >>> net.n_leaves, net.n_physical
    (4, 4)
    >>> pair = np.stack([np.eye(2), 2 * np.eye(2)])
    >>> TreeNetwork(2, [pair, np.ones((3, 2))], np.ones((1, 3))).bond_dims
    (2, 2, 3)
    """

    local_dim: int
    matrices: tuple
    readout: np.ndarray
    fixed_leaves: np.ndarray = field(default=None)
    matrix_pairs: tuple = field(init=False)
    shared_levels: tuple = field(init=False)

    def __post_init__(self):
        if (
            isinstance(self.local_dim, bool)
            or not isinstance(self.local_dim, (int, np.integer))
            or self.local_dim < 1
        ):
            raise ValueError(
                f"local_dim must be a positive integer, got {self.local_dim!r}."
            )
        object.__setattr__(self, "local_dim", int(self.local_dim))
        matrices = tuple(
            _frozen_float_array(matrix, f"matrices[{level}]")
            for level, matrix in enumerate(self.matrices)
        )
        if not matrices:
            raise ValueError("A tree network needs at least one level (matrix).")
        in_dim = self.local_dim
        pairs, shared = [], []
        for level, matrix in enumerate(matrices):
            if (
                matrix.ndim not in (2, 3)
                or matrix.shape[-1] != in_dim
                or (matrix.ndim == 3 and matrix.shape[0] != 2)
            ):
                raise ValueError(
                    f"matrices[{level}] must have shape (D[{level + 1}], {in_dim}) "
                    f"(shared by both children) or (2, D[{level + 1}], {in_dim}) "
                    f"(left and right matrices), got {matrix.shape}."
                )
            if matrix.ndim == 2:
                pair = np.broadcast_to(matrix, (2,) + matrix.shape)
                shared.append(True)
            else:
                pair = matrix
                shared.append(bool(np.array_equal(matrix[0], matrix[1])))
            pairs.append(pair)
            in_dim = matrix.shape[-2]
        readout = _frozen_float_array(self.readout, "readout")
        if readout.ndim != 2 or readout.shape[1] != in_dim or readout.shape[0] < 1:
            raise ValueError(
                f"readout must have shape (n_classes, {in_dim}), got {readout.shape}."
            )
        n_leaves = 2 ** len(matrices)
        if self.fixed_leaves is None:
            fixed = np.zeros(n_leaves, dtype=bool)
        else:
            fixed = np.asarray(self.fixed_leaves)
            if fixed.dtype != bool or fixed.shape != (n_leaves,):
                raise ValueError(
                    f"fixed_leaves must be a bool array of shape ({n_leaves},), got "
                    f"dtype {fixed.dtype} and shape {fixed.shape}."
                )
            fixed = fixed.copy()
        fixed.flags.writeable = False
        object.__setattr__(self, "matrices", matrices)
        object.__setattr__(self, "matrix_pairs", tuple(pairs))
        object.__setattr__(self, "shared_levels", tuple(shared))
        object.__setattr__(self, "readout", readout)
        object.__setattr__(self, "fixed_leaves", fixed)

    def __repr__(self):
        return (
            f"TreeNetwork(local_dim={self.local_dim}, bond_dims={self.bond_dims}, "
            f"n_classes={self.n_classes}, n_fixed={int(self.fixed_leaves.sum())})"
        )

    @property
    def n_levels(self):
        """Number of pooling levels ``L``."""
        return len(self.matrices)

    @property
    def n_leaves(self):
        """Number of leaves ``2**L``, padded ones included."""
        return 2**self.n_levels

    @property
    def n_physical(self):
        """Number of physical (not padded) leaves."""
        return int(self.n_leaves - self.fixed_leaves.sum())

    @property
    def n_classes(self):
        """Number of readout rows."""
        return self.readout.shape[0]

    @property
    def bond_dims(self):
        """Tuple ``(D[0], ..., D[L])`` with ``D[0] == local_dim``."""
        return (self.local_dim,) + tuple(m.shape[-2] for m in self.matrices)


def _frozen_float_array(value, name):
    array = np.array(value, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has non-finite entries.")
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class SubtreePatterns:
    """Distinct subtrees of a labelled binary tree, level by level.

    ``ids[l][t]`` is the pattern of node ``t`` of level ``l``; the patterns of
    level ``l >= 1`` have children ``left[l][k]`` and ``right[l][k]`` among the
    patterns of level ``l - 1``. At level 0 pattern ``k`` is the leaf label
    ``leaf_labels[k]``. ``first[l][k]`` is a node of level ``l`` with pattern
    ``k``, and ``parity[l][k] = first[l][k] % 2`` says whether it is the left
    (0) or the right (1) child of its parent.

    Where ``split[l]`` is True (levels ``l < L``) the parity is part of the
    pattern: every node of the pattern is a left child, or every one is a
    right child, so the pattern has a definite parent matrix
    ``matrix_pairs[l][parity[l][k]]``. Where it is False the two matrices
    above level ``l`` must be equal, and nodes of either parity share a
    pattern.
    """

    leaf_labels: np.ndarray
    ids: tuple
    left: tuple
    right: tuple
    first: tuple
    parity: tuple

    @classmethod
    def from_labels(cls, labels, split=None):
        """Group the nodes of the tree over ``labels`` (length ``2**L``).

        ``split`` holds one bool per level ``0 .. L-1`` (True: tell left and
        right children apart); None means no level is split.
        """
        labels = np.asarray(labels, dtype=np.int64)
        n_levels = int(labels.size).bit_length() - 1
        if split is None:
            split = (False,) * n_levels

        def group(keys, level):
            # Fold the parity into the key where the level is split.
            if level < n_levels and split[level]:
                keys = 2 * keys + (np.arange(keys.size) % 2)
                unique, first, inverse = np.unique(
                    keys, return_index=True, return_inverse=True
                )
                return unique // 2, first, inverse
            return np.unique(keys, return_index=True, return_inverse=True)

        leaf_labels, first, inverse = group(labels, 0)
        ids, left, right, firsts = [inverse], [None], [None], [first]
        while ids[-1].size > 1:
            below = ids[-1]
            n_below = int(below.max()) + 1
            keys = below[0::2] * n_below + below[1::2]
            unique, first, inverse = group(keys, len(ids))
            ids.append(inverse)
            left.append(unique // n_below)
            right.append(unique % n_below)
            firsts.append(first)
        parity = tuple(f % 2 for f in firsts)
        return cls(
            leaf_labels, tuple(ids), tuple(left), tuple(right), tuple(firsts), parity
        )

    @property
    def n_levels(self):
        """Number of pooling levels ``L``."""
        return len(self.ids) - 1

    def count(self, label):
        """Number of leaves carrying ``label`` under each pattern, per level."""
        counts = [(self.leaf_labels == label).astype(np.int64)]
        for level in range(1, len(self.ids)):
            counts.append(counts[-1][self.left[level]] + counts[-1][self.right[level]])
        return counts


@dataclass(frozen=True)
class GramTable:
    """Gram matrices of every distinct subtree, in square-root form.

    For pattern ``k`` of level ``l`` (patterns of ``fixed_leaves``) the Gram
    matrix of the node's channel states is
    ``exp(log_scale[l][k]) * span[l][k] @ diag(weights[l][k]) @ span[l][k].T``:
    ``span[l][k]`` (``D[l] x r``) has orthonormal columns spanning the
    channels that carry a state (numerically non-zero eigenvalues only).
    ``factor[l][k] = A @ span[l][k] * sqrt(weights[l][k])`` for ``l < L``,
    with ``A = matrix_pairs[l][parity]`` the parent's matrix on the pattern's
    side, is a square root of the Gram matrix after that matrix. Patterns are
    split by parity wherever the two matrices of a level differ.

    Lifting through the square root loses digits only linearly in the
    cancellation a matrix causes, where ``A G A^T`` would lose them
    quadratically, and the span lets the replica method discard rounding
    noise in channel directions that carry no state.
    """

    patterns: SubtreePatterns
    span: tuple
    weights: tuple
    factor: tuple
    log_scale: tuple

    @classmethod
    def from_network(cls, network):
        """Run the Gram recursion ``G <- (A^L G A^L^T) * (A^R G A^R^T)``."""
        patterns = SubtreePatterns.from_labels(
            network.fixed_leaves.astype(np.int64), parity_split(network)
        )
        physical = patterns.count(0)
        eye = np.eye(network.local_dim)
        span = [[eye[:, :1] if label else eye for label in patterns.leaf_labels]]
        weights = [[np.ones(v.shape[1]) for v in span[0]]]
        log_scale = [np.zeros(len(span[0]))]
        factor = []
        for level, pair in enumerate(network.matrix_pairs, start=1):
            factor.append(
                [
                    pair[side] @ v * np.sqrt(w)
                    for v, w, side in zip(
                        span[-1], weights[-1], patterns.parity[level - 1]
                    )
                ]
            )
            lifted = [f @ f.T for f in factor[-1]]
            level_span, level_weights, scales = [], [], []
            for k, (x, y) in enumerate(
                zip(patterns.left[level], patterns.right[level])
            ):
                gram = lifted[x] * lifted[y]
                values, vectors = np.linalg.eigh(gram)
                top = max(values[-1], 0.0)
                scales.append(top if top > 0 else 1.0)
                if physical[level][k] == 0:
                    # Only padded leaves: one fixed vector.
                    keep = values.size - 1
                else:
                    keep = np.searchsorted(values, top * gram.shape[0] * _EPS, "right")
                    keep = min(keep, values.size - 1)
                level_span.append(vectors[:, keep:])
                level_weights.append(np.maximum(values[keep:], 0.0) / scales[-1])
            span.append(level_span)
            weights.append(level_weights)
            previous = log_scale[-1]
            log_scale.append(
                previous[patterns.left[level]]
                + previous[patterns.right[level]]
                + np.log(scales)
            )
        return cls(
            patterns, tuple(span), tuple(weights), tuple(factor), tuple(log_scale)
        )

    def log_squared_norms(self, readout):
        """``log(r G_root r)`` for every row ``r`` of ``readout``; -inf if zero."""
        root = self.span[-1][0] * np.sqrt(self.weights[-1][0])
        squared = np.sum((readout @ root) ** 2, axis=1)
        with np.errstate(divide="ignore"):
            return np.log(squared) + self.log_scale[-1][0]


def parity_split(network):
    """Per level ``0 .. L-1``: whether patterns must tell left from right.

    True where the left and right matrices above the level differ; shared
    levels keep the smaller, parity-blind set of patterns.
    """
    return tuple(not shared for shared in network.shared_levels)


def tree_log_norms(network):
    """Natural log of the norm of each class's network state.

    Uses the Gram recursion of ``docs/theory.rst``, section "Tree networks",
    with a log scale per level, so it neither overflows nor underflows for
    thousands of leaves.

    Parameters
    ----------
    network : TreeNetwork
        The network whose class states are analysed.

    Returns
    -------
    log_norms : ndarray of shape (n_classes,)
        ``log ||Psi_y||``; ``-inf`` for a zero state.

    Examples
    --------
    >>> import numpy as np
    >>> from skqcnn.entanglement import TreeNetwork, tree_log_norms
    >>> bell = TreeNetwork(2, [np.eye(2)], np.array([[1.0, 1.0]]))
    >>> np.round(np.exp(tree_log_norms(bell)) ** 2, 12)
    array([2.])
    """
    return 0.5 * GramTable.from_network(network).log_squared_norms(network.readout)


def tree_dense_amplitudes(network):
    """Every amplitude of every class's network state, by brute force.

    The tree is evaluated on all one-hot configurations of the physical
    leaves at once: each subtree is tabulated over its own configurations,
    lifted through the left or right matrix of its parent, and pooled with a
    row-wise Kronecker product. This is the reference the exact
    methods are tested against.

    Parameters
    ----------
    network : TreeNetwork
        The network whose class states are analysed.

    Returns
    -------
    amplitudes : ndarray of shape (n_classes, local_dim ** n_physical)
        Physical leaves in leaf order, the last one varying fastest.

    Raises
    ------
    ValueError
        If ``local_dim ** n_physical`` exceeds ``MAX_AMPLITUDES``
        (``2**22``, 32 MiB per class).

    Examples
    --------
    >>> import numpy as np
    >>> from skqcnn.entanglement import TreeNetwork, tree_dense_amplitudes
    >>> bell = TreeNetwork(2, [np.eye(2)], np.array([[1.0, 1.0]]))
    >>> tree_dense_amplitudes(bell)
    array([[1., 0., 0., 1.]])
    """
    n_amplitudes = network.local_dim**network.n_physical
    if n_amplitudes > MAX_AMPLITUDES:
        raise ValueError(
            f"The dense state has {network.local_dim}**{network.n_physical} = "
            f"{n_amplitudes} amplitudes per class, above the limit of "
            f"MAX_AMPLITUDES={MAX_AMPLITUDES}; use tree_schmidt_spectra or "
            "tree_entropies, which never form the dense state."
        )
    eye = np.eye(network.local_dim)
    # Row s of a table is the node's vector on sub-configuration s.
    tables = [eye[:1] if fixed else eye for fixed in network.fixed_leaves]
    for (to_left, to_right), width in zip(
        network.matrix_pairs[:-1], network.bond_dims[1:]
    ):
        tables = [
            ((left @ to_left.T)[:, None, :] * (right @ to_right.T)[None, :, :]).reshape(
                -1, width
            )
            for left, right in zip(tables[0::2], tables[1::2])
        ]
    to_left, to_right = network.matrix_pairs[-1]
    left, right = tables[0] @ to_left.T, tables[1] @ to_right.T
    amplitudes = np.stack([(left * row) @ right.T for row in network.readout])
    return amplitudes.reshape(network.n_classes, -1)


def partition_labels(in_a, fixed_leaves):
    """Validate a bipartition mask and label each leaf A, B or fixed.

    Parameters
    ----------
    in_a : array-like of bool, shape (n_leaves,)
        True for the leaves of subsystem A.
    fixed_leaves : ndarray of bool, shape (n_leaves,)

    Returns
    -------
    labels : ndarray of int64
        ``LABEL_A``, ``LABEL_B`` or ``LABEL_FIXED`` per leaf.
    """
    mask = np.asarray(in_a)
    n_leaves = fixed_leaves.size
    if mask.shape != (n_leaves,):
        raise ValueError(
            f"in_a must have one entry per leaf, shape ({n_leaves},), got shape "
            f"{mask.shape}."
        )
    if mask.dtype != bool:
        if not (np.issubdtype(mask.dtype, np.integer) and np.isin(mask, (0, 1)).all()):
            raise ValueError(f"in_a must be a boolean mask, got dtype {mask.dtype}.")
        mask = mask.astype(bool)
    clash = np.flatnonzero(mask & fixed_leaves)
    if clash.size:
        raise ValueError(
            f"in_a marks fixed (padded) leaves {clash.tolist()}; padded sites hold "
            "no physical index and belong to neither side."
        )
    physical = ~fixed_leaves
    if not mask[physical].any():
        raise ValueError("Subsystem A is empty: it holds no physical leaf.")
    if mask[physical].all():
        raise ValueError("Subsystem A is full: B holds no physical leaf.")
    return np.where(fixed_leaves, LABEL_FIXED, np.where(mask, LABEL_A, LABEL_B))
