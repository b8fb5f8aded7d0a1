"""Anti-aliased image resizing by area averaging, in numpy."""

import numbers

import numpy as np


def _area_matrix(n_in, n_out):
    """Resampling matrix ``R`` of shape (n_out, n_in) for one image axis.

    Output cell ``i`` covers ``[i n_in / n_out, (i + 1) n_in / n_out)`` in input
    pixel units; ``R[i, j]`` is the fraction of that cell that input pixel ``j``
    covers. Working in units of ``1 / n_out`` of a pixel makes every overlap an
    integer, so ``n_in == n_out`` gives exactly the identity; the rows sum to 1
    up to the rounding of the divisions (``area_resize`` clips for that).
    """
    out_lo = np.arange(n_out)[:, None] * n_in
    in_lo = np.arange(n_in)[None, :] * n_out
    overlap = np.minimum(out_lo + n_in, in_lo + n_out) - np.maximum(out_lo, in_lo)
    return np.clip(overlap, 0, None) / n_in


def _check_side(value, name):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    return int(value)


def area_resize(images, shape):
    """Resize images by area averaging (a box filter with fractional overlaps).

    Every output pixel is the average of the input image over the output
    pixel's footprint, input pixels that straddle its border counting by the
    fraction they overlap. This is the anti-aliased "area" (box) resampling of
    image libraries, written as two small matrices: ``R_h @ image @ R_w.T``.
    Downsampling therefore preserves each image's mean intensity (up to
    floating-point rounding), maps a constant image to the same constant, and
    keeps values inside the input range; resizing to the same shape is the
    identity. Upsampling by an integer factor repeats pixels.

    Parameters
    ----------
    images : array-like of shape (..., H, W)
        One image or a stack of images; the last two axes are resized.
    shape : int or tuple of (int, int)
        Output ``(h, w)``; an int gives a square ``(shape, shape)``.

    Returns
    -------
    resized : ndarray of shape (..., h, w)
        Floating point: the input's dtype if it is floating, else float64.

    Examples
    --------
    >>> import numpy as np
    >>> from skqcnn.datasets import area_resize
    >>> image = np.arange(16.0).reshape(4, 4)
    >>> area_resize(image, 2)
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    >>> bool(np.isclose(area_resize(image, 3).mean(), image.mean()))
    True
    """
    images = np.asarray(images)
    if images.ndim < 2 or 0 in images.shape[-2:]:
        raise ValueError(
            f"images must have at least 2 dimensions (..., H, W) with H, W >= 1, got shape "
            f"{images.shape}."
        )
    if images.dtype.kind not in "biuf":
        raise TypeError(f"images must be real numbers or booleans, got dtype {images.dtype}.")
    if not np.issubdtype(images.dtype, np.floating):
        images = images.astype(np.float64)
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape, shape)
    if not isinstance(shape, (tuple, list)) or len(shape) != 2:
        raise ValueError(f"shape must be an int or a pair (h, w), got {shape!r}.")
    h, w = (_check_side(side, "each side of shape") for side in shape)
    rows = _area_matrix(images.shape[-2], h).astype(images.dtype)
    cols = _area_matrix(images.shape[-1], w).astype(images.dtype)
    resized = rows @ images @ cols.T
    # Every output pixel is an average of its image: rounding of the weights
    # must not take it outside the image's range (1.0000002 for all-1 images).
    axes = (-2, -1)
    return np.clip(resized, images.min(axis=axes, keepdims=True),
                   images.max(axis=axes, keepdims=True))
