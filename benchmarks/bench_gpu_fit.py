"""Default fits of the three families on load_digits, on the CPU and on CUDA.

Prints, from one run on one machine, on the stratified 75/25 split of
load_digits (8x8 images, random_state=0), for each family with its default
hyperparameters and ``random_state=0``, fitted on each device given:

1. the wall-clock fit time, the first epoch's time (on CUDA it holds the
   start-up: kernel loading, cuDNN and cuBLAS handles; with ``compile=True``
   the compilation), the median time of the later epochs, and the test
   accuracy;
2. each fit's time and median epoch as a ratio to the CPU fit's, where the
   CPU was fitted.

``--compile DEVICE ...`` adds a ``compile=True`` fit on those devices: the
compiler's cost is its first epoch less the eager one's, and it pays off
after that cost over the epoch time it saves. Where compilation fails, the
estimator trains eagerly with a warning, and the row says ``failed``.

The digits are small (1,347 training images, 21 batches of 64 per epoch), so
a default fit on a GPU is bound by the per-batch work of the host (Python,
skorch, kernel launches), not by the device's arithmetic:
``bench_gpu_throughput.py`` measures the steps alone, at larger batches.

Run from the repository root with skqcnn importable::

    python benchmarks/bench_gpu_fit.py [--devices cpu cuda] [--compile cuda] \\
        [--families qcnn convac rac]
"""

import argparse
import statistics
import warnings

import torch

from _digits import digits_split, timed_fit

from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier

FAMILIES = {
    "qcnn": QCNNClassifier,
    "convac": OverlappingConvACClassifier,
    "rac": DeepRACClassifier,
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"],
                        help="devices to fit on, as the estimators' device= takes them")
    parser.add_argument("--compile", nargs="+", default=[], metavar="DEVICE",
                        help="also fit with compile=True on these devices")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if any(d.startswith("cuda") for d in args.devices + args.compile) and \
            not torch.cuda.is_available():
        parser.error("CUDA is not available here: pass --devices cpu")
    return args


def fit_row(cls, device, compile_, seed, split):
    X_train, X_test, y_train, y_test = split
    clf = cls(device=device, compile=compile_, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        seconds = timed_fit(clf, X_train, y_train)
    fallbacks = [w for w in caught if "torch.compile failed" in str(w.message)]
    for warning in fallbacks:
        print(f"  {cls.__name__} on {device}: {warning.message}")
    epochs = list(clf.history_[:, "dur"])
    return dict(seconds=seconds, first=epochs[0], epoch=statistics.median(epochs[1:]),
                n_epochs=len(epochs), accuracy=clf.score(X_test, y_test),
                compiled=compile_ and not fallbacks)


def main():
    args = parse_args()
    split = digits_split()
    for device in args.devices:
        if device.startswith("cuda"):
            print(f"{device}: {torch.cuda.get_device_name(torch.device(device))}")
    print(f"torch {torch.__version__}\n")
    print(f"{'family':<7} {'device':<7} {'compile':<7} {'epochs':>6} {'fit s':>7} "
          f"{'1st epoch':>9} {'epoch':>7} {'accuracy':>8} {'fit/cpu':>7} {'epoch/cpu':>9}")
    for family in args.families:
        runs = [(device, False) for device in args.devices]
        runs += [(device, True) for device in args.compile]
        rows = {}
        for device, compile_ in runs:
            row = rows[device, compile_] = fit_row(FAMILIES[family], device, compile_,
                                                   args.seed, split)
            cpu = rows.get(("cpu", False))
            ratios = (f"{row['seconds'] / cpu['seconds']:>7.2f} {row['epoch'] / cpu['epoch']:>9.2f}"
                      if cpu else f"{'':>7} {'':>9}")
            mode = "failed" if compile_ and not row["compiled"] else str(compile_)
            print(f"{family:<7} {device:<7} {mode:<7} {row['n_epochs']:>6} "
                  f"{row['seconds']:>7.1f} {row['first']:>9.2f} {row['epoch']:>7.3f} "
                  f"{row['accuracy']:>8.4f} {ratios}", flush=True)
        for device, compile_ in runs:
            if compile_ and rows[device, True]["compiled"] and (device, False) in rows:
                eager, compiled = rows[device, False], rows[device, True]
                cost = (compiled["first"] - compiled["epoch"]) - (eager["first"] - eager["epoch"])
                saved = eager["epoch"] - compiled["epoch"]
                print(f"  {family} on {device}: compilation costs {cost:.1f} s and saves "
                      f"{saved:.3f} s per epoch: " + (
                          f"it pays off after {cost / saved:.0f} epochs" if saved > 0 else
                          "it never pays off"))
    print()


if __name__ == "__main__":
    main()
