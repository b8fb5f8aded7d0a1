"""Monte Carlo Renyi-2 at scale: a 32x32 ConvAC and a T=256 RAC, new sampler beside the old.

The ConvAC is the module ``OverlappingConvACClassifier()`` builds for a 32x32
image at its defaults (channels ("constant", 16), four layers, kernel 3,
pooling 2, Fourier with one frequency, so ``M = 3``), at its initialisation
from ``random_state=0``, in eval mode; ten classes. The RAC has the
``DeepRACClassifier`` defaults (hidden size 32, two layers, Fourier with one
frequency, so ``M = 3``) on 256 steps, ten classes, with near-uniform weights
(``bench_entanglement_nontree.near_uniform_weights``, spread 0.05). One class
is estimated, for a 4x4 block in the middle of the image and for the first 8
steps of the sequence (a half cut has an ``S_2`` far beyond what any swap
estimator resolves). For each network the script prints:

1. the time of ``renyi2_monte_carlo`` with 2,000 samples and default options
   (target: at most 120 s on the 2-core CPU), with the estimate, its standard
   error, split R-hat and effective sample size, and any convergence warning;
2. the time of the sampler this package had before (one ladder-less pair of
   chains per 1/128 of the samples, burn-in ``20 * n_sites`` moves, a sample
   every ``n_sites`` moves, the RAC by full forward passes), run in the same
   process with a time cap and reported as ``> cap`` when it does not finish.

``--samples``, ``--chains`` and ``--burn-in`` change the first run, to
measure what a converged estimate costs.

Run from the repository root with skqcnn importable::

    OMP_NUM_THREADS=1 python benchmarks/bench_monte_carlo.py [--cap 150] [--samples 2000] \
        [--chains 16] [--burn-in N] [--only convac|rac]
"""

import argparse
import math
import time
import warnings

import numpy as np
import torch

from bench_entanglement_nontree import near_uniform_weights

from skqcnn import OverlappingConvACClassifier
from skqcnn.entanglement._enumeration import float64_eval_copy
from skqcnn.entanglement._monte_carlo import network_log_amplitudes, renyi2_monte_carlo
from skqcnn.entanglement._sampling import FullUpdater
from skqcnn.nn._rac import DeepRACNetwork

TARGET_SECONDS = 120.0


class TimeCap(Exception):
    """The old sampler ran past its time cap."""


def old_sampler(network, n_sites, local_dim, in_a, n_samples, cap, seed=0):
    """The previous single-site sampler: 128 chain pairs, burn-in 20 N, thinning N.

    Kept here only for the timing comparison; raises ``TimeCap`` after ``cap``
    seconds. Returns the purity estimate of class 0.
    """
    deadline = time.perf_counter() + cap
    gen = torch.Generator().manual_seed(seed)
    n_chains = 128
    evaluate = network_log_amplitudes(network, local_dim)
    configs = torch.randint(local_dim, (2 * n_chains, n_sites), generator=gen)
    if hasattr(network, "local_updater"):
        updater = float64_eval_copy(network).local_updater(configs)
    else:
        updater = FullUpdater(evaluate, configs)
    log_abs = updater.log_amplitudes()[0][:, 0]
    in_a = torch.as_tensor(in_a)
    order = []

    def step(configs, log_abs):
        if time.perf_counter() > deadline:
            raise TimeCap
        if not order:
            order.extend(torch.randperm(n_sites, generator=gen).tolist())
        site = order.pop()
        values = (configs[:, site] + torch.randint(1, local_dim, (configs.shape[0],),
                                                   generator=gen)) % local_dim
        new_log = updater.propose(site, values)[0][:, 0]
        accept = torch.log(torch.rand(configs.shape[0], generator=gen,
                                      dtype=torch.float64)) < 2 * (new_log - log_abs)
        updater.accept(accept)
        configs = configs.clone()
        configs[:, site] = torch.where(accept, values, configs[:, site])
        return configs, torch.where(accept, new_log, log_abs)

    with torch.no_grad():
        for _ in range(20 * n_sites):
            configs, log_abs = step(configs, log_abs)
        total = 0.0
        per_chain = max(1, math.ceil(n_samples / n_chains))
        for _ in range(per_chain):
            for _ in range(n_sites):
                configs, log_abs = step(configs, log_abs)
            first, second = configs[:n_chains], configs[n_chains:]
            swapped = torch.cat((torch.where(in_a, first, second),
                                 torch.where(in_a, second, first)))
            swap_log, swap_sign = evaluate(swapped)
            exponent = swap_log[:, 0].view(2, -1).sum(0) - log_abs.view(2, -1).sum(0)
            total += float((swap_sign[:, 0].view(2, -1).prod(0) * torch.exp(exponent)).sum())
    return total / (per_chain * n_chains)


def networks():
    """``key: (title, network, n_sites, local_dim, in_a)``."""
    convac = OverlappingConvACClassifier()._build_module(
        1024, 3, 10, torch.Generator().manual_seed(0))
    rac = near_uniform_weights(DeepRACNetwork(256, 3, (32, 32), 10), 0, spread=0.05)
    block = np.zeros((32, 32), dtype=bool)
    block[14:18, 14:18] = True
    return {
        "convac": (f"32x32 ConvAC at defaults (channels {convac.channels}, "
                   f"K={convac.kernel_size}, pooling {convac.pooling}, M=3), 4x4 block",
                   convac, 1024, 3, block.ravel()),
        "rac": ("T=256 RAC (hidden 32, 2 layers, M=3), first 8 steps",
                rac, 256, 3, np.arange(256) < 8),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=float, default=150.0,
                        help="time cap of the old sampler, seconds")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--chains", type=int, default=16,
                        help="chain pairs per class of the new sampler")
    parser.add_argument("--burn-in", type=int, default=None,
                        help="burn-in moves of the new sampler (default: its own)")
    parser.add_argument("--only", choices=("convac", "rac"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for key, (name, net, n_sites, local_dim, in_a) in networks().items():
        if args.only not in (None, key):
            continue
        print(f"{name}: {n_sites} sites, {args.samples} samples, {args.chains} chain "
              "pairs, class 0")
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = renyi2_monte_carlo(net, n_sites, local_dim, in_a, args.samples,
                                     classes=[0], random_state=0, n_chains=args.chains,
                                     burn_in=args.burn_in)
        seconds = time.perf_counter() - start
        verdict = "PASS" if seconds <= TARGET_SECONDS else "FAIL"
        print(f"  new: {seconds:.1f} s ({verdict}, target {TARGET_SECONDS:.0f} s); "
              f"S_2 = {est.entropy[0]:.4f} +- {est.stderr[0]:.4f}, purity "
              f"{est.purity[0]:.4g} +- {est.purity_stderr[0]:.2g}, split R-hat "
              f"{est.r_hat[0]:.3f}, ESS {est.ess[0]:.0f}, acceptance "
              f"{est.acceptance[0]:.2f}, exchanges {np.round(est.exchange_acceptance, 2)}")
        for warning in caught:
            print(f"    warning: {warning.message}")
        start = time.perf_counter()
        try:
            purity = old_sampler(net, n_sites, local_dim, in_a, args.samples, args.cap)
            print(f"  old: {time.perf_counter() - start:.1f} s; purity {purity:.4g}")
        except TimeCap:
            print(f"  old: > {args.cap:.0f} s (stopped at the cap)")


if __name__ == "__main__":
    main()
