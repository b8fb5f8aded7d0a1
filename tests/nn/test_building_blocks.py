"""Layouts, channel schedules, local bases and layers."""

import numpy as np
import pytest
import torch

from skqcnn._layout import quadtree_leaf_order, resolve_image_shape
from skqcnn._schedules import resolve_channels
from skqcnn.nn import ConstantChannelBatchNorm, LocalBasis
from skqcnn.nn._layers import basis_domain


@pytest.mark.parametrize("shape, top_split", [((8, 8), "left_right"), ((8, 8), "up_down"),
                                              ((4, 16), "left_right"), ((16, 2), "up_down")])
def test_quadtree_pools_spatial_neighbours(shape, top_split):
    order, axes = quadtree_leaf_order(shape, top_split)
    assert sorted(order.tolist()) == list(range(shape[0] * shape[1]))
    rows, cols = np.divmod(order, shape[1])
    # Every node of every level covers a rectangle of the expected size.
    for level in range(1, len(axes) + 1):
        size = 2**level
        height = 2 ** axes[:level].count("row")
        width = 2 ** axes[:level].count("col")
        for start in range(0, order.size, size):
            r, c = rows[start:start + size], cols[start:start + size]
            assert r.max() - r.min() + 1 == height and c.max() - c.min() + 1 == width
    assert axes[-1] == ("col" if top_split == "left_right" else "row")


def test_quadtree_pads_with_constant_sites():
    order, axes = quadtree_leaf_order((3, 5))
    assert order.size == 32 and (order == -1).sum() == 32 - 15
    assert sorted(order[order >= 0].tolist()) == list(range(15))
    # Centred: floor(pad / 2) constant sites first, so the top split is 'left_right'.
    one_d, _ = quadtree_leaf_order((5,))
    assert one_d.tolist() == [-1, 0, 1, 2, 3, 4, -1, -1]
    single, _ = quadtree_leaf_order((1,))
    assert single.tolist() == [0, -1]


def test_image_shape_inference():
    assert resolve_image_shape(None, 64) == (8, 8)
    assert resolve_image_shape(None, 10) == (10,)
    assert resolve_image_shape([2, 5], 10) == (2, 5)


@pytest.mark.parametrize("channels, expected", [
    (("linear", 3), (6, 9, 12)),
    (("constant", 5), (5, 5, 5)),
    (("wide_base", 16), (16, 8, 4)),
    (("wide_tip", 16), (4, 8, 16)),
    (7, (7, 7, 7)),
    ([1, 2, 3], (1, 2, 3)),
])
def test_channel_schedules(channels, expected):
    assert resolve_channels(channels, 3) == expected


@pytest.mark.parametrize("representation, n_freq", [("fourier", 1), ("fourier", 3),
                                                    ("legendre", 1), ("legendre", 4)])
def test_local_bases_are_orthonormal_with_constant_first(representation, n_freq):
    basis = LocalBasis(representation, n_freq)
    # Gauss-Legendre quadrature, exact for these polynomials and trigonometric
    # functions to double precision, on each basis's own orthogonality domain.
    nodes, weights = np.polynomial.legendre.leggauss(64)
    if representation == "fourier":
        x, w = (nodes + 1) / 2, weights / 2  # Lebesgue measure on [0, 1]
    else:
        x, w = nodes, weights / 2  # uniform probability measure on [-1, 1]
    values = basis(torch.as_tensor(x, dtype=torch.float64)).numpy()
    assert values.shape == (64, basis.local_dim)
    np.testing.assert_allclose(values[:, 0], 1.0)
    np.testing.assert_allclose(values.T @ (w[:, None] * values), np.eye(basis.local_dim), atol=1e-12)


def test_fourier_domain_separates_black_from_white():
    low, high = basis_domain("fourier")
    values = LocalBasis("fourier", 2)(torch.tensor([low, high], dtype=torch.float64))
    assert not torch.allclose(values[0], values[1])


def test_constant_channel_batchnorm_is_linear_in_eval_and_plain_bn_in_train():
    torch.manual_seed(0)
    norm = ConstantChannelBatchNorm(3)
    data = torch.cat((torch.ones(16, 1, 5), torch.randn(16, 3, 5)), dim=1)
    reference = torch.nn.BatchNorm1d(3)
    reference.weight.data, reference.bias.data = norm.weight.data.clone(), norm.bias.data.clone()
    torch.testing.assert_close(norm(data)[:, 1:], reference(data[:, 1:]))
    torch.testing.assert_close(norm.running_mean, reference.running_mean)
    norm.eval()
    # Linear in the whole vector, the constant channel included.
    a, b = torch.randn(4, 4, 2), torch.randn(4, 4, 2)
    torch.testing.assert_close(norm(2 * a - 3 * b), 2 * norm(a) - 3 * norm(b))


def test_entropy_of_spectrum_with_denormal_weights_is_finite():
    from skqcnn.entanglement import entropy_from_spectrum

    spectrum = np.array([1e300, 1e300, 5e-324])
    for alpha in (1, 2, 0.5, np.inf):
        value = entropy_from_spectrum(spectrum, alpha=alpha)
        assert np.isfinite(value)
        np.testing.assert_allclose(value, np.log(2), rtol=1e-12)
