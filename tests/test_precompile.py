"""A fresh install's first run compiles nothing: the kernels were compiled when the package was
built (setup.py, ramp2slope.runtime.precompile) and shipped with it.

The check runs the installed package as it was installed: the files its RECORD lists (sources
and the compiled kernels that came with them) are copied to a folder of their own, so that
kernels other tests compiled into the installed package since do not count, and a first run
there must load every kernel from the shipped cache (numba's NUMBA_DEBUG_CACHE reports each
load and each save; a save means a compilation).
"""
import importlib.metadata
import os
import shutil
import subprocess
import sys

import pytest


def _installed_files():
    """The package's installed files (paths relative to site-packages), or None for an
    editable install, whose RECORD lists no sources."""
    try:
        dist = importlib.metadata.distribution("ramp2slope")
    except importlib.metadata.PackageNotFoundError:
        return None
    files = [f for f in (dist.files or []) if f.parts and f.parts[0] == "ramp2slope"]
    if not any(f.suffix == ".py" for f in files):
        return None
    return dist, files


def _pristine_copy(dist, files, dest):
    for f in files:
        target = dest / f
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(dist.locate_file(f), target)


def _run(args, pythonpath, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(PYTHONPATH=str(pythonpath), NUMBA_DEBUG_CACHE="1", RAMP2SLOPE_JIT_WARMUP="0",
               CRDS_PATH=str(cwd / "crds_cache"))
    return subprocess.run([sys.executable, "-m", "ramp2slope.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_first_run_after_install_compiles_nothing(tmp_path):
    installed = _installed_files()
    if installed is None:
        pytest.skip("ramp2slope is not installed from a wheel (an editable install compiles its "
                    "kernels into the source tree on first use)")
    dist, files = installed
    shipped = [f for f in files if f.suffix in (".nbi", ".nbc")]
    assert shipped, ("the installed package holds no compiled kernels: the build's kernel "
                     "compilation failed or was skipped (RAMP2SLOPE_PRECOMPILE=0); see pip's "
                     "build log (pip install -v)")
    site = tmp_path / "site"
    _pristine_copy(dist, files, site)
    # the demo's path (simulator and pipeline on one integration), then a streamed
    # multi-integration subarray with large-event expansion as CRDS's NIRCam parameters set it,
    # and with LIKELY ramp fitting and clean_flicker_noise
    runs = {
        "demo": ["demo", "--outdir", "demo", "--size", "160x160", "--ngroups", "4", "--no-report"],
        "run": ["run", "-q", "demo/run2/jw01234001001_01101_00001_nrcblong_uncal.fits",
                "--refdir", "demo/run2/refs", "--output-dir", "out", "--disable-crds-steppars",
                "--steps.jump.expand_large_events=true"],
        "options": ["run", "-q", "demo/run2/jw01234001001_01101_00001_nrcblong_uncal.fits",
                    "--refdir", "demo/run2/refs", "--output-dir", "out_options",
                    "--disable-crds-steppars", "--steps.ramp_fit.algorithm=LIKELY",
                    "--steps.clean_flicker_noise.skip=false"],
    }
    sim = subprocess.run(
        [sys.executable, "-c",
         "from ramp2slope.simulate import simulate_exposure as s; "
         "s('demo/run2', subarray='SUB160', ngroups=5, nints=2, seed=3)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert sim.returncode == 0, sim.stderr[-2000:]
    for what, args in runs.items():
        result = _run(args, site, tmp_path)
        assert result.returncode == 0, f"{what}: {result.stderr[-2000:]}"
        output = result.stdout + result.stderr
        compiled = sorted({line.split("data saved to")[-1].strip()
                           for line in output.splitlines() if "data saved" in line})
        assert not compiled, (f"{what}: the first run compiled {len(compiled)} kernel(s) the "
                              f"package did not ship: " + ", ".join(os.path.basename(c) for c in compiled))
        assert "data loaded" in output, f"{what}: no kernel loaded from the shipped cache"


def test_a_kernel_compiled_on_first_use_is_said_and_the_log_keeps_talking(monkeypatch):
    """Where the shipped kernels do not apply (another CPU, another numba), a compilation starts
    with a line naming the kernel and says it is still going every few seconds."""
    import logging

    import numba
    import numpy as np

    from ramp2slope.runtime import compile_notice

    monkeypatch.setattr(compile_notice, "HEARTBEAT_S", 0.01)
    compile_notice.install()

    def probe(values):
        total = 0.0
        for i in range(values.size):
            total += np.sin(values[i]) * np.cos(values[i]) ** 2
        return total

    probe.__module__ = "ramp2slope.probe"   # a kernel of ours, as the listener sees it
    outside = numba.njit(lambda values: values.sum())   # not ours: compiled without a word

    class Collect(logging.Handler):
        def __init__(self):
            super().__init__(logging.INFO)
            self.lines = []

        def emit(self, record):
            self.lines.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger("ramp2slope")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        numba.njit(probe)(np.linspace(0.0, 1.0, 7))
        outside(np.ones(3))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    started = [line for line in handler.lines if line.startswith("compiling ")]
    assert started == ["compiling probe.probe for this machine (first use; numba keeps it in its cache)"], handler.lines
    assert any(line.startswith("still compiling probe.probe") for line in handler.lines), handler.lines
