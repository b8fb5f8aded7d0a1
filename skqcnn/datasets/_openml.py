"""MNIST and Fashion-MNIST from OpenML, optionally resized to 16x16."""

import importlib.util

import numpy as np
from sklearn.datasets import fetch_openml
from sklearn.utils import check_random_state

from ._digits import _check_bool, _image_dataset
from ._resize import _check_side, area_resize

_NATIVE_SIDE = 28
# Images of MNIST and of Fashion-MNIST on OpenML: a larger n_samples is
# refused before the download.
_N_IMAGES = 70_000

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def _arff_parser():
    """pandas parses OpenML's dense ARFF files far faster; without it, liac-arff."""
    return "pandas" if importlib.util.find_spec("pandas") is not None else "liac-arff"


def _fetch_28x28(name, version, target_names, title, *, image_size, n_samples,
                 random_state, as_images, data_home, return_X_y):
    if image_size is not None:
        image_size = _check_side(image_size, "image_size")
    if n_samples is not None:
        n_samples = _check_side(n_samples, "n_samples")
    as_images = _check_bool(as_images, "as_images")
    return_X_y = _check_bool(return_X_y, "return_X_y")

    if n_samples is not None and n_samples > _N_IMAGES:
        raise ValueError(f"n_samples={n_samples} exceeds the {_N_IMAGES} images of {name}.")
    try:
        X, y = fetch_openml(name, version=version, data_home=data_home, as_frame=False,
                            return_X_y=True, parser=_arff_parser())
    except OSError as error:
        # Offline, scikit-learn's own error names neither the data set nor the cache.
        raise OSError(
            f"Could not download {name} (version {version}) from OpenML: {error}. Without "
            f"a network, copy scikit-learn's OpenML cache of it from a machine that has "
            f"one into data_home={data_home!r} (None: sklearn.datasets.get_data_home())."
        ) from error
    n_total = len(y)
    if n_samples is not None:
        if n_samples > n_total:
            raise ValueError(f"n_samples={n_samples} exceeds the {n_total} images of {name}.")
        # Sorted, so that a subset keeps OpenML's row order.
        rows = np.sort(check_random_state(random_state).choice(n_total, n_samples,
                                                                replace=False))
        X, y = X[rows], y[rows]
    images = np.asarray(X, dtype=np.float32).reshape(-1, _NATIVE_SIDE, _NATIVE_SIDE) / 255
    side = _NATIVE_SIDE if image_size is None else image_size
    if side != _NATIVE_SIDE:
        images = area_resize(images, side)
    target = np.asarray(y).astype(np.int64)
    resized = ("at the native 28x28" if side == _NATIVE_SIDE
               else f"resized from 28x28 to {side}x{side} by area averaging")
    return _image_dataset(
        images, target, target_names,
        f"{title}: {len(images)} of the {n_total} images of OpenML dataset "
        f"{name!r} (version {version}), {resized}, with grey levels divided by "
        "255 so that values lie in [0, 1].",
        as_images=as_images, return_X_y=return_X_y,
    )


_COMMON_DOC = """
    Parameters
    ----------
    image_size : int or None, default=16
        Side of the returned square images. 16 is the resolution of the q-CNN
        experiments of Anagiannis & Cheng; None keeps the native 28x28.
        Resizing averages over each output pixel's footprint
        (:func:`area_resize`), which anti-aliases and preserves every image's
        mean intensity.
    n_samples : int or None, default=None
        Keep a random subset of this many images (drawn without replacement,
        kept in OpenML's row order); None keeps all 70000.
    random_state : int, RandomState instance or None, default=None
        Draws the subset when ``n_samples`` is given.
    as_images : bool, default=False
        False: ``data`` of shape (n, image_size ** 2). True: (n, side, side).
    data_home : str, path or None, default=None
        Cache folder of :func:`sklearn.datasets.fetch_openml` (None means
        scikit-learn's default, ``~/scikit_learn_data``). The first call
        downloads the data set; later calls read the cache. pandas, when
        installed, parses the download quickly; without it the slower
        liac-arff parser is used.
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (flat or images, following ``as_images``), ``images``,
        ``target`` (int64 labels 0-9), ``target_names`` and ``DESCR``.
        Pixel values are float32 (70000 images at 28x28 take 220 MB in
        float32), in [0, 1].
    (X, y) : tuple of ndarray
        With ``return_X_y=True``.
"""


def fetch_mnist(*, image_size=16, n_samples=None, random_state=None, as_images=False,
                data_home=None, return_X_y=False):
    return _fetch_28x28("mnist_784", 1, np.arange(10), "MNIST", image_size=image_size,
                        n_samples=n_samples, random_state=random_state,
                        as_images=as_images, data_home=data_home, return_X_y=return_X_y)


def fetch_fashion_mnist(*, image_size=16, n_samples=None, random_state=None,
                        as_images=False, data_home=None, return_X_y=False):
    return _fetch_28x28("Fashion-MNIST", 1, FASHION_MNIST_CLASSES, "Fashion-MNIST",
                        image_size=image_size, n_samples=n_samples,
                        random_state=random_state, as_images=as_images,
                        data_home=data_home, return_X_y=return_X_y)


fetch_mnist.__doc__ = f"""Fetch MNIST (OpenML ``mnist_784``, version 1), scaled to [0, 1].

    Handwritten digits, 70000 grey-level images of 28x28 pixels, downloaded
    once through :func:`sklearn.datasets.fetch_openml` and cached.
{_COMMON_DOC}
    Examples
    --------
    >>> from skqcnn.datasets import fetch_mnist
    >>> X, y = fetch_mnist(n_samples=1000, random_state=0,
    ...                    return_X_y=True)  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (1000, 256)
    """

fetch_fashion_mnist.__doc__ = f"""Fetch Fashion-MNIST (OpenML ``Fashion-MNIST``, version 1), in [0, 1].

    Zalando's article images, 70000 grey-level images of 28x28 pixels in ten
    clothing classes (``target_names``), downloaded once through
    :func:`sklearn.datasets.fetch_openml` and cached.
{_COMMON_DOC}
    Examples
    --------
    >>> from skqcnn.datasets import fetch_fashion_mnist
    >>> bunch = fetch_fashion_mnist(image_size=None, as_images=True)  # doctest: +SKIP
    >>> bunch.images.shape, bunch.target_names[0]  # doctest: +SKIP
    ((70000, 28, 28), 'T-shirt/top')
    """
