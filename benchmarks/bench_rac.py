"""DeepRACClassifier on load_digits sequences: accuracy, fit time, size.

Each 8x8 digit is read as a sequence, on the stratified 75/25 split of
load_digits with random_state=0. Prints, from one run on this machine:

1. DeepRACClassifier with default hyperparameters, whose
   ``sequence_shape=None`` reads 64 features as ``(8, 8)`` (8 steps, one
   image row of 8 pixels per step): test accuracy, fit time (wall clock and
   process CPU time) and parameter count, one line per seed, then the mean
   accuracy and median times over seeds;
2. after each RAC fit, a plain ``torch.nn.GRU`` classifier on the same
   rows-as-steps sequences, with the hidden size whose parameter count is
   closest to the RAC's (``sum(p.numel())`` for both), trained here by a
   small Adam loop with the same seed; then the median over seeds of the
   RAC's fit time over the GRU's fit right after it, and a PASS/FAIL line
   for the target (mean test accuracy >= 0.97 over the seeds, fit time
   <= 2x the GRU's). One warm-up fit of the RAC comes first, which pays for
   the imports;
3. DeepRACClassifier on pixel-by-pixel sequences, ``sequence_shape=(64, 1)``
   (one fit, random_state=0), for information: 64 multiplicative steps are a
   much harder recurrence;
4. with ``--scaling``, the time of one default training epoch (skorch's
   ``dur``) and of a one-epoch fit, on the 1347 training digits read pixel by
   pixel and upsampled to ``T`` = 64, 256 and 1024 steps (8x8, 16x16 and
   32x32 images), for the user guide's table of sequence-length scaling.

Everything trains on the CPU so that fit times compare between machines. On
a shared machine the CPU times are the steadier figures; the ratio uses
them, and the wall-clock ratio is printed beside it.

Run from the repository root with skqcnn importable::

    OMP_NUM_THREADS=1 python benchmarks/bench_rac.py [--seeds 3] [--threads 1] \
        [--skip-gru] [--skip-pixel] [--scaling]
"""

import argparse
import time
import warnings

import numpy as np
import torch

from _digits import digits_split

from skorch.callbacks import Callback

from skqcnn import DeepRACClassifier
from skqcnn.exceptions import NotLearningWarning

TARGET_ACCURACY = 0.97
TARGET_RATIO = 2.0
SCALING_SIDES = (8, 16, 32)


def n_parameters(module):
    """Number of trainable and non-trainable parameters (not buffers)."""
    return sum(p.numel() for p in module.parameters())


class GRUClassifier(torch.nn.Module):
    """GRU over the steps, linear readout of the last hidden state."""

    def __init__(self, n_step_features, hidden_size, n_classes):
        super().__init__()
        self.gru = torch.nn.GRU(n_step_features, hidden_size, batch_first=True)
        self.readout = torch.nn.Linear(hidden_size, n_classes)

    def forward(self, x):
        _, last = self.gru(x)
        return self.readout(last[-1])


def matched_gru(n_step_features, n_classes, target_parameters):
    """The GRU classifier whose parameter count is closest to ``target_parameters``."""
    sizes = range(1, 257)
    best = min(sizes, key=lambda h: abs(
        n_parameters(GRUClassifier(n_step_features, h, n_classes)) - target_parameters
    ))
    return GRUClassifier(n_step_features, best, n_classes)


def fit_gru(model, X, y, epochs=40, batch_size=32, lr=0.01, seed=0):
    """Adam with cross-entropy and a cosine schedule, as the estimators use one."""
    generator = torch.Generator().manual_seed(seed)
    X_t = torch.as_tensor(X, dtype=torch.float32)
    y_t = torch.as_tensor(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(X_t), generator=generator).split(batch_size):
            optimizer.zero_grad()
            loss_fn(model(X_t[batch]), y_t[batch]).backward()
            optimizer.step()
        schedule.step()
    model.eval()
    return model


def gru_accuracy(model, X, y):
    with torch.no_grad():
        predicted = model(torch.as_tensor(X, dtype=torch.float32)).argmax(dim=1)
    return float((predicted.numpy() == y).mean())


def report(name, accuracy, seconds, cpu_seconds, parameters):
    print(f"{name:<46} {accuracy:>9.4f} {seconds:>9.1f} {cpu_seconds:>9.1f} {parameters:>8d}")


def timed(function, *args, **kwargs):
    """``function(*args, **kwargs)``, its wall-clock and its process CPU seconds."""
    start, cpu_start = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start, time.process_time() - cpu_start


def fit_rac(X_train, y_train, X_test, y_test, sequence_shape, seed):
    """Fit a default DeepRACClassifier; return accuracy, seconds, CPU seconds, parameters."""
    clf = DeepRACClassifier(sequence_shape=sequence_shape, random_state=seed, device="cpu")
    _, seconds, cpu_seconds = timed(clf.fit, X_train, y_train)
    assert clf.sequence_shape_ == (sequence_shape or (8, 8)), clf.sequence_shape_
    return clf.score(X_test, y_test), seconds, cpu_seconds, n_parameters(clf.net_.module_)


def upsampled(X, side):
    """8x8 digits as ``side x side`` images (each pixel repeated), flattened."""
    factor = side // 8
    images = X.reshape(-1, 8, 8)
    return np.kron(images, np.ones((1, factor, factor))).reshape(len(X), -1)


