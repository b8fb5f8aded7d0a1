"""Product pooling of ConvAC maps, shared by the torch module and the entanglement engine.

A side ``n`` pooled by ``P`` becomes ``ceil(n / P)``: the last block is
clipped, which is the same as padding it with the identity of the reduction
(:func:`skqcnn._layout.convac_map_shapes`).
"""

import torch
from torch.nn import functional


def pool_product(h, pooling, axes=None):
    """Product over ``P`` (``P x P``) blocks (``P = pooling``; None: none) of a
    map ``(n, C, *positions)``, or of the positions at ``axes`` of another
    layout; a clipped last block is padded with 1, the identity of the
    product."""
    if pooling is None:
        return h
    for axis in range(2, h.dim()) if axes is None else axes:
        missing = -h.shape[axis] % pooling
        if missing:
            shape = list(h.shape)
            shape[axis] = missing
            h = torch.cat((h, h.new_ones(shape)), dim=axis)
        h = h.unflatten(axis, (-1, pooling)).prod(dim=axis + 1)
    return h


def pool_sum(h, pooling):
    """Sum over ``P`` (``P x P``) blocks (``P = pooling``; None: none) of a map
    ``(n, C, *positions)``, a clipped last block summing the positions it has."""
    if pooling is None:
        return h
    # avg_pool2d with a divisor of 1 sums each block; a 1D map is a row.
    if h.dim() == 3:
        return functional.avg_pool2d(h.unsqueeze(2), (1, pooling), ceil_mode=True,
                                     divisor_override=1).squeeze(2)
    return functional.avg_pool2d(h, pooling, ceil_mode=True, divisor_override=1)
