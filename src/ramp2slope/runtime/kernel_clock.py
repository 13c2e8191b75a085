"""Seconds a thread has spent loading (or compiling) numba kernels.

A kernel is loaded from numba's cache the first time it is called in a process: about 5 ms
each on the 2-core test machine, and some 50 ms more for the first kernels, whose loading
imports parts of numba (0.2 s more for the first one where numba refreshes its registries, see
:mod:`ramp2slope.runtime.cache_loading`). That is start-up, paid once per process, not a
step's work, and it runs on one core whatever the number of threads. A step's log line says how much of its time it was, so that a
reader (and the benchmark, which counts it as start-up) can tell the two apart.

numba announces each hold of its compiler lock through its public event API
(``numba:compiler_lock``); every load and every compilation happens under that lock, and a call
of an already loaded kernel never takes it. The listener installed here adds up the time each
thread holds the lock (or waits for it), outermost holds only.

A thread that works for another (``runtime.threads.map_in_threads`` runs a step's kernels on a
pool) adds to that thread's clock, inside :func:`on_behalf_of`: a kernel's first call may happen
on any pool thread, and the step waits for it all the same. A clock counts wall time: while one
pool thread loads a kernel the others wait for the lock, and that time is counted once.
"""
import contextlib
import threading
import time

__all__ = ["seconds", "owner", "on_behalf_of"]

_local = threading.local()
_install_lock = threading.Lock()
_add_lock = threading.Lock()
_installed = False


class _Total:
    """One thread's clock (pool threads working for it add to it too): the seconds during
    which at least one of them held or waited for the compiler lock."""
    __slots__ = ("seconds", "active", "since")

    def __init__(self):
        self.seconds = 0.0
        self.active = 0
        self.since = 0.0

    def enter(self, now):
        with _add_lock:
            if self.active == 0:
                self.since = now
            self.active += 1

    def leave(self, now):
        with _add_lock:
            self.active -= 1
            if self.active == 0:
                self.seconds += now - self.since


def owner():
    """The calling thread's clock, to hand to the threads that work for it."""
    total = getattr(_local, "total", None)
    if total is None:
        total = _local.total = _Total()
    return total


@contextlib.contextmanager
def on_behalf_of(clock):
    """Add this thread's kernel loading to ``clock`` (from :func:`owner`) while inside."""
    previous = getattr(_local, "target", None)
    _local.target = clock
    try:
        yield
    finally:
        _local.target = previous


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
                    _local.counting = getattr(_local, "target", None) or owner()
                    _local.counting.enter(time.perf_counter())
                _local.depth = depth + 1

            def on_end(self, ev):
                _local.depth = getattr(_local, "depth", 1) - 1
                if _local.depth == 0:
                    _local.counting.leave(time.perf_counter())

        event.register("numba:compiler_lock", _Clock())


def seconds():
    """This thread's total so far (seconds), with what threads working for it added. Take the
    difference of two readings."""
    _install()
    return owner().seconds
