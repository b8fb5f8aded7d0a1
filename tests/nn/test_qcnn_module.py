"""QCNNNetwork against a straightforward reference implementation of the same function."""

import copy

import numpy as np
import pytest
import torch

from skqcnn._layout import quadtree_leaf_order
from skqcnn.nn import QCNNNetwork


def reference_scores(net, features):
    """The q-CNN level by level in tree order, constant channel explicit.

    Uses the module's own ConstantChannelBatchNorm layers (so running
    statistics of ``net`` are updated in training mode) and its weights.
    """
    site = torch.zeros_like(features[:, :1])
    site[..., 0] = 1
    u = torch.cat((features, site), dim=1)[:, net.leaf_index].transpose(1, 2)
    for norm, weight in zip(net.norms, net.convs):
        u = norm(u)
        w = weight.expand(2, -1, -1)
        left, right = u[..., 0::2], u[..., 1::2]
        u = torch.cat((left[:, :1] * right[:, :1],
                       (w[0] @ left[:, 1:]) * (w[1] @ right[:, 1:])), dim=1)
    u = net.norms[-1](u)[..., 0]
    return u[:, 1:] @ net.readout.weight.T


def reference_fold(net):
    """Per-level ``[[1, 0], [W shift, W scale]]`` and the readout, in float64."""
    matrices = []
    for norm, weight in zip(net.norms, net.convs):
        scale, shift = (t.double() for t in norm.affine())
        w = weight.double().expand(2, -1, -1)
        matrix = torch.zeros(2, 1 + w.shape[1], 1 + w.shape[2], dtype=torch.float64)
        matrix[:, 0, 0] = 1
        matrix[:, 1:, :1] = w @ shift[:, None]
        matrix[:, 1:, 1:] = w * scale
        matrices.append(matrix.detach().numpy())
    scale, shift = (t.double() for t in net.norms[-1].affine())
    c = net.readout.weight.double()
    return matrices, torch.cat((c @ shift[:, None], c * scale), dim=1).detach().numpy()


def contract_tree(matrices, readout, leaf_vectors):
    """Scores of a folded tree network on leaf vectors (batch, n_leaves, M) in tree order."""
    u = leaf_vectors
    for matrix in matrices:
        left = u[:, 0::2] @ matrix[0].T
        right = u[:, 1::2] @ matrix[1].T
        u = left * right
    return u[:, 0] @ readout.T


def random_network(shape, symmetric, seed):
    """A float64 q-CNN with random weights and running statistics far from the init."""
    leaves, _ = quadtree_leaf_order(shape)
    n_levels = int(np.log2(leaves.size))
    generator = torch.Generator().manual_seed(seed)
    net = QCNNNetwork(leaves, 3, tuple(range(2, 2 + n_levels)), 4,
                      symmetric_pooling=symmetric, generator=generator).double()
    with torch.no_grad():
        for tensor in [*net.parameters(), *(n.running_mean for n in net.norms)]:
            tensor.copy_(torch.rand(tensor.shape, generator=generator, dtype=tensor.dtype) - 0.5)
        for norm in net.norms:
            norm.running_var.copy_(0.5 + torch.rand(norm.running_var.shape, generator=generator,
                                                    dtype=torch.float64))
    # Channel 0 random too: training mode must not read it, eval mode must.
    features = torch.rand(6, int(np.prod(shape)), 3, generator=generator, dtype=torch.float64)
    return net, features


LAYOUTS = [((4, 4), False), ((3, 5), False), ((6,), True)]


@pytest.mark.parametrize("shape, symmetric", LAYOUTS)
def test_training_step_matches_reference(shape, symmetric):
    net, features = random_network(shape, symmetric, seed=1)
    reference = copy.deepcopy(net)
    scores = net(features)
    expected = reference_scores(reference, features)
    torch.testing.assert_close(scores, expected, rtol=1e-12, atol=1e-12)
    # Same gradients and the same running statistics afterwards.
    weights = torch.randn(scores.shape, dtype=torch.float64)
    (scores * weights).sum().backward()
    (expected * weights).sum().backward()
    for (name, param), ref_param in zip(net.named_parameters(), reference.parameters()):
        torch.testing.assert_close(param.grad, ref_param.grad, rtol=1e-10, atol=1e-12,
                                   msg=name)
    for (name, buffer), ref_buffer in zip(net.named_buffers(), reference.buffers()):
        torch.testing.assert_close(buffer, ref_buffer, rtol=1e-12, atol=1e-12, msg=name)


def test_training_batch_of_one_uses_running_statistics_at_the_top():
    net, features = random_network((4, 4), False, seed=2)
    reference = copy.deepcopy(net)
    torch.testing.assert_close(net(features[:1]), reference_scores(reference, features[:1]),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, symmetric", LAYOUTS)
def test_eval_scores_and_fold_match_reference(shape, symmetric):
    net, features = random_network(shape, symmetric, seed=3)
    net.eval()
    expected = reference_scores(net, features)
    torch.testing.assert_close(net(features), expected, rtol=1e-12, atol=1e-12)

    log_abs, sign = net.log_forward(features)
    torch.testing.assert_close(log_abs, torch.log(expected.abs()), rtol=0, atol=1e-12)
    torch.testing.assert_close(sign, torch.sign(expected))

    matrices, readout, fixed = net.fold()
    ref_matrices, ref_readout = reference_fold(net)
    for matrix, ref_matrix in zip(matrices, ref_matrices, strict=True):
        np.testing.assert_allclose(matrix, ref_matrix, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(readout, ref_readout, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(fixed, quadtree_leaf_order(shape)[0] < 0)
    # The folded network is the eval-mode function.
    leaves = net.leaf_index.numpy()
    padded = np.concatenate((features.numpy(), np.eye(3)[None, :1].repeat(6, 0)), axis=1)
    np.testing.assert_allclose(contract_tree(matrices, readout, padded[:, leaves]),
                               expected.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_log_forward_holds_scores_that_overflow():
    net, features = random_network((8, 8), False, seed=4)
    net.eval()
    with torch.no_grad():
        net.readout.weight.mul_(1e300)
        for weight in net.convs:
            weight.mul_(1e3)
    log_abs, sign = net.log_forward(features)
    assert not torch.isfinite(net(features)).all()
    assert torch.isfinite(log_abs).all() and log_abs.min() > np.log(1e300)
    # Linear in the readout: the scaled network's logs minus log(1e300).
    with torch.no_grad():
        net.readout.weight.div_(1e300)
    small_log, small_sign = net.log_forward(features)
    torch.testing.assert_close(log_abs - small_log, torch.full_like(log_abs, np.log(1e300)))
    torch.testing.assert_close(sign, small_sign)


def test_state_dict_layout_is_unchanged():
    # Saved models hold these names and shapes (persistence format).
    leaves, _ = quadtree_leaf_order((3, 5))
    net = QCNNNetwork(leaves, 3, (2, 3, 4, 5, 6), 4)
    shapes = {name: tuple(t.shape) for name, t in net.state_dict().items()}
    expected = {"leaf_index": (32,), "readout.weight": (4, 6)}
    for level, (d_in, d_out) in enumerate(zip((2, 2, 3, 4, 5), (2, 3, 4, 5, 6))):
        expected[f"convs.{level}"] = (2, d_out, d_in)
    for level, width in enumerate((2, 2, 3, 4, 5, 6)):
        expected.update({f"norms.{level}.{name}": (width,) for name in
                         ("weight", "bias", "running_mean", "running_var")})
    assert shapes == expected
