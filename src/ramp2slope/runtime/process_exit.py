"""Ending the command-line process without the interpreter's teardown.

Once a run is over, a normal exit still tears the interpreter down: every module and object
is finalised one by one, numba's compiled functions and type registries and astropy's units
among them. Measured on a full-frame run, that takes about 0.5 s after the products are
written, which the user waits for and gains nothing from. :func:`exit_process` does what a
normal exit does that matters (the exit handlers, which flush the logs and run pending
clean-ups such as temporary folders', then flushing the standard streams) and ends the
process there. It is for the command line's entry points only: a library call never exits.
Under a profiler or a tracer, or with ``RAMP2SLOPE_FAST_EXIT=0``, the exit is the ordinary one.
"""
import atexit
import os
import sys
import threading

__all__ = ["exit_process"]


def _other_threads_running():
    main = threading.main_thread()
    return any(t is not main and t.is_alive() and not t.daemon for t in threading.enumerate())


def exit_process(code):
    """Exit with ``code`` (as ``sys.exit`` takes it) as described in the module docstring;
    falls back to ``sys.exit`` where that cannot be done safely (other non-daemon threads
    still running, an interpreter without ``atexit._run_exitfuncs``)."""
    from .threads import shutdown_kept_pools

    shutdown_kept_pools()   # idle threads kept for the file transfers: not a reason to wait
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if (run_exit_handlers is None or _other_threads_running()
            or sys.getprofile() is not None or sys.gettrace() is not None
            or os.environ.get("RAMP2SLOPE_FAST_EXIT", "1") == "0"):
        # a profiler or tracer (``python -m cProfile``, a debugger) writes its results after
        # the program returns: let it
        sys.exit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:                       # sys.exit("message") prints it and exits with 1
        print(code, file=sys.stderr)
        status = 1
    try:
        run_exit_handlers()     # exceptions inside are reported by atexit itself
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass            # a closed pipe: nothing more can be written anyway
        os._exit(status)
