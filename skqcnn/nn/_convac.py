"""Overlapping convolutional arithmetic circuit (Levine et al., PRL 2019)."""

import copy
import functools
import itertools
import math

import torch
from torch import nn

from .._convac_eval import eval_network
from .._layout import convac_map_shapes, same_padding
from .._pooling import pool_product, pool_sum
from ._layers import ConstantChannelBatchNorm, check_site_features

# Standard deviation over the data of the logarithm of every layer's window
# and pooling product (to first order); see _FactorNorm.
FACTOR_SPREAD = 0.5

# Fewest window-and-pool sums per channel from which a batch sets the divisor
# of _FactorNorm. Every one of a layer's n factors shares it, so its error
# enters the product to the power n: on a map of one position the last batch
# of an epoch (3 samples on the digits) gave a divisor 25 times too small and
# products of 144 factors overflowed float32.
MIN_SPREAD_VALUES = 8

# Recalibration works on pieces of the data of this many positions times
# samples, whatever the batches it is given: its columns then stay in the
# cache. A 32 x 32 ConvAC recalibrated on the 1,347 training digits in 0.9 s
# in pieces of 8 samples, in 3.2 s in batches of 1,024 (CPU, one thread).
_RECALIBRATION_COLUMNS = 2**13


class OverlappingConvACNetwork(nn.Module):
    """Overlapping ConvAC: stride-1 generalised convolutions and product pooling.

    Each of the ``L = len(channels)`` layers computes, at every position of a
    map that keeps the size of its input, the same-channel product over a
    ``K`` (1D) or ``K x K`` (2D) window of per-offset linear maps,
    ``y = (W^(1) x^(1)) * ... * (W^(K^d) x^(K^d))``, optionally followed by
    ``P`` (or ``P x P``) product pooling. A global product pooling over all
    positions of the last map and a linear readout give the class scores
    (Levine, Sharir, Cohen and Shashua, PRL 2019, fig. 1; with pooling, their
    Theorem 3).

    **Constant channel.** Hidden vectors have size ``1 + r_l``; channel 0 is
    the product of the input constant channels (``f_0``) in the receptive
    field: 1 on data, and on one-hot basis vectors the indicator that every
    site of the receptive field is in state 0. Every factor map reads its
    bias from input channel 0, so biases and BatchNorm shifts are linear maps
    and the network is a tensor network (``docs/theory.rst``, section "Network states").

    **Padding.** A window position outside the map holds the constant state
    ``e_0`` (channel 0 equal to 1, all others 0) and contributes the fixed
    vector ``W^(k) e_0``; the split is that of ``padding="same"`` (the window
    of output ``t`` covers inputs ``t - (K - 1) // 2, ..., t + K // 2``), and
    a kernel may be larger than a map. Where ``P`` does not divide a side,
    the last pooling block is clipped, i.e. padded with the all-ones vector,
    the identity of the product: a side ``n`` becomes ``ceil(n / P)``. Both
    are fixed vectors, so the network is a tensor network over the real sites
    only.

    **Normalisation of the factors.** A layer multiplies ``n = K^d P^d``
    factors per output, and a product of many factors is heavy-tailed unless
    each is close to 1; a BatchNorm of such a product is set by a few
    outliers and passes almost no signal on. So every factor, not the
    product, is normalised: ``W^(k) x`` is standardised per (offset, channel)
    over the data and becomes ``1 + w_c z / D_c``, where ``D_c`` makes the
    logarithm of the layer's product spread by about ``FACTOR_SPREAD`` over
    the data at any kernel, pooling and depth, and the gain ``w_c`` is
    learnable (see ``_FactorNorm``). The factors' mean is fixed at 1: a
    learnable mean ``b_c`` would only add the channel scale ``b_c^n``, which
    the next layer's maps absorb, and at ``n = 144`` factors it overflowed
    float32. ``top_norm``, a
    :class:`~skqcnn.nn.ConstantChannelBatchNorm`, then centres the last
    map's products on 1 with a spread ``FACTOR_SPREAD / sqrt(n_top)`` per
    position before the global product over its ``n_top`` positions, and
    ``readout_norm`` standardises the pooled channels before the readout.
    In eval mode each is a fixed linear map whose shift multiplies the
    constant channel.

    **Global product and scale.** The global product is taken as a sum of
    ``log |h|`` with a separate sign, and channel ``c >= 1`` is divided by
    ``exp(mu_c)``, where ``mu_c`` is the batch mean of its log-magnitude in
    training mode and a running average of it (momentum 0.1) in eval mode,
    which :meth:`recalibrate_from_data` sets; channel 0 is 1
    on data and is not rescaled. In eval mode every factor vector is also
    divided by its largest magnitude before the window product (and every
    position of the last map by its largest entry), and the logarithm of
    that scalar is carried beside the map (every factor is linear in its
    input, so this is exact): on one-hot configurations of large images the
    window products would otherwise under- or overflow long before the
    global product. The entanglement engine evaluates the same layers
    (``skqcnn._convac_eval``).

    In eval mode every step is a fixed linear map or an exact product (the
    log-domain bookkeeping changes only round-off), so the network is a
    tensor network. Batch statistics and lagging running averages differ:
    call :func:`~skqcnn.nn.recalibrate_statistics` after training.

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
        a side ``n`` becomes ``ceil(n / P)``.
    generator : torch.Generator or None, default=None
        Source of every random initial value (factor maps and readout);
        None uses torch's global generator.
    score_offset : float, default=0.0
        Initial common score of every class. When not 0, the readout's
        column 0 (which multiplies the constant channel) starts at this value
        and its other columns are drawn 10 times smaller, so that no score
        starts near 0: Born-rule probabilities ``alpha_y**2 / sum alpha**2``
        (``loss="cross_entropy"``) then start uniform, and their gradients,
        which grow as ``1 / alpha_y``, start bounded.

    Attributes
    ----------
    conv_weights : torch.nn.ParameterList
        Layer ``l`` holds the non-constant rows of the ``K^d`` maps ``W^(k)``,
        shape ``(K^d, r_l, 1 + r_{l-1})`` (``M`` inputs for layer 1); offsets
        in row-major order over the window.
    norms : torch.nn.ModuleList
        Every normalisation, in the order applied: the factor normalisation
        of each layer (``running_mean`` and ``running_var`` of shape
        ``(K^d, r_l)``, ``running_spread``, and per channel the learnable
        ``weight`` scaling the spread), then
        ``top_norm`` and ``readout_norm``.
    top_norm : ConstantChannelBatchNorm
        ``norms[-2]``: after the last layer's products, before the global
        product.
    readout_norm : ConstantChannelBatchNorm
        ``norms[-1]``: standardises the globally pooled channels ``1..r_L``.
    readout : torch.nn.Linear
        ``1 + r_L`` pooled channels to ``n_classes`` scores, no bias (column 0
        multiplies the constant channel).
    running_log_scale : torch.Tensor
        Running mean of the log-magnitude of pooled channels ``1..r_L``.
    map_shapes : list of tuple of int
        Input map of every layer, then the map of the global product.

    Examples
    --------
    >>> import torch
    >>> from skqcnn.nn._convac import OverlappingConvACNetwork
    >>> from skqcnn.nn._layers import LocalBasis
    >>> net = OverlappingConvACNetwork((8, 7), 3, channels=(4, 4), kernel_size=3,
    ...                                n_classes=10, pooling=2,
    ...                                generator=torch.Generator().manual_seed(0))
    >>> net.map_shapes
    [(8, 7), (4, 4), (2, 2)]
    >>> features = LocalBasis("fourier", 1)(0.5 * torch.rand(5, 56))
    >>> net(features).shape
    torch.Size([5, 10])
    """

    def __init__(self, image_shape, local_dim, channels, kernel_size, n_classes, pooling=None,
                 generator=None, score_offset=0.0):
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

        weights, norms = [], []
        fan_in = self.local_dim
        for r in self.channels:
            # The normalisation after each map sets the factor's scale; the
            # maps only need independent directions. Their constant column
            # (the bias) starts at 0: the normalisation supplies the mean.
            w = torch.randn(window, r, fan_in, generator=generator)
            w[:, :, 0] = 0.0
            weights.append(nn.Parameter(w / math.sqrt(max(fan_in - 1, 1))))
            norms.append(_FactorNorm(window, r))
            fan_in = 1 + r
        self.conv_weights = nn.ParameterList(weights)
        # Without a map between the last window products and the global
        # product, the two would merge into one product over every factor.
        # This one centres the last map on 1 with a spread 1 / sqrt(n) per
        # position, so the log of the global product over n positions starts
        # with a spread of order 1.
        n_top = math.prod(self.map_shapes[-1])
        top_norm = ConstantChannelBatchNorm(self.channels[-1],
                                            scale_init=FACTOR_SPREAD / math.sqrt(n_top))
        top_norm.running_mean.fill_(1.0)
        self.log_scale_momentum = 0.1
        self.register_buffer("running_log_scale", torch.zeros(self.channels[-1]))
        # The pooled channels are exp of log-sums of spread about
        # FACTOR_SPREAD around 1: standardising them (the shift multiplies
        # the constant channel) lets the readout see their variation, not
        # their common value 1, which it would otherwise have to cancel.
        readout_norm = ConstantChannelBatchNorm(self.channels[-1], mean_init=0.0,
                                                scale_init=1.0)
        readout_norm.running_mean.fill_(1.0)
        self.norms = nn.ModuleList(norms + [top_norm, readout_norm])
        # skip_init: nn.Linear would draw (and discard) values from the global RNG.
        self.readout = nn.utils.skip_init(nn.Linear, fan_in, self.n_classes, bias=False)
        bound = 1.0 / math.sqrt(fan_in) * (0.1 if score_offset else 1.0)
        with torch.no_grad():
            self.readout.weight.copy_(
                bound * (2 * torch.rand(self.readout.weight.shape, generator=generator) - 1)
            )
            if score_offset:
                self.readout.weight[:, 0] = float(score_offset)

    @property
    def top_norm(self):
        """The BatchNorm between the last window products and the global product."""
        return self.norms[-2]

    @property
    def readout_norm(self):
        """The BatchNorm of the globally pooled channels, before the readout."""
        return self.norms[-1]

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
        if self.training and features.shape[0] > 1:
            return _TrainingHead.apply(self._last_training_map(features), self,
                                       self.top_norm.weight, self.top_norm.bias,
                                       self.readout_norm.weight, self.readout_norm.bias,
                                       self.readout.weight)
        log_abs, sign = self._pooled_log(features)
        return self.readout(self.readout_norm(sign * torch.exp(log_abs)))

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

    def folded_maps(self):
        """Eval-mode maps of the network as plain float64 tensors.

        What the entanglement engine needs to evaluate the network on one-hot
        configurations (and to update it by light cones) without the module:
        every normalisation folded into a fixed linear map, as in eval mode.

        Returns
        -------
        maps : dict
            ``"image_shape"``, ``"kernel_size"``, ``"pooling"`` (int or None)
            and ``"padding"`` (positions of ``e_0`` before and after each side,
            as ``padding="same"``); ``"rows"``, per layer the folded maps of
            shape ``(K^d, 1 + r_l, C_in)`` (``C_in`` is ``local_dim`` for the
            first layer, ``1 + r_{l-1}`` after), offsets in row-major order,
            row 0 copying the constant channel, so that factor ``k`` at output
            ``t`` is ``rows[k] @ x_{t + k}`` on the padded map; ``"top"``, the
            ``(scale, shift)`` of ``top_norm``, each ``(r_L,)``;
            ``"log_shift"``, the log-scale subtracted from each pooled channel,
            ``(1 + r_L,)``; and ``"readout"``, ``(n_classes, 1 + r_L)``, with
            ``readout_norm`` folded in.

        Examples
        --------
        >>> from skqcnn.nn._convac import OverlappingConvACNetwork
        >>> maps = OverlappingConvACNetwork((8, 7), 3, (4, 2), 3, 10, pooling=2).folded_maps()
        >>> [tuple(rows.shape) for rows in maps["rows"]], tuple(maps["readout"].shape)
        ([(9, 5, 3), (9, 3, 5)], (10, 3))
        """
        # A float64 copy, so that the folded scales are not rounded to float32.
        net = copy.deepcopy(self).to(device="cpu", dtype=torch.float64)
        with torch.no_grad():
            rows = net._eval_rows()
            scale, shift = net.readout_norm.affine()
            weight = net.readout.weight
            readout = torch.cat(((weight[:, :1] + weight[:, 1:] @ shift[:, None]),
                                 weight[:, 1:] * scale), dim=1)
            return {
                "image_shape": self.image_shape,
                "kernel_size": self.kernel_size,
                "pooling": self.pooling,
                "padding": same_padding(self.kernel_size),
                "rows": rows,
                "top": net.top_norm.affine(),
                "log_shift": net._log_shift(),
                "readout": readout,
            }

    def _eval_rows(self):
        """Every layer's eval-mode maps ``(K^d, 1 + r, C_in)``, the factor
        normalisation folded in (:func:`_folded_rows`)."""
        return [_folded_rows(weight, *norm.affine())
                for weight, norm in zip(self.conv_weights, self.norms)]

    def _readout_log(self, log_abs, sign):
        """Log-magnitude and sign of the scores from those of the pooled channels."""
        top = log_abs.amax(dim=1, keepdim=True)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        if self.training:
            # Batch statistics are not homogeneous: no common factor out.
            top = torch.zeros_like(top)
        scores = self.readout(self.readout_norm(sign * torch.exp(log_abs - top)))
        return torch.log(scores.abs()) + top, torch.sign(scores)

    def _log_shift(self):
        """Eval-mode log-scale subtracted from each pooled channel (0 for channel 0)."""
        mu = self.running_log_scale
        return torch.cat((torch.zeros_like(mu[:1]), mu))

    def _pooled_log(self, features):
        """Log-magnitude and sign of the globally pooled, rescaled channels."""
        log_abs, sign = self.pooled_log_magnitudes(features)
        if self.training:
            mu = log_abs[:, 1:].mean(dim=0)
            with torch.no_grad():
                self.running_log_scale.lerp_(mu.detach(), self.log_scale_momentum)
            shift = torch.cat((torch.zeros_like(mu[:1]), mu))
        else:
            shift = self._log_shift()
        return log_abs - shift, sign

    def pooled_log_magnitudes(self, features):
        """Log-magnitude and sign of the global product of every channel.

        The product over all positions of the last map, before the readout
        and before the log-scale ``running_log_scale`` is subtracted.

        Parameters
        ----------
        features : torch.Tensor of shape (batch, n_sites, local_dim)

        Returns
        -------
        log_abs, sign : torch.Tensor of shape (batch, 1 + channels[-1])
            ``-inf`` and 0 where a channel's product is exactly zero.
        """
        if not self.training:
            _, last = eval_network(self._input_map(features), self._eval_rows(), self.kernel_size,
                                   self.pooling, self.top_norm.affine())
            return _global_log_product(*last)
        h = self._last_training_map(features)
        return _global_log_product(self.top_norm(h.movedim(-1, 0)), None, floored=True)

    def _last_training_map(self, features):
        """The last layer's training-mode products ``(1 + r_L, *positions, batch)``."""
        # Maps (C, *positions, batch): every layer's factors are then one
        # batched matrix product over the window offsets, their product a
        # reduction over the leading dimension, and a window's shift moves
        # whole runs of positions times the batch.
        h = self._training_map(features)
        for layer in range(len(self.channels)):
            h = self._training_layer(h, layer)
        return h

    @torch.no_grad()
    def recalibrate_from_data(self, batches):
        """Set every running statistic from data, layer by layer, weights fixed.

        Layer by layer, from the first: the running mean and (biased)
        variance of every factor map ``W^(k) x`` per (offset, channel) and
        the divisor ``running_spread`` become those of the data, with the
        layers before in eval mode, i.e. with the statistics just set; then
        those of ``top_norm``; then ``running_log_scale`` becomes the mean
        over ``batches`` of the log-magnitude of every pooled channel, and
        the running mean and variance of ``readout_norm`` those of the pooled
        channels rescaled by it. Averages of per-batch statistics computed in
        training mode would instead describe inputs normalised with batch
        statistics, not the eval-mode inputs: over several layers of products
        of many factors that gap grows until eval-mode predictions differ from
        training-mode ones. :func:`~skqcnn.nn.recalibrate_statistics` calls
        it after recomputing the running statistics of other modules. The
        network is left in eval mode.

        Parameters
        ----------
        batches : iterable of torch.Tensor
            Feature batches of shape ``(batch, n_sites, local_dim)``.

        Examples
        --------
        >>> import torch
        >>> from skqcnn.nn._convac import OverlappingConvACNetwork
        >>> net = OverlappingConvACNetwork((4,), 2, (2,), 2, n_classes=1)
        >>> features = torch.cat((torch.ones(8, 4, 1), torch.rand(8, 4, 1)), dim=2)
        >>> net.recalibrate_from_data([features])
        >>> log_abs, _ = net.pooled_log_magnitudes(features)
        >>> torch.allclose(log_abs[:, 1:].mean(dim=0), net.running_log_scale)
        True
        """
        self.eval()
        # Maps (C, *positions, batch), as in training mode, in pieces of at
        # most _RECALIBRATION_COLUMNS positions times samples.
        per_piece = max(1, _RECALIBRATION_COLUMNS // self.n_sites)
        maps = [self._training_map(piece) for features in batches
                for piece in features.split(per_piece) if len(piece)]
        if not maps:
            raise ValueError("batches is empty.")
        n_spatial = len(self.image_shape)
        for layer, (weight, norm) in enumerate(zip(self.conv_weights, self.norms)):
            # The input at every window offset is recomputed for each pass,
            # not stored: all of it would not fit in memory on large images.
            def columns(dtype):
                for h in maps:
                    yield _offset_columns(h.to(dtype), self.kernel_size)

            # Its moments, in float64, give those of every factor map, as in
            # training mode.
            total, first, second = 0, 0.0, 0.0
            for batch_columns in columns(torch.float64):
                count = batch_columns.shape[-1]
                mean, cov = _column_moments(batch_columns)
                total += count
                first = first + count * mean
                second = second + count * (cov + mean.unsqueeze(2) * mean.unsqueeze(1))
            mean = first / total
            cov = second / total - mean.unsqueeze(2) * mean.unsqueeze(1)
            w = weight.double()
            map_mean, map_var, _ = _factor_moments(w, mean, cov)
            map_var = map_var.clamp(min=0)
            norm.running_mean.copy_(map_mean)
            norm.running_var.copy_(map_var)
            ratio = w / torch.sqrt(map_var + norm.eps).unsqueeze(-1)
            sums = (_pooled_window_sums(ratio, batch_columns, mean,
                                        functools.partial(self._pool_blocks, shape=h.shape[1:])
                                        ).transpose(0, 1)
                    for h, batch_columns in zip(maps, columns(torch.float64)))
            # As batch_divisor computes it on one batch.
            _, spread = _moments(sums, dims=(0,) + tuple(range(2, 2 + n_spatial)), correction=1)
            norm.running_spread.copy_(torch.sqrt(spread + norm.eps) / FACTOR_SPREAD)
            # The eval-mode products at their true scale (no rescaling: on
            # data they stay in range), the next layer's input.
            rows = _folded_rows(weight, *norm.affine())
            maps = [_window_pool_product(rows, batch_columns, (-1,) + h.shape[1:],
                                         self.pooling)[1]
                    for h, batch_columns in zip(maps, columns(weight.dtype))]
        maps = [h.movedim(-1, 0) for h in maps]
        top_mean, top_var = _moments([h[:, 1:] for h in maps],
                                     dims=(0,) + tuple(range(2, 2 + n_spatial)))
        self.top_norm.running_mean.copy_(top_mean)
        self.top_norm.running_var.copy_(top_var)
        pooled = [_global_log_product(self.top_norm(h), None, floored=True) for h in maps]
        log_abs = torch.cat([log_abs for log_abs, _ in pooled])[:, 1:]
        sign = torch.cat([sign for _, sign in pooled])[:, 1:]
        self.running_log_scale.copy_(log_abs.mean(dim=0))
        values = sign * torch.exp(log_abs - self.running_log_scale)
        self.readout_norm.running_mean.copy_(values.mean(dim=0))
        # Biased, as training mode normalises a batch.
        self.readout_norm.running_var.copy_(values.var(dim=0, correction=0))

    def _input_map(self, features):
        """Features ``(batch, n_sites, local_dim)`` as the map ``(batch, local_dim, *image_shape)``."""
        check_site_features(features, self.n_sites, self.local_dim)
        return features.reshape(features.shape[0], *self.image_shape, self.local_dim).movedim(-1, 1)

    def _training_map(self, features):
        """Features ``(batch, n_sites, local_dim)`` as the training-mode map
        ``(local_dim, *image_shape, batch)``."""
        return self._input_map(features).movedim(0, -1)

    def _pool_blocks(self, rows, shape):
        """Rows ``(m, n)`` over a map ``shape = (*positions, batch)`` summed
        over the pooling blocks, as ``(m, batch, *blocks)``."""
        return pool_sum(rows.view((-1,) + tuple(shape)).movedim(-1, 1), self.pooling)

    def _training_layer(self, x, layer):
        """Training-mode layer ``layer`` on a map ``(C_in, *positions, batch)``.

        The batch statistics of every factor map follow from moments of the
        (small) input at each window offset, so the factor normalisation
        folds into the maps as in eval mode, and the ``K^d (1 + r)`` factors
        of every position are one batched matrix product: no map of factor
        values is standardised, and the window product is a reduction over
        the offsets (:class:`_TrainingLayer`). Returns the pooled products
        ``(1 + r, *positions, batch)``.
        """
        norm = self.norms[layer]
        return _TrainingLayer.apply(x, self.conv_weights[layer], norm.weight, norm,
                                    self.kernel_size, self.pooling,
                                    functools.partial(self._pool_blocks, shape=x.shape[1:]))


class _FactorNorm(nn.Module):
    """Normalisation of the factors ``W^(k) x`` of one layer to ``1 + w_c z / D_c``.

    ``z`` is ``W^(k) x`` standardised per (offset, channel) over the data,
    and the divisor ``D_c = S_c / FACTOR_SPREAD``, where ``S_c`` is the
    standard deviation of the window-and-pooling sum of ``z`` of channel
    ``c``: as ``log prod (1 + s z) ~ s sum z``, with the learnable gain
    ``w_c`` at its initial value 1 the logarithm of every
    product has a spread close to ``FACTOR_SPREAD`` over the data, whatever
    the number of factors and their correlations (neighbouring windows
    overlap, so a fixed ``1 / sqrt(n)`` would not do). Products of many
    factors are heavy-tailed unless each factor is close to 1, and a
    heavy-tailed input makes the next standardisation useless (a few
    outliers set its scale).

    In training mode the statistics are those of the batch, and running
    averages (momentum 0.1) are kept; the gradient flows through the mean
    and variance of every factor map but not through ``D``. In eval mode the
    running ones are used, and the factor ``u_0 + w_c (W^(k) x - m u_0) /
    (sigma D_c)`` is a fixed linear map of ``x`` (``u_0`` its constant
    channel), so the network stays a tensor network.
    """

    def __init__(self, window, n_channels, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        # Identity statistics, as in BatchNorm: a fresh network's eval mode is
        # a placeholder until training or recalibration sets them.
        self.register_buffer("running_mean", torch.zeros(window, n_channels))
        self.register_buffer("running_var", torch.ones(window, n_channels))
        self.register_buffer("running_spread", torch.ones(n_channels))
        self.weight = nn.Parameter(torch.ones(n_channels))

    @torch.no_grad()
    def batch_divisor(self, ratio, columns, mean, pool_sum):
        """Training-mode divisor ``D`` ``(C,)`` from the batch, without a gradient.

        ``ratio`` holds ``W^(k) / sigma_k`` ``(K^d, C, d)``; ``columns``,
        ``mean`` and ``pool_sum`` are as in :func:`_batch_folded_rows`. ``D`` is a
        scale set by the data, like the divisor of a running statistic, and
        the gain ``w_c`` learns the rest: its gradient through the window sums
        cost a sixth of a training step at 16 x 16 and did not change what the
        network learns (``docs/convac.rst``, "Training cost"). Updates
        ``running_spread``, except with fewer than ``MIN_SPREAD_VALUES`` sums
        per channel, where the running value is returned.
        """
        summed = _pooled_window_sums(ratio, columns, mean, pool_sum)
        if summed.numel() // summed.shape[0] < MIN_SPREAD_VALUES:
            return self.running_spread.clone()
        # Written out: torch.var over rows of a few thousand values took ten
        # times as long.
        centred = summed.flatten(1)
        centred = centred - centred.mean(dim=1, keepdim=True)
        var = centred.square().sum(dim=1) / (centred.shape[1] - 1)
        spread = torch.sqrt(var + self.eps) / FACTOR_SPREAD
        self.running_spread.lerp_(spread, self.momentum)
        return spread

    def affine(self):
        """Eval-mode ``(scale, shift)``, shape ``(K^d, C)``: the factor is
        ``scale * W^(k) x + shift * u_0``."""
        scale = self.weight / (self.running_spread * torch.sqrt(self.running_var + self.eps))
        return scale, 1.0 - scale * self.running_mean


class _TrainingLayer(torch.autograd.Function):
    """One training-mode layer, from its input map to its pooled products,
    with a written-out gradient.

    ``apply(x, weight, gain, norm, kernel_size, pooling, pool_blocks)``: the
    map ``x`` ``(C_in, *positions, batch)``, the layer's maps ``weight``
    ``(K^d, r, C_in)``, the gain of its :class:`_FactorNorm` ``norm``, the
    window size, the pooling (int or None) and ``pool_blocks``, which sums
    rows ``(m, n)`` over the pooling blocks as ``(m, batch, *blocks)``.
    Returns ``(1 + r, *blocks, batch)``. The input at every window offset
    (:func:`_offset_columns`), the folded maps with the batch's statistics
    (:func:`_batch_folded_rows`) and the product of the factors over every
    window and pooling block (:func:`_window_pool_product`); the gradient
    goes back through each in turn, and the columns' two gradients (through
    the factors and through the statistics) are added before the offsets
    are added back to the map. One autograd node a layer: at 8 x 8 a
    training step is mostly the cost per operator.
    """

    @staticmethod
    def forward(ctx, x, weight, gain, norm, kernel_size, pooling, pool_blocks):
        columns = _offset_columns(x, kernel_size)
        rows, statistics = _batch_folded_rows(weight, gain, columns, norm, pool_blocks)
        shape = (rows.shape[1],) + x.shape[1:]
        factors, pooled = _window_pool_product(rows, columns, shape, pooling)
        ctx.save_for_backward(weight, columns, rows, factors, pooled, *statistics)
        ctx.x_shape, ctx.shape, ctx.kernel_size, ctx.pooling = x.shape, shape, kernel_size, pooling
        return pooled

    @staticmethod
    def backward(ctx, grad):
        weight, columns, rows, factors, pooled, *statistics = ctx.saved_tensors
        needs_x = ctx.needs_input_grad[0]
        grad_rows, grad_columns = _window_pool_product_backward(
            grad, rows, columns, factors, pooled, ctx.shape, ctx.pooling, needs_x)
        grad_weight, grad_gain, grad_statistics = _batch_folded_rows_backward(
            grad_rows, weight, columns, statistics, needs_x)
        grad_x = None
        if needs_x:
            if grad_statistics is not None:
                grad_columns = grad_columns + grad_statistics
            grad_x = _offset_columns_backward(grad_columns, ctx.x_shape, ctx.kernel_size)
        return grad_x, grad_weight, grad_gain, None, None, None, None


def _offset_columns(x, kernel_size):
    """The input at every window offset, ``(K^d, C, prod(positions) * batch)``,
    from a map ``(C, *positions, batch)`` and the window size ``K``.

    Offsets in row-major order; column ``j`` of offset ``k`` is the input
    seen by factor ``k`` of output ``j``, outputs in the order of
    ``(*positions, batch)``, with the constant state ``e_0`` outside the map,
    split as ``padding="same"``. With the batch last, every offset's columns
    are runs of whole rows of the map times the batch.
    """
    padded = _padded(x, x.shape, kernel_size)
    padded[0] = 1.0
    padded[_interior(x.shape, kernel_size)] = x
    return _offset_views(padded, kernel_size).reshape(kernel_size**(x.dim() - 2), x.shape[0],
                                                      -1)


def _offset_columns_backward(grad, shape, kernel_size):
    """Gradient of :func:`_offset_columns` in its map ``shape``: each offset's
    columns added back at its shift, ``K^d`` additions of a map, where
    autograd's gradient of the unfolded view scatters it element by element
    (and first undoes the copy's permutation)."""
    n_spatial = len(shape) - 2
    padded = _padded(grad, shape, kernel_size)
    windows = [_offset_views(padded, kernel_size)]
    for _ in range(n_spatial):
        windows = [w for stacked in windows for w in stacked.unbind(0)]
    for window, offset_grad in zip(windows,
                                   grad.view((kernel_size**n_spatial,) + shape).unbind(0)):
        window.add_(offset_grad)
    return padded[_interior(shape, kernel_size)]


def _padded(like, shape, kernel_size):
    """Zeros of the dtype and device of ``like``, the shape of a map ``shape``
    ``(C, *positions, batch)`` padded as ``padding="same"``."""
    before, after = same_padding(kernel_size)
    return like.new_zeros(shape[:1] + tuple(n + before + after for n in shape[1:-1])
                          + shape[-1:])


def _interior(shape, kernel_size):
    """Index of the map ``shape`` ``(C, *positions, batch)`` in its padded
    map (:func:`_padded`)."""
    before = same_padding(kernel_size)[0]
    return (slice(None),) + tuple(slice(before, before + n) for n in shape[1:-1])


def _offset_views(padded, kernel_size):
    """The views of a padded map ``(C, *positions, batch)`` read at every
    window offset, ``(*offsets, C, *positions, batch)``."""
    n_spatial = padded.dim() - 2
    view = padded
    for axis, size in enumerate(padded.shape[1:-1], start=1):
        view = view.unfold(axis, size - kernel_size + 1, 1)
    # (C, *offsets, batch, *positions) -> (*offsets, C, *positions, batch)
    return view.permute(tuple(range(1, 1 + n_spatial)) + (0,)
                        + tuple(range(2 + n_spatial, 2 + 2 * n_spatial)) + (1 + n_spatial,))


def _window_pool_product(rows, columns, shape, pooling):
    """Training-mode factors ``(K^d, 1 + r, n)`` and their product over every
    window and pooling block.

    ``rows`` ``(K^d, 1 + r, d)`` are a layer's folded maps and ``columns``
    ``(K^d, d, n)`` its input at every offset (:func:`_offset_columns`);
    factor ``k`` of output ``j`` is ``rows[k] @ columns[k, :, j]``. Their
    product over the offsets, as the map ``shape`` ``(1 + r, *positions,
    batch)``, is then reduced over the pooling blocks of ``pooling`` (int or
    None).
    """
    factors = torch.bmm(rows, columns)
    return factors, pool_product(factors.prod(dim=0).view(shape), pooling,
                                 range(1, len(shape) - 1))


def _window_pool_product_backward(grad, rows, columns, factors, pooled, shape, pooling,
                                  needs_columns):
    """Gradients of :func:`_window_pool_product` in ``rows`` and (if
    ``needs_columns``, else None) ``columns``.

    The gradient of every factor is ``g H / f`` (``H`` the pooled product of
    its block), one division over the largest tensor of a training step;
    autograd's gradient of a product first counts the zeros of every factor,
    and the pooling's own product would add a pass. Where a pooled product
    is exactly 0 that quotient is undefined, and the gradient is autograd's.
    """
    if not pooled.all():
        with torch.enable_grad():
            inputs = [rows.detach().requires_grad_(), columns.detach().requires_grad_()]
            out = _window_pool_product(*inputs, shape, pooling)[1]
            grads = torch.autograd.grad(out, inputs[:1 + needs_columns], grad)
        return grads[0], grads[1] if needs_columns else None
    spread = grad * pooled
    if pooling is not None:
        spread = _unpool(spread, pooling, shape[1:-1])
    grad_factors = spread.reshape(1, rows.shape[1], -1) / factors
    # Transposed: with the long dimension n inner to both operands the CPU
    # product took a fifth less time.
    grad_rows = torch.bmm(columns, grad_factors.transpose(1, 2)).transpose(1, 2)
    grad_columns = torch.bmm(rows.transpose(1, 2), grad_factors) if needs_columns else None
    return grad_rows, grad_columns


class _TrainingHead(torch.autograd.Function):
    """Training-mode scores from the last map, with a written-out gradient.

    ``apply(h, network, top_weight, top_bias, readout_norm_weight,
    readout_norm_bias, readout_weight)``: ``h`` ``(1 + r, *positions,
    batch)`` holds the last layer's products and the parameters are those of
    ``network.top_norm``, ``network.readout_norm`` and ``network.readout``.
    The same function as the modules in training mode, for a batch of at
    least two samples (where both normalisations use the batch's
    statistics): ``top_norm``, the global product as a sum of floored
    logarithms with a separate sign (:func:`_global_log_product`), the batch
    log-scale, ``readout_norm`` and the readout; the forward pass updates the
    running statistics as the modules do. These maps hold a few values per
    sample, and through the modules autograd recorded some seventy operators
    for them and their gradient.
    """

    @staticmethod
    def forward(ctx, h, network, top_weight, top_bias, norm_weight, norm_bias, readout_weight):
        top, norm = network.top_norm, network.readout_norm
        maps = h.reshape(h.shape[0], -1, h.shape[-1])  # (C, positions, batch)
        values, top_statistics = _batch_norm_rows(maps[1:], top, top_weight, top_bias)
        top_input, maps = maps[1:], torch.cat((maps[:1], values))
        log_abs, sign = _global_log_product(maps.permute(2, 0, 1), None, floored=True)
        log_abs, sign = log_abs.t(), sign.t()  # (C, batch)
        log_scale = log_abs[1:].mean(dim=1)
        network.running_log_scale.lerp_(log_scale, network.log_scale_momentum)
        pooled = sign * torch.exp(torch.cat((log_abs[:1], log_abs[1:] - log_scale.unsqueeze(1))))
        normalised, norm_statistics = _batch_norm_rows(pooled[1:], norm, norm_weight, norm_bias)
        readout_input = torch.cat((pooled[:1], normalised))
        ctx.save_for_backward(top_input, maps, top_weight, *top_statistics, pooled, norm_weight,
                              *norm_statistics, readout_input, readout_weight)
        ctx.shape, ctx.eps = h.shape, (top.eps, norm.eps)
        return torch.mm(readout_input.t(), readout_weight.t())

    @staticmethod
    def backward(ctx, grad):
        (top_input, maps, top_weight, top_mean, top_inverse, pooled, norm_weight, norm_mean,
         norm_inverse, readout_input, readout_weight) = ctx.saved_tensors
        top_eps, norm_eps = ctx.eps
        grad_readout = torch.mm(grad.t(), readout_input.t())
        grad_input = torch.mm(readout_weight.t(), grad.t())  # (C, batch)
        grad_pooled, grad_norm_weight, grad_norm_bias = _batch_norm_rows_backward(
            grad_input[1:], pooled[1:], norm_weight, norm_mean, norm_inverse, norm_eps)
        grad_log = torch.cat((grad_input[:1], grad_pooled)) * pooled
        # The batch log-scale is subtracted with its gradient.
        grad_log[1:] -= grad_log[1:].mean(dim=1, keepdim=True)
        # d log max(|m|, tiny) / dm is 1 / m where |m| >= tiny, else 0.
        grad_maps = torch.where(maps.abs() >= torch.finfo(maps.dtype).tiny,
                                grad_log.unsqueeze(1) / maps, 0.0)
        grad_values, grad_top_weight, grad_top_bias = _batch_norm_rows_backward(
            grad_maps[1:], top_input, top_weight, top_mean, top_inverse, top_eps)
        grad_h = torch.cat((grad_maps[:1], grad_values)).view(ctx.shape)
        return (grad_h, None, grad_top_weight, grad_top_bias, grad_norm_weight, grad_norm_bias,
                grad_readout)


def _batch_norm_rows(x, norm, weight, bias):
    """Training-mode BatchNorm of ``x`` ``(C, ...)`` per row, over all its other
    dimensions, as :meth:`~skqcnn.nn.ConstantChannelBatchNorm.normalise_batch`
    does with the ``momentum`` and ``eps`` of ``norm``, whose running
    statistics and ``values_per_channel`` it updates: the output, and the
    batch mean and inverse standard deviation that
    :func:`_batch_norm_rows_backward` needs. torch's own kernels, forward and
    backward, one operator each: written out, the pair took some twenty.
    """
    norm.values_per_channel = x.numel() // x.shape[0]
    out, mean, inverse = torch.ops.aten.native_batch_norm(
        x.unsqueeze(0), weight, bias, norm.running_mean, norm.running_var, True,
        norm.momentum, norm.eps)
    return out.squeeze(0), (mean, inverse)


def _batch_norm_rows_backward(grad, x, weight, mean, inverse, eps):
    """Gradients of :func:`_batch_norm_rows` in its input ``x``, weight and bias."""
    grad_x, grad_weight, grad_bias = torch.ops.aten.native_batch_norm_backward(
        grad.unsqueeze(0), x.unsqueeze(0), weight, None, None, mean, inverse, True, eps,
        [True, True, True])
    return grad_x.squeeze(0), grad_weight, grad_bias


def _unpool(h, pooling, sizes):
    """Back from pooling blocks to the positions they hold: a map ``(C,
    *blocks, batch)`` as ``(C, *sizes, batch)``, every position holding its
    block's value (a clipped last block holds fewer). One gather per axis: a
    copy through a broadcast view of the blocks took half as long again."""
    for axis, size in enumerate(sizes, start=1):
        h = h.index_select(axis, torch.arange(size, device=h.device) // pooling)
    return h


def _global_log_product(h, log_scale, floored=False):
    """Log-magnitude and sign of the product over all positions of every
    channel of a map ``(batch, C, *positions)`` whose log-scale map (None: 0)
    is ``log_scale``: each ``(batch, C)``.

    ``floored=True`` takes the logarithm of ``max(|h|, tiny)``, ``tiny`` the
    smallest normal number of the dtype, for the batch statistics of
    training and recalibration: there an exact zero (the float32 rounding of
    a value of ``top_norm`` centred on 0; a default 8 x 8 fit met one in 20
    epochs) made the batch log-scale ``-inf`` and the loss NaN. The floored
    value has a gradient of 0. Eval mode keeps ``-inf``, the logarithm of a
    zero amplitude.
    """
    h = h.flatten(2)
    magnitude = h.abs()
    if floored:
        magnitude = magnitude.clamp(min=torch.finfo(h.dtype).tiny)
    log_abs = torch.log(magnitude).sum(dim=2)
    if log_scale is not None:
        log_abs = log_abs + log_scale.flatten(1).sum(dim=1, keepdim=True)
    # The sign's gradient is 0: detached, autograd records no product of it.
    return log_abs, torch.sign(h.detach()).prod(dim=2)


def _folded_rows(weight, scale, shift):
    """Maps of one layer, ``(K^d, 1 + r, C_in)``: the factor normalisation's
    ``(scale, shift)`` (eval mode's :meth:`_FactorNorm.affine` or training
    mode's :func:`_batch_folded_rows`) folded into ``weight``, its
    shift multiplying the constant channel, and row 0 copying the constant
    channel."""
    constant_row = weight.new_zeros(1, 1, weight.shape[2])
    constant_row[..., 0] = 1.0
    return torch.cat((constant_row.expand(weight.shape[0], 1, -1),
                      scale.unsqueeze(-1) * weight + shift.unsqueeze(-1) * constant_row), dim=1)


def _column_moments(columns):
    """Mean ``(K^d, d)`` and biased covariance ``(K^d, d, d)`` of the input at
    every window offset, over its last dimension (the batch and the output
    positions), from the columns of :func:`_offset_columns`."""
    mean = columns.mean(dim=-1)
    outer = mean.unsqueeze(2) * mean.unsqueeze(1)
    count = columns.shape[-1]
    return mean, torch.baddbmm(outer, columns, columns.transpose(1, 2), beta=-1.0,
                               alpha=1.0 / count)


def _factor_moments(weight, mean, cov):
    """Mean and variance ``(K^d, C)`` of every factor map ``W^(k) x`` from the
    mean and covariance of the input at each offset, and ``W^(k) C_k``
    ``(K^d, C, d)``. The variance is not clipped at 0: round-off can make a
    vanishing one slightly negative."""
    weighted_cov = torch.bmm(weight, cov)
    return (torch.bmm(weight, mean.unsqueeze(-1)).squeeze(-1),
            (weighted_cov * weight).sum(dim=-1), weighted_cov)


def _batch_folded_rows(weight, gain, columns, norm, pool_sum):
    """Training-mode folded maps ``(K^d, 1 + r, d)`` of one layer from its
    batch, and what their gradient needs (:func:`_batch_folded_rows_backward`).

    ``weight`` ``(K^d, r, d)`` and ``gain`` ``(r,)`` are the parameters of the
    layer and of its :class:`_FactorNorm` ``norm``, ``columns`` its input at
    every offset ``(K^d, d, n)`` (:func:`_offset_columns`) and ``pool_sum``
    sums the pooling blocks of rows ``(m, n)`` as ``(m, batch, *blocks)``.
    The rows are those of :func:`_folded_rows` with ``scale = gain / (D
    sigma)`` and ``shift = 1 - scale m``, where ``m`` and ``sigma**2`` are the
    batch mean and variance of every factor map ``W^(k) x``, ``W^(k) m_k``
    and ``W^(k) C_k W^(k)^T`` from the mean ``m_k`` and covariance ``C_k``
    of the input at offset ``k`` (so no map of all ``K^d r`` factor values
    is standardised), and ``D`` is the divisor
    (:meth:`_FactorNorm.batch_divisor`, without a gradient); the running
    statistics of ``norm`` are updated. With one value per (offset,
    channel) there is no batch variance, and the running statistics are
    used, as in eval mode.
    """
    count = columns.shape[-1]
    if count == 1:
        inverse = 1.0 / (norm.running_spread * torch.sqrt(norm.running_var + norm.eps))
        scale = gain * inverse
        m = norm.running_mean
        statistics = (inverse, scale, m)
    else:
        mean, cov = _column_moments(columns)
        m, raw_var, weighted_cov = _factor_moments(weight, mean, cov)
        var = raw_var.clamp(min=0)
        norm.running_mean.lerp_(m, norm.momentum)
        norm.running_var.lerp_(var * (count / (count - 1)), norm.momentum)
        var_eps = var + norm.eps
        sigma = torch.sqrt(var_eps)
        inverse = 1.0 / (norm.batch_divisor(weight / sigma.unsqueeze(-1), columns, mean, pool_sum)
                         * sigma)
        scale = gain * inverse
        # d scale / d var, with scale = gain / (D sigma), sigma = sqrt(var +
        # eps) and var clipped at 0.
        scale_slope = torch.where(raw_var >= 0, scale / var_eps, 0.0).mul_(-0.5)
        statistics = (inverse, scale, m, mean, weighted_cov, scale_slope)
    return _folded_rows(weight, scale, 1.0 - scale * m), statistics


def _batch_folded_rows_backward(grad, weight, columns, statistics, needs_columns):
    """Gradients of :func:`_batch_folded_rows` in ``weight``, ``gain`` and
    (with batch statistics and ``needs_columns``, else None) ``columns``.

    Autograd would record some forty small operators for the statistics and
    as many again for their gradient. Written out, the gradient of the
    scales goes to ``sigma`` and ``m``, from them to ``weight`` and to the
    mean and covariance of the columns, and from those to the columns in one
    matrix product: ``((G + G^T) (c - mean) + g) / n`` for the gradients
    ``G`` of the covariance and ``g`` of the mean.
    """
    inverse, scale, m = statistics[:3]
    grad = grad[:, 1:]
    grad_shift = grad[..., 0]
    grad_scale = (grad * weight).sum(dim=-1) - m * grad_shift
    grad_gain = (grad_scale * inverse).sum(dim=0)
    grad_weight = scale.unsqueeze(-1) * grad
    if len(statistics) == 3:
        return grad_weight, grad_gain, None
    mean, weighted_cov, scale_slope = statistics[3:]
    grad_m = -scale * grad_shift
    grad_var = grad_scale * scale_slope
    grad_weight = torch.addcmul(
        torch.addcmul(grad_weight, grad_var.unsqueeze(-1), weighted_cov, value=2.0),
        grad_m.unsqueeze(-1), mean.unsqueeze(1))
    if not needs_columns:
        return grad_weight, grad_gain, None
    count = columns.shape[-1]
    # The gradients of the covariance (symmetric) and of the mean.
    grad_cov = torch.bmm(weight.transpose(1, 2) * grad_var.unsqueeze(1), weight)
    grad_mean = torch.bmm(grad_m.unsqueeze(1), weight).squeeze(1)
    symmetric = (2.0 / count) * grad_cov
    shift = grad_mean / count - torch.bmm(symmetric, mean.unsqueeze(-1)).squeeze(-1)
    return grad_weight, grad_gain, torch.bmm(symmetric, columns).add_(shift.unsqueeze(-1))


def _pooled_window_sums(ratio, columns, mean, pool_sum):
    """Sums of ``z = (W^(k) x - m_k) / sigma_k`` over every window and pooling
    block, ``(C, batch, *blocks)``.

    ``ratio`` holds ``W^(k) / sigma_k`` as ``(K^d, C, d)``, ``columns`` the
    input at every offset, ``(K^d, d, n)``, ``mean`` its mean over the data
    at every offset, ``(K^d, d)``, and ``pool_sum`` sums the pooling blocks
    of rows ``(m, n)`` as ``(m, batch, *blocks)``. The maps are linear, so
    the centred columns are pooled first and one matrix product over every
    offset and input channel works on ``P^d`` times fewer columns.
    """
    pooled = pool_sum((columns - mean.unsqueeze(-1)).flatten(0, 1))
    sums = torch.mm(ratio.transpose(0, 1).flatten(1), pooled.flatten(1))
    return sums.view(ratio.shape[1:2] + pooled.shape[1:])


def _moments(tensors, dims, correction=0):
    """Mean and variance (divisor ``count - correction``) over ``dims`` of the
    concatenation of the ``tensors`` (an iterable) along dimension 0,
    accumulated in float64."""
    total = count = square = 0
    for t in tensors:
        dtype = t.dtype
        t = t.double()
        total = total + t.sum(dim=dims)
        square = square + t.square().sum(dim=dims)
        count += t.numel() // total.numel()
    mean = total / count
    var = (square / count - mean.square()).clamp(min=0) * (count / (count - correction))
    return mean.to(dtype), var.to(dtype)
