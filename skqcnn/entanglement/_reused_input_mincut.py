"""Schmidt-rank bounds for networks with re-used inputs (Levine et al., PRL 2019).

On one-hot inputs an overlapping ConvAC or a deep RAC computes ``DUP(A)``: a
tree network whose inputs are duplicated, restricted to equal indices on all
copies of an input. Assigning every copy of input ``p`` to ``p``'s side of a
bipartition, the rank of the network state across the bipartition is at most
the minimum cut of the duplicated tree (``docs/theory.rst``, sections
"Minimum-cut bounds" and "Networks with re-use").

The duplicated tree is exponentially large, but the subtree under a node
``(layer, position)`` is the same wherever it appears, so a two-state dynamic
programme memoised on ``(layer, position)`` computes the cut in ``O(L N K)``
steps. The graph model:

* a same-channel product node is a delta tensor of dimension ``D_l = 1 + r_l``
  (folded, with the constant channel). It either sits on one side, or is cut
  once at cost ``D_l`` however many of its legs cross;
* a linear map ``W`` is a node with an input leg (the folded input
  dimension, ``M`` for the first layer) and an output leg (``D_l``); the cut
  can pass on either side, and the cheaper one decides;
* a physical leg has dimension ``M`` and belongs to its site's side;
* padded positions (the constant state ``e_0``) and the RAC initial states
  are fixed vectors without inputs and may sit on either side for free;
* BatchNorm maps and the readout are absorbed into the neighbouring maps.

Costs are exponent vectors over the distinct bond dimensions, compared
through their logarithms, so the returned bound is the exact integer product
of the dimensions of the chosen bonds.
"""

import math

import numpy as np

from .._layout import convac_map_shapes, same_padding


class _Cuts:
    """Exponent-vector arithmetic for cut costs over a few bond dimensions.

    A cost is an int64 array whose last axis counts the cut bonds of each
    dimension; its value is ``prod(dims ** counts)``. Node values carry a
    leading axis of length 2: the cost given the node's upward leg sits on
    side A (index 0) or side B (index 1).
    """

    def __init__(self, dims):
        self.dims = [int(d) for d in dims]
        self.logs = np.log(np.asarray(self.dims, dtype=np.float64))

    def unit(self, kind):
        e = np.zeros(len(self.dims), dtype=np.int64)
        e[kind] = 1
        return e

    def minimum(self, a, b):
        a, b = np.broadcast_arrays(a, b)
        return np.where((a @ self.logs <= b @ self.logs)[..., None], a, b)

    def feed(self, value, kind):
        """Value seen through a linear map whose input leg has ``dims[kind]``."""
        return np.stack(
            [self.minimum(value[s], value[1 - s] + self.unit(kind)) for s in (0, 1)]
        )

    def delta(self, children, kind):
        """Delta node of ``dims[kind]`` over children stacked on axis 0.

        ``children[c, w]`` is the cost of child ``c`` when the map feeding the
        delta sits on side ``w``; the delta's leg to it has ``dims[kind]``.
        """
        leg = self.unit(kind)
        whole = [
            self.minimum(children[:, s], children[:, 1 - s] + leg).sum(axis=0) for s in (0, 1)
        ]
        split = self.minimum(children[:, 0], children[:, 1]).sum(axis=0) + leg
        return np.stack([self.minimum(w, split) for w in whole])

    def leaves(self, in_a):
        """Cost of each first-layer map over a physical leg (kind 0)."""
        on_b = np.asarray(~in_a, dtype=np.int64)
        value = np.zeros((2,) + in_a.shape + (len(self.dims),), dtype=np.int64)
        value[0, ..., 0] = on_b
        value[1, ..., 0] = 1 - on_b
        return value

    def result(self, cost, in_a, return_cut, labels):
        """Exact bound capped by ``M**|A|`` and ``M**|B|``, optionally with the cut."""
        counts = [int(c) for c in cost]
        bound = math.prod(d**c for d, c in zip(self.dims, counts))
        n_a = int(in_a.sum())
        for n_side in (n_a, in_a.size - n_a):
            if self.dims[0] ** n_side < bound:
                bound = self.dims[0] ** n_side
                counts = [n_side] + [0] * (len(self.dims) - 1)
        if not return_cut:
            return bound
        cut = {
            label: (dim, count)
            for label, dim, count in zip(labels, self.dims, counts)
            if count
        }
        return bound, cut


