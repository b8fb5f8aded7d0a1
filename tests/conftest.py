"""Shared fixtures: small data sets and fitted models, built once per session.

Where a new test goes: the folders mirror the package. ``entanglement/`` tests
the engine alone, ``nn/`` the torch modules, ``estimators/`` one estimator's
behaviour (fit, entanglement methods, tracking, persistence), ``datasets/``
and ``plotting/`` those subpackages, ``integration/`` the package from outside
(threads, Dask, the command line, the README and docs, import layering). The
tables that cut across every family stay here at the top: bad inputs,
scikit-learn's estimator checks, properties and stress. File names are unique
across folders, which are not packages.
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

# Two cores: intra-op threads beyond that only add contention.
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def digits_split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


@pytest.fixture(scope="session")
def small_digits():
    """300 digits of 4 classes: enough signal for fast tests."""
    X, y = load_digits(n_class=4, return_X_y=True)
    return X[:300], y[:300]


@pytest.fixture(scope="session")
def fitted_qcnn(small_digits):
    from skqcnn import QCNNClassifier

    X, y = small_digits
    return QCNNClassifier(max_epochs=8, random_state=0, dtype=np.float64).fit(X, y)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for modules of tiny networks.

    A second thread only adds synchronisation, which costs milliseconds per
    op on a busy two-core machine.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
