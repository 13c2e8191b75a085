"""How many threads the numba kernels use (``threads`` parameter, CLI ``--threads``), and work
outside the kernels (file transfers) shared out between as many threads."""
import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

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


def map_in_threads(function, items, threads=None):
    """Call ``function(item)`` for every item, on up to ``threads`` threads (None: as many as
    the kernels use). For work that releases the GIL: positional reads and writes, mapping
    pages, numpy copies and conversions, numba kernels compiled with ``nogil=True``. The
    first exception is raised once every call has ended (none is left running)."""
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
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(call, items):
            pass
