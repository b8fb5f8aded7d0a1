"""Record the entanglement of the network states while a net trains."""

import math
import numbers
import time

import numpy as np
from skorch.callbacks import Callback
from threadpoolctl import threadpool_limits


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


class EntanglementHistory(list):
    """Rows of entanglement entropies recorded during training.

    A list of dicts, one per (epoch, partition, class), with the keys
    ``epoch`` (0 is the network before training), ``partition`` (its label),
    ``class`` (a label from ``classes_``), ``entropy``, ``train_loss`` and
    ``valid_loss`` (NaN where there is none, e.g. at epoch 0 or without a
    validation split). ``pandas.DataFrame(history)`` works directly; so does
    :meth:`to_frame`.

    Examples
    --------
    >>> from skqcnn.callbacks import EntanglementHistory
    >>> history = EntanglementHistory([
    ...     {"epoch": 1, "partition": "left_right", "class": 0, "entropy": 0.5,
    ...      "train_loss": 0.9, "valid_loss": float("nan")},
    ...     {"epoch": 1, "partition": "left_right", "class": 1, "entropy": 0.7,
    ...      "train_loss": 0.9, "valid_loss": float("nan")},
    ... ])
    >>> epochs, entropies = history.as_array("left_right")
    >>> epochs.tolist(), entropies.tolist()
    ([1], [[0.5, 0.7]])
    """

    @property
    def partitions(self):
        """Partition labels, in order of first appearance."""
        return list(dict.fromkeys(row["partition"] for row in self))

    def as_array(self, partition=None):
        """Entropies of one partition as an (epochs, classes) array.

        Parameters
        ----------
        partition : str or None, default=None
            A label from :attr:`partitions`; None is allowed when there is
            only one.

        Returns
        -------
        epochs : ndarray of int of shape (n_epochs,)
        entropies : ndarray of float64 of shape (n_epochs, n_classes)
            Columns in the order the classes were recorded.
        """
        labels = self.partitions
        if partition is None:
            if len(labels) != 1:
                raise ValueError(
                    f"The history holds the partitions {labels}; choose one with partition=."
                )
            partition = labels[0]
        rows = [row for row in self if row["partition"] == partition]
        if not rows:
            raise ValueError(f"No rows for partition {partition!r}; recorded: {labels}.")
        epochs = list(dict.fromkeys(row["epoch"] for row in rows))
        classes = list(dict.fromkeys(row["class"] for row in rows))
        table = np.full((len(epochs), len(classes)), np.nan)
        for row in rows:
            table[epochs.index(row["epoch"]), classes.index(row["class"])] = row["entropy"]
        return np.asarray(epochs), table

    def to_frame(self):
        """The rows as a pandas DataFrame.

        Returns
        -------
        frame : pandas.DataFrame
            One row per (epoch, partition, class).
        """
        try:
            import pandas as pd
        except ImportError as error:
            raise ImportError(
                "to_frame needs pandas (pip install pandas); the history itself is a "
                "list of dicts and needs nothing else."
            ) from error
        return pd.DataFrame(list(self), columns=list(_ROW_KEYS))


_ROW_KEYS = ("epoch", "partition", "class", "entropy", "train_loss", "valid_loss")


