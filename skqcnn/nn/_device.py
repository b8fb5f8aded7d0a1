"""Where a module lives, for code that receives a module and must feed it."""

import torch


def module_device(module):
    """The device of ``module``'s first parameter (or buffer); the CPU if it has none.

    Under Accelerate a skorch net's ``device`` is None, so callers ask the
    module itself.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    device : torch.device

    Examples
    --------
    >>> import torch
    >>> from skqcnn.nn._device import module_device
    >>> module_device(torch.nn.Linear(2, 2))
    device(type='cpu')
    """
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")
