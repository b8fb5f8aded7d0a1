"""scikit-learn's estimator checks on every skqcnn estimator."""

import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier

# Few epochs and a higher learning rate keep the ~40 checks fast; the checks'
# accuracy threshold (check_classifiers_train) still holds at these settings.
# float64: in float32, BLAS blocking makes scores depend on the batch they are
# computed in at the 1e-7 level, which the subset and sample-order invariance
# checks (rtol 1e-7) would flag.
# ConvAC: the checks fit on inputs of 2 to 4 features, too small to pool twice
# and narrower than the default 3-wide kernel, hence kernel_size=2 and
# pooling=None; with one feature fit raises the ValueError that
# check_fit2d_1feature accepts. (Kernel 1 with a global product is symmetric
# under any permutation of the sites and cannot pass check_classifiers_train.)
COMMON = dict(max_epochs=20, lr=0.05, batch_size=32, dtype=np.float64)
ESTIMATORS = [
    QCNNClassifier(**COMMON),
    OverlappingConvACClassifier(kernel_size=2, pooling=None, **COMMON),
    DeepRACClassifier(hidden_size=4, **COMMON),
]

# Expected failures, with the reason; empty while every check passes.
EXPECTED_FAILURES = {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILURES)
def test_sklearn_compatible(estimator, check):
    check(estimator)
