"""Bipartitions of the input sites: names, masks and index arrays.

A partition picks subsystem A among the features (columns of X); B is the rest.
Estimators resolve it to a boolean mask over features, then map that mask onto
their own network sites.
"""

import numbers

import numpy as np


def resolve_partition(partition, image_shape, named):
    """Boolean mask over features marking subsystem A.

    Parameters
    ----------
    partition : str, tuple, array-like of bool or array-like of int
        A name from ``named`` (a string, or a tuple whose first element is a
        name, such as ``("block", 3)``); a boolean mask of shape
        ``image_shape`` or ``(n_features,)``; or an array of feature indices
        in A.
    image_shape : tuple of int
        Shape of the input image or sequence; ``prod(image_shape)`` features.
    named : dict
        Maps a name to a function returning the mask; for a tuple partition
        the function gets the remaining elements as arguments.

    Returns
    -------
    in_a : ndarray of bool of shape (n_features,)

    Examples
    --------
    >>> from skqcnn._partitions import resolve_partition
    >>> resolve_partition([0, 2], (4,), {}).tolist()
    [True, False, True, False]
    """
    n_features = int(np.prod(image_shape))
    names = sorted(named)
    if isinstance(partition, str) or (
        isinstance(partition, tuple) and partition and isinstance(partition[0], str)
    ):
        name, *args = (partition,) if isinstance(partition, str) else partition
        if name not in named:
            raise ValueError(
                f"Unknown partition {partition!r}; use one of {names}, a boolean mask "
                f"of shape {tuple(image_shape)} or ({n_features},), or feature indices."
            )
        mask = np.asarray(named[name](*args), dtype=bool).ravel()
    else:
        array = np.asarray(partition)
        if array.dtype == bool:
            if array.shape not in (tuple(image_shape), (n_features,)):
                raise ValueError(
                    f"A boolean partition mask must have shape {tuple(image_shape)} or "
                    f"({n_features},); got {array.shape}."
                )
            mask = array.ravel()
        elif array.ndim == 1 and all(
            isinstance(i, numbers.Integral) for i in array.tolist()
        ):
            if array.size and (array.min() < 0 or array.max() >= n_features):
                raise ValueError(
                    f"Partition indices must lie in [0, {n_features}); got {array.tolist()}."
                )
            mask = np.zeros(n_features, dtype=bool)
            mask[array.astype(np.int64)] = True
        else:
            raise ValueError(
                f"A partition must be a name from {names}, a boolean mask or a 1-D "
                f"array of feature indices; got {partition!r}."
            )
    if not mask.any() or mask.all():
        raise ValueError(
            "The partition leaves subsystem A or B empty: both sides need at least "
            "one site."
        )
    return mask


def checkerboard_mask(image_shape):
    """Sites whose coordinates sum to an odd number."""
    grids = np.indices(image_shape)
    return (grids.sum(axis=0) % 2 == 1).ravel()


def block_mask(image_shape, size):
    """A centred block of ``size`` sites (1-D) or ``size x size`` sites (2-D)."""
    if not isinstance(size, numbers.Integral) or not 1 <= size <= min(image_shape):
        raise ValueError(
            f"Block size must be an int in [1, {min(image_shape)}] for image_shape "
            f"{tuple(image_shape)}; got {size!r}."
        )
    mask = np.zeros(image_shape, dtype=bool)
    window = tuple(slice((n - size) // 2, (n - size) // 2 + size) for n in image_shape)
    mask[window] = True
    return mask.ravel()
