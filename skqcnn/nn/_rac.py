"""Deep recurrent arithmetic circuit (Levine et al., PRL 2019)."""

import copy
import math

import torch
from torch import nn

from ._layers import check_site_features

_STEP_STATE = ("weight", "bias", "running_mean", "running_var")


class StepNorms(nn.Module):
    """The per-step BatchNorms of one RAC layer, stacked over the steps.

    Row ``t`` of every tensor belongs to step ``t + 1``, normalised as by a
    :class:`~skqcnn.nn.ConstantChannelBatchNorm` of its own: the statistics
    of the early steps, which start from the initial state, differ from those
    of later steps. One ``(T, R)`` tensor per quantity keeps the number of
    parameters, and so the optimizer's and autograd's work per parameter,
    independent of ``T``.

    The state dict holds one entry per step, ``"{t}.weight"`` of shape
    ``(R,)`` and so on, as when every step had a module of its own: files
    saved either way load into either.

    Parameters
    ----------
    n_steps : int
        Number ``T`` of steps.
    n_channels : int
        Number ``R`` of non-constant channels.
    mean_init, scale_init, momentum, eps : float
        As in :class:`~skqcnn.nn.ConstantChannelBatchNorm`; the running means
        start at ``mean_init`` too, so that eval mode starts as training does.

    Examples
    --------
    >>> from skqcnn.nn._rac import StepNorms
    >>> norms = StepNorms(4, 3)
    >>> norms.weight.shape, list(norms.state_dict())[:2]
    (torch.Size([4, 3]), ['0.weight', '0.bias'])
    """

    def __init__(self, n_steps, n_channels, mean_init=1.0, scale_init=0.4, momentum=0.1,
                 eps=1e-5):
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.weight = nn.Parameter(torch.full((n_steps, n_channels), float(scale_init)))
        self.bias = nn.Parameter(torch.full((n_steps, n_channels), float(mean_init)))
        self.register_buffer("running_mean", torch.full((n_steps, n_channels), float(mean_init)))
        self.register_buffer("running_var", torch.ones(n_steps, n_channels))
        self.register_state_dict_post_hook(_per_step_entries)
        self.register_load_state_dict_pre_hook(_stacked_entries)

    def affine(self):
        """Eval-mode ``(scale, shift)`` of every step, each of shape ``(T, R)``."""
        scale = self.weight / torch.sqrt(self.running_var + self.eps)
        return scale, self.bias - self.running_mean * scale


def _per_step_entries(module, state_dict, prefix, local_metadata):
    """State-dict hook of :class:`StepNorms`: ``(T, R)`` entries as ``T`` rows."""
    stacked = {name: state_dict.pop(prefix + name) for name in _STEP_STATE}
    for t in range(module.weight.shape[0]):
        for name, tensor in stacked.items():
            state_dict[f"{prefix}{t}.{name}"] = tensor[t]


def _stacked_entries(module, state_dict, prefix, *args):
    """Load hook of :class:`StepNorms`: per-step rows back into ``(T, R)`` entries."""
    stack_step_entries(state_dict, prefix, module.weight.shape[0])


def stack_step_entries(entries, prefix, n_steps):
    """Replace the rows ``"{prefix}{t}.{name}"`` of a dict by ``"{prefix}{name}"``, stacked.

    Rows that are not all present are left alone (a strict load then reports
    them).

    Parameters
    ----------
    entries : dict of str to torch.Tensor
        Modified in place.
    prefix : str
        The :class:`StepNorms` module's prefix, such as ``"norms.0."``.
    n_steps : int
    """
    for name in _STEP_STATE:
        keys = [f"{prefix}{t}.{name}" for t in range(n_steps)]
        if all(key in entries for key in keys):
            entries[prefix + name] = torch.stack([entries.pop(key) for key in keys])


