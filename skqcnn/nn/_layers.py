"""Building blocks shared by every skqcnn network.

Every network in skqcnn is multilinear in per-site feature vectors whose element 0
is the constant basis function ``f_0 = 1``. To keep that true after affine steps
(BatchNorm, biases), hidden vectors carry an explicit *constant channel* at index
0: on real data it equals 1, on one-hot basis vectors it is the product of the
``f_0`` components of the receptive field. Biases multiply the constant channel
instead of being added, so the network evaluated on one-hot inputs gives exactly
the coefficients of its network state (``docs/theory.rst``, section "Network states").
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

REPRESENTATIONS = ("fourier", "legendre")


def local_dimension(representation, n_freq):
    """Dimension M of the local basis.

    Parameters
    ----------
    representation : {"fourier", "legendre"}
        Fourier: ``M = 2 * n_freq + 1``. Legendre: polynomials of degree
        ``0..n_freq``, ``M = n_freq + 1``.
    n_freq : int
        Number of frequencies (Fourier) or polynomial degree (Legendre).

    Returns
    -------
    M : int
    """
    if representation == "fourier":
        return 2 * n_freq + 1
    return n_freq + 1


def basis_domain(representation):
    """Interval that inputs are mapped into before the basis is evaluated.

    Fourier functions are periodic on [0, 1], so x = 0 and x = 1 would give the
    same vector; inputs use [0, 1/2] instead. Legendre polynomials use [-1, 1].
    """
    return (0.0, 0.5) if representation == "fourier" else (-1.0, 1.0)


def check_site_features(features, n_sites, local_dim):
    """Raise a ValueError unless ``features`` has shape ``(batch, n_sites, local_dim)``.

    Parameters
    ----------
    features : torch.Tensor
    n_sites, local_dim : int
    """
    if features.dim() != 3 or tuple(features.shape[1:]) != (n_sites, local_dim):
        raise ValueError(
            f"features must have shape (batch, {n_sites}, {local_dim}), "
            f"got {tuple(features.shape)}."
        )


class LocalBasis(nn.Module):
    """Map scalar inputs to an orthonormal local basis with ``f_0 = 1``.

    Fourier (paper eq. 19): ``(1, sqrt2 cos 2pi x, sqrt2 sin 2pi x, ...,
    sqrt2 cos 2pi n x, sqrt2 sin 2pi n x)``, orthonormal on [0, 1].
    Legendre: ``sqrt(2k + 1) P_k(x)``, orthonormal on [-1, 1] for the uniform
    probability measure.

    Parameters
    ----------
    representation : {"fourier", "legendre"}
    n_freq : int
        Number of frequencies or polynomial degree.

    Examples
    --------
    >>> import torch
    >>> from skqcnn.nn import LocalBasis
    >>> LocalBasis("legendre", 1)(torch.tensor([[0.5]])).shape
    torch.Size([1, 1, 2])
    """

    def __init__(self, representation="fourier", n_freq=1):
        super().__init__()
        self.representation = representation
        self.n_freq = n_freq
        self.local_dim = local_dimension(representation, n_freq)

    def forward(self, x):
        """Features of shape ``x.shape + (M,)``."""
        if self.representation == "fourier":
            k = torch.arange(1, self.n_freq + 1, dtype=x.dtype, device=x.device)
            angle = 2 * math.pi * x.unsqueeze(-1) * k
            waves = torch.stack((torch.cos(angle), torch.sin(angle)), dim=-1)
            waves = math.sqrt(2.0) * waves.flatten(-2)
            return torch.cat((torch.ones_like(x).unsqueeze(-1), waves), dim=-1)
        # Bonnet's recursion for P_k, then the orthonormalising factor.
        polys = [torch.ones_like(x), x]
        for k in range(1, self.n_freq):
            polys.append(((2 * k + 1) * x * polys[k] - k * polys[k - 1]) / (k + 1))
        polys = torch.stack(polys[: self.n_freq + 1], dim=-1)
        norms = torch.sqrt(
            2 * torch.arange(self.n_freq + 1, dtype=x.dtype, device=x.device) + 1
        )
        return polys * norms


class SequenceBasis(nn.Module):
    """Per-step local vectors for sequences with ``F`` features per step.

    Step ``t`` with features ``x_1..x_F`` maps to
    ``(1, f_1(x_1), ..., f_{m-1}(x_1), ..., f_1(x_F), ..., f_{m-1}(x_F))``:
    the constant and the non-constant basis functions of every feature. These
    ``1 + F (m - 1)`` functions are orthonormal on the product domain (the
    first-order part of the tensor-product basis, whose full size ``m**F``
    would be impractical), and element 0 is the constant, as every skqcnn
    network requires. With ``F = 1`` this is :class:`LocalBasis`.

    Parameters
    ----------
    representation : {"fourier", "legendre"}
    n_freq : int
    n_step_features : int
        Number F of features per step; inputs have shape ``(batch, T * F)``,
        steps major.

    Examples
    --------
    >>> import torch
    >>> from skqcnn.nn import SequenceBasis
    >>> SequenceBasis("fourier", 1, n_step_features=4)(torch.rand(2, 12)).shape
    torch.Size([2, 3, 9])
    """

    def __init__(self, representation="fourier", n_freq=1, n_step_features=1):
        super().__init__()
        self.basis = LocalBasis(representation, n_freq)
        self.n_step_features = n_step_features
        self.local_dim = 1 + n_step_features * (self.basis.local_dim - 1)

    @property
    def representation(self):
        """The local basis's representation (a property: modules pickled before it load)."""
        return self.basis.representation

    def forward(self, x):
        """Features of shape ``(batch, T, 1 + F (m - 1))``."""
        values = self.basis(x.reshape(x.shape[0], -1, self.n_step_features))
        ones = values[..., 0, :1]
        return torch.cat((ones, values[..., 1:].flatten(-2)), dim=-1)


