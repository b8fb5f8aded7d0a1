"""scikit-learn's estimator checks on every skqcnn estimator.

At default parameters, with and without a seed, and with no expected
failures: scores are computed in float64 whatever the training dtype, so a
sample's score does not depend on the batch it is scored in, and the
defaults handle any feature count the checks use (1 to 10). A fast float64
configuration per family runs too.
"""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier

DEFAULTS = [
    QCNNClassifier(),
    QCNNClassifier(random_state=0),
    DeepRACClassifier(),
    DeepRACClassifier(random_state=0),
    OverlappingConvACClassifier(),
    OverlappingConvACClassifier(random_state=0),
]

# A second, fast configuration per family. ConvAC: kernel 2 and no pooling fit
# inputs of 2 features. (Kernel 1 with a global product is symmetric under any
# permutation of the sites and cannot pass check_classifiers_train.)
COMMON = dict(max_epochs=20, lr=0.05, batch_size=32, dtype=np.float64)
FAST = [
    QCNNClassifier(**COMMON),
    OverlappingConvACClassifier(kernel_size=2, pooling=None, **COMMON),
    DeepRACClassifier(hidden_size=4, **COMMON),
]


@pytest.mark.slow
@parametrize_with_checks(DEFAULTS)
def test_sklearn_compatible_at_defaults(estimator, check):
    check(estimator)


@parametrize_with_checks(FAST)
def test_sklearn_compatible(estimator, check):
    check(estimator)
