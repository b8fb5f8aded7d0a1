"""skqcnn.datasets: digits, the OpenML loaders (never the network) and the local/global task."""

import importlib.util
import urllib.error

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch

from skqcnn.datasets import (
    _openml,
    area_resize,
    fetch_fashion_mnist,
    fetch_mnist,
    load_digits_images,
    load_digits_split,
    make_local_global_task,
)

# --------------------------------------------------------------------- digits

def test_load_digits_images_is_sklearn_digits_over_16():
    raw = load_digits()
    bunch = load_digits_images()
    assert isinstance(bunch, Bunch)
    np.testing.assert_array_equal(bunch.data, raw.data / 16)
    np.testing.assert_array_equal(bunch.images, raw.images / 16)
    np.testing.assert_array_equal(bunch.target, raw.target)
    assert bunch.data.min() == 0 and bunch.data.max() == 1
    assert bunch.target.dtype == np.int64
    np.testing.assert_array_equal(bunch.target_names, np.arange(10))
    assert "[0, 1]" in bunch.DESCR


def test_load_digits_images_shapes_and_classes():
    X, y = load_digits_images(n_class=3, as_images=True, return_X_y=True)
    assert X.shape == (len(y), 8, 8)
    assert set(np.unique(y)) == {0, 1, 2}
    flat = load_digits_images(n_class=3)
    assert flat.data.shape == (len(y), 64)
    np.testing.assert_array_equal(flat.data, X.reshape(len(y), 64))


def test_load_digits_split_matches_the_benchmark_split():
    X, y = load_digits(return_X_y=True)
    expected = train_test_split(X / 16, y, test_size=0.25, stratify=y, random_state=0)
    split = load_digits_split()
    for got, want in zip(split, expected):
        np.testing.assert_array_equal(got, want)
    assert split[0].shape == (1347, 64) and split[1].shape == (450, 64)
    images = load_digits_split(as_images=True, random_state=1)
    assert images[0].shape == (1347, 8, 8)
    assert not np.array_equal(images[2], split[2])


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n_class": 1}, ValueError, "n_class must be an int between 2 and 10"),
    ({"n_class": 11}, ValueError, "n_class"),
    ({"as_images": "yes"}, TypeError, "as_images must be a bool"),
    ({"return_X_y": 1}, TypeError, "return_X_y must be a bool"),
])
def test_load_digits_images_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        load_digits_images(**kwargs)


# ----------------------------------------------------------------- area_resize