def _as_mask(in_a, shape):
    mask = np.asarray(in_a, dtype=bool)
    if mask.size != math.prod(shape):
        raise ValueError(
            f"in_a must have {math.prod(shape)} entries (one per site), got {mask.size}."
        )
    return mask.reshape(shape)


def _labels(n_layers):
    return ["sites"] + [f"layer {layer}" for layer in range(1, n_layers + 1)]


def convac_rank_bound(image_shape, local_dim, channels, kernel_size, pooling, in_a, *,
                      return_cut=False):
    """Min-cut bound on the Schmidt rank of an overlapping ConvAC's network state.

    Same architecture as :class:`~skqcnn.nn.OverlappingConvACNetwork`:
    stride-1 ``K`` (``K x K``) windows with constant-state padding split as
    in ``padding="same"``, optional ``P`` (``P x P``) product pooling merged
    into the window product (a single delta per pooled position; a clipped
    last block has fewer children), a global product and a readout. The bound holds for every class and every choice
    of weights.

    Parameters
    ----------
    image_shape : tuple of int
        ``(N,)`` or ``(H, W)``.
    local_dim : int
        Local dimension ``M``.
    channels : sequence of int
        Non-constant channels ``r_l``; bonds have the folded dimension
        ``1 + r_l``.
    kernel_size : int
    pooling : int or None
    in_a : array-like of bool
        Sites in subsystem A, shape ``(n_sites,)`` in row-major order or
        ``image_shape``.
    return_cut : bool, default=False
        Also return the bonds of the cut.

    Returns
    -------
    bound : int
        Exact product of the dimensions of a minimum cut of the duplicated
        tree, capped by ``M**|A|`` and ``M**|B|``.
    cut : dict
        Only with ``return_cut=True``: ``{label: (dimension, count)}`` for the
        bonds cut, labelled ``"sites"`` (physical legs) and ``"layer l"``
        (bonds of dimension ``1 + r_l``: a product node, or a map's leg next
        to one); a cap shows as ``|A|`` or ``|B|`` site legs.

    Examples
    --------
    >>> from skqcnn.entanglement._reused_input_mincut import convac_rank_bound
    >>> in_a = [True] * 4 + [False] * 4
    >>> convac_rank_bound((8,), 2, (3, 3), 2, None, in_a)
    16
    >>> convac_rank_bound((8,), 2, (3, 3), 1, None, in_a, return_cut=True)
    (4, {'layer 2': (4, 1)})
    """
    shapes = convac_map_shapes(image_shape, channels, kernel_size, pooling)
    in_a = _as_mask(in_a, shapes[0])
    cuts = _Cuts([local_dim] + [1 + r for r in channels])
    ndim = len(shapes[0])
    step = 1 if pooling is None else pooling
    left, right = same_padding(kernel_size)
    value = cuts.leaves(in_a)
    for layer, (in_shape, out_shape) in enumerate(zip(shapes, shapes[1:]), start=1):
        # A clipped last pooling block reads past the map: those window
        # products are the all-ones vector, free like the e_0 padding.
        padding = [(0, 0)] + [
            (left, right + step * n_out - n_in) for n_in, n_out in zip(in_shape, out_shape)
        ] + [(0, 0)]
        padded = np.pad(value, padding)
        children = []
        for pool_offset in np.ndindex(*(step,) * ndim):
            exists = np.ones(out_shape, dtype=bool)
            for axis, (q, n_in, n_out) in enumerate(zip(pool_offset, in_shape, out_shape)):
                along = np.arange(n_out) * step + q < n_in
                exists &= along.reshape((-1,) + (1,) * (ndim - 1 - axis))
            for kernel_offset in np.ndindex(*(kernel_size,) * ndim):
                index = tuple(
                    slice(q + o, q + o + step * n, step)
                    for q, o, n in zip(pool_offset, kernel_offset, out_shape)
                )
                children.append(padded[(slice(None),) + index] * exists[..., None])
        nodes = cuts.delta(np.stack(children), layer)
        value = cuts.feed(nodes, layer)
    n_layers = len(channels)
    positions = value.reshape(2, -1, value.shape[-1]).swapaxes(0, 1)
    top = cuts.delta(positions, n_layers)
    return cuts.result(cuts.minimum(top[0], top[1]), in_a, return_cut, _labels(n_layers))