class DeepRACNetwork(nn.Module):
    """Deep recurrent arithmetic circuit (RAC) with a constant channel.

    Layer ``l`` of ``L = len(hidden_sizes)`` runs the multiplicative recurrence
    ``h^l_t = N^l_t((W^{H,l} h^l_{t-1}) * (W^{I,l} h^{l-1}_t))`` for
    ``t = 1..T`` from a learned initial state ``h^l_0``, with
    ``h^0_t = features[:, t]``; the scores are ``W^O h^L_T`` (Levine, Sharir,
    Cohen and Shashua, PRL 2019, fig. 2).

    **Constant channel.** States have size ``1 + R_l``; channel 0 is the product
    of the ``f_0`` components of the inputs seen so far (1 on data), every
    ``W`` maps channel 0 to channel 0 and reads its bias from it, and the
    initial states have channel 0 equal to 1. Biases and normalisation shifts
    are therefore linear maps and the network is a tensor network.

    **Stabilisation.** ``N^l_t`` is a BatchNorm whose shift multiplies the
    constant channel, as :class:`~skqcnn.nn.ConstantChannelBatchNorm`, with
    its own statistics and affine parameters for every layer and step
    (recurrent BatchNorm in the manner of Cooijmans et al., 2016; stacked
    over the steps in a :class:`StepNorms`): the statistics of the early
    steps, which start from the initial state, differ from those of later
    steps, and shared running averages would make the eval-mode network
    differ from the trained one. In training mode a flat channel, one on
    which the samples agree up to rounding (batch variance at most the
    dtype's machine epsilon times the mean square: constant inputs, a batch
    of one sample), is normalised with its running statistics and leaves
    them unchanged: dividing by ``sqrt(var + eps)`` would multiply the
    rounding differences by up to ``weight / sqrt(eps)`` at every step, a gain
    that compounds into infinite gradients. The running variance averages the
    biased batch variance, the one training normalises with. In eval mode
    each ``N^l_t`` is a fixed linear map, so the
    scores are exactly multilinear in the features; data-dependent division
    by a norm is never used. The products start near 1 (``W`` rows read a
    bias of 1 from the constant channel), the BatchNorm mean starts at 1 and
    its running mean too, so the recurrence is contracting at initialisation
    in both modes. Running averages lag behind training, which products over
    many steps amplify: call :func:`~skqcnn.nn.recalibrate_statistics`
    after training.

    **Network state.** From depth 2 on, every input reaches the top through
    several paths (``h^1_t`` feeds both ``h^1_{t+1}`` and ``h^2_t``), so the
    scores are polynomials in each step's features (degree ``T - t + 1`` in
    ``x_t`` at depth 2), not multilinear functions. Evaluated on one-hot basis
    vectors they give the coefficients of the network state ``Psi_y``, the
    duplicated tree ``DUP(A)`` restricted to equal indices. A depth-1 RAC uses
    each input once: its score is ``<phi(x) | Psi_y>`` and it is a matrix
    product state.

    Parameters
    ----------
    n_steps : int
        Sequence length ``T``.
    local_dim : int
        Size ``M`` of the per-step feature vectors; element 0 must be the
        constant function ``f_0 = 1``.
    hidden_sizes : sequence of int
        Non-constant hidden channels ``R_1, ..., R_L``.
    n_classes : int
        Number of scores.
    generator : torch.Generator or None, default=None
        Source of the random initial weights; None draws from torch's global
        generator. Estimators pass a generator of their own, so that fits in
        parallel threads do not share one stream.

    Attributes
    ----------
    hidden_weights : torch.nn.ParameterList
        Non-constant rows of ``W^{H,l}``, shape ``(R_l, 1 + R_l)``.
    input_weights : torch.nn.ParameterList
        Non-constant rows of ``W^{I,l}``, shape ``(R_l, 1 + R_{l-1})``
        (``(R_1, M)`` for layer 1).
    initial_states : torch.nn.ParameterList
        Non-constant channels of ``h^l_0``, shape ``(R_l,)``.
    norms : torch.nn.ModuleList of StepNorms
        ``norms[l]`` normalises the steps of layer ``l + 1``; its row ``t``
        normalises step ``t + 1``.
    readout : torch.nn.Linear
        ``W^O``: ``1 + R_L`` channels to ``n_classes`` scores, no bias.

    Examples
    --------
    >>> import torch
    >>> from skqcnn.nn._rac import DeepRACNetwork
    >>> net = DeepRACNetwork(n_steps=16, local_dim=3, hidden_sizes=(4, 4), n_classes=2)
    >>> features = torch.cat((torch.ones(5, 16, 1), torch.randn(5, 16, 2)), dim=2)
    >>> net(features).shape
    torch.Size([5, 2])
    """

    def __init__(self, n_steps, local_dim, hidden_sizes, n_classes, *, generator=None):
        super().__init__()
        self.n_steps = int(n_steps)
        self.local_dim = int(local_dim)
        self.hidden_sizes = tuple(int(r) for r in hidden_sizes)
        self.n_classes = int(n_classes)
        if self.n_steps < 1 or self.local_dim < 1:
            raise ValueError(
                f"n_steps and local_dim must be >= 1, got {n_steps!r} and {local_dim!r}."
            )
        if len(self.hidden_sizes) < 1 or min(self.hidden_sizes) < 1:
            raise ValueError(
                f"hidden_sizes must be a non-empty sequence of positive ints, got "
                f"{hidden_sizes!r}."
            )
        hidden, inputs, initial, norms = [], [], [], []
        fan_in = self.local_dim
        for r in self.hidden_sizes:
            hidden.append(nn.Parameter(self._init_rows(r, 1 + r, True, generator)))
            inputs.append(nn.Parameter(self._init_rows(r, fan_in, bool(inputs), generator)))
            initial.append(nn.Parameter(torch.ones(r)))
            norms.append(StepNorms(self.n_steps, r))
            fan_in = 1 + r
        self.hidden_weights = nn.ParameterList(hidden)
        self.input_weights = nn.ParameterList(inputs)
        self.initial_states = nn.ParameterList(initial)
        self.norms = nn.ModuleList(norms)
        width = 1 + self.hidden_sizes[-1]
        # Built on the meta device, nn.Linear's own init draws nothing from
        # the global generator (skip_init would too, but its first call
        # imports sympy: half a second). The weight takes the distribution of
        # that init, from ``generator``.
        self.readout = nn.Linear(width, self.n_classes, bias=False, device="meta")
        bound = 1 / math.sqrt(width)
        self.readout.weight = nn.Parameter(
            bound * (2 * torch.rand(self.n_classes, width, generator=generator) - 1))

    @staticmethod
    def _init_rows(n_rows, fan_in, centre, generator):
        """Rows ``(1, w)`` with small ``w``; zero-sum ``w`` for inputs centred on 1."""
        w = (torch.randn(n_rows, fan_in, generator=generator)
             * (0.5 / math.sqrt(2 * max(fan_in - 1, 1))))
        if centre:
            # BatchNorm outputs are centred on 1: a zero-sum row ignores that
            # common mean instead of turning it into a per-channel drift that
            # the recurrence would compound over T steps.
            w[:, 1:] -= w[:, 1:].mean(dim=1, keepdim=True)
        w[:, 0] = 1.0
        return w

    def forward(self, features):
        """Class scores.

        Parameters
        ----------
        features : torch.Tensor of shape (batch, n_steps, local_dim)

        Returns
        -------
        scores : torch.Tensor of shape (batch, n_classes)
        """
        const, rest, _ = self._run(features, rescale=False)
        return self.readout(torch.cat((const, rest), dim=1))

    def log_forward(self, features):
        """Logarithm of the absolute score and its sign, without over- or underflow.

        Each state is divided by its largest magnitude at every step and the
        logarithms of these factors are carried along. Eval-mode steps are
        linear in the previous state and in the input, so this is exact up to
        round-off; in training mode BatchNorm statistics would see the
        rescaled states, hence the restriction.

        Parameters
        ----------
        features : torch.Tensor of shape (batch, n_steps, local_dim)

        Returns
        -------
        log_abs, sign : torch.Tensor of shape (batch, n_classes)
            ``-inf`` and 0 where the score is exactly zero.

        Raises
        ------
        RuntimeError
            In training mode.
        """
        if self.training:
            raise RuntimeError("log_forward needs eval mode; call .eval() first.")
        const, rest, log_scale = self._run(features, rescale=True)
        scores = self.readout(torch.cat((const, rest), dim=1))
        return torch.log(scores.abs()) + log_scale.unsqueeze(1), torch.sign(scores)

    def _run(self, features, rescale):
        """Constant channel, other channels and log-scale of the top state at step T.

        States are carried time-major, ``(T, batch, channels)``, with the
        constant channel apart from the others, so that no step concatenates.
        """
        check_site_features(features, self.n_steps, self.local_dim)
        steps = features.transpose(0, 1)
        const = steps[..., 0]
        # The first layer reads the full local vectors, element 0 included.
        projected = steps @ self.input_weights[0].T
        # log of the factor each input of the current layer was divided by;
        # a layer is multilinear in its input sequence, each step entering once.
        seq_log_scale = features.new_zeros(self.n_steps, features.shape[0])
        for layer, (w_h, h0, norms) in enumerate(
                zip(self.hidden_weights, self.initial_states, self.norms)):
            if layer:
                w_i = self.input_weights[layer]
                projected = torch.addcmul(rest @ w_i[:, 1:].T, const.unsqueeze(-1), w_i[:, 0])
            if self.training:
                const, rest = _train_layer(const, projected, w_h, h0, norms)
            else:
                const, rest, seq_log_scale = _eval_layer(
                    const, projected, seq_log_scale, w_h, h0, norms.affine(), rescale)
        return const[-1].unsqueeze(1), rest[-1], seq_log_scale[-1]

    def folded_layers(self):
        """Eval-mode maps of every layer as plain matrices over the full channels.

        Returns
        -------
        layers : list of dict
            One dict per layer with float64 tensors ``"hidden"``
            ``(D, D)``, ``"input"`` ``(D, D_in)``, ``"norms"`` ``(T, D, D)`` and
            ``"initial"`` ``(D,)``, where ``D = 1 + R_l``, such that in eval
            mode ``h_t = norms[t-1] @ ((hidden @ h_{t-1}) * (input @ x_t))``.
        readout : torch.Tensor of shape (n_classes, D_L)

        Examples
        --------
        >>> from skqcnn.nn._rac import DeepRACNetwork
        >>> layers, readout = DeepRACNetwork(4, 3, (2,), 2).folded_layers()
        >>> layers[0]["norms"].shape, readout.shape
        (torch.Size([4, 3, 3]), torch.Size([2, 3]))
        """
        # A float64 copy, so that BatchNorm scales are not rounded to float32.
        net = copy.deepcopy(self).to(device="cpu", dtype=torch.float64)
        layers = []
        with torch.no_grad():
            for w_h, w_i, h0, norms in zip(
                net.hidden_weights, net.input_weights, net.initial_states, net.norms
            ):
                scale, shift = norms.affine()
                folded_norms = torch.eye(1 + w_h.shape[0], dtype=torch.float64).repeat(
                    self.n_steps, 1, 1)
                folded_norms[:, 1:, 1:] = torch.diag_embed(scale)
                folded_norms[:, 1:, 0] = shift
                layers.append({
                    "hidden": _with_constant_row(w_h),
                    "input": _with_constant_row(w_i),
                    "norms": folded_norms,
                    "initial": torch.cat((torch.ones(1, dtype=torch.float64), h0)),
                })
        return layers, net.readout.weight.detach()


