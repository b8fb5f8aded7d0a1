"""Default layouts for any input: feature counts, image arrays, the RAC's steps."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier
from skqcnn.nn import QCNNNetwork

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = dict(max_epochs=1, batch_size=16, random_state=0)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("n_features", [1, 2, 3, 5, 7, 12, 17])
@pytest.mark.parametrize("cls", [QCNNClassifier, DeepRACClassifier])
def test_any_feature_count_fits_at_default_layout(cls, n_features):
    rng = np.random.default_rng(n_features)
    X = rng.uniform(size=(20, n_features))
    y = np.arange(20) % 2
    proba = cls(**SMALL).fit(X, y).predict_proba(X)
    assert proba.shape == (20, 2) and np.all(np.isfinite(proba))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("n_features, steps", [(64, (8, 8)), (16, (4, 4)), (12, (12, 1)),
                                               (1024, (32, 32))])
def test_rac_default_sequence_shape_rule(n_features, steps):
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(8, n_features))
    clf = DeepRACClassifier(hidden_size=2, n_layers=1, **SMALL).fit(X, np.arange(8) % 2)
    assert clf.sequence_shape_ == steps


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("cls, attribute", [(QCNNClassifier, "image_shape_"),
                                            (DeepRACClassifier, "sequence_shape_")])
def test_image_arrays_equal_flattened_input(cls, attribute):
    X, y = load_digits(n_class=2, return_X_y=True)
    X, y = X[:60, :48], y[:60]  # 6 x 8 images: not square, so the shape must come from X
    images = X.reshape(-1, 6, 8)
    from_images = cls(**SMALL).fit(images, y)
    assert getattr(from_images, attribute) == (6, 8)
    flat = cls(**{"image_shape" if cls is QCNNClassifier else "sequence_shape": (6, 8)},
               **SMALL).fit(X, y)
    np.testing.assert_array_equal(from_images.predict_proba(images), flat.predict_proba(X))
    np.testing.assert_array_equal(from_images.predict_proba(X), flat.predict_proba(X))


def test_qcnn_log_forward_is_the_log_of_forward():
    generator = torch.Generator().manual_seed(0)
    net = QCNNNetwork(list(range(6)) + [-1, -1], 3, (3, 4, 5), 3,
                      generator=generator).double().eval()
    features = torch.rand(5, 6, 3, dtype=torch.float64, generator=generator)
    log_abs, sign = net.log_forward(features)
    scores = net(features)
    torch.testing.assert_close(sign * torch.exp(log_abs), scores, rtol=1e-12, atol=0)
    with pytest.raises(RuntimeError, match="eval mode"):
        net.train().log_forward(features)


def test_networks_draw_only_from_their_generator():
    state = torch.get_rng_state()
    first = QCNNNetwork(range(4), 3, (2, 2), 2, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(99)
    second = QCNNNetwork(range(4), 3, (2, 2), 2, generator=torch.Generator().manual_seed(1))
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)
    torch.set_rng_state(state)


@pytest.mark.parametrize("cls", [QCNNClassifier, OverlappingConvACClassifier,
                                 DeepRACClassifier])
def test_dataframe_fit_warns_of_no_feature_names(cls):
    # The check of the trained scores once validated fit's array again, and
    # scikit-learn warned that it had no feature names.
    pd = pytest.importorskip("pandas")
    X, y = load_digits(return_X_y=True)
    frame = pd.DataFrame(X[:60], columns=[f"px{i}" for i in range(64)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        # One epoch need not learn: NotLearningWarning is a UserWarning too.
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = cls(**SMALL).fit(frame, y[:60])
        clf.predict(frame)
    assert list(clf.feature_names_in_) == list(frame.columns)
