"""Entanglement of trained 1-D ConvACs and q-CNNs of 12 sites, exactly.

load_digits is area-resized to 3 x 4 pixels (:func:`skqcnn.datasets.area_resize`)
and read as a chain of 12 sites; on the stratified 75/25 split with
random_state=0, for each seed:

1. an OverlappingConvACClassifier with default hyperparameters and an
   untrained copy (the same network before training: ``max_epochs=0`` is not
   allowed, so the initial weights are rebuilt from the same generator) and a
   QCNNClassifier with default hyperparameters are fitted;
2. every class state ``Psi_y`` is enumerated (``3 ** 12`` amplitudes,
   :func:`skqcnn.entanglement.enumerate_amplitudes`) and its von Neumann
   entropy S1 across the half cut (sites 0-5 | 6-11) computed from its
   Schmidt spectrum (:func:`~skqcnn.entanglement.spectrum_from_amplitudes`,
   :func:`~skqcnn.entanglement.entropy_from_spectrum`), with the weight of
   the all-constant configuration ``|0...0>``.

Prints per seed and model the test accuracy, the mean S1 over classes (in
nats; a product state has 0, ``log 3**6 = 6.59`` is the largest possible),
its maximum over classes, and the mean weight of ``|0...0>``.

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

N_SITES = 12
HALF = np.arange(N_SITES) < N_SITES // 2


def chain_digits():
    X, y = load_digits(return_X_y=True)
    X = area_resize(X.reshape(-1, 8, 8), (3, 4)).reshape(len(X), N_SITES)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


def state_summary(network, local_dim):
    """Mean and max S1 over classes at the half cut, mean weight of |0...0>."""
    amplitudes = enumerate_amplitudes(network, N_SITES, local_dim)
    entropies = [entropy_from_spectrum(spectrum_from_amplitudes(psi, HALF, local_dim))
                 for psi in amplitudes]
    ground = [psi[0] ** 2 / np.sum(psi**2) for psi in amplitudes]
    return float(np.mean(entropies)), float(np.max(entropies)), float(np.mean(ground))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    X_train, X_test, y_train, y_test = chain_digits()
    print(f"{len(X_train)} train / {len(X_test)} test chains of {N_SITES} sites; "
          f"S1 in nats, at most log(3**6) = {math.log(3**6):.2f}\n")
    print(f"{'model':<34} {'accuracy':>9} {'mean S1':>10} {'max S1':>10} {'w(0...0)':>10}")
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
                  f"{summary[0]:>10.4f} {summary[1]:>10.4f} {summary[2]:>10.6f}", flush=True)
        # The untrained network: the same initial weights, statistics from data.
        untrained = fitted["ConvAC"]._build_network(
            N_SITES, fitted["ConvAC"].local_dim_, 10,
            torch.Generator().manual_seed(seed)).double()
        features = fitted["ConvAC"].net_.module_.basis(
            torch.tensor(fitted["ConvAC"]._scale_inputs(X_train), dtype=torch.float64))
        from skqcnn.nn import recalibrate_statistics

        recalibrate_statistics(untrained, [features])
        summary = state_summary(untrained, fitted["ConvAC"].local_dim_)
        rows.setdefault("ConvAC untrained", []).append((float("nan"),) + summary)
        print(f"{f'ConvAC untrained (seed {seed})':<34} {'':>9} {summary[0]:>10.4f} "
              f"{summary[1]:>10.4f} {summary[2]:>10.6f}", flush=True)
    print()
    for name, values in rows.items():
        values = np.array(values)
        print(f"{name}: accuracy {np.nanmean(values[:, 0]):.4f}, mean S1 {values[:, 1].mean():.4f} "
              f"(std over seeds {values[:, 1].std():.4f}), w(0...0) {values[:, 3].mean():.6f}")


if __name__ == "__main__":
    main()