class EntanglementTracker(Callback):
    """Entanglement entropies of the class states, every few epochs.

    After every ``every``-th epoch (and once before training), the tracker
    asks the estimator for ``entanglement_entropy(partition, ...)`` of each
    tracked partition. The network is folded with its BatchNorm running
    statistics of that moment, the statistics that evaluation would use. Each
    class gets a row in :class:`EntanglementHistory` (the estimator's
    ``entanglement_history_``), and skorch's history gets the mean over
    classes as ``entropy_<label>`` in the epoch's row, so ``verbose=1`` prints
    it in the epoch table.

    The estimators add a tracker for ``track_entanglement=``; attach one
    yourself through their ``callbacks=`` parameter for other settings. The
    estimator binds a copy of the callback to itself when it builds its net:
    the tracker needs the estimator's partitions and folding, so it works with
    skqcnn estimators only.

    Parameters
    ----------
    partitions : str, int, tuple, list or dict, default="left_right"
        One partition, a list of them, or a dict ``{label: partition}``;
        see :func:`labelled_partitions`.
    every : int, default=1
        Record after epochs ``every, 2 * every, ...``.
    alpha : float, default=1
        Renyi order; 1 is von Neumann.
    base : float or None, default=None
        Logarithm base; None means nats.
    classes : array-like or None, default=None
        Labels from ``classes_`` to track; None means all.
    entropy_params : dict or None, default=None
        More keyword arguments for the estimator's ``entanglement_entropy``,
        for instance ``{"method": "monte_carlo", "n_samples": 1000}`` for a
        ConvAC too large to enumerate.

    Attributes
    ----------
    history_ : EntanglementHistory
        The rows recorded so far.
    seconds_ : float
        Time spent computing entropies.

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

    def __init__(self, partitions="left_right", every=1, alpha=1, base=None, classes=None,
                 entropy_params=None):
        self.partitions = partitions
        self.every = every
        self.alpha = alpha
        self.base = base
        self.classes = classes
        self.entropy_params = entropy_params

    def bind(self, estimator):
        """Validate the parameters and attach the estimator to analyse.

        Parameters
        ----------
        estimator : skqcnn estimator
            Being fitted; its ``entanglement_entropy`` is called during training.

        Returns
        -------
        self : EntanglementTracker
        """
        if (not isinstance(self.every, numbers.Integral) or isinstance(self.every, bool)
                or self.every < 1):
            raise ValueError(f"every (track_every) must be an int >= 1, got {self.every!r}.")
        if self.entropy_params is not None and not isinstance(self.entropy_params, dict):
            raise TypeError(f"entropy_params must be a dict or None, got {self.entropy_params!r}.")
        self.labelled_partitions_ = labelled_partitions(self.partitions)
        self.estimator_ = estimator
        return self

    def initialize(self):
        """Start an empty history."""
        self.history_ = EntanglementHistory()
        self.seconds_ = 0.0
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Record the untrained network (this also checks the partitions)."""
        if not hasattr(self, "estimator_"):
            raise TypeError(
                "EntanglementTracker works inside skqcnn estimators: pass it in their "
                "callbacks= parameter (or use track_entanglement=), not to a bare skorch net."
            )
        if len(net.history) == 0:
            self._record(net, epoch=0, losses={})

    def on_epoch_end(self, net, **kwargs):
        """Record every ``every`` epochs."""
        epoch = len(net.history)
        if epoch % self.every == 0:
            row = net.history[-1]
            losses = {key: row[key] for key in ("train_loss", "valid_loss") if key in row}
            self._record(net, epoch, losses)

    def _record(self, net, epoch, losses):
        start = time.perf_counter()
        # A multi-threaded BLAS on a busy two-core machine (torch's own
        # threads, other processes) oversubscribes it: the 10 up_down spectra
        # of a digits q-CNN took 8.2 s instead of 0.27 s with one thread.
        with threadpool_limits(limits=1, user_api="blas"):
            self._record_entropies(net, epoch, losses)
        self.seconds_ += time.perf_counter() - start

    def _record_entropies(self, net, epoch, losses):
        estimator = self.estimator_
        params = dict(self.entropy_params or {})
        classes = estimator.classes_[estimator._class_indices(self.classes)]
        for label, partition in self.labelled_partitions_.items():
            entropies = estimator.entanglement_entropy(
                partition, alpha=self.alpha, classes=self.classes, base=self.base, **params,
            )
            for label_y, entropy in zip(classes.tolist(), entropies.tolist()):
                self.history_.append({
                    "epoch": epoch,
                    "partition": label,
                    "class": label_y,
                    "entropy": entropy,
                    "train_loss": float(losses.get("train_loss", math.nan)),
                    "valid_loss": float(losses.get("valid_loss", math.nan)),
                })
            if epoch > 0:
                net.history.record(f"entropy_{label}", float(np.mean(entropies)))
