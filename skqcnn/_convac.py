"""OverlappingConvACClassifier: overlapping convolutional arithmetic circuits."""

import math
import numbers

import numpy as np

from ._base import NetworkClassifierBase
from ._layout import convac_default_depth, resolve_image_shape
from ._nontree_entanglement import AmplitudeStateMixin
from ._schedules import check_channels, layer_count, resolve_channels
from ._validation import Interval, image_shape
from .entanglement._reused_input_mincut import convac_rank_bound
from .nn._convac import OverlappingConvACNetwork

# channels=None: _HIDDEN_CHANNELS in every layer but the last, which holds
# _TOP_CHANNELS. The last map has at most 4 positions (the depth rule), so
# its width costs little at any image size, and the readout sees that many
# pooled channels. On the digits (docs/convac.rst, "Default width and
# epochs") a last layer of 64 scored what 16 channels everywhere scored in a
# third of the epochs at 8 x 8, and a point more at 16 x 16 and 32 x 32.
_HIDDEN_CHANNELS = 16
_TOP_CHANNELS = 64

# The epochs of max_epochs=None: _MOST_EPOCHS on inputs of up to
# _SITES_OF_MOST_EPOCHS sites, beyond that in inverse proportion to the
# sites, never under _FEWEST_EPOCHS: 13 at 8 x 8 and 16 x 16, 10 at 32 x 32.
# With lr=0.02 (_default_lr), 14 epochs scored over 30 seeds at 8 x 8 a
# fifth of a point less than 20 epochs at 0.01 in two thirds of the time,
# and at 16 x 16 and 32 x 32 as much as 15 and 10 epochs at 0.01 or more;
# 13 scored as 14 within a standard error (paired over 60 seeds at 8 x 8,
# -0.0007 +- 0.0006; over 18 at 16 x 16, -0.0012 +- 0.0008) in 13/14 of the
# time, and 12 lost more (seed sweeps in docs/convac.rst).
_MOST_EPOCHS = 13
_SITES_OF_MOST_EPOCHS = 256
_FEWEST_EPOCHS = 10


def _convac_channels(name, channels):
    """None (the width rule of ``_build_module``) or what :func:`check_channels` accepts."""
    if channels is not None:
        check_channels(name, channels)


