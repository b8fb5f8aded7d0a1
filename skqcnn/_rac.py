"""DeepRACClassifier: deep recurrent arithmetic circuits for sequences."""

import math
import numbers

import numpy as np
import torch

from ._base import NetworkClassifierBase
from ._nontree_entanglement import AmplitudeStateMixin
from ._schedules import check_channels, layer_count, resolve_channels
from ._validation import Interval, Shape
from .entanglement._reused_input_mincut import rac_rank_bound, rac_rank_lower_bound
from .entanglement._mps import mps_block_spectra, rac_to_mps
from .nn._layers import SequenceBasis
from .nn._rac import DeepRACNetwork, stack_step_entries


class DeepRACClassifier(AmplitudeStateMixin, NetworkClassifierBase):
    """Deep recurrent arithmetic circuit (Levine et al., PRL 2019) for sequences.

    Each step ``t`` of a sequence is mapped to a local vector ``h^0_t`` with
    constant element 0 (see :class:`~skqcnn.nn.SequenceBasis` for steps with
    several features). ``L`` stacked multiplicative recurrences follow,

    ``h^l_t = (W^{H,l} h^l_{t-1}) * (W^{I,l} h^{l-1}_t)``,

    from learned initial states ``h^l_0``, each step normalised by a
    BatchNorm of its own whose shift multiplies the constant channel; the
    scores are a linear readout of ``h^L_T``. In eval mode every step is
    linear or a same-channel product, so the network evaluated on one-hot
    step vectors defines the class states ``Psi_y`` exactly. A one-layer RAC
    is multilinear in its steps, a matrix product state with an area law;
    deeper ones re-use every step through the hidden states (the score is
    then a polynomial of higher degree in each step's vector, and ``Psi_y``
    is the duplicated network restricted to equal indices) and gain
    logarithmic corrections to the entanglement (Theorem 2).

    Parameters
    ----------
    hidden_size : int or tuple of int, default=32
        Hidden channels ``R_l``: one int for every layer, or one per layer
        (a named schedule as in :class:`QCNNClassifier` also works).
    n_layers : int, default=2
        Number of stacked layers when ``hidden_size`` is not a tuple.
    sequence_shape : tuple of int or None, default=None
        ``(T, F)``: ``T`` steps of ``F`` features, X holding ``T * F``
        columns, steps major. None follows one rule:

        - 3-D input ``(n_samples, T, F)``, which is accepted too: its shape
          (an image ``(n_samples, H, W)`` is read row by row);
        - a perfect-square feature count ``S * S``: ``(S, S)``, as the
          q-CNN takes it for an ``S x S`` image, read row by row (one step
          per row; ``S * S`` one-pixel steps would make a long, slow
          recurrence, see the user guide);
        - otherwise ``(n_features, 1)``, one feature per step.

        3-D input at predict time must have the fitted ``sequence_shape_``.
    representation, n_freq, loss, optimizer, lr, weight_decay, batch_size, \
max_epochs, early_stopping, validation_fraction, n_iter_no_change, track_entanglement, \
track_every, callbacks, warm_start, accelerator, compile, device, \
dtype, random_state, verbose
        As in :class:`QCNNClassifier`; ``batch_size`` defaults to 128 (every
        step normalises with the statistics of its batch, which larger batches
        estimate better), and ``max_epochs=None`` means 100 epochs.

    Attributes
    ----------
    sequence_shape_ : tuple of int
        ``(T, F)``.
    hidden_sizes_ : tuple of int
        ``R_1..R_L``.
    local_dim_ : int
        Dimension of each step's local vector, ``1 + F (2 n_freq)`` for
        Fourier.
    classes_, n_features_in_, input_min_, input_max_, lr_, max_epochs_, device_, net_, \
history_, entanglement_history_
        As in :class:`QCNNClassifier`.

    Notes
    -----
    Entanglement (:ref:`entanglement`): partitions of the ``T`` time steps,
    geometry ``(T,)``, default ``"left_right"`` (A the first ``ceil(T / 2)``
    steps); an int ``k`` is A the last ``k`` steps, Theorem 2's ``B =
    {1..|B|}``. Exact entropies enumerate ``M**T`` configurations (limit
    ``2**22``); for one layer and a contiguous cut they use the MPS form at
    any length. Beyond, ``alpha=2`` gives a Monte Carlo estimate.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skqcnn import DeepRACClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = DeepRACClassifier(max_epochs=1, random_state=0)
    >>> clf.fit(X[:100], y[:100]).sequence_shape_  # 64 = 8 * 8 features: rows as steps
    (8, 8)
    """

    default_partition = "left_right"
    _int_partitions = True

    # What skqcnn.load restores, with the types it accepts (see NetworkClassifierBase).
    _fitted_state = {**NetworkClassifierBase._fitted_state, "sequence_shape_": tuple,
                     "hidden_sizes_": tuple}

    _default_epochs = 100

    _parameter_constraints = {
        **NetworkClassifierBase._parameter_constraints,
        "hidden_size": check_channels,
        "n_layers": Interval(numbers.Integral, 1),
        "sequence_shape": Shape((2,), "(T, F)", " (an empty sequence has no steps)"),
    }
    _input_shape_param = "sequence_shape"

    def __init__(
        self,
        *,
        hidden_size=32,
        n_layers=2,
        sequence_shape=None,
        representation="fourier",
        n_freq=1,
        loss="square",
        optimizer="adamw",
        lr=None,
        weight_decay=1e-4,
        batch_size=128,
        max_epochs=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        track_entanglement=None,
        track_every=1,
        callbacks=None,
        warm_start=False,
        accelerator=None,
        compile=False,
        device="auto",
        dtype=np.float32,
        random_state=None,
        verbose=0,
    ):
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.sequence_shape = sequence_shape
        super().__init__(
            representation=representation, n_freq=n_freq, loss=loss, optimizer=optimizer,
            lr=lr, weight_decay=weight_decay, batch_size=batch_size, max_epochs=max_epochs,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, track_entanglement=track_entanglement,
            track_every=track_every, callbacks=callbacks, warm_start=warm_start,
            accelerator=accelerator, compile=compile, device=device, dtype=dtype,
            random_state=random_state, verbose=verbose,
        )

    def _build_local_basis(self, n_features):
        shape = self._shape_from_input(self.sequence_shape)
        if shape is None:
            side = math.isqrt(n_features)
            shape = (side, side) if side * side == n_features else (n_features, 1)
        if math.prod(shape) != n_features:
            raise ValueError(
                f"sequence_shape={tuple(shape)} needs T * F = {math.prod(shape)} features but "
                f"X has {n_features}; pass sequence_shape with T * F == n_features."
            )
        self.sequence_shape_ = tuple(int(s) for s in shape)
        return SequenceBasis(self.representation, self.n_freq,
                             n_step_features=self.sequence_shape_[1])

    def _build_module(self, n_features, local_dim, n_classes, generator):
        n_layers = layer_count(self.hidden_size, self.n_layers)
        self.hidden_sizes_ = resolve_channels(self.hidden_size, n_layers, name="hidden_size")
        return DeepRACNetwork(self.sequence_shape_[0], local_dim, self.hidden_sizes_, n_classes,
                              generator=generator)

    def _initialized_net(self, seed):
        net = super()._initialized_net(seed)
        net.optimizer_.register_load_state_dict_pre_hook(self._stack_step_optimizer_state)
        return net

    def _stack_step_optimizer_state(self, optimizer, state_dict):
        """Optimizer load hook: state saved when every step's norm had its own parameters.

        Files written before the step norms were stacked (``StepNorms``) hold
        ``3 L + 2 L T + 1`` parameter states: the ``L`` hidden, input and
        initial-state tensors, then the weight and bias of every step of every
        layer, then the readout. Their per-step states are stacked in the
        order of the stacked parameters.
        """
        n_layers, n_steps = len(self.hidden_sizes_), self.sequence_shape_[0]
        (group,) = state_dict["param_groups"]
        ids = group["params"]
        if len(ids) != 3 * n_layers + 2 * n_layers * n_steps + 1:
            return None
        per_step = ids[3 * n_layers:-1]
        # Parameter order: hidden, input, initial, then (weight, bias) per layer, readout.
        stacked = [[ids[i]] for i in range(3 * n_layers)]
        for layer in range(n_layers):
            rows = per_step[2 * n_steps * layer:2 * n_steps * (layer + 1)]
            stacked += [rows[0::2], rows[1::2]]
        stacked.append([ids[-1]])
        state = {}
        for new_id, old_ids in enumerate(stacked):
            if all(i in state_dict["state"] for i in old_ids):
                states = [state_dict["state"][i] for i in old_ids]
                state[new_id] = {
                    # Per-step moments are stacked; the shared step count is kept.
                    key: (torch.stack([s[key] for s in states])
                          if len(old_ids) > 1 and value.dim() else value)
                    for key, value in states[0].items()
                }
        return {"state": state,
                "param_groups": [{**group, "params": list(range(len(stacked)))}]}

    def _resume_training(self, X, y_encoded):
        recalibration = dict(self.net_.callbacks_)["batchnorm_recalibration"]
        if recalibration.training_statistics_ is not None:
            # Statistics saved when every step's norm was a module of its own.
            for layer in range(len(self.hidden_sizes_)):
                stack_step_entries(recalibration.training_statistics_,
                                   f"network.norms.{layer}.", self.sequence_shape_[0])
        super()._resume_training(X, y_encoded)

    def _site_geometry(self):
        return (self.sequence_shape_[0],)

    def _mps_suffix(self, in_a):
        """Suffix length of a contiguous cut of a one-layer RAC, else None."""
        if len(self.hidden_sizes_) != 1:
            return None
        n_a = int(in_a.sum())
        # The spectrum of A | B is that of B | A: a prefix A is a suffix B.
        if in_a[-n_a:].all():
            return n_a
        if in_a[:n_a].all():
            return in_a.size - n_a
        return None

    def _fast_spectra(self, in_a, classes):
        """Exact spectra of a one-layer RAC in MPS form for a contiguous cut, else None."""
        suffix = self._mps_suffix(in_a)
        if suffix is None:
            return None
        readout, tensors, initial = rac_to_mps(self.net_.module_.network)
        spectra = mps_block_spectra(readout[classes], tensors, initial, suffix)
        return [per_class[0] for per_class in spectra]

    def _beyond_enumeration_note(self):
        if len(self.hidden_sizes_) == 1:
            return (" A one-layer RAC is exact at any length for a contiguous cut "
                    "(A the first or last steps: an int k, 'left_right').")
        return ""

    def _duplicated_rank_bound(self, in_a):
        return rac_rank_bound(self.sequence_shape_[0], self.local_dim_, self.hidden_sizes_,
                              in_a, return_cut=True)

    def schmidt_rank_lower_bound(self, partition=None):
        """Theorem-2 lower bound on the Schmidt rank for generic weights.

        Levine et al. (PRL 2019), Theorem 2: for a deep RAC (``L >= 2``) and
        A the last ``|A|`` steps with ``|A| <= |B|`` (B a prefix), the rank
        reached by generic weights is at least
        ``C(min(R, M) + |A| - 1, |A|)``, so the entropy can grow
        logarithmically with ``|A|``.

        Parameters
        ----------
        partition : int, str, array-like or None, default=None
            As in :meth:`entanglement_entropy`; it must be a suffix of the
            sequence no longer than its prefix, such as an int ``k <= T / 2``.

        Returns
        -------
        bound : int
        """
        in_a = self._partition_mask(partition)
        n_a = int(in_a.sum())
        if len(self.hidden_sizes_) < 2:
            raise ValueError("Theorem 2 concerns deep RACs: n_layers must be >= 2.")
        if not in_a[-n_a:].all() or n_a > in_a.size - n_a:
            raise ValueError(
                "Theorem 2 needs A to be the last |A| steps with |A| <= |B|; use an int "
                f"partition k <= {in_a.size // 2}."
            )
        return rac_rank_lower_bound(min(self.hidden_sizes_), self.local_dim_, n_a)
