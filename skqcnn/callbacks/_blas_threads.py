"""One BLAS thread for the calling thread, leaving every other thread alone.

A multi-threaded BLAS on a busy machine (torch's own threads, other
processes) oversubscribes it, and the small SVDs of entanglement tracking
then run many times slower than on one thread. ``threadpoolctl`` limits the
BLAS of the whole process, which races with other threads fitting at the
same time (and one of two interleaved limits can leave the process at one
thread for good). OpenBLAS and MKL also have a setting per calling thread:
this module uses that, and does nothing where a library lacks it.
"""

import contextlib
import ctypes
import functools

from threadpoolctl import ThreadpoolController

# internal_api of threadpoolctl -> the library's thread-local setter, which
# takes a thread count and returns the previous one.
_LOCAL_SETTERS = {
    "openblas": "openblas_set_num_threads_local",
    "mkl": "mkl_set_num_threads_local",
}


@functools.cache
def _local_setters():
    setters = []
    for controller in ThreadpoolController().lib_controllers:
        name = _LOCAL_SETTERS.get(controller.internal_api)
        setter = getattr(getattr(controller, "dynlib", None), name, None) if name else None
        if setter is not None:
            setter.restype = ctypes.c_int
            setter.argtypes = [ctypes.c_int]
            setters.append(setter)
    return tuple(setters)


@contextlib.contextmanager
def single_blas_thread():
    """Run the block with one BLAS thread in the calling thread only.

    Examples
    --------
    >>> import numpy as np
    >>> from skqcnn.callbacks._blas_threads import single_blas_thread
    >>> with single_blas_thread():
    ...     float(np.linalg.svd(np.eye(3), compute_uv=False).sum())
    3.0
    """
    previous = []
    try:
        for setter in _local_setters():
            previous.append((setter, setter(1)))
        yield
    finally:
        for setter, value in reversed(previous):
            setter(value)