def _train_layer(step_const, projected, w_h, h0, norms):
    """Training-mode layer with per-step batch statistics (one autograd node)."""
    # The constant channel of h_t is the product of the inputs' constant
    # channels up to t (1 on data); h_0 has 1.
    const = torch.cumprod(step_const, dim=0)
    previous = torch.cat((torch.ones_like(const[:1]), const[:-1]))
    rest, mean, var, flat = _NormalisedRecurrence.apply(
        projected, previous.unsqueeze(-1) * w_h[:, 0], w_h[:, 1:], h0, norms.weight,
        norms.bias, norms.running_mean, norms.running_var, norms.eps)
    with torch.no_grad():
        # The running variance averages the biased batch variance that
        # training normalises with, so that statistics recalibrated on one
        # batch make eval mode repeat training mode on it; a flat channel
        # keeps the statistics it was normalised with.
        for running, value in ((norms.running_mean, mean), (norms.running_var, var)):
            running.copy_(torch.where(flat, running,
                                      running * (1 - norms.momentum) + value * norms.momentum))
    return const, rest


def _eval_layer(step_const, projected, seq_log_scale, w_h, h0, affine, rescale):
    """Eval-mode layer: every step is a fixed linear map of the product.

    ``affine`` is the ``(scale, shift)`` of the steps' norms, ``(T, R)`` each.
    With ``rescale`` each state is divided by its largest magnitude and the
    logarithm of the factor is added to the running log-scale.

    Returns
    -------
    const, rest, log_scale : torch.Tensor
        ``(T, batch)``, ``(T, batch, R)`` and ``(T, batch)``.
    """
    scale, shift = affine
    batch = projected.shape[1]
    w_0, w_rest = w_h[:, 0], w_h[:, 1:].T
    const = projected.new_ones(batch)
    rest = h0.expand(batch, -1)
    log_scale = projected.new_zeros(batch)
    consts, rests, log_scales = [], [], []
    for t in range(projected.shape[0]):
        hidden = torch.addmm(const.unsqueeze(1) * w_0, rest, w_rest)
        const = const * step_const[t]
        rest = torch.addcmul(hidden * projected[t] * scale[t], const.unsqueeze(1), shift[t])
        log_scale = log_scale + seq_log_scale[t]
        if rescale:
            top = torch.maximum(const.abs(), rest.abs().amax(dim=1))
            top = torch.where(top > 0, top, torch.ones_like(top))
            const = const / top
            rest = rest / top.unsqueeze(1)
            log_scale = log_scale + torch.log(top)
        consts.append(const)
        rests.append(rest)
        log_scales.append(log_scale)
    return torch.stack(consts), torch.stack(rests), torch.stack(log_scales)


