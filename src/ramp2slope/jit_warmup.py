"""Compiling the ramp-fitting kernels in a second process on a first run.

numba compiles a kernel the first time it is called and keeps the machine code in its on-disk
cache (``cache=True``: ``__pycache__`` next to the modules, or ``NUMBA_CACHE_DIR``). With an empty
cache a run spends most of its time compiling, one kernel after the other, on one core. The
ramp-fitting kernels, the largest, are only needed at the end of the run; so when their cache
is empty, :func:`start` launches ``python -m ramp2slope.jit_warmup``, which compiles them (by
fitting a tiny synthetic ramp) while this process compiles and runs the steps before. Before
fitting, :func:`wait` waits for that process; the kernels are then loaded from the cache.

Nothing depends on the helper process for correctness: if it fails, or compiled other types
than the run needs, the kernels are compiled here as usual. ``RAMP2SLOPE_JIT_WARMUP=0`` turns
the mechanism off.
"""
import logging
import os
import subprocess
import sys
import time

log = logging.getLogger("ramp2slope")

_ENV_SWITCH = "RAMP2SLOPE_JIT_WARMUP"
_CHILD_MARK = "RAMP2SLOPE_JIT_WARMUP_CHILD"

_process = None
_started = None


def _cache_is_empty():
    """True when numba's cache holds no compiled version of the main ramp-fitting kernel."""
    from .ramp_fitting import _ols_kernels

    try:
        cache = _ols_kernels.fit_integration_kernel._cache
        return not cache._cache_file._load_index()
    except Exception:  # an unfamiliar numba: behave as if warm, i.e. do nothing
        return False


def start(nints):
    """Launch the helper process when the ramp-fitting kernels are not cached yet (``nints``:
    the exposure's number of integrations, which decides the fitting path)."""
    global _process, _started
    if _process is not None or os.environ.get(_ENV_SWITCH, "1") == "0" \
            or os.environ.get(_CHILD_MARK):
        return
    if not _cache_is_empty():
        return
    env = dict(os.environ, **{_CHILD_MARK: "1"})
    try:
        _process = subprocess.Popen([sys.executable, "-m", "ramp2slope.jit_warmup", str(int(nints))],
                                    env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    except OSError as exc:
        log.debug("no JIT warm-up process: %s", exc)
        return
    _started = time.perf_counter()
    log.info("first run: compiling the ramp-fitting kernels in a second process")


def wait():
    """Wait for the helper process, if one is running."""
    global _process
    if _process is None:
        return
    code = _process.wait()
    log.debug("JIT warm-up process finished after %.1f s (exit code %d)",
              time.perf_counter() - _started, code)
    _process = None


def cancel():
    """Stop the helper process (the run failed before fitting)."""
    global _process
    if _process is None:
        return
    _process.kill()
    _process.wait()
    _process = None


if __name__ == "__main__":
    from .ramp_fitting.ols_fit import warm_up

    warm_up(int(sys.argv[1]))
