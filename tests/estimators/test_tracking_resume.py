"""Entanglement tracking during training, extra callbacks, warm-start resume and Accelerate."""

import pickle

import numpy as np
import pytest
import torch
from _callbacks import InterruptAfter
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from skorch.callbacks import Callback

import skqcnn
from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier
from skqcnn.callbacks import EntanglementHistory, EntanglementTracker
from skqcnn.entanglement import (
    TreeNetwork,
    entropy_from_spectrum,
    tree_dense_amplitudes,
)


@pytest.fixture(scope="module")
def eight_pixel_digits(small_digits):
    """Eight informative pixels as a 2 x 4 image: 3**8 amplitudes, dense SVD is cheap."""
    X, y = small_digits
    return X[:, [19, 20, 27, 28, 35, 36, 43, 44]], y


class FoldRecorder(Callback):
    """Keeps the folded network after every epoch, for a brute-force comparison."""

    def initialize(self):
        self.folds_ = {}
        return self

    def on_epoch_end(self, net, **kwargs):
        self.folds_[len(net.history)] = net.module_.network.fold()


def dense_entropies(fold, local_dim, leaf_features, in_a_features, alpha):
    """Renyi entropies of every class by SVD of the dense amplitude tensor."""
    matrices, readout, fixed = fold
    amplitudes = tree_dense_amplitudes(TreeNetwork(local_dim, matrices, readout, fixed))
    in_a = np.isin(leaf_features, in_a_features)
    n_leaves = leaf_features.size
    entropies = []
    for psi in amplitudes:
        psi = psi.reshape((local_dim,) * n_leaves)
        order = np.concatenate((np.flatnonzero(in_a), np.flatnonzero(~in_a)))
        matrix = psi.transpose(order).reshape(local_dim ** in_a.sum(), -1)
        entropies.append(entropy_from_spectrum(np.linalg.svd(matrix, compute_uv=False) ** 2,
                                             alpha=alpha))
    return np.array(entropies)


def test_tracked_entropies_match_brute_force_every_epoch(eight_pixel_digits):
    X, y = eight_pixel_digits
    clf = QCNNClassifier(
        image_shape=(2, 4), max_epochs=3, track_entanglement=["left_right", "up_down"],
        callbacks=[("folds", FoldRecorder())], dtype=np.float64, random_state=0,
    ).fit(X, y)
    history = clf.entanglement_history_
    assert isinstance(history, EntanglementHistory)
    assert len(history) == 4 * 2 * 4  # epochs 0..3, two partitions, four classes
    assert history.partitions == ["left_right", "up_down"]
    folds = dict(clf.net_.callbacks_)["folds"].folds_
    halves = {"left_right": [0, 1, 4, 5], "up_down": [0, 1, 2, 3]}
    for label, in_a in halves.items():
        epochs, entropies = history.as_array(label)
        assert epochs.tolist() == [0, 1, 2, 3]
        for epoch in (1, 2, 3):
            # The tracker's default order is that of entanglement_entropy: Renyi-2.
            expected = dense_entropies(folds[epoch], clf.local_dim_, clf.leaf_features_, in_a,
                                       alpha=2)
            if epoch < 3:
                np.testing.assert_allclose(entropies[epoch], expected, atol=1e-10)
            # skorch's history holds the mean over classes at the end of each epoch.
            assert clf.history_[epoch - 1, f"entropy_{label}"] == pytest.approx(expected.mean())
        # The last rows describe the fitted network, after BatchNorm recalibration
        # changed the running statistics the end-of-epoch record had used.
        np.testing.assert_array_equal(entropies[3], clf.entanglement_entropy(label))
        assert np.abs(entropies[3] - expected).max() > 1e-3
    for row in history:
        if row["epoch"] > 0:
            assert row["train_loss"] == clf.history_[row["epoch"] - 1, "train_loss"]
            assert np.isnan(row["valid_loss"])
    # The untrained network: BatchNorm means make it a product state at start.
    assert np.isnan(history[0]["train_loss"]) and history[0]["entropy"] >= 0


