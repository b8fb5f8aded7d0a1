"""Deep recurrent arithmetic circuit (Levine et al., PRL 2019)."""

import copy
import math

import torch
from torch import nn
from torch.nn.utils import skip_init

from ._layers import ConstantChannelBatchNorm


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

    **Stabilisation.** ``N^l_t`` is a
    :class:`~skqcnn.nn.ConstantChannelBatchNorm` with its own statistics and
    affine parameters for every layer and step (recurrent BatchNorm in the
    manner of Cooijmans et al., 2016): the statistics of the early steps,
    which start from the initial state, differ from those of later steps, and
    shared running averages would make the eval-mode network differ from the
    trained one. In eval mode each ``N^l_t`` is a fixed linear map, so the
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
    norms : torch.nn.ModuleList
        ``norms[l][t]`` normalises step ``t + 1`` of layer ``l + 1``.
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
            layer_norms = nn.ModuleList(ConstantChannelBatchNorm(r) for _ in range(self.n_steps))
            for norm in layer_norms:
                norm.running_mean.fill_(1.0)
            norms.append(layer_norms)
            fan_in = 1 + r
        self.hidden_weights = nn.ParameterList(hidden)
        self.input_weights = nn.ParameterList(inputs)
        self.initial_states = nn.ParameterList(initial)
        self.norms = nn.ModuleList(norms)
        width = 1 + self.hidden_sizes[-1]
        # skip_init: nn.Linear's own init would draw from the global generator.
        self.readout = skip_init(nn.Linear, width, self.n_classes, bias=False)
        with torch.no_grad():
            # The distribution of nn.Linear's default init, from ``generator``.
            bound = 1 / math.sqrt(width)
            self.readout.weight.copy_(
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
        state, _ = self._run(features, rescale=False)
        return self.readout(state)

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
        state, log_scale = self._run(features, rescale=True)
        scores = self.readout(state)
        return torch.log(scores.abs()) + log_scale.unsqueeze(1), torch.sign(scores)

    def _run(self, features, rescale):
        """Top state at step T and the log of the factor it was divided by."""
        expected = (self.n_steps, self.local_dim)
        if features.dim() != 3 or tuple(features.shape[1:]) != expected:
            raise ValueError(
                f"features must have shape (batch, {expected[0]}, {expected[1]}), "
                f"got {tuple(features.shape)}."
            )
        batch = features.shape[0]
        sequence = features
        # log of the factor each input of the current layer was divided by;
        # a layer is multilinear in its input sequence, each step entering once.
        seq_log_scale = features.new_zeros(batch, self.n_steps)
        for w_h, w_i, h0, norms in zip(
            self.hidden_weights, self.input_weights, self.initial_states, self.norms
        ):
            projected = torch.einsum("rd,btd->btr", w_i, sequence)
            state = torch.cat((features.new_ones(batch, 1), h0.expand(batch, -1)), dim=1)
            log_scale = features.new_zeros(batch)
            outputs, out_log_scales = [], []
            for t, norm in enumerate(norms):
                const = state[:, :1] * sequence[:, t, :1]
                rest = (state @ w_h.T) * projected[:, t]
                state = norm(torch.cat((const, rest), dim=1))
                log_scale = log_scale + seq_log_scale[:, t]
                if rescale:
                    top = state.abs().amax(dim=1)
                    top = torch.where(top > 0, top, torch.ones_like(top))
                    state = state / top.unsqueeze(1)
                    log_scale = log_scale + torch.log(top)
                outputs.append(state)
                out_log_scales.append(log_scale)
            sequence = torch.stack(outputs, dim=1)
            seq_log_scale = torch.stack(out_log_scales, dim=1)
        return state, log_scale

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
                r = w_h.shape[0]
                folded_norms = []
                for norm in norms:
                    scale, shift = norm.affine()
                    matrix = torch.eye(1 + r, dtype=torch.float64)
                    matrix[1:, 1:] = torch.diag(scale)
                    matrix[1:, 0] = shift
                    folded_norms.append(matrix)
                layers.append({
                    "hidden": _with_constant_row(w_h),
                    "input": _with_constant_row(w_i),
                    "norms": torch.stack(folded_norms),
                    "initial": torch.cat((torch.ones(1, dtype=torch.float64), h0)),
                })
        return layers, net.readout.weight.detach()


def _with_constant_row(rows):
    """Prepend the row ``e_0`` that maps the constant channel to itself."""
    top = torch.zeros(1, rows.shape[1], dtype=rows.dtype)
    top[0, 0] = 1.0
    return torch.cat((top, rows.detach()), dim=0)
