"""Saying so when a kernel is being compiled, so that a first run is never silent for long.

An installed package brings its kernels compiled (:mod:`ramp2slope.runtime.precompile`); they
are compiled again where that cache does not apply: another CPU than the one the package was
built on, another numba version, ``NUMBA_CACHE_DIR`` pointing elsewhere, a source checkout. A
compilation can take tens of seconds on a busy machine, and numba says nothing meanwhile. The
listener installed here hears numba's ``numba:compile`` events (its public event API): it logs
one line when one of ramp2slope's kernels starts compiling, and every few seconds while it goes
on.
"""
import logging
import threading
import time

log = logging.getLogger("ramp2slope")

HEARTBEAT_S = 3.5   # with the 1/4 polling below, never more than 5 s without a line

_installed = False
_lock = threading.Lock()
_current = None       # (name, start time) of the outermost ramp2slope kernel being compiled
_depth = 0            # compilations nest: a kernel compiles the functions it calls


def _kernel_name(dispatcher):
    func = getattr(dispatcher, "py_func", None)
    module = getattr(func, "__module__", "") or ""
    if not module.startswith("ramp2slope."):
        return None
    return f"{module.removeprefix('ramp2slope.')}.{func.__name__}"


_wake = threading.Event()   # set when a compilation starts: the heartbeat polls from then on


def _heartbeat():
    said = None
    while True:
        if _wake.wait(timeout=HEARTBEAT_S / 4):
            _wake.clear()
        with _lock:
            current = _current
        if current is None:
            said = None
            continue
        name, started = current
        elapsed = time.perf_counter() - started
        last = said[1] if said and said[0] == current else started
        if time.perf_counter() - last >= HEARTBEAT_S:
            log.info("still compiling %s (%.0f s)", name, elapsed)
            said = (current, time.perf_counter())


def install():
    """Start listening (once per process; a numba without the event API is left alone)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    try:
        from numba.core import event
    except ImportError:
        return

    class _Notice(event.Listener):
        def on_start(self, ev):
            global _current, _depth
            name = _kernel_name(ev.data.get("dispatcher")) if ev.data else None
            with _lock:
                _depth += 1
                if _current is not None or name is None:
                    return
                _current = (name, time.perf_counter())
            _wake.set()
            log.info("compiling %s for this machine (first use; numba keeps it in its cache)", name)

        def on_end(self, ev):
            global _current, _depth
            with _lock:
                _depth -= 1
                if _depth == 0:
                    _current = None

    event.register("numba:compile", _Notice())
    threading.Thread(target=_heartbeat, name="ramp2slope-compile-notice", daemon=True).start()
