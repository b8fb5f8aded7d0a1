"""Deferred matplotlib import, so that ``import skqcnn.plotting`` needs none."""

_INSTALL_HINT = (
    "skqcnn.plotting needs matplotlib, an optional dependency. Install it with "
    'pip install "skqcnn[plot]".'
)


def require_matplotlib():
    """Import matplotlib, or raise an ``ImportError`` that names the fix."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return matplotlib


def resolve_axes(ax):
    """Return ``ax`` after checking its type, or new Axes when it is None.

    pyplot is imported only for a new figure: drawing on Axes the caller made
    leaves pyplot's global state alone.
    """
    require_matplotlib()
    if ax is None:
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError(_INSTALL_HINT) from exc
        _, ax = plt.subplots()
        return ax
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise TypeError(
            f"ax must be a matplotlib Axes or None, got {type(ax).__name__}."
        )
    return ax
