"""Cost of tracking entanglement during training, side by side with no tracking.

QCNNClassifier with default hyperparameters on load_digits (stratified 75/25,
random_state=0), fitted without tracking and with each tracking setting below,
interleaved in the same process. Prints the median fit time of each setting,
its median ratio to the untracked fit (the target for left_right and up_down
every epoch is <= 1.05), the tracker's own time per record, and the test
accuracy (tracking must not change training: equal seeds give equal scores).

Run: ``python benchmarks/bench_tracking.py [--repeats 3] [--epochs 40]``.
"""

import argparse

import numpy as np

from _digits import digits_split, timed_fit

from skqcnn import QCNNClassifier

SETTINGS = {
    "none": {},
    "left_right, every epoch": {"track_entanglement": "left_right"},
    "left_right + up_down, every epoch": {"track_entanglement": ["left_right", "up_down"]},
    "left_right + up_down, every 5 epochs": {
        "track_entanglement": ["left_right", "up_down"], "track_every": 5,
    },
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    X_train, X_test, y_train, y_test = digits_split()

    times = {name: [] for name in SETTINGS}
    record_seconds = {name: [] for name in SETTINGS}
    scores = {}
    for _ in range(args.repeats):
        for name, params in SETTINGS.items():
            clf = QCNNClassifier(max_epochs=args.epochs, random_state=0, **params)
            times[name].append(timed_fit(clf, X_train, y_train))
            scores[name] = clf.score(X_test, y_test)
            callbacks = dict(clf.net_.callbacks_)
            if "entanglement_tracker" in callbacks:
                tracker = callbacks["entanglement_tracker"]
                n_records = len({row["epoch"] for row in tracker.history_})
                record_seconds[name].append(tracker.seconds_ / n_records)

    base = np.array(times["none"])
    print(f"{'tracking':<38} {'median fit (s)':>14} {'median ratio':>12} "
          f"{'s per record':>12} {'test acc':>8}")
    for name in SETTINGS:
        ratio = np.median(np.array(times[name]) / base)
        per_record = (f"{np.median(record_seconds[name]):.4f}"
                      if record_seconds[name] else "-")
        print(f"{name:<38} {np.median(times[name]):>14.2f} {ratio:>12.3f} "
              f"{per_record:>12} {scores[name]:>8.4f}")


if __name__ == "__main__":
    main()
