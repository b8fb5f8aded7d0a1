"""Recompute BatchNorm population statistics after training."""

import torch
from skorch.callbacks import Callback
from skorch.dataset import unpack_data

from ..nn._layers import ConstantChannelBatchNorm


class BatchNormRecalibration(Callback):
    """Replace BatchNorm running statistics by exact training-set averages.

    Running averages with momentum lag behind the weights, and a product
    network multiplies that lag over its levels: after a few epochs the
    eval-mode network can score far below the training loss. At the end of
    training this callback resets the statistics of every
    :class:`~skqcnn.nn.ConstantChannelBatchNorm` and accumulates their
    cumulative average over one no-grad pass through the training data.

    Parameters
    ----------
    batch_size : int, default=1024
        Batch size of the recalibration pass. Larger batches give variance
        estimates closer to the population's.

    Examples
    --------
    >>> from skqcnn.callbacks import BatchNormRecalibration
    >>> BatchNormRecalibration(batch_size=512).batch_size
    512
    """

    def __init__(self, batch_size=1024):
        self.batch_size = batch_size

    def on_train_end(self, net, X=None, y=None, **kwargs):
        """Recompute the statistics on ``X``."""
        norms = [m for m in net.module_.modules() if isinstance(m, ConstantChannelBatchNorm)]
        if not norms or X is None:
            return
        saved = [(m.momentum, m.training) for m in norms]
        for m in norms:
            # momentum=None makes the running statistics a cumulative average.
            m.momentum = None
            m.running_mean.zero_()
            m.running_var.fill_(1.0)
            m.num_batches_tracked.zero_()
            m.train()
        dataset = net.get_dataset(X)
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.batch_size)
        with torch.no_grad():
            for batch in loader:
                Xi, _ = unpack_data(batch)
                net.module_(Xi.to(net.device))
        for m, (momentum, training) in zip(norms, saved):
            m.momentum = momentum
            m.train(training)
