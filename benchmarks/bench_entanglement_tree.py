"""Timings of the exact tree-network entanglement engine.

Run from the repository root with skqcnn importable, for example::

    OMP_NUM_THREADS=1 python benchmarks/bench_entanglement_tree.py

Every figure is the median of several runs (``time.perf_counter``). The
targets are the ones set for a 2-core CPU machine. The networks have separate
left and right matrices at every level, as a q-CNN folds into; the entropy
timings with one shared matrix per level follow for comparison. The matrices
are small, so a threaded BLAS only adds overhead, and a lot of it on a loaded
machine.
"""

import time

import numpy as np

from skqcnn.entanglement import (
    TreeNetwork,
    entropy_from_spectrum,
    spectrum_from_amplitudes,
    tree_dense_amplitudes,
    tree_entropies,
    tree_min_cut,
    tree_renyi_entropies,
)

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


if __name__ == "__main__":
    main()