class _NormalisedRecurrence(torch.autograd.Function):
    """The training-mode recurrence of one layer, ``T`` steps in one autograd node.

    Step ``t`` computes ``u_t = (b_t + W h_{t-1}) * p_t`` and normalises it
    with the batch statistics of ``u_t``,
    ``h_t = weight_t * (u_t - mean_t) / sqrt(var_t + eps) + bias_t``, or, in
    a flat channel (:func:`_flat`), with the running statistics. Autograd
    would record about ten nodes per step; here each step is three
    operations forward and four backward, the rest runs over all steps at
    once.

    Inputs are time-major: ``projected`` and ``hidden_bias`` ``(T, B, R)``,
    ``hidden`` ``(R, R)``, ``initial`` ``(R,)``, the norms' ``weight``,
    ``bias``, ``running_mean`` and ``running_var`` stacked to ``(T, R)``.
    Outputs: the states ``(T, B, R)``, then the batch means, biased batch
    variances and flat mask ``(T, R)``, which carry no gradient.
    """

    @staticmethod
    def forward(ctx, projected, hidden_bias, hidden, initial, weight, bias, running_mean,
                running_var, eps):
        n_steps, batch, rank = projected.shape
        states, gates, inputs = (torch.empty_like(projected) for _ in range(3))
        means, inverse = (projected.new_empty(n_steps, rank) for _ in range(2))
        steps = zip(projected.unbind(0), hidden_bias.unbind(0), weight.unbind(0),
                    bias.unbind(0), states.unbind(0), gates.unbind(0), inputs.unbind(0),
                    means.unbind(0), inverse.unbind(0))
        hidden_t = hidden.T
        state = initial.expand(batch, -1)
        for p, b, w, shift, out, gate, u, mean, inv in steps:
            torch.addmm(b, state, hidden_t, out=gate)
            torch.mul(gate, p, out=u)
            state = torch.native_batch_norm(u, w, shift, None, None, True, 0.0, eps,
                                            out=(out, mean, inv))[0]
        variances = (inputs - means.unsqueeze(1)).square_().mean(dim=1)
        flat = _flat(variances, means)
        # Flat channels are rare (constant inputs, a batch of one sample):
        # the steps run again with the rule for them when there are any.
        ctx.guarded = bool(flat.any())
        if ctx.guarded:
            variances, flat = _guarded_steps(projected, hidden_bias, hidden, initial, weight,
                                             bias, running_mean, running_var, eps, states,
                                             gates, inputs, means, inverse)
        ctx.eps = eps
        ctx.save_for_backward(projected, hidden, initial, weight, states, gates, inputs, means,
                              inverse, flat)
        ctx.mark_non_differentiable(means, variances, flat)
        return states, means, variances, flat

    @staticmethod
    def backward(ctx, grad_states, *_):
        projected, hidden, initial, weight, states, gates, inputs, means, inverse, flat = (
            ctx.saved_tensors)
        n_steps, batch, rank = projected.shape
        if ctx.guarded:
            normalised = ((inputs - means.unsqueeze(1)) * inverse.unsqueeze(1)).unbind(0)
            # The statistics of a flat channel are constants: no centring terms.
            centring = torch.where(flat, 0.0, inverse * weight / -batch).unbind(0)
            ones = projected.new_ones(1, batch)
        else:
            batch_norm_backward = torch.ops.aten.native_batch_norm_backward.default
        steps = list(zip(grad_states.unbind(0), projected.unbind(0), weight.unbind(0),
                         inputs.unbind(0), means.unbind(0), inverse.unbind(0)))
        grad_inputs, grad_gates, grad_weight, grad_bias = [], [], [], []
        carried = None
        for t in reversed(range(n_steps)):
            grad, p, w, u, mean, inv = steps[t]
            if carried is not None:
                grad = grad + carried
            if ctx.guarded:
                # BatchNorm's backward, (gain / B) (B g - sum g - x sum (g x)).
                x = normalised[t]
                grad_b = ones @ grad
                grad_w = ones @ (grad * x)
                du = torch.addcmul(grad * (inv * w), torch.addcmul(grad_b, x, grad_w),
                                   centring[t])
                grad_w, grad_b = grad_w.squeeze(0), grad_b.squeeze(0)
            else:
                du, grad_w, grad_b = batch_norm_backward(
                    grad, u, w, None, None, mean, inv, True, ctx.eps, [True, True, True])
            grad_gate = du * p
            carried = grad_gate @ hidden
            grad_inputs.append(du)
            grad_gates.append(grad_gate)
            grad_weight.append(grad_w)
            grad_bias.append(grad_b)
        grad_inputs, grad_gates, grad_weight, grad_bias = (
            torch.stack(grads[::-1])
            for grads in (grad_inputs, grad_gates, grad_weight, grad_bias))
        previous = torch.cat((initial.expand(1, batch, rank), states[:-1]))
        grad_hidden = grad_gates.reshape(-1, rank).T @ previous.reshape(-1, rank)
        return (grad_inputs * gates, grad_gates, grad_hidden, carried.sum(dim=0), grad_weight,
                grad_bias, None, None, None)


