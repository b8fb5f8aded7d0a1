"""Timings of the exact tree-network entanglement engine.

Run from the repository root with skqcnn importable, for example::

    OMP_NUM_THREADS=1 python benchmarks/bench_entanglement_tree.py [--only up_down]

Every figure is the median of several runs (``time.perf_counter``). The
targets are the ones set for a 2-core CPU machine. The last section runs the
engine as it was at commit 3f3b2b6 (loaded from ``git show`` into a temporary
module, so the repository must be a git checkout) beside the current one,
in the same process, with a time cap on the old code; the "up_down" replica
cases also run the engine of commit 9037a22 (the previous one: opt_einsum
orders, sliced globally, one contraction per class), interleaved with the
current one. ``--only up_down`` runs that section alone. The networks have separate
left and right matrices at every level, as a q-CNN folds into; the entropy
timings with one shared matrix per level follow for comparison. The matrices
are small, so a threaded BLAS only adds overhead, and a lot of it on a loaded
machine.
"""

import argparse
import importlib.util
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from skqcnn._layout import quadtree_leaf_order
from skqcnn._schedules import resolve_channels
from skqcnn.entanglement import (
    TreeNetwork,
    entropy_from_spectrum,
    spectrum_from_amplitudes,
    tree_dense_amplitudes,
    tree_entropies,
    tree_min_cut,
    tree_renyi_entropies,
    tree_schmidt_spectra,
)
from skqcnn.entanglement._tree_entropy import _Bipartition

LOCAL_DIM = 3


def gaussian_network(
    n_levels, width, n_classes, seed=0, local_dim=LOCAL_DIM, fixed=None, pair=True
):
    """Gaussian weights; ``pair`` gives every level a (left, right) pair."""
    rng = np.random.default_rng(seed)
    bond = (local_dim,) + (width,) * n_levels
    sides = (2,) if pair else ()
    matrices = [
        rng.normal(size=sides + (bond[level + 1], bond[level])) / np.sqrt(bond[level])
        for level in range(n_levels)
    ]
    return TreeNetwork(local_dim, matrices, rng.normal(size=(n_classes, width)), fixed)