class ConstantChannelBatchNorm(nn.Module):
    """BatchNorm over channels ``1..C`` whose shift multiplies channel 0.

    Input and output have shape ``(batch, 1 + C, *positions)``. Channel 0 (the
    constant channel) passes through unchanged. For ``i >= 1`` the output is
    ``scale_i * u_i + shift_i * u_0`` with ``scale = weight / sqrt(var + eps)``
    and ``shift = bias - mean * scale``: ordinary BatchNorm when ``u_0 = 1``, and
    a linear map otherwise, so the layer folds into a tensor network.

    Parameters
    ----------
    n_channels : int
        Number C of non-constant channels.
    mean_init : float, default=1.0
        Initial learnable mean (``bias``). Products of zero-mean factors carry
        no signal up a product-pooling tree, so the default centres them on 1.
    scale_init : float, default=0.4
        Initial learnable scale (``weight``).
    momentum, eps : float
        As in :class:`torch.nn.BatchNorm1d`.

    Attributes
    ----------
    values_per_channel : int
        Number of values per channel in the last training-mode batch
        normalisation (batch size times positions), 1 before any. torch
        stores the unbiased batch variance in ``running_var``, while training
        normalises with the biased one; this count converts between them
        (:func:`~skqcnn.nn.recalibrate_statistics`).

    Examples
    --------
    >>> import torch
    >>> from skqcnn.nn import ConstantChannelBatchNorm
    >>> norm = ConstantChannelBatchNorm(2).eval()
    >>> u = torch.tensor([[[1.0], [0.5], [2.0]]])
    >>> norm(u)[0, 0].item()  # the constant channel passes through
    1.0
    """

    def __init__(self, n_channels, mean_init=1.0, scale_init=0.4, momentum=0.1, eps=1e-5):
        super().__init__()
        self.n_channels = n_channels
        self.momentum = momentum
        self.eps = eps
        self.weight = nn.Parameter(torch.full((n_channels,), float(scale_init)))
        self.bias = nn.Parameter(torch.full((n_channels,), float(mean_init)))
        self.register_buffer("running_mean", torch.zeros(n_channels))
        self.register_buffer("running_var", torch.ones(n_channels))
        self.values_per_channel = 1

    def affine(self, dtype=None):
        """Eval-mode ``(scale, shift)``, each of shape ``(C,)``, computed in
        ``dtype`` (None: that of the parameters)."""
        weight, bias, mean, var = (t if dtype is None else t.to(dtype) for t in (
            self.weight, self.bias, self.running_mean, self.running_var))
        scale = weight / torch.sqrt(var + self.eps)
        return scale, bias - mean * scale

    def forward(self, u):
        """Normalise channels ``1..C``; keep the constant channel 0."""
        const, rest = u[:, :1], u[:, 1:]
        # One value per channel has no batch variance: a last training batch
        # of one sample at a level with one position is normalised with the
        # running statistics instead, as in evaluation.
        if self.training and rest.numel() > rest.shape[1]:
            # On training data u_0 = 1, where plain BatchNorm is the same map.
            rest = self.normalise_batch(rest)
        else:
            scale, shift = self.affine()
            shape = (1, -1) + (1,) * (u.dim() - 2)
            rest = rest * scale.view(shape) + const * shift.view(shape)
        return torch.cat((const, rest), dim=1)

    def normalise_batch(self, rest):
        """Training-mode BatchNorm of the non-constant channels, batch statistics.

        Parameters
        ----------
        rest : torch.Tensor
            Channels ``1..C`` only, of shape ``(n, C, *positions)``, with more
            than one value per channel.

        Returns
        -------
        torch.Tensor of the same shape
            Updates the running statistics and :attr:`values_per_channel`.
        """
        self.values_per_channel = rest.numel() // rest.shape[1]
        return F.batch_norm(
            rest, self.running_mean, self.running_var, self.weight, self.bias,
            training=True, momentum=self.momentum, eps=self.eps,
        )