def _guarded_steps(projected, hidden_bias, hidden, initial, weight, bias, running_mean,
                   running_var, eps, states, gates, inputs, means, inverse):
    """The steps of :class:`_NormalisedRecurrence` with the rule for flat channels.

    Writes into the buffers what the fast loop writes, except that ``means``
    and ``inverse`` hold the statistics each channel was normalised with: the
    running ones in a flat channel. Returns the biased batch variances and
    the flat mask, ``(T, R)`` each.
    """
    batch = projected.shape[1]
    average = projected.new_full((1, batch), 1.0 / batch)
    running_inverse = torch.rsqrt(running_var + eps)
    variances = torch.empty_like(running_var)
    flats = torch.empty_like(running_var, dtype=torch.bool)
    state = initial.expand(batch, -1)
    for t in range(projected.shape[0]):
        torch.addmm(hidden_bias[t], state, hidden.T, out=gates[t])
        u = torch.mul(gates[t], projected[t], out=inputs[t])
        mean = (average @ u).squeeze(0)
        variances[t] = (average @ (u - mean).square()).squeeze(0)
        # Normalising a channel on which the samples agree up to rounding
        # would multiply their rounding differences by up to weight /
        # sqrt(eps), a gain that compounds over the steps into infinite
        # gradients.
        flat = flats[t] = _flat(variances[t], mean)
        means[t] = torch.where(flat, running_mean[t], mean)
        inverse[t] = torch.where(flat, running_inverse[t], torch.rsqrt(variances[t] + eps))
        state = torch.addcmul(bias[t], (u - means[t]) * inverse[t], weight[t], out=states[t])
    return variances, flats


def _flat(variance, mean):
    """Channels on which the samples agree up to rounding.

    Their batch variance is at most the dtype's machine epsilon times their
    mean square ``var + mean**2``: rounding makes identical samples differ by
    about that much, while data that vary, however little, stay far above.
    """
    return variance <= torch.finfo(variance.dtype).eps * (variance + mean.square())


def _with_constant_row(rows):
    """Prepend the row ``e_0`` that maps the constant channel to itself."""
    top = torch.zeros(1, rows.shape[1], dtype=rows.dtype)
    top[0, 0] = 1.0
    return torch.cat((top, rows.detach()), dim=0)
