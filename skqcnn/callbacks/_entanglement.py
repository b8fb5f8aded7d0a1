"""Record the entanglement of the network states while a net trains."""

import math
import numbers
import time

import numpy as np
from skorch.callbacks import Callback, EarlyStopping

from .._entanglement_history import EntanglementHistory, check_rows
from ._blas_threads import single_blas_thread
from ._state import check_state_keys


def partition_label(partition):
    """A short string naming ``partition`` in histories and column names.

    Parameters
    ----------
    partition : str, int, tuple or array-like
        A partition as the estimators accept it.

    Returns
    -------
    label : str
        Names as they are, ``("block", 4)`` as ``"block_4"``, an int ``k``
        as ``"k"``. Masks and index arrays have no natural name: pass them in
        a dict ``{label: partition}`` instead.

    Examples
    --------
    >>> from skqcnn.callbacks import partition_label
    >>> partition_label("left_right"), partition_label(("block", 4)), partition_label(3)
    ('left_right', 'block_4', '3')
    """
    if isinstance(partition, str):
        return partition
    if isinstance(partition, numbers.Integral) and not isinstance(partition, bool):
        return str(int(partition))
    if _is_named_tuple_partition(partition):
        return f"{partition[0]}_{partition[1]}"
    raise TypeError(
        f"Cannot name the partition {partition!r} in the history; pass masks and "
        f"index arrays as a dict {{label: partition}}."
    )


def _is_named_tuple_partition(partition):
    # ("block", 4): a named partition with a size, a single partition.
    return (isinstance(partition, tuple) and len(partition) == 2
            and isinstance(partition[0], str)
            and isinstance(partition[1], numbers.Integral))


def labelled_partitions(partitions):
    """Normalise a tracking specification to a dict ``{label: partition}``.

    Parameters
    ----------
    partitions : str, int, tuple, list or dict
        One partition (a name, an int, or a ``(name, size)`` tuple), a list or
        tuple of partitions, or a dict ``{label: partition}``.

    Returns
    -------
    partitions : dict
        Labels to partitions, in the given order.

    Examples
    --------
    >>> from skqcnn.callbacks import labelled_partitions
    >>> labelled_partitions(("left_right", "up_down"))
    {'left_right': 'left_right', 'up_down': 'up_down'}
    """
    if isinstance(partitions, dict):
        resolved = {str(label): spec for label, spec in partitions.items()}
    elif isinstance(partitions, (str, numbers.Integral)) or _is_named_tuple_partition(partitions):
        resolved = {partition_label(partitions): partitions}
    elif isinstance(partitions, (list, tuple)):
        resolved = {partition_label(spec): spec for spec in partitions}
    else:
        raise TypeError(
            f"Partitions to track must be a partition name, a list of partitions or a "
            f"dict {{label: partition}}, got {partitions!r}."
        )
    if not resolved:
        raise ValueError("Give at least one partition to track.")
    return resolved


