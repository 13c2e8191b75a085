"""Making the C allocator give large blocks back to the system as soon as they are freed.

glibc serves allocations above a threshold with their own memory mapping, returned to the
system on ``free``; but it raises that threshold to the size of each such block freed (up to
32 MB), so after the first 16 MB array is freed the following ones come from the heap, and
their memory stays in the process when they are freed in another order than allocated. A run
frees many reference-sized arrays (16-80 MB each), so the resident set kept growing with
memory already freed: on the full-frame MEDIUM8 benchmark case the peak was 0.62 GB with the
default and 0.55 GB with a fixed threshold. The command line fixes the threshold at 1 MiB when
it starts (the environment variable ``MALLOC_MMAP_THRESHOLD_`` does the same for any process);
the library leaves the allocator of the calling program alone.
"""
import ctypes
import ctypes.util
import sys

_M_MMAP_THRESHOLD = -3   # mallopt parameter number in glibc's malloc.h


def fix_mmap_threshold(nbytes=1 << 20):
    """Fix glibc's mmap threshold at ``nbytes``; returns True when it was set (glibc only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(nbytes)))
    except (OSError, AttributeError):   # not glibc (musl has no mallopt)
        return False
