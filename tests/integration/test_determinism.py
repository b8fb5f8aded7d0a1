"""Fits are reproducible whatever runs beside them: threads, joblib, Dask.

Every random draw of a fit (initial weights, shuffling, validation split)
comes from generators of the fit's own, seeded by ``random_state``; nothing
reads or advances torch's global generator. Fits running at once in threads
therefore give the same bits as the same fits run one after the other.
"""

import inspect
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier

CONVAC_DRAWS_FROM_GENERATOR = "generator" in inspect.signature(
    OverlappingConvACClassifier._build_module).parameters

# Default widths: initialisation takes long enough for concurrent fits to overlap in it.
FAMILIES = {
    "qcnn": QCNNClassifier,
    "rac": DeepRACClassifier,
    "convac": OverlappingConvACClassifier,
}
PARAMS = [
    pytest.param("qcnn"),
    pytest.param("rac"),
    pytest.param("convac", marks=pytest.mark.skipif(
        not CONVAC_DRAWS_FROM_GENERATOR,
        reason="the ConvAC network takes no generator before the ConvAC rewrite")),
]
# Early stopping: the validation split and the restored epoch must repeat too.
SETTINGS = dict(max_epochs=2, batch_size=16, early_stopping=True, n_iter_no_change=1)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(n_class=3, return_X_y=True)
    return X[:96], y[:96]


def fit_outputs(make, seed, X, y):
    clf = make(random_state=seed, **SETTINGS).fit(X, y)
    return clf.predict_proba(X), {k: v.clone() for k, v in clf.net_.module_.state_dict().items()}


@pytest.mark.parametrize("family", PARAMS)
def test_fits_in_threads_repeat_serial_fits(family, digits):
    X, y = digits
    make = FAMILIES[family]
    seeds = [0, 1, 2, 3, 0, 1, 2, 3]
    serial = [fit_outputs(make, seed, X, y) for seed in seeds]
    interval = sys.getswitchinterval()
    stop = threading.Event()

    def reseed_global_generator():
        # Another user of torch's global generator: it must not reach the fits.
        while not stop.is_set():
            torch.manual_seed(12345)
            torch.rand(16)

    neighbour = threading.Thread(target=reseed_global_generator)
    # Frequent thread switches interleave the fits finely, so that any state
    # they shared (a generator, a thread count) would show in the results.
    sys.setswitchinterval(1e-5)
    neighbour.start()
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            threaded = list(pool.map(lambda seed: fit_outputs(make, seed, X, y), seeds))
    finally:
        stop.set()
        neighbour.join()
        sys.setswitchinterval(interval)
    for (proba, state), (expected_proba, expected_state) in zip(threaded, serial):
        np.testing.assert_array_equal(proba, expected_proba)
        assert state.keys() == expected_state.keys()
        for name in state:
            assert torch.equal(state[name], expected_state[name]), name
    # Different seeds do give different fits: the comparison can fail.
    assert not np.array_equal(serial[0][0], serial[1][0])


def test_fit_leaves_thread_count_alone(digits):
    X, y = digits
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        QCNNClassifier(random_state=0, **SETTINGS).fit(X, y).predict(X)
        assert torch.get_num_threads() == threads + 1
    finally:
        torch.set_num_threads(threads)


def cv_table(search):
    results = pd.DataFrame(search.cv_results_)
    return results.drop(columns=[c for c in results if c.endswith("_time")])


@pytest.mark.parametrize("family", PARAMS)
def test_grid_search_with_threads_repeats_sequential(family, digits):
    X, y = digits
    search = GridSearchCV(FAMILIES[family](random_state=0, **SETTINGS),
                          {"lr": [0.01, 0.05]}, cv=3, scoring="neg_log_loss")
    with joblib.parallel_backend("sequential"):
        expected = cv_table(search.fit(X, y))
    with joblib.parallel_backend("threading", n_jobs=4):
        threaded = cv_table(search.fit(X, y))
    pd.testing.assert_frame_equal(threaded, expected, check_exact=True)


def test_dask_threads_repeat_sequential(digits):
    distributed = pytest.importorskip("distributed")
    X, y = digits
    search = GridSearchCV(QCNNClassifier(random_state=0, device="cpu", **SETTINGS),
                          {"lr": [0.01, 0.05], "channels": [2, 3]}, cv=2)
    with joblib.parallel_backend("sequential"):
        expected = cv_table(search.fit(X, y))
    # One in-process worker whose two threads fit at once (the worker
    # processes of tests/integration/test_distributed.py take seconds to start).
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster), joblib.parallel_backend("dask"):
        on_cluster = cv_table(search.fit(X, y))
    pd.testing.assert_frame_equal(on_cluster, expected, check_exact=True)
