"""OverlappingConvACClassifier on load_digits: accuracy and fit time.

Prints, from one run on this machine, on the stratified 75/25 split of
load_digits with random_state=0:

1. test accuracy and fit time of LogisticRegression and of QCNNClassifier with
   its default hyperparameters (one fit each, random_state=0), as baselines;
2. test accuracy and fit time of OverlappingConvACClassifier with its default
   hyperparameters, one line per seed, then the mean and standard deviation
   over seeds and a PASS/FAIL line for the target (mean test accuracy >= 0.97
   and mean fit time <= 120 s on a 2-core CPU).

The networks train on the CPU (``device="cpu"``) so that the fit times are
comparable between machines with and without a GPU.

Run from the repository root with skqcnn importable::

    OMP_NUM_THREADS=1 python benchmarks/bench_convac.py [--seeds 3] [--threads 1]
"""

import argparse

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from _digits import digits_split, timed_fit

from skqcnn import OverlappingConvACClassifier, QCNNClassifier

TARGET_ACCURACY = 0.97
TARGET_SECONDS = 120.0



def report(name, accuracy, seconds):
    print(f"{name:<44} {accuracy:>14.4f} {seconds:>13.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3,
                        help="random_state values 0..seeds-1 of the ConvAC fits")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    X_train, X_test, y_train, y_test = digits_split()
    print(f"{'model':<44} {'test accuracy':>14} {'fit time (s)':>13}")

    baselines = {
        "LogisticRegression(max_iter=5000)": LogisticRegression(max_iter=5000),
        "QCNNClassifier(random_state=0)": QCNNClassifier(random_state=0, device="cpu"),
    }
    for name, model in baselines.items():
        seconds = timed_fit(model, X_train, y_train)
        report(name, model.score(X_test, y_test), seconds)

    scores, times = [], []
    for seed in range(args.seeds):
        clf = OverlappingConvACClassifier(random_state=seed, device="cpu")
        times.append(timed_fit(clf, X_train, y_train))
        scores.append(clf.score(X_test, y_test))
        report(f"OverlappingConvACClassifier(random_state={seed})", scores[-1], times[-1])
    mean_score, mean_time = float(np.mean(scores)), float(np.mean(times))
    report("OverlappingConvACClassifier mean over seeds", mean_score, mean_time)
    passed = mean_score >= TARGET_ACCURACY and mean_time <= TARGET_SECONDS
    print(f"\n{clf.net_.module_.network.__class__.__name__}: channels {clf.channels_}, "
          f"kernel_size {clf.kernel_size}, pooling {clf.pooling}, "
          f"{sum(p.numel() for p in clf.net_.module_.parameters())} parameters")
    print(f"ConvAC test accuracy {mean_score:.4f} (std {np.std(scores):.4f} over "
          f"{args.seeds} seeds), fit time {mean_time:.1f} s (max {max(times):.1f} s)")
    print(f"target >= {TARGET_ACCURACY} in <= {TARGET_SECONDS:.0f} s: "
          f"{'PASS' if passed else 'FAIL'}")


if __name__ == "__main__":
    main()
