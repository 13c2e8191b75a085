"""How many threads the numba kernels use (``threads`` parameter, CLI ``--threads``), and work
outside the kernels (file transfers) shared out between as many threads."""
import contextlib
import os
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import numba

from ..errors import Ramp2SlopeError
from . import kernel_clock


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


#: Kernels that do a few operations per pixel run on one thread below this many pixels per call:
#: starting a parallel section costs about 50 microseconds on the 2-core test machine (numba's
#: threads sleep between sections, see ramp2slope/__init__.py), more than such a kernel's work
#: on a small frame (MIRI's SLITLESSPRISM: 30,000 pixels).
SERIAL_BELOW_PIXELS = 1 << 18


@contextlib.contextmanager
def serial_if_small(pixels):
    """Run the enclosed light kernels on one thread when each call covers fewer than
    :data:`SERIAL_BELOW_PIXELS` pixels (the products are the same on any number of threads)."""
    if pixels >= SERIAL_BELOW_PIXELS or numba.get_num_threads() == 1:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


#: One pool of threads per size, kept for the process: jump and the scratch transfers call
#: map_in_threads a few hundred times per exposure, and a pool made and shut down per call cost
#: its thread starts and joins each time (a 256x2048 series' after-jump flagging, 86 calls:
#: 0.085 s on 2 threads against 0.03 s on one).
_pools = {}
_pools_lock = threading.Lock()
_in_pool = threading.local()


def _mark_pool_thread():
    _in_pool.active = True


def _pool(workers):
    """The kept pool of ``workers`` threads (a new one in a forked child)."""
    with _pools_lock:
        pid, pool = _pools.get(workers, (None, None))
        if pool is None or pid != os.getpid():
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ramp2slope",
                                      initializer=_mark_pool_thread)
            _pools[workers] = (os.getpid(), pool)
        return pool


def shutdown_kept_pools():
    """End the kept pools' threads (idle between calls): before the command line's fast exit,
    which another running thread would forbid (see :mod:`ramp2slope.runtime.process_exit`)."""
    with _pools_lock:
        pools = [pool for pid, pool in _pools.values() if pid == os.getpid()]
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=True)


def map_in_threads(function, items, threads=None):
    """Call ``function(item)`` for every item, on up to ``threads`` threads (None: as many as
    the kernels use). For work that releases the GIL: positional reads and writes, mapping
    pages, numpy copies and conversions, numba kernels compiled with ``nogil=True``. After an
    error the calls not yet started are dropped, and the first error (in the order of the
    items) is raised once the running calls have ended (none is left running)."""
    items = list(items)
    workers = min(int(threads or numba.get_num_threads()), len(items))
    if workers <= 1:
        for item in items:
            function(item)
        return
    clock = kernel_clock.owner()

    def call(item):
        # a kernel's first call (its loading) may fall on any pool thread: the caller's time
        with kernel_clock.on_behalf_of(clock):
            return function(item)
    # called from a kept pool's thread: a pool of its own, so that it never waits for threads
    # busy with the call that waits for it
    nested = getattr(_in_pool, "active", False)
    pool = (ThreadPoolExecutor(max_workers=workers, initializer=_mark_pool_thread) if nested
            else _pool(workers))
    futures = [pool.submit(call, item) for item in items]
    try:
        wait(futures, return_when=FIRST_EXCEPTION)
    finally:
        # on an error, or interrupted (Ctrl-C, a termination signal): the calls not started are
        # dropped, and nothing is still running (writing to files the caller is about to close)
        # when this returns
        for future in futures:
            future.cancel()
        wait(futures)
        if nested:
            pool.shutdown()
    for future in futures:
        if not future.cancelled():
            future.result()
