"""The one check every callback's ``load_state_dict`` makes."""


def check_state_keys(callback, state, expected):
    """Raise unless ``state`` is a dict with exactly the keys ``expected``.

    Parameters
    ----------
    callback : skorch.callbacks.Callback
        Named in the message.
    state : object
        What ``load_state_dict`` received.
    expected : set of str
    """
    name = type(callback).__name__
    if not isinstance(state, dict):
        raise TypeError(f"{name}.load_state_dict takes a dict, got {type(state).__name__}.")
    unknown = sorted(set(state) - expected, key=str)
    missing = sorted(expected - set(state))
    if unknown or missing:
        raise ValueError(
            f"{name}.load_state_dict got the keys {sorted(state, key=str)}; it takes exactly "
            f"{sorted(expected)} (unknown: {unknown}, missing: {missing})."
        )