def supersampled_resize(image, side):
    """Area averaging by brute force: repeat every pixel onto a common fine
    grid, then average the blocks that make up each output pixel."""
    n = image.shape[0]
    fine = np.lcm(n, side)
    big = np.repeat(np.repeat(image, fine // n, axis=0), fine // n, axis=1)
    block = fine // side
    return big.reshape(side, block, side, block).mean(axis=(1, 3))


@pytest.mark.parametrize("n_in, n_out", [(28, 16), (28, 13), (8, 14), (8, 4), (5, 3)])
def test_area_resize_matches_supersampling(n_in, n_out):
    image = np.random.default_rng(n_in * n_out).random((n_in, n_in))
    np.testing.assert_allclose(area_resize(image, n_out), supersampled_resize(image, n_out),
                               rtol=1e-12, atol=1e-12)


def test_area_resize_known_values_and_invariants():
    image = np.arange(16.0).reshape(4, 4)
    np.testing.assert_array_equal(area_resize(image, 2), [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(area_resize(image[:2, :2], 4),
                                  np.repeat(np.repeat(image[:2, :2], 2, 0), 2, 1))
    stack = np.random.default_rng(0).random((6, 28, 28))
    small = area_resize(stack, (16, 12))
    assert small.shape == (6, 16, 12)
    np.testing.assert_allclose(small.mean(axis=(1, 2)), stack.mean(axis=(1, 2)), rtol=1e-12)
    assert small.min() >= stack.min() and small.max() <= stack.max()
    np.testing.assert_array_equal(area_resize(stack, 28), stack)
    np.testing.assert_allclose(area_resize(np.full((28, 28), 0.3), 16), 0.3, rtol=1e-14)
    assert area_resize(np.ones((3, 3), dtype=np.uint8), 2).dtype == np.float64
    assert area_resize(np.ones((3, 3), dtype=np.float32), 2).dtype == np.float32


@pytest.mark.parametrize("side", [5, 9, 16])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_area_resize_stays_in_the_input_range(side, dtype):
    # Weights k / 28 do not sum to exactly 1: 1.0000002 before the clip.
    images = np.stack([np.ones((28, 28)), np.linspace(0, 1, 28 * 28).reshape(28, 28)])
    resized = area_resize(images.astype(dtype), side)
    assert resized.dtype == dtype
    np.testing.assert_array_equal(resized[0], 1.0)
    assert resized[1].min() >= 0 and resized[1].max() <= 1


def test_area_resize_of_a_boolean_mask():
    np.testing.assert_array_equal(area_resize(np.ones((4, 4), dtype=bool), 2), np.ones((2, 2)))


def test_area_resize_refuses_empty_and_complex_images():
    with pytest.raises(ValueError, match="H, W >= 1"):
        area_resize(np.ones((0, 4)), 2)
    with pytest.raises(TypeError, match="real numbers or booleans"):
        area_resize(np.ones((3, 3)) * 1j, 2)


@pytest.mark.parametrize("images, shape, match", [
    (np.ones(5), 2, "at least 2 dimensions"),
    (np.ones((4, 4)), 0, "positive int"),
    (np.ones((4, 4)), (2, 2, 2), "pair"),
    (np.ones((4, 4)), 2.0, "pair"),
])
def test_area_resize_validation(images, shape, match):
    with pytest.raises(ValueError, match=match):
        area_resize(images, shape)


# -------------------------------------------------------- OpenML, with a fake

N_FAKE = 20


class FakeOpenML:
    """Stands in for sklearn's fetch_openml: 20 images of 28x28 grey levels
    (floats 0..255, as OpenML returns them) and string labels."""

    def __init__(self):
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, size=(N_FAKE, 28, 28)).astype(np.float64)
        images[0] = 128.0
        # Pixel (0, 0) numbers the rows (128 + row, leaving image 0 flat), so
        # that subsets can be traced.
        images[:, 0, 0] = 128 + np.arange(N_FAKE)
        self.X = images.reshape(N_FAKE, 784)
        self.y = np.array([str(i % 10) for i in range(N_FAKE)], dtype=object)
        self.calls = []

    def __call__(self, name, **kwargs):
        self.calls.append({"name": name, **kwargs})
        return self.X.copy(), self.y.copy()


@pytest.fixture
def fake_openml(monkeypatch):
    fake = FakeOpenML()
    monkeypatch.setattr(_openml, "fetch_openml", fake)
    return fake


@pytest.mark.parametrize("fetch, name", [(fetch_mnist, "mnist_784"),
                                         (fetch_fashion_mnist, "Fashion-MNIST")])
def test_fetch_asks_openml_for_the_right_dataset(fake_openml, tmp_path, fetch, name):
    fetch(data_home=tmp_path)
    (call,) = fake_openml.calls
    assert call["name"] == name and call["version"] == 1
    assert call["data_home"] == tmp_path
    assert call["as_frame"] is False and call["return_X_y"] is True


def test_fetch_mnist_resizes_scales_and_labels(fake_openml):
    bunch = fetch_mnist()
    native = fake_openml.X.reshape(N_FAKE, 28, 28) / 255
    assert bunch.data.shape == (N_FAKE, 256) and bunch.images.shape == (N_FAKE, 16, 16)
    assert bunch.data.dtype == np.float32
    assert 0 <= bunch.data.min() and bunch.data.max() <= 1
    np.testing.assert_array_equal(bunch.target, np.arange(N_FAKE) % 10)
    assert bunch.target.dtype == np.int64
    np.testing.assert_array_equal(bunch.target_names, np.arange(10))
    # Area averaging keeps each image's mean intensity, and a flat image flat.
    np.testing.assert_allclose(bunch.images.mean(axis=(1, 2)), native.mean(axis=(1, 2)),
                               rtol=1e-5)
    np.testing.assert_allclose(bunch.images[0], 128 / 255, rtol=1e-6)
    np.testing.assert_allclose(bunch.images, area_resize(native, 16), rtol=1e-5, atol=1e-7)
    assert "16x16" in bunch.DESCR


def test_fetch_native_size_is_the_scaled_data(fake_openml):
    X, _ = fetch_mnist(image_size=None, return_X_y=True)
    np.testing.assert_array_equal(X, (fake_openml.X / 255).astype(np.float32))
    images, _ = fetch_mnist(image_size=28, as_images=True, return_X_y=True)
    np.testing.assert_array_equal(images.reshape(N_FAKE, 784), X)
    small, _ = fetch_mnist(image_size=7, as_images=True, return_X_y=True)
    assert small.shape == (N_FAKE, 7, 7)


def test_fetch_fashion_mnist_class_names(fake_openml):
    bunch = fetch_fashion_mnist(as_images=True)
    assert bunch.data.shape == (N_FAKE, 16, 16)
    assert bunch.target_names.tolist()[:2] == ["T-shirt/top", "Trouser"]
    assert len(bunch.target_names) == 10
    assert bunch.target_names[bunch.target[9]] == "Ankle boot"


def test_fetch_subset_is_reproducible_and_ordered(fake_openml):
    X, y = fetch_mnist(image_size=None, n_samples=6, random_state=0, return_X_y=True)
    rows = np.rint(X[:, 0] * 255).astype(int) - 128
    assert X.shape == (6, 784) and len(set(rows)) == 6
    assert np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(y, rows % 10)
    again, _ = fetch_mnist(image_size=None, n_samples=6, random_state=0, return_X_y=True)
    np.testing.assert_array_equal(again, X)
    other, _ = fetch_mnist(image_size=None, n_samples=6, random_state=1, return_X_y=True)
    assert not np.array_equal(other, X)


def test_fetch_uses_liac_arff_without_pandas(fake_openml, monkeypatch):
    fetch_mnist()
    has_pandas = importlib.util.find_spec("pandas") is not None
    assert fake_openml.calls[-1]["parser"] == ("pandas" if has_pandas else "liac-arff")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    fetch_mnist()
    assert fake_openml.calls[-1]["parser"] == "liac-arff"


@pytest.mark.parametrize("kwargs, error, match", [
    ({"image_size": 0}, ValueError, "image_size must be a positive int"),
    ({"image_size": 16.0}, ValueError, "image_size"),
    ({"n_samples": 0}, ValueError, "n_samples must be a positive int"),
    ({"as_images": None}, TypeError, "as_images must be a bool"),
])
def test_fetch_validates_before_downloading(fake_openml, kwargs, error, match):
    with pytest.raises(error, match=match):
        fetch_mnist(**kwargs)
    assert fake_openml.calls == []


def test_fetch_rejects_more_samples_than_there_are(fake_openml):
    with pytest.raises(ValueError, match="n_samples=21 exceeds the 20 images"):
        fetch_fashion_mnist(n_samples=N_FAKE + 1)


# ------------------------------------------------------------ local / global

def ink_boxes(images):
    """Height and width of the bounding box of the non-zero pixels of each image."""
    rows, cols = images.any(axis=2), images.any(axis=1)

    def extent(mask):
        first = mask.argmax(axis=1)
        last = mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1)
        return last - first + 1

    return extent(rows), extent(cols)


@pytest.mark.parametrize("scale", ["local", "global"])
def test_task_shapes_scaling_and_reproducibility(scale):
    X, y = make_local_global_task(scale, n_samples=300, random_state=0)
    assert X.shape == (300, 256) and X.dtype == np.float64
    assert y.shape == (300,) and y.dtype == np.int64 and set(y) <= set(range(10))
    assert X.min() == 0 and 0.9 < X.max() <= 1
    images, y_images = make_local_global_task(scale, n_samples=300, as_images=True,
                                              random_state=0)
    np.testing.assert_array_equal(images.reshape(300, 256), X)
    np.testing.assert_array_equal(y_images, y)
    other, _ = make_local_global_task(scale, n_samples=300, random_state=1)
    assert not np.array_equal(other, X)


def test_local_digits_are_small_and_move_around():
    images, y, positions = make_local_global_task(
        "local", n_samples=500, as_images=True, return_positions=True, random_state=0)
    heights, widths = ink_boxes(images)
    assert heights.max() <= 4 and widths.max() <= 4
    # 13 x 13 possible corners; 500 draws land on most of them.
    assert len({tuple(p) for p in positions}) > 120
    assert positions.min() == 0 and positions.max() == 12
    # Nothing outside each digit's window, and the window is a resized digit of class y.
    digits, labels = load_digits_images(as_images=True, return_X_y=True)
    small = area_resize(digits, 4)
    for image, label, (row, col) in zip(images[:20], y[:20], positions[:20]):
        window = image[row:row + 4, col:col + 4].copy()
        image[row:row + 4, col:col + 4] = 0
        assert not image.any()
        matches = np.flatnonzero(np.all(small == window, axis=(1, 2)))
        assert matches.size and np.all(labels[matches] == label)


def test_global_digit_covers_most_of_the_canvas():
    images, _, positions = make_local_global_task(
        "global", n_samples=300, as_images=True, return_positions=True, random_state=0)
    heights, widths = ink_boxes(images)
    assert np.median(heights) >= 12 and np.median(widths) >= 10
    assert positions.min() == 0 and positions.max() == 2


def test_each_source_digit_is_used_once():
    # A digit as large as the canvas is the digit itself: the canvases are a
    # permutation of the data set.
    X, y = make_local_global_task("global", n_samples=1797, canvas_size=8, digit_size=8,
                                  random_state=0)
    digits, labels = load_digits_images(return_X_y=True)
    order = np.lexsort(X.T)
    expected = np.lexsort(digits.T)
    np.testing.assert_array_equal(X[order], digits[expected])
    np.testing.assert_array_equal(np.bincount(y), np.bincount(labels))


def test_position_step_places_digits_on_a_grid():
    _, _, positions = make_local_global_task(
        "local", n_samples=200, position_step=4, return_positions=True, random_state=0)
    assert set(np.unique(positions)) == {0, 4, 8, 12}


def test_noise_and_rectangular_canvas():
    X, y = make_local_global_task("local", n_samples=50, canvas_size=(12, 20), digit_size=5,
                                  noise=0.3, n_class=3, as_images=True, random_state=0)
    assert X.shape == (50, 12, 20) and set(y) <= {0, 1, 2}
    background = np.sort(X.reshape(50, -1), axis=1)[:, :100]
    assert background.min() > 0 and background.max() <= 0.3
    assert X.max() <= 1


@pytest.mark.parametrize("kwargs, error, match", [
    ({"scale": "medium"}, ValueError, "scale must be one of"),
    ({"n_samples": 0}, ValueError, "n_samples must be a positive int"),
    ({"canvas_size": (16,)}, ValueError, "canvas_size must be an int or a pair"),
    ({"canvas_size": 1}, ValueError, "at least 2"),
    ({"digit_size": 17}, ValueError, "does not fit on a 16x16 canvas"),
    ({"position_step": 0}, ValueError, "position_step must be a positive int"),
    ({"noise": 1.5}, ValueError, "noise must be a float in"),
    ({"noise": True}, ValueError, "noise"),
    ({"n_class": 11}, ValueError, "n_class"),
    ({"as_images": "no"}, TypeError, "as_images must be a bool"),
])
def test_task_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_local_global_task(**kwargs)


def test_fetch_offline_names_the_data_set_and_the_cache(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(_openml, "fetch_openml", offline)
    with pytest.raises(OSError, match=r"Could not download mnist_784 .* data_home="):
        fetch_mnist(data_home=tmp_path)


def test_fetch_refuses_more_samples_than_exist_before_downloading(fake_openml):
    with pytest.raises(ValueError, match="n_samples=70001 exceeds the 70000 images"):
        fetch_fashion_mnist(n_samples=70_001)
    assert fake_openml.calls == []
