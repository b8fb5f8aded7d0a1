"""OverlappingConvACClassifier and DeepRACClassifier as estimators.

Their entanglement methods are tested with the q-CNN's in test_entanglement_api.py.
"""

import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier
from skqcnn.exceptions import NotLearningWarning


@pytest.fixture(scope="module")
def tiny_sequences():
    """Sequences of 8 steps; the class says whether the mean is above 0.5.

    A global product of local factors is a sum of local terms in log space,
    so every family can learn this.
    """
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(200, 8))
    y = (X.mean(axis=1) > 0.5).astype(int)
    return X, y


@pytest.fixture(scope="module")
def fitted_convac_1d(tiny_sequences):
    X, y = tiny_sequences
    return OverlappingConvACClassifier(channels=(4, 4), kernel_size=3, pooling=2, lr=0.01,
                                       representation="fourier", n_freq=1, max_epochs=40,
                                       random_state=0, dtype=np.float64).fit(X, y)


@pytest.fixture(scope="module")
def fitted_rac(tiny_sequences):
    X, y = tiny_sequences
    # 200 samples in batches of 64: 40 steps in 10 epochs.
    return DeepRACClassifier(hidden_size=3, n_layers=2, max_epochs=10, batch_size=64,
                             random_state=0, dtype=np.float64).fit(X, y)


def test_convac_learns_and_reports_layout(fitted_convac_1d, tiny_sequences):
    X, y = tiny_sequences
    assert fitted_convac_1d.image_shape_ == (8,)
    assert fitted_convac_1d.channels_ == (4, 4)
    assert fitted_convac_1d.score(X, y) > 0.8


def test_rac_learns_and_reports_layout(fitted_rac, tiny_sequences):
    X, y = tiny_sequences
    assert fitted_rac.sequence_shape_ == (8, 1)
    assert fitted_rac.hidden_sizes_ == (3, 3)
    assert fitted_rac.score(X, y) > 0.8


def test_rac_sequence_shapes(tiny_sequences):
    X, y = tiny_sequences
    X16 = np.hstack([X, X[:, ::-1]])
    flat = DeepRACClassifier(hidden_size=3, sequence_shape=(8, 2), max_epochs=2, random_state=0)
    flat.fit(X16, y)
    assert flat.sequence_shape_ == (8, 2) and flat.local_dim_ == 1 + 2 * 2
    cube = DeepRACClassifier(hidden_size=3, max_epochs=2, random_state=0)
    cube.fit(X16.reshape(-1, 8, 2), y)
    assert cube.sequence_shape_ == (8, 2)
    np.testing.assert_allclose(cube.decision_function(X16.reshape(-1, 8, 2)),
                               flat.decision_function(X16))


def test_convac_2d_blocks_and_persistence(small_digits, tmp_path):
    X, y = small_digits
    clf = OverlappingConvACClassifier(channels=(4,), kernel_size=3, max_epochs=3,
                                      random_state=0).fit(X, y)
    bounds = [clf.schmidt_rank_bound(("block", size)) for size in (1, 2, 3)]
    assert bounds[0] == clf.local_dim_ and bounds == sorted(bounds)
    path = tmp_path / "convac.joblib"
    joblib.dump(clf, path)
    np.testing.assert_array_equal(joblib.load(path).predict(X), clf.predict(X))


def test_grid_search_over_schedules(tiny_sequences):
    X, y = tiny_sequences
    grid = GridSearchCV(
        DeepRACClassifier(max_epochs=2, random_state=0),
        {"hidden_size": [("constant", 2), ("wide_base", 4)]}, cv=2,
    ).fit(X, y)
    assert grid.best_estimator_.hidden_sizes_ in [(2, 2), (4, 2)]


@pytest.mark.parametrize("params, message", [
    (dict(kernel_size=9), "kernel_size=9 is larger than the image"),
    (dict(kernel_size=0), "kernel_size must be None or a positive int"),
    (dict(pooling=-1), "pooling must be None or a positive int"),
    (dict(channels=("nope", 2)), "Unknown channels schedule"),
])
def test_convac_bad_hyperparameters(tiny_sequences, params, message):
    X, y = tiny_sequences
    with pytest.raises(ValueError, match=message):
        OverlappingConvACClassifier(max_epochs=1, **params).fit(X, y)


@pytest.mark.parametrize("params, error, message", [
    (dict(sequence_shape=(3, 3)), ValueError, "needs T \\* F = 9 features but X has 8"),
    (dict(sequence_shape=(0, 8)), ValueError, "an empty sequence has no steps"),
    (dict(sequence_shape=7), TypeError, "sequence_shape must be None or"),
    (dict(n_layers=0), ValueError, "n_layers must be a positive int"),
    (dict(hidden_size=(2, -1)), ValueError, "hidden_size must hold positive ints"),
])
def test_rac_bad_hyperparameters(tiny_sequences, params, error, message):
    X, y = tiny_sequences
    with pytest.raises(error, match=message):
        DeepRACClassifier(max_epochs=1, **params).fit(X, y)