def rac_rank_bound(n_steps, local_dim, hidden_sizes, in_a, *, return_cut=False):
    """Min-cut bound on the Schmidt rank of a deep RAC's network state.

    Same architecture as :class:`~skqcnn.nn.DeepRACNetwork`: node ``(l, t)``
    is the delta of ``(W^H h_{l,t-1}) * (W^I h_{l-1,t})``, the initial states
    are free, and the readout sits on ``h_{L,T}``. The bound holds for every
    class and every choice of weights.

    Parameters
    ----------
    n_steps : int
        Number of steps (sites) ``T``.
    local_dim : int
        Local dimension ``M``.
    hidden_sizes : sequence of int
        Non-constant channels ``R_l``; bonds have the folded dimension
        ``1 + R_l``.
    in_a : array-like of bool, shape (n_steps,)
        Steps in subsystem A.
    return_cut : bool, default=False
        Also return the bonds of the cut, as in :func:`convac_rank_bound`.

    Returns
    -------
    bound : int
        Capped by ``M**|A|`` and ``M**|B|``.
    cut : dict
        Only with ``return_cut=True``.

    Examples
    --------
    >>> from skqcnn.entanglement._reused_input_mincut import rac_rank_bound
    >>> rac_rank_bound(8, 3, (2,), [False] * 5 + [True] * 3)
    3
    >>> rac_rank_bound(8, 3, (2, 2), [False] * 5 + [True] * 3)  # the cap M**|A|
    27
    """
    in_a = _as_mask(in_a, (n_steps,))
    cuts = _Cuts([local_dim] + [1 + r for r in hidden_sizes])
    inputs = cuts.leaves(in_a)
    free = np.zeros((2, len(cuts.dims)), dtype=np.int64)
    for layer in range(1, len(hidden_sizes) + 1):
        nodes = []
        previous = free
        for t in range(n_steps):
            node = cuts.delta(np.stack([previous, inputs[:, t]]), layer)
            previous = cuts.feed(node, layer)
            nodes.append(node)
        inputs = cuts.feed(np.stack(nodes, axis=1), layer)
    top = nodes[-1]
    return cuts.result(
        cuts.minimum(top[0], top[1]), in_a, return_cut, _labels(len(hidden_sizes))
    )


def rac_rank_lower_bound(hidden_size, local_dim, n_a):
    """Levine et al.'s lower bound on the maximal rank of a deep RAC (Theorem 2).

    ``C(min(R, M) + |A| - 1, |A|)``: for a RAC of depth ``L >= 2`` with ``R``
    non-constant hidden channels and the partition in which A is the last
    ``|A|`` steps and B the first ``T - |A|`` steps (B a prefix), with
    ``|A| <= |B|``, some weights reach at least this rank. Rank at least ``k``
    is the non-vanishing of a polynomial in the weights, so almost every weight
    setting (Gaussian random weights, for instance) reaches it as well; the
    constant channel only enlarges the family. Depth 1 has rank at most
    ``1 + R`` instead, and the logarithm of the bound grows only
    logarithmically with ``|A|``.

    Parameters
    ----------
    hidden_size : int
        ``R``, channels per layer without the constant channel.
    local_dim : int
        ``M``.
    n_a : int
        ``|A|``.

    Returns
    -------
    bound : int

    Examples
    --------
    >>> from skqcnn.entanglement._reused_input_mincut import rac_rank_lower_bound
    >>> [rac_rank_lower_bound(3, 3, n) for n in (1, 2, 3)]
    [3, 6, 10]
    """
    return math.comb(min(hidden_size, local_dim) + n_a - 1, n_a)
