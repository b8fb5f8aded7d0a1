"""Running statistics recomputed from data after training."""

import torch

from ._convac import OverlappingConvACNetwork
from ._layers import ConstantChannelBatchNorm
from ._rac import StepNorms


def recalibrate_statistics(network, batches):
    """Recompute every running statistic of a network from data, weights fixed.

    Products over many positions or steps amplify the gap between batch
    statistics (training mode) and running averages that lag behind fast
    changing weights (eval mode), so an eval-mode network can score much worse
    than the same weights in training mode. This pass, in the manner of
    :func:`torch.optim.swa_utils.update_bn`, sets the running mean and
    variance of every :class:`~skqcnn.nn.ConstantChannelBatchNorm` (and the
    running statistics of the step norms of a :class:`DeepRACNetwork`) to
    their averages over ``batches`` (in
    training mode). The variance is the biased one that training mode
    normalises with (torch's BatchNorm update stores ``n / (n - 1)`` times
    it), so that after recalibration on a single batch, eval mode computes
    on that batch what training mode does. An
    :class:`OverlappingConvACNetwork` sets all of its statistics itself,
    layer by layer from eval-mode inputs
    (:meth:`OverlappingConvACNetwork.recalibrate_from_data`), so its norms
    take no part in the training-mode pass. Call
    it after training, before predicting or measuring entanglement. The
    network is left in eval mode.

    Parameters
    ----------
    network : torch.nn.Module
        A network of skqcnn, or any module containing them.
    batches : iterable of torch.Tensor
        Inputs of ``network``, iterated twice (a list or a DataLoader of
        inputs; for a DataLoader yielding ``(X, y)`` pass a list of ``X``).

    Examples
    --------
    >>> import torch
    >>> from skqcnn.nn import OverlappingConvACNetwork, recalibrate_statistics
    >>> net = OverlappingConvACNetwork((4, 4), 2, (2,), 2, n_classes=2)
    >>> batches = [torch.cat((torch.ones(8, 16, 1), torch.rand(8, 16, 1)), dim=2)]
    >>> recalibrate_statistics(net, batches)
    >>> net.training
    False
    """
    convacs = [m for m in network.modules() if isinstance(m, OverlappingConvACNetwork)]
    # recalibrate_from_data overwrites every statistic of a ConvAC.
    in_convac = {id(m) for convac in convacs for m in convac.modules()}
    norms = [m for m in network.modules()
             if isinstance(m, (ConstantChannelBatchNorm, StepNorms)) and id(m) not in in_convac]
    with torch.no_grad():
        # A network of ConvACs alone needs no training-mode pass.
        if norms or not convacs:
            _average_batch_statistics(network, norms, batches)
        network.eval()
        if not convacs:
            return
        inputs = {id(m): [] for m in convacs}

        def record(module, args):
            inputs[id(module)].append(args[0])
            # Nothing after a network's only ConvAC is needed: its own
            # statistics are stale until recalibrate_from_data sets them.
            if len(convacs) == 1:
                raise _InputRecorded

        handles = [m.register_forward_pre_hook(record) for m in convacs]
        try:
            for batch in batches:
                try:
                    network(batch)
                except _InputRecorded:
                    pass
        finally:
            for handle in handles:
                handle.remove()
        for m in convacs:
            m.recalibrate_from_data(inputs[id(m)])


class _InputRecorded(Exception):
    """Ends a forward pass once the input of the only ConvAC is recorded."""


def _average_batch_statistics(network, norms, batches):
    """Set the running statistics of ``norms`` to their averages over ``batches``."""
    momenta = [norm.momentum for norm in norms]
    sums = [
        {name: torch.zeros_like(buffer) for name, buffer in norm.named_buffers()
         if name.startswith("running_")}
        for norm in norms
    ]
    # torch's BatchNorm stores the unbiased batch variance, training divides
    # by the biased one: ConstantChannelBatchNorm counts the values it
    # normalised, to convert. StepNorms store the biased variance themselves.
    plain_norms = [norm for norm in norms if isinstance(norm, ConstantChannelBatchNorm)]
    n_batches = 0
    network.train()
    try:
        # Momentum 1 makes the running statistics those of the last batch.
        for norm in norms:
            norm.momentum = 1.0
        for batch in batches:
            for norm in plain_norms:
                norm.values_per_channel = 1
            network(batch)
            n_batches += 1
            for norm, totals in zip(norms, sums):
                for name, total in totals.items():
                    statistic = getattr(norm, name)
                    # One value per channel: the running statistics were used, unchanged.
                    count = getattr(norm, "values_per_channel", 1)
                    if name == "running_var" and count > 1:
                        statistic = statistic * ((count - 1) / count)
                    total += statistic
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
    if n_batches == 0:
        raise ValueError("batches is empty.")
    for norm, totals in zip(norms, sums):
        for name, total in totals.items():
            getattr(norm, name).copy_(total / n_batches)