def test_rac_saved_with_per_step_norms_loads_and_resumes(tmp_path):
    # Saved when every step's norm was a module with parameters of its own:
    # the weights, the optimizer state and the recalibration callback's
    # statistics are stacked on loading and resuming.
    import os

    import skqcnn

    data = os.path.join(os.path.dirname(__file__), "data")
    expected = np.load(os.path.join(data, "rac_per_step_norms_expected.npz"))
    old = skqcnn.load(os.path.join(data, "rac_per_step_norms.safetensors"))
    np.testing.assert_allclose(old.amplitudes(expected["X"]), expected["decision"],
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(old.predict(expected["X"]), expected["predict"])
    moments = old.net_.optimizer_.state_dict()["state"]
    assert len(moments) == 11 and moments[6]["exp_avg"].shape == (4, 3)
    old.set_params(warm_start=True, max_epochs=21).fit(expected["X"], expected["y"])
    assert len(old.history_) == 21
    skqcnn.save(old, tmp_path / "again.safetensors")
    again = skqcnn.load(tmp_path / "again.safetensors")
    np.testing.assert_array_equal(again.decision_function(expected["X"]),
                                  old.decision_function(expected["X"]))


@pytest.mark.parametrize("make", [
    lambda: DeepRACClassifier(random_state=0),
    lambda: OverlappingConvACClassifier(random_state=0),
    lambda: __import__("skqcnn").QCNNClassifier(random_state=0),
], ids=["rac", "convac", "qcnn"])
@pytest.mark.parametrize("data", ["constant", "two_samples"])
def test_default_fit_on_constant_inputs_and_two_samples(make, data):
    # Identical samples make every batch variance zero; with 30 steps the
    # RAC's per-step gain weight / sqrt(eps) used to overflow the gradients.
    if data == "constant":
        X, y = np.full((20, 30), 3.0), np.arange(20) % 2
    else:
        X, y = np.random.default_rng(0).uniform(size=(2, 30)), np.array([0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotLearningWarning)
        clf = make().fit(X, y)
    assert np.isfinite(clf.decision_function(X)).all()
    assert set(clf.predict(X)) <= {0, 1}


@pytest.mark.parametrize("dtype, advice", [
    (np.float32, r"lr=1e\+30\), for example to lr=1e\+29, or train in float64 "
                 r"\(dtype=np.float64\), whose range is wider\."),
    (np.float64, r"lr=1e\+30\), for example to lr=1e\+29: training already runs in float64"),
])
def test_non_finite_loss_advice_depends_on_the_dtype(tiny_sequences, dtype, advice):
    X, y = tiny_sequences
    message = r"became non-finite \(nan\) in epoch \d+\. Lower the learning rate \("
    with pytest.raises(ValueError, match=message + advice):
        DeepRACClassifier(hidden_size=3, lr=1e30, optimizer="sgd", max_epochs=2,
                          dtype=dtype, random_state=0).fit(X, y)


def test_convac_cross_entropy_starts_from_a_common_score():
    # Born probabilities of scores near 0 have gradients ~ 1 / alpha: with
    # loss="cross_entropy" the readout starts every class at the score 1.
    import torch

    from skqcnn.nn._convac import OverlappingConvACNetwork

    clf = OverlappingConvACClassifier(loss="cross_entropy", random_state=0)
    network = clf._build_module(16, 3, 4, torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(network.readout.weight[:, 0].detach().numpy(), 1.0)
    plain = OverlappingConvACClassifier(random_state=0)._build_module(
        16, 3, 4, torch.Generator().manual_seed(0))
    assert isinstance(plain, OverlappingConvACNetwork)
    fan_in = 1 + network.channels[-1]
    assert np.abs(network.readout.weight[:, 1:].detach().numpy()).max() <= 0.1 / np.sqrt(fan_in)
    assert np.abs(plain.readout.weight[:, 0].detach().numpy()).max() < 1.0


@pytest.mark.slow
def test_convac_cross_entropy_learns_digits(small_digits):
    # Without the common starting score the training accuracy stayed near
    # 0.3 after 20 epochs on the 8 x 8 digits.
    X, y = small_digits
    clf = OverlappingConvACClassifier(loss="cross_entropy", max_epochs=10, random_state=0)
    assert clf.fit(X, y).score(X, y) > 0.8


@pytest.mark.parametrize("loss, lr, expected", [
    ("square", None, 0.02),
    ("cross_entropy", None, 0.001),
    ("cross_entropy", 0.05, 0.05),
])
def test_convac_learning_rate_rule(small_digits, tmp_path, loss, lr, expected):
    # lr=None resolves per loss into lr_, which trains and is saved; the
    # parameter itself stays as given, so clones resolve it again.
    import skqcnn

    X, y = small_digits
    clf = OverlappingConvACClassifier(channels=(2,), loss=loss, lr=lr, max_epochs=1,
                                      random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotLearningWarning)
        clf.fit(X, y)
    assert clf.lr_ == expected and clf.get_params()["lr"] == lr
    assert clf.net_.optimizer_.param_groups[0]["initial_lr"] == expected
    skqcnn.save(clf, tmp_path / "convac.safetensors")
    assert skqcnn.load(tmp_path / "convac.safetensors").lr_ == expected
    assert clone(clf).set_params(loss="square").get_params()["lr"] == lr


@pytest.mark.parametrize("shape, expected", [
    ((8, 8), 13),     # 13 * 256 / 64 = 52: the most epochs
    ((12,), 13),      # fewer sites: not more than the most
    ((16, 16), 13),   # 13 * 256 / 256
    ((16, 18), 12),   # 13 * 256 / 288 = 11.6
    ((32, 32), 10),   # 3.25 in proportion: the fewest
])
def test_convac_epoch_rule(shape, expected):
    # max_epochs=None trains for the rule's epochs, under the cosine schedule
    # of that length; the parameter stays None, so a clone resolves it again.
    rng = np.random.default_rng(0)
    X = rng.random((12, int(np.prod(shape))))
    y = np.arange(12) % 2
    clf = OverlappingConvACClassifier(image_shape=shape, channels=(2,), batch_size=12,
                                      random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotLearningWarning)
        clf.fit(X, y)
    assert clf.max_epochs_ == expected and clf.get_params()["max_epochs"] is None
    assert len(clf.history_) == expected
    assert dict(clf.net_.callbacks_)["lr_schedule"].T_max == expected
    assert clf.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("shape, n_layers, expected", [
    ((8, 8), None, (16, 64)),        # the depth rule's 2 layers
    ((16, 16), None, (16, 16, 64)),  # and its 3
    ((4, 4), None, (64,)),           # one layer, the last
    ((12,), 3, (16, 16, 64)),        # a given depth
])
def test_convac_width_rule(shape, n_layers, expected):
    # channels=None gives the last layer 64 channels and the others 16; the
    # parameter stays None, so a clone on other inputs resolves it again.
    rng = np.random.default_rng(0)
    X, y = rng.random((12, int(np.prod(shape)))), np.arange(12) % 2
    clf = OverlappingConvACClassifier(image_shape=shape, n_layers=n_layers, max_epochs=1,
                                      batch_size=12, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotLearningWarning)
        clf.fit(X, y)
    assert clf.channels_ == expected == clf.net_.module_.network.channels
    assert clf.get_params()["channels"] is None and clone(clf).channels is None
    assert tuple(clf.net_.module_.network.readout.weight.shape) == (2, 1 + expected[-1])


def test_other_families_keep_their_epochs():
    rng = np.random.default_rng(0)
    X, y = rng.random((12, 4)), np.arange(12) % 2
    for make, expected in [(QCNNClassifier, 40), (DeepRACClassifier, 100)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotLearningWarning)
            clf = make(batch_size=12, random_state=0).fit(X, y)
            given = make(max_epochs=3, batch_size=12).fit(X, y)
        assert clf.max_epochs_ == expected == len(clf.history_)
        assert given.max_epochs_ == 3 == len(given.history_)


def test_warm_start_resolves_the_epochs_again(tmp_path):
    # An interrupted fit resumes with max_epochs=None to the rule's epochs
    # (13 on 16 x 16 images), in memory and after save and load (the file
    # keeps the length of the schedule it trained on, so the resumed one is
    # stretched and its rate is not 0); a lowered max_epochs trains no more,
    # a raised one further.
    import skqcnn

    rng = np.random.default_rng(0)
    X, y = rng.random((24, 256)), np.arange(24) % 2
    clf = OverlappingConvACClassifier(channels=(2,), batch_size=24, max_epochs=2,
                                      warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotLearningWarning)
        clf.fit(X, y)
        # Saved as it will resume: the parameter says None, the file 2 epochs.
        clf.set_params(max_epochs=None)
        skqcnn.save(clf, tmp_path / "convac.safetensors")
        loaded = skqcnn.load(tmp_path / "convac.safetensors")
        assert loaded.max_epochs_ == 2
        for estimator in (clf, loaded):
            before = estimator.decision_function(X)
            estimator.fit(X, y)
            assert estimator.max_epochs_ == 13 == len(estimator.history_)
            assert estimator.net_.max_epochs == 13
            assert not np.allclose(estimator.decision_function(X), before)
        np.testing.assert_allclose(loaded.decision_function(X), clf.decision_function(X),
                                   rtol=1e-5, atol=1e-8)
        clf.set_params(max_epochs=3).fit(X, y)
        assert clf.max_epochs_ == 13 == len(clf.history_)
        clf.set_params(max_epochs=16).fit(X, y)
    assert clf.max_epochs_ == 16 == len(clf.history_)
