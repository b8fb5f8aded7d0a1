"""Channel schedules: how many channels each layer of a network gets."""

import numbers

SCHEDULES = ("linear", "constant", "wide_base", "wide_tip")


def _positive(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def check_channels(name, channels):
    """Check the form of a channels value; its length is checked against the layers later.

    Parameters
    ----------
    name : str
        Parameter name used in error messages.
    channels : object
        As in :func:`resolve_channels`.

    Raises
    ------
    TypeError, ValueError
        When ``channels`` is not a positive int, a non-empty tuple of positive
        ints or a known ``(schedule, width)``.
    """
    if _positive(channels):
        return
    if isinstance(channels, numbers.Integral) and not isinstance(channels, bool):
        raise ValueError(f"{name} must be a positive int, got {channels!r}.")
    if not isinstance(channels, (tuple, list)):
        raise TypeError(
            f"{name} must be an int, a tuple of ints or (schedule, width), got {channels!r}."
        )
    if len(channels) == 0:
        raise ValueError(f"{name} has 0 entries; give one positive int per layer or a "
                         f"named schedule such as ('constant', 8).")
    if isinstance(channels[0], str):
        if len(channels) != 2:
            raise TypeError(f"{name} schedule must be (schedule, width), got {channels!r}.")
        kind, width = channels
        if kind not in SCHEDULES:
            raise ValueError(
                f"Unknown {name} schedule {kind!r}; use one of {SCHEDULES} or a "
                f"tuple of positive ints, one per layer."
            )
        if not _positive(width):
            raise ValueError(f"{name}={channels!r}: the width must be a positive int.")
        return
    if not all(_positive(c) for c in channels):
        raise ValueError(f"{name} must hold positive ints, got {channels!r}.")


def resolve_channels(channels, n_layers, name="channels"):
    """Turn a tuple or a named schedule into one positive int per layer.

    Parameters
    ----------
    channels : int, tuple of int, or (str, int)
        - a tuple of ``n_layers`` positive ints, used as given;
        - a single int: the same count in every layer;
        - ``("linear", d)``: ``d_l = d * (l + 1)`` for ``l = 1..L``, the
          q-CNN paper's schedule;
        - ``("constant", d)``: ``d_l = d``;
        - ``("wide_base", r)``: ``r`` channels in the first layer, halved at
          every layer above (at least 2), after Levine et al. 2018;
        - ``("wide_tip", r)``: the mirror image, ``r`` channels at the top.
    n_layers : int
        Number of layers L.
    name : str, default="channels"
        Parameter name used in error messages.

    Returns
    -------
    channels : tuple of int

    Examples
    --------
    >>> from skqcnn._schedules import resolve_channels
    >>> resolve_channels(("linear", 4), 3)
    (8, 12, 16)
    >>> resolve_channels(("wide_tip", 16), 3)
    (4, 8, 16)
    """
    check_channels(name, channels)
    if _positive(channels):
        return (int(channels),) * n_layers
    if isinstance(channels[0], str):
        kind, width = channels
        levels = range(1, n_layers + 1)
        if kind == "linear":
            return tuple(width * (l + 1) for l in levels)
        if kind == "constant":
            return (width,) * n_layers
        halvings = [l - 1 for l in levels] if kind == "wide_base" else [n_layers - l for l in levels]
        return tuple(max(2, width >> h) for h in halvings)
    if len(channels) != n_layers:
        raise ValueError(
            f"{name} has {len(channels)} entries but the network has {n_layers} "
            f"layers; pass {n_layers} ints or a named schedule such as ('linear', 8)."
        )
    return tuple(int(c) for c in channels)


def layer_count(channels, n_layers):
    """Layers a ``channels`` value implies: its length when it lists them.

    Parameters
    ----------
    channels : int, tuple of int, or (str, int)
        As in :func:`resolve_channels`, already checked by :func:`check_channels`.
    n_layers : int
        The count for an int or a named schedule.

    Returns
    -------
    n_layers : int

    Examples
    --------
    >>> from skqcnn._schedules import layer_count
    >>> layer_count((4, 8, 8), 2), layer_count(("wide_tip", 8), 2)
    (3, 2)
    """
    if isinstance(channels, (tuple, list)) and not isinstance(channels[0], str):
        return len(channels)
    return n_layers
