"""Training batches fetched whole, not sample by sample.

skorch's :class:`~skorch.dataset.Dataset` answers one index at a time, and
torch's ``DataLoader`` then stacks the samples: for the small networks of
skqcnn that costs as much as the training step itself. A dataset with
``__getitems__`` receives a batch's indices at once (torch's ``Subset``, which
skorch's validation split uses, passes them on), so one fancy index per array
builds the batch. The sampler, and so the order of the samples, is
unchanged: the batches hold the same values as skorch's, in the same order.
Training batches skip the ``DataLoader`` as well (:class:`ShuffledBatches`).
"""

import numpy as np
import torch
from skorch.dataset import Dataset


class BatchFetchDataset(Dataset):
    """skorch's Dataset for arrays, fetched a batch at a time.

    ``X`` is a numpy array or a tensor, ``y`` one too or None. Use with
    :func:`collate_fetched_batch` as the loaders' ``collate_fn``.

    Examples
    --------
    >>> import numpy as np
    >>> from skqcnn._data_loading import BatchFetchDataset
    >>> data = BatchFetchDataset(np.arange(6.0).reshape(3, 2), np.array([0, 1, 1]))
    >>> X, y = data.__getitems__([2, 0])
    >>> X.tolist(), y.tolist()
    ([[4.0, 5.0], [0.0, 1.0]], [1, 0])
    """

    def __getitems__(self, indices):
        index = np.asarray(indices, dtype=np.int64)
        X = torch.as_tensor(self.X[index])
        # skorch stands in a zero for each missing target.
        y = (torch.zeros(index.size, 1) if self.y is None
             else torch.as_tensor(self.y[index]))
        return X, y


def collate_fetched_batch(batch):
    """``collate_fn`` for :class:`BatchFetchDataset`: its batches are already whole."""
    return batch


class ShuffledBatches:
    """Training batches of a dataset with ``__getitems__``, as torch's ``DataLoader`` makes them.

    With ``shuffle=True`` and a generator, a ``DataLoader`` draws one seed for
    its workers from the generator and then a ``RandomSampler`` permutation,
    which it cuts into runs of ``batch_size``. The same draws are made here,
    in the same order, so the batches are the same (the tests compare them);
    each is then one ``__getitems__`` call. Between training steps the
    sampler, fetcher and collation of a ``DataLoader`` cost about 40 µs a
    batch, several percent of a q-CNN's step on the digits. Accelerate
    prepares ``DataLoader`` objects, so training under ``accelerator=`` keeps
    one. Takes skorch's ``iterator_train`` arguments.

    Parameters
    ----------
    dataset : BatchFetchDataset or torch.utils.data.Subset of one
    batch_size : int, default=1
    shuffle : bool, default=False
    generator : torch.Generator or None, default=None
        Required with ``shuffle=True``: drawing a seed from torch's global
        generator, as a ``DataLoader`` without one does, would change the
        user's random stream.
    collate_fn : callable or None, default=None
        Applied to every batch (:func:`collate_fetched_batch` returns it as
        it is).

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skqcnn._data_loading import BatchFetchDataset, ShuffledBatches
    >>> data = BatchFetchDataset(np.arange(5.0)[:, None], np.arange(5))
    >>> [y.tolist() for _, y in ShuffledBatches(data, batch_size=2)]
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, generator=None, collate_fn=None):
        if shuffle and generator is None:
            raise TypeError("ShuffledBatches(shuffle=True) needs a torch.Generator.")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.collate_fn = collate_fn

    def __len__(self):
        return -(-len(self.dataset) // self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            # The DataLoader's base seed for its workers, then the sampler's order.
            torch.empty((), dtype=torch.int64).random_(generator=self.generator)
            order = torch.randperm(n, generator=self.generator)
        else:
            order = torch.arange(n)
        for indices in order.split(int(self.batch_size)):
            batch = self.dataset.__getitems__(indices.numpy())
            yield batch if self.collate_fn is None else self.collate_fn(batch)
        if self.shuffle:
            # A RandomSampler run to its end draws one more (empty) permutation.
            torch.randperm(n, generator=self.generator)
