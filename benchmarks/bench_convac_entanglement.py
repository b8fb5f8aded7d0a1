"""Entanglement of trained 1-D ConvACs and q-CNNs of 12 sites, exactly.

load_digits is area-resized to 3 x 4 pixels (:func:`skqcnn.datasets.area_resize`)
and read as a chain of 12 sites; on the stratified 75/25 split with
random_state=0, for each seed:

1. an OverlappingConvACClassifier and a QCNNClassifier with default
   hyperparameters are fitted, and an untrained ConvAC network of the same
   architecture is built (initial weights from a generator seeded with the
   seed, running statistics from the training data);
2. every class state ``Psi_y`` is enumerated (``3 ** 12`` amplitudes,
   :func:`skqcnn.entanglement.enumerate_amplitudes`) and its von Neumann
   entropy S1 across the half cut (sites 0-5 | 6-11) computed from its
   Schmidt spectrum (:func:`~skqcnn.entanglement.spectrum_from_amplitudes`,
   :func:`~skqcnn.entanglement.entropy_from_spectrum`), with the weight of
   the all-constant configuration ``|0...0>``.

Prints per seed and model the test accuracy, the mean S1 over classes (in
nats; a product state has 0, ``log 3**6 = 6.59`` is the largest possible),
its maximum over classes, the mean weight of ``|0...0>``, and the mean S1 of
the states with their ``|0...0>`` amplitude set to zero (what the scores
carry beyond their constant part).

Run from the repository root with skqcnn importable::

    OMP_NUM_THREADS=1 python benchmarks/bench_convac_entanglement.py [--seeds 3]
"""

import argparse
import math

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skqcnn import OverlappingConvACClassifier, QCNNClassifier
from skqcnn.datasets import area_resize
from skqcnn.entanglement import (
    entropy_from_spectrum,
    enumerate_amplitudes,
    spectrum_from_amplitudes,
)
from skqcnn.nn import OverlappingConvACNetwork, recalibrate_statistics

N_SITES = 12
HALF = np.arange(N_SITES) < N_SITES // 2


def chain_digits():
    X, y = load_digits(return_X_y=True)
    X = area_resize(X.reshape(-1, 8, 8), (3, 4)).reshape(len(X), N_SITES)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


def half_cut_entropy(psi, local_dim):
    return entropy_from_spectrum(spectrum_from_amplitudes(psi, HALF, local_dim))


def state_summary(network, local_dim):
    """Mean and max S1 over classes at the half cut, mean weight of |0...0>,
    and mean S1 of the states with their |0...0> component removed."""
    amplitudes = enumerate_amplitudes(network, N_SITES, local_dim)
    entropies = [half_cut_entropy(psi, local_dim) for psi in amplitudes]
    ground = [psi[0] ** 2 / np.sum(psi**2) for psi in amplitudes]
    rest = [half_cut_entropy(np.concatenate(([0.0], psi[1:])), local_dim)
            for psi in amplitudes]
    return (float(np.mean(entropies)), float(np.max(entropies)), float(np.mean(ground)),
            float(np.mean(rest)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    X_train, X_test, y_train, y_test = chain_digits()
    print(f"{len(X_train)} train / {len(X_test)} test chains of {N_SITES} sites; "
          f"S1 in nats, at most log(3**6) = {math.log(3**6):.2f}\n")
    print(f"{'model':<34} {'accuracy':>9} {'mean S1':>10} {'max S1':>10} {'w(0...0)':>10} "
          f"{'S1 w/o 0...0':>13}")
    rows = {}
    for seed in range(args.seeds):
        fitted = {
            "ConvAC": OverlappingConvACClassifier(image_shape=(N_SITES,), random_state=seed,
                                                  device="cpu"),
            "q-CNN": QCNNClassifier(image_shape=(N_SITES,), random_state=seed, device="cpu"),
        }
        for name, clf in fitted.items():
            clf.fit(X_train, y_train)
            accuracy = clf.score(X_test, y_test)
            summary = state_summary(clf.net_.module_.network, clf.local_dim_)
            rows.setdefault(name, []).append((accuracy,) + summary)
            print(f"{name + f' (random_state={seed})':<34} {accuracy:>9.4f} "
                  f"{summary[0]:>10.4g} {summary[1]:>10.4g} {summary[2]:>10.6f} "
                  f"{summary[3]:>13.4f}", flush=True)
        # An untrained network of the same architecture, statistics from data.
        clf = fitted["ConvAC"]
        untrained = OverlappingConvACNetwork(
            clf.image_shape_, clf.local_dim_, clf.channels_, clf.kernel_size_,
            len(clf.classes_), pooling=clf.pooling,
            generator=torch.Generator().manual_seed(seed)).double()
        features = clf.net_.module_.basis(
            torch.tensor(clf._scale_inputs(X_train), dtype=torch.float64))
        recalibrate_statistics(untrained, [features])
        summary = state_summary(untrained, fitted["ConvAC"].local_dim_)
        rows.setdefault("ConvAC untrained", []).append((float("nan"),) + summary)
        print(f"{f'ConvAC untrained (seed {seed})':<34} {'':>9} {summary[0]:>10.4g} "
              f"{summary[1]:>10.4g} {summary[2]:>10.6f} {summary[3]:>13.4f}", flush=True)
    print()
    for name, values in rows.items():
        values = np.array(values)
        accuracy = np.nanmean(values[:, 0]) if np.isfinite(values[:, 0]).any() else np.nan
        print(f"{name}: accuracy {accuracy:.4f}, mean S1 {values[:, 1].mean():.4g} "
              f"(std over seeds {values[:, 1].std():.2g}), w(0...0) {values[:, 3].mean():.6f}, "
              f"S1 without |0...0> {values[:, 4].mean():.4f} (std {values[:, 4].std():.2g})")


if __name__ == "__main__":
    main()
