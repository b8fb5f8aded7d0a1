"""Entanglement of trained 1-D ConvACs and q-CNNs of 12 sites, exactly.

load_digits is area-resized to 3 x 4 pixels (:func:`skqcnn.datasets.area_resize`)
and read as a chain of 12 sites; on the stratified 75/25 split with
random_state=0, for each seed:

1. classifiers are fitted: the OverlappingConvACClassifier with default
   hyperparameters (``kernel_size=3``), with ``kernel_size=2`` and with
   ``kernel_size=1`` (no re-use: each site is read once), with the module
   constant ``FACTOR_SPREAD`` of :mod:`skqcnn.nn._convac` set to each value
   of ``--factor-spreads`` during the fit (0.5 is the default), and the
   QCNNClassifier with default hyperparameters and with
   ``symmetric_pooling=True``; an untrained ConvAC network of the default
   architecture is built too (initial weights from a generator seeded with
   the seed, running statistics from the training data);
2. every class state ``Psi_y`` is enumerated (``3 ** 12`` amplitudes,
   :func:`skqcnn.entanglement.enumerate_amplitudes`) and its von Neumann
   entropy S1 across the half cut (sites 0-5 | 6-11) computed from its
   Schmidt spectrum (:func:`~skqcnn.entanglement.spectrum_from_amplitudes`,
   :func:`~skqcnn.entanglement.entropy_from_spectrum`), with the weight of
   the all-constant configuration ``|0...0>``;
3. the same entropy is computed for the *scores on quantised images*: the
   ``3 ** 12`` chains whose pixels take the lowest, the middle and the
   highest value of the training range, through the fitted input map and
   local basis. For a network without re-use (the q-CNN, a ConvAC with
   ``kernel_size=1``) that tensor is ``Psi_y`` in the non-orthonormal local
   basis of the three pixel values' feature vectors; with re-use it is the
   duplicated tree contracted with those vectors on every copy of a site.
   The largest weight of one image in it is printed too.

Prints per seed and model the test accuracy, the mean S1 over classes (in
nats; a product state has 0, ``log 3**6 = 6.59`` is the largest possible),
its maximum over classes, the mean weight of ``|0...0>``, the mean S1 of
the states with their ``|0...0>`` amplitude set to zero (what the scores
carry beyond their constant part), the mean S1 of the scores on quantised
images and the mean over classes of the largest weight of one image there;
then the means over seeds.

Run from the repository root with skqcnn importable::

    OMP_NUM_THREADS=1 python benchmarks/bench_convac_entanglement.py --seeds 3

``--first-seed 1 --seeds 1`` runs seed 1 alone, so that seeds can run as
separate processes.
"""

import argparse
import contextlib
import math

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import skqcnn.nn._convac as convac_module
from skqcnn import OverlappingConvACClassifier, QCNNClassifier
from skqcnn.datasets import area_resize
from skqcnn.entanglement import (
    entropy_from_spectrum,
    enumerate_amplitudes,
    spectrum_from_amplitudes,
)
from skqcnn.entanglement._enumeration import configurations, float64_eval_copy
from skqcnn.nn import OverlappingConvACNetwork, recalibrate_statistics

N_SITES = 12
HALF = np.arange(N_SITES) < N_SITES // 2


def chain_digits():
    X, y = load_digits(return_X_y=True)
    X = area_resize(X.reshape(-1, 8, 8), (3, 4)).reshape(len(X), N_SITES)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


def half_cut_entropy(psi, local_dim):
    return entropy_from_spectrum(spectrum_from_amplitudes(psi, HALF, local_dim))


def evaluate_on_vectors(network, vectors):
    """Scores of every chain whose site ``p`` holds ``vectors[i_p]``, as
    ``(n_classes, len(vectors) ** N_SITES)``, last site fastest."""
    net = float64_eval_copy(network, "cpu")
    size = len(vectors) ** N_SITES
    blocks = []
    with torch.no_grad():
        for start in range(0, size, 2**13):
            configs = configurations(start, min(start + 2**13, size), N_SITES, len(vectors))
            blocks.append(net(vectors[configs]))
    return torch.cat(blocks).T.numpy()


def quantised_vectors(clf):
    """Feature vectors of the lowest, middle and highest pixel value of the
    training range, through the classifier's input map and local basis."""
    raw = clf.input_min_ + np.array([0.0, 0.5, 1.0]) * (clf.input_max_ - clf.input_min_)
    scaled = torch.tensor(clf._scale_inputs(raw[:, None]), dtype=torch.float64)
    return clf.net_.module_.basis(scaled)[:, 0]


