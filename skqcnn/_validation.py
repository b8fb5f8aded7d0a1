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
    """A finite number of ``kind`` in ``[low, high)`` (``low`` open if not ``closed_low``).

    Parameters
    ----------
    kind : {numbers.Integral, numbers.Real}
    low : float
    high : float or None, default=None
        Exclusive upper bound; None for none.
    closed_low : bool, default=True
    allow_none : bool, default=False
        Accept None too.

    Examples
    --------
    >>> import numbers
    >>> from skqcnn._validation import Interval
    >>> Interval(numbers.Integral, 1)("batch_size", 0)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be a positive int, got 0.
    """

    def __init__(self, kind, low, high=None, *, closed_low=True, allow_none=False):
        self.kind = kind
        self.low = low
        self.high = high
        self.closed_low = closed_low
        self.allow_none = allow_none

    def _describe(self):
        if self.kind is numbers.Integral and self.closed_low and self.high is None:
            if self.low == 1:
                return "a positive int"
            if self.low == 0:
                return "a non-negative int"
        bound = f"{'>=' if self.closed_low else '>'} {self.low}"
        if self.high is not None:
            bound += f" and < {self.high}"
        return f"{_kind_name(self.kind)} {bound}"

    def __call__(self, name, value):
        if value is None and self.allow_none:
            return
        expected = ("None or " if self.allow_none else "") + self._describe()
        if not isinstance(value, self.kind) or isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be {expected}, got {value!r}.")
        # Python ints are finite, and may be too large for numpy's isfinite.
        if not isinstance(value, numbers.Integral) and not np.isfinite(value):
            raise ValueError(f"{name} must be finite: {expected}, got {value!r}.")
        too_low = value < self.low if self.closed_low else value <= self.low
        if too_low or (self.high is not None and value >= self.high):
            raise ValueError(f"{name} must be {expected}, got {value!r}.")


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
            known = bool(value in self.options)
        except (TypeError, ValueError):
            # Unhashable values, or arrays whose comparison is ambiguous.
            known = False
        if not known or isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be one of {self.options}, got {value!r}.")


def boolean(name, value):
    """A Python or NumPy bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}.")


class Shape:
    """None, or a tuple or list of positive ints whose length is one of ``lengths``.

    Whether the shape holds the data's features is checked by the layout,
    once the data is known.

    Parameters
    ----------
    lengths : tuple of int
    form : str
        How messages write the expected value, e.g. ``"(T, F)"``.
    why_positive : str, default=""
        Appended to the message for a side below 1.

    Examples
    --------
    >>> from skqcnn._validation import Shape
    >>> Shape((2,), "(T, F)")("sequence_shape", (3.5, 3))
    Traceback (most recent call last):
    ...
    TypeError: sequence_shape must be None or (T, F) of ints, got (3.5, 3).
    """

    def __init__(self, lengths, form, why_positive=""):
        self.lengths = lengths
        self.form = form
        self.why_positive = why_positive

    def __call__(self, name, value):
        if value is None:
            return
        is_ints = isinstance(value, (tuple, list)) and all(
            isinstance(s, numbers.Integral) and not isinstance(s, (bool, np.bool_))
            for s in value
        )
        if not is_ints:
            raise TypeError(f"{name} must be None or {self.form} of ints, got {value!r}.")
        if len(value) not in self.lengths or any(s < 1 for s in value):
            raise ValueError(
                f"{name} must be {self.form} with positive entries{self.why_positive}, "
                f"got {value!r}."
            )


image_shape = Shape((1, 2), "(H, W) or (N,)")


def random_state(name, value):
    """Anything :func:`sklearn.utils.check_random_state` accepts."""
    try:
        check_random_state(value)
    except ValueError as error:
        # numpy's message ("Seed must be between ...") does not name the parameter.
        raise ValueError(
            f"{name} must be None, an int in [0, 2**32 - 1] or a numpy.random.RandomState, "
            f"got {value!r} ({error})"
        ) from None


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