def median_time(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def named_partitions(n_leaves, seed=0):
    p = np.arange(n_leaves)
    rng = np.random.default_rng(seed)
    return {
        "top split": p < n_leaves // 2,
        "interleaved": p % 2 == 1,
        "checkerboard": ((p & 1) ^ ((p >> 1) & 1)) == 1,
        "random half": rng.random(n_leaves) < 0.5,
        "random 10%": rng.random(n_leaves) < 0.1,
    }


def largest_within(budget, sizes, run):
    """Largest size whose single run stays within ``budget`` seconds."""
    best = None
    for size in sizes:
        try:
            elapsed = median_time(lambda size=size: run(size), 1)
        except ValueError:
            break
        if elapsed > budget:
            break
        best = (size, elapsed)
    return best


def entropy_rows(pair):
    """The von Neumann and Renyi-2 targets for one kind of network."""
    rows = []
    network = gaussian_network(10, 41, n_classes=10, pair=pair)
    top = named_partitions(1024)["top split"]
    rows.append(
        (
            "von Neumann, N=1024, D=41, 10 classes, top split",
            0.050,
            median_time(lambda: tree_entropies(network, top), 20),
        )
    )

    network = gaussian_network(10, 19, n_classes=10, pair=pair)
    for name in ("interleaved", "checkerboard"):
        in_a = named_partitions(1024)[name]
        rows.append(
            (
                f"Renyi-2 replica, N=1024, D=19, 10 classes, {name}",
                2.0,
                median_time(
                    lambda in_a=in_a: tree_renyi_entropies(network, in_a, 2), 5
                ),
            )
        )
    return rows


def print_rows(rows):
    print(f"{'benchmark':<58} {'target':>9} {'median':>10}  result")
    for label, target, measured in rows:
        verdict = "pass" if measured <= target else "FAIL"
        print(f"{label:<58} {target * 1e3:>7.0f}ms {measured * 1e3:>8.1f}ms  {verdict}")


def main():
    print("Separate left and right matrices (the q-CNN's case)")
    rows = entropy_rows(pair=True)

    network = gaussian_network(10, 41, n_classes=10)
    for name, in_a in named_partitions(1024).items():
        rows.append(
            (
                f"min-cut, N=1024, D=41, {name}",
                0.050,
                median_time(lambda in_a=in_a: tree_min_cut(network, in_a), 20),
            )
        )
    print_rows(rows)

    print("\nOne shared matrix per level, for comparison")
    print_rows(entropy_rows(pair=False))

    print("\nExact engine vs dense brute force (M=2, D=8, von Neumann, top split)")
    small = gaussian_network(4, 8, n_classes=1, local_dim=2)
    in_a = np.arange(16) < 8

    def dense(net, mask):
        amplitudes = tree_dense_amplitudes(net)[0]
        spectrum = spectrum_from_amplitudes(amplitudes, mask[~net.fixed_leaves], 2)
        return entropy_from_spectrum(spectrum)

    exact_time = median_time(lambda: tree_entropies(small, in_a), 20)
    dense_time = median_time(lambda: dense(small, in_a), 5)
    print(
        f"  N=16: exact {exact_time * 1e3:.2f} ms, dense {dense_time * 1e3:.2f} ms, "
        f"exact is {dense_time / exact_time:.0f}x faster"
    )

    budget = 3.0

    def exact_at(n_levels):
        net = gaussian_network(n_levels, 8, n_classes=1, local_dim=2)
        tree_entropies(net, np.arange(2**n_levels) < 2 ** (n_levels - 1))

    def dense_at(n_physical):
        # 32 leaves, the last ones padded, so any number of physical sites fits.
        fixed = np.arange(32) >= n_physical
        net = gaussian_network(5, 8, n_classes=1, local_dim=2, fixed=fixed)
        dense(net, np.arange(32) < n_physical // 2)

    size, elapsed = largest_within(budget, range(4, 21), exact_at)
    print(
        f"  exact: N=2**{size} = {2**size} leaves in {elapsed:.2f} s "
        f"(budget {budget} s)"
    )
    size, elapsed = largest_within(budget, range(16, 23), dense_at)
    print(
        f"  dense: {size} physical leaves (2**{size} amplitudes) in {elapsed:.2f} s; "
        "the dense reference stops at 2**22 amplitudes"
    )


OLD_COMMIT = "3f3b2b6"
PREVIOUS_COMMIT = "9037a22"


def old_engine(commit=OLD_COMMIT):
    """The tree entropy module of ``commit``, imported inside the package."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "show", f"{commit}:skqcnn/entanglement/_tree_entropy.py"],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout
    name = f"skqcnn.entanglement._tree_entropy_{commit}"
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, None))
    module.__package__ = "skqcnn.entanglement"
    exec(compile(source, f"{commit}:_tree_entropy.py", "exec"), module.__dict__)
    sys.modules[name] = module
    return module


class _Capped(Exception):
    pass


def capped(function, cap):
    """``(seconds, value)``; ``(None, message)`` past ``cap`` seconds or refused.

    The alarm fires between numpy calls, so a run can overshoot the cap by
    one call (seconds at most here).
    """
    def alarm(signum, frame):
        raise _Capped

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, cap)
    start = time.perf_counter()
    try:
        value = function()
        return time.perf_counter() - start, value
    except _Capped:
        return None, f"> {cap:.0f} s (stopped)"
    except ValueError as error:
        return time.perf_counter() - start, f"refused: {str(error)[:70]}..."
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def qcnn_network(side, width, local_dim=3, n_classes=10, seed=0):
    """Gaussian weights with the bond dimensions of a side x side q-CNN with
    ``channels=("linear", width)`` (channels + 1 for the constant channel)."""
    n_levels = 2 * int(np.log2(side))
    channels = resolve_channels(("linear", width), n_levels)
    rng = np.random.default_rng(seed)
    bond = (local_dim,) + tuple(c + 1 for c in channels)
    matrices = [
        rng.normal(size=(2, bond[level + 1], bond[level])) / np.sqrt(bond[level])
        for level in range(n_levels)
    ]
    return TreeNetwork(local_dim, matrices, rng.normal(size=(n_classes, bond[-1])))


def up_down(side):
    leaves, _ = quadtree_leaf_order((side, side), "left_right")
    return (leaves // side) < side // 2


def mid_size_cut(network, weight=2187):
    """A 16-leaf bipartition whose minimum cut has the given weight."""
    for bits in range(1, 2**16 - 1):
        in_a = (bits >> np.arange(16)) & 1 == 1
        if tree_min_cut(network, in_a)[0] == weight:
            return in_a
    raise RuntimeError(f"no cut of weight {weight}")


def describe(result):
    seconds, value = result
    return value if isinstance(value, str) else f"{seconds:8.2f} s"


def old_versus_new(cap=180.0):
    """Mid-size exact cuts and the up_down replica cases, old beside new."""
    old = old_engine()
    print(f"\nThis engine against the one of commit {OLD_COMMIT} (cap {cap:.0f} s)")
    mid_size(old, cap)
    up_down_cases(old, cap)


def mid_size(old, cap):
    """The 4x4 q-CNN cut of weight 2187, old beside new."""
    network = qcnn_network(4, 4)  # bond dims (3, 9, 13, 17, 21), 10 classes
    in_a = mid_size_cut(network)
    print(f"4x4 q-CNN, M=3, linear-4, 10 classes, cut weight "
          f"{tree_min_cut(network, in_a)[0]}")
    new_s1 = capped(lambda: tree_entropies(network, in_a), cap)
    new_s2 = [capped(lambda: tree_entropies(network, in_a, alpha=2), cap)
              for _ in range(3)]
    new_one = capped(lambda: tree_entropies(network, in_a, classes=[0]), cap)
    old_s1 = capped(lambda: old.tree_entropies(network, in_a), cap)
    old_s2 = capped(lambda: old.tree_entropies(network, in_a, alpha=2), cap)
    print(f"  S1 (all classes): new {describe(new_s1)}")
    print(f"                    old {describe(old_s1)}")
    print(f"  S1 (class 0):     new {describe(new_one)}")
    median = float(np.median([r[0] for r in new_s2]))
    print(f"  S2 (all classes): new {median:8.3f} s (median of 3; replica), "
          f"old {describe(old_s2)}")
    if not isinstance(old_s2[1], str):
        gap = np.max(np.abs(new_s2[0][1] / old_s2[1] - 1))
        print(f"  S2 max relative difference new vs old: {gap:.1e}")


def up_down_cases(old, cap, previous_cap=400.0):
    """Replica S2 of "up_down" on 16x16 q-CNNs: new, previous and old engines.

    New and previous runs alternate; medians are quoted.
    """
    previous = old_engine(PREVIOUS_COMMIT)
    for width, repeats in ((8, 3), (18, 1)):
        network = qcnn_network(16, width)
        in_a = up_down(16)
        print(f"16x16 q-CNN, linear-{width}, bond dims {network.bond_dims}, up_down, "
              f"cut weight {tree_min_cut(network, in_a)[0]}, S2 of 10 classes")
        bipartition = _Bipartition(network, in_a)
        start = time.perf_counter()
        plan = bipartition.replica_plan(2, np.arange(10))
        planning = time.perf_counter() - start
        print(f"  plan: {planning:.2f} s, {plan.flops:.2e} operations, largest "
              f"intermediate {plan.largest:.2e} values")
        runs, previous_runs = [], []
        for _ in range(repeats):
            runs.append(capped(lambda: tree_renyi_entropies(network, in_a, 2), cap))
            previous_runs.append(capped(
                lambda: previous.tree_renyi_entropies(network, in_a, 2), previous_cap))
        for label, results in (("new", runs), (f"previous ({PREVIOUS_COMMIT})",
                                                previous_runs)):
            if all(r[0] is not None and not isinstance(r[1], str) for r in results):
                print(f"  {label} {np.median([r[0] for r in results]):8.2f} s "
                      f"(median of {repeats})")
            else:
                print(f"  {label} {describe(results[0])}")
        if not isinstance(previous_runs[0][1], str) and not isinstance(runs[0][1], str):
            gap = np.max(np.abs(runs[0][1] / previous_runs[0][1] - 1))
            print(f"  max relative difference new vs previous: {gap:.1e}")
        old_run = capped(lambda: old.tree_renyi_entropies(network, in_a, 2), cap)
        print(f"  old {describe(old_run)}")
        if isinstance(old_run[1], str) and old_run[0] is not None:
            # The old memory limit was a guess at its tensors; lifting it 8x
            # shows the old time and values where the memory allows.
            old.MAX_REPLICA_ELEMENTS *= 8
            old_run = capped(lambda: old.tree_renyi_entropies(network, in_a, 2), cap)
            old.MAX_REPLICA_ELEMENTS //= 8
            print(f"  old with its memory limit x8: {describe(old_run)}")
        if not isinstance(old_run[1], str) and not isinstance(runs[0][1], str):
            gap = np.max(np.abs(runs[0][1] / old_run[1] - 1))
            print(f"  max relative difference new vs old: {gap:.1e}")


def spectrum_cost_model():
    """Estimated operations of the spectrum method against measured time."""
    print("\nSpectrum cost model (estimated operations vs seconds, 1 class, median of 3)")
    network = qcnn_network(4, 4)
    by_weight = {}
    for bits in range(1, 2**16 - 1, 97):
        in_a = (bits >> np.arange(16)) & 1 == 1
        by_weight.setdefault(tree_min_cut(network, in_a)[0], in_a)
    for weight in sorted(by_weight):
        if not 100 <= weight <= 2187:
            continue
        in_a = by_weight[weight]
        flops, _, root = _Bipartition(network, in_a).spectrum_cost(1)
        seconds = median_time(
            lambda in_a=in_a: tree_schmidt_spectra(network, in_a, classes=[0]), 3
        )
        print(f"  weight {weight:5d}: root {root[0]:5d} x {root[1]:5d}, "
              f"{flops:.2e} operations, {seconds:7.3f} s, "
              f"{flops / seconds / 1e9:5.2f} Gop/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("up_down",))
    if parser.parse_args().only == "up_down":
        up_down_cases(old_engine(), 180.0)
    else:
        main()
        spectrum_cost_model()
        old_versus_new()
