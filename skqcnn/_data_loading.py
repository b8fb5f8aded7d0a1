"""Training batches fetched whole, not sample by sample.

skorch's :class:`~skorch.dataset.Dataset` answers one index at a time, and
torch's ``DataLoader`` then stacks the samples: for the small networks of
skqcnn that costs as much as the training step itself. A dataset with
``__getitems__`` receives a batch's indices at once (torch's ``Subset``, which
skorch's validation split uses, passes them on), so one fancy index per array
builds the batch. The sampler, and so the order of the samples, is
unchanged: the batches hold the same values as skorch's, in the same order.
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
