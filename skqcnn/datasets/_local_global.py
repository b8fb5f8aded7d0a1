"""Digits on a canvas: a task of short-range or of long-range correlations."""

import numbers

import numpy as np
from sklearn.utils import check_random_state

from ._digits import _check_bool, _check_n_class, load_digits_images
from ._resize import _check_side, area_resize

SCALES = ("local", "global")


def _default_digit_size(scale, side):
    # A local digit spans a quarter of the shorter side, a global one all but
    # an eighth of it, which leaves room for a few pixels of jitter.
    if scale == "local":
        return max(2, side // 4)
    return side - side // 8


def make_local_global_task(scale="local", *, n_samples=1000, canvas_size=16,
                           digit_size=None, position_step=1, noise=0.0, n_class=10,
                           as_images=False,
                           return_positions=False, random_state=None):
    """Classify a digit that is either small or as large as the canvas.

    A synthetic version of the experiment of Levine, Yakira, Cohen & Shashua,
    "Deep learning and quantum entanglement: fundamental connections with
    implications to network design" (ICLR 2018). Their analysis predicts that
    a convolutional network with many channels in its first layers
    ("wide-base") suits tasks whose label depends on correlations between
    nearby pixels, and one with many channels in its last layers
    ("wide-tip") suits tasks that need correlations across the whole input.
    The construction here is skqcnn's own: it follows the idea of the
    paper's experiment (small objects at varying positions against objects
    that span the image), not its protocol, and uses the digits of
    :func:`load_digits_images`, so that the task is built offline in
    milliseconds:

    - ``"local"``: each digit is shrunk to ``digit_size`` (a quarter of the
      canvas side by default) and placed at a uniformly random position; the
      label depends only on a small window whose location varies.
    - ``"global"``: each digit is enlarged to cover most of the canvas (all
      but an eighth of its side by default), with a few pixels of random
      shift; the label depends on pixels far apart.

    Digits are resized by area averaging (:func:`area_resize`). The
    background is 0, or uniform noise in ``[0, noise]``, and the digit is
    laid over it by taking the pixelwise maximum, so all values lie in
    [0, 1]. Each sample uses a different one of the 1797 (for
    ``n_class=10``) source digits in a random order; when ``n_samples``
    exceeds that number, the source digits are reused in fresh random orders,
    at new positions, so that training and test samples drawn from one call
    can share a source digit.

    Parameters
    ----------
    scale : {"local", "global"}, default="local"
        Which task.
    n_samples : int, default=1000
        Number of canvases.
    canvas_size : int or tuple of (int, int), default=16
        Canvas ``(H, W)``; an int gives a square. Sides of at least 2. The
        default 16x16 gives :class:`~skqcnn.QCNNClassifier` a complete tree
        of 8 levels without padding.
    digit_size : int or None, default=None
        Side of the square digit, at most the shorter canvas side. None:
        ``max(2, side // 4)`` for ``"local"`` and ``side - side // 8`` for
        ``"global"``, with ``side`` the shorter canvas side (4 and 14 on the
        default canvas).
    position_step : int, default=1
        Digit corners lie on multiples of this step (in rows and columns),
        chosen uniformly among those that keep the digit on the canvas. A
        step equal to ``digit_size``, on a canvas whose sides are multiples
        of it, places every digit in one cell of a regular grid.
    noise : float, default=0.0
        Background noise amplitude in [0, 1]: every canvas pixel starts
        uniform in ``[0, noise]``.
    n_class : int, default=10
        Use the digits ``0 .. n_class - 1``.
    as_images : bool, default=False
        ``X`` of shape (n_samples, H, W) instead of (n_samples, H * W).
    return_positions : bool, default=False
        Also return the (row, column) of each digit's top-left corner.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of digits, their positions and the noise.

    Returns
    -------
    X : ndarray of shape (n_samples, H * W) or (n_samples, H, W)
        Canvases, float64 in [0, 1].
    y : ndarray of shape (n_samples,)
        The digit's class, int64.
    positions : ndarray of shape (n_samples, 2)
        Only with ``return_positions=True``.

    Examples
    --------
    >>> from skqcnn.datasets import make_local_global_task
    >>> X, y = make_local_global_task("local", n_samples=200, random_state=0)
    >>> X.shape, y.shape
    ((200, 256), (200,))
    >>> X, y, positions = make_local_global_task(
    ...     "global", n_samples=5, as_images=True, return_positions=True, random_state=0)
    >>> X.shape, int(positions.max()) <= 16 - 14
    ((5, 16, 16), True)
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}.")
    n_samples = _check_side(n_samples, "n_samples")
    if isinstance(canvas_size, numbers.Integral) and not isinstance(canvas_size, bool):
        canvas_size = (canvas_size, canvas_size)
    if not isinstance(canvas_size, (tuple, list)) or len(canvas_size) != 2:
        raise ValueError(f"canvas_size must be an int or a pair (H, W), got {canvas_size!r}.")
    height, width = (_check_side(s, "each side of canvas_size") for s in canvas_size)
    side = min(height, width)
    if side < 2:
        raise ValueError(f"canvas_size must have sides of at least 2, got {canvas_size!r}.")
    if digit_size is None:
        digit_size = _default_digit_size(scale, side)
    digit_size = _check_side(digit_size, "digit_size")
    if digit_size > side:
        raise ValueError(
            f"digit_size={digit_size} does not fit on a {height}x{width} canvas."
        )
    position_step = _check_side(position_step, "position_step")
    if (not isinstance(noise, numbers.Real) or isinstance(noise, bool)
            or not 0 <= noise <= 1):
        raise ValueError(f"noise must be a float in [0, 1], got {noise!r}.")
    as_images = _check_bool(as_images, "as_images")
    return_positions = _check_bool(return_positions, "return_positions")
    rng = check_random_state(random_state)

    digits, labels = load_digits_images(n_class=_check_n_class(n_class), as_images=True,
                                        return_X_y=True)
    digits = area_resize(digits, digit_size)
    n_rounds = -(-n_samples // len(digits))
    source = np.concatenate([rng.permutation(len(digits)) for _ in range(n_rounds)])
    source = source[:n_samples]
    positions = position_step * np.column_stack([
        rng.randint(0, (height - digit_size) // position_step + 1, size=n_samples),
        rng.randint(0, (width - digit_size) // position_step + 1, size=n_samples),
    ])
    canvases = noise * rng.random_sample((n_samples, height, width))
    for canvas, index, (row, col) in zip(canvases, source, positions):
        window = canvas[row:row + digit_size, col:col + digit_size]
        np.maximum(window, digits[index], out=window)

    X = canvases if as_images else canvases.reshape(n_samples, -1)
    y = labels[source]
    return (X, y, positions) if return_positions else (X, y)
