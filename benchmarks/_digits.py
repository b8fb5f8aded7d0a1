"""What the digits benchmarks share: the split, its header line and timed fits."""

import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def digits_split():
    """load_digits, stratified 75/25, random_state=0; prints one header line.

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarray
    """
    X, y = load_digits(return_X_y=True)
    split = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    print(f"load_digits: {len(split[0])} train / {len(split[1])} test, torch threads "
          f"{torch.get_num_threads()}\n")
    return split


def timed_fit(estimator, X, y):
    """Fit ``estimator`` and return the wall-clock seconds it took."""
    start = time.perf_counter()
    estimator.fit(X, y)
    return time.perf_counter() - start


def compile_comparison(make_estimator, X_train, y_train, X_test, y_test, repeats):
    """Fits eager and compiled, interleaved; prints times and the break-even.

    ``make_estimator(compile_)`` returns the estimator to fit with
    ``compile=compile_``.
    """
    rows = {False: [], True: []}
    for _ in range(repeats):
        for compile_ in (False, True):
            clf = make_estimator(compile_)
            seconds = timed_fit(clf, X_train, y_train)
            epochs = clf.history_[:, "dur"]
            rows[compile_].append((seconds, epochs[0], float(np.median(epochs[1:])),
                                   clf.score(X_test, y_test)))
            print(f"  compile={compile_!s:<5}: fit {seconds:.1f} s, first epoch "
                  f"{epochs[0]:.2f} s, later epochs median {rows[compile_][-1][2]:.3f} s, "
                  f"test accuracy {rows[compile_][-1][3]:.4f}")
    eager_epoch = np.median([r[2] for r in rows[False]])
    compiled_epoch = np.median([r[2] for r in rows[True]])
    eager_first = np.median([r[1] - r[2] for r in rows[False]])
    # The first compiled fit compiles; later fits in the process reuse its code.
    costs = [r[1] - r[2] - eager_first for r in rows[True]]
    saved = eager_epoch - compiled_epoch
    print(f"\ncompile=True on a default fit ({repeats} interleaved runs): fit "
          f"{np.median([r[0] for r in rows[True]]):.1f} s against "
          f"{np.median([r[0] for r in rows[False]]):.1f} s (medians); compilation costs "
          + ", ".join(f"{c:.1f}" for c in costs) + " s in the successive compiled fits, "
          f"and saves {saved:.3f} s per epoch (median {eager_epoch:.3f} -> "
          f"{compiled_epoch:.3f} s): the first compilation "
          + (f"pays off after {costs[0] / saved:.0f} epochs" if saved > 0 else
             "never pays off"))
