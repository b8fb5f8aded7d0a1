"""Entanglement of network states that are not trees: ConvAC and deep RAC.

Exact by enumerating every one-hot configuration while ``M**N`` stays small,
by Monte Carlo (Renyi-2, swap estimator) beyond, and bounded above by the
minimum cut of the duplicated tree. Estimators mix this in and provide the
site layout, the torch network and the rank bound.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .entanglement import entropy_from_spectrum
from .entanglement._enumeration import MAX_AMPLITUDES, enumerate_amplitudes
from .entanglement._monte_carlo import renyi2_monte_carlo
from .entanglement._spectra import log_base, positive_order, spectrum_from_amplitudes

METHODS = ("auto", "exact", "monte_carlo")


class SampledStateEntanglementMixin:
    """``entanglement_entropy``, ``schmidt_spectrum`` and ``schmidt_rank_bound``.

    Needs from the estimator: a ``default_partition`` class attribute,
    ``_site_partition(partition)`` (mask over sites),
    ``_n_sites()``, ``_site_local_dim()``, ``_rank_bound(in_a, return_cut)``,
    and optionally ``_fast_spectra_available(in_a)`` with
    ``_fast_spectra(in_a, classes)``, exact spectra without enumeration.
    """

    def _network(self):
        return self.net_.module_.network

    def _fast_spectra_available(self, in_a):
        return False

    def _resolved_partition(self, partition):
        return self._site_partition(self.default_partition if partition is None else partition)

    def _n_amplitudes(self):
        return self._site_local_dim() ** self._n_sites()

    def _exact_spectra(self, in_a, classes):
        if self._fast_spectra_available(in_a):
            return self._fast_spectra(in_a, classes)
        if self._n_amplitudes() > MAX_AMPLITUDES:
            raise ValueError(
                f"Exact entanglement enumerates M**N = {self._site_local_dim()}**"
                f"{self._n_sites()} amplitudes, above the limit of {MAX_AMPLITUDES} "
                f"(2**22). Use method='monte_carlo' with alpha=2, or a smaller system."
            )
        amplitudes = enumerate_amplitudes(self._network(), self._n_sites(), self._site_local_dim())
        return [spectrum_from_amplitudes(amplitudes[c], in_a, self._site_local_dim())
                for c in classes]

    def entanglement_entropy(self, partition=None, *, alpha=1, classes=None, base=None,
                             method="auto", n_samples=10_000, random_state=None,
                             return_std=False):
        """Entanglement entropy of each class's normalised network state.

        Parameters
        ----------
        partition : str, tuple, int, array-like of bool, array-like of int or None
            Subsystem A; see the estimator's class docstring for the names.
            None means the estimator's ``default_partition``.
        alpha : float, default=1
            Renyi order; 1 is von Neumann. Monte Carlo gives ``alpha=2`` only.
        classes : array-like or None, default=None
            Labels from ``classes_``; None means all.
        base : float or None, default=None
            Logarithm base; None means natural logarithms (nats).
        method : {"auto", "exact", "monte_carlo"}, default="auto"
            ``"exact"`` evaluates the folded network on all ``M**N`` one-hot
            configurations (limit ``2**22``) and takes an SVD; ``"monte_carlo"``
            estimates Renyi-2 with the swap estimator from ``n_samples``
            Metropolis samples of ``|Psi_y|^2``; ``"auto"`` is exact when
            possible, else Monte Carlo for ``alpha=2``.
        n_samples : int, default=10000
            Swap samples per class for Monte Carlo.
        random_state : int, numpy.random.Generator or None, default=None
            Seeds the Monte Carlo chains.
        return_std : bool, default=False
            Also return standard errors (zeros for exact values).

        Returns
        -------
        entropies : ndarray of shape (n_classes,) or (len(classes),)
        std : ndarray, only with ``return_std=True``
        """
        check_is_fitted(self)
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
        alpha = positive_order(alpha)
        scale = log_base(base)
        in_a = self._resolved_partition(partition)
        indices = self._class_indices(classes)
        exact_possible = (self._n_amplitudes() <= MAX_AMPLITUDES
                          or self._fast_spectra_available(in_a))
        if method == "monte_carlo" or (method == "auto" and not exact_possible):
            if alpha != 2:
                raise ValueError(
                    f"Monte Carlo estimates the Renyi-2 entropy only, got alpha={alpha!r}; "
                    f"exact entropies of other orders need M**N <= 2**22 amplitudes "
                    f"(here {self._site_local_dim()}**{self._n_sites()})."
                )
            # The network itself (not a wrapped callable) lets the sampler
            # update only the light cone of the site a proposal changes.
            estimate = renyi2_monte_carlo(
                self._network(), self._n_sites(), self._site_local_dim(), in_a, n_samples,
                classes=indices, random_state=random_state,
            )
            entropies, std = estimate.entropy / scale, estimate.stderr / scale
        else:
            entropies = np.array([entropy_from_spectrum(p, alpha, base)
                                  for p in self._exact_spectra(in_a, indices)])
            std = np.zeros_like(entropies)
        return (entropies, std) if return_std else entropies

    def schmidt_spectrum(self, partition=None, *, classes=None):
        """Exact normalised squared Schmidt coefficients of each class state.

        Parameters
        ----------
        partition : str, tuple, int, array-like of bool or array-like of int
            As in :meth:`entanglement_entropy`.
        classes : array-like or None, default=None
            Labels from ``classes_``; None means all.

        Returns
        -------
        spectra : list of ndarray of float64
            One array per class, descending, summing to 1.
        """
        check_is_fitted(self)
        return self._exact_spectra(self._resolved_partition(partition), self._class_indices(classes))

    def schmidt_rank_bound(self, partition=None, *, return_cut=False):
        """Minimum-cut upper bound on the Schmidt rank of every class state.

        On one-hot inputs the network computes a tree network whose inputs are
        duplicated (Levine et al., PRL 2019); the rank is at most the minimum
        cut of that duplicated tree, with every copy of a site on its side,
        pooling nodes counted once and bonds of the folded dimension ``1 + r``.
        Capped by ``M**|A|`` and ``M**|B|``.

        Parameters
        ----------
        partition : str, tuple, int, array-like of bool or array-like of int
            As in :meth:`entanglement_entropy`.
        return_cut : bool, default=False
            Also return the bonds that a minimum cut crosses.

        Returns
        -------
        bound : int
            A Python int, exact however large.
        cut : list, only with ``return_cut=True``
        """
        check_is_fitted(self)
        return self._rank_bound(self._resolved_partition(partition), return_cut)
