"""scikit-learn's 8x8 digits, scaled to [0, 1], and the split the benchmarks use."""

import numbers

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch

# load_digits counts the pixels of a 4x4 block of a 32x32 bitmap: 0..16.
_DIGITS_MAX = 16.0


def _check_n_class(n_class):
    if (not isinstance(n_class, numbers.Integral) or isinstance(n_class, bool)
            or not 2 <= n_class <= 10):
        raise ValueError(f"n_class must be an int between 2 and 10, got {n_class!r}.")
    return int(n_class)


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}.")
    return bool(value)


def load_digits_images(*, n_class=10, as_images=False, return_X_y=False):
    """Load scikit-learn's 8x8 digits with pixel values scaled to [0, 1].

    The images of :func:`sklearn.datasets.load_digits` (1797 images, shipped
    with scikit-learn, so no download) hold block counts from 0 to 16; here
    they are divided by 16.

    Parameters
    ----------
    n_class : int, default=10
        Keep the digits ``0 .. n_class - 1`` (between 2 and 10).
    as_images : bool, default=False
        False: ``data`` (and ``X``) of shape (n_samples, 64), row-major.
        True: of shape (n_samples, 8, 8).
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (flat or images, following ``as_images``), ``images``
        (n_samples, 8, 8), ``target`` (int), ``target_names`` and ``DESCR``
        (a one-paragraph description).
    (X, y) : tuple of ndarray
        With ``return_X_y=True``.

    Examples
    --------
    >>> from skqcnn.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> X.shape, float(X.min()), float(X.max())
    ((1797, 64), 0.0, 1.0)
    >>> load_digits_images(n_class=2, as_images=True).data.shape
    (360, 8, 8)
    """
    n_class = _check_n_class(n_class)
    as_images = _check_bool(as_images, "as_images")
    return_X_y = _check_bool(return_X_y, "return_X_y")
    digits = load_digits(n_class=n_class)
    images = digits.images / _DIGITS_MAX
    target = digits.target.astype(np.int64)
    return _image_dataset(
        images, target, np.arange(n_class),
        f"scikit-learn's optical digits (load_digits), classes 0-{n_class - 1}: "
        f"{len(images)} images of 8x8 pixels, each the count of ink pixels in a "
        "4x4 block of a 32x32 bitmap, divided by 16 so that values lie in [0, 1].",
        as_images=as_images, return_X_y=return_X_y,
    )


def _image_dataset(images, target, target_names, description, *, as_images, return_X_y):
    """What the image loaders return: ``(data, target)`` or a Bunch.

    ``data`` is ``images`` itself with ``as_images``, else flattened rows.
    """
    data = images if as_images else images.reshape(len(images), -1)
    if return_X_y:
        return data, target
    return Bunch(data=data, images=images, target=target,
                 target_names=np.asarray(target_names), DESCR=description)


def load_digits_split(*, n_class=10, test_size=0.25, random_state=0, as_images=False):
    """The stratified train/test split of the digits used by skqcnn's benchmarks.

    :func:`load_digits_images` split by
    :func:`sklearn.model_selection.train_test_split` with ``stratify=y``. The
    defaults (a quarter held out, ``random_state=0``: 1347 training and 450
    test images) are the split behind the accuracies quoted in the README and
    printed by ``benchmarks/``.

    Parameters
    ----------
    n_class : int, default=10
        Keep the digits ``0 .. n_class - 1``.
    test_size : float or int, default=0.25
        Fraction (or number) of images held out, as in ``train_test_split``.
    random_state : int, RandomState instance or None, default=0
        Seeds the shuffle before splitting.
    as_images : bool, default=False
        Images of shape (8, 8) instead of flat rows of 64 values.

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarray
        Inputs (flat or images, following ``as_images``) and int labels.

    Examples
    --------
    >>> from skqcnn.datasets import load_digits_split
    >>> X_train, X_test, y_train, y_test = load_digits_split()
    >>> X_train.shape, X_test.shape
    ((1347, 64), (450, 64))
    """
    X, y = load_digits_images(n_class=n_class, as_images=as_images, return_X_y=True)
    return train_test_split(X, y, test_size=test_size, stratify=y,
                            random_state=random_state)
