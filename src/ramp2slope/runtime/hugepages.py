"""Turning off numpy's transparent-huge-page advice while a step or pipeline runs.

numpy asks the kernel for huge pages (``madvise(MADV_HUGEPAGE)``) on every large allocation.
Where the kernel's THP ``defrag`` setting is ``madvise`` (a common default) and memory is
fragmented, as it is on any machine whose RAM is mostly page cache, each such allocation stalls
in direct compaction: on the 2-core test machine a fresh 168 MB array took 0.7-0.8 s to fill
instead of 0.11 s, and a full-frame run lost 1.4 s of its 6-8 s. The pipeline allocates its
large arrays once and walks them sequentially, so it gains nothing from huge pages. The previous
setting is restored on exit, so numpy behaves as before outside ramp2slope's calls.
"""
import contextlib

try:  # numpy >= 2
    from numpy._core.multiarray import _set_madvise_hugepage
except ImportError:  # pragma: no cover - numpy 1.x
    try:
        from numpy.core.multiarray import _set_madvise_hugepage
    except ImportError:
        _set_madvise_hugepage = None


@contextlib.contextmanager
def no_hugepage_advice():
    """Within the block, large numpy allocations are not advised to use huge pages."""
    if _set_madvise_hugepage is None:
        yield
        return
    previous = _set_madvise_hugepage(False)
    try:
        yield
    finally:
        _set_madvise_hugepage(previous)
