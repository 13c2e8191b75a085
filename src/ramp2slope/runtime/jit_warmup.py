"""Compiling the jump and ramp-fitting kernels in other processes on a first run.

numba compiles a kernel the first time it is called and keeps the machine code in its on-disk
cache (``cache=True``: ``__pycache__`` next to the modules, or ``NUMBA_CACHE_DIR``). With an empty
cache a run spends most of its time compiling, one kernel after the other, on one core. The
jump and ramp-fitting kernels are the largest and are needed only after the per-integration
steps; so when their cache is empty, :func:`start` launches ``python -m ramp2slope.runtime.jit_warmup``
once for each, which compiles them by running the same functions on a tiny synthetic exposure
with the run's numbers of integrations and groups (they decide the code paths and the types),
while this process compiles and runs the steps before. :func:`wait` is called before each of
the two steps; the kernels are then loaded from the cache. A run that fits with LIKELY has its
own ramp-fitting kernels (the largest of all to compile): the ramp_fit helper compiles those.

Nothing depends on the helper processes for correctness: if one fails, or compiled other types
than the run needs, the kernels are compiled here as usual. ``RAMP2SLOPE_JIT_WARMUP=0`` turns
the mechanism off.
"""
import logging
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

log = logging.getLogger("ramp2slope")

_ENV_SWITCH = "RAMP2SLOPE_JIT_WARMUP"
_CHILD_MARK = "RAMP2SLOPE_JIT_WARMUP_CHILD"

KINDS = ("jump", "ramp_fit")

#: The jump helper runs at a lower priority: its kernels are needed first but are the fewer
#: (14 s of compilation against ramp fitting's 23 s on one core), and at equal priority the
#: ramp-fitting helper, sharing two cores with it and the run, finished last. Case ``a``'s
#: first run on 2 cores: 33.3 s at equal priority, 31.6 s with this.
JUMP_NICENESS = 5

_processes = {}   # kind -> (Popen, start time)


def _probe(kind):
    """The kernel whose cache tells whether ``kind``'s kernels have been compiled."""
    if kind == "jump":
        from ..jump import twopoint

        return twopoint._detect_chunk
    if kind == "ramp_fit_likely":
        from ..ramp_fitting import _likely_kernels

        return _likely_kernels.integration_kernel
    from ..ramp_fitting import _ols_kernels

    return _ols_kernels.fit_integrations_kernel


def _cache_is_empty(kind):
    """True when numba's cache holds no compiled version of ``kind``'s main kernel."""
    try:
        cache = _probe(kind)._cache
        return not cache._cache_file._load_index()
    except Exception:  # an unfamiliar numba: behave as if warm, i.e. do nothing
        return False


def start(shape, streamed, kinds=KINDS, likely=False):
    """Launch a helper process for each of ``kinds`` whose kernels are not cached yet.

    ``shape``: the exposure's (nints, ngroups, ny, nx); ``streamed``: whether the pipeline
    processes it one integration at a time (jump then works on blocks of rows); ``likely``:
    whether ramp_fit fits with LIKELY (its helper then compiles the LIKELY kernels)."""
    if os.environ.get(_ENV_SWITCH, "1") == "0" or os.environ.get(_CHILD_MARK):
        return
    from .threads import available_cores

    if available_cores() < 2:   # nothing to gain: the helpers would share the one core
        return
    nints, ngroups = int(shape[0]), int(shape[1])
    for kind in kinds:
        variant = "ramp_fit_likely" if kind == "ramp_fit" and likely else kind
        if kind in _processes or not _cache_is_empty(variant):
            continue
        command = [sys.executable, "-m", "ramp2slope.runtime.jit_warmup", variant, str(nints),
                   str(ngroups), str(int(bool(streamed)))]
        env = dict(os.environ, **{_CHILD_MARK: "1"})
        if kind == "jump" and "NUMBA_OPT" not in os.environ:
            # LLVM's -O3 passes take a fifth of the compile time of these kernels and make them
            # no faster than -O2 (measured: the full-frame jump step 0.17-0.18 s on one thread
            # both ways; the ramp-fitting kernels do lose 10 % at -O2, so they keep -O3).
            env["NUMBA_OPT"] = "2"
        try:
            process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError as exc:
            log.debug("no JIT warm-up process for %s: %s", kind, exc)
            continue
        _processes[kind] = (process, time.perf_counter())
        log.info("first run: compiling the %s kernels in a second process", variant)


