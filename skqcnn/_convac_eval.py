"""Eval-mode layers of an overlapping ConvAC on padded maps.

One implementation for the network's eval mode
(:class:`skqcnn.nn.OverlappingConvACNetwork`) and for the entanglement
engine's evaluation on one-hot configurations
(``skqcnn.entanglement._convac_maps``), as :mod:`skqcnn._pooling` is for
their pooling. Every factor vector is divided by its largest magnitude
before the window product, and the logarithms of these scalars are carried in
a log-scale map beside the map: exact, as every factor is linear in its input,
and no window product can overflow, nor underflow unless a channel is far
below the others (``docs/theory.rst``, section "Network states").
"""

import torch
from torch.nn import functional

from ._layout import same_padding
from ._pooling import pool_product, pool_sum

_CONVOLUTIONS = {1: functional.conv1d, 2: functional.conv2d}


def pad_map(h, padding, borders=None):
    """Surround a map ``(batch, C, *positions)`` with the constant state ``e_0``.

    ``padding`` is ``(before, after)`` on every side (``padding="same"``'s
    split); channel 0 is 1 outside the map and every other channel 0.
    ``borders``, a dict, caches the padded indicator of the outside per map
    shape across calls.
    """
    spatial = tuple(h.shape[2:])
    border = None if borders is None else borders.get(spatial)
    if border is None:
        border = functional.pad(h.new_zeros(spatial), list(padding) * len(spatial), value=1.0)
        if borders is not None:
            borders[spatial] = border
    padded = functional.pad(h, list(padding) * len(spatial))
    padded[:, 0] += border
    return padded


def pad_log_map(log_scale, padding):
    """Pad a log-scale map ``(batch, 1, *positions)`` with 0: ``e_0`` is not rescaled."""
    return functional.pad(log_scale, list(padding) * (log_scale.dim() - 2))


def eval_layer(padded, padded_log, rows, kernel_size, pooling, top=None):
    """One eval-mode layer over a padded map (any window of one) and its log-scale map.

    Parameters
    ----------
    padded : torch.Tensor of shape (batch, C_in, *padded_positions)
    padded_log : torch.Tensor of shape (batch, 1, *padded_positions)
    rows : torch.Tensor of shape (K^d, 1 + r, C_in)
        The folded maps of the layer (``folded_maps()["rows"]``): factor
        ``k`` at output ``t`` is ``rows[k] @ x_{t + k}``.
    kernel_size : int
    pooling : int or None
        Product pooling of the window products (a clipped last block is
        padded with ones).
    top : (torch.Tensor, torch.Tensor) or None, default=None
        For the last layer, the ``(scale, shift)`` of ``top_norm`` (the
        shift multiplies the constant channel), after which every position
        is divided by its largest entry.

    Returns
    -------
    h : torch.Tensor of shape (batch, 1 + r, *outputs)
        The pooled window products, rescaled.
    log_scale : torch.Tensor of shape (batch, 1, *outputs)
        Their log-scale map: ``h * exp(log_scale)`` is the layer's output.
    """
    batch, n_in = padded.shape[:2]
    n_spatial = padded.dim() - 2
    outputs = [n - kernel_size + 1 for n in padded.shape[2:]]
    window = kernel_size**n_spatial
    # Only the factors the outputs use (offset k at output t reads t + k),
    # offsets first: one batched product, and reductions over contiguous rows.
    # The view is laid out as the columns, so that they are one copy.
    padded = padded.contiguous()
    strides = padded.stride()
    windows = padded.as_strided((kernel_size,) * n_spatial + (n_in, batch) + tuple(outputs),
                                strides[2:] + (strides[1], strides[0]) + strides[2:],
                                padded.storage_offset())
    factors = torch.bmm(rows, windows.reshape(window, n_in, -1))
    largest = _largest_magnitude(factors)
    h = factors.div_(largest).prod(dim=0).view(-1, batch, *outputs).transpose(0, 1)
    ones = padded_log.new_ones((1, 1) + (kernel_size,) * n_spatial)
    log_scale = (torch.log(largest).sum(dim=0).view(1, batch, *outputs).transpose(0, 1)
                 + _CONVOLUTIONS[n_spatial](padded_log, ones))
    h, log_scale = pool_product(h, pooling), pool_sum(log_scale, pooling)
    if top is not None:
        scale, shift = (t.view((1, -1) + (1,) * n_spatial) for t in top)
        const = h[:, :1]
        h = torch.cat((const, h[:, 1:] * scale + const * shift), dim=1)
        largest = _largest_magnitude(h)
        h, log_scale = h.div_(largest), log_scale + torch.log(largest)
    return h, log_scale


def _largest_magnitude(x):
    """The largest magnitude over dimension 1 (1 where all entries are 0), to
    divide ``x`` by in place, its logarithm going to the log-scale map.

    Outside autograd: the scale cancels from ``h * exp(log_scale)``. Taken
    from the largest and smallest entries, as ``abs`` would first make a map
    of magnitudes to reduce.
    """
    with torch.no_grad():
        largest = torch.maximum(x.amax(dim=1, keepdim=True), -x.amin(dim=1, keepdim=True))
        return torch.where(largest > 0, largest, torch.ones_like(largest))


def eval_network(h, rows, kernel_size, pooling, top, borders=None):
    """Every eval-mode layer in turn, from an input map ``(batch, M, *positions)``.

    ``rows`` holds every layer's folded maps, ``top`` the ``(scale, shift)``
    of ``top_norm`` (as :func:`eval_layer`), and ``borders`` is passed to
    :func:`pad_map`; maps are padded as ``padding="same"``.

    Returns
    -------
    inputs : list of (torch.Tensor, torch.Tensor)
        Per layer its padded input map and padded log-scale map.
    last : (torch.Tensor, torch.Tensor)
        The last map after ``top_norm`` and its log-scale map.
    """
    padding = same_padding(kernel_size)
    log_scale = h.new_zeros((h.shape[0], 1) + tuple(h.shape[2:]))
    inputs = []
    for index, layer_rows in enumerate(rows):
        inputs.append((pad_map(h, padding, borders), pad_log_map(log_scale, padding)))
        h, log_scale = eval_layer(*inputs[-1], layer_rows, kernel_size, pooling,
                                  top if index == len(rows) - 1 else None)
    return inputs, (h, log_scale)
