"""Giving freed memory back to the system between steps.

glibc serves allocations above a threshold with their own memory mapping, returned to the
system on ``free``; but it raises that threshold to the size of each such block freed (up to
32 MB), so after the first 16 MB array is freed the following ones come from the heap, and
freed heap memory in the middle of the heap stays in the process. A run frees many
reference-sized arrays (16-80 MB), so without help the resident set keeps memory already freed:
on the full-frame MEDIUM8 benchmark case the peak was 0.62 GB, and 0.56 GB when the free heap
memory is returned (``malloc_trim``) at the end of every step. Fixing the threshold instead
(``mallopt``) gave the same peak but made every large array fault its pages in afresh, which
cost a full-frame run 0.2-0.3 s.
"""
import ctypes
import ctypes.util
import platform

_malloc_trim = None
if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
    try:
        _malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        _malloc_trim = None


def release_free_memory():
    """Return the C heap's free memory to the system; True when that could be asked (glibc)."""
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True
