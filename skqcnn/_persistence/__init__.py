"""Save and load fitted estimators without pickle.

A saved estimator is one safetensors file; :mod:`._format` describes the
file and its digests, :mod:`._codec` the tagged JSON of its payload, and
:mod:`._estimator` what of an estimator goes into it and how it comes back.
"""

from ._estimator import load, save

__all__ = ["load", "save"]