@pytest.mark.parametrize("estimator", [QCNNClassifier, OverlappingConvACClassifier])
@pytest.mark.parametrize("image_shape, partition",
                         [((6, 1), "up_down"), ((1, 6), "left_right"), ((2, 3), None)])
def test_default_tracking_of_one_row_or_one_column(small_digits, estimator, image_shape,
                                                   partition):
    # A side of one pixel has no halving across it: track_entanglement=True
    # records only the halving along the other side.
    X, y = small_digits
    clf = estimator(image_shape=image_shape, track_entanglement=True, max_epochs=1,
                    random_state=0).fit(X[:, 20:26], y)
    frame = clf.entanglement_history_.to_frame()
    if partition is None:
        expected = ({"left_right", "up_down"} if estimator is QCNNClassifier
                    else {"left_right"})
    else:
        expected = {partition}
    assert set(frame["partition"]) == expected
    assert np.isfinite(frame["entropy"]).all()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_numpy_values_of_batch_size_and_track_entanglement(small_digits):
    # As GridSearchCV passes them from np.arange or np.array grids.
    X, y = small_digits
    clf = QCNNClassifier(batch_size=np.int64(16), track_entanglement=np.True_, max_epochs=1,
                         random_state=0).fit(X, y)
    assert set(clf.entanglement_history_.to_frame()["partition"]) == {"left_right", "up_down"}
    plain = QCNNClassifier(batch_size=16, track_entanglement=np.False_, max_epochs=1,
                           random_state=0).fit(X, y)
    assert not hasattr(plain, "entanglement_history_")
    np.testing.assert_array_equal(plain.predict_proba(X), clf.predict_proba(X))


def test_default_tracking_of_a_single_pixel_names_the_cause(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match="fitted on a single site"):
        QCNNClassifier(image_shape=(1, 1), track_entanglement=True, max_epochs=1,
                       random_state=0).fit(X[:, 20:21], y)


def test_track_every_validation_loss_and_frame(small_digits):
    X, y = small_digits
    clf = QCNNClassifier(max_epochs=5, track_entanglement=True, track_every=2,
                         early_stopping=True, n_iter_no_change=50, random_state=0).fit(X, y)
    frame = clf.entanglement_history_.to_frame()
    # Every second epoch, and the fitted network as the last epoch.
    assert sorted(frame["epoch"].unique()) == [0, 2, 4, 5]
    assert set(frame["partition"]) == {"left_right", "up_down"}
    assert list(frame.columns) == ["epoch", "partition", "class", "entropy",
                                   "train_loss", "valid_loss"]
    later = frame[frame["epoch"] > 0]
    assert np.isfinite(later["valid_loss"]).all()
    assert (later["entropy"] >= 0).all()
    # Refitting without tracking drops the attribute instead of keeping stale rows.
    clf.set_params(track_entanglement=None, max_epochs=1).fit(X, y)
    assert not hasattr(clf, "entanglement_history_")


def test_user_tracker_is_copied_and_bound(small_digits):
    X, y = small_digits
    tracker = EntanglementTracker({"top": "left_right"}, every=1, alpha=2, classes=[1, 3])
    clf = QCNNClassifier(max_epochs=2, callbacks=[tracker], random_state=0).fit(X, y)
    assert not hasattr(tracker, "history_") and not hasattr(tracker, "measure_")
    rows = clf.entanglement_history_
    assert {row["class"] for row in rows} == {1, 3}
    assert {row["partition"] for row in rows} == {"top"}
    final = [row["entropy"] for row in rows if row["epoch"] == 2]
    assert np.all(np.isfinite(final))
    assert clone(clf).get_params()["callbacks"][0] is not tracker


