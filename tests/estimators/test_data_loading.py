"""Training batches without a DataLoader: the same batches, in the same order."""

import numpy as np
import pytest
import torch

from skqcnn._data_loading import BatchFetchDataset, ShuffledBatches, collate_fetched_batch


def batches(loader):
    return [(X.tolist(), y.tolist()) for X, y in loader]


@pytest.mark.parametrize("n_samples, batch_size", [(23, 5), (20, 5), (3, 8), (1, 1)])
@pytest.mark.parametrize("subset", [False, True])
def test_shuffled_batches_are_the_data_loaders(n_samples, batch_size, subset):
    rng = np.random.default_rng(0)
    dataset = BatchFetchDataset(rng.normal(size=(n_samples + 4, 3)).astype(np.float32),
                                rng.integers(0, 3, size=n_samples + 4))
    if subset:
        # skorch's validation split hands the training loader a Subset.
        dataset = torch.utils.data.Subset(dataset, rng.permutation(n_samples + 4)[:n_samples])
    else:
        dataset = BatchFetchDataset(dataset.X[:n_samples], dataset.y[:n_samples])
    generators = [torch.Generator().manual_seed(7) for _ in range(2)]
    reference = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                            generator=generators[0],
                                            collate_fn=collate_fetched_batch)
    ours = ShuffledBatches(dataset, batch_size=batch_size, shuffle=True,
                           generator=generators[1], collate_fn=collate_fetched_batch)
    assert len(ours) == len(reference)
    # Two epochs in a row: each draws from the generator as a DataLoader does.
    for _ in range(2):
        expected = batches(reference)
        assert batches(ours) == expected
        assert sorted(y for _, ys in expected for y in ys) == sorted(
            int(dataset[i][1]) for i in range(n_samples))


def test_shuffled_batches_in_order_and_without_a_generator():
    dataset = BatchFetchDataset(np.arange(10.0)[:, None], np.arange(10))
    assert [y for _, ys in batches(ShuffledBatches(dataset, batch_size=4)) for y in ys] == list(
        range(10))
    with pytest.raises(TypeError, match="needs a torch.Generator"):
        ShuffledBatches(dataset, batch_size=4, shuffle=True)
