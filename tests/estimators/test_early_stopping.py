"""Early stopping watches the held-out loss of the network as it would be used.

Evaluation mode normalises with running BatchNorm statistics, which lag
behind the weights until training ends and recalibrates them; a product
network multiplies the lag over its levels. So each validation pass scores a
copy recalibrated on the training split, and the recorded ``valid_loss`` is
that copy's loss, recomputed here independently.
"""

import copy

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from skorch.dataset import unpack_data

from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier
from skqcnn.nn import recalibrate_statistics


class HeldOutLosses(Callback):
    """Per epoch: the recorded valid_loss, a recalibrated copy's and the module's own."""

    def initialize(self):
        self.rows_ = []
        return self

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        def batches(dataset):
            return [unpack_data(batch) for batch in net.get_iterator(dataset, training=False)]

        # The training split fits in one recalibration batch of 1024.
        inputs = torch.cat([X for X, _ in batches(dataset_train)])
        recalibrated = copy.deepcopy(net.module_)
        recalibrate_statistics(recalibrated, [inputs])
        module = copy.deepcopy(net.module_).eval()
        losses = []
        with torch.no_grad():
            for network in (recalibrated, module):
                total = sum(float(net.get_loss(network(X), y)) * len(y)
                            for X, y in batches(dataset_valid))
                losses.append(total / len(dataset_valid))
        self.rows_.append((net.history[-1, "valid_loss"], *losses))


@pytest.mark.parametrize("cls", [QCNNClassifier, OverlappingConvACClassifier,
                                 DeepRACClassifier])
def test_validation_scores_the_recalibrated_network(cls, small_digits):
    X, y = small_digits
    probe = HeldOutLosses()
    clf = cls(early_stopping=True, n_iter_no_change=10, max_epochs=4, random_state=0,
              callbacks=[("probe", probe)]).fit(X, y)
    rows = np.array(dict(clf.net_.callbacks_)["probe"].rows_)
    assert len(rows) == 4
    np.testing.assert_allclose(rows[:, 0], rows[:, 1], rtol=1e-5)
    if cls is QCNNClassifier:
        # The lag this guards against: the module's own statistics overstate
        # the first epoch's held-out loss.
        assert rows[0, 2] > 1.2 * rows[0, 1]
