"""Monte Carlo Renyi-2 at scale: a 32x32 ConvAC and a T=256 RAC, light cones beside full passes.

The ConvAC is the module ``OverlappingConvACClassifier(channels=("constant", 16))``
builds for a 32x32 image (the defaults before the width rule of
``channels=None``: four layers of 16 channels, kernel 3, pooling 2, Fourier
with one frequency, so ``M = 3``; docs/monte_carlo.rst records it), at its initialisation
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
2. the cost of one Metropolis move of the 128 walkers of the default options
   through the engine's light-cone updater (``ConvACUpdater`` from the
   network's ``folded_maps()``, ``RecurrentUpdater`` from its
   ``folded_layers()``) beside ``FullUpdater``, a full ``log_forward`` pass of
   the network per move, the path of a network without light-cone maps; the
   median of ``--repeats`` interleaved runs of ``--moves`` moves each;
3. the same sampler run on the network as a plain amplitude function (every
   move and swapped pair by full ``log_forward`` passes) with a time cap,
   reported as ``> cap`` when it does not finish.

``--samples``, ``--chains`` and ``--burn-in`` change the first run, to
measure what a converged estimate costs. ``--only readme`` instead fits the
README's ``OverlappingConvACClassifier(random_state=0)`` on the digits and
times its ``entanglement_entropy()`` (ten classes of 2,000 samples, 1,280
walkers), with the per-move comparison at that size.

Run from the repository root with skqcnn importable::

    OMP_NUM_THREADS=1 python benchmarks/bench_monte_carlo.py [--cap 60] [--samples 2000] \
        [--chains 16] [--burn-in N] [--only convac|rac|readme] [--threads 1]
"""

import argparse
import statistics
import time
import warnings

import numpy as np
import torch

from bench_entanglement_nontree import near_uniform_weights

from skqcnn import OverlappingConvACClassifier
from skqcnn.entanglement._convac_maps import ConvACMaps, ConvACUpdater
from skqcnn.entanglement._enumeration import float64_eval_copy
from skqcnn.entanglement._monte_carlo import network_log_amplitudes, renyi2_monte_carlo
from skqcnn.entanglement._sampling import FullUpdater, RecurrentMaps, RecurrentUpdater
from skqcnn.nn._rac import DeepRACNetwork

TARGET_SECONDS = 120.0
# Walkers of one class at the default options: 16 chain pairs of 4 temperatures.
WALKERS = 2 * 16 * 4


class TimeCap(Exception):
    """The full-pass run went past its time cap."""


def capped(evaluate, cap):
    """``evaluate`` that raises ``TimeCap`` once ``cap`` seconds have passed."""
    deadline = time.perf_counter() + cap

    def call(configs):
        if time.perf_counter() > deadline:
            raise TimeCap
        return evaluate(configs)

    return call


def light_cone_updater(network, configs):
    """The engine's light-cone updater of ``network``, as ``renyi2_monte_carlo`` builds it."""
    if hasattr(network, "folded_maps"):
        return ConvACUpdater(ConvACMaps(network.folded_maps()), configs)
    return RecurrentUpdater(RecurrentMaps(float64_eval_copy(network)), configs)


def seconds_per_move(updater, n_sites, local_dim, moves, seed=0):
    """Mean seconds of one proposal and acceptance of every walker of ``updater``."""
    gen = torch.Generator().manual_seed(seed)
    batch = updater.log_amplitudes()[0].shape[0]
    start = time.perf_counter()
    for move in range(moves):
        site = int(torch.randint(n_sites, (), generator=gen))
        updater.propose(site, torch.randint(local_dim, (batch,), generator=gen))
        updater.accept(torch.rand(batch, generator=gen) < 0.5)
    return (time.perf_counter() - start) / moves


def networks():
    """``key: (title, network, n_sites, local_dim, in_a)``."""
    convac = OverlappingConvACClassifier(channels=("constant", 16))._build_module(
        1024, 3, 10, torch.Generator().manual_seed(0))
    rac = near_uniform_weights(DeepRACNetwork(256, 3, (32, 32), 10), 0, spread=0.05)
    block = np.zeros((32, 32), dtype=bool)
    block[14:18, 14:18] = True
    return {
        "convac": (f"32x32 ConvAC (channels {convac.channels}, "
                   f"K={convac.kernel_size}, pooling {convac.pooling}, M=3), 4x4 block",
                   convac, 1024, 3, block.ravel()),
        "rac": ("T=256 RAC (hidden 32, 2 layers, M=3), first 8 steps",
                rac, 256, 3, np.arange(256) < 8),
    }


