"""Entanglement of skqcnn network states: exact spectra, entropies and bounds."""

from ._mincut import CutBond, min_cut_from_bond_dims, tree_min_cut
from ._spectra import (
    entropy_from_spectrum,
    normalised_spectrum,
    spectrum_from_amplitudes,
)
from ._tree import TreeNetwork, tree_dense_amplitudes, tree_log_norms
from ._tree_entropy import tree_entropies, tree_renyi_entropies, tree_schmidt_spectra

__all__ = [
    "CutBond",
    "TreeNetwork",
    "entropy_from_spectrum",
    "min_cut_from_bond_dims",
    "normalised_spectrum",
    "spectrum_from_amplitudes",
    "tree_dense_amplitudes",
    "tree_entropies",
    "tree_log_norms",
    "tree_min_cut",
    "tree_renyi_entropies",
    "tree_schmidt_spectra",
]
