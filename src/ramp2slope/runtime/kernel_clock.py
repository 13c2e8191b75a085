"""Seconds a thread has spent loading (or compiling) numba kernels.

A kernel is loaded from numba's cache the first time it is called in a process: the first one
pays numba's own initialisation (about 0.2 s on the 2-core test machine), each further one
3-50 ms. That is start-up, paid once per process, not a step's work, and it runs on one core
whatever the number of threads. A step's log line says how much of its time it was, so that a
reader (and the benchmark, which counts it as start-up) can tell the two apart.

numba announces each hold of its compiler lock through its public event API
(``numba:compiler_lock``); every load and every compilation happens under that lock, and a call
of an already loaded kernel never takes it. The listener installed here adds up the time each
thread holds the lock (or waits for it), outermost holds only.
"""
import threading
import time

__all__ = ["seconds"]

_local = threading.local()
_install_lock = threading.Lock()
_installed = False


def _install():
    global _installed
    with _install_lock:
        if _installed:
            return
        _installed = True
        try:
            from numba.core import event
        except ImportError:  # a numba without the event API: the clock stays at 0
            return

        class _Clock(event.Listener):
            def on_start(self, ev):
                depth = getattr(_local, "depth", 0)
                if depth == 0:
                    _local.started = time.perf_counter()
                _local.depth = depth + 1

            def on_end(self, ev):
                _local.depth = getattr(_local, "depth", 1) - 1
                if _local.depth == 0:
                    _local.total = getattr(_local, "total", 0.0) + \
                        (time.perf_counter() - _local.started)

        event.register("numba:compiler_lock", _Clock())


def seconds():
    """This thread's total so far (seconds). Take the difference of two readings."""
    _install()
    return getattr(_local, "total", 0.0)
