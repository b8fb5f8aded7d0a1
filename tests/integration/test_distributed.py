"""Hyperparameter searches on a Dask cluster through joblib's Dask backend.

The cluster is real: a scheduler and two worker processes on loopback. Every
search is run twice, on the cluster and with joblib's sequential backend in
this process, and must give identical cross-validation results.
"""

import contextlib
import os
import re

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier

distributed = pytest.importorskip("distributed")

# CPU training with a fixed seed is deterministic; a GPU's atomics are not, so
# the comparison with the sequential run pins the device.
COMMON = dict(batch_size=8, max_epochs=3, dtype=np.float64, device="cpu", random_state=0)
SCORING = ("accuracy", "neg_log_loss")

FAMILIES = [
    pytest.param(QCNNClassifier(**COMMON),
                 {"channels": [("linear", 2), ("constant", 3)]}, id="qcnn"),
    pytest.param(OverlappingConvACClassifier(**COMMON),
                 {"channels": [("constant", 4), ("wide_base", 8)]}, id="convac"),
    pytest.param(DeepRACClassifier(sequence_shape=(8, 8), **COMMON),
                 {"hidden_size": [("constant", 4), ("wide_tip", 8)]}, id="rac"),
]


@pytest.fixture(scope="module")
def client():
    # The nanny writes the variables it gives its workers (OMP_NUM_THREADS=1,
    # PYTHONHASHSEED, ...) into this process's environment; later tests that
    # start subprocesses must not inherit them.
    environ = dict(os.environ)
    try:
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
            host="127.0.0.1",
        ) as cluster, distributed.Client(cluster) as client:
            yield client
    finally:
        os.environ.clear()
        os.environ.update(environ)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(n_class=3, return_X_y=True)
    return X[:90], y[:90]


@contextlib.contextmanager
def torch_threads(n):
    # Dask's nanny starts workers with one BLAS/OpenMP thread. The refit and the
    # reference fits run here with as many, so that no reduction is split
    # differently (and tiny ops do not spin two OpenMP threads on a busy CPU).
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def fit_on_cluster(client, search, X, y, **backend_params):
    """Fit ``search`` through joblib's Dask backend; return (worker, n_fits) per task."""
    with torch_threads(1), distributed.get_task_stream(client) as stream, \
            joblib.parallel_backend("dask", **backend_params):
        search.fit(X, y)
    # joblib names each Dask task after its batch: "batch_of_<func>_<n>_calls-<uuid>".
    fits = []
    for record in stream.data:
        match = re.search(r"batch_of__fit_and_score_(\d+)_calls", str(record["key"]))
        if match:
            fits.append((record["worker"], int(match.group(1))))
    return fits


def fit_sequentially(search, X, y):
    with torch_threads(1), joblib.parallel_backend("sequential"):
        return search.fit(X, y)


def assert_same_cv_results(got, expected):
    assert got.keys() == expected.keys()
    for key in expected:
        if "time" in key:
            continue
        if key.startswith("param"):
            assert list(got[key]) == list(expected[key]), key
        else:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


@pytest.mark.parametrize("estimator, grid", FAMILIES)
def test_grid_search_on_cluster_matches_sequential(client, digits, estimator, grid):
    X, y = digits
    search = GridSearchCV(estimator, grid, cv=2, scoring=SCORING, refit="neg_log_loss",
                          n_jobs=-1)
    reference = fit_sequentially(clone(search), X, y)
    fits = fit_on_cluster(client, search, X, y)

    # Every cross-validation fit ran as a task on one of the two workers.
    n_candidates = len(next(iter(grid.values())))
    assert {worker for worker, _ in fits} <= set(client.scheduler_info()["workers"])
    assert sum(n for _, n in fits) == n_candidates * 2

    assert_same_cv_results(search.cv_results_, reference.cv_results_)
    # The schedules must actually score differently, or equal results prove little.
    assert np.ptp(search.cv_results_["mean_test_neg_log_loss"]) > 0
    assert search.best_params_ == reference.best_params_

    predicted = search.best_estimator_.predict(X)
    np.testing.assert_array_equal(predicted, reference.best_estimator_.predict(X))
    assert np.mean(predicted == y) > 0.5


def test_random_search_with_scattered_data(client, digits):
    X, y = digits
    search = RandomizedSearchCV(
        QCNNClassifier(**COMMON),
        {"channels": [("linear", 2), ("constant", 3), ("wide_tip", 8)], "lr": [0.003, 0.03]},
        n_iter=2, cv=2, random_state=0, n_jobs=-1,
    )
    reference = fit_sequentially(clone(search), X, y)
    fits = fit_on_cluster(client, search, X, y, scatter=[X, y])

    assert sum(n for _, n in fits) == 2 * 2
    assert_same_cv_results(search.cv_results_, reference.cv_results_)
    assert np.ptp(search.cv_results_["mean_test_score"]) > 0
