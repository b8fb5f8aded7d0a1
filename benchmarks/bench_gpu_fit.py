"""Default fits of the three families on load_digits, on the CPU and on CUDA.

Prints, from one run on one machine, on the stratified 75/25 split of
load_digits (8x8 images, random_state=0), for each family with its default
hyperparameters and ``random_state=0``, fitted on each device given:

1. the wall-clock fit time, the first epoch's time, the median time of the
   later epochs, and the test accuracy;
2. the fit time and median epoch as ratios to the CPU fit's, where the CPU
   was one of the devices.

Before timing, one short fit on each CUDA device loads its kernels and
creates its library handles, so that the first timed fit does not pay for
them.

``--compile DEVICE ...`` then fits each family with ``compile=False`` and
``compile=True`` on those devices, and prints what compilation costs and
saves per epoch (``_digits.compile_comparison``). Where compilation fails,
the estimator warns and trains eagerly, and the warning is printed.

The digits are small (1,347 training images: 43 batches of 32 an epoch for
the q-CNN and the ConvAC, 11 of 128 for the RAC), so a default fit on a GPU is
bound by the per-batch work of the host (Python, skorch, kernel launches),
not by the device's arithmetic: ``bench_gpu_throughput.py`` measures the
steps alone, at larger batches.

Run from the repository root with skqcnn importable::

    python benchmarks/bench_gpu_fit.py [--devices cpu cuda] [--compile cuda] \\
        [--families qcnn convac rac]
"""

import argparse
import statistics

import torch

from _digits import compile_comparison, digits_split, timed_fit

from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier

FAMILIES = {
    "qcnn": QCNNClassifier,
    "convac": OverlappingConvACClassifier,
    "rac": DeepRACClassifier,
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument("--devices", nargs="*", default=["cpu", "cuda"],
                        help="devices to fit on, as the estimators' device= takes them")
    parser.add_argument("--compile", nargs="+", default=[], metavar="DEVICE",
                        help="also compare compile=False and compile=True on these devices")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if any(d.startswith("cuda") for d in args.devices + args.compile) and \
            not torch.cuda.is_available():
        parser.error("CUDA is not available here: pass --devices cpu")
    return args


def warm_up(device, split):
    """One short fit: CUDA's start-up costs land here, not in a timed fit."""
    X_train, _, y_train, _ = split
    QCNNClassifier(max_epochs=1, device=device, random_state=0).fit(X_train[:64],
                                                                     y_train[:64])


def fit_row(cls, device, seed, split):
    X_train, X_test, y_train, y_test = split
    clf = cls(device=device, random_state=seed)
    seconds = timed_fit(clf, X_train, y_train)
    epochs = list(clf.history_[:, "dur"])
    return dict(seconds=seconds, first=epochs[0], epoch=statistics.median(epochs[1:]),
                n_epochs=len(epochs), accuracy=clf.score(X_test, y_test))


def main():
    args = parse_args()
    split = digits_split()
    for device in dict.fromkeys(args.devices + args.compile):
        if device.startswith("cuda"):
            print(f"{device}: {torch.cuda.get_device_name(torch.device(device))}")
            warm_up(device, split)
    print(f"torch {torch.__version__}\n")
    if args.devices:
        print(f"{'family':<7} {'device':<7} {'epochs':>6} {'fit s':>7} {'1st epoch':>9} "
              f"{'epoch':>7} {'accuracy':>8} {'fit/cpu':>7} {'epoch/cpu':>9}")
    for family in args.families:
        rows = {device: fit_row(FAMILIES[family], device, args.seed, split)
                for device in args.devices}
        cpu = rows.get("cpu")
        for device, row in rows.items():
            ratios = (f"{row['seconds'] / cpu['seconds']:>7.2f} {row['epoch'] / cpu['epoch']:>9.2f}"
                      if cpu else "")
            print(f"{family:<7} {device:<7} {row['n_epochs']:>6} {row['seconds']:>7.1f} "
                  f"{row['first']:>9.2f} {row['epoch']:>7.3f} {row['accuracy']:>8.4f} {ratios}",
                  flush=True)
    for device in args.compile:
        for family in args.families:
            print(f"\n{family} on {device}, compile=False against compile=True:")
            X_train, X_test, y_train, y_test = split
            compile_comparison(
                lambda compile_, cls=FAMILIES[family]: cls(device=device, compile=compile_,
                                                           random_state=args.seed),
                X_train, y_train, X_test, y_test, repeats=1)


if __name__ == "__main__":
    main()