@pytest.mark.parametrize("params, error, match", [
    ({"track_entanglement": "diagonal"}, ValueError, "diagonal"),
    ({"track_entanglement": "left_right", "track_every": 0}, ValueError, "track_every"),
    ({"track_entanglement": 3.5}, TypeError, "Partitions to track"),
    ({"callbacks": "print"}, TypeError, "callbacks must be a list"),
    ({"callbacks": [object()]}, TypeError, "skorch callbacks"),
    ({"warm_start": "yes"}, TypeError, "warm_start must be a bool"),
    ({"accelerator": "gpu"}, TypeError, "accelerate.Accelerator"),
])
def test_bad_training_options(small_digits, params, error, match):
    X, y = small_digits
    with pytest.raises(error, match=match):
        QCNNClassifier(max_epochs=1, **params).fit(X, y)


def test_tracker_outside_an_estimator_says_how_to_use_it():
    from skorch import NeuralNet

    net = NeuralNet(torch.nn.Linear(2, 2), criterion=torch.nn.MSELoss, max_epochs=1,
                    train_split=None, callbacks=[EntanglementTracker()])
    X = np.zeros((4, 2), dtype=np.float32)
    with pytest.raises(TypeError, match="inside skqcnn estimators"):
        net.fit(X, X)


def test_tracking_other_families_and_pickle():
    rng = np.random.default_rng(0)
    X = rng.random((80, 6))
    y = (X[:, 0] > X[:, 5]).astype(int)
    rac = DeepRACClassifier(hidden_size=3, max_epochs=2, track_entanglement=[1, 3],
                            random_state=0).fit(X, y)
    epochs, entropies = rac.entanglement_history_.as_array("3")
    assert epochs.tolist() == [0, 1, 2] and entropies.shape == (3, 2)
    # The last rows measure the fitted network.
    np.testing.assert_array_equal(entropies[-1], rac.entanglement_entropy(3))
    conv = OverlappingConvACClassifier(
        image_shape=(2, 3), channels=(2,), kernel_size=2, pooling=None, max_epochs=1,
        track_entanglement={"first_column": np.array([0, 3])}, random_state=0,
    ).fit(X, y)
    assert conv.entanglement_history_.partitions == ["first_column"]
    restored = pickle.loads(pickle.dumps(rac))
    np.testing.assert_array_equal(restored.entanglement_history_.as_array("3")[1], entropies)
    np.testing.assert_array_equal(restored.predict(X), rac.predict(X))


def test_warm_start_resumes_an_interrupted_fit_exactly(small_digits):
    X, y = small_digits
    params = dict(max_epochs=5, dtype=np.float64, random_state=0,
                  track_entanglement="left_right")
    full = QCNNClassifier(**params).fit(X, y)
    interrupted = QCNNClassifier(callbacks=[InterruptAfter(2)], **params).fit(X, y)
    assert len(interrupted.history_) == 2
    # The interrupted fit is still a usable (recalibrated) model.
    assert interrupted.score(X, y) > 0.5
    interrupted.set_params(warm_start=True).fit(X, y)
    assert len(interrupted.history_) == 5
    np.testing.assert_allclose(interrupted.decision_function(X), full.decision_function(X),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(interrupted.history_[:, "train_loss"],
                               full.history_[:, "train_loss"], rtol=1e-12)
    epochs, entropies = interrupted.entanglement_history_.as_array()
    full_epochs, full_entropies = full.entanglement_history_.as_array()
    assert epochs.tolist() == full_epochs.tolist() == [0, 1, 2, 3, 4, 5]
    # Epoch 2 ended the interrupted fit, whose last rows described its
    # recalibrated network; resuming put back the end-of-epoch rows.
    np.testing.assert_allclose(entropies, full_entropies, atol=1e-10)


def test_warm_start_trains_further_only_when_asked(small_digits):
    X, y = small_digits
    clf = QCNNClassifier(max_epochs=2, warm_start=True, random_state=0).fit(X, y)
    before = clf.decision_function(X)
    clf.fit(X, y)  # history complete: nothing to do
    np.testing.assert_array_equal(clf.decision_function(X), before)
    clf.set_params(max_epochs=4).fit(X, y)
    assert len(clf.history_) == 4
    # Epochs 3 and 4 follow the cosine schedule stretched to 4 epochs, from
    # where it stands at epoch 3, not from the finished schedule's rate of 0.
    np.testing.assert_allclose(clf.history_[:, "event_lr"][2:],
                               [0.005, 0.01 * (1 + np.cos(3 * np.pi / 4)) / 2])
    with pytest.raises(ValueError, match="classes of the first fit"):
        clf.fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match="features"):
        clf.fit(X[:, :32], y)


