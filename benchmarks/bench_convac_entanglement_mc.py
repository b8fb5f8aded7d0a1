"""Renyi-2 entropies of trained 16 x 16 ConvACs and q-CNNs, by Monte Carlo.

On load_digits upsampled bilinearly to 16 x 16 (as ``bench_convac.py --size
16``; the stratified 75/25 split with random_state=0), for each seed the
OverlappingConvACClassifier and the QCNNClassifier are fitted with default
hyperparameters, and the Renyi-2 entropy of every class state across the
``"up_down"`` cut (rows 0-7 against rows 8-15) is computed:

- for the ConvAC by Monte Carlo (``method="monte_carlo"``, the swap
  estimator; 256 sites are far beyond enumeration), with its standard error;
- for the q-CNN exactly (the replica trick on its tree) and by the same
  Monte Carlo, so that the estimator is seen against the exact value on a
  state of the same size.

Prints per model the test accuracy, per class the entropy (in nats; at most
``128 log 3 = 140.6``) and its standard error, the seconds each method took,
and the warnings the Monte Carlo chains raised
(:class:`~skqcnn.exceptions.MonteCarloConvergenceWarning`).

Run from the repository root with skqcnn importable::

    OMP_NUM_THREADS=1 python benchmarks/bench_convac_entanglement_mc.py [--seeds 1] \\
        [--n-samples 2000]
"""

import argparse
import time
import warnings

import numpy as np
import torch

from _digits import digits_split
from bench_convac import upsample

from skqcnn import OverlappingConvACClassifier, QCNNClassifier


def entropies(clf, method, n_samples, seed):
    """S2 per class at ``"up_down"``, standard errors, CPU seconds and warnings."""
    start = time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values, errors = clf.entanglement_entropy("up_down", alpha=2, method=method,
                                                  n_samples=n_samples, random_state=seed,
                                                  return_std=True)
    return values, errors, time.process_time() - start, [str(w.message) for w in caught]


def report(name, method, result):
    values, errors, seconds, caught = result
    print(f"  {name} S2 ({method}, {seconds:.1f} s of CPU time): mean over classes "
          f"{values.mean():.4g}, largest {np.abs(values).max():.4g}")
    print("    per class: " + ", ".join(f"{v:.4g} +- {e:.2g}" for v, e in zip(values, errors)))
    for message in caught:
        print(f"    warning: {message}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--n-samples", type=int, default=2000,
                        help="Monte Carlo swap samples per class")
    args = parser.parse_args()
    torch.set_num_threads(1)

    X_train, X_test, y_train, y_test = digits_split()
    X_train, X_test = upsample(X_train, 16), upsample(X_test, 16)
    for seed in range(args.seeds):
        print(f"seed {seed}")
        for name, clf in (("ConvAC", OverlappingConvACClassifier(random_state=seed,
                                                                 device="cpu")),
                          ("q-CNN", QCNNClassifier(random_state=seed, device="cpu"))):
            clf.fit(X_train, y_train)
            print(f"  {name} test accuracy {clf.score(X_test, y_test):.4f}")
            methods = ["monte_carlo"] if name == "ConvAC" else ["exact", "monte_carlo"]
            for method in methods:
                report(name, method, entropies(clf, method, args.n_samples, seed))


if __name__ == "__main__":
    main()
