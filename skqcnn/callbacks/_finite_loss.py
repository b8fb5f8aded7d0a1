"""Stop training with a clear error when the loss stops being finite."""

import torch
from skorch.callbacks import Callback


class FiniteLossGuard(Callback):
    """Raise ``ValueError`` as soon as a training batch loss is NaN or inf.

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
        if training and loss is not None and not torch.isfinite(loss).all():
            epoch = len(net.history)
            dtype = next(net.module_.parameters()).dtype
            raise ValueError(
                f"The training loss became non-finite ({loss.item()}) in epoch "
                f"{epoch}. Lower the learning rate (lr={net.lr}), or train in "
                f"float64 (dtype=np.float64; now {dtype})."
            )

    def __repr__(self):
        return "<FiniteLossGuard()>"
