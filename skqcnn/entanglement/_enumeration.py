"""Dense network states by evaluating a network on every one-hot configuration."""

import copy

import numpy as np
import torch

from ._spectra import MAX_AMPLITUDES


def float64_eval_copy(network, device=None):
    """A float64, eval-mode copy of a network, leaving the original untouched.

    Parameters
    ----------
    network : torch.nn.Module
    device : str or torch.device or None, default=None
        Device of the copy; None keeps the device of the network's first
        parameter (CPU for a network without parameters).

    Returns
    -------
    copy : torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> from skqcnn.entanglement._enumeration import float64_eval_copy
    >>> net = float64_eval_copy(torch.nn.Linear(2, 1))
    >>> net.weight.dtype, net.training
    (torch.float64, False)
    """
    if device is None:
        first = next(network.parameters(), None)
        device = first.device if first is not None else "cpu"
    return copy.deepcopy(network).to(device=device, dtype=torch.float64).eval()


def configurations(start, stop, n_sites, local_dim, device=None):
    """Integer configurations ``start..stop-1`` in C order (last site fastest).

    Parameters
    ----------
    start, stop : int
        Range of flat indices into ``local_dim ** n_sites``.
    n_sites, local_dim : int
    device : str or torch.device or None, default=None

    Returns
    -------
    configs : torch.Tensor of int64, shape (stop - start, n_sites)

    Examples
    --------
    >>> from skqcnn.entanglement._enumeration import configurations
    >>> configurations(0, 4, n_sites=2, local_dim=2).tolist()
    [[0, 0], [0, 1], [1, 0], [1, 1]]
    """
    flat = torch.arange(start, stop, dtype=torch.int64, device=device)
    place = local_dim ** torch.arange(n_sites - 1, -1, -1, dtype=torch.int64, device=device)
    return (flat.unsqueeze(1) // place) % local_dim


def enumerate_amplitudes(network, n_sites, local_dim, *, batch_size=2**13, device=None):
    """Network state of every class as a dense tensor.

    The network is multilinear in its per-site feature vectors, so its score
    on the product of one-hot vectors ``e_{i_1}, ..., e_{i_N}`` is the
    coefficient ``Psi_y(i_1, ..., i_N)`` (``docs/theory.rst``, section "Network states"). A float64
    copy of the network is evaluated in eval mode (fixed BatchNorm maps) on
    all ``local_dim ** n_sites`` configurations, in batches.

    Parameters
    ----------
    network : torch.nn.Module
        Maps features of shape ``(batch, n_sites, local_dim)`` to scores of
        shape ``(batch, n_classes)``; it is not modified.
    n_sites : int
        Number of sites N.
    local_dim : int
        Local dimension M.
    batch_size : int, default=8192
        Configurations per forward pass.
    device : str or torch.device or None, default=None
        Where to evaluate; None uses the network's device.

    Returns
    -------
    amplitudes : ndarray of float64, shape (n_classes, local_dim ** n_sites)
        C order: the last site varies fastest, as expected by
        :func:`~skqcnn.entanglement.spectrum_from_amplitudes`.

    Raises
    ------
    ValueError
        If ``local_dim ** n_sites`` exceeds ``2**22``; use the Monte Carlo
        Renyi-2 estimator for such systems.

    Examples
    --------
    >>> import torch
    >>> from skqcnn.entanglement._enumeration import enumerate_amplitudes
    >>> from skqcnn.nn._convac import OverlappingConvACNetwork
    >>> net = OverlappingConvACNetwork((4,), 2, channels=(3,), kernel_size=2, n_classes=2)
    >>> enumerate_amplitudes(net, n_sites=4, local_dim=2).shape
    (2, 16)
    """
    size = local_dim**n_sites
    if size > MAX_AMPLITUDES:
        raise ValueError(
            f"local_dim ** n_sites = {local_dim}**{n_sites} = {size} amplitudes exceeds "
            f"the enumeration limit of 2**22 = {MAX_AMPLITUDES}; estimate the Renyi-2 "
            "entropy by Monte Carlo instead (skqcnn.entanglement._monte_carlo)."
        )
    net = float64_eval_copy(network, device)
    device = next(net.parameters()).device
    blocks = []
    with torch.no_grad():
        for start in range(0, size, batch_size):
            stop = min(start + batch_size, size)
            configs = configurations(start, stop, n_sites, local_dim, device)
            features = torch.nn.functional.one_hot(configs, local_dim).to(torch.float64)
            blocks.append(net(features).cpu())
    return np.ascontiguousarray(torch.cat(blocks).T.numpy())
