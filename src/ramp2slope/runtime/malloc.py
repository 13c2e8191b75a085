"""How the C heap holds the large arrays of a run: kept for reuse during it, given back after.

Every large array a run allocates is written over at once, so each of its pages is touched
fresh. glibc serves large allocations (above 32 MB, and smaller ones until the first such block
is freed) with their own memory mapping, returned to the system on ``free``: the next
integration's array, or the next step's, then takes a new mapping whose every page is faulted
in again. Page faults are slow on virtual machines: on the 2-core test VM about 2.6 ms per MB,
so a full frame of 3 integrations spent 2.3 s of its 4.4 s in the kernel, faulting in 1.9 GB for
a peak of 0.8 GB.

While a step or pipeline runs (:func:`retained_heap`), glibc is asked to take every allocation
from its heap (``mallopt``: no memory mappings, no trimming of the heap's top), so a freed array's
pages serve the next array of its size without faults: that run took 3.8 s with 0.8 GB of faults,
for a peak 2 % higher (memory freed and not reused before the peak). When the outermost run
ends, glibc's usual settings come back and the heap's free memory is given back to the system
(``malloc_trim``), so a long-lived process (a notebook, a batch worker) keeps only what it holds.
One exception: glibc can shrink its heap only where the heap grew in one piece. In a process
whose heap met another mapping on the way up, so that glibc had to continue it elsewhere, the
free top of the heap stays resident after the run. It then serves that process's next arrays.

Outside such a run :func:`release_free_memory` gives free heap memory back, as between the
exposures of a batch worker.

glibc also gives each new thread that allocates a heap of its own (an arena, up to 8 per
core), and freed memory stays in the arena that served it. numba's worker threads
allocate a little in some kernels, and the full frame of 1 x 10 groups peaked 20 MB higher
(0.69 against 0.67 GB) with their arenas holding freed memory. The command line, which owns its
process, asks for one arena (:func:`use_one_arena`) before any thread starts, and so do the
worker processes of a local batch (:func:`one_arena_environment`: a Dask worker runs its tasks
in a thread other than the main one, whose arena would otherwise serve every array of a run);
a library cannot undo that choice in a process that is not its own (glibc fixes the number of
arenas once), so runs through the Python API keep glibc's default.
"""
import contextlib
import ctypes
import mmap
import os
import platform
import threading

_libc = None
if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
    try:
        # the process's own symbols, glibc's among them (ctypes.util.find_library would cost
        # a few ms of every run's start: importing it and searching the library cache)
        _libc = ctypes.CDLL(None)
        _libc.malloc_trim, _libc.mallopt    # both exist in every glibc
    except (OSError, AttributeError):
        _libc = None

# madvise's advice that frees the pages of a private mapping (mman.h, the same on every Linux)
_MADV_DONTNEED = 4

# mallopt's parameters (malloc.h) and glibc's defaults for them
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_DEFAULT_TRIM_THRESHOLD, _DEFAULT_MMAP_MAX = 128 * 1024, 65536
#: Free memory at the heap's top that is kept while retaining: the largest an int can say.
_RETAINED_TRIM_THRESHOLD = 2**31 - 1

#: Set to 0 to keep glibc's own settings during runs (more page faults, a slightly lower peak).
ENV_VARIABLE = "RAMP2SLOPE_RETAIN_HEAP"

_lock = threading.Lock()
_depth = 0


def _mallopt(param, value):
    return bool(_libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)))


def _wanted():
    return _libc is not None and os.environ.get(ENV_VARIABLE, "1").strip() not in ("0", "false", "no")


def retaining():
    """True while a run keeps freed heap memory for reuse (inside :func:`retained_heap`)."""
    return _depth > 0


@contextlib.contextmanager
def retained_heap():
    """Within the block (nested blocks count as one), large allocations come from glibc's heap
    and freed memory stays there for the next ones; on leaving the outermost block the usual
    settings are restored and the free memory is given back."""
    global _depth
    if not _wanted():
        yield
        return
    with _lock:
        if _depth == 0:
            _mallopt(_M_TRIM_THRESHOLD, _RETAINED_TRIM_THRESHOLD)
            _mallopt(_M_MMAP_MAX, 0)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
                _mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
                _libc.malloc_trim(0)


def use_one_arena():
    """Every thread allocates from glibc's main heap (for processes ramp2slope owns: call it
    before threads start). True when glibc took the setting."""
    if not _wanted():
        return False
    return _mallopt(_M_ARENA_MAX, 1)


def one_arena_environment():
    """The environment that gives a new process one arena from its start (glibc reads
    ``MALLOC_ARENA_MAX`` when the process starts): for worker processes ramp2slope starts."""
    return {"MALLOC_ARENA_MAX": "1"} if _wanted() else {}


def release_free_memory():
    """Give the C heap's free memory back to the system, unless a run is keeping it for reuse.

    True when it was given back (glibc, outside :func:`retained_heap`)."""
    if _libc is None or retaining():
        return False
    _libc.malloc_trim(0)
    return True


def release_pages(array):
    """Give back to the system the whole memory pages under ``array``, whose values are no
    longer needed (a workspace consumed part by part), while the array itself stays allocated.

    A step that turns a large array into a smaller one (NIRSpec IRS2 refpix: 3200 rows in,
    2048 out) would otherwise hold both at its peak. The values on the pages given back read as
    zero afterwards; bytes of the array sharing a page with memory outside it keep theirs.
    Only a C-contiguous, writeable array whose memory numpy allocated (itself or the array it
    views) is released: a memory-mapped file or a foreign buffer is left alone. Returns the
    number of bytes given back (0 on other systems than Linux with glibc).
    """
    import numpy as np   # here: the command line imports this module before it needs numpy

    if _libc is None or not isinstance(array, np.ndarray) or array.nbytes == 0 \
            or not array.flags.c_contiguous or not array.flags.writeable:
        return 0
    owner = array
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    if owner.base is not None or not owner.flags.owndata:
        return 0
    address = array.__array_interface__["data"][0]
    start = -(-address // mmap.PAGESIZE) * mmap.PAGESIZE
    end = (address + array.nbytes) // mmap.PAGESIZE * mmap.PAGESIZE
    if end <= start:
        return 0
    if _libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start),
                     ctypes.c_int(_MADV_DONTNEED)) != 0:
        return 0
    return end - start