def test_failed_fit_leaves_no_network(small_digits):
    X, y = small_digits
    clf = QCNNClassifier(max_epochs=3, lr=1e6, optimizer="sgd", random_state=0)
    with pytest.raises(ValueError, match="non-finite"):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)


@pytest.mark.filterwarnings("ignore:Setting self.device = cpu")
def test_accelerate_single_process_cpu(small_digits):
    accelerate = pytest.importorskip("accelerate")
    X, y = small_digits
    accelerator = accelerate.Accelerator(cpu=True)
    clf = QCNNClassifier(max_epochs=4, accelerator=accelerator, random_state=0).fit(X, y)
    assert type(clf.net_).__name__ == "AcceleratedNeuralNet"
    assert clf.device_ == "cpu"
    assert clf.score(X, y) > 0.9
    plain = QCNNClassifier(max_epochs=4, random_state=0).fit(X, y)
    assert abs(clf.score(X, y) - plain.score(X, y)) < 0.05
    assert np.all(np.isfinite(clf.entanglement_entropy("left_right")))
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))


@pytest.mark.parametrize("every, max_epochs, early_stopping", [
    (1, 3, False),  # the last epoch is recorded, then replaced
    (2, 3, False),  # the last epoch is not a multiple of every: added
    (1, 3, True),   # early stopping restores the best weights before the final record
])
def test_last_rows_are_the_fitted_entropies(eight_pixel_digits, every, max_epochs,
                                            early_stopping):
    X, y = eight_pixel_digits
    clf = QCNNClassifier(image_shape=(2, 4), max_epochs=max_epochs, early_stopping=early_stopping,
                         n_iter_no_change=1, random_state=0,
                         callbacks=[EntanglementTracker(["left_right", "up_down"], every=every,
                                                        alpha=2, classes=[3, 1])]).fit(X, y)
    history = clf.entanglement_history_
    for label in ("left_right", "up_down"):
        epochs, entropies, classes = history.as_array(label, return_classes=True)
        assert epochs[-1] == len(clf.history_)
        assert classes == [1, 3]
        np.testing.assert_array_equal(
            entropies[-1], clf.entanglement_entropy(label, alpha=2, classes=[1, 3]))
    # The rows were recorded in the tracker's order of classes.
    assert [row["class"] for row in history[:2]] == [3, 1]


def test_last_rows_after_a_restore_carry_the_restored_epochs_losses(eight_pixel_digits):
    # The last rows describe the fitted network, which early stopping took
    # from an earlier epoch: they carried the losses of the stopping epoch.
    X, y = eight_pixel_digits
    clf = QCNNClassifier(image_shape=(2, 4), max_epochs=30, early_stopping=True,
                         n_iter_no_change=1, track_entanglement="left_right",
                         random_state=0).fit(X, y)
    best = dict(clf.net_.callbacks_)["early_stopping"].best_epoch_
    assert best < len(clf.history_) < 30
    last = [row for row in clf.entanglement_history_ if row["epoch"] == len(clf.history_)]
    assert len(last) == len(clf.classes_)
    for key in ("train_loss", "valid_loss"):
        assert {row[key] for row in last} == {clf.history_[best - 1, key]}
        assert clf.history_[best - 1, key] != clf.history_[-1, key]


