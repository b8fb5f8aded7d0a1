"""Hyperparameter constraints, declared per estimator and checked in one place.

Each estimator declares ``_parameter_constraints``, a dict from every
constructor parameter to a constraint, in the manner of scikit-learn's table
of the same name; subclasses merge their base's table into theirs.
:func:`validate_parameters` checks them all at the top of ``fit``, before the
data is read. A constraint is a callable ``check(name, value)`` that raises a
``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, wrong
value) naming the parameter, the value and what to pass instead. Checks that
need the data (does ``image_shape`` hold ``n_features``?) are the layout's,
made once the feature count is known.

scikit-learn's own ``validate_parameter_constraints`` is private API whose
messages cannot name a fix, hence this small equivalent.
"""

import numbers

import numpy as np
from sklearn.utils import check_random_state


def _kind_name(kind):
    return "an int" if kind is numbers.Integral else "a real number"


class Interval:
    """A number of ``kind`` in ``[low, high)`` (``low`` open if not ``closed_low``).

    Parameters
    ----------
    kind : {numbers.Integral, numbers.Real}
    low : float
    high : float or None, default=None
        Exclusive upper bound; None for none.
    closed_low : bool, default=True

    Examples
    --------
    >>> import numbers
    >>> from skqcnn._validation import Interval
    >>> Interval(numbers.Integral, 1)("batch_size", 0)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be >= 1, got 0.
    """

    def __init__(self, kind, low, high=None, *, closed_low=True):
        self.kind = kind
        self.low = low
        self.high = high
        self.closed_low = closed_low

    def __call__(self, name, value):
        if not isinstance(value, self.kind) or isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be {_kind_name(self.kind)}, got {value!r}.")
        bound = f"{'>=' if self.closed_low else '>'} {self.low}"
        if self.high is not None:
            bound += f" and < {self.high}"
        too_low = value < self.low if self.closed_low else value <= self.low
        if not np.isfinite(value) or too_low or (self.high is not None and value >= self.high):
            raise ValueError(f"{name} must be {bound}, got {value!r}.")


class Options:
    """One of a fixed set of values.

    Parameters
    ----------
    options : iterable
    """

    def __init__(self, options):
        self.options = tuple(options)

    def __call__(self, name, value):
        try:
            known = value in self.options
        except TypeError:
            known = False
        if not known or isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be one of {self.options}, got {value!r}.")


def boolean(name, value):
    """A Python or NumPy bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}.")


class Optional:
    """None, or a value that ``constraint`` accepts.

    Parameters
    ----------
    constraint : callable
    """

    def __init__(self, constraint):
        self.constraint = constraint

    def __call__(self, name, value):
        if value is not None:
            self.constraint(name, value)


def positive_int_tuple(name, value, lengths, form):
    """A tuple or list of ``len(value) in lengths`` positive ints.

    Parameters
    ----------
    name : str
    value : object
    lengths : tuple of int
    form : str
        How the message writes the expected value, e.g. ``"(T, F)"``.
    """
    is_ints = isinstance(value, (tuple, list)) and all(
        isinstance(s, numbers.Integral) and not isinstance(s, (bool, np.bool_)) for s in value
    )
    if not is_ints:
        raise TypeError(f"{name} must be None or {form} of ints, got {value!r}.")
    if len(value) not in lengths or any(s < 1 for s in value):
        raise ValueError(f"{name} must be {form} with positive entries, got {value!r}.")


def image_shape(name, value):
    """None, ``(H, W)`` or ``(N,)``; whether it holds the features is the layout's check."""
    if value is not None:
        positive_int_tuple(name, value, (1, 2), "(H, W) or (N,)")


def random_state(name, value):
    """Anything :func:`sklearn.utils.check_random_state` accepts."""
    check_random_state(value)


def validate_parameters(estimator):
    """Check every constructor parameter of ``estimator`` against its table.

    Parameters
    ----------
    estimator : estimator with ``_parameter_constraints``

    Raises
    ------
    TypeError, ValueError
        From the first constraint that fails, in signature order.
    """
    constraints = type(estimator)._parameter_constraints
    for name, value in estimator.get_params(deep=False).items():
        constraints[name](name, value)
