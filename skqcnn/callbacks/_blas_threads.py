"""One BLAS thread while entanglement tracking measures, one tracker at a time.

A multi-threaded BLAS on a busy machine (torch's own threads, other
processes) oversubscribes it, and the small SVDs of entanglement tracking
then run many times slower than on one thread. BLAS thread counts are
process-wide (OpenBLAS built with pthreads has no per-thread setting: its
``openblas_set_num_threads_local`` sets the global count there), so the
limit is process-wide too. Two ``threadpool_limits`` blocks that interleave
in two threads can leave the process at one thread for good (the second
restores the count it saw on entry, the first's limit). Trackers therefore
take a lock around the limit: one measures at a time, each restores the
count it found, and the process ends with its own.
"""

import contextlib
import threading

from threadpoolctl import threadpool_limits

_lock = threading.Lock()


@contextlib.contextmanager
def single_blas_thread():
    """Run the block with one BLAS thread, holding the process's tracking lock.

    Examples
    --------
    >>> import numpy as np
    >>> from skqcnn.callbacks._blas_threads import single_blas_thread
    >>> with single_blas_thread():
    ...     float(np.linalg.svd(np.eye(3), compute_uv=False).sum())
    3.0
    """
    with _lock, threadpool_limits(limits=1, user_api="blas"):
        yield
