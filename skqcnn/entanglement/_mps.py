"""Exact entanglement of a depth-1 RAC, which is a matrix product state."""

import numpy as np

from ._spectra import entropy_from_spectrum, normalised_spectrum


def rac_to_mps(network):
    """Eval-mode depth-1 :class:`~skqcnn.nn.DeepRACNetwork` as a matrix product state.

    With the BatchNorm of step ``t`` folded into the matrix ``F_t`` (through
    the constant channel), one step is ``h_t = A_t[x_t] h_{t-1}`` with
    ``A_t[i][c, a] = sum_c' F_t[c, c'] W^I[c', i] W^H[c', a]``, so
    ``Psi_y(i_1, ..., i_T) = readout_y . A_T[i_T] ... A_1[i_1] h_0``.

    Parameters
    ----------
    network : DeepRACNetwork
        A network with one layer; it is not modified.

    Returns
    -------
    readout : ndarray of shape (n_classes, D)
        Left boundary vectors (one per class), ``D = 1 + R``.
    tensors : ndarray of shape (T, M, D, D)
        ``tensors[t - 1, i] = A_t[i]``.
    initial : ndarray of shape (D,)
        Right boundary vector ``h_0``.

    Raises
    ------
    ValueError
        If the network has more than one layer: a deep RAC re-uses its
        inputs and is not an MPS over the sites.

    Examples
    --------
    >>> from skqcnn.entanglement._mps import rac_to_mps
    >>> from skqcnn.nn._rac import DeepRACNetwork
    >>> readout, tensors, initial = rac_to_mps(DeepRACNetwork(5, 3, (2,), 4))
    >>> readout.shape, tensors.shape, initial.shape
    ((4, 3), (5, 3, 3, 3), (3,))
    """
    if len(network.hidden_sizes) != 1:
        raise ValueError(
            f"Only a depth-1 RAC is an MPS; this network has {len(network.hidden_sizes)} "
            "layers. Use enumeration or Monte Carlo instead."
        )
    layers, readout = network.folded_layers()
    layer = {name: value.numpy() for name, value in layers[0].items()}
    # (T, D, D') @ ((D', M) x (D', D)) over the shared channel c'.
    tensors = np.einsum("tcx,xi,xa->tica", layer["norms"], layer["input"], layer["hidden"])
    return readout.numpy(), tensors, layer["initial"]


def mps_block_spectra(readout, tensors, initial, n_a):
    """Schmidt spectra of an MPS for the cuts ``A = last n_a sites``.

    Canonical-form contraction with square-root factors of the block Gram
    matrices, so that no precision is lost to squaring: the first ``k``
    sites give ``G_k = L_k L_k^T`` with ``L_0 = h_0`` and ``L_k`` the
    triangular factor of ``[A_k[0] L_{k-1}, ..., A_k[M-1] L_{k-1}]`` (a QR
    decomposition); the last sites give ``E = K K^T`` in the same way from
    the readout with ``A^T``. The Schmidt coefficients across the cut are the
    singular values of ``K^T L``. Factors are rescaled at every step
    (entropies are scale-free), so any length works in float64; the cost is
    ``O(T M D^3)`` for all cuts together.

    Parameters
    ----------
    readout : array-like of shape (n_classes, D)
    tensors : array-like of shape (T, M, D, D)
    initial : array-like of shape (D,)
        As returned by :func:`rac_to_mps`: ``Psi_y(i_1..i_T) =
        readout_y . tensors[T-1, i_T] ... tensors[0, i_1] initial``.
    n_a : int or sequence of int
        Sizes of the block A at the end of the chain, each in ``0..T``.

    Returns
    -------
    spectra : list of list of ndarray
        ``spectra[y][j]`` is the normalised spectrum of class ``y`` for
        ``n_a[j]`` (a plain ``n_a`` gives lists of length 1).

    Examples
    --------
    >>> import numpy as np
    >>> from skqcnn.entanglement._mps import mps_block_spectra
    >>> copy = np.array([[np.eye(2), np.eye(2)[::-1]]] * 2)  # A[i] e_0 = e_i
    >>> e_0 = np.array([1.0, 0.0])
    >>> mps_block_spectra(e_0[None], copy, e_0, 1)  # Psi(i, j) = delta_ij
    [[array([0.5, 0.5])]]
    """
    readout = np.atleast_2d(np.asarray(readout, dtype=np.float64))
    tensors = np.asarray(tensors, dtype=np.float64)
    initial = np.asarray(initial, dtype=np.float64)
    n_steps = tensors.shape[0]
    sizes = [int(n) for n in np.atleast_1d(n_a)]
    if any(n < 0 or n > n_steps for n in sizes):
        raise ValueError(f"n_a must lie in 0..{n_steps}, got {n_a!r}.")
    right = [_unit_norm(initial[:, None])]
    for t in range(n_steps):
        right.append(_reduce(np.einsum("iab,bk->aik", tensors[t], right[-1])))
    left = [None] * (n_steps + 1)
    left[n_steps] = _unit_norm(readout[:, :, None])
    for t in range(n_steps - 1, -1, -1):
        left[t] = _reduce(np.einsum("iba,ybk->yaik", tensors[t], left[t + 1]))
    spectra = [[] for _ in range(readout.shape[0])]
    for n in sizes:
        cut = n_steps - n
        singular = np.linalg.svd(np.swapaxes(left[cut], -1, -2) @ right[cut], compute_uv=False)
        for y, values in enumerate(singular):
            spectra[y].append(normalised_spectrum(values**2))
    return spectra


def rac_mps_entropies(network, n_a=None, alpha=1.0):
    """Exact entanglement entropies of a depth-1 RAC's class states.

    Parameters
    ----------
    network : DeepRACNetwork
        One layer, evaluated in eval mode (its BatchNorm statistics folded).
    n_a : int, sequence of int or None, default=None
        Sizes of the block A made of the last steps; None means
        ``1, ..., T - 1``.
    alpha : float, default=1.0
        Renyi order, 1 for von Neumann.

    Returns
    -------
    entropies : ndarray of shape (n_classes, len(n_a))
        In nats.

    Examples
    --------
    >>> from skqcnn.entanglement._mps import rac_mps_entropies
    >>> from skqcnn.nn._rac import DeepRACNetwork
    >>> rac_mps_entropies(DeepRACNetwork(300, 3, (4,), 2), n_a=[1, 150]).shape
    (2, 2)
    """
    readout, tensors, initial = rac_to_mps(network)
    if n_a is None:
        n_a = range(1, tensors.shape[0])
    spectra = mps_block_spectra(readout, tensors, initial, list(np.atleast_1d(n_a)))
    return np.array(
        [[entropy_from_spectrum(s, alpha=alpha) for s in per_class] for per_class in spectra]
    )


def _reduce(stacked):
    """Square-root factor ``F`` (``D x k``) with ``F F^T = X X^T``, unit norm.

    ``stacked`` has shape ``(..., D, M, k)``: the ``M`` blocks ``X_i`` side by
    side, whose Gram matrix ``sum_i X_i X_i^T`` is wanted.
    """
    flat = stacked.reshape(stacked.shape[:-2] + (-1,))
    factor = np.swapaxes(np.linalg.qr(np.swapaxes(flat, -1, -2), mode="r"), -1, -2)
    return _unit_norm(factor)


def _unit_norm(factor):
    """Divide each (stacked) factor by its Frobenius norm."""
    norm = np.sqrt(np.sum(factor**2, axis=(-2, -1), keepdims=True))
    return factor / norm