def state_summary(network, local_dim, quantised):
    """Mean and max S1 over classes at the half cut, mean weight of |0...0>,
    mean S1 of the states with their |0...0> component removed, and mean S1
    of the scores on quantised images with the mean largest weight of one image."""
    amplitudes = enumerate_amplitudes(network, N_SITES, local_dim)
    entropies = [half_cut_entropy(psi, local_dim) for psi in amplitudes]
    ground = [psi[0] ** 2 / np.sum(psi**2) for psi in amplitudes]
    rest = [half_cut_entropy(np.concatenate(([0.0], psi[1:])), local_dim)
            for psi in amplitudes]
    scores = evaluate_on_vectors(network, quantised)
    images = [half_cut_entropy(psi, len(quantised)) for psi in scores]
    largest = [np.max(psi**2) / np.sum(psi**2) for psi in scores]
    return (float(np.mean(entropies)), float(np.max(entropies)), float(np.mean(ground)),
            float(np.mean(rest)), float(np.mean(images)), float(np.mean(largest)))


@contextlib.contextmanager
def factor_spread(value):
    """Set the module constant FACTOR_SPREAD (read at construction, in
    training and in recalibration) for the duration of a fit."""
    saved = convac_module.FACTOR_SPREAD
    convac_module.FACTOR_SPREAD = value
    try:
        yield
    finally:
        convac_module.FACTOR_SPREAD = saved


def print_row(name, accuracy, summary):
    accuracy = "" if math.isnan(accuracy) else f"{accuracy:.4f}"
    print(f"{name:<48} {accuracy:>9} {summary[0]:>10.3g} {summary[1]:>10.3g} "
          f"{summary[2]:>10.6f} {summary[3]:>9.4f} {summary[4]:>9.4f} {summary[5]:>9.4f}",
          flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--factor-spreads", type=float, nargs="*", default=[1.0, 2.0],
                        help="values of FACTOR_SPREAD for extra default ConvACs")
    args = parser.parse_args()
    X_train, X_test, y_train, y_test = chain_digits()
    print(f"{len(X_train)} train / {len(X_test)} test chains of {N_SITES} sites; "
          f"S1 in nats, at most log(3**6) = {math.log(3**6):.2f}\n")
    print(f"{'model':<48} {'accuracy':>9} {'mean S1':>10} {'max S1':>10} {'w(0...0)':>10} "
          f"{'w/o 0..0':>9} {'images':>9} {'top image':>9}")
    rows = {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        common = dict(image_shape=(N_SITES,), random_state=seed, device="cpu")
        models = [
            ("ConvAC", OverlappingConvACClassifier(**common), 0.5),
            ("ConvAC kernel_size=2", OverlappingConvACClassifier(kernel_size=2, **common), 0.5),
            ("ConvAC kernel_size=1", OverlappingConvACClassifier(kernel_size=1, **common), 0.5),
        ]
        models += [(f"ConvAC FACTOR_SPREAD={s:g}", OverlappingConvACClassifier(**common), s)
                    for s in args.factor_spreads]
        models += [
            ("q-CNN", QCNNClassifier(**common), None),
            ("q-CNN symmetric_pooling=True", QCNNClassifier(symmetric_pooling=True, **common),
             None),
        ]
        for name, clf, spread in models:
            with factor_spread(spread) if spread is not None else contextlib.nullcontext():
                clf.fit(X_train, y_train)
            accuracy = clf.score(X_test, y_test)
            summary = state_summary(clf.net_.module_.network, clf.local_dim_,
                                    quantised_vectors(clf))
            rows.setdefault(name, []).append((accuracy,) + summary)
            print_row(f"{name} (random_state={seed})", accuracy, summary)
        # An untrained network of the default architecture, statistics from data.
        clf = models[0][1]
        untrained = OverlappingConvACNetwork(
            clf.image_shape_, clf.local_dim_, clf.channels_, clf.kernel_size_,
            len(clf.classes_), pooling=clf.pooling,
            generator=torch.Generator().manual_seed(seed)).double()
        features = clf.net_.module_.basis(
            torch.tensor(clf._scale_inputs(X_train), dtype=torch.float64))
        recalibrate_statistics(untrained, [features])
        summary = state_summary(untrained, clf.local_dim_, quantised_vectors(clf))
        rows.setdefault("ConvAC untrained", []).append((float("nan"),) + summary)
        print_row(f"ConvAC untrained (seed {seed})", float("nan"), summary)
    print("\nmeans over seeds:")
    for name, values in rows.items():
        print_row(name, float(np.mean(np.array(values)[:, 0])),
                  np.array(values)[:, 1:].mean(axis=0))


if __name__ == "__main__":
    main()
