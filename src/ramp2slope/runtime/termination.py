"""Stopping a run cleanly on SIGTERM, as on Ctrl-C.

A batch system or ``kill`` stops a process with SIGTERM. :func:`handle_sigterm` makes it raise
:class:`Terminated` (a KeyboardInterrupt), so the clean-up that Ctrl-C runs (partial products
and scratch files removed) runs too.

Python runs a signal handler wherever the main thread is, and an exception raised inside a
finaliser (``__del__``) or a callback from C (numba's kernel cache calls back into Python while
it loads; llvmlite frees its objects in finalisers) is printed and dropped: the run would go on
as if nothing had happened. In such places the handler raises nothing and tries again a few
milliseconds later (SIGALRM); the request is also remembered, and :func:`check` raises it at
the next step.

Code that creates something and records it for its clean-up (a scratch folder, a product's
temporary file) runs inside :func:`deferred`: an exception raised between the creation and the
record would leave the thing behind, so a SIGTERM arriving there is acted on at the block's end.
"""
import contextlib
import os
import signal
import threading

__all__ = ["Terminated", "handle_sigterm", "check", "requested", "deferred"]

_requested = False
_RETRY_SECONDS = 0.02
# per thread: the handler runs in the main thread and only that thread's blocks matter to it
_local = threading.local()


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM)."""


def _unsafe(frame):
    """Whether an exception raised in ``frame`` would be swallowed: inside a finaliser, or in
    the JIT compiler's own code (reached from C callbacks)."""
    innermost = True
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__":
            return True
        if innermost and any(f"{os.sep}{name}{os.sep}" in code.co_filename
                             for name in ("llvmlite", "numba")):
            return True
        innermost = False
        frame = frame.f_back
    return False


def _on_signal(signum, frame):
    global _requested
    _requested = True
    if getattr(_local, "depth", 0):
        return          # raised by deferred() when its block ends
    if _unsafe(frame):
        signal.setitimer(signal.ITIMER_REAL, _RETRY_SECONDS)
        return
    raise Terminated()


def _on_retry(signum, frame):
    if _requested:
        _on_signal(signum, frame)


def handle_sigterm():
    """Install the SIGTERM handler (main thread only; a library call never does this itself)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGALRM, _on_retry)


def requested():
    """Whether SIGTERM has arrived."""
    return _requested


def check():
    """Raise :class:`Terminated` if SIGTERM has arrived (a request that was dropped is kept)."""
    if _requested:
        raise Terminated()


@contextlib.contextmanager
def deferred():
    """A block in which SIGTERM does not interrupt: it is raised as :class:`Terminated` when
    the block ends (if the block itself does not raise)."""
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1
    if not _local.depth:
        check()
