"""How many threads the numba kernels use (``threads`` parameter, CLI ``--threads``)."""
import contextlib
import os

import numba

from ..errors import Ramp2SlopeError


def available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@contextlib.contextmanager
def thread_limit(threads=None):
    """Run the enclosed kernels on ``threads`` threads (None: every core numba may use)."""
    if threads is None:
        yield
        return
    threads = int(threads)
    if threads < 1:
        raise Ramp2SlopeError(f"threads must be at least 1, got {threads}")
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
