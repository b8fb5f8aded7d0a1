"""Stop training with a clear error when the loss stops being finite."""

import math

import torch
from skorch.callbacks import Callback


class FiniteLossGuard(Callback):
    """Raise ``ValueError`` as soon as a training batch loss is NaN or inf.

    The weights are checked once more when training ends, since the last
    optimizer step comes after the last loss.

    Product pooling multiplies many factors, so a too-large learning rate or
    float32 range can overflow. Without this guard skorch would keep training
    on NaN weights and predict garbage.

    Examples
    --------
    >>> from skqcnn.callbacks import FiniteLossGuard
    >>> FiniteLossGuard()
    <FiniteLossGuard()>
    """

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        """Check the batch loss."""
        loss = kwargs.get("loss")
        # skorch has already synchronised on the loss to record it, so reading
        # it as a float costs less than a tensor test.
        if training and loss is not None and not math.isfinite(loss.item()):
            self._fail(net, f"The training loss became non-finite ({loss.item()})")

    def on_train_end(self, net, **kwargs):
        """Check the weights: the last step can overflow after the last loss."""
        if not all(torch.isfinite(p).all() for p in net.module_.parameters()):
            self._fail(net, "The weights became non-finite after the last training step")

    @staticmethod
    def _fail(net, what):
        dtype = next(net.module_.parameters()).dtype
        # float64 is a fix only where float32's range was the limit.
        if dtype == torch.float64:
            instead = (": training already runs in float64, so the weights themselves grew "
                       "too large")
        else:
            instead = ", or train in float64 (dtype=np.float64), whose range is wider"
        raise ValueError(
            f"{what} in epoch {len(net.history)}. Lower the learning rate (lr={net.lr}), for "
            f"example to lr={net.lr / 10:g}{instead}."
        )

    def __repr__(self):
        return "<FiniteLossGuard()>"