def scaling(X_train, y_train):
    """One default epoch at T = 64, 256 and 1024 pixel-by-pixel steps."""
    print(f"\n{'steps T':>8} {'epoch (s)':>10} {'epoch CPU (s)':>14} "
          f"{'1-epoch fit (s)':>16} {'fit CPU (s)':>12}")
    for side in SCALING_SIDES:
        X = upsampled(X_train, side)
        clf = DeepRACClassifier(sequence_shape=(side * side, 1), max_epochs=1, random_state=0,
                                device="cpu")
        clf.set_params(callbacks=[("epoch_cpu", _EpochCPU())])
        with warnings.catch_warnings():
            # One epoch is not meant to learn.
            warnings.simplefilter("ignore", NotLearningWarning)
            _, seconds, cpu_seconds = timed(clf.fit, X, y_train)
        epoch_cpu = dict(clf.net_.callbacks_)["epoch_cpu"].seconds_[0]
        print(f"{side * side:>8d} {clf.history_[0, 'dur']:>10.1f} {epoch_cpu:>14.1f} "
              f"{seconds:>16.1f} {cpu_seconds:>12.1f}")


class _EpochCPU(Callback):
    """Records the process CPU seconds of every epoch in ``seconds_``."""

    def on_train_begin(self, net, **kwargs):
        self.seconds_ = []

    def on_epoch_begin(self, net, **kwargs):
        self.start_ = time.process_time()

    def on_epoch_end(self, net, **kwargs):
        self.seconds_.append(time.process_time() - self.start_)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3,
                        help="random_state values 0..seeds-1 of the (8, 8) RAC fits "
                             "(0: none, nor the GRU)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--gru-epochs", type=int, default=40)
    parser.add_argument("--skip-gru", action="store_true", help="no GRU comparison")
    parser.add_argument("--skip-pixel", action="store_true", help="no (64, 1) fit")
    parser.add_argument("--scaling", action="store_true",
                        help="time one epoch at T = 64, 256 and 1024 steps")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    X_train, X_test, y_train, y_test = digits_split()
    # The GRU sees the same rows-as-steps sequences, scaled to [0, 1] as the
    # estimators scale their inputs, so only the recurrent cell differs.
    scale = X_train.max()
    rows_train = (X_train / scale).reshape(-1, 8, 8)
    rows_test = (X_test / scale).reshape(-1, 8, 8)
    compare = args.seeds and not args.skip_gru
    if args.seeds:
        # One epoch on 64 digits first: the first fit of a process also pays
        # for imports and first calls (torch's optimizers load torch._dynamo).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotLearningWarning)
            DeepRACClassifier(max_epochs=1, random_state=0, device="cpu").fit(
                X_train[:64], y_train[:64])
    print(f"{'model':<46} {'accuracy':>9} {'fit (s)':>9} {'CPU (s)':>9} {'params':>8}")

    scores, times, cpu_times, gru_times, gru_cpu_times = [], [], [], [], []
    for seed in range(args.seeds):
        score, seconds, cpu_seconds, rac_parameters = fit_rac(
            X_train, y_train, X_test, y_test, None, seed)
        scores.append(score)
        times.append(seconds)
        cpu_times.append(cpu_seconds)
        report(f"DeepRAC default (8, 8) random_state={seed}", score, seconds, cpu_seconds,
               rac_parameters)
        if compare:
            # Right after the RAC's fit, so that both see the same machine.
            torch.manual_seed(seed)
            gru = matched_gru(8, 10, rac_parameters)
            _, gru_seconds, gru_cpu = timed(fit_gru, gru, rows_train, y_train,
                                            epochs=args.gru_epochs, seed=seed)
            gru_times.append(gru_seconds)
            gru_cpu_times.append(gru_cpu)
            report(f"GRU (8, 8) hidden_size={gru.gru.hidden_size}, {args.gru_epochs} epochs",
                   gru_accuracy(gru, rows_test, y_test), gru_seconds, gru_cpu,
                   n_parameters(gru))
    if args.seeds:
        mean_score = float(np.mean(scores))
        median_time, median_cpu = float(np.median(times)), float(np.median(cpu_times))
        report("DeepRAC default (8, 8) mean acc., median times", mean_score, median_time,
               median_cpu, rac_parameters)
    if compare:
        # Each RAC fit against the GRU fit right after it: this VM's speed
        # drifts by more than the gap between the two.
        pairs = np.array(cpu_times) / np.array(gru_cpu_times)
        ratio = float(np.median(pairs))
        wall_ratio = float(np.median(np.array(times) / np.array(gru_times)))
        passed = mean_score >= TARGET_ACCURACY and ratio <= TARGET_RATIO
        print(f"\nDeepRAC rows as steps (8, 8): test accuracy {mean_score:.4f} (std "
              f"{np.std(scores):.4f} over {args.seeds} seeds); fit time {ratio:.2f}x the "
              f"GRU's in CPU time, median of {len(pairs)} pairs ({pairs.min():.2f} to "
              f"{pairs.max():.2f}; {wall_ratio:.2f}x wall clock); target >= "
              f"{TARGET_ACCURACY} at <= {TARGET_RATIO:.0f}x: {'PASS' if passed else 'FAIL'}")
    if not args.skip_pixel:
        pixel_score, pixel_seconds, pixel_cpu, pixel_parameters = fit_rac(
            X_train, y_train, X_test, y_test, (64, 1), 0
        )
        report("DeepRAC (64, 1) random_state=0", pixel_score, pixel_seconds, pixel_cpu,
               pixel_parameters)
    if args.scaling:
        scaling(X_train, y_train)


if __name__ == "__main__":
    main()
