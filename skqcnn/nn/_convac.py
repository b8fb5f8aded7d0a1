"""Overlapping convolutional arithmetic circuit (Levine et al., PRL 2019)."""

import itertools
import math

import torch
from torch import nn

from ._layers import ConstantChannelBatchNorm


def _same_padding(kernel_size):
    """Left and right padding that keep a stride-1 map the same size.

    The split matches ``padding="same"`` in :func:`torch.nn.functional.conv1d`:
    the output at position ``t`` sees the inputs
    ``t - (K - 1) // 2, ..., t + K // 2``.
    """
    return (kernel_size - 1) // 2, kernel_size // 2


class OverlappingConvACNetwork(nn.Module):
    """Overlapping ConvAC: stride-1 generalised convolutions and product pooling.

    Each of the ``L = len(channels)`` layers computes, at every position of a
    map that keeps the size of its input, the same-channel product over a
    ``K`` (1D) or ``K x K`` (2D) window of per-offset linear maps,
    ``y = (W^(1) x^(1)) * ... * (W^(K^d) x^(K^d))``, optionally followed by
    ``P`` (or ``P x P``) product pooling and then by a
    :class:`~skqcnn.nn.ConstantChannelBatchNorm`. A global product pooling
    over all positions and a linear readout give the class scores (Levine,
    Sharir, Cohen and Shashua, PRL 2019, fig. 1; with pooling, their Theorem 3).

    **Constant channel.** Hidden vectors have size ``1 + r_l``; channel 0 is
    the product of the input constant channels (``f_0``) in the receptive
    field: 1 on data, and on one-hot basis vectors the indicator that every
    site of the receptive field is in state 0. Every ``W^(k)`` maps channel 0
    to channel 0 and reads its bias from input channel 0, so biases and the
    BatchNorm shifts are linear maps and the network is a tensor network
    (``DESIGN.md`` section 1).

    **Padding.** A position outside the map holds the constant state ``e_0``
    (channel 0 equal to 1, all others 0), so a padded position contributes the
    fixed vector ``W^(k) e_0`` and the network is a tensor network over the
    real sites only. The split is that of ``padding="same"``: the window of
    output ``t`` covers inputs ``t - (K - 1) // 2, ..., t + K // 2``.

    **Stabilisation.** Products over whole images over- or underflow, so

    * after each layer a ``ConstantChannelBatchNorm`` centres the factors on 1
      (learnable mean 1, scale 0.4, running mean started at 1 because the
      window products start near 1; this keeps a freshly built network centred
      in eval mode as well);
    * the global product is taken as a sum of ``log |h|`` with a separate sign,
      and channel ``c >= 1`` is divided by ``exp(mu_c)``, where ``mu_c`` is the
      batch mean of its log-magnitude in training mode and a running average
      of it (momentum 0.1, like BatchNorm) in eval mode; channel 0 is 1 on
      data and is not rescaled.

    In eval mode every one of these steps is a fixed linear map or an exact
    product (the log-domain product changes only round-off), so the network is
    a tensor network. Batch statistics and lagging running averages differ,
    and products over many positions amplify the difference: call
    :func:`~skqcnn.nn.recalibrate_statistics` after training.

    **Network state.** Overlapping windows re-use inputs, so the scores are
    polynomials in each site's features, of degree equal to the number of
    copies of the site in the duplicated tree (``K^L`` for an interior site
    without pooling), not multilinear functions. Evaluated on one-hot basis
    vectors they give the coefficients of the network state ``Psi_y``, the
    duplicated tree ``DUP(A)`` of Levine et al. restricted to equal indices,
    which the entanglement tools measure. With ``kernel_size=1`` every site is
    used once and the score is ``<phi(x) | Psi_y>``.

    Parameters
    ----------
    image_shape : tuple of int
        ``(N,)`` for a 1D chain of sites, ``(H, W)`` for an image whose sites
        are numbered in row-major order.
    local_dim : int
        Size ``M`` of the per-site feature vectors; element 0 must be the
        constant function ``f_0 = 1``.
    channels : sequence of int
        Non-constant channels ``r_1, ..., r_L`` of the conv layers.
    kernel_size : int
        Window size ``K`` (``K x K`` in 2D), stride 1.
    n_classes : int
        Number of scores.
    pooling : int or None, default=None
        Product-pooling window ``P`` (``P x P`` in 2D) after each conv layer;
        it must divide the map size at every layer.

    Attributes
    ----------
    conv_weights : torch.nn.ParameterList
        Layer ``l`` holds the non-constant rows of the ``K^d`` maps ``W^(k)``,
        shape ``(K^d, r_l, 1 + r_{l-1})`` (``M`` inputs for layer 1); offsets
        in row-major order over the window.
    norms : torch.nn.ModuleList of ConstantChannelBatchNorm
        One per layer.
    readout : torch.nn.Linear
        ``1 + r_L`` pooled channels to ``n_classes`` scores, no bias (column 0
        multiplies the constant channel).
    running_log_scale : torch.Tensor
        Running mean of the log-magnitude of pooled channels ``1..r_L``.

    Examples
    --------
    >>> import torch
    >>> from skqcnn.nn._convac import OverlappingConvACNetwork
    >>> from skqcnn.nn._layers import LocalBasis
    >>> net = OverlappingConvACNetwork((8, 8), 3, channels=(4, 4), kernel_size=3,
    ...                                n_classes=10, pooling=2)
    >>> features = LocalBasis("fourier", 1)(0.5 * torch.rand(5, 64))
    >>> net(features).shape
    torch.Size([5, 10])
    """

    def __init__(self, image_shape, local_dim, channels, kernel_size, n_classes, pooling=None):
        super().__init__()
        self.image_shape = tuple(int(n) for n in image_shape)
        self.local_dim = int(local_dim)
        self.channels = tuple(int(r) for r in channels)
        self.kernel_size = int(kernel_size)
        self.n_classes = int(n_classes)
        self.pooling = None if pooling is None else int(pooling)
        self.map_shapes = convac_map_shapes(
            self.image_shape, self.channels, self.kernel_size, self.pooling
        )
        if self.local_dim < 1:
            raise ValueError(f"local_dim must be >= 1, got {local_dim!r}.")
        self.n_sites = math.prod(self.image_shape)
        ndim = len(self.image_shape)
        window = self.kernel_size**ndim
        self.offsets = list(itertools.product(range(self.kernel_size), repeat=ndim))

        weights = []
        fan_in = self.local_dim
        for r in self.channels:
            # Window factors start at 1 + small noise (bias 1 from the constant
            # channel) so that products carry signal; the noise of the whole
            # window product has a standard deviation of about 0.5.
            w = torch.randn(window, r, fan_in) * (0.5 / math.sqrt(window * max(fan_in - 1, 1)))
            if weights:
                # Inputs of deeper layers are BatchNorm outputs centred on 1; rows
                # summing to zero keep that common mean from biasing whole
                # channels, which a product over every position would amplify.
                w[:, :, 1:] -= w[:, :, 1:].mean(dim=2, keepdim=True)
            w[:, :, 0] = 1.0
            weights.append(nn.Parameter(w))
            fan_in = 1 + r
        self.conv_weights = nn.ParameterList(weights)
        # The global product multiplies n factors 1 + s z; a last-layer scale
        # s of order 1/sqrt(n) keeps its logarithm of order 1 at initialisation.
        n_last = math.prod(self.map_shapes[-1])
        scales = [0.4] * (len(self.channels) - 1) + [min(0.4, 2.0 / math.sqrt(n_last))]
        self.norms = nn.ModuleList(
            ConstantChannelBatchNorm(r, scale_init=s) for r, s in zip(self.channels, scales)
        )
        for norm in self.norms:
            norm.running_mean.fill_(1.0)
        self.log_scale_momentum = 0.1
        self.register_buffer("running_log_scale", torch.zeros(self.channels[-1]))
        self.readout = nn.Linear(1 + self.channels[-1], self.n_classes, bias=False)

    def forward(self, features):
        """Class scores.

        Parameters
        ----------
        features : torch.Tensor of shape (batch, n_sites, local_dim)
            Per-site feature vectors, sites in row-major order.

        Returns
        -------
        scores : torch.Tensor of shape (batch, n_classes)
        """
        log_abs, sign = self._pooled_log(features)
        return self.readout(sign * torch.exp(log_abs))

    def log_forward(self, features):
        """Logarithm of the absolute score and its sign, without over- or underflow.

        Equal to ``log |forward(features)|`` and ``sign(forward(features))``
        wherever those are representable; used by Monte Carlo sampling of
        ``|Psi_y|^2`` over large systems.

        Parameters
        ----------
        features : torch.Tensor of shape (batch, n_sites, local_dim)

        Returns
        -------
        log_abs, sign : torch.Tensor of shape (batch, n_classes)
            ``-inf`` and 0 where the score is exactly zero.
        """
        return self._readout_log(*self._pooled_log(features))

    def local_updater(self, configs):
        """Amplitudes under single-site changes of many configurations, by light cones.

        Changing one site changes only the outputs whose receptive fields
        contain it, so after the first evaluation each proposal costs a few
        windows per layer instead of a whole forward pass; Monte Carlo
        sampling of ``|Psi_y|^2`` uses it. For an eval-mode network (the
        BatchNorms are applied as fixed maps).

        Parameters
        ----------
        configs : torch.Tensor of int64, shape (batch, n_sites)
            Basis states (one-hot inputs) of every chain.

        Returns
        -------
        updater : object
            With ``log_amplitudes()`` giving ``(log_abs, sign)`` of the current
            configurations, ``propose(site, values)`` giving those of the
            configurations with ``site`` set to ``values`` (shape
            ``(batch,)``), and ``accept(mask)`` keeping the proposal where
            ``mask`` is True.

        Examples
        --------
        >>> import torch
        >>> from skqcnn.nn._convac import OverlappingConvACNetwork
        >>> net = OverlappingConvACNetwork((4, 4), 2, (2, 2), 3, 1).double().eval()
        >>> configs = torch.randint(2, (3, 16))
        >>> updater = net.local_updater(configs)
        >>> new_log, new_sign = updater.propose(5, torch.tensor([0, 1, 1]))
        >>> configs[:, 5] = torch.tensor([0, 1, 1])
        >>> one_hot = torch.nn.functional.one_hot(configs, 2).double()
        >>> torch.allclose(new_log, net.log_forward(one_hot)[0])
        True
        """
        return _LocalUpdater(self, configs)

    def _readout_log(self, log_abs, sign):
        """Log-magnitude and sign of the scores from those of the pooled channels."""
        top = log_abs.amax(dim=1, keepdim=True)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        scores = self.readout(sign * torch.exp(log_abs - top))
        return torch.log(scores.abs()) + top, torch.sign(scores)

    def _log_shift(self):
        """Eval-mode log-scale subtracted from each pooled channel (0 for channel 0)."""
        mu = self.running_log_scale
        return torch.cat((torch.zeros_like(mu[:1]), mu))

    def _pooled_log(self, features):
        """Log-magnitude and sign of the globally pooled, rescaled channels."""
        log_abs, sign = self._global_log_product(features)
        if self.training:
            mu = log_abs[:, 1:].mean(dim=0)
            with torch.no_grad():
                self.running_log_scale.lerp_(mu.detach(), self.log_scale_momentum)
            shift = torch.cat((torch.zeros_like(mu[:1]), mu))
        else:
            shift = self._log_shift()
        return log_abs - shift, sign

    def _global_log_product(self, features):
        """Log-magnitude and sign of the product of every position, per channel."""
        expected = (self.n_sites, self.local_dim)
        if features.dim() != 3 or tuple(features.shape[1:]) != expected:
            raise ValueError(
                f"features must have shape (batch, {expected[0]}, {expected[1]}), "
                f"got {tuple(features.shape)}."
            )
        h = features.reshape(features.shape[0], *self.image_shape, self.local_dim)
        h = h.movedim(-1, 1)
        for weight, norm in zip(self.conv_weights, self.norms):
            h = self._layer(self._pad(h), weight, norm)
        h = h.flatten(2)
        return torch.log(h.abs()).sum(dim=2), torch.sign(h).prod(dim=2)

    def _layer(self, padded, weight, norm):
        """Window products over a padded map, pooling and normalisation."""
        h = self._window_product(padded, weight)
        if self.pooling is not None:
            h = self._pool(h)
        return norm(h)

    def _pad(self, h):
        """Surround a map with the constant state ``e_0`` as ``padding="same"`` does."""
        spatial = h.shape[2:]
        pad_arg = list(_same_padding(self.kernel_size)) * len(spatial)
        padded = nn.functional.pad(h, pad_arg)
        border = nn.functional.pad(h.new_zeros(spatial), pad_arg, value=1.0)
        padded[:, 0] += border
        return padded

    def _window_product(self, padded, weight):
        """Same-channel products of the per-offset maps over every full window."""
        spatial = tuple(n - self.kernel_size + 1 for n in padded.shape[2:])
        # All offsets' maps in one contraction, each with the row e_0 that
        # carries the constant channel, so the window product needs no concat.
        window, n_out, fan_in = weight.shape
        const_row = weight.new_zeros(window, 1, fan_in)
        const_row[:, 0, 0] = 1.0
        full = torch.cat((const_row, weight), dim=1).reshape(window * (1 + n_out), fan_in)
        projected = torch.einsum("od,bd...->bo...", full, padded)
        out = None
        for k, offset in enumerate(self.offsets):
            index = (slice(None), slice(k * (1 + n_out), (k + 1) * (1 + n_out))) + tuple(
                slice(o, o + n) for o, n in zip(offset, spatial)
            )
            out = projected[index] if out is None else out * projected[index]
        return out

    def _pool(self, h):
        """Same-channel product over non-overlapping ``P`` (``P x P``) blocks."""
        p = self.pooling
        for axis in range(2, h.dim()):
            h = h.unflatten(axis, (h.shape[axis] // p, p)).prod(dim=axis + 1)
        return h


class _LocalUpdater:
    """Cached layer maps of many configurations, updated one site at a time.

    All chains change the same site in a proposal, so the light cone is the
    same box for all of them and every update is a slice. The global product
    is kept as per-channel sums of log-magnitudes over the non-zero factors,
    zero counts and signs, so factors can be swapped in and out exactly.
    """

    def __init__(self, net, configs):
        self.net = net
        dtype = net.readout.weight.dtype
        self.left, self.right = _same_padding(net.kernel_size)
        features = nn.functional.one_hot(configs, net.local_dim).to(dtype)
        h = features.reshape(configs.shape[0], *net.image_shape, net.local_dim).movedim(-1, 1)
        self.inputs = []
        with torch.no_grad():
            for weight, norm in zip(net.conv_weights, net.norms):
                self.inputs.append(net._pad(h))
                h = net._layer(self.inputs[-1], weight, norm)
        self.top = h
        self.stats = _log_stats(h.flatten(2))
        self.pending = None

    @torch.no_grad()
    def log_amplitudes(self):
        return self._amplitudes(self.stats)

    def _amplitudes(self, stats):
        log_sum, zeros, sign = stats
        empty = zeros > 0
        log_abs = torch.where(empty, -torch.inf, log_sum - self.net._log_shift())
        return self.net._readout_log(log_abs, torch.where(empty, 0.0, sign))

    @torch.no_grad()
    def propose(self, site, values):
        net = self.net
        k, step = net.kernel_size, net.pooling or 1
        lo = list(int(i) for i in torch.unravel_index(torch.tensor(site), net.image_shape))
        hi = list(lo)
        patch = nn.functional.one_hot(values, net.local_dim).to(self.top.dtype)
        patch = patch.reshape(patch.shape + (1,) * len(lo))
        changes = []
        for padded, weight, norm in zip(self.inputs, net.conv_weights, net.norms):
            sizes = [n - k + 1 for n in padded.shape[2:]]
            out_lo = [max(a - self.right, 0) // step for a in lo]
            out_hi = [min(b + self.left, n - 1) // step for b, n in zip(hi, sizes)]
            conv_lo = [a * step for a in out_lo]
            conv_hi = [b * step + step - 1 for b in out_hi]
            # Padded coordinates: real position r sits at r + left.
            changed = _box([a + self.left for a in lo], [b + self.left for b in hi])
            changes.append((padded, changed, patch))
            window = padded[_box(conv_lo, [b + k - 1 for b in conv_hi])].clone()
            inner = [a + self.left - c for a, c in zip(lo, conv_lo)]
            window[_box(inner, [a + b - c for a, b, c in zip(inner, hi, lo)])] = patch
            patch = net._layer(window, weight, norm)
            lo, hi = out_lo, out_hi
        region = _box(lo, hi)
        old = _log_stats(self.top[region].flatten(2))
        new = _log_stats(patch.flatten(2))
        log_sum, zeros, sign = self.stats
        stats = (log_sum - old[0] + new[0], zeros - old[1] + new[1], sign * old[2] * new[2])
        changes.append((self.top, region, patch))
        self.pending = (changes, stats)
        return self._amplitudes(stats)

    def accept(self, mask):
        changes, stats = self.pending
        for target, region, patch in changes:
            keep = mask.reshape((-1,) + (1,) * (patch.dim() - 1))
            target[region] = torch.where(keep, patch, target[region])
        self.stats = tuple(
            torch.where(mask.unsqueeze(1), new, old) for new, old in zip(stats, self.stats)
        )
        self.pending = None


def _box(lo, hi):
    """Index of the inclusive box ``lo..hi`` over the spatial axes."""
    return (slice(None), slice(None)) + tuple(slice(a, b + 1) for a, b in zip(lo, hi))


def _log_stats(h):
    """Per channel over the last axis: sum of log|h| over non-zeros, zero count, sign."""
    nonzero = h != 0
    log_sum = torch.where(nonzero, torch.log(h.abs()), 0.0).sum(dim=-1)
    sign = torch.where(nonzero, torch.sign(h), 1.0).prod(dim=-1)
    return log_sum, (~nonzero).sum(dim=-1), sign


def convac_map_shapes(image_shape, channels, kernel_size, pooling):
    """Map shape seen by each conv layer, validating kernel and pooling sizes.

    Parameters
    ----------
    image_shape : tuple of int
        ``(N,)`` or ``(H, W)``.
    channels : sequence of int
        Non-constant channels per layer (only the number of layers and their
        positivity matter here).
    kernel_size : int
        Window size ``K``.
    pooling : int or None
        Pooling window ``P`` after each layer.

    Returns
    -------
    shapes : list of tuple of int
        ``len(channels) + 1`` shapes: the input map of every layer, then the
        map that the global pooling multiplies over.

    Raises
    ------
    ValueError
        If the image is not 1D or 2D, the kernel is larger than a map, or the
        pooling window does not divide a map.

    Examples
    --------
    >>> from skqcnn.nn._convac import convac_map_shapes
    >>> convac_map_shapes((8, 8), (4, 4), kernel_size=3, pooling=2)
    [(8, 8), (4, 4), (2, 2)]
    """
    shape = tuple(int(n) for n in image_shape)
    if len(shape) not in (1, 2) or min(shape) < 1:
        raise ValueError(f"image_shape must be (N,) or (H, W), got {image_shape!r}.")
    if len(channels) < 1 or min(channels) < 1:
        raise ValueError(
            f"channels must be a non-empty sequence of positive ints, got {channels!r}."
        )
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel_size!r}.")
    if pooling is not None and pooling < 1:
        raise ValueError(f"pooling must be None or >= 1, got {pooling!r}.")
    shapes = [shape]
    for layer in range(len(channels)):
        if kernel_size > min(shape):
            raise ValueError(
                f"kernel_size={kernel_size} is larger than the {shape} map of layer "
                f"{layer + 1}."
            )
        if pooling is not None:
            if any(n % pooling for n in shape):
                raise ValueError(
                    f"pooling={pooling} does not divide the {shape} map of layer "
                    f"{layer + 1}."
                )
            shape = tuple(n // pooling for n in shape)
        shapes.append(shape)
    return shapes
