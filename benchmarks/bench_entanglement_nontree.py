"""Timings of the entanglement tools for networks with re-used inputs.

Prints figures; it is not a test. Run from the repository root with

    OMP_NUM_THREADS=1 python benchmarks/bench_entanglement_nontree.py

1. Exact entanglement by enumeration: a 1D overlapping ConvAC on N = 20 sites
   with M = 2 (Legendre degree 1), 2**20 amplitudes per class, ten classes,
   von Neumann entropy of the half cut (target: 10 s).
2. Monte Carlo Renyi-2 on a 16 x 16 overlapping ConvAC, M = 2, one class,
   10**4 swap samples with the sampler's default options (target: 60 s), with
   the light-cone updates (the engine's ``ConvACUpdater``) and, for
   comparison, the cost per proposal and walker of full forward passes. The
   walkers are the ``2 * n_chains * n_temperatures`` rows the sampler moves at
   once: ``n_chains`` independent chain pairs, each chain a ladder of
   ``n_temperatures`` tempered walkers.

Each timing is the median of ``REPEATS`` runs on one thread.
"""

import inspect
import statistics
import time

import numpy as np
import torch

from skqcnn.entanglement._convac_maps import ConvACMaps, ConvACUpdater
from skqcnn.entanglement._enumeration import enumerate_amplitudes
from skqcnn.entanglement._monte_carlo import network_log_amplitudes, renyi2_monte_carlo
from skqcnn.entanglement._spectra import entropy_from_spectrum, spectrum_from_amplitudes
from skqcnn.nn._convac import OverlappingConvACNetwork
from skqcnn.nn._layers import local_dimension

REPEATS = 3


def median_time(run, repeats=REPEATS):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def near_uniform_weights(net, seed, spread):
    """Weights ``1 + spread * noise`` with small biases and identity BatchNorms.

    Random Gaussian weights give states dominated by a few configurations,
    where Metropolis barely moves; these keep every factor near 1, so single
    site moves are accepted often.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "norms" in name:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
                continue
            p.copy_(1.0 + spread * torch.randn(p.shape, generator=gen))
            if name != "conv_weights.0":
                # The constant channel is 0 or 1 on one-hot inputs; a unit
                # weight on it would favour all-zero windows exponentially.
                p[..., 0] = spread * torch.randn(p[..., 0].shape, generator=gen)
        for name, buffer in net.named_buffers():
            if "running_mean" in name:
                buffer.zero_()
    return net


def bench_enumeration():
    n_sites, local_dim = 20, local_dimension("legendre", 1)
    net = near_uniform_weights(OverlappingConvACNetwork((n_sites,), local_dim, (4, 4), 3, 10),
                               0, spread=0.3)
    in_a = np.arange(n_sites) < n_sites // 2
    amplitudes = enumerate_amplitudes(net, n_sites, local_dim)

    def spectra():
        return [spectrum_from_amplitudes(psi, in_a, local_dim) for psi in amplitudes]

    enumeration, _ = median_time(lambda: enumerate_amplitudes(net, n_sites, local_dim))
    svd, spectra = median_time(spectra)
    print(f"enumeration: N={n_sites}, M={local_dim}, channels (4, 4), K=3, 10 classes, "
          f"{local_dim**n_sites} amplitudes per class")
    print(f"  amplitudes of all classes: {enumeration:.2f} s; half-cut spectra: "
          f"{svd / len(spectra):.2f} s per class; total for one class "
          f"{enumeration + svd / len(spectra):.2f} s, for ten {enumeration + svd:.2f} s "
          "(target 10 s)")
    print(f"  S_1 of class 0: {entropy_from_spectrum(spectra[0]):.4f} nats")


def bench_monte_carlo():
    shape, local_dim = (16, 16), local_dimension("legendre", 1)
    n_sites = shape[0] * shape[1]
    net = near_uniform_weights(OverlappingConvACNetwork(shape, local_dim, (2, 2), 3, 10), 0,
                               spread=0.05)
    blocks = {"4x4 block": np.pad(np.ones((4, 4), bool), 6),
              "left half": np.arange(n_sites).reshape(shape) % 16 < 8}
    defaults = {name: p.default for name, p in
                inspect.signature(renyi2_monte_carlo).parameters.items()}
    settings = dict(classes=[0])
    print(f"Monte Carlo Renyi-2: {shape[0]}x{shape[1]} ConvAC, M={local_dim}, channels (2, 2), "
          f"K=3, one class, 10**4 samples, default options ({defaults['n_chains']} chain "
          f"pairs of {defaults['n_temperatures']} tempered walkers)")
    for name, in_a in blocks.items():
        seconds, est = median_time(
            lambda in_a=in_a: renyi2_monte_carlo(net, n_sites, local_dim, in_a.ravel(), 10**4,
                                                 random_state=0, **settings))
        print(f"  {name}: {seconds:.1f} s (target 60 s); S_2 = {est.entropy[0]:.4f} "
              f"+- {est.stderr[0]:.4f}, split R-hat {est.r_hat[0]:.3f}, ESS "
              f"{est.ess[0]:.0f}, acceptance {est.acceptance[0]:.2f}")

    # Every walker of the default options: chain pairs times temperatures.
    walkers = 2 * defaults["n_chains"] * defaults["n_temperatures"]
    configs = torch.randint(local_dim, (walkers, n_sites))
    updater = ConvACUpdater(ConvACMaps(net.folded_maps()), configs)

    def local_steps(n=200):
        for i in range(n):
            updater.propose(i % n_sites, torch.randint(local_dim, (walkers,)))
            updater.accept(torch.rand(walkers) < 0.5)

    full = network_log_amplitudes(net, local_dim)

    def full_steps(n=20):
        for _ in range(n):
            full(configs)

    local_seconds, _ = median_time(local_steps)
    full_seconds, _ = median_time(full_steps)
    print(f"  per proposal and walker ({walkers} walkers, i.e. {defaults['n_chains']} chain "
          f"pairs of {defaults['n_temperatures']} temperatures): light-cone update "
          f"{1e6 * local_seconds / (200 * walkers):.1f} us, full forward pass "
          f"{1e6 * full_seconds / (20 * walkers):.1f} us")


def main():
    torch.set_num_threads(1)
    bench_enumeration()
    bench_monte_carlo()


if __name__ == "__main__":
    main()
