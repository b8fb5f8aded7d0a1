"""Site layouts: image shapes, quadtree leaf order and padding.

The q-CNN pools neighbouring sites in pairs. For an image this needs a leaf order in
which every pooling step merges spatial neighbours: a quadtree order obtained by
interleaving the bits of the row and column index. Images whose sides are not
powers of two are padded with *constant sites*, which hold the fixed vector
``e_0`` (the constant basis function only): a padded site adds no information
and no physical index to the network state. The padding is centred (``floor(pad
/ 2)`` before, the rest after), so that the root of the tree joins exactly the
halves of the partition vocabulary: the first ``ceil(W / 2)`` columns
(``"left_right"``) or the first ``ceil(H / 2)`` rows (``"up_down"``).
"""

import math

import numpy as np

TOP_SPLITS = ("left_right", "up_down")


def resolve_image_shape(image_shape, n_features):
    """Validate ``image_shape`` against ``n_features``, or infer it.

    Parameters
    ----------
    image_shape : tuple of int or None
        ``(H, W)`` for images, ``(N,)`` for 1-D sequences. None infers a square
        image when ``n_features`` is a perfect square and a 1-D sequence
        otherwise.
    n_features : int

    Returns
    -------
    shape : tuple of int
    """
    if image_shape is None:
        side = math.isqrt(n_features)
        return (side, side) if side * side == n_features else (n_features,)
    try:
        shape = tuple(int(s) for s in image_shape)
    except TypeError:
        raise TypeError(
            f"image_shape must be None or a tuple of 1 or 2 ints, got {image_shape!r}."
        ) from None
    if len(shape) not in (1, 2) or any(s < 1 for s in shape):
        raise ValueError(
            f"image_shape must be (H, W) or (N,) with positive sides, got {image_shape!r}."
        )
    if math.prod(shape) != n_features:
        raise ValueError(
            f"image_shape={shape} holds {math.prod(shape)} pixels but X has "
            f"{n_features} features; pass image_shape with H * W == n_features."
        )
    return shape


def _bits(n):
    """Number of binary digits needed to index ``n`` positions."""
    return max(0, math.ceil(math.log2(n))) if n > 1 else 0


def quadtree_leaf_order(image_shape, top_split="left_right"):
    """Leaf order of the q-CNN tree for an image or a sequence.

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W)`` or ``(N,)``.
    top_split : {"left_right", "up_down"}
        Which halves the last pooling step joins. Ignored for 1-D inputs.

    Returns
    -------
    leaf_features : ndarray of int of shape (2 ** n_levels,)
        Feature index (row-major pixel index, i.e. column of X) held by each
        leaf, or -1 for a padded constant site. A side of ``n`` sites padded to
        ``2**b`` gets ``floor((2**b - n) / 2)`` constant sites before it.
    axes : list of str
        The axis (``"row"`` or ``"col"``) that each pooling level merges,
        bottom level first.

    Examples
    --------
    >>> from skqcnn._layout import quadtree_leaf_order
    >>> order, axes = quadtree_leaf_order((2, 2))
    >>> order.tolist(), axes
    ([0, 2, 1, 3], ['row', 'col'])
    >>> quadtree_leaf_order((5,))[0].tolist()
    [-1, 0, 1, 2, 3, 4, -1, -1]
    """
    if len(image_shape) == 1:
        height, width = 1, image_shape[0]
        row_bits, col_bits = 0, max(1, _bits(width))
        axes_top_down = ["col"] * col_bits
    else:
        height, width = image_shape
        row_bits, col_bits = _bits(height), _bits(width)
        if row_bits + col_bits == 0:
            col_bits = 1
        if top_split not in TOP_SPLITS:
            raise ValueError(f"top_split must be one of {TOP_SPLITS}, got {top_split!r}.")
        axes_top_down = []
        remaining = {"row": row_bits, "col": col_bits}
        axis = "col" if top_split == "left_right" else "row"
        while remaining["row"] + remaining["col"]:
            if remaining[axis] == 0:
                axis = "row" if axis == "col" else "col"
            axes_top_down.append(axis)
            remaining[axis] -= 1
            axis = "row" if axis == "col" else "col"
    axes = axes_top_down[::-1]
    n_leaves = 2 ** len(axes)
    leaves = np.arange(n_leaves)
    rows = np.zeros(n_leaves, dtype=np.int64)
    cols = np.zeros(n_leaves, dtype=np.int64)
    next_bit = {"row": 0, "col": 0}
    for level, axis in enumerate(axes):
        bit = (leaves >> level) & 1
        if axis == "row":
            rows |= bit << next_bit["row"]
        else:
            cols |= bit << next_bit["col"]
        next_bit[axis] += 1
    # Centred padding: the root split of a side of n sites falls after ceil(n / 2).
    rows -= (2**next_bit["row"] - height) // 2
    cols -= (2**next_bit["col"] - width) // 2
    padded = (rows < 0) | (rows >= height) | (cols < 0) | (cols >= width)
    return np.where(padded, -1, rows * width + cols), axes
