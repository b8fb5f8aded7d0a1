"""What the digits benchmarks share: the split, its header line and timed fits."""

import time

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