def readme_convac():
    """The README's ConvAC: ``OverlappingConvACClassifier(random_state=0)`` fitted on
    three quarters of the digits (8x8, ``M = 3``, ten classes)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.25, stratify=y,
                                              random_state=0)
    return OverlappingConvACClassifier(random_state=0).fit(X_train, y_train)


def bench_readme(args):
    """``entanglement_entropy()`` of the README's ConvAC: ten classes, 2,000 samples each."""
    start = time.perf_counter()
    clf = readme_convac()
    print(f"README 8x8 ConvAC (fitted in {time.perf_counter() - start:.0f} s): "
          "entanglement_entropy(), default arguments, ten classes")
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entropy, stderr = clf.entanglement_entropy(return_std=True)
    print(f"  light cones: {time.perf_counter() - start:.1f} s; S_2 = "
          f"{np.array2string(entropy, precision=4)} +- {np.array2string(stderr, precision=2)}")
    for warning in caught:
        print(f"    warning: {warning.message}")
    net = clf.net_.module_.network
    compare_moves(net, net.n_sites, clf.local_dim_, 10 * WALKERS, args.moves, args.moves,
                  args.repeats)


def compare_moves(net, n_sites, local_dim, n_walkers, moves, full_moves, repeats):
    """Prints the time of one move by light cones and by full passes, interleaved."""
    configs = torch.randint(local_dim, (n_walkers, n_sites),
                            generator=torch.Generator().manual_seed(1))
    evaluate = network_log_amplitudes(net, local_dim)
    times = {"light cones": [], "full passes": []}
    for _ in range(repeats):
        times["light cones"].append(seconds_per_move(
            light_cone_updater(net, configs), n_sites, local_dim, moves))
        times["full passes"].append(seconds_per_move(
            FullUpdater(evaluate, configs), n_sites, local_dim, full_moves))
    light, full = (statistics.median(t) for t in times.values())
    print(f"  one move of {n_walkers} walkers: light cones {1e3 * light:.1f} ms, full "
          f"log_forward passes {1e3 * full:.1f} ms (x{full / light:.1f}); medians of "
          f"{repeats} interleaved runs")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=float, default=60.0,
                        help="time cap of the full-pass run, seconds")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--chains", type=int, default=16,
                        help="chain pairs per class of the sampler")
    parser.add_argument("--burn-in", type=int, default=None,
                        help="burn-in moves of the sampler (default: its own)")
    parser.add_argument("--moves", type=int, default=20,
                        help="moves per timing of the per-move comparison")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=("convac", "rac", "readme"),
                        help="one case; readme (not in the default run) times the "
                             "README's ConvAC call")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.only == "readme":
        bench_readme(args)
        return
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
        print(f"  light cones: {seconds:.1f} s ({verdict}, target {TARGET_SECONDS:.0f} s); "
              f"S_2 = {est.entropy[0]:.4g} +- {est.stderr[0]:.2g}, purity "
              f"{est.purity[0]:.4g} +- {est.purity_stderr[0]:.2g}, split R-hat "
              f"{est.r_hat[0]:.3f}, ESS {est.ess[0]:.0f}, acceptance "
              f"{est.acceptance[0]:.2f}, exchanges {np.round(est.exchange_acceptance, 2)}, "
              f"jumps {est.jump_acceptance[0]:.2f}")
        for warning in caught:
            print(f"    warning: {warning.message}")

        compare_moves(net, n_sites, local_dim, WALKERS, args.moves, max(args.moves // 4, 1),
                      args.repeats)

        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                evaluate = capped(network_log_amplitudes(net, local_dim), args.cap)
                est = renyi2_monte_carlo(evaluate, n_sites, local_dim, in_a,
                                         args.samples, classes=[0], random_state=0,
                                         n_chains=args.chains, burn_in=args.burn_in)
            print(f"  full passes: {time.perf_counter() - start:.1f} s; S_2 = "
                  f"{est.entropy[0]:.4g} +- {est.stderr[0]:.2g}")
        except TimeCap:
            print(f"  full passes: > {args.cap:.0f} s (stopped at the cap)")


if __name__ == "__main__":
    main()
