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


def same_padding(kernel_size):
    """Left and right padding that keep a stride-1 map the same size.

    The split matches ``padding="same"`` in :func:`torch.nn.functional.conv1d`:
    the output at position ``t`` sees the inputs
    ``t - (K - 1) // 2, ..., t + K // 2``. Used by the overlapping ConvAC,
    whose padded positions hold the constant state ``e_0``.

    Examples
    --------
    >>> from skqcnn._layout import same_padding
    >>> same_padding(3), same_padding(4)
    ((1, 1), (1, 2))
    """
    return (kernel_size - 1) // 2, kernel_size // 2


def convac_map_shapes(image_shape, channels, kernel_size, pooling):
    """Map shape seen by each layer of an overlapping ConvAC, validating sizes.

    Every layer keeps the size of its input (stride 1, ``padding="same"``
    with the constant state ``e_0``, so a kernel may be larger than a map:
    the extra window positions read ``e_0``). Product pooling over ``P``
    (``P x P``) blocks then maps a side ``n`` to ``ceil(n / P)``: where ``P``
    does not divide ``n``, the last block is clipped to the positions that
    exist, which is the same as padding the map with the all-ones vector,
    the identity of the same-channel product (a fixed vector, so the network
    stays a tensor network over the real sites).

    Parameters
    ----------
    image_shape : tuple of int
        ``(N,)`` or ``(H, W)``.
    channels : sequence of int
        Non-constant channels per layer (only the number of layers and their
        positivity matter here).
    kernel_size : int
        Window size ``K``.
    pooling : int or None
        Pooling window ``P`` after each layer.

    Returns
    -------
    shapes : list of tuple of int
        ``len(channels) + 1`` shapes: the input map of every layer, then the
        map that the global pooling multiplies over.

    Raises
    ------
    ValueError
        If the image is not 1D or 2D, or a size is not positive.

    Examples
    --------
    >>> from skqcnn._layout import convac_map_shapes
    >>> convac_map_shapes((8, 8), (4, 4), kernel_size=3, pooling=2)
    [(8, 8), (4, 4), (2, 2)]
    >>> convac_map_shapes((7, 5), (4, 4), kernel_size=3, pooling=2)
    [(7, 5), (4, 3), (2, 2)]
    """
    shape = tuple(int(n) for n in image_shape)
    if len(shape) not in (1, 2) or min(shape) < 1:
        raise ValueError(f"image_shape must be (N,) or (H, W), got {image_shape!r}.")
    if len(channels) < 1 or min(channels) < 1:
        raise ValueError(
            f"channels must be a non-empty sequence of positive ints, got {channels!r}."
        )
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel_size!r}.")
    if pooling is not None and pooling < 1:
        raise ValueError(f"pooling must be None or >= 1, got {pooling!r}.")
    shapes = [shape]
    for _ in channels:
        if pooling is not None:
            shape = tuple(-(-n // pooling) for n in shape)
        shapes.append(shape)
    return shapes


def convac_default_depth(image_shape, pooling):
    """Number of ConvAC layers by the default rule.

    With pooling, layers are added until every side of the last map is at
    most 2 (at least one layer): ``L = max(1, ceil(log_P(max_side / 2)))``,
    so the global product multiplies at most 4 positions (2 in 1-D) however
    large the image. Without pooling the maps never shrink and ``L = 2``.

    Parameters
    ----------
    image_shape : tuple of int
        ``(N,)`` or ``(H, W)``.
    pooling : int or None

    Returns
    -------
    n_layers : int

    Examples
    --------
    >>> from skqcnn._layout import convac_default_depth
    >>> [convac_default_depth((n, n), 2) for n in (3, 8, 16, 28, 32)]
    [1, 2, 3, 4, 4]
    >>> convac_default_depth((12,), None)
    2
    """
    if pooling is None or pooling < 2:
        return 2
    side, n_layers = max(image_shape), 0
    while side > 2 or n_layers == 0:
        side = -(-side // pooling)
        n_layers += 1
    return n_layers