class OverlappingConvACClassifier(AmplitudeStateMixin, NetworkClassifierBase):
    """Overlapping convolutional arithmetic circuit (Levine et al., PRL 2019).

    Each input value is mapped to a local basis with constant element 0, as in
    :class:`QCNNClassifier`. Then ``L`` generalized convolutions with stride 1:
    every output is the same-channel product over a ``K`` (1-D) or ``K x K``
    (2-D) window of per-offset linear maps,
    ``y = (W^(1) x^(1)) * ... * (W^(K^d) x^(K^d))``, optionally followed by
    ``P`` (``P x P``) product pooling, and a BatchNorm whose shift multiplies
    the constant channel. A global product pooling and a linear readout give
    the scores. Edges are padded with the constant state ``e_0``, so the
    network stays a tensor network over the real sites. The global product is
    accumulated as a sum of logarithms with a sign and each channel rescaled
    by a (running) log-scale, which in eval mode is a fixed factor: every
    eval-mode step is a fixed linear map or a product, so the network
    evaluated on one-hot site vectors gives the class states ``Psi_y``
    exactly. Overlapping windows use every site several times, so unlike the
    q-CNN the score is a polynomial of higher degree in each site's vector
    (``alpha_y(x) = <x|Psi_y>`` holds on basis configurations, and for
    ``kernel_size=1``); ``Psi_y`` is the duplicated tree network of Levine et
    al. restricted to equal indices.

    Overlapping windows re-use every input many times, which gives volume-law
    entanglement at a parameter cost linear in depth: block entropies can
    grow with the block's size up to about ``L * K`` without pooling
    (Theorem 1 of ``docs/theory.rst``), and up to about ``K`` with the
    default ``pooling=2`` (Theorem 3).

    Parameters
    ----------
    channels : tuple of int, int, (str, int) or None, default=None
        Channels ``r_1..r_L`` per conv layer, or a named schedule as in
        :class:`QCNNClassifier`; a schedule or an int uses ``n_layers``.
        None gives 16 channels to every layer but the last and 64 to the
        last, resolved into ``channels_``: the last map has at most 4
        positions (with the depth rule), so its width costs little, and the
        readout sees 64 pooled channels. On the 8 x 8 digits that learnt in
        20 epochs what 16 channels everywhere learnt in 60 (the ConvAC page
        of the user guide).
    n_layers : int or None, default=None
        Number of conv layers when ``channels`` is not a tuple. None applies
        the depth rule: with pooling ``P >= 2``, the fewest layers (at least
        one) after which every side of the last map is at most 2, i.e.
        ``max(1, ceil(log_P(max_side / 2)))`` (2 layers on 8 x 8 digits, 3 on
        16 x 16, 4 on 28 x 28 and 32 x 32), so that the global product
        multiplies at most 4 positions at any image size; without pooling, 2.
        The resolved depth is ``n_layers_``.
    kernel_size : int or None, default=None
        Window size K (``K x K`` in 2-D), stride 1; at most the image's
        shorter side. None means ``min(3, shorter side)``, resolved into
        ``kernel_size_``. Window positions outside a map hold the constant
        state ``e_0``, so K may exceed the side of a deeper, pooled map.
    pooling : int or None, default=2
        ``P`` (``P x P``) product pooling after each conv layer. A side ``n``
        becomes ``ceil(n / P)``: where ``P`` does not divide it, the last
        block is clipped (padded with the all-ones vector, the identity of
        the product, which keeps the network a tensor network over the real
        sites). Without pooling the global product over a whole map is close
        to translation invariant (a bag of local features) and trained
        poorly on load_digits.
    representation, n_freq, image_shape, loss, optimizer, lr, weight_decay, \
batch_size, max_epochs, \
early_stopping, validation_fraction, n_iter_no_change, track_entanglement, track_every, \
callbacks, warm_start, accelerator, compile, device, dtype, \
random_state, verbose
        As in :class:`QCNNClassifier` (the same local basis and batch size).
        ``max_epochs=None`` trains for ``13 * 256 / n_sites`` epochs
        (rounded), at least 10 and at most 13, with ``n_sites`` the pixels of
        the image (sites of the chain), resolved into ``max_epochs_``: 13 on
        8 x 8 and 16 x 16 digits and 10 on 32 x 32 images, where the
        deeper networks reached the same accuracy in fewer epochs (the ConvAC
        page of the user guide measures them). ``lr=None`` is 0.02 with
        ``loss="square"`` and 0.001 with ``loss="cross_entropy"``, whose
        Born-rule gradients grow as ``1 / alpha_y`` near a zero score (the
        ConvAC page of the user guide measures both rates). With
        ``loss="cross_entropy"`` the readout also starts at the common score
        1 for every class (see ``score_offset`` of
        :class:`~skqcnn.nn.OverlappingConvACNetwork`): Born-rule
        probabilities of scores that start near 0 did not train.
        ``track_entanglement=True`` records the default partition only
        (``"left_right"``, or ``"up_down"`` on a single column): beyond
        ``M**N = 2**22`` amplitudes every recorded epoch costs a Monte Carlo
        estimate per class and partition.

    Attributes
    ----------
    classes_, n_features_in_, image_shape_, channels_, local_dim_, \
input_min_, input_max_, lr_, max_epochs_, device_, net_, history_, \
entanglement_history_
        As in :class:`QCNNClassifier`.
    n_layers_ : int
        Number of conv layers, ``len(channels_)``.
    kernel_size_ : int
        The window size used.

    Notes
    -----
    Entanglement (:ref:`entanglement`): partitions of the pixels, default
    ``"left_right"``; ``("block", size)`` is the centred block of Theorem 1.
    Exact values enumerate all ``M**N`` amplitudes (``M**N <= 2**22``);
    beyond, ``alpha=2`` gives a Monte Carlo estimate.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skqcnn import OverlappingConvACClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = OverlappingConvACClassifier(max_epochs=1, random_state=0).fit(X[:100], y[:100])
    >>> clf.schmidt_rank_bound(("block", 2)) <= 3 ** 4
    True
    """

    default_partition = "left_right"

    _default_lr = {"square": 0.02, "cross_entropy": 0.001}
    # Its eval-mode maps hold K^d (1 + r) values per position: beyond a few
    # dozen samples they leave the cache, and 4,041 8 x 8 digits took 0.4 s
    # in 32s, 1.1 s in 512s.
    _evaluation_batch_size = 32

    # What skqcnn.load restores, with the types it accepts (see NetworkClassifierBase).
    _fitted_state = {**NetworkClassifierBase._fitted_state, "image_shape_": tuple,
                     "channels_": tuple, "n_layers_": numbers.Integral,
                     "kernel_size_": numbers.Integral}

    _parameter_constraints = {
        **NetworkClassifierBase._parameter_constraints,
        "channels": _convac_channels,
        "n_layers": Interval(numbers.Integral, 1, allow_none=True),
        "kernel_size": Interval(numbers.Integral, 1, allow_none=True),
        "pooling": Interval(numbers.Integral, 1, allow_none=True),
        "image_shape": image_shape,
    }
    _input_shape_param = "image_shape"

    def __init__(
        self,
        *,
        channels=None,
        n_layers=None,
        kernel_size=None,
        pooling=2,
        representation="fourier",
        n_freq=1,
        image_shape=None,
        loss="square",
        optimizer="adamw",
        lr=None,
        weight_decay=1e-4,
        batch_size=32,
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
        self.channels = channels
        self.n_layers = n_layers
        self.kernel_size = kernel_size
        self.pooling = pooling
        self.image_shape = image_shape
        super().__init__(
            representation=representation, n_freq=n_freq, loss=loss, optimizer=optimizer,
            lr=lr, weight_decay=weight_decay, batch_size=batch_size, max_epochs=max_epochs,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, track_entanglement=track_entanglement,
            track_every=track_every, callbacks=callbacks, warm_start=warm_start,
            accelerator=accelerator, compile=compile, device=device, dtype=dtype,
            random_state=random_state, verbose=verbose,
        )

    def _default_max_epochs(self):
        n_sites = math.prod(self.image_shape_)
        in_proportion = round(_MOST_EPOCHS * _SITES_OF_MOST_EPOCHS / n_sites)
        return min(_MOST_EPOCHS, max(_FEWEST_EPOCHS, in_proportion))

    def _build_module(self, n_features, local_dim, n_classes, generator):
        self.image_shape_ = resolve_image_shape(self._shape_from_input(self.image_shape),
                                                n_features)
        self.kernel_size_ = (min(3, min(self.image_shape_)) if self.kernel_size is None
                             else self.kernel_size)
        if self.kernel_size_ > min(self.image_shape_):
            # Deeper, pooled maps may be smaller than the kernel (their window
            # positions outside read e_0); the image itself should not be.
            raise ValueError(
                f"kernel_size={self.kernel_size} is larger than the image "
                f"{self.image_shape_} (n_features = {n_features}); use kernel_size <= "
                f"{min(self.image_shape_)}."
            )
        n_layers = self.n_layers
        if n_layers is None:
            n_layers = convac_default_depth(self.image_shape_, self.pooling)
        if self.channels is None:
            self.channels_ = (_HIDDEN_CHANNELS,) * (n_layers - 1) + (_TOP_CHANNELS,)
        else:
            self.channels_ = resolve_channels(self.channels,
                                              layer_count(self.channels, n_layers))
        self.n_layers_ = len(self.channels_)
        # Born-rule probabilities need scores away from 0 from the start.
        return OverlappingConvACNetwork(self.image_shape_, local_dim, self.channels_,
                                        self.kernel_size_, n_classes, pooling=self.pooling,
                                        generator=generator,
                                        score_offset=1.0 if self.loss == "cross_entropy" else 0.0)

    def _duplicated_rank_bound(self, in_a):
        return convac_rank_bound(self.image_shape_, self.local_dim_, self.channels_,
                                 self.kernel_size_, self.pooling, in_a, return_cut=True)