def test_tracker_binds_to_any_measuring_function():
    from skorch import NeuralNet

    calls = []

    def measure(partition, *, alpha, base, scale):
        calls.append((partition, alpha, base))
        return np.array([scale * len(calls), 0.0])

    tracker = EntanglementTracker("half", alpha=2, entropy_params={"scale": 0.5})
    net = NeuralNet(torch.nn.Linear(2, 2), criterion=torch.nn.MSELoss, max_epochs=2,
                    train_split=None, callbacks=[("tracker", tracker.bind(measure, ["a", "b"]))])
    X = np.zeros((4, 2), dtype=np.float32)
    net.fit(X, X)
    fitted = dict(net.callbacks_)["tracker"]
    epochs, entropies, classes = fitted.history_.as_array(return_classes=True)
    # Epochs 0, 1, 2 and the final record, which replaced epoch 2's rows.
    assert epochs.tolist() == [0, 1, 2] and classes == ["a", "b"]
    np.testing.assert_array_equal(entropies[:, 0], [0.5, 1.0, 2.0])
    assert calls == [("half", 2, None)] * 4
    assert net.history[-1, "entropy_half"] == pytest.approx(1.5 / 2)
    with pytest.raises(TypeError, match="measure must be callable"):
        EntanglementTracker().bind("entropy", [0])


def test_tracker_state_dict_round_trip(small_digits):
    X, y = small_digits
    clf = QCNNClassifier(max_epochs=2, track_entanglement="left_right", random_state=0,
                         dtype=np.float64).fit(X, y)
    tracker = dict(clf.net_.callbacks_)["entanglement_tracker"]
    state = tracker.state_dict()
    assert [row["epoch"] for row in state["epoch_end_rows"]] == [2] * clf.classes_.size
    copy = EntanglementTracker().initialize().load_state_dict(state)
    assert copy.history_ == tracker.history_ and copy.seconds_ == tracker.seconds_
    assert copy.state_dict() == state
    with pytest.raises(ValueError, match=r"unknown: \['extra'\]"):
        EntanglementTracker().load_state_dict({**state, "extra": 1})
    with pytest.raises(ValueError, match=r"missing: \['seconds'\]"):
        EntanglementTracker().load_state_dict({"history": [], "epoch_end_rows": None})
    with pytest.raises(TypeError, match="takes a dict"):
        EntanglementTracker().load_state_dict([])


