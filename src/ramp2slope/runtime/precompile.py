"""Compiling every numba kernel of a usual run once, when the package is built.

The kernels are ``cache=True``: numba keeps their machine code in ``__pycache__`` next to each
module, keyed by the module's content (a hash), the numba version and the CPU. A fresh install
would otherwise spend its first run compiling (minutes on two busy cores, for a run that takes
seconds once compiled). ``pip install .`` therefore runs this module on the freshly built
package (see ``setup.py``): it simulates a small full-frame exposure and a multi-integration
subarray one, runs the command-line paths a user runs first on them (``run``, which is also
what ``demo`` and batches run per exposure, with the default steps and with LIKELY ramp fitting
and clean_flicker_noise turned on; two MIRI exposures, with clean_flicker_noise in one and
the EMI correction and shower flagging in the other; and NIRSpec IRS2 full frames of both
detectors), and so leaves the compiled kernels in the build
folder, from where they go into the installed package.

Compiled code is specific to the CPU and the numba version: a package built on one machine and
copied to another, or a later ``pip install -U numba``, recompiles on first use (as numba
always does), which is correct, only slower. ``RAMP2SLOPE_PRECOMPILE=0`` skips the step at
build time.

``python -m ramp2slope.runtime.precompile`` can also be run by hand, e.g. after upgrading numba.
"""
import argparse
import contextlib
import io
import logging
import os
import sys
import tempfile
import time

SWITCH = "RAMP2SLOPE_PRECOMPILE"

# The runs that compile what a first run needs: (what, simulation keywords, extra arguments).
# The full frame has reference pixels on every side (refpix's side correction), the subarray
# has two integrations (the streamed path, jump in blocks of rows); large-event expansion is on
# where CRDS's parameter files turn it on for NIRCam.
RUNS = (
    ("full frame", {"ngroups": 3, "nints": 1}, []),
    ("SUB160, 2 integrations", {"subarray": "SUB160", "ngroups": 5, "nints": 2},
     ["--steps.jump.expand_large_events=true"]),
    ("SUB160, 1 integration, every step saved", {"subarray": "SUB160", "ngroups": 4, "nints": 1},
     ["--save-steps"]),
    # the options users turn on most: LIKELY ramp fitting and clean_flicker_noise
    ("SUB160, 2 integrations, LIKELY and clean_flicker_noise",
     {"subarray": "SUB160", "ngroups": 5, "nints": 2},
     ["--steps.ramp_fit.algorithm=LIKELY", "--steps.clean_flicker_noise.skip=false"]),
    ("SUB160, 1 integration, LIKELY and clean_flicker_noise",
     {"subarray": "SUB160", "ngroups": 5, "nints": 1},
     ["--steps.ramp_fit.algorithm=LIKELY", "--steps.clean_flicker_noise.skip=false"]),
    # MIRI: a full frame (the reference-column refpix; clean_flicker_noise, whose MIRI medians
    # run along the columns) and a time series with the options that have kernels of their own
    # (the EMI correction, shower flagging)
    ("MIRI full frame, clean_flicker_noise",
     {"miri": True, "subarray": "FULL", "ngroups": 4, "nints": 1},
     ["--steps.clean_flicker_noise.skip=false"]),
    ("MIRI SUB64, 2 integrations, emicorr and showers",
     {"miri": True, "subarray": "SUB64", "ngroups": 14, "nints": 2},
     lambda sim: ["--steps.emicorr.skip=false",
                  f"--steps.emicorr.override_emicorr={sim.refs['emicorr']}",
                  "--steps.jump.find_showers=true"]),
    # NIRSpec's usual science readout, IRS2: its reference correction sees NRS1's frames
    # transposed and NRS2's transposed and reversed, two array layouts, two compilations; 3
    # groups on NRS1 for saturation's group-2 test
    ("NIRSpec IRS2 NRS1", {"irs2": True, "detector": "NRS1", "ngroups": 3, "nints": 1}, []),
    ("NIRSpec IRS2 NRS2", {"irs2": True, "detector": "NRS2", "ngroups": 2, "nints": 1}, []),
)


def compile_kernels(workdir, say=print):
    """Simulate and process the exposures of :data:`RUNS` in ``workdir``; returns the seconds
    spent. Raises whatever a run raises (the build reports it)."""
    from ..cli import main as cli_main
    from ..simulate import simulate_exposure

    os.environ["RAMP2SLOPE_JIT_WARMUP"] = "0"   # compile here, not in helper processes
    # the references are local files: an empty CRDS cache folder keeps the build from needing
    # the crds package (and its own dependencies) for nothing
    os.environ["CRDS_PATH"] = os.path.join(workdir, "crds_cache")
    started = time.perf_counter()
    for index, (what, sim_kwargs, extra) in enumerate(RUNS):
        folder = os.path.join(workdir, f"run{index}")
        t0 = time.perf_counter()
        sim_kwargs = dict(sim_kwargs)
        if sim_kwargs.pop("miri", False):
            from ..simulate.miri import simulate_miri_exposure

            sim = simulate_miri_exposure(folder, seed=index + 1, **sim_kwargs)
        elif sim_kwargs.pop("irs2", False):
            from ..simulate.irs2 import simulate_irs2_exposure

            sim = simulate_irs2_exposure(folder, seed=index + 1, **sim_kwargs)
        else:
            sim = simulate_exposure(folder, seed=index + 1, **sim_kwargs)
        if callable(extra):
            extra = extra(sim)
        refdir = os.path.dirname(sim.refs["mask"])
        # the runs' own output would drown the build log; their errors still propagate
        with contextlib.redirect_stdout(io.StringIO()):
            status = cli_main(["run", "-q", str(sim.uncal), "--refdir", refdir,
                               "--output-dir", os.path.join(folder, "products"),
                               "--disable-crds-steppars", *extra])
        if status:
            raise RuntimeError(f"the {what} run ended with status {status}")
        say(f"ramp2slope: kernels for a {what} exposure compiled in {time.perf_counter() - t0:.0f} s")
    return time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ramp2slope.runtime.precompile",
                                     description="Compile ramp2slope's numba kernels into their "
                                                 "cache (done by pip install).")
    parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="ramp2slope-precompile-") as workdir:
        seconds = compile_kernels(workdir)
    print(f"ramp2slope: kernels compiled in {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