class EntanglementTracker(Callback):
    """Entanglement entropies of the class states, every few epochs.

    Before training, after every ``every``-th epoch and once more when
    training ends, the tracker calls its measuring function on each tracked
    partition. Each class gets a row in :class:`EntanglementHistory` (the
    estimator's ``entanglement_history_``), and skorch's history gets the
    mean over classes as ``entropy_<label>`` in the epoch's row, so
    ``verbose=1`` prints it in the epoch table.

    What the rows measure: a row of epoch ``k`` describes the network at the
    end of epoch ``k``, folded with the BatchNorm running statistics of that
    moment (those evaluation would use then). The rows of the last epoch are
    measured after every other callback has finished training (early
    stopping restoring the best weights, :class:`BatchNormRecalibration`), so
    they equal the fitted estimator's ``entanglement_entropy`` with the same
    settings; when early stopping restored an earlier epoch's weights, they
    carry that epoch's losses. skorch's ``entropy_<label>`` column keeps the
    end-of-epoch means. A resumed fit (``warm_start=True``) puts the end-of-epoch rows
    back before training on, so its history is that of an uninterrupted fit.

    The estimators add a tracker for ``track_entanglement=``; attach one
    yourself through their ``callbacks=`` parameter for other settings. The
    estimator binds a copy of the callback to its own ``entanglement_entropy``
    when it builds its net. Outside an estimator, call :meth:`bind` yourself.

    Parameters
    ----------
    partitions : str, int, tuple, list or dict, default="left_right"
        One partition, a list of them, or a dict ``{label: partition}``;
        see :func:`labelled_partitions`.
    every : int, default=1
        Record after epochs ``every, 2 * every, ...``.
    alpha : float, default=2
        Renyi order; 1 is von Neumann. The default is that of the estimators'
        ``entanglement_entropy``.
    base : float or None, default=None
        Logarithm base; None means nats.
    classes : array-like or None, default=None
        Labels from ``classes_`` to track; None means all.
    entropy_params : dict or None, default=None
        More keyword arguments for the estimator's ``entanglement_entropy``,
        for instance ``{"n_samples": 500}``: on a ConvAC or deep RAC too large
        to enumerate, its default ``method="auto"`` runs a Monte Carlo
        estimate at every recorded epoch.

    Attributes
    ----------
    history_ : EntanglementHistory
        The rows recorded so far.
    seconds_ : float
        Time spent computing entropies.

    Notes
    -----
    The entropies are computed with one BLAS thread: a multi-threaded BLAS
    oversubscribes a busy machine and makes the small SVDs of tracking many
    times slower. BLAS thread counts are process-wide, so while a tracker
    measures, BLAS calls of other threads of the process run on one thread
    too. Trackers of fits in several threads measure one at a time, so the
    process always gets its own thread count back.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skqcnn import QCNNClassifier
    >>> from skqcnn.callbacks import EntanglementTracker
    >>> X, y = load_digits(n_class=2, return_X_y=True)
    >>> tracker = EntanglementTracker(["left_right", "up_down"], every=2)
    >>> clf = QCNNClassifier(max_epochs=4, callbacks=[tracker], random_state=0).fit(X, y)
    >>> sorted({row["epoch"] for row in clf.entanglement_history_})
    [0, 2, 4]
    """

    def __init__(self, partitions="left_right", every=1, alpha=2, base=None, classes=None,
                 entropy_params=None):
        self.partitions = partitions
        self.every = every
        self.alpha = alpha
        self.base = base
        self.classes = classes
        self.entropy_params = entropy_params

    def bind(self, measure, class_labels):
        """Validate the parameters and attach the measuring function.

        Parameters
        ----------
        measure : callable
            ``measure(partition, *, alpha, base, **entropy_params)`` returns
            the entropies of the tracked classes as an array of shape
            ``(len(class_labels),)``. The estimators bind their own
            ``entanglement_entropy`` with ``classes=`` fixed, after resolving
            :attr:`classes`. It must pickle for the fitted estimator to pickle
            (a bound method or a ``functools.partial`` of one does).
        class_labels : list
            The labels of the classes ``measure`` returns, in its order.

        Returns
        -------
        self : EntanglementTracker
        """
        if (not isinstance(self.every, numbers.Integral) or isinstance(self.every, bool)
                or self.every < 1):
            raise ValueError(f"every (track_every) must be an int >= 1, got {self.every!r}.")
        if self.entropy_params is not None and not isinstance(self.entropy_params, dict):
            raise TypeError(f"entropy_params must be a dict or None, got {self.entropy_params!r}.")
        if not callable(measure):
            raise TypeError(f"measure must be callable, got {measure!r}.")
        self.labelled_partitions_ = labelled_partitions(self.partitions)
        self.measure_ = measure
        self.class_labels_ = list(class_labels)
        return self

    def initialize(self):
        """Start an empty history."""
        self.history_ = EntanglementHistory()
        self.seconds_ = 0.0
        self.epoch_end_rows_ = None
        return self

    def state_dict(self):
        """What a resumed fit and a loaded estimator need.

        Returns
        -------
        state : dict
            ``history`` (the rows), ``seconds`` and ``epoch_end_rows``: the
            rows of the last epoch as measured at its end, before the final
            record replaced them (None when training has not ended).
        """
        return {"history": [dict(row) for row in self.history_],
                "seconds": float(self.seconds_),
                "epoch_end_rows": self.epoch_end_rows_}

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned.

        Parameters
        ----------
        state : dict
            As returned by :meth:`state_dict`.

        Returns
        -------
        self : EntanglementTracker
        """
        check_state_keys(self, state, {"history", "seconds", "epoch_end_rows"})
        history = EntanglementHistory(check_rows(state["history"]))
        ended = state["epoch_end_rows"]
        if ended is not None:
            ended = check_rows(ended)
        if isinstance(state["seconds"], bool) or not isinstance(state["seconds"], numbers.Real):
            raise TypeError(f"seconds must be a real number, got {state['seconds']!r}.")
        self.history_ = history
        self.seconds_ = float(state["seconds"])
        self.epoch_end_rows_ = ended
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Record the untrained network (this also checks the partitions)."""
        if not hasattr(self, "measure_"):
            raise TypeError(
                "EntanglementTracker needs a measuring function: inside skqcnn estimators "
                "(pass it in their callbacks= parameter, or use track_entanglement=) it "
                "is bound for you; on a bare skorch net call bind(measure, class_labels) "
                "first."
            )
        if len(net.history) == 0:
            self._record(net, epoch=0, losses={})
        elif self.epoch_end_rows_ is not None:
            # Training goes on from the end-of-epoch state (BatchNormRecalibration
            # puts its statistics back), so the rows of that epoch describe it again.
            final = len(net.history)
            self.history_[:] = [row for row in self.history_ if row["epoch"] != final]
            self.history_.extend(self.epoch_end_rows_)
        self.epoch_end_rows_ = None

    def on_epoch_end(self, net, **kwargs):
        """Record every ``every`` epochs."""
        epoch = len(net.history)
        if epoch % self.every == 0:
            self._record(net, epoch, _losses(net), log=True)

    def on_train_end(self, net, **kwargs):
        """Record the trained network as the last epoch's rows."""
        epoch = len(net.history)
        if epoch == 0:
            return
        self.epoch_end_rows_ = [row for row in self.history_ if row["epoch"] == epoch]
        self.history_[:] = [row for row in self.history_ if row["epoch"] != epoch]
        self._record(net, epoch, _losses(net, _restored_epoch(net)))

    def _record(self, net, epoch, losses, log=False):
        start = time.perf_counter()
        params = dict(self.entropy_params or {})
        for label, partition in self.labelled_partitions_.items():
            with single_blas_thread():
                entropies = np.asarray(self.measure_(partition, alpha=self.alpha,
                                                     base=self.base, **params),
                                       dtype=np.float64)
            if entropies.shape != (len(self.class_labels_),):
                raise ValueError(
                    f"The measuring function returned entropies of shape {entropies.shape} "
                    f"for {len(self.class_labels_)} tracked classes."
                )
            for label_y, entropy in zip(self.class_labels_, entropies.tolist()):
                self.history_.append({
                    "epoch": epoch,
                    "partition": label,
                    "class": label_y,
                    "entropy": entropy,
                    "train_loss": float(losses.get("train_loss", math.nan)),
                    "valid_loss": float(losses.get("valid_loss", math.nan)),
                })
            if log:
                net.history.record(f"entropy_{label}", float(np.mean(entropies)))
        self.seconds_ += time.perf_counter() - start


def _losses(net, epoch=None):
    """The losses of ``epoch`` (None: the last) in skorch's history."""
    row = net.history[-1] if epoch is None else next(
        row for row in net.history if row["epoch"] == epoch)
    return {key: row[key] for key in ("train_loss", "valid_loss") if key in row}


def _restored_epoch(net):
    """The epoch whose weights early stopping put back when training ended, or None."""
    for _, callback in net.callbacks_:
        if (isinstance(callback, EarlyStopping) and callback.load_best
                and getattr(callback, "best_model_weights_", None) is not None
                and callback.best_epoch_ != net.history[-1, "epoch"]):
            return callback.best_epoch_
    return None
