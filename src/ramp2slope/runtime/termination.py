"""Stopping a run cleanly on SIGTERM, as on Ctrl-C.

A batch system or ``kill`` stops a process with SIGTERM. :func:`handle_sigterm` makes it raise
:class:`Terminated` (a KeyboardInterrupt), so the clean-up that Ctrl-C runs (partial products
and scratch files removed) runs too.

Python runs a signal handler wherever the main thread is, and an exception raised inside a
callback from C (numba's kernel cache calls back into Python while it loads) is printed and
dropped: the run would go on as if nothing had happened. The request is therefore also
remembered, and :func:`check` raises it again at the next safe point (every step run calls it).
"""
import signal
import threading

__all__ = ["Terminated", "handle_sigterm", "check", "requested"]

_requested = False


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM)."""


def _on_sigterm(signum, frame):
    global _requested
    _requested = True
    raise Terminated()


def handle_sigterm():
    """Install the SIGTERM handler (main thread only; a library call never does this itself)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def requested():
    """Whether SIGTERM has arrived."""
    return _requested


def check():
    """Raise :class:`Terminated` if SIGTERM has arrived (a request that was dropped is kept)."""
    if _requested:
        raise Terminated()
