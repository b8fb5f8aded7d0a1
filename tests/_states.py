"""Network states with genuine entanglement, for tests that need one.

A trained network is close to a product state (its classes sit near one
basis configuration), which tells little about an entropy method.
"""

import torch

from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier

# Spreads that give every family of test_entanglement_api.py entropies well
# above zero on both cuts it tests.
SPREAD = {"qcnn": 1.5, "convac": 1.0, "rac": 3.0}


def randomise(clf, spread, seed=0):
    """Weights ``1 + spread * normal``, BatchNorms a unit scale: entangled states.

    Draws from a CPU generator, so that a network gets the same weights on
    any device.

    The BatchNorm shifts are random too: they feed the constant channel into
    the others, without which padded sites would zero the q-CNN's state.
    """
    generator = torch.Generator().manual_seed(seed)
    network = clf.net_.module_.network
    # The ConvAC's factor norms keep every factor near 1 (a near-product
    # state) unless their means and gains are random too.
    random_norms = hasattr(network, "top_norm")
    with torch.no_grad():
        for name, tensor in network.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if "log_scale" in name or name.endswith("running_mean"):
                tensor.fill_(0.0)
            elif name.endswith(("running_var", "running_spread")):
                tensor.fill_(1.0)
            elif "norms" in name and name.endswith("weight") and not random_norms:
                tensor.fill_(1.0)
            else:
                noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
                tensor.copy_(spread * noise + (0.0 if name.endswith("bias") else 1.0))
    return clf


def family_name(clf):
    """The key of ``clf``'s family in :data:`SPREAD`."""
    return {QCNNClassifier: "qcnn", OverlappingConvACClassifier: "convac",
            DeepRACClassifier: "rac"}[type(clf)]
