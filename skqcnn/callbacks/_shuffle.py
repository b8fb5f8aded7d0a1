"""Shuffle each epoch from a seed fixed by the epoch number."""

import numbers

import torch
from skorch.callbacks import Callback

from ._state import check_state_keys


class EpochSeededShuffle(Callback):
    """Reseed the training loader's generator at the start of every epoch.

    A generator seeded once makes epoch ``k``'s shuffle depend on every draw
    before it, so a run resumed from a checkpoint would shuffle differently
    from an uninterrupted one. Seeding epoch ``k`` with ``(seed, k)`` makes its
    order a function of the seed and the epoch alone: a resumed fit
    (``warm_start=True``) repeats the uninterrupted fit exactly on the CPU.

    Parameters
    ----------
    seed : int
        Base seed. Epoch ``k`` (1-based) uses ``seed * 1_000_003 + k`` modulo
        ``2**63``.

    Examples
    --------
    >>> from skqcnn.callbacks import EpochSeededShuffle
    >>> EpochSeededShuffle(seed=7).epoch_seed(3)
    7000024
    """

    def __init__(self, seed):
        self.seed = seed

    def epoch_seed(self, epoch):
        """Seed of the 1-based ``epoch``.

        Parameters
        ----------
        epoch : int

        Returns
        -------
        seed : int
        """
        return (self.seed * 1_000_003 + epoch) % 2**63

    def state_dict(self):
        """The base seed, which decides every later epoch's order.

        Returns
        -------
        state : dict
            ``{"seed": int}``.
        """
        return {"seed": int(self.seed)}

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned.

        Parameters
        ----------
        state : dict
            As returned by :meth:`state_dict`.

        Returns
        -------
        self : EpochSeededShuffle
        """
        check_state_keys(self, state, {"seed"})
        seed = state["seed"]
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {seed!r}.")
        self.seed = int(seed)
        return self

    def on_epoch_begin(self, net, **kwargs):
        """Reseed ``net.iterator_train__generator`` for the epoch starting now."""
        generator = getattr(net, "iterator_train__generator", None)
        if not isinstance(generator, torch.Generator):
            raise TypeError(
                "EpochSeededShuffle needs a torch.Generator in the net's "
                "iterator_train__generator."
            )
        # skorch opens the epoch's history row before this hook runs.
        generator.manual_seed(self.epoch_seed(len(net.history)))
