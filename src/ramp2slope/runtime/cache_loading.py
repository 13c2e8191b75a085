"""Loading ramp2slope's kernels from numba's cache without refreshing all of numba's registries.

Before it looks a kernel up in its on-disk cache, numba refreshes its compilation context: it
imports every implementation it has (strings, typed containers, random generators, linear
algebra, which imports scipy.linalg, ...) and installs them in its typing and lowering
registries. A compiler needs them; a kernel loaded from the cache is machine code that is only
linked, and needs none of them. On the first kernel of a run that refresh was most of numba's
start-up: 0.16-0.2 s of wall time and 25 MB of memory on the 2-core test machine
(``docs/benchmarks.md``).

:func:`install` has numba skip the refresh when it loads one of ramp2slope's own kernels
(functions whose module is in the ``ramp2slope`` package). What a loaded kernel does need is
done as numba does it: the reference-counting runtime is initialised, and numba's rebuild of the
kernel runs the kernel's own start-up hooks (for a parallel kernel, its thread pool). Nothing
else changes:

* a kernel that is not in the cache is compiled as usual, and numba's compiler refreshes the
  context itself before compiling;
* functions of other packages (the user's own numba code in the same process) are loaded by
  numba's own method, refresh included;
* it is installed only on the numba versions whose loading it was checked against
  (:data:`CHECKED_NUMBA`); on any other it does nothing, and numba behaves as released.

The environment variable ``RAMP2SLOPE_NUMBA_FULL_REFRESH=1`` turns it off. The numba developers
discussed the same change for numba itself (numba pull request 9806).
"""
import os
import threading

__all__ = ["install", "CHECKED_NUMBA"]

#: numba (major, minor) versions whose ``Cache.load_overload`` this was checked against: it
#: refreshes the target context, then loads under ``_guard_against_spurious_io_errors``.
CHECKED_NUMBA = ((0, 67), (0, 68))

_ENV_SWITCH = "RAMP2SLOPE_NUMBA_FULL_REFRESH"
_PACKAGE_PREFIX = "ramp2slope."

_lock = threading.Lock()
_done = False
_installed = False


def _numba_version(numba):
    try:
        major, minor = (int(part) for part in numba.__version__.split(".")[:2])
    except (AttributeError, ValueError):
        return None
    return major, minor


def _is_ours(cache):
    module = getattr(getattr(cache, "_py_func", None), "__module__", "") or ""
    return module.startswith(_PACKAGE_PREFIX)


def install():
    """Load ramp2slope's kernels without numba's context refresh (once per process; see the
    module's docstring for when it does nothing). Returns whether it is installed."""
    global _done, _installed
    with _lock:
        if _done:
            return _installed
        _done = True
        if os.environ.get(_ENV_SWITCH, "").strip() not in ("", "0"):
            return False
        try:
            import numba
            from numba.core import caching
            from numba.core.runtime import rtsys
        except ImportError:
            return False
        if _numba_version(numba) not in CHECKED_NUMBA:
            return False
        cache_class = caching.Cache
        numba_load = cache_class.load_overload
        if not all(hasattr(cache_class, name)
                   for name in ("_load_overload", "_guard_against_spurious_io_errors")):
            return False

        def load_overload(self, sig, target_context):
            if not _is_ours(self):
                return numba_load(self, sig, target_context)
            rtsys.initialize(target_context)
            with self._guard_against_spurious_io_errors():
                return self._load_overload(sig, target_context)
            return None   # the guard swallowed an I/O error: not in the cache

        load_overload.__wrapped__ = numba_load
        load_overload.__doc__ = numba_load.__doc__
        cache_class.load_overload = load_overload
        _installed = True
        return True