def test_trackers_limit_blas_and_give_the_count_back():
    import threading

    from threadpoolctl import threadpool_info

    from skqcnn.callbacks._blas_threads import single_blas_thread

    def blas_threads():
        return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]

    before = blas_threads()
    inside = []

    def measure(partition, *, alpha, base):
        inside.append(blas_threads())
        return np.zeros(1)

    from skorch import NeuralNet

    net = NeuralNet(torch.nn.Linear(2, 2), criterion=torch.nn.MSELoss, max_epochs=1,
                    train_split=None, callbacks=[EntanglementTracker("a").bind(measure, [0])])
    X = np.zeros((4, 2), dtype=np.float32)
    net.fit(X, X)
    assert inside and all(set(counts) <= {1} for counts in inside)

    # Interleaved limits in several threads leave the process with its own count.
    def work():
        for _ in range(20):
            with single_blas_thread():
                np.linalg.svd(np.ones((20, 20)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert blas_threads() == before


def test_two_trackers_of_one_label_are_refused(small_digits):
    X, y = small_digits
    second = EntanglementTracker("left_right", alpha=1)
    with pytest.raises(ValueError, match="Two entanglement trackers record the partition "
                                         "label 'left_right'"):
        QCNNClassifier(max_epochs=1, track_entanglement="left_right",
                       callbacks=[second]).fit(X, y)
    # Labelled apart, both are recorded and read back.
    labelled = EntanglementTracker({"left_right_vn": "left_right"}, alpha=1)
    clf = QCNNClassifier(max_epochs=1, track_entanglement="left_right",
                         callbacks=[labelled]).fit(X, y)
    assert clf.entanglement_history_.partitions == ["left_right", "left_right_vn"]
    assert clf.entanglement_history_.as_array("left_right_vn")[1].shape == (2, 4)


@pytest.mark.parametrize("cls", [QCNNClassifier, OverlappingConvACClassifier,
                                 DeepRACClassifier])
def test_failed_warm_start_keeps_the_model_it_started_from(cls, small_digits, monkeypatch):
    X, y = small_digits
    # Tracking (exact and cheap on the q-CNN) shows the restored trackers.
    track = True if cls is QCNNClassifier else None
    clf = cls(max_epochs=2, warm_start=True, track_entanglement=track, random_state=0).fit(X, y)
    before = clf.predict_proba(X)
    rows = list(clf.entanglement_history_) if track else None
    steps = []

    def step_then_fail(net, batch, **fit_params):
        # A few real steps change the weights before the failure.
        if len(steps) == 3:
            raise RuntimeError("failed mid-epoch")
        steps.append(1)
        return original_step(net, batch, **fit_params)

    original_step = type(clf.net_).train_step
    with monkeypatch.context() as patch:
        patch.setattr(type(clf.net_), "train_step", step_then_fail)
        with pytest.raises(RuntimeError, match="failed mid-epoch"):
            clf.set_params(max_epochs=4).fit(X, y)
    assert len(clf.history_) == 2 and clf.max_epochs_ == 2
    np.testing.assert_array_equal(clf.predict_proba(X), before)
    if track:
        assert list(clf.entanglement_history_) == rows
    # And it resumes from there, its trackers analysing this estimator.
    clf.fit(X, y)
    assert len(clf.history_) == 4
    if track:
        assert len(clf.entanglement_history_) > len(rows)
        tracker = next(callback for _, callback in clf.net_.callbacks_
                       if isinstance(callback, EntanglementTracker))
        measure = getattr(tracker.measure_, "func", tracker.measure_)
        assert measure.__self__ is clf


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("estimator", [QCNNClassifier, OverlappingConvACClassifier,
                                       DeepRACClassifier])
def test_warm_start_refuses_changed_hyperparameters(small_digits, estimator, tmp_path):
    # Before: a changed dtype failed inside torch and discarded the fitted
    # network; other changes were validated and then ignored.
    X, y = small_digits
    clf = estimator(max_epochs=1, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    clf.set_params(warm_start=True, max_epochs=2, dtype=np.float64)
    with pytest.raises(ValueError, match=r"changed since: dtype='float32' -> "):
        clf.fit(X, y)
    first_batch = clf.batch_size
    clf.set_params(dtype=np.float32, lr=0.5, batch_size=8)
    with pytest.raises(ValueError,
                       match=rf"batch_size={first_batch} -> 8; lr=None -> 0.5\. Set them back"):
        clf.fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    assert len(clf.history_) == 1
    # The record travels with the model, and what may change still does.
    clf.set_params(lr=None, batch_size=first_batch)
    path = tmp_path / "model.safetensors"
    skqcnn.save(clf, path)
    loaded = skqcnn.load(path).set_params(verbose=0)
    loaded.fit(X, y)
    assert len(loaded.history_) == 2
    with pytest.raises(ValueError, match="weight_decay=0.0001 -> 0.1"):
        loaded.set_params(weight_decay=0.1, max_epochs=3).fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_warm_start_with_values_a_file_cannot_hold(small_digits, tmp_path):
    # A torch mask and a range are valid partitions; they go unchecked on
    # resume, and the model still saves (the range as a default, with a warning).
    X, y = small_digits
    mask = torch.arange(64) < 32
    clf = QCNNClassifier(track_entanglement={"a": mask}, max_epochs=1, random_state=0,
                         batch_size=np.int64(16), early_stopping=True).fit(X, y)
    clf.set_params(warm_start=True, max_epochs=2).fit(X, y)
    assert len(clf.history_) == 2
    ranged = QCNNClassifier(track_entanglement={"a": range(32)}, max_epochs=1,
                            random_state=0).fit(X, y)
    with pytest.warns(UserWarning, match="records defaults instead of: track_entanglement"):
        skqcnn.save(ranged, tmp_path / "ranged.safetensors")
