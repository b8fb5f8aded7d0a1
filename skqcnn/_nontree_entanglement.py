"""Exact entanglement of network states that are not trees: ConvAC and deep RAC.

These networks re-use their inputs, so their states have no tree form to
contract. Exact spectra enumerate every one-hot configuration while ``M**N``
stays at most ``2**22``; a family with a faster exact form (the one-layer RAC,
a matrix product state) supplies it through ``_fast_spectra``. Rank bounds come
from the minimum cut of the duplicated tree. The public methods, and Monte
Carlo beyond enumeration, live in :class:`~skqcnn._base.NetworkClassifierBase`.
"""

from ._base import ExactUnavailable
from .entanglement._enumeration import enumerate_amplitudes
from .entanglement._mincut import CutBond
from .entanglement._spectra import MAX_AMPLITUDES, spectrum_from_amplitudes


def duplicated_cut_bonds(counts):
    """The ``{label: (dim, count)}`` cut of the duplicated tree as CutBonds.

    Parameters
    ----------
    counts : dict
        As returned by the duplicated-tree bounds with ``return_cut=True``:
        ``"sites"`` for physical legs, ``"layer l"`` for bonds of layer ``l``.

    Returns
    -------
    cut : list of CutBond
        ``count`` bonds per entry, ``leg="leaf"`` (level 0) or ``"layer"``,
        ``position`` None: the dynamic programme counts bonds, it does not
        locate them.

    Examples
    --------
    >>> from skqcnn._nontree_entanglement import duplicated_cut_bonds
    >>> duplicated_cut_bonds({"layer 2": (4, 1)})
    [CutBond(level=2, position=None, leg='layer', dim=4)]
    """
    cut = []
    for label, (dim, count) in counts.items():
        level = 0 if label == "sites" else int(label.split()[1])
        leg = "leaf" if level == 0 else "layer"
        cut += [CutBond(level=level, position=None, leg=leg, dim=int(dim))] * int(count)
    return cut


class AmplitudeStateMixin:
    """The exact path of the families whose state is an amplitude function.

    Needs from the estimator: ``net_.module_.network`` (one-hot features of
    shape ``(batch, n_sites, local_dim_)`` to scores), ``local_dim_``, and
    ``_duplicated_rank_bound(in_a)`` returning ``(bound, {label: (dim,
    count)})``; optionally ``_fast_spectra``.
    """

    def _fast_spectra(self, in_a, classes):
        """Exact spectra without enumeration where the family has a shortcut, else None."""
        return None

    def _exact_spectra(self, in_a, classes, max_cut_dim):
        spectra = self._fast_spectra(in_a, classes)
        if spectra is not None:
            return spectra
        n_sites, local_dim = in_a.size, self.local_dim_
        if local_dim**n_sites > MAX_AMPLITUDES:
            raise ExactUnavailable(
                f"exact values enumerate all M**N = {local_dim}**{n_sites} amplitudes of "
                f"the state, above the limit of 2**22 = {MAX_AMPLITUDES}."
                + self._beyond_enumeration_note()
            )
        amplitudes = enumerate_amplitudes(self.net_.module_.network, n_sites, local_dim)
        return [spectrum_from_amplitudes(amplitudes[c], in_a, local_dim) for c in classes]

    def _beyond_enumeration_note(self):
        """Family-specific exact routes past the enumeration limit, for the error."""
        return ""

    def _rank_bound(self, in_a):
        bound, counts = self._duplicated_rank_bound(in_a)
        return bound, duplicated_cut_bonds(counts)
