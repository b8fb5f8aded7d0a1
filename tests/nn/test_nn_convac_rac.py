"""Overlapping ConvAC and deep RAC networks."""

import copy
import itertools
import math

import numpy as np
import pytest
import torch

from skqcnn.nn import recalibrate_statistics
from skqcnn._convac_eval import eval_layer, pad_log_map, pad_map
from skqcnn._layout import convac_map_shapes
from skqcnn.nn._convac import OverlappingConvACNetwork
from skqcnn.nn._layers import LocalBasis
from skqcnn.nn._rac import DeepRACNetwork

torch.set_num_threads(1)


def _fourier_features(shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return LocalBasis("fourier", 1)(0.5 * torch.rand(shape, generator=gen))


def test_map_shapes_and_outputs():
    assert convac_map_shapes((8, 8), (4, 4), 3, None) == [(8, 8)] * 3
    assert convac_map_shapes((12,), (2, 2), 2, 2) == [(12,), (6,), (3,)]
    assert convac_map_shapes((8, 4), (3, 3), 1, 2) == [(8, 4), (4, 2), (2, 1)]
    # Clipped pooling blocks: a side n becomes ceil(n / P).
    assert convac_map_shapes((6,), (2, 2), 2, 2) == [(6,), (3,), (2,)]
    assert convac_map_shapes((7, 5), (2, 2), 3, 4) == [(7, 5), (2, 2), (1, 1)]
    for image_shape, pooling in [((7,), None), ((8,), 2), ((6, 4), None), ((8, 8), 2),
                                 ((7,), 2), ((5, 3), 2), ((6, 10), 4)]:
        net = OverlappingConvACNetwork(image_shape, 3, (3, 2), 2, 5, pooling=pooling)
        n_sites = int(np.prod(image_shape))
        assert net(_fourier_features((4, n_sites))).shape == (4, 5)
    maps = OverlappingConvACNetwork((5, 6), 3, (2,), 3, 1).folded_maps()
    h = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    log_scale = torch.zeros(2, 1, 5, 6, dtype=torch.float64)
    out, out_log = eval_layer(pad_map(h, (1, 1)), pad_log_map(log_scale, (1, 1)),
                              maps["rows"][0], 3, None, maps["top"])
    assert out.shape == (2, 3, 5, 6) and out_log.shape == (2, 1, 5, 6)
    # A kernel larger than a map reads e_0 beyond it.
    assert OverlappingConvACNetwork((4, 4), 2, (2,), 5, 3)(torch.ones(2, 16, 2)).shape == (2, 3)


def test_size_errors():
    with pytest.raises(ValueError, match="image_shape"):
        OverlappingConvACNetwork((2, 2, 2), 2, (2,), 1, 1)
    with pytest.raises(ValueError, match=r"shape \(batch, 16, 3\)"):
        OverlappingConvACNetwork((4, 4), 3, (2,), 2, 1)(torch.ones(2, 16, 2))
    with pytest.raises(ValueError, match=r"shape \(batch, 5, 2\)"):
        DeepRACNetwork(5, 2, (2,), 1)(torch.ones(2, 4, 2))


@pytest.mark.parametrize("image_shape, pooling", [((8, 8), None), ((32, 32), None),
                                                  ((32, 32), 2)])
def test_convac_outputs_are_finite_in_float32(image_shape, pooling):
    torch.manual_seed(0)
    net = OverlappingConvACNetwork(image_shape, 3, (4, 4), 3, 10, pooling=pooling)
    features = _fourier_features((16, image_shape[0] * image_shape[1]))
    for training in (True, False):
        if not training:
            # Eval mode uses running statistics, placeholders until set from data.
            recalibrate_statistics(net, [features])
        net.train(training)
        scores = net(features)
        assert scores.dtype == torch.float32
        assert torch.all(torch.isfinite(scores))
        assert scores.std() > 0


def test_rac_outputs_are_finite_in_float32_over_256_steps():
    torch.manual_seed(0)
    net = DeepRACNetwork(256, 3, (8, 8), 10)
    features = _fourier_features((16, 256))
    for training in (True, False):
        net.train(training)
        scores = net(features)
        assert torch.all(torch.isfinite(scores))
        assert scores.std() > 0


def test_padding_is_the_constant_state():
    # One layer in eval mode, written out by hand: position t multiplies the
    # normalised factors of W^(k) x_{t + k - (K - 1) // 2}, with e_0 outside
    # the chain; pooling multiplies blocks of P positions, the last one
    # clipped; top_norm, the global product and the readout follow.
    torch.manual_seed(0)
    n_sites, local_dim = 5, 3
    for kernel, pooling in [(2, None), (3, None), (3, 2), (2, 3)]:
        net = OverlappingConvACNetwork((n_sites,), local_dim, (2,), kernel, 2,
                                       pooling=pooling).double().eval()
        features = torch.randn(1, n_sites, local_dim, dtype=torch.float64)
        with torch.no_grad():
            net.running_log_scale.normal_()
            factor_norm, top_norm, readout_norm = net.norms[0], net.top_norm, net.readout_norm
            for p in (factor_norm.running_mean, factor_norm.weight, top_norm.weight,
                      top_norm.bias, top_norm.running_mean, readout_norm.weight,
                      readout_norm.bias, readout_norm.running_mean):
                p.normal_()
            for p in (factor_norm.running_var, factor_norm.running_spread,
                      top_norm.running_var, readout_norm.running_var):
                p.uniform_(0.5, 2.0)
            weight = net.conv_weights[0].numpy()
            mean = factor_norm.running_mean.numpy()
            std = np.sqrt(factor_norm.running_var.numpy() + factor_norm.eps)
            gain = factor_norm.weight.numpy() / factor_norm.running_spread.numpy()
            top_scale, top_shift = (v.numpy() for v in top_norm.affine())
            readout_scale, readout_shift = (v.numpy() for v in readout_norm.affine())
            readout = net.readout.weight.numpy()
            x = features[0].numpy()
        e0 = np.eye(local_dim)[0]
        outputs = []
        for t in range(n_sites):
            out = np.ones(3)
            for k in range(kernel):
                p = t + k - (kernel - 1) // 2
                v = x[p] if 0 <= p < n_sites else e0
                z = (weight[k] @ v - mean[k] * v[0]) / std[k]
                out *= np.concatenate(([v[0]], v[0] + gain * z))
            outputs.append(out)
        step = pooling or 1
        pooled = np.ones(3)
        for start in range(0, n_sites, step):
            out = np.prod(outputs[start:start + step], axis=0)
            out[1:] = top_scale * out[1:] + top_shift * out[0]
            pooled *= out
        pooled[1:] /= np.exp(net.running_log_scale.numpy())
        pooled[1:] = readout_scale * pooled[1:] + readout_shift * pooled[0]
        np.testing.assert_allclose(net(features).detach().numpy()[0], readout @ pooled,
                                   rtol=1e-12)


@pytest.mark.parametrize(
    "net",
    [OverlappingConvACNetwork((4, 4), 3, (3, 2), 2, 3), DeepRACNetwork(12, 3, (3, 2), 3)],
)
def test_log_forward_matches_forward(net):
    net = net.double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_()
    features = torch.randn(5, *_shape(net), dtype=torch.float64)
    scores = net(features)
    log_abs, sign = net.log_forward(features)
    np.testing.assert_allclose((sign * torch.exp(log_abs)).detach().numpy(),
                               scores.detach().numpy(), rtol=1e-9)
    zero = net.log_forward(torch.zeros(1, *_shape(net), dtype=torch.float64))
    assert torch.all(torch.isneginf(zero[0])) and torch.all(zero[1] == 0)


def _shape(net):
    n = net.n_sites if isinstance(net, OverlappingConvACNetwork) else net.n_steps
    return (n, net.local_dim)


def test_rac_log_forward_needs_eval_mode():
    net = DeepRACNetwork(4, 2, (2,), 1)
    with pytest.raises(RuntimeError, match="eval"):
        net.log_forward(torch.ones(1, 4, 2))


def test_rac_folded_layers_reproduce_the_eval_forward():
    torch.manual_seed(0)
    net = DeepRACNetwork(6, 3, (3, 2), 2)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_()
        for norms in net.norms:
            norms.running_mean.normal_()
            norms.running_var.uniform_(0.5, 2.0)
    features = torch.randn(4, 6, 3, dtype=torch.float64)
    layers, readout = net.folded_layers()
    sequence = features
    for layer in layers:
        state = layer["initial"].expand(4, -1)
        outputs = []
        for t in range(6):
            u = (state @ layer["hidden"].T) * (sequence[:, t] @ layer["input"].T)
            state = u @ layer["norms"][t].T
            outputs.append(state)
        sequence = torch.stack(outputs, dim=1)
    expected = state @ readout.T
    scores = net.double().eval()(features)
    np.testing.assert_allclose(scores.detach().numpy(), expected.numpy(), rtol=1e-10)


def test_constant_channel_is_one_on_data():
    # In eval mode positions are divided by scalars whose logs are carried
    # beside the map: the constant channel times exp(log-scale) is 1.
    maps = OverlappingConvACNetwork((6, 6), 3, (3, 3), 3, 2, pooling=None).folded_maps()
    h = _fourier_features((4, 36)).double().reshape(4, 6, 6, 3).movedim(-1, 1)
    log_scale = torch.zeros(4, 1, 6, 6, dtype=torch.float64)
    for layer, rows in enumerate(maps["rows"]):
        h, log_scale = eval_layer(pad_map(h, (1, 1)), pad_log_map(log_scale, (1, 1)), rows, 3,
                                  None, maps["top"] if layer == 1 else None)
        torch.testing.assert_close(h[:, 0] * torch.exp(log_scale[:, 0]),
                                   torch.ones(4, 6, 6, dtype=torch.float64))
    # The last map is divided by its largest entry at every position.
    torch.testing.assert_close(h.abs().amax(dim=1), torch.ones(4, 6, 6, dtype=torch.float64))


def test_recalibration_sets_statistics_from_data():
    torch.manual_seed(0)
    net = OverlappingConvACNetwork((6, 6), 3, (3, 3), 3, 2)
    features = _fourier_features((64, 36), seed=1)
    recalibrate_statistics(net, [features[:32], features[32:]])
    assert not net.training
    # First-layer factor k at output t is W^(k) x_{t + k - 1} (e_0 outside):
    # its mean per (offset, channel), the average of the two batches' means.
    padded = pad_map(features.reshape(64, 6, 6, 3).movedim(-1, 1), (1, 1))
    means = torch.stack([
        torch.einsum("cd,bdij->bcij", w, padded[:, :, a:a + 6, b:b + 6]).mean(dim=(0, 2, 3))
        for w, (a, b) in zip(net.conv_weights[0], net.offsets)
    ])
    torch.testing.assert_close(net.norms[0].running_mean, means, rtol=1e-5, atol=1e-6)
    # In eval mode the pooled log-magnitudes are centred on the data.
    log_abs, _ = net._pooled_log(features)
    torch.testing.assert_close(log_abs[:, 1:].mean(dim=0), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(net.running_log_scale,
                               net.pooled_log_magnitudes(features)[0][:, 1:].mean(dim=0),
                               atol=1e-4, rtol=0)


def test_convac_trains_on_digits():
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    features = LocalBasis("fourier", 1)(torch.tensor(0.5 * x / 16.0, dtype=torch.float32))
    labels = torch.tensor(y)
    train, test = slice(0, 1200), slice(1200, None)
    net = OverlappingConvACNetwork((8, 8), 3, (8, 8), 3, 10, pooling=2)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2)
    for _ in range(3):
        net.train()
        order = torch.randperm(1200)
        for batch in order.split(64):
            loss = torch.nn.functional.cross_entropy(net(features[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    recalibrate_statistics(net, list(features[train].split(64)))
    with torch.no_grad():
        accuracy = (net(features[test]).argmax(dim=1) == labels[test]).float().mean()
    assert accuracy > 0.35


def test_initial_values_come_from_the_generator_only():
    def build(seed):
        return OverlappingConvACNetwork((5, 7), 3, (2, 3), 3, 4, pooling=2,
                                        generator=torch.Generator().manual_seed(seed))

    state = torch.random.get_rng_state()
    first, again, other = build(0), build(0), build(1)
    assert torch.equal(torch.random.get_rng_state(), state)
    for a, b, c in zip(first.parameters(), again.parameters(), other.parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(first.readout.weight, other.readout.weight)
    assert not torch.equal(first.conv_weights[1], other.conv_weights[1])


@pytest.mark.parametrize("n_sites, pooling, kernel", [(7, 2, 2), (7, 3, 3), (5, 2, 3)])
def test_clipped_pooling_rank_bound_holds(n_sites, pooling, kernel):
    # Clipped pooling blocks (n_sites not divisible by P): the min-cut bound
    # still bounds the enumerated Schmidt ranks, and the state is not trivial.
    from skqcnn.entanglement import enumerate_amplitudes
    from skqcnn.entanglement._reused_input_mincut import convac_rank_bound

    local_dim, channels = 2, (2, 2)
    net = OverlappingConvACNetwork((n_sites,), local_dim, channels, kernel, 1, pooling=pooling,
                                   generator=torch.Generator().manual_seed(0)).double()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
    psi = enumerate_amplitudes(net, n_sites, local_dim)[0]
    ranks = []
    for cut in range(1, n_sites):
        in_a = np.arange(n_sites) < cut
        matrix = psi.reshape(local_dim**cut, -1)
        singular = np.linalg.svd(matrix, compute_uv=False)
        rank = int(np.sum(singular > 1e-10 * singular[0]))
        ranks.append(rank)
        assert rank <= convac_rank_bound((n_sites,), local_dim, channels, kernel, pooling, in_a)
    assert max(ranks) > 1


# --- the RAC's fused training steps against a step-by-step reference ----------


def _reference_rac(net, features, training):
    """Scores of ``net`` computed step by step with autograd, as the RAC is defined.

    Step t of layer l: ``u = (W^H h_{t-1}) * (W^I x_t)`` over the full
    channels (constant channel 0 first), then the step's BatchNorm: in
    training mode the batch mean and biased variance (the running ones in a
    flat channel, where the samples agree up to rounding; the constant
    channel passes), in eval mode the fixed map ``scale * u + shift * u_0``. Returns
    the scores and, in training mode, the running statistics the steps'
    update gives (momentum average of the batch mean and biased variance).
    """
    batch = features.shape[0]
    sequence = features
    statistics = []
    for w_h, w_i, h0, norms in zip(net.hidden_weights, net.input_weights, net.initial_states,
                                   net.norms):
        full_h = torch.cat((torch.eye(1, w_h.shape[1], dtype=w_h.dtype), w_h))
        full_i = torch.cat((torch.eye(1, w_i.shape[1], dtype=w_i.dtype), w_i))
        state = torch.cat((torch.ones(batch, 1, dtype=h0.dtype), h0.expand(batch, -1)), dim=1)
        outputs, steps = [], []
        for t in range(net.n_steps):
            weight, bias = norms.weight[t], norms.bias[t]
            running_mean, running_var = norms.running_mean[t], norms.running_var[t]
            u = (state @ full_h.T) * (sequence[:, t] @ full_i.T)
            const, rest = u[:, :1], u[:, 1:]
            if training:
                mean, var = rest.mean(dim=0), rest.var(dim=0, unbiased=False)
                # A flat channel (the samples agree up to rounding) is
                # normalised with the running statistics, which it keeps.
                flat = var <= torch.finfo(var.dtype).eps * rest.square().mean(dim=0)
                used_mean = torch.where(flat, running_mean, mean)
                used_var = torch.where(flat, running_var, var)
                rest = (rest - used_mean) / torch.sqrt(used_var + norms.eps) * weight + bias
                steps.append(tuple(
                    torch.where(flat, running, (1 - norms.momentum) * running
                                + norms.momentum * batch.detach())
                    for running, batch in ((running_mean, mean), (running_var, var))))
            else:
                scale = weight / torch.sqrt(running_var + norms.eps)
                rest = rest * scale + const * (bias - running_mean * scale)
            state = torch.cat((const, rest), dim=1)
            outputs.append(state)
        sequence = torch.stack(outputs, dim=1)
        if training:
            statistics.append([torch.stack(rows) for rows in zip(*steps)])
    return state @ net.readout.weight.T, statistics


def _assert_statistics(net, statistics):
    for norms, (means, variances) in zip(net.norms, statistics):
        torch.testing.assert_close(norms.running_mean, means, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(norms.running_var, variances, rtol=1e-12, atol=1e-12)


def _random_rac(n_steps, local_dim, hidden_sizes, seed=0):
    """A float64 RAC whose weights, BatchNorm affines and statistics are all random."""
    gen = torch.Generator().manual_seed(seed)
    net = DeepRACNetwork(n_steps, local_dim, hidden_sizes, 3, generator=gen).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        for norms in net.norms:
            norms.running_mean.normal_(1.0, 0.3, generator=gen)
            norms.running_var.uniform_(0.5, 2.0, generator=gen)
    return net


@pytest.mark.parametrize("hidden_sizes", [(3,), (4, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_rac_matches_the_step_by_step_reference(hidden_sizes, training):
    net = _random_rac(6, 3, hidden_sizes).train(training)
    features = _fourier_features((7, 6), seed=2).double()
    before = {name: b.clone() for name, b in net.named_buffers()}
    expected, statistics = _reference_rac(net, features, training)
    scores = net(features)
    np.testing.assert_allclose(scores.detach().numpy(), expected.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    params = list(net.parameters())
    weights = torch.randn(scores.shape, generator=torch.Generator().manual_seed(3),
                          dtype=torch.float64)
    for got, want in zip(torch.autograd.grad((scores * weights).sum(), params),
                         torch.autograd.grad((expected * weights).sum(), params)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-8, atol=1e-10)
    if training:
        _assert_statistics(net, statistics)
    else:
        for name, buffer in net.named_buffers():
            assert torch.equal(buffer, before[name])


def test_rac_flat_channels_use_the_running_statistics():
    # Identical samples agree on every channel at every step: each step then
    # uses its running statistics, as eval mode does, and keeps them; without
    # this rule the gain weight / sqrt(eps) per step overflows the gradients.
    net = DeepRACNetwork(30, 3, (32, 32), 2, generator=torch.Generator().manual_seed(0))
    features = _fourier_features((1, 30)).expand(20, -1, -1)
    before = {name: b.clone() for name, b in net.named_buffers()}
    scores = net.train()(features)
    torch.testing.assert_close(scores, net.eval()(features))
    for name, buffer in net.named_buffers():
        assert torch.equal(buffer, before[name])
    net.train()
    labels = torch.arange(20) % 2
    loss = torch.nn.functional.cross_entropy(net(features), labels)
    grads = torch.autograd.grad(loss, list(net.parameters()))
    assert all(torch.isfinite(g).all() for g in grads)
    # A batch of one sample: every channel is flat.
    torch.testing.assert_close(net.train()(features[:1]), net.eval()(features[:1]))


def test_rac_flat_and_ordinary_channels_mix_as_the_reference():
    # The first input row reads only the constant channel: at step 1, where
    # h_0 is the same for every sample, that channel is flat; the others and
    # the later steps are not.
    net = _random_rac(4, 3, (3, 2)).train()
    with torch.no_grad():
        net.input_weights[0][0, 1:] = 0.0
    features = _fourier_features((5, 4), seed=4).double()
    expected, statistics = _reference_rac(net, features, training=True)
    scores = net(features)
    torch.testing.assert_close(scores, expected, rtol=1e-10, atol=1e-12)
    params = list(net.parameters())
    for got, want in zip(torch.autograd.grad(scores.sum(), params),
                         torch.autograd.grad(expected.sum(), params)):
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-10)
    _assert_statistics(net, statistics)
    # The flat channel kept its running variance.
    assert net.norms[0].running_var[0, 0] == _random_rac(4, 3, (3, 2)).norms[0].running_var[0, 0]


def test_rac_eval_mode_after_recalibration_repeats_training_mode():
    net = _random_rac(5, 3, (4, 3))
    features = _fourier_features((9, 5), seed=5).double()
    recalibrate_statistics(net, [features])
    evaluated = net(features)
    torch.testing.assert_close(evaluated, net.train()(features), rtol=1e-10, atol=1e-12)


def test_qcnn_eval_mode_after_recalibration_repeats_training_mode():
    from skqcnn.nn import QCNNNetwork

    gen = torch.Generator().manual_seed(0)
    net = QCNNNetwork(np.arange(16), 3, (3, 3, 2, 2), 2, generator=gen).double()
    features = _fourier_features((12, 16), seed=6).double()
    recalibrate_statistics(net, [features])
    evaluated = net(features)
    torch.testing.assert_close(evaluated, net.train()(features), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_2d_layer_matches_a_loop_over_windows(training):
    # A 2-D layer (K = 3, P = 2 on a 5 x 4 map, so pooling clips) written
    # out window by window: factor k at output t is 1 + w z / D with
    # z = (W^(k) x_{t + k - 1} - m_k) / sigma_k (e_0 outside the map), the
    # statistics of the batch (training) or the running ones (eval), where
    # D is the spread of the window-and-pool sums of z over the data divided
    # by FACTOR_SPREAD.
    from skqcnn.nn._convac import FACTOR_SPREAD

    gen = torch.Generator().manual_seed(3)
    net = OverlappingConvACNetwork((5, 4), 3, (2, 2), 3, 2, pooling=2, generator=gen).double()
    norm = net.norms[0]
    with torch.no_grad():
        for p in (norm.running_mean, norm.weight):
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
        for p in (norm.running_var, norm.running_spread):
            p.copy_(torch.rand(p.shape, generator=gen, dtype=p.dtype) + 0.5)
    net.train(training)
    x = _fourier_features((6, 20), seed=4).double().reshape(6, 5, 4, 3).movedim(-1, 1)
    with torch.no_grad():
        # The first of two layers: no top_norm.
        if training:
            h = net._training_layer(x.movedim(0, -1), 0).movedim(-1, 0)
        else:
            # Every factor divided by a scalar whose logarithm is kept.
            rows = net.folded_maps()["rows"][0]
            h, log_scale = eval_layer(pad_map(x, (1, 1)), pad_log_map(torch.zeros_like(x[:, :1]),
                                                                      (1, 1)), rows, 3, 2)
            h = h * torch.exp(log_scale)
    weight = net.conv_weights[0].detach().numpy()
    xs = x.numpy()
    e0 = np.eye(3)[0]
    maps = np.zeros((9, 2, 6, 5, 4))
    for k, (a, b) in enumerate(net.offsets):
        for i in range(5):
            for j in range(4):
                p, q = i + a - 1, j + b - 1
                v = xs[:, :, p, q] if 0 <= p < 5 and 0 <= q < 4 else np.tile(e0, (6, 1))
                maps[k, :, :, i, j] = weight[k] @ v.T
    if training:
        mean = maps.mean(axis=(2, 3, 4))
        var = maps.var(axis=(2, 3, 4))
    else:
        mean, var = norm.running_mean.numpy(), norm.running_var.numpy()
    z = (maps - mean[..., None, None, None]) / np.sqrt(var + norm.eps)[..., None, None, None]
    summed = np.zeros((2, 6, 3, 2))
    for i in range(5):
        for j in range(4):
            summed[:, :, i // 2, j // 2] += z[:, :, :, i, j].sum(axis=0)
    spread = (np.sqrt(summed.reshape(2, -1).var(axis=1, ddof=1) + norm.eps) / FACTOR_SPREAD
              if training else norm.running_spread.numpy())
    gain = norm.weight.detach().numpy() / spread
    factors = 1.0 + gain[None, :, None, None, None] * z
    products = factors.prod(axis=0)
    expected = np.ones((6, 2, 3, 2))
    for i in range(5):
        for j in range(4):
            expected[:, :, i // 2, j // 2] *= products[:, :, i, j].T
    np.testing.assert_allclose(h[:, 1:].numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(h[:, 0].numpy(), 1.0, rtol=1e-12)


@pytest.mark.parametrize("batch", [16, 1])
def test_an_exact_zero_before_the_global_product_keeps_training_finite(batch):
    # A value of top_norm that rounds to exactly 0 made the batch log-scale
    # -inf and the scores NaN (a default 8 x 8 fit met one in 20 epochs).
    # Training (the fused head on 16 samples, the modules on one) and
    # recalibration floor its logarithm; here a whole channel is 0.
    net = OverlappingConvACNetwork((8, 8), 3, (4, 4), 3, 10, pooling=2,
                                   generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        net.top_norm.weight[1] = net.top_norm.bias[1] = 0.0
    features = _fourier_features((batch, 64))
    scores = net.train()(features)
    grads = torch.autograd.grad(scores.square().sum(), list(net.parameters()))
    assert torch.isfinite(scores).all() and all(torch.isfinite(g).all() for g in grads)
    assert torch.isfinite(net.running_log_scale).all()
    net.recalibrate_from_data([features])
    assert torch.isfinite(net.running_log_scale).all()
    assert torch.isfinite(net.readout_norm.running_mean).all()


@pytest.mark.parametrize("zero_channel", [False, True])
def test_training_head_is_the_modules(zero_channel):
    # On batches of two samples or more the training-mode scores after the
    # last layer are one function with a written-out gradient; the modules
    # (top_norm, the global product, the log-scale, readout_norm, readout),
    # which a batch of one still uses, give the same scores, gradients and
    # running statistics. A channel of exact zeros has the floored
    # logarithm's gradient, 0.
    gen = torch.Generator().manual_seed(9)
    net = OverlappingConvACNetwork((6, 5), 3, (3, 4), 3, 4, pooling=2, generator=gen).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        if zero_channel:
            net.top_norm.weight[2] = net.top_norm.bias[2] = 0.0
    modules = copy.deepcopy(net)
    features = _fourier_features((7, 30), seed=10).double().requires_grad_()
    fused = net.train()(features)
    log_abs, sign = modules.train()._pooled_log(features)
    expected = modules.readout(modules.readout_norm(sign * torch.exp(log_abs)))
    torch.testing.assert_close(fused, expected, rtol=1e-12, atol=1e-14)
    upstream = torch.randn(fused.shape, generator=gen, dtype=fused.dtype)
    actual = torch.autograd.grad(fused, [features, *net.parameters()], upstream)
    wanted = torch.autograd.grad(expected, [features, *modules.parameters()], upstream)
    for a, e in zip(actual, wanted):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-12)
    buffers = dict(modules.named_buffers())
    for name, value in net.named_buffers():
        torch.testing.assert_close(value, buffers[name], rtol=1e-12, atol=1e-14)
    for norm, other in ((net.top_norm, modules.top_norm), (net.readout_norm, modules.readout_norm)):
        assert norm.values_per_channel == other.values_per_channel > 1


def test_recalibration_reproduces_training_mode_on_the_whole_data():
    # Training mode on one batch holding all the data normalises every layer
    # with the statistics of that layer's inputs, themselves normalised with
    # the data's statistics: what recalibration sets layer by layer, here
    # from two batches. Averaging per-batch statistics would not.
    import copy

    gen = torch.Generator().manual_seed(5)
    net = OverlappingConvACNetwork((6, 5), 3, (3, 3, 3), 3, 4, pooling=2, generator=gen).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    features = _fourier_features((40, 30), seed=6).double()
    with torch.no_grad():
        expected = copy.deepcopy(net).train()(features)
    recalibrate_statistics(net, [features[:25], features[25:]])
    with torch.no_grad():
        torch.testing.assert_close(net(features), expected, rtol=1e-8, atol=1e-10)


def test_recalibration_does_not_depend_on_the_pieces(monkeypatch):
    # Recalibration splits its batches into pieces of a bounded number of
    # positions times samples, and skips empty ones: the statistics are those
    # of all the data, whatever the batches and the pieces.
    import copy

    import skqcnn.nn._convac as convac_module

    gen = torch.Generator().manual_seed(5)
    net = OverlappingConvACNetwork((6, 5), 3, (3, 3), 3, 4, pooling=2, generator=gen).double()
    features = _fourier_features((40, 30), seed=6).double()
    whole = copy.deepcopy(net)
    whole.recalibrate_from_data([features])
    monkeypatch.setattr(convac_module, "_RECALIBRATION_COLUMNS", 70)  # 2 samples a piece
    net.recalibrate_from_data([features[:25], features[25:25], features[25:]])
    buffers = dict(net.named_buffers())
    for name, expected in whole.named_buffers():
        torch.testing.assert_close(buffers[name], expected, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="batches is empty"):
        net.recalibrate_from_data([features[:0]])


@pytest.mark.parametrize("zero_factor", [False, True])
@pytest.mark.parametrize("pooling", [None, 2])
def test_window_pool_product_gradient_is_autograds(zero_factor, pooling):
    # The training-mode product over the window offsets and the pooling
    # blocks (here clipped: 5 x 3 positions) writes its gradient g H / f over
    # the factors; where a pooled product is 0 it defers to autograd.
    from skqcnn._pooling import pool_product
    from skqcnn.nn._convac import _window_pool_product, _window_pool_product_backward

    gen = torch.Generator().manual_seed(0)
    rows = (torch.rand(9, 3, 4, generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
    columns = torch.rand(9, 4, 15 * 2, generator=gen, dtype=torch.float64) + 0.5
    if zero_factor:
        columns[4, :, 7] = 0.0
    columns.requires_grad_()
    shape = (3, 5, 3, 2)
    plain = pool_product(torch.bmm(rows, columns).prod(dim=0).view(shape), pooling, (1, 2))
    with torch.no_grad():
        factors, fused = _window_pool_product(rows, columns, shape, pooling)
    torch.testing.assert_close(fused, plain, rtol=1e-14, atol=0)
    grad = torch.rand(plain.shape, generator=gen, dtype=torch.float64)
    expected = torch.autograd.grad(plain, (rows, columns), grad)
    for needs_columns in (True, False):
        actual = _window_pool_product_backward(grad, rows.detach(), columns.detach(), factors,
                                               fused, shape, pooling, needs_columns)
        assert (actual[1] is None) == (not needs_columns)
        for a, e in zip(actual[:1 + needs_columns], expected):
            torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-15)
    assert bool((plain == 0).any()) == zero_factor


@pytest.mark.parametrize("image_shape, kernel_size", [((5, 4), 3), ((7,), 4), ((3, 2), 2)])
def test_offset_columns_and_their_gradient(image_shape, kernel_size):
    # Column j of offset k is the input that factor k of output j sees
    # (e_0 outside the map), and the gradient adds the columns back at their
    # shifts: the adjoint of the linear part, <C(x) - C(0), g> = <x, C'(g)>.
    from skqcnn._layout import same_padding
    from skqcnn.nn._convac import _offset_columns, _offset_columns_backward

    net = OverlappingConvACNetwork(image_shape, 3, (2,), kernel_size, 2)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand((3,) + image_shape + (2,), generator=gen, dtype=torch.float64)
    columns = _offset_columns(x, kernel_size)
    left = same_padding(kernel_size)[0]
    for k, offset in enumerate(net.offsets):
        for j, (*position, b) in enumerate(itertools.product(*map(range, image_shape), range(2))):
            source = [p + o - left for p, o in zip(position, offset)]
            inside = all(0 <= s < n for s, n in zip(source, image_shape))
            expected = x[(slice(None),) + tuple(source) + (b,)] if inside else torch.eye(3)[0]
            torch.testing.assert_close(columns[k, :, j], expected.double(), rtol=0, atol=0)
    grad = torch.randn(columns.shape, generator=gen, dtype=torch.float64)
    back = _offset_columns_backward(grad, x.shape, kernel_size)
    assert back.shape == x.shape
    linear = columns - _offset_columns(torch.zeros_like(x), kernel_size)
    torch.testing.assert_close((linear * grad).sum(), (x * back).sum(), rtol=1e-13, atol=0)
    # Every entry: the adjoint against the columns of a one-hot map.
    for i in range(x.numel()):
        one_hot = torch.zeros(x.numel(), dtype=torch.float64)
        one_hot[i] = 1.0
        one_hot = one_hot.view(x.shape)
        moved = _offset_columns(one_hot, kernel_size) - _offset_columns(0 * one_hot, kernel_size)
        torch.testing.assert_close(back.flatten()[i], (moved * grad).sum(), rtol=1e-13,
                                   atol=1e-15)


@pytest.mark.parametrize("blocks, sizes", [((2, 3), (4, 5)), ((3,), (6,)), ((2, 2), (3, 4))])
def test_unpool_gives_every_position_its_block(blocks, sizes):
    # The inverse of pooling's layout, maps (C, *positions, batch): position
    # t holds block t // P, and a clipped last block (5 = 2 * 3 - 1) holds
    # only the positions it pools.
    from skqcnn.nn._convac import _unpool

    h = torch.arange(2 * 3 * math.prod(blocks), dtype=torch.float64).view((2,) + blocks + (3,))
    unpooled = _unpool(h, 2, sizes)
    assert unpooled.shape == (2,) + sizes + (3,)
    for position in itertools.product(*map(range, sizes)):
        block = tuple(t // 2 for t in position)
        assert torch.equal(unpooled[(slice(None),) + position], h[(slice(None),) + block])


def test_column_moments_against_numpy():
    # The mean and biased covariance over the last axis.
    from skqcnn.nn._convac import _column_moments

    gen = torch.Generator().manual_seed(2)
    columns = torch.rand(4, 3, 11, generator=gen, dtype=torch.float64) + 0.5
    mean, cov = _column_moments(columns)
    for k in range(4):
        values = columns[k].numpy()
        np.testing.assert_allclose(mean[k].numpy(), values.mean(axis=1), rtol=1e-14)
        np.testing.assert_allclose(cov[k].numpy(), np.cov(values, bias=True),
                                   rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("constant_map, one_column", [(False, False), (True, False),
                                                      (False, True)])
def test_batch_folded_rows_and_their_gradient_are_autograds(constant_map, one_column):
    # The training-mode maps with the batch statistics folded in, and their
    # written-out gradient in the weights, the gains and the columns, against
    # autograd through the statistics written plainly (the divisor, a batch
    # statistic without a gradient, from the same running state). A factor map
    # constant over the batch (zero variance, clipped by round-off) has the
    # gradient of autograd's clip. One column (a one-position map, one
    # sample) takes the running statistics, as in eval mode.
    from skqcnn.nn._convac import (_batch_folded_rows, _batch_folded_rows_backward,
                                   _folded_rows, _offset_columns)

    gen = torch.Generator().manual_seed(7)
    net = OverlappingConvACNetwork((5, 4), 3, (3,), 3, 2, pooling=2, generator=gen).double()
    norm = net.norms[0]
    weight = (torch.randn(9, 3, 3, generator=gen, dtype=torch.float64)).requires_grad_()
    with torch.no_grad():
        norm.weight.copy_(1.0 + 0.3 * torch.randn(3, generator=gen, dtype=torch.float64))
        norm.running_spread.copy_(torch.rand(3, generator=gen, dtype=torch.float64) + 0.5)
        if constant_map:
            weight[:, 1, 1:] = 0.0
    x = net._training_map(_fourier_features((6, 20), seed=8).double())
    columns = _offset_columns(x, 3)
    if one_column:
        columns = columns[..., :1].contiguous()
    columns.requires_grad_()

    def pool(sums):
        return net._pool_blocks(sums, x.shape[1:])

    before = {name: b.clone() for name, b in norm.named_buffers()}
    with torch.no_grad():
        rows, statistics = _batch_folded_rows(weight, norm.weight, columns, norm, pool)
    after = {name: b.clone() for name, b in norm.named_buffers()}
    for name, b in norm.named_buffers():
        b.copy_(before[name])
    if one_column:
        expected = _folded_rows(weight, *norm.affine())
        var = None
    else:
        mean = columns.mean(dim=-1)
        centred = columns - mean.unsqueeze(-1)
        cov = centred @ centred.transpose(1, 2) / columns.shape[-1]
        m = torch.einsum("kcd,kd->kc", weight, mean)
        var = torch.einsum("kcd,kde,kce->kc", weight, cov, weight).clamp(min=0)
        sigma = torch.sqrt(var + norm.eps)
        divisor = norm.batch_divisor(weight / sigma.unsqueeze(-1), columns, mean, pool)
        scale = norm.weight / (divisor * sigma)
        expected = _folded_rows(weight, scale, 1.0 - scale * m)
        assert bool((var == 0).any()) == constant_map
    torch.testing.assert_close(rows, expected, rtol=1e-12, atol=1e-14)
    if one_column:
        running = before
    else:
        count = columns.shape[-1]
        running = {"running_mean": before["running_mean"].lerp(m.detach(), norm.momentum),
                   "running_var": before["running_var"].lerp(var.detach() * count / (count - 1),
                                                             norm.momentum),
                   "running_spread": norm.running_spread}
    for name, value in after.items():
        torch.testing.assert_close(value, running[name], rtol=1e-14, atol=1e-16)
    upstream = torch.randn(rows.shape, generator=gen, dtype=torch.float64)
    inputs = (weight, norm.weight, columns)
    wanted = torch.autograd.grad(expected, inputs, upstream, allow_unused=True)
    actual = _batch_folded_rows_backward(upstream, weight.detach(), columns.detach(),
                                         statistics, needs_columns=True)
    if one_column:
        assert actual[2] is None and wanted[2] is None
    for a, e in zip(actual, wanted):
        if e is not None:
            torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-12)


def test_training_mode_gradient_matches_finite_differences(monkeypatch):
    # The whole training-mode network (columns, moments, the folded batch
    # statistics, the window-and-pool product, top_norm, log-scale, readout)
    # against finite differences in the input features. On the 4 x 4 map the
    # first layer's divisor comes from the batch (5 x 2 x 2 block sums), the
    # second's from its running value (5 sums, fewer than MIN_SPREAD_VALUES).
    # The divisors have no gradient, so the finite differences hold them at
    # their values on the unperturbed batch.
    from skqcnn.nn._convac import _FactorNorm

    divisors = {}
    batch_divisor = _FactorNorm.batch_divisor

    def fixed_divisor(norm, *args):
        if norm not in divisors:
            divisors[norm] = batch_divisor(norm, *args)
        return divisors[norm]

    monkeypatch.setattr(_FactorNorm, "batch_divisor", fixed_divisor)
    gen = torch.Generator().manual_seed(4)
    net = OverlappingConvACNetwork((4, 4), 3, (2, 2), 2, 2, pooling=2, generator=gen).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    features = _fourier_features((5, 16), seed=3).double().requires_grad_()
    net.train()
    assert torch.autograd.gradcheck(net, (features,))
    assert len(divisors) == 2


def test_divisor_has_no_gradient_and_is_the_batch_spread():
    # D = std of the window-and-pool sums of z / FACTOR_SPREAD, against a
    # product over each window's values; it enters the factors as a constant,
    # their gradient flows through their moments only.
    from skqcnn._pooling import pool_sum
    from skqcnn.nn._convac import FACTOR_SPREAD, _batch_folded_rows, _offset_columns

    gen = torch.Generator().manual_seed(5)
    net = OverlappingConvACNetwork((6,), 3, (2,), 3, 2, pooling=2, generator=gen).double()
    features = _fourier_features((7, 6), seed=6).double()
    columns = _offset_columns(net._training_map(features), 3)
    weight, norm = net.conv_weights[0], net.norms[0]

    def pool(sums):
        return pool_sum(sums.view(-1, 6, 7).movedim(-1, 1), 2)

    with torch.no_grad():
        rows, _ = _batch_folded_rows(weight, norm.weight, columns, norm, pool)
        scale = rows[:, 1:, 1] / weight[:, :, 1]
        values = torch.einsum("kcd,kdn->kcn", weight, columns)
        sigma = torch.sqrt(values.var(dim=2, correction=0) + norm.eps)
        z = (values - values.mean(dim=2, keepdim=True)) / sigma.unsqueeze(-1)
        sums = z.sum(dim=0).view(2, 3, 2, 7).sum(dim=2)
        expected = torch.sqrt(sums.flatten(1).var(dim=1) + norm.eps) / FACTOR_SPREAD
        torch.testing.assert_close(norm.weight / (scale * sigma), expected.expand(3, 2),
                                   rtol=1e-12, atol=0)
    divisor = norm.batch_divisor(weight / sigma.unsqueeze(-1), columns, columns.mean(dim=2),
                                 pool)
    assert weight.requires_grad and divisor.grad_fn is None
    torch.testing.assert_close(divisor, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("batch, updated", [(3, False), (8, True)])
def test_divisor_of_a_one_position_map_needs_eight_sums(batch, updated):
    # After pooling 4 x 4 to one position the window-and-pool sums are one per
    # sample: the last, incomplete batch of an epoch (3 digits) gave a divisor
    # 25 times too small, and products of 144 factors overflowed. Fewer than
    # MIN_SPREAD_VALUES sums use the running divisor, with the batch's mean
    # and variance of the factor maps.
    from skqcnn._pooling import pool_sum
    from skqcnn.nn._convac import MIN_SPREAD_VALUES, _batch_folded_rows, _offset_columns

    assert MIN_SPREAD_VALUES == 8
    net = OverlappingConvACNetwork((4, 4), 3, (2,), 3, 2, pooling=4,
                                   generator=torch.Generator().manual_seed(0)).double()
    norm, weight = net.norms[0], net.conv_weights[0]
    norm.running_spread.fill_(7.0)
    x = net._training_map(_fourier_features((batch, 16), seed=1).double())
    columns = _offset_columns(x, 3)
    with torch.no_grad():
        rows, _ = _batch_folded_rows(
            weight, norm.weight, columns, norm,
            lambda sums: pool_sum(sums.view((-1, 4, 4, batch)).movedim(-1, 1), 4))
        scale = rows[:, 1:, 1] / weight[:, :, 1]
        maps = torch.bmm(weight, columns)
    assert bool((norm.running_spread != 7.0).all()) == updated
    if not updated:
        var = maps.var(dim=-1, correction=0)
        torch.testing.assert_close(scale, norm.weight / (7.0 * torch.sqrt(var + norm.eps)))
