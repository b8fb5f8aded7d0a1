"""QCNNClassifier: the q-CNN of Anagiannis & Cheng as a scikit-learn estimator."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._base import ExactUnavailable, NetworkClassifierBase
from ._layout import TOP_SPLITS, quadtree_leaf_order, resolve_image_shape
from ._schedules import check_channels, resolve_channels
from ._validation import Options, boolean, image_shape
from .entanglement import (
    ContractionTooLarge,
    TreeNetwork,
    tree_entropies,
    tree_min_cut,
    tree_schmidt_spectra,
)
from .entanglement._tree_entropy import _format_int, _integer_order
from .nn._qcnn import QCNNNetwork


class QCNNClassifier(NetworkClassifierBase):
    """q-CNN classifier (Anagiannis & Cheng, "Entangled q-convolutional neural nets").

    Each input value is mapped to an orthonormal local basis whose element 0 is
    the constant function. Then, for each of the ``L = ceil(log2 N)`` levels of a
    binary tree: BatchNorm with learnable mean and scale, a bias-free 1x1
    convolution, and same-channel product pooling of neighbouring pairs. A final
    BatchNorm and a bias-free linear readout give one score ``alpha_y`` per
    class. The score is multilinear in the local feature vectors, so each class
    is a tensor-network state ``|Psi_y>`` whose entanglement can be computed
    exactly after fitting.

    Parameters
    ----------
    channels : tuple of int, int or (str, int), default=("linear", 4)
        Channels ``d_1..d_L`` per level: a tuple of L ints, or a named
        schedule ``("linear", d)`` (``d_l = d (l + 1)``, the paper's),
        ``("constant", d)``, ``("wide_base", r)`` or ``("wide_tip", r)``.
        Resolved in ``fit`` into ``channels_``.
    representation : {"fourier", "legendre"}, default="fourier"
        Local basis. Fourier: ``(1, sqrt2 cos 2 pi k x, sqrt2 sin 2 pi k x)``
        for ``k = 1..n_freq`` on [0, 1] (paper eq. 19), local dimension
        ``2 n_freq + 1``; inputs are mapped into [0, 1/2] because the basis is
        periodic. Legendre: orthonormal polynomials of degree ``0..n_freq`` on
        [-1, 1], local dimension ``n_freq + 1``.
    n_freq : int, default=1
        Number of frequencies (Fourier) or polynomial degree (Legendre).
    image_shape : tuple of int or None, default=None
        ``(H, W)`` for images, ``(N,)`` for sequences. None: the shape of 3-D
        input ``(n_samples, H, W)``, which is accepted too (and must then have
        that shape at predict time); for 2-D input a square image when
        ``n_features`` is a perfect square, else a sequence. Pixels are
        visited in quadtree order, so that every pooling merges neighbours;
        sides that are not powers of two are padded with constant sites
        (``f_0`` only), which add no information, centred (``floor(pad / 2)``
        before the side), so that the top split joins exactly the halves
        ``"left_right"`` (or ``"up_down"``) of :ref:`entanglement`.
    top_split : {"left_right", "up_down"}, default="left_right"
        Which halves of the image the last pooling joins.
    symmetric_pooling : bool, default=False
        False gives the left and the right member of every pooling pair their
        own 1x1 convolution (shared by all pairs of a level). True uses one
        convolution per level, as in the paper; the network is then symmetric
        under swapping the two children of any node, which caps its accuracy
        (the user guide's "Pair weights" section measures both on the digits).
    loss : {"square", "cross_entropy"}, default="square"
        ``"square"``: one-hot square loss on ``alpha`` (paper eq. 48).
        ``"cross_entropy"``: cross-entropy of the Born probabilities.
    optimizer : {"adamw", "adam", "sgd"}, default="adamw"
    lr : float or None, default=None
        Peak learning rate, annealed to 0 by a cosine schedule over
        ``max_epochs``. None takes the family's rate for ``loss``, 0.01 for
        both losses here (:class:`OverlappingConvACClassifier` has its own),
        resolved into ``lr_``.
    weight_decay : float, default=1e-4
    batch_size : int, default=32
        Samples per training step. Prediction and scoring evaluate in float64
        in batches of the family's own size, whatever ``batch_size``: 512
        samples (32 for the ConvAC, whose eval-mode maps are large), fewer
        where 512 samples would hold more than ``2**22`` input values.
    max_epochs : int or None, default=None
        Training epochs. None takes the family's number, 40 here
        (:class:`OverlappingConvACClassifier` sets it by the input's size),
        resolved into ``max_epochs_``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified) and
        stop when the validation loss has not improved for
        ``n_iter_no_change`` epochs, restoring the best weights. Each epoch's
        validation loss is that of a copy whose BatchNorm statistics are
        recalibrated on the training split, as the final model's are: that
        costs a pass over the training split per epoch (several for the
        ConvAC, which recalibrates layer by layer).
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    track_entanglement : None, True, str, list or dict, default=None
        Partitions whose entanglement entropy is recorded during training,
        into ``entanglement_history_`` (see
        :class:`~skqcnn.callbacks.EntanglementTracker`): a partition, a list
        of partitions, a dict ``{label: partition}``, or True for the
        family's default (here ``["left_right", "up_down"]`` for images,
        without the halving across a side of one pixel, and ``"left_right"``
        for sequences). None records nothing.
    track_every : int, default=1
        Record the entropies every ``track_every`` epochs.
    callbacks : list of skorch callbacks or (name, callback) pairs, default=None
        Extra callbacks for the skorch net, e.g. an
        :class:`~skqcnn.callbacks.EntanglementTracker` with other settings or
        skorch's ``Checkpoint``. Each fit uses copies (``sklearn.base.clone``).
        skorch's ``EpochScoring`` with a scorer name (``"accuracy"``,
        ``"neg_log_loss"``, ``"roc_auc_ovr"``) scores the Born-rule
        probabilities of the epoch's passes against the encoded labels (on
        the validation split, of the recalibrated copy that early stopping
        validates). The inner net is no classifier to scikit-learn, so binary
        scorers that take one column of probabilities (``"roc_auc"``,
        ``"average_precision"``) fail there: score with a callable.
    warm_start : bool, default=False
        When fitted already on data with the same features and classes,
        continue training the current network instead of starting anew.
        Epochs in ``history_`` count towards ``max_epochs_``, so a fit
        interrupted (Ctrl-C, or a model saved mid-training with
        :func:`skqcnn.save`) resumes where it stopped, and on the CPU ends
        with the same weights as an uninterrupted fit; set ``max_epochs``
        above ``max_epochs_`` to train further (a lower value trains no
        more). Early stopping restarts its patience on resume. A warm start
        may change ``max_epochs``, ``verbose``, ``device``, ``accelerator``,
        ``callbacks`` and ``random_state`` only (the network stays on its
        device, and the callbacks and shuffles of the first fit continue);
        any other changed hyperparameter raises a ValueError that names it,
        before the fitted network is touched. A resume that fails with an
        error gives back the model it started from (without ``accelerator``;
        with it, the model is discarded, as a failed first fit's is).
    accelerator : accelerate.Accelerator or None, default=None
        Train through Hugging Face Accelerate (skorch's ``AccelerateMixin``),
        for multi-GPU data-parallel or mixed-precision training: launch the
        script with ``accelerate launch`` and pass ``Accelerator()``. Device
        placement is then Accelerate's and ``device`` is ignored. Needs
        ``pip install "skqcnn[accelerate]"``.
    compile : bool, default=False
        Run the training forward passes through ``torch.compile``. Only
        training is compiled: predictions, saved models and the entanglement
        analysis use the module itself. Compiling takes time at the start of
        each fit (and after loading), which small fits on the CPU do not win
        back; results differ from an uncompiled fit by round-off. Where
        ``torch.compile`` is unavailable or fails, a ``RuntimeWarning`` says
        so and training continues without it. Not with ``accelerator``: give
        the ``Accelerator`` a ``dynamo_backend`` instead.
    device : str, default="auto"
        ``"auto"`` trains on CUDA when available, else on the CPU.
    dtype : {np.float32, np.float64}, default=np.float32
        Training precision. Entanglement analysis always runs in float64.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and validation splits through
        generators of the fit's own; with an int, CPU training is
        deterministic, also for fits running at once in threads, and torch's
        global generator is never used.
    verbose : int, default=0
        ``> 0`` prints skorch's epoch table and a progress bar per epoch.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    image_shape_ : tuple of int
        The resolved image shape.
    channels_ : tuple of int
        The resolved channels per level.
    local_dim_ : int
        Dimension M of the local basis.
    leaf_features_ : ndarray of int
        Feature (column of X) held by each leaf of the tree, -1 for padding.
    input_min_, input_max_ : float
        Training range of X. Inputs are mapped affinely from
        ``[input_min_, input_max_]`` onto the basis domain; values outside the
        range at predict time are clipped to its ends.
    lr_ : float
        The peak learning rate used.
    max_epochs_ : int
        The epochs the fit trains for (fewer where early stopping ends it).
    device_ : str
        Device the network lives on.
    net_ : skorch.NeuralNet
        The fitted skorch net; ``net_.module_.network`` is the torch q-CNN.
    history_ : skorch.History
        Per-epoch training history.
    entanglement_history_ : skqcnn.callbacks.EntanglementHistory
        Only when entanglement was tracked: one row per (epoch, partition,
        class) with the entropy and the losses; ``to_frame()`` gives a pandas
        DataFrame.

    Notes
    -----
    Entanglement (:ref:`entanglement`): partitions of the pixels, default
    ``"left_right"``, the cut of the top split. Exact values come from the
    folded tree network: any order while the minimum cut weighs at most
    ``max_cut_dim``, integer orders ``alpha >= 2`` at any cut.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skqcnn import QCNNClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = QCNNClassifier(max_epochs=2, random_state=0).fit(X[:200], y[:200])
    >>> clf.predict(X[:3]).shape
    (3,)
    """

    default_partition = "left_right"
    # What skqcnn.load restores, with the types it accepts (see NetworkClassifierBase).
    _fitted_state = {**NetworkClassifierBase._fitted_state, "image_shape_": tuple,
                     "leaf_features_": np.ndarray, "channels_": tuple}

    _parameter_constraints = {
        **NetworkClassifierBase._parameter_constraints,
        "channels": check_channels,
        "image_shape": image_shape,
        "top_split": Options(TOP_SPLITS),
        "symmetric_pooling": boolean,
    }
    _input_shape_param = "image_shape"

    def __init__(
        self,
        *,
        channels=("linear", 4),
        representation="fourier",
        n_freq=1,
        image_shape=None,
        top_split="left_right",
        symmetric_pooling=False,
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
        self.image_shape = image_shape
        self.top_split = top_split
        self.symmetric_pooling = symmetric_pooling
        super().__init__(
            representation=representation, n_freq=n_freq, loss=loss, optimizer=optimizer,
            lr=lr, weight_decay=weight_decay, batch_size=batch_size, max_epochs=max_epochs,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, track_entanglement=track_entanglement,
            track_every=track_every, callbacks=callbacks, warm_start=warm_start,
            accelerator=accelerator, compile=compile, device=device, dtype=dtype,
            random_state=random_state, verbose=verbose,
        )

    def _build_module(self, n_features, local_dim, n_classes, generator):
        self.image_shape_ = resolve_image_shape(self._shape_from_input(self.image_shape),
                                                n_features)
        self.leaf_features_, _ = quadtree_leaf_order(self.image_shape_, self.top_split)
        n_levels = int(np.log2(self.leaf_features_.size))
        self.channels_ = resolve_channels(self.channels, n_levels)
        return QCNNNetwork(self.leaf_features_, local_dim, self.channels_, n_classes,
                           symmetric_pooling=bool(self.symmetric_pooling), generator=generator)

    def _default_tracked_partitions(self):
        if len(self.image_shape_) == 1:
            return "left_right"
        # Both halvings, but only along sides of more than one pixel.
        height, width = self.image_shape_
        halvings = [partition for partition, side in (("left_right", width), ("up_down", height))
                    if side > 1]
        # A single pixel: the default's own error about one site.
        return halvings or self._resolved_default_partition()

    def tree_network(self):
        """The fitted network folded into a float64 tree tensor network.

        BatchNorm (eval mode) and the readout are folded into linear maps that
        act on vectors carrying the constant channel, so the result evaluates to
        exactly the class scores: ``alpha_y(x) = <x|Psi_y>``.

        Returns
        -------
        network : skqcnn.entanglement.TreeNetwork
            Leaves in the tree order ``leaf_features_``; padded leaves fixed.
        """
        check_is_fitted(self)
        matrices, readout, fixed = self.net_.module_.network.fold()
        return TreeNetwork(self.local_dim_, matrices, readout, fixed)

    def _leaf_mask(self, in_a):
        """A mask over pixels as a mask over the tree's leaves (padding: False)."""
        leaves = self.leaf_features_
        return np.where(leaves >= 0, in_a[np.maximum(leaves, 0)], False)

    def _heavy_cut(self, network, leaves, max_cut_dim):
        """Why the spectrum cannot be formed at this cut, or None."""
        weight, _ = tree_min_cut(network, leaves)
        if weight <= max_cut_dim:
            return None
        return (f"the minimum cut of this partition has weight {_format_int(weight)} "
                f"(the Schmidt-rank bound), above max_cut_dim={max_cut_dim}; the cost of "
                f"the spectrum grows with this weight (raise max_cut_dim to allow it).")

    def _exact_spectra(self, in_a, classes, max_cut_dim):
        network, leaves = self.tree_network(), self._leaf_mask(in_a)
        obstacle = self._heavy_cut(network, leaves, max_cut_dim)
        if obstacle is not None:
            raise ExactUnavailable(obstacle)
        return tree_schmidt_spectra(network, leaves, classes=classes, max_cut_dim=max_cut_dim)

    def _exact_entropies(self, in_a, alpha, classes, max_cut_dim):
        network, leaves = self.tree_network(), self._leaf_mask(in_a)
        # Integer orders >= 2 stay exact at any cut (replica trick).
        if _integer_order(alpha) is None:
            obstacle = self._heavy_cut(network, leaves, max_cut_dim)
            if obstacle is not None:
                raise ExactUnavailable(
                    f"{obstacle} Only integer orders alpha >= 2 are exact at such a cut."
                )
        try:
            return tree_entropies(network, leaves, alpha=alpha, classes=classes,
                                  max_cut_dim=max_cut_dim)
        except ContractionTooLarge as why:
            raise ExactUnavailable(str(why)) from None

    def _renyi2_route(self):
        return ("the exact Renyi-2 entropy at any cut whose replica contraction fits the "
                "engine's limits, and beyond them a Monte Carlo estimate")

    def _rank_bound(self, in_a):
        return tree_min_cut(self.tree_network(), self._leaf_mask(in_a))
