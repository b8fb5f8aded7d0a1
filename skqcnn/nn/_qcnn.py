"""The q-CNN of Anagiannis & Cheng as a torch module."""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import skip_init

from ._layers import ConstantChannelBatchNorm


class QCNNNetwork(nn.Module):
    """Binary-tree q-CNN on local feature vectors.

    Per level: BatchNorm (:class:`ConstantChannelBatchNorm`), a bias-free 1x1
    convolution, and same-channel product pooling of neighbouring pairs
    (Anagiannis & Cheng eq. 2-8); then a final BatchNorm and a bias-free linear
    readout (eq. 9-10). Hidden vectors carry the constant channel at index 0,
    so in eval mode the module is exactly multilinear in the site features and
    :meth:`fold` turns it into a tree tensor network.

    With one 1x1 convolution per level, every pooling node computes
    ``(W v_left) * (W v_right)``, which is symmetric in its two children: the
    network cannot tell an image from one with the children of any node
    swapped (adjacent pixels, 2x2 blocks, ..., the two halves). By default the
    left and right member of each pooling pair therefore get their own 1x1
    convolution weights, shared across all pairs of the level (a kernel-2,
    stride-2 generalized convolution). ``symmetric_pooling=True`` restores the
    paper's single shared convolution.

    Parameters
    ----------
    leaf_features : array-like of int of shape (2 ** n_levels,)
        Feature index held by each leaf in tree order, -1 for a padded constant
        site (see :func:`skqcnn._layout.quadtree_leaf_order`).
    local_dim : int
        Dimension M of the local basis; element 0 is the constant function.
    channels : tuple of int
        Channels d_1..d_L of the levels, one per pooling level.
    n_classes : int
    symmetric_pooling : bool, default=False
        Share one 1x1 convolution between both members of each pooling pair.
    bn_mean_init, bn_scale_init : float
        Initial learnable mean and scale of every BatchNorm.
    generator : torch.Generator or None, default=None
        Source of the random initial weights; None draws from torch's global
        generator. Estimators pass a generator of their own, so that fits in
        parallel threads do not share one stream.

    Notes
    -----
    The nodes of each level are stored in bit-reversed tree order, rows
    ``(node, sample)``: the left members of all pairs come first, the right
    members at the same offsets after them, so a level is one batched matrix
    product for both sides and one elementwise product, with no reordering
    between levels. Eval mode contracts the matrices of :meth:`fold`. Training
    mode, whose batch statistics never read the constant channel, leaves it
    out. The module's own ``training`` flag picks the mode for every level.

    Examples
    --------
    >>> import torch
    >>> from skqcnn.nn import QCNNNetwork
    >>> net = QCNNNetwork([0, 1, 2, 3], local_dim=3, channels=(4, 5), n_classes=2)
    >>> net(torch.rand(8, 4, 3)).shape
    torch.Size([8, 2])
    """

    def __init__(self, leaf_features, local_dim, channels, n_classes,
                 symmetric_pooling=False, bn_mean_init=1.0, bn_scale_init=0.4, *,
                 generator=None):
        super().__init__()
        leaf_features = np.asarray(leaf_features, dtype=np.int64)
        n_levels = int(np.log2(leaf_features.size))
        if 2**n_levels != leaf_features.size or len(channels) != n_levels:
            raise ValueError(
                f"{leaf_features.size} leaves need a power of two with one channel "
                f"count per level; got {len(channels)} channel counts."
            )
        n_features = int(leaf_features.max()) + 1
        self.n_features = n_features
        # Padded leaves gather from an extra constant site appended at index n_features.
        gather = np.where(leaf_features < 0, n_features, leaf_features)
        self.register_buffer("leaf_index", torch.as_tensor(gather))
        # Derived from leaf_index, hence not saved.
        self.register_buffer("_storage_index",
                             torch.as_tensor(gather[_storage_order(n_levels)]),
                             persistent=False)
        site = None
        if (leaf_features < 0).any():
            site = torch.zeros(1, 1, local_dim)
            site[..., 0] = 1
        self.register_buffer("_constant_site", site, persistent=False)
        self.local_dim = local_dim
        self.channels = tuple(int(c) for c in channels)
        widths = (local_dim - 1,) + self.channels
        self.norms = nn.ModuleList(
            ConstantChannelBatchNorm(w, bn_mean_init, bn_scale_init) for w in widths
        )
        n_sides = 1 if symmetric_pooling else 2
        self.symmetric_pooling = symmetric_pooling
        # The distribution of torch's default init of a 1x1 nn.Conv1d and of
        # nn.Linear: uniform in +-1/sqrt(fan_in).
        self.convs = nn.ParameterList(
            nn.Parameter(_uniform((n_sides, d_out, d_in), d_in, generator))
            for d_in, d_out in zip(widths[:-1], widths[1:])
        )
        # skip_init: nn.Linear's own init would draw from the global generator.
        self.readout = skip_init(nn.Linear, widths[-1], n_classes, bias=False)
        with torch.no_grad():
            self.readout.weight.copy_(_uniform((n_classes, widths[-1]), widths[-1], generator))

    def _leaves(self, features, channels=slice(None)):
        """Leaf vectors in storage order, shape (n_leaves, batch, len(channels))."""
        features = features[..., channels]
        if self._constant_site is not None:
            site = self._constant_site[..., channels].expand(features.shape[0], 1, -1)
            features = torch.cat((features, site), dim=1)
        return features.transpose(0, 1)[self._storage_index]

    def forward(self, features):
        """Scores alpha_y of shape (batch, n_classes) from (batch, n_features, M)."""
        if not self.training:
            matrices, readout = self._folded()
            return _contract(self._leaves(features).flatten(0, 1), matrices) @ readout.T
        # With batch statistics no level reads the constant channel (the
        # BatchNorm shift is added, as u_0 = 1 on real data), so training
        # carries only channels 1..: one matrix product and one product per level.
        u = self._leaves(features, slice(1, None)).flatten(0, 1)
        for norm, weight in zip(self.norms, self.convs):
            u = _pool(norm.normalise_batch(u), weight)
        norm = self.norms[-1]
        if u.shape[0] > 1:
            u = norm.normalise_batch(u)
        else:
            # One value per channel has no batch variance: as
            # ConstantChannelBatchNorm does, use the running statistics, whose
            # shift multiplies the constant channel (the product of the leaves').
            const = self._leaves(features, slice(1)).prod(dim=0)
            scale, shift = norm.affine()
            u = u * scale + const * shift
        return self.readout(u)

    def log_forward(self, features):
        """Logarithm of the absolute score and its sign, without over- or underflow.

        Every node's vector is divided by its largest magnitude before each
        pooling and the logarithms of these factors are summed up the tree.
        Eval-mode levels are linear in each child (BatchNorm's shift
        multiplies the constant channel), so this is exact up to round-off;
        training-mode statistics would see the rescaled vectors, hence the
        restriction.

        Parameters
        ----------
        features : torch.Tensor of shape (batch, n_features, local_dim)

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
        matrices, readout = self._folded()
        u = self._leaves(features).flatten(0, 1)
        log_scale = u.new_zeros(u.shape[0])
        for matrix in matrices:
            u, log_scale = _rescaled(u, log_scale)
            u = _contract(u, [matrix])
            log_scale = log_scale.view(2, -1).sum(dim=0)
        u, log_scale = _rescaled(u, log_scale)
        scores = u @ readout.T
        return torch.log(scores.abs()) + log_scale[:, None], torch.sign(scores)

    def _folded(self, dtype=None):
        """Eval-mode levels and readout as matrices on vectors with the constant channel.

        Computed in ``dtype`` (None: the parameters'): BatchNorm's ``(scale,
        shift)`` from its statistics cast first, so that a float64 fold of a
        float32 network is the float64 network's, not a rounded float32 one.
        """
        matrices = []
        for norm, weight in zip(self.norms, self.convs):
            scale, shift = norm.affine(dtype)
            w = weight.to(dtype).expand(2, -1, -1)
            block = torch.cat((w @ shift[:, None], w * scale), dim=2)
            # Row 0 keeps the constant channel: e_0 on e_0.
            top = F.one_hot(block.new_zeros(2, 1, dtype=torch.long), block.shape[2])
            matrices.append(torch.cat((top.to(block.dtype), block), dim=1))
        scale, shift = self.norms[-1].affine(dtype)
        c = self.readout.weight.to(dtype)
        return matrices, torch.cat((c @ shift[:, None], c * scale), dim=1)

    @torch.no_grad()
    def fold(self):
        """Eval-mode weights folded into tree-network matrices, in float64.

        Returns
        -------
        matrices : list of ndarray
            ``matrices[l]`` of shape ``(2, 1 + d_{l+1}, D_l)`` with
            ``D_0 = M``, for the left and right member of each pooling pair:
            row 0 keeps the constant channel, the other rows are the 1x1
            convolution after the BatchNorm.
        readout : ndarray of shape (n_classes, 1 + d_L)
        fixed_leaves : ndarray of bool
            True at padded constant leaves.
        """
        matrices, readout = self._folded(torch.float64)
        fixed = self.leaf_index.cpu().numpy() == self.n_features
        return [m.cpu().numpy() for m in matrices], readout.cpu().numpy(), fixed


def _pool(u, weight):
    """Each side's 1x1 convolution of the rows ``u`` in storage order, and their product.

    The first half of the rows holds the left members of the pairs, the second
    half the right members, so both sides are one batched matrix product.
    """
    if weight.shape[0] == 1:
        mixed = (u @ weight[0].T).view(2, -1, weight.shape[1])
    else:
        mixed = torch.bmm(u.view(2, -1, u.shape[1]), weight.transpose(1, 2))
    left, right = mixed.unbind(0)
    return left * right


def _contract(u, matrices):
    """Apply folded levels (each of shape (2, d_out, d_in)) to rows in storage order."""
    for matrix in matrices:
        left, right = torch.bmm(u.view(2, -1, u.shape[1]), matrix.transpose(1, 2)).unbind(0)
        u = left * right
    return u


def _storage_order(n_levels):
    """Tree positions in storage order: the bit reversal of each index.

    Storing the nodes of a level in this order puts the left member of every
    pair in the first half and the right member, at the same offset, in the
    second half, and the products of the halves are the parents in the storage
    order of the level above.
    """
    order = np.zeros(1, dtype=np.int64)
    for _ in range(n_levels):
        order = np.concatenate((2 * order, 2 * order + 1))
    return order


def _uniform(shape, fan_in, generator):
    """Uniform in ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``, drawn from ``generator``."""
    return (2 * torch.rand(shape, generator=generator) - 1) / fan_in**0.5


def _rescaled(u, log_scale):
    """Divide each row of ``u`` (nodes x batch, channels) by its largest magnitude."""
    top = u.abs().amax(dim=1)
    top = torch.where(top > 0, top, torch.ones_like(top))
    return u / top.unsqueeze(1), log_scale + torch.log(top)
