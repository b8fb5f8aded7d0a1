"""skqcnn.save / skqcnn.load: JSON + safetensors round trips, resume, and clear errors."""

import json
import math
import os
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from _callbacks import InterruptAfter
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file
from sklearn.datasets import load_digits
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import NotFittedError
from skorch.callbacks import Callback

import skqcnn
from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier
from skqcnn._persistence._codec import Decoder, Encoder
from skqcnn._persistence._format import _digest
from skqcnn.callbacks import EntanglementTracker

PIXELS = [19, 20, 27, 28, 35, 36, 43, 44]


@pytest.fixture(scope="module")
def tiny_digits():
    """120 digits of 4 classes, eight central pixels as a 2 x 4 image."""
    X, y = load_digits(n_class=4, return_X_y=True)
    return X[:120][:, PIXELS], y[:120]


def assert_same(a, b, where="value"):
    """Equal values of the same types, NaN equal to NaN, arrays with equal dtypes."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        if a.dtype.kind == "f":
            np.testing.assert_array_equal(a, b, err_msg=where)
        elif a.dtype.kind == "O":
            assert_same(list(a.ravel()), list(b.ravel()), where)
        else:
            assert a.tolist() == b.tolist(), where
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a.cpu(), b.cpu()), where
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, z) in enumerate(zip(a, b)):
            assert_same(x, z, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, Callback):
        assert_same(a.get_params(deep=False), b.get_params(deep=False), where)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def fitted_attributes(estimator):
    return {name: value for name, value in vars(estimator).items()
            if name.endswith("_") and name not in ("net_", "device_")}


def save_and_load(estimator, tmp_path, name="model.safetensors", **load_kwargs):
    path = tmp_path / name
    skqcnn.save(estimator, path)
    return skqcnn.load(path, **load_kwargs), path


def rewrite_metadata(path, redigest, **updates):
    """Rewrite a saved file's metadata through safetensors itself."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        fields = handle.metadata()
    tensors = load_file(str(path))
    fields.update(updates)
    if redigest:
        body = {key: value for key, value in fields.items()
                if key not in ("skqcnn.sha256", "skqcnn.hmac_sha256")}
        fields["skqcnn.sha256"] = _digest(body, tensors)
    save_file(tensors, str(path), metadata=fields)


