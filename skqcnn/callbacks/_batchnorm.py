"""Recompute running statistics after training, and for each validation pass."""

import copy

import torch
from skorch.callbacks import Callback
from skorch.dataset import unpack_data

from ..nn import recalibrate_statistics
from ..nn._device import module_device
from ._state import check_state_keys


class BatchNormRecalibration(Callback):
    """Replace running statistics by exact training-set averages.

    Running averages with momentum lag behind the weights, and a product
    network multiplies that lag over its levels: after a few epochs the
    eval-mode network can score far below the training loss. At the end of
    training this callback runs :func:`skqcnn.nn.recalibrate_statistics` over
    the training data, without gradients. During training, the estimators'
    net validates a copy recalibrated on the training split
    (:meth:`recalibrated_copy`), so that the validation loss early stopping
    watches is that of the model as it would be used.

    Parameters
    ----------
    batch_size : int, default=1024
        Batch size of the recalibration pass. Larger batches give variance
        estimates closer to the population's.

    Attributes
    ----------
    training_statistics_ : dict of str to torch.Tensor or None
        The module's buffers as training left them, before recalibration;
        a resumed fit (``warm_start=True``) starts from them again.

    Examples
    --------
    >>> from skqcnn.callbacks import BatchNormRecalibration
    >>> BatchNormRecalibration(batch_size=512).batch_size
    512
    """

    def __init__(self, batch_size=1024):
        self.batch_size = batch_size

    def initialize(self):
        """Forget the statistics of any earlier fit."""
        self.training_statistics_ = None
        return self

    def state_dict(self):
        """What a resumed fit needs: the statistics training had left.

        Returns
        -------
        state : dict
            ``{"training_statistics": dict of str to torch.Tensor or None}``.
        """
        return {"training_statistics": self.training_statistics_}

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned.

        Parameters
        ----------
        state : dict
            As returned by :meth:`state_dict`.

        Returns
        -------
        self : BatchNormRecalibration
        """
        check_state_keys(self, state, {"training_statistics"})
        statistics = state["training_statistics"]
        if statistics is not None and not (
                isinstance(statistics, dict)
                and all(isinstance(key, str) and isinstance(value, torch.Tensor)
                        for key, value in statistics.items())):
            raise TypeError(
                "training_statistics must be None or a dict of buffer names to tensors, "
                f"got {type(statistics).__name__}."
            )
        self.training_statistics_ = None if statistics is None else dict(statistics)
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """On a resumed fit, put back the running statistics training had left."""
        # Training mode normalises with batch statistics but keeps updating
        # the running ones, which evaluation during training (entanglement
        # tracking) reads: a resumed fit must continue from those, not from
        # the recalibrated values, to repeat an uninterrupted fit.
        if self.training_statistics_ is None:
            return
        with torch.no_grad():
            for name, buffer in net.module_.named_buffers():
                # copy_ also moves a statistic loaded on the CPU to the buffer's device.
                buffer.copy_(self.training_statistics_[name])

    def on_train_end(self, net, X=None, y=None, **kwargs):
        """Recompute the statistics on ``X``."""
        if X is None:
            return
        self.training_statistics_ = {
            name: buffer.detach().clone() for name, buffer in net.module_.named_buffers()
        }
        recalibrate_statistics(net.module_, self._input_batches(net, net.get_dataset(X)))

    def recalibrated_copy(self, net, dataset):
        """A copy of ``net.module_`` recalibrated on ``dataset``; the module is left alone.

        Parameters
        ----------
        net : skorch.NeuralNet
            An initialised net.
        dataset : torch.utils.data.Dataset
            Data of the net's dataset type, such as a training split.

        Returns
        -------
        module : torch.nn.Module
            In eval mode.
        """
        module = copy.deepcopy(net.module_)
        recalibrate_statistics(module, self._input_batches(net, dataset))
        return module

    def _input_batches(self, net, dataset):
        # Its own generator: without one, the loader draws its base seed from
        # torch's global generator, which fits in other threads share. The
        # net's collate_fn matches its dataset (skqcnn fetches whole batches).
        collate = net.get_params_for("iterator_valid").get("collate_fn")
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.batch_size,
                                             generator=torch.Generator(), collate_fn=collate)
        device = module_device(net.module_)
        return [unpack_data(batch)[0].to(device) for batch in loader]