def wait(kind):
    """Wait for the helper process of ``kind``, if one is running."""
    entry = _processes.pop(kind, None)
    if entry is None:
        return
    process, started = entry
    # the log keeps talking while the other process compiles (a first run is never silent long)
    while True:
        try:
            code = process.wait(timeout=3.5)
            break
        except subprocess.TimeoutExpired:
            log.info("waiting for the %s kernels compiled in the second process (%.0f s so far)",
                     kind, time.perf_counter() - started)
    log.debug("JIT warm-up process for %s finished after %.1f s (exit code %d)",
              kind, time.perf_counter() - started, code)


def cancel():
    """Stop every helper process still running (the run failed before needing them)."""
    while _processes:
        _, (process, _) = _processes.popitem()
        process.kill()
        process.wait()


# -- what the helper processes run ------------------------------------------------------------
def _tiny_exposure(nints, ngroups, ny=4, nx=8):
    rng = np.random.default_rng(0)
    data = np.cumsum(rng.normal(20.0, 3.0, (nints, ngroups, ny, nx)), axis=1).astype(np.float32)
    data[:, ngroups // 2:, 1, 2] += np.float32(5000.0)  # a jump, so that every flagging runs
    groupdq = np.zeros(data.shape, np.uint8)
    return data, groupdq


def warm_jump(nints, ngroups, streamed):
    """Detect jumps in a tiny exposure as the pipeline would (in blocks when ``streamed``)."""
    from ..jump import STEP_DEFAULTS, detect_jumps, detect_jumps_in_blocks, twopoint
    from ..jump.detect import effective_minimum_groups

    data, groupdq = _tiny_exposure(nints, ngroups)
    ny, nx = data.shape[-2:]
    pixeldq = np.zeros((ny, nx), np.uint32)
    gain = np.full((ny, nx), 2.0, np.float32)
    readnoise = np.full((ny, nx), 10.0, np.float32)
    params = {name: value for name, value in STEP_DEFAULTS.items() if name != "maximum_cores"}
    params["minimum_groups"] = effective_minimum_groups("1", STEP_DEFAULTS["minimum_groups"], ny)
    params.update(nframes=1, group_time=10.7)
    if not streamed:
        detect_jumps(data, groupdq, pixeldq, gain, readnoise, **params)
        return
    from ..pipeline.scratch import ScratchStore
    from ..pipeline.streaming import default_block_rows

    with tempfile.TemporaryDirectory() as folder:
        store = ScratchStore(folder, data.shape, memory_budget=1 << 30)
        try:
            dnu_table = np.zeros((nints, ngroups), dtype=bool)
            for i in range(nints):
                store.write_integration(i, data[i], groupdq[i])
                dnu_table[i] = twopoint.dnu_planes(groupdq[i][np.newaxis])[0]
            detect_jumps_in_blocks(store, pixeldq, gain, readnoise, dnu_table=dnu_table,
                                   block_rows=default_block_rows(data.shape), **params)
        finally:
            store.close()


def warm_ramp_fit(nints, ngroups):
    """Fit a tiny exposure of ``nints`` integrations (1: the single-pass path; more: the
    two-pass path) with the dtypes and layouts the pipeline passes."""
    from ..ramp_fitting.ols_fit import fit_ramps

    data, groupdq = _tiny_exposure(nints, ngroups)
    groupdq[:, ngroups // 2, 1, 2] = 4  # JUMP_DET
    ny, nx = data.shape[-2:]
    fit_ramps(data, groupdq, np.zeros((ny, nx), np.uint32), np.full((ny, nx), 2.0, np.float32),
              np.full((ny, nx), 10.0, np.float32), nframes=1, group_time=10.7, frame_time=10.7,
              zeroframe=data[:, 0] * np.float32(0.5))


def warm_ramp_fit_likely(nints, ngroups):
    """Fit a tiny exposure with LIKELY (more than one integration: the combination too)."""
    from ..ramp_fitting.likely_fit import fit_ramps_likely

    data, groupdq = _tiny_exposure(nints, ngroups)
    groupdq[:, ngroups // 2, 1, 2] = 4  # JUMP_DET
    ny, nx = data.shape[-2:]
    fit_ramps_likely(data, groupdq, np.zeros((ny, nx), np.uint32),
                     np.full((ny, nx), 2.0, np.float32), np.full((ny, nx), 10.0, np.float32),
                     nframes=1, frame_time=10.7)


if __name__ == "__main__":
    _kind, _nints, _ngroups, _streamed = sys.argv[1:5]
    if _kind == "jump":
        if hasattr(os, "nice"):
            os.nice(JUMP_NICENESS)
        warm_jump(int(_nints), int(_ngroups), _streamed == "1")
    elif _kind == "ramp_fit_likely":
        warm_ramp_fit_likely(int(_nints), int(_ngroups))
    else:
        warm_ramp_fit(int(_nints), int(_ngroups))
