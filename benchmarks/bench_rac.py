"""DeepRACClassifier on load_digits sequences: accuracy, fit time, size.

Each 8x8 digit is read as a sequence, on the stratified 75/25 split of
load_digits with random_state=0. Prints, from one run on this machine:

1. DeepRACClassifier with default hyperparameters, whose
   ``sequence_shape=None`` reads 64 features as ``(8, 8)`` (8 steps, one
   image row of 8 pixels per step): test
   accuracy, fit time and parameter count, one line per seed, then the mean
   over seeds and a PASS/FAIL line for the target (mean test accuracy
   >= 0.95, mean fit time <= 120 s on a 2-core CPU);
2. a plain ``torch.nn.GRU`` classifier on the same rows-as-steps sequences,
   with the hidden size whose parameter count is closest to the RAC's
   (``sum(p.numel())`` for both), trained here by a small Adam loop;
3. DeepRACClassifier on pixel-by-pixel sequences, ``sequence_shape=(64, 1)``
   (one fit, random_state=0), with the same PASS/FAIL line, reported for
   information: 64 multiplicative steps are a much harder recurrence.

Everything trains on the CPU so that fit times compare between machines.

Run from the repository root with skqcnn importable::

    OMP_NUM_THREADS=1 python benchmarks/bench_rac.py [--seeds 3] [--threads 1] \
        [--skip-gru] [--skip-pixel]
"""

import argparse
import time

import numpy as np
import torch

from _digits import digits_split, timed_fit

from skqcnn import DeepRACClassifier

TARGET_ACCURACY = 0.95
TARGET_SECONDS = 120.0


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


def report(name, accuracy, seconds, parameters):
    print(f"{name:<46} {accuracy:>9.4f} {seconds:>9.1f} {parameters:>8d}")


def verdict(accuracy, seconds):
    passed = accuracy >= TARGET_ACCURACY and seconds <= TARGET_SECONDS
    return (f"target >= {TARGET_ACCURACY} in <= {TARGET_SECONDS:.0f} s: "
            f"{'PASS' if passed else 'FAIL'}")


def fit_rac(X_train, y_train, X_test, y_test, sequence_shape, seed):
    """Fit a default DeepRACClassifier; return accuracy, seconds, parameters."""
    clf = DeepRACClassifier(sequence_shape=sequence_shape, random_state=seed, device="cpu")
    seconds = timed_fit(clf, X_train, y_train)
    assert clf.sequence_shape_ == (sequence_shape or (8, 8)), clf.sequence_shape_
    return clf.score(X_test, y_test), seconds, n_parameters(clf.net_.module_)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3,
                        help="random_state values 0..seeds-1 of the (8, 8) RAC fits")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--gru-epochs", type=int, default=40)
    parser.add_argument("--skip-gru", action="store_true", help="no GRU comparison")
    parser.add_argument("--skip-pixel", action="store_true", help="no (64, 1) fit")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    X_train, X_test, y_train, y_test = digits_split()
    print(f"{'model':<46} {'accuracy':>9} {'fit (s)':>9} {'params':>8}")

    scores, times = [], []
    for seed in range(args.seeds):
        score, seconds, rac_parameters = fit_rac(X_train, y_train, X_test, y_test, None, seed)
        scores.append(score)
        times.append(seconds)
        report(f"DeepRAC default (8, 8) random_state={seed}", score, seconds, rac_parameters)
    mean_score, mean_time = float(np.mean(scores)), float(np.mean(times))
    report("DeepRAC default (8, 8) mean over seeds", mean_score, mean_time, rac_parameters)

    # The GRU sees the same rows-as-steps sequences, scaled to [0, 1] as the
    # estimators scale their inputs, so only the recurrent cell differs.
    if not args.skip_gru:
        # The GRU sees the same rows-as-steps sequences, scaled to [0, 1] as the
        # estimators scale their inputs, so only the recurrent cell differs.
        scale = X_train.max()
        rows_train = (X_train / scale).reshape(-1, 8, 8)
        rows_test = (X_test / scale).reshape(-1, 8, 8)
        torch.manual_seed(0)
        gru = matched_gru(8, 10, rac_parameters)
        start = time.perf_counter()
        fit_gru(gru, rows_train, y_train, epochs=args.gru_epochs)
        gru_seconds = time.perf_counter() - start
        report(f"GRU (8, 8) hidden_size={gru.gru.hidden_size}, {args.gru_epochs} epochs",
               gru_accuracy(gru, rows_test, y_test), gru_seconds, n_parameters(gru))

    print(f"\nDeepRAC rows as steps (8, 8): test accuracy {mean_score:.4f} (std "
          f"{np.std(scores):.4f} over {args.seeds} seeds), fit time {mean_time:.1f} s; "
          f"{verdict(mean_score, mean_time)}")
    if not args.skip_pixel:
        pixel_score, pixel_seconds, pixel_parameters = fit_rac(
            X_train, y_train, X_test, y_test, (64, 1), 0
        )
        report("DeepRAC (64, 1) random_state=0", pixel_score, pixel_seconds, pixel_parameters)
        print(f"DeepRAC pixel by pixel (64, 1): test accuracy {pixel_score:.4f}, fit time "
              f"{pixel_seconds:.1f} s; {verdict(pixel_score, pixel_seconds)} (for information)")


if __name__ == "__main__":
    main()
