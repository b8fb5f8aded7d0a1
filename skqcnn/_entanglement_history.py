"""The table of entropies an entanglement tracker records, and its one pivot.

numpy only: the plotting functions read histories without importing torch.
"""

import numbers
from collections.abc import Mapping

import numpy as np

ROW_KEYS = ("epoch", "partition", "class", "entropy", "train_loss", "valid_loss")
# The keys a row needs to be pivoted; the losses are optional until plotted.
_PIVOT_KEYS = ROW_KEYS[:4]


class EntanglementHistory(list):
    """Rows of entanglement entropies recorded during training.

    A list of dicts, one per (epoch, partition, class), with the keys
    ``epoch`` (0 is the network before training), ``partition`` (its label),
    ``class`` (a label from ``classes_``), ``entropy``, ``train_loss`` and
    ``valid_loss`` (NaN where there is none, e.g. at epoch 0 or without a
    validation split). ``pandas.DataFrame(history)`` works directly; so does
    :meth:`to_frame`. :meth:`as_array` pivots one partition into an
    (epochs, classes) table; the plotting functions use it.

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
        return list(dict.fromkeys(row["partition"] for row in check_rows(self)))

    def as_array(self, partition=None, *, classes=None, value="entropy",
                 return_classes=False):
        """One partition's rows as an (epochs, classes) table.

        Parameters
        ----------
        partition : str or None, default=None
            A label from :attr:`partitions`; None is allowed when there is
            only one.
        classes : label, array-like of labels or None, default=None
            Class labels, in the order wanted (a lone label means that class);
            None means every class of the partition, sorted when the labels
            can be (the order of ``classes_``).
        value : {"entropy", "train_loss", "valid_loss"}, default="entropy"
            The key whose values fill the table.
        return_classes : bool, default=False
            Also return the class labels of the columns.

        Returns
        -------
        epochs : ndarray of int of shape (n_epochs,)
            Sorted.
        table : ndarray of float64 of shape (n_epochs, n_classes)
        classes : list
            The column labels; only with ``return_classes=True``.

        Raises
        ------
        ValueError
            If the history is empty, the partition or a class is not in it,
            several partitions are recorded and none was chosen, or an epoch
            lacks a class or has two rows for one.
        TypeError
            If a row is no dict or holds a value that is not a real number.
        """
        rows = check_rows(self)
        if not rows:
            raise ValueError("The entanglement history is empty: there are no rows.")
        labels = list(dict.fromkeys(row["partition"] for row in rows))
        if partition is None:
            if len(labels) > 1:
                raise ValueError(
                    f"The history has {len(labels)} partitions {labels}; choose one "
                    f"with partition=."
                )
            partition = labels[0]
        elif partition not in labels:
            raise ValueError(f"Partition {partition!r} is not in the history; it has {labels}.")
        rows = [row for row in rows if row["partition"] == partition]
        selected = _selected_classes(rows, partition, classes)
        column = {label: j for j, label in enumerate(selected)}
        rows = [row for row in rows if row["class"] in column]
        epochs = sorted({int(row["epoch"]) for row in rows})
        line = {epoch: i for i, epoch in enumerate(epochs)}
        table = np.full((len(epochs), len(selected)), np.nan)
        filled = np.zeros(table.shape, dtype=bool)
        for row in rows:
            i, j = line[int(row["epoch"])], column[row["class"]]
            if filled[i, j]:
                raise ValueError(
                    f"The history has two rows for epoch {epochs[i]}, class "
                    f"{selected[j]!r}, partition {partition!r}."
                )
            filled[i, j] = True
            table[i, j] = _real(row, value, epochs[i])
        holes = np.argwhere(~filled)
        if holes.size:
            i, j = holes[0]
            raise ValueError(
                f"The history has no row for epoch {epochs[i]}, class {selected[j]!r}, "
                f"partition {partition!r}: every class needs a row at every recorded epoch."
            )
        epochs = np.asarray(epochs)
        return (epochs, table, selected) if return_classes else (epochs, table)

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
        return pd.DataFrame(list(self), columns=list(ROW_KEYS))


def check_rows(rows):
    """``rows`` as a list, after checking each is a history row.

    Parameters
    ----------
    rows : iterable of dict

    Returns
    -------
    rows : list of dict

    Raises
    ------
    TypeError
        If a row is no dict, or its entropy is no real number.
    ValueError
        If a row lacks a key of the pivot or has an epoch that is no int >= 0.
    """
    rows = list(rows)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(
                f"History row {i} is a {type(row).__name__}; expected a dict with "
                f"keys {list(_PIVOT_KEYS)}."
            )
        missing = [key for key in _PIVOT_KEYS if key not in row]
        if missing:
            raise ValueError(f"History row {i} lacks the key(s) {missing}.")
        epoch = row["epoch"]
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(f"History row {i} has epoch {epoch!r}; epochs are integers >= 0.")
        entropy = row["entropy"]
        if isinstance(entropy, bool) or not isinstance(entropy, numbers.Real):
            raise TypeError(
                f"History row {i} has entropy {entropy!r}; expected a real number."
            )
    return rows


def _selected_classes(rows, partition, classes):
    present = list(dict.fromkeys(row["class"] for row in rows))
    try:
        # The order of classes_, whatever the order of the rows.
        present = sorted(present)
    except TypeError:
        pass
    if classes is None:
        return present
    # A lone label (possibly a string) means that one class.
    labels = [classes] if np.ndim(classes) == 0 else list(classes)
    if not labels:
        raise ValueError("classes is empty; pass None for all classes.")
    unknown = [label for label in labels if label not in present]
    if unknown:
        raise ValueError(
            f"Classes {unknown} are not in the history of partition {partition!r}; it "
            f"has {present}."
        )
    return list(dict.fromkeys(labels))


def _real(row, key, epoch):
    if key not in row:
        raise ValueError(f"History rows lack the key {key!r}.")
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{key} at epoch {epoch} is {value!r}; expected a real number.")
    return float(value)
