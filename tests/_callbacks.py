"""skorch callbacks that the tests use to steer training."""

from skorch.callbacks import Callback


class InterruptAfter(Callback):
    """Raises KeyboardInterrupt at the end of one epoch, as Ctrl-C would."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt
