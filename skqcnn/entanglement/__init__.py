"""Entanglement of skqcnn network states: exact spectra, entropies and bounds.

The tree engine (q-CNN states) needs only numpy, scipy and opt_einsum and works on folded
weights. Tools for networks that re-use their inputs (overlapping ConvAC, deep
RAC) evaluate torch networks on one-hot configurations; they are imported on
first use, so that importing this package does not load torch.
"""

import importlib

from ._mincut import CutBond, min_cut_from_bond_dims, tree_min_cut
from ._mps import mps_block_spectra
from ._spectra import (
    entropy_from_spectrum,
    normalised_spectrum,
    spectrum_from_amplitudes,
)
from ._tree import TreeNetwork, tree_dense_amplitudes, tree_log_norms
from ._tree_entropy import (
    ContractionTooLarge,
    tree_entropies,
    tree_renyi_entropies,
    tree_schmidt_spectra,
)

_NEEDS_TORCH = {
    "Renyi2Estimate": "._monte_carlo",
    "convac_rank_bound": "._reused_input_mincut",
    "enumerate_amplitudes": "._enumeration",
    "network_log_amplitudes": "._monte_carlo",
    "rac_mps_entropies": "._mps",
    "rac_rank_bound": "._reused_input_mincut",
    "rac_rank_lower_bound": "._reused_input_mincut",
    "rac_to_mps": "._mps",
    "renyi2_monte_carlo": "._monte_carlo",
}

__all__ = sorted([
    "ContractionTooLarge",
    "CutBond",
    "TreeNetwork",
    "entropy_from_spectrum",
    "min_cut_from_bond_dims",
    "mps_block_spectra",
    "normalised_spectrum",
    "spectrum_from_amplitudes",
    "tree_dense_amplitudes",
    "tree_entropies",
    "tree_log_norms",
    "tree_min_cut",
    "tree_renyi_entropies",
    "tree_schmidt_spectra",
    *_NEEDS_TORCH,
])


def __getattr__(name):
    if name in _NEEDS_TORCH:
        return getattr(importlib.import_module(_NEEDS_TORCH[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
