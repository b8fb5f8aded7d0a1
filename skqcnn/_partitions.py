"""Bipartitions of the input sites: one vocabulary for every estimator family.

A partition picks subsystem A among the sites of an input geometry; B is the
rest. The geometry is ``(H, W)`` for images, ``(N,)`` for sequences of pixels
and ``(T,)`` for the time steps of a recurrent network. Sites are numbered in
row-major order (the columns of X for images). Every family resolves a
partition here, to a boolean mask over its sites, so a name means the same
sites on the same geometry whichever network analyses it.
"""

import math
import numbers

import numpy as np

NAMES = ("left_right", "up_down", "interleaved", "checkerboard", "block")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _shape_text(geometry, n_sites):
    shapes = [tuple(geometry)] + ([(n_sites,)] if len(geometry) > 1 else [])
    return " or ".join(str(shape) for shape in shapes)


def _first_half(geometry, axis):
    coords = np.indices(geometry).reshape(len(geometry), -1)[axis]
    return coords < math.ceil(geometry[axis] / 2)


def block_mask(geometry, size):
    """A centred block of ``size`` sites (1-D) or ``size x size`` sites (2-D).

    Parameters
    ----------
    geometry : tuple of int
        ``(H, W)`` or ``(N,)``.
    size : int
        Side of the block, in ``[1, min(geometry)]``.

    Returns
    -------
    in_a : ndarray of bool of shape (prod(geometry),)

    Examples
    --------
    >>> from skqcnn._partitions import block_mask
    >>> block_mask((5,), 3).astype(int).tolist()
    [0, 1, 1, 1, 0]
    """
    if not _is_int(size) or not 1 <= size <= min(geometry):
        raise ValueError(
            f"Block size must be an int in [1, {min(geometry)}] for the geometry "
            f"{tuple(geometry)}; got {size!r}."
        )
    mask = np.zeros(geometry, dtype=bool)
    mask[tuple(slice((n - size) // 2, (n - size) // 2 + size) for n in geometry)] = True
    return mask.ravel()


def _named_mask(name, args, geometry):
    n_sites = math.prod(geometry)
    if name == "block":
        if len(args) != 1:
            raise ValueError(
                f"A block partition is ('block', size) with size an int in "
                f"[1, {min(geometry)}]; got {(name, *args)!r}."
            )
        return block_mask(geometry, args[0])
    if args:
        raise ValueError(
            f"The partition {name!r} takes no size: pass the string {name!r}, not "
            f"{(name, *args)!r}. Only ('block', size) takes one."
        )
    if name == "left_right":
        return _first_half(geometry, len(geometry) - 1)
    if name == "up_down":
        if len(geometry) != 2:
            raise ValueError(
                f"'up_down' splits the rows of an image; the geometry {tuple(geometry)} "
                f"is 1-D: use 'left_right'."
            )
        return _first_half(geometry, 0)
    if name == "interleaved":
        return np.arange(n_sites) % 2 == 1
    # checkerboard
    return (np.indices(geometry).sum(axis=0) % 2 == 1).ravel()


def partition_mask(partition, geometry, *, int_suffix=False):
    """Boolean mask over the sites of ``geometry`` marking subsystem A.

    Parameters
    ----------
    partition : str, tuple, int, array-like of bool or array-like of int
        One of:

        - ``"left_right"``: the first ``ceil(W / 2)`` columns of an image,
          the first ``ceil(N / 2)`` sites of a sequence;
        - ``"up_down"``: the first ``ceil(H / 2)`` rows (images only);
        - ``"interleaved"``: every other site in row-major order, the odd
          positions;
        - ``"checkerboard"``: sites whose coordinates sum to an odd number
          (``"interleaved"`` in 1-D);
        - ``("block", size)``: a centred block of ``size`` sites, ``size x
          size`` in 2-D;
        - an int ``k`` (only with ``int_suffix``): the last ``k`` sites;
        - a boolean mask of shape ``geometry`` or ``(n_sites,)``;
        - a 1-D list or array of site indices in A.
    geometry : tuple of int
        ``(H, W)``, ``(N,)`` or ``(T,)``.
    int_suffix : bool, default=False
        Accept an int ``k`` for the last ``k`` sites (the deep RAC's steps).

    Returns
    -------
    in_a : ndarray of bool of shape (n_sites,)

    Raises
    ------
    ValueError
        For an unknown name, wrong arguments to a name, a mask of another
        shape, indices out of range, an integer array that could be either a
        mask or indices, or a side without sites.

    Examples
    --------
    >>> from skqcnn._partitions import partition_mask
    >>> partition_mask("left_right", (5,)).astype(int).tolist()
    [1, 1, 1, 0, 0]
    >>> partition_mask([0, 2], (4,)).astype(int).tolist()
    [1, 0, 1, 0]
    >>> partition_mask(1, (4,), int_suffix=True).astype(int).tolist()
    [0, 0, 0, 1]
    """
    geometry = tuple(int(n) for n in geometry)
    n_sites = math.prod(geometry)
    shapes = _shape_text(geometry, n_sites)
    forms = (
        f"a name from {list(NAMES[:-1])}, ('block', size), "
        + ("an int k (the last k steps), " if int_suffix else "")
        + f"a boolean mask of shape {shapes}, or a 1-D list of site indices"
    )
    if isinstance(partition, str) or (
        isinstance(partition, tuple) and partition and isinstance(partition[0], str)
    ):
        name, *args = (partition,) if isinstance(partition, str) else partition
        if name not in NAMES:
            raise ValueError(f"Unknown partition {partition!r}; use {forms}.")
        mask = _named_mask(name, args, geometry)
    elif _is_int(partition):
        if not int_suffix:
            raise ValueError(
                f"A partition must be {forms}; an int k (the last k steps) is for "
                f"DeepRACClassifier only. Got {partition!r}."
            )
        if not 1 <= partition < n_sites:
            raise ValueError(
                f"An int partition is the number k of last steps in A, 1 <= k < {n_sites}; "
                f"got {partition}."
            )
        mask = np.arange(n_sites) >= n_sites - partition
    else:
        mask = _array_mask(partition, geometry, n_sites, shapes, forms)
    if not mask.any() or mask.all():
        raise ValueError(
            f"The partition leaves subsystem A or B empty: both sides need at least "
            f"one of the {n_sites} sites."
        )
    return mask


def _array_mask(partition, geometry, n_sites, shapes, forms):
    """A boolean mask, or site indices, as a mask over the sites."""
    if isinstance(partition, (set, frozenset, dict)):
        raise ValueError(f"A partition must be {forms}; got the unordered {partition!r}.")
    try:
        array = np.asarray(partition)
    except ValueError:
        array = np.asarray(None)
    if array.dtype == bool:
        if array.shape not in (geometry, (n_sites,)):
            raise ValueError(
                f"A boolean partition mask must have shape {shapes}; got {array.shape}."
            )
        return array.ravel().copy()
    if array.ndim == 1 and all(_is_int(i) for i in array.tolist()):
        if array.size == n_sites and set(array.tolist()) <= {0, 1}:
            raise ValueError(
                f"The integer array {array.tolist()} has one 0/1 entry per site: is it a "
                f"mask or a list of indices? Pass np.asarray(partition).astype(bool) for "
                f"a mask, or np.flatnonzero(partition) for the indices of its ones."
            )
        if array.size and (array.min() < 0 or array.max() >= n_sites):
            raise ValueError(
                f"Partition indices must lie in [0, {n_sites}); got {array.tolist()}."
            )
        mask = np.zeros(n_sites, dtype=bool)
        mask[array.astype(np.int64)] = True
        return mask
    hint = ""
    if array.shape == geometry and np.isin(array, (0, 1)).all():
        hint = " For a 0/1 mask, pass np.asarray(partition).astype(bool)."
    raise ValueError(f"A partition must be {forms}; got {partition!r}.{hint}")