FAMILIES = {
    "qcnn_string_labels": (
        lambda: QCNNClassifier(image_shape=(2, 4), channels=(3, 2, 2), max_epochs=2,
                               device="cpu", random_state=0),
        lambda X, y: (X, np.array(["zero", "one", "two", "three"])[y]),
    ),
    # A DataFrame: feature_names_in_ is an object array of column names.
    "convac_frame_object_labels": (
        lambda: OverlappingConvACClassifier(
            image_shape=(2, 4), channels=(2,), kernel_size=2, pooling=None, max_epochs=2,
            dtype=np.float64, device="cpu", random_state=1),
        lambda X, y: (pd.DataFrame(X, columns=[f"px{i}" for i in PIXELS]),
                      np.array(["a", "bb", "ccc", "dddd"], dtype=object)[y]),
    ),
    # 3-D input (steps x features per step) and labels that are not 0..n-1.
    "rac_sparse_int_labels": (
        lambda: DeepRACClassifier(hidden_size=(3, 2), max_epochs=2, device="cpu",
                                  random_state=2),
        lambda X, y: (X.reshape(-1, 4, 2), np.array([3, 7, 11, 40])[y]),
    ),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_is_exact(family, tiny_digits, tmp_path):
    make, prepare = FAMILIES[family]
    X, y = prepare(*tiny_digits)
    clf = make().fit(X, y)
    rng_before = torch.random.get_rng_state()
    restored, path = save_and_load(clf, tmp_path)
    # Rebuilding draws initial weights from a private generator only.
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    assert type(restored) is type(clf)
    for method in ("predict", "predict_proba", "decision_function"):
        assert_same(getattr(restored, method)(X), getattr(clf, method)(X), method)
    assert_same(restored.entanglement_entropy(), clf.entanglement_entropy(), "entropy")
    assert_same(restored.entanglement_entropy(alpha=2), clf.entanglement_entropy(alpha=2))
    assert_same(restored.get_params(), clf.get_params(), "params")
    assert_same(fitted_attributes(restored), fitted_attributes(clf), "attributes")
    assert restored.device_ == "cpu"
    assert_same(list(restored.history_), list(clf.history_), "history")
    assert_same(restored.net_.optimizer_.state_dict(), clf.net_.optimizer_.state_dict(),
                "optimizer")
    assert_same(restored.net_.module_.state_dict(), clf.net_.module_.state_dict(), "module")
    assert restored.score(X, y) == clf.score(X, y)
    # The header is plain JSON: hyperparameters readable without skqcnn.
    with open(path, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(size))
    payload = json.loads(header["__metadata__"]["skqcnn.payload"])
    assert payload["params"]["max_epochs"] == 2
    assert header["__metadata__"]["skqcnn.estimator"] == f"skqcnn.{type(clf).__name__}"


def test_tracked_histories_and_skqcnn_callbacks_survive(tiny_digits, tmp_path):
    X, y = tiny_digits
    tracker = EntanglementTracker({"cols": np.array([0, 4])}, every=2, alpha=2, classes=[1, 3])
    clf = QCNNClassifier(image_shape=(2, 4), channels=(2, 2, 2), max_epochs=2,
                         track_entanglement=["left_right", "up_down"],
                         callbacks=[("mine", tracker)], early_stopping=True,
                         n_iter_no_change=5, device="cpu", random_state=0).fit(X, y)
    restored, _ = save_and_load(clf, tmp_path)
    saved_tracker = restored.get_params()["callbacks"][0]
    assert saved_tracker[0] == "mine" and type(saved_tracker[1]) is EntanglementTracker
    assert_same(restored.get_params(), clf.get_params(), "params")
    # Epochs 0-2 x 2 partitions x 4 classes, and epochs 0 and 2 x 2 classes.
    assert len(clf.entanglement_history_) == 3 * 2 * 4 + 2 * 2
    assert_same(list(restored.entanglement_history_), list(clf.entanglement_history_))
    assert restored.entanglement_history_.partitions == ["left_right", "up_down", "cols"]
    assert_same(list(restored.history_), list(clf.history_), "history")
    assert np.isfinite(restored.history_[:, "valid_loss"]).all()


def test_resume_after_load_matches_uninterrupted_fit(tiny_digits, tmp_path):
    X, y = tiny_digits
    params = dict(image_shape=(2, 4), channels=(3, 2, 2), max_epochs=3, dtype=np.float64,
                  device="cpu", random_state=0, track_entanglement="left_right")
    full = QCNNClassifier(**params).fit(X, y)
    interrupted = QCNNClassifier(callbacks=[InterruptAfter(2)], **params).fit(X, y)
    assert len(interrupted.history_) == 2
    dropped = r"the callback _callbacks.InterruptAfter \(only skqcnn's own"
    with pytest.warns(UserWarning, match=dropped):
        skqcnn.save(interrupted, tmp_path / "half.safetensors")
    del interrupted
    resumed = skqcnn.load(tmp_path / "half.safetensors")
    assert resumed.get_params()["callbacks"] is None
    resumed.set_params(warm_start=True).fit(X, y)
    assert len(resumed.history_) == 3
    np.testing.assert_allclose(resumed.decision_function(X), full.decision_function(X),
                               rtol=1e-12, atol=1e-12)
    for name, weight in full.net_.module_.state_dict().items():
        np.testing.assert_allclose(resumed.net_.module_.state_dict()[name], weight,
                                   rtol=1e-12, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(resumed.history_[:, "train_loss"], full.history_[:, "train_loss"],
                               rtol=1e-12)
    epochs, entropies = resumed.entanglement_history_.as_array()
    assert epochs.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(entropies, full.entanglement_history_.as_array()[1], atol=1e-10)
    # The saved Adam moments matter: a resume without them ends elsewhere.
    forgetful = skqcnn.load(tmp_path / "half.safetensors")
    forgetful.net_.optimizer_.state.clear()
    forgetful.set_params(warm_start=True).fit(X, y)
    assert np.abs(forgetful.decision_function(X) - full.decision_function(X)).max() > 1e-4


@pytest.fixture(scope="module")
def saved_bytes(tiny_digits, tmp_path_factory):
    X, y = tiny_digits
    clf = QCNNClassifier(image_shape=(2, 4), channels=(2, 2, 2), max_epochs=1, device="cpu",
                         random_state=0).fit(X, y)
    path = tmp_path_factory.mktemp("saved") / "clf.safetensors"
    skqcnn.save(clf, path)
    return clf, path.read_bytes()


@pytest.fixture
def saved_path(saved_bytes, tmp_path):
    path = tmp_path / "clf.safetensors"
    path.write_bytes(saved_bytes[1])
    return path


def test_model_saved_for_cuda_loads_on_cpu(saved_bytes, tiny_digits, tmp_path, monkeypatch):
    X, _ = tiny_digits
    clf = saved_bytes[0]
    clf.set_params(device="cuda")
    try:
        skqcnn.save(clf, tmp_path / "cuda.safetensors")
    finally:
        clf.set_params(device="cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="CUDA is not available: it is loaded on the CPU"):
        restored = skqcnn.load(tmp_path / "cuda.safetensors")
    assert restored.device_ == "cpu" and restored.get_params()["device"] == "cuda"
    assert next(restored.net_.module_.parameters()).device.type == "cpu"
    assert_same(restored.decision_function(X), clf.decision_function(X))
    with pytest.raises(ValueError, match="asks for CUDA, which is not available"):
        skqcnn.load(tmp_path / "cuda.safetensors", device="cuda")
    with pytest.raises(ValueError, match="device must be"):
        skqcnn.load(tmp_path / "cuda.safetensors", device="tpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fitted_on_cuda_loads_anywhere(tiny_digits, tmp_path):
    X, y = tiny_digits
    clf = QCNNClassifier(image_shape=(2, 4), max_epochs=2, device="cuda", dtype=np.float64,
                         random_state=0).fit(X, y)
    assert clf.device_.startswith("cuda")
    on_cpu, path = save_and_load(clf, tmp_path, device="cpu")
    assert on_cpu.device_ == "cpu"
    np.testing.assert_allclose(on_cpu.decision_function(X), clf.decision_function(X),
                               rtol=1e-10, atol=1e-10)
    assert_same(on_cpu.predict(X), clf.predict(X))
    on_gpu = skqcnn.load(path)
    assert on_gpu.device_.startswith("cuda")
    assert_same(on_gpu.decision_function(X), clf.decision_function(X))
    on_gpu.set_params(warm_start=True, max_epochs=3).fit(X, y)
    assert len(on_gpu.history_) == 3


def test_truncated_file(saved_path):
    saved_path.write_bytes(saved_path.read_bytes()[:-7])
    with pytest.raises(ValueError, match="not a readable safetensors file.*truncated"):
        skqcnn.load(saved_path)


def test_flipped_tensor_byte_fails_the_digest(saved_path):
    data = bytearray(saved_path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")
    data[(start + len(data)) // 2] ^= 0x10
    saved_path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="is corrupted.*SHA-256"):
        skqcnn.load(saved_path)


def test_edited_metadata_fails_the_digest(saved_path):
    from safetensors import safe_open

    with safe_open(str(saved_path), framework="pt") as handle:
        payload = json.loads(handle.metadata()["skqcnn.payload"])
    payload["params"]["max_epochs"] = 3
    rewrite_metadata(saved_path, redigest=False, **{"skqcnn.payload": json.dumps(payload)})
    with pytest.raises(ValueError, match="is corrupted"):
        skqcnn.load(saved_path)


@pytest.mark.parametrize("content", [b"", b"\x00" * 3, b"not a model at all" * 10,
                                     (16).to_bytes(8, "little") + b"{not json}" + b" " * 6])
def test_garbage_file(tmp_path, content):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        skqcnn.load(path)


def test_plain_safetensors_file(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    with pytest.raises(ValueError, match="holds no skqcnn estimator"):
        skqcnn.load(path)
    save_file({"w": torch.zeros(3)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="holds no skqcnn estimator"):
        skqcnn.load(path)


def test_other_format_version(saved_path):
    rewrite_metadata(saved_path, redigest=True, **{"skqcnn.format_version": "99",
                                                   "skqcnn.version": "9.0.0"})
    with pytest.raises(ValueError, match=r"skqcnn 9\.0\.0 in format version 99; this skqcnn "
                                         r"\(0\.1\.0\) reads format versions 1, 2"):
        skqcnn.load(saved_path)


def test_unknown_class(saved_path):
    rewrite_metadata(saved_path, redigest=True,
                     **{"skqcnn.estimator": "skqcnn.FancyClassifier"})
    with pytest.raises(ValueError, match="unknown class 'skqcnn.FancyClassifier'.*"
                                         "expected_class"):
        skqcnn.load(saved_path)


def edit_payload(path, edit):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        payload = json.loads(handle.metadata()["skqcnn.payload"])
    edit(payload)
    rewrite_metadata(path, redigest=True, **{"skqcnn.payload": json.dumps(payload)})


@pytest.mark.parametrize("edit, match", [
    (lambda p: p["params"].update(shiny=True),
     r"sets parameters \['shiny'\] that QCNNClassifier of skqcnn 0\.1\.0 does not have"),
    (lambda p: p["params"].update(channels={"__tuple__": [4, 2, 2]}),
     r"weights do not fit.*wrong shape: \['network.convs.0'"),
    (lambda p: p["params"].update(channels={"__tuple__": [4, 2]}),
     r"cannot be rebuilt \(ValueError: channels"),
    (lambda p: p["params"].update(device={"__pickle__": "cos\nsystem"}),
     r"unknown tagged value"),
    (lambda p: p["params"].update(callbacks=[{"__callback__": {"class": "Checkpoint",
                                                               "params": {}}}]),
     r"unknown callback class 'Checkpoint'"),
])
def test_consistent_but_unbuildable_payload(saved_path, edit, match):
    edit_payload(saved_path, edit)
    with pytest.raises(ValueError, match=match):
        skqcnn.load(saved_path)


def test_expected_class(saved_path):
    assert type(skqcnn.load(saved_path, expected_class=QCNNClassifier)) is QCNNClassifier
    assert type(skqcnn.load(saved_path, expected_class="QCNNClassifier")) is QCNNClassifier
    with pytest.raises(TypeError, match="holds a skqcnn.QCNNClassifier, not the expected "
                                        "skqcnn.DeepRACClassifier"):
        skqcnn.load(saved_path, expected_class=DeepRACClassifier)
    with pytest.raises(TypeError, match="not the expected OverlappingConvACClassifier"):
        skqcnn.load(saved_path, expected_class="OverlappingConvACClassifier")
    with pytest.raises(TypeError, match="expected_class must be a skqcnn estimator class"):
        skqcnn.load(saved_path, expected_class=DummyClassifier)


class MyQCNN(QCNNClassifier):
    """A user's subclass: loadable only when the user names it."""


def test_user_subclass_loads_only_when_named(tiny_digits, tmp_path):
    X, y = tiny_digits
    clf = MyQCNN(image_shape=(2, 4), channels=(2, 2, 2), max_epochs=1, device="cpu",
                 random_state=0).fit(X, y)
    path = tmp_path / "mine.safetensors"
    skqcnn.save(clf, path)
    with pytest.raises(ValueError, match="unknown class 'test_persistence.MyQCNN'"):
        skqcnn.load(path)
    with pytest.raises(TypeError, match="not the expected skqcnn.QCNNClassifier"):
        skqcnn.load(path, expected_class=QCNNClassifier)
    restored = skqcnn.load(path, expected_class=MyQCNN)
    assert type(restored) is MyQCNN
    assert_same(restored.decision_function(X), clf.decision_function(X))


def test_save_rejects_unfitted_and_foreign_estimators(tmp_path, tiny_digits):
    with pytest.raises(NotFittedError):
        skqcnn.save(QCNNClassifier(), tmp_path / "x.safetensors")
    X, y = tiny_digits
    with pytest.raises(TypeError, match="skqcnn estimators.*got DummyClassifier"):
        skqcnn.save(DummyClassifier().fit(X, y), tmp_path / "x.safetensors")
    assert not os.listdir(tmp_path)


def test_unrepresentable_values(saved_bytes, tmp_path):
    clf = saved_bytes[0]
    clf.set_params(random_state=np.random.RandomState(0))
    try:
        with pytest.warns(UserWarning, match=r"random_state \(numpy.random.mtrand.RandomSt"):
            restored, _ = save_and_load(clf, tmp_path)
    finally:
        clf.set_params(random_state=0)
    assert restored.get_params()["random_state"] is None
    clf.odd_ = 1
    try:
        with pytest.raises(TypeError, match=r"\['odd_'\] are not declared there"):
            skqcnn.save(clf, tmp_path / "odd.safetensors")
    finally:
        del clf.odd_
    channels = clf.channels_
    clf.channels_ = object()
    try:
        with pytest.raises(TypeError, match=r"attribute channels_ \(builtins.object\) in JSON"):
            skqcnn.save(clf, tmp_path / "odd.safetensors")
    finally:
        clf.channels_ = channels
    clf.history_.record("event_odd", object())
    try:
        with pytest.raises(TypeError, match=r"history: a callback recorded a builtins.object"):
            skqcnn.save(clf, tmp_path / "odd.safetensors")
    finally:
        del clf.history_[-1]["event_odd"]
    # Only the first, complete file: a failed save leaves nothing behind.
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors"]


def test_save_needs_a_file_name(saved_bytes, tmp_path):
    clf, _ = saved_bytes
    for path in ("", f"{tmp_path}{os.sep}", tmp_path):
        with pytest.raises(ValueError, match="Give a file name"):
            skqcnn.save(clf, path)
    with pytest.raises(FileNotFoundError, match="no directory"):
        skqcnn.save(clf, tmp_path / "absent" / "clf.safetensors")
    assert os.listdir(tmp_path) == []


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        skqcnn.load(tmp_path / "absent.safetensors")
    with pytest.raises(ValueError, match="is a directory"):
        skqcnn.load(tmp_path)


def test_loading_never_unpickles(saved_path, tiny_digits, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("load must not unpickle")

    for module, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"),
                         (torch, "load")]:
        monkeypatch.setattr(module, name, forbidden)
    restored = skqcnn.load(saved_path)
    assert restored.predict(tiny_digits[0][:3]).shape == (3,)


def test_save_replaces_an_existing_file(saved_bytes, saved_path):
    clf = saved_bytes[0]
    saved_path.write_bytes(b"old")
    skqcnn.save(clf, str(saved_path))
    assert os.listdir(saved_path.parent) == ["clf.safetensors"]
    assert_same(skqcnn.load(saved_path).predict_proba(np.ones((2, 8))),
                clf.predict_proba(np.ones((2, 8))))


def object_array(items):
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = item
    return array


json_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.text(max_size=6),
    st.floats(allow_nan=True, allow_infinity=True),
)
values = st.recursive(
    json_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(), st.sampled_from(
            ["__tuple__", "__tensor__", "__x"])), inner, max_size=3),
        st.lists(st.floats(width=32), max_size=4).map(lambda v: np.array(v, dtype=np.float32)),
        st.lists(st.text(max_size=3), min_size=1, max_size=3).map(np.array),
        st.lists(inner, min_size=1, max_size=3).map(object_array),
        st.integers(-5, 5).map(np.int16),
        st.sampled_from([np.float32, np.float64, np.dtype("int8"), np.dtype("<U4")]),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(values)
def test_codec_round_trip(value):
    encoder = Encoder({})
    text = json.dumps(encoder.encode(value, "root"))
    assert_same(Decoder(encoder.tensors, {}).decode(json.loads(text)), value)


# --- what a file may set ------------------------------------------------------


@pytest.mark.parametrize("edit, error, match", [
    # A file that would shadow a method: predict() must keep working, so it is refused.
    (lambda p: p["attributes"].update(predict="pwned"), ValueError,
     r"sets the attributes \['predict'\], which QCNNClassifier does not declare"),
    (lambda p: p["attributes"].update(classes_="pwned"), ValueError,
     r"fitted attribute classes_ is a str, not a ndarray"),
    (lambda p: p["attributes"].update(n_features_in_=True), ValueError,
     r"fitted attribute n_features_in_ is a bool"),
    (lambda p: p.update(module="pwned"), ValueError,
     r"sets the payload keys \['module'\]"),
    (lambda p: p["callbacks"].update(print_log={"sink": "x"}), ValueError,
     r"sets the callback states \['print_log'\]"),
    (lambda p: p["callbacks"]["epoch_shuffle"].update(extra=1), ValueError,
     r"callback 'epoch_shuffle'.*unknown: \['extra'\]"),
    (lambda p: p.update(seed="0"), ValueError, r"its seed is '0', not an int"),
])
def test_a_file_sets_only_declared_state(saved_path, tiny_digits, edit, error, match):
    edit_payload(saved_path, edit)
    with pytest.raises(error, match=match):
        skqcnn.load(saved_path)


def test_unreferenced_tensor_and_unknown_header_field(saved_path):
    from safetensors import safe_open

    with safe_open(str(saved_path), framework="pt") as handle:
        fields = handle.metadata()
    tensors = load_file(str(saved_path))
    tensors["stowaway"] = torch.zeros(2)
    body = {key: value for key, value in fields.items() if key != "skqcnn.sha256"}
    save_file(tensors, str(saved_path),
              metadata={**fields, "skqcnn.sha256": _digest(body, tensors)})
    with pytest.raises(ValueError, match=r"tensors \['stowaway'\] that nothing refers to"):
        skqcnn.load(saved_path)
    rewrite_metadata(saved_path, redigest=True, **{"skqcnn.extra": "1"})
    with pytest.raises(ValueError, match=r"header fields \['skqcnn.extra'\]"):
        skqcnn.load(saved_path)


# --- keyed digest -------------------------------------------------------------


def test_hmac_key(saved_bytes, tiny_digits, tmp_path):
    clf = saved_bytes[0]
    X, _ = tiny_digits
    path = tmp_path / "signed.safetensors"
    skqcnn.save(clf, path, key=b"secret")
    assert_same(skqcnn.load(path, key=b"secret").decision_function(X),
                clf.decision_function(X))
    # A str key is its UTF-8 bytes.
    skqcnn.load(path, key="secret")
    with pytest.raises(ValueError, match="signed with another key, or changed"):
        skqcnn.load(path, key=b"guess")
    with pytest.raises(ValueError, match=r"is signed with a key .*pass the key"):
        skqcnn.load(path)
    # Whoever edits the file can recompute the SHA-256 digest, not the HMAC.
    edit_payload(path, lambda p: p["params"].update(max_epochs=7))
    with pytest.raises(ValueError, match="signed with another key, or changed"):
        skqcnn.load(path, key=b"secret")
    unsigned = tmp_path / "unsigned.safetensors"
    skqcnn.save(clf, unsigned)
    with pytest.raises(ValueError, match="is not signed"):
        skqcnn.load(unsigned, key=b"secret")
    with pytest.raises(ValueError, match="must not be empty"):
        skqcnn.save(clf, unsigned, key=b"")
    with pytest.raises(TypeError, match="key must be bytes, a str or None, got int"):
        skqcnn.load(unsigned, key=42)


# --- the file on disk ---------------------------------------------------------


def test_save_to_a_directory_names_it(saved_bytes, tmp_path):
    with pytest.raises(ValueError, match=f"Cannot save to {str(tmp_path)!r}: it is a "
                                         f"directory"):
        skqcnn.save(saved_bytes[0], tmp_path)
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_saved_file_follows_the_umask(saved_bytes, tmp_path, umask):
    previous = os.umask(umask)
    try:
        skqcnn.save(saved_bytes[0], tmp_path / "model.safetensors")
    finally:
        os.umask(previous)
    assert os.stat(tmp_path / "model.safetensors").st_mode & 0o777 == 0o666 & ~umask


# --- the format-1 file written before callbacks had state dicts ----------------

DATA = os.path.join(os.path.dirname(__file__), "data")


def test_format_1_file_still_loads(tmp_path):
    expected = np.load(os.path.join(DATA, "model_v1_expected.npz"), allow_pickle=False)
    X = expected["X"]
    old = skqcnn.load(os.path.join(DATA, "model_v1.safetensors"))
    # The expected scores were computed in float32; scoring now runs in float64
    # on the same float32 weights, which moves them by float32 rounding only.
    # Its "decision" is the signed amplitudes, which decision_function returned then.
    np.testing.assert_allclose(old.amplitudes(X), expected["decision"], rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(old.predict(X), expected["predict"])
    # The fixture holds von Neumann entropies, the default order when it was
    # written, of a fold whose BatchNorm maps were computed in float32 and then
    # cast; the fold now casts the statistics first, which moves them by float32
    # rounding.
    np.testing.assert_allclose(old.entanglement_entropy(alpha=1), expected["entropy"],
                               rtol=1e-6)
    np.testing.assert_array_equal(old.entanglement_history_.as_array()[1], expected["history"])
    # Written again, it is a format-2 file with the same content.
    again, path = save_and_load(old, tmp_path)
    with open(path, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        assert json.loads(handle.read(size))["__metadata__"]["skqcnn.format_version"] == "2"
    np.testing.assert_array_equal(again.amplitudes(X), old.amplitudes(X))
    assert_same(list(again.entanglement_history_), list(old.entanglement_history_))


# --- callback state dicts -----------------------------------------------------


def test_callback_state_dicts_round_trip(tiny_digits):
    from skqcnn.callbacks import BatchNormRecalibration, EpochSeededShuffle

    X, y = tiny_digits
    clf = QCNNClassifier(image_shape=(2, 4), channels=(2, 2, 2), max_epochs=1, device="cpu",
                         random_state=0).fit(X, y)
    callbacks = dict(clf.net_.callbacks_)
    recalibration = callbacks["batchnorm_recalibration"]
    state = recalibration.state_dict()
    assert set(state["training_statistics"]) == {
        name for name, _ in clf.net_.module_.named_buffers()}
    copy = BatchNormRecalibration().initialize().load_state_dict(state)
    assert_same(copy.state_dict(), state)
    with pytest.raises(TypeError, match="training_statistics must be None or a dict"):
        BatchNormRecalibration().load_state_dict({"training_statistics": [1]})
    shuffle = callbacks["epoch_shuffle"]
    copy = EpochSeededShuffle(seed=0).load_state_dict(shuffle.state_dict())
    assert copy.seed == shuffle.seed and copy.epoch_seed(3) == shuffle.epoch_seed(3)
    with pytest.raises(TypeError, match="seed must be an int"):
        EpochSeededShuffle(seed=0).load_state_dict({"seed": "7"})
