#!/usr/bin/env python
"""Side-by-side benchmark: ramp2slope against the official jwst Detector1Pipeline.

Simulates the cases with ``ramp2slope.simulate``, then runs, each as a separate process on the
same files with the same reference files and the same step configuration:

* ramp2slope (its command line, ``python -m ramp2slope.cli run``), on all threads and on one;
* jwst (``runner.py jwst``; offline, every reference overridden), when installed;
* the I/O floor (``runner.py floor``): imports numpy/astropy/numba/scipy, reads the input and
  every reference file, writes products of the same shapes and dtypes, no processing.

and prints median wall time and peak RSS per case, the ratios, per-step times and a PASS/MISS
line for each performance target. See docs/benchmarks.md.

    python benchmarks/bench.py --quick            # about 2 minutes
    python benchmarks/bench.py                    # every case, 3 repetitions
    python benchmarks/bench.py --cases a,c50 --reps 5 --workdir ~/r2s-bench --json out.json
    python benchmarks/bench.py --cases likely     # the ramp_fit step with LIKELY, against stcal
"""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import runner  # noqa: E402  (benchmarks/runner.py)

GB = 1e9

# ----------------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------------
#: key -> (description, simulate_exposure keyword arguments)
CASES = {
    "a": ("full frame, 1 int x 10 groups, RAPID", dict(ngroups=10, nints=1)),
    "b": ("full frame, 3 ints x 5 groups, RAPID", dict(ngroups=5, nints=3)),
    "c20": ("SUBGRISM256 TSO, 20 ints x 10 groups", dict(subarray="SUBGRISM256", ngroups=10, nints=20)),
    "c50": ("SUBGRISM256 TSO, 50 ints x 10 groups", dict(subarray="SUBGRISM256", ngroups=10, nints=50)),
    "c200": ("SUBGRISM256 TSO, 200 ints x 10 groups", dict(subarray="SUBGRISM256", ngroups=10, nints=200)),
    # MEDIUM8: 8 frames averaged per group, 2 dropped between groups: 5 groups span 48 frames,
    # and the DARK gets one plane per frame (48 planes, no extension needed).
    "d": ("full frame MEDIUM8, 1 int x 5 groups, per-frame dark",
          dict(ngroups=5, nints=1, readpatt="MEDIUM8", dark_nplanes=48)),
    # the other near-infrared instruments: detectors stored transposed (|FASTAXIS| = 2)
    "n": ("NIRSpec NRS1 full frame, 1 int x 10 groups, NRSRAPID",
          dict(detector="NRS1", readpatt="NRSRAPID", ngroups=10, nints=1)),
    "s50": ("NIRISS SOSS time series (SUBSTRIP256, 256x2048), 50 ints x 10 groups",
            dict(detector="NIS", readpatt="NISRAPID", subarray="SUBSTRIP256", ngroups=10, nints=50)),
    # IRS2: 3200 stored rows (interleaved reference samples) until refpix removes them
    "i": ("NIRSpec NRS1 IRS2 full frame (3200x2048 stored), 1 int x 10 groups, NRSIRS2RAPID",
          dict(irs2=True, detector="NRS1", ngroups=10, nints=1)),
    # MIRI (simulate.miri): the imager full frame and the LRS slitless time series
    "m": ("MIRI imager full frame (1024x1032), 1 int x 20 groups, FAST",
          dict(miri=True, subarray="FULL", ngroups=20, nints=1)),
    "mt50": ("MIRI SLITLESSPRISM TSO (416x72), 50 ints x 10 groups, FAST",
             dict(miri=True, subarray="SLITLESSPRISM", ngroups=10, nints=50)),
    "mt200": ("MIRI SLITLESSPRISM TSO (416x72), 200 ints x 10 groups, FAST",
              dict(miri=True, subarray="SLITLESSPRISM", ngroups=10, nints=200)),
}
CASE_ALIASES = {"c": ["c50", "c200"], "miri": ["m", "mt50", "mt200"]}
DEFAULT_CASES = ["a", "b", "c50", "c200", "d"]
QUICK_CASES = ["a", "c20"]

#: Steps in pipeline order (for the per-step tables).
STEP_ORDER = ("group_scale", "dq_init", "emicorr", "saturation", "ipc", "superbias", "firstframe",
              "lastframe", "reset", "refpix", "linearity", "rscd", "dark_current",
              "charge_migration", "jump", "picture_frame", "clean_flicker_noise", "persistence",
              "ramp_fit", "gain_scale")
SCALING_STEPS = ("jump", "ramp_fit")

# Targets
SPEEDUP_VS_JWST = 10.0
FLOOR_FACTOR = 2.0              # multi-integration exposures
FLOOR_FACTOR_ONE_INT = 1.5      # single-integration exposures


def floor_factor(shape):
    """The I/O-floor target of a case of shape (nints, ngroups, ny, nx)."""
    return FLOOR_FACTOR_ONE_INT if shape[0] == 1 else FLOOR_FACTOR
RSS_VS_JWST = 0.25
RSS_GROWTH_TSO = 1.3
THREAD_SPEEDUP = 1.7
COLD_EXTRA_S = 30.0
#: Start-up (interpreter, imports, command line, exit, numba's initialisation and the loading of
#: every kernel from its cache) may exceed the I/O floor's imports by this much.
STARTUP_OVER_FLOOR_S = 0.3


def log(msg=""):
    print(msg, flush=True)


def compile_bytecode():
    """Write ramp2slope's bytecode, as ``pip install`` does for a regular install. An editable
    install in an environment with PYTHONDONTWRITEBYTECODE set (some containers set it) would
    otherwise compile every module from source in every run, about 0.1 s of each, which jwst
    (installed with its bytecode) does not pay."""
    import compileall

    try:
        import ramp2slope
    except ImportError:
        return
    for folder in ramp2slope.__path__:
        compileall.compile_dir(folder, quiet=1)


def loadavg():
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def mem_available():
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def ramp_bytes(shape):
    """Bytes of the float32 ramp of a case."""
    n = 1
    for s in shape:
        n *= s
    return 4 * n


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------
def prepare_case(key, workdir, ipc):
    """Simulate (or reuse) the inputs of a case; returns {'uncal', 'refs', 'shape', ...}."""
    desc, kwargs = CASES[key]
    folder = Path(workdir) / f"case_{key}"
    marker = folder / "case.json"
    wanted = {"kwargs": kwargs, "seed": 0}
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("wanted") == wanted and Path(info["uncal"]).exists() and all(
                Path(p).exists() for p in info["refs"].values()):
            log(f"  case {key}: reusing the inputs in {folder}")
            return _with_ipc(info, folder, ipc)
    from ramp2slope.simulate import simulate_exposure
    from ramp2slope.simulate.irs2 import simulate_irs2_exposure
    from ramp2slope.simulate.miri import simulate_miri_exposure

    if folder.exists():
        shutil.rmtree(folder)
    log(f"  case {key}: simulating {desc} ...")
    start = time.perf_counter()
    kwargs = dict(kwargs)
    simulate = simulate_exposure
    if kwargs.pop("irs2", False):
        simulate = simulate_irs2_exposure
    elif kwargs.pop("miri", False):
        simulate = simulate_miri_exposure
    sim = _simulate_with_retry(simulate, folder / "input", kwargs)
    info = {
        "wanted": wanted, "uncal": str(Path(sim.uncal).resolve()),
        "refs": {k: str(Path(v).resolve()) for k, v in sim.refs.items()},
        "shape": list(sim.shape), "detector": _detector_of(sim.uncal),
    }
    # the truth file is not needed here; it is large for long exposures
    if sim.truth and Path(sim.truth).exists():
        Path(sim.truth).unlink()
    marker.write_text(json.dumps(info, indent=1))
    log(f"  case {key}: simulated in {time.perf_counter() - start:.0f} s, shape {tuple(sim.shape)}")
    return _with_ipc(info, folder, ipc)


def _simulate_with_retry(simulate_exposure, outdir, kwargs, attempts=3, wait_s=180):
    for attempt in range(attempts):
        try:
            return simulate_exposure(outdir, seed=0, **kwargs)
        except Exception as exc:  # the simulator may be mid-edit by a colleague
            if attempt + 1 == attempts:
                raise
            log(f"  simulation failed ({type(exc).__name__}: {exc}); retrying in {wait_s} s")
            time.sleep(wait_s)


def _detector_of(uncal):
    from astropy.io import fits

    return fits.getheader(uncal, 0).get("DETECTOR", "NRCBLONG")


def _with_ipc(info, folder, ipc):
    info = dict(info)
    info["refs"] = dict(info["refs"])
    if ipc:
        path = folder / "ipc_kernel.fits"
        if not path.exists():
            write_ipc_reference(path, info.get("detector", "NRCBLONG"))
        info["refs"]["ipc"] = str(path.resolve())
    refs_json = folder / ("refs_ipc.json" if ipc else "refs.json")
    refs_json.write_text(json.dumps(info["refs"], indent=1))
    info["refs_json"] = str(refs_json)
    info["folder"] = str(folder)
    return info


def write_ipc_reference(path, detector):
    """A 3x3 IPC kernel summing to 1 (0.4 % to each side neighbour, 0.1 % to each corner)."""
    import numpy as np
    from astropy.io import fits

    kernel = np.array([[0.001, 0.004, 0.001],
                       [0.004, 0.980, 0.004],
                       [0.001, 0.004, 0.001]], dtype=np.float32)
    primary = fits.PrimaryHDU()
    for key, value in (("TELESCOP", "JWST"), ("INSTRUME", "NIRCAM"), ("DETECTOR", detector),
                       ("REFTYPE", "IPC"), ("DATAMODL", "IPCModel"), ("SUBARRAY", "GENERIC"),
                       ("AUTHOR", "ramp2slope benchmark"), ("PEDIGREE", "DUMMY"),
                       ("USEAFTER", "2000-01-01T00:00:00"),
                       ("DESCRIP", "Benchmark 3x3 IPC kernel")):
        primary.header[key] = value
    fits.HDUList([primary, fits.ImageHDU(kernel, name="SCI")]).writeto(path, overwrite=True)


# ----------------------------------------------------------------------------------------------
# Running one process and measuring it
# ----------------------------------------------------------------------------------------------
class Spawner:
    """Starts the measured processes from a small helper process (``runner.py spawner``).

    Linux carries a process's resident-set high-water mark across fork and exec, so a child's
    ``ru_maxrss`` is at least what its parent had used when it forked. This benchmark process
    grows (it reads FITS headers, may simulate exposures), so it does not start the measured
    processes itself: the helper, started first and staying at a few tens of MB, does.
    """

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "runner.py"), "spawner"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, cmd, logfile, env=None):
        request = {"cmd": [str(c) for c in cmd], "logfile": str(logfile),
                   "env": dict(env if env is not None else os.environ)}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        return answer["wall"], answer["maxrss"], answer["code"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


SPAWNER = None


def measure(cmd, logfile, env=None):
    """Run ``cmd``; returns (wall seconds, peak RSS bytes, exit code). Output goes to ``logfile``.

    The peak RSS is the child's own ``ru_maxrss`` from ``wait4`` (kernel accounting: the true
    high-water mark, including any processes it waited for), not a polled sample. The wall time
    runs from the start of the process to its exit.
    """
    global SPAWNER
    if SPAWNER is None:
        SPAWNER = Spawner()
    return SPAWNER.run(cmd, logfile, env)


def tail(path, lines=15):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("      | " + line for line in text[-lines:])


_R2S_LINE = re.compile(r"^\[\s*([\d.]+) s\] (\S+) (done in ([\d.]+) s|running|skipped)")
_KERNELS = re.compile(r"kernels loaded in ([\d.]+) s")


def parse_r2s_log(path, wall):
    """Per-step seconds from ramp2slope's "<step> done in X s" lines, plus the rest of the time.

    ``kernels`` holds the part of each step's time that went to loading numba kernels on their
    first call (the line's "kernels loaded in Y s"); ``kernels_s`` is their sum over the run.
    """
    steps, kernels, first, pipe_done, pipe_total = {}, {}, None, None, None
    for line in Path(path).read_text(errors="replace").splitlines():
        match = _R2S_LINE.match(line)
        if not match:
            continue
        stamp, name, what = float(match.group(1)), match.group(2), match.group(3)
        if name in STEP_ORDER:
            if first is None:
                first = stamp
            if what.startswith("done"):
                steps[name] = steps.get(name, 0.0) + float(match.group(4))
                loaded = _KERNELS.search(line)
                if loaded:
                    kernels[name] = kernels.get(name, 0.0) + float(loaded.group(1))
        elif what.startswith("done"):
            pipe_done, pipe_total = stamp, float(match.group(4))
            loaded = _KERNELS.search(line)   # the run's, in the steps or between them
            pipe_kernels = float(loaded.group(1)) if loaded else 0.0
    if pipe_done is None or first is None:
        return {"steps": steps, "kernels": kernels}
    run_start = pipe_done - pipe_total
    startup = wall - pipe_done + max(run_start, 0.0)
    kernels_s = max(pipe_kernels, sum(kernels.values()))
    return {
        "steps": steps,
        "kernels": kernels,
        "kernels_s": kernels_s,
        "pipeline_s": pipe_total,
        # interpreter start, imports, parsing the command line, exit
        "startup_s": startup,
        # ... and numba's initialisation and kernel loading, wherever in the run they happened
        "startup_all_s": startup + kernels_s,
        "open_s": max(first - run_start, 0.0),
        "save_other_s": max(pipe_done - first - sum(steps.values()), 0.0),
    }


def step_work(run, step):
    """A step's seconds in one run without its kernel loading (None if it did not run)."""
    seconds = run.get("steps", {}).get(step)
    if seconds is None:
        return None
    return seconds - run.get("kernels", {}).get(step, 0.0)


def r2s_command(case, outdir, threads, ipc):
    # no CRDS parameter files, as jwst is run (runner.py: STPIPE_DISABLE_CRDS_STEPPARS): the
    # same parameters for both, every reference given explicitly
    cmd = [sys.executable, "-m", "ramp2slope.cli", "run", case["uncal"], "--output-dir", str(outdir),
           "--disable-crds-steppars"]
    if threads:
        cmd += ["--threads", str(threads)]
    refs = case["refs"]
    cmd += runner.cli_step_args(runner.step_config(refs, ipc=ipc))
    return cmd


def run_r2s(case, rundir, tag, threads, ipc, env=None, keep=False):
    outdir = rundir / f"out_{tag}"
    shutil.rmtree(outdir, ignore_errors=True)
    logfile = rundir / f"{tag}.log"
    # NUMBA_DEBUG_CACHE prints one line per kernel loaded from / saved to the cache: a "saved"
    # line means the run compiled (a cold cache, or a kernel's source changed since).
    env = dict(env or os.environ, NUMBA_DEBUG_CACHE="1")
    wall, rss, code = measure(r2s_command(case, outdir, threads, ipc), logfile, env=env)
    result = {"wall_s": wall, "rss": rss, "ok": code == 0, "load": loadavg()[0]}
    text = logfile.read_text(errors="replace")
    result["jit_compiled"] = text.count("[cache] data saved")
    result["jit_loaded"] = text.count("[cache] data loaded")
    if code == 0:
        result.update(parse_r2s_log(logfile, wall))
    else:
        result["error"] = tail(logfile)
    if not keep:
        shutil.rmtree(outdir, ignore_errors=True)
    return result, outdir


def run_r2s_memory(case, rundir, threads, ipc, env=None):
    """One more ramp2slope run, in-process under runner.py, noting the RSS at every step."""
    outdir = rundir / "out_r2s_mem"
    timing = rundir / "r2s_mem.json"
    cli_args = r2s_command(case, outdir, threads, ipc)[3:]        # from "run" on
    cmd = [sys.executable, str(HERE / "runner.py"), "r2s-mem", "--timing", str(timing), "--",
           *cli_args]
    wall, rss, code = measure(cmd, rundir / "r2s_mem.log", env=env)
    shutil.rmtree(outdir, ignore_errors=True)
    if code != 0 or not timing.exists():
        return {"ok": False, "error": tail(rundir / "r2s_mem.log")}
    return {"ok": True, "wall_s": wall, "rss": rss, **json.loads(timing.read_text())}


def run_jwst(case, rundir, tag, ipc, cores, crds_path):
    outdir = rundir / f"out_{tag}"
    shutil.rmtree(outdir, ignore_errors=True)
    timing = rundir / f"{tag}.json"
    cmd = [sys.executable, str(HERE / "runner.py"), "jwst", "--uncal", case["uncal"],
           "--refs", case["refs_json"], "--output-dir", str(outdir), "--timing", str(timing),
           "--crds-path", str(crds_path)]
    if ipc:
        cmd.append("--ipc")
    if cores:
        cmd += ["--cores", str(cores)]
    return _measure_runner(cmd, rundir, tag, outdir, timing)


def _measure_runner(cmd, rundir, tag, outdir, timing):
    """Run one ``runner.py`` process; its wall time, peak RSS and the timing report it wrote."""
    wall, rss, code = measure(cmd, rundir / f"{tag}.log")
    result = {"wall_s": wall, "rss": rss, "ok": code == 0, "load": loadavg()[0]}
    if code == 0 and timing.exists():
        result.update(json.loads(timing.read_text()))
    elif code != 0:
        result["error"] = tail(rundir / f"{tag}.log")
    shutil.rmtree(outdir, ignore_errors=True)
    return result


def run_floor(case, rundir, tag, products_json):
    outdir = rundir / f"out_{tag}"
    shutil.rmtree(outdir, ignore_errors=True)
    timing = rundir / f"{tag}.json"
    cmd = [sys.executable, str(HERE / "runner.py"), "floor", "--uncal", case["uncal"],
           "--refs", case["refs_json"], "--output-dir", str(outdir), "--timing", str(timing),
           "--products", str(products_json)]
    return _measure_runner(cmd, rundir, tag, outdir, timing)


def product_spec(outdir):
    """Shapes and dtypes of every image HDU of every FITS product in ``outdir``."""
    from astropy.io import fits

    spec = []
    for path in sorted(Path(outdir).glob("*.fits")):
        hdus = []
        with fits.open(path, memmap=True, do_not_scale_image_data=False) as hdul:
            for hdu in hdul[1:]:
                if isinstance(hdu, fits.ImageHDU) and hdu.shape:
                    dtype = _image_dtype(hdu)
                    hdus.append({"name": hdu.name, "shape": list(hdu.shape), "dtype": dtype})
        spec.append({"name": path.name, "hdus": hdus})
    return spec


def _image_dtype(hdu):
    bitpix = hdu.header["BITPIX"]
    bzero = hdu.header.get("BZERO", 0)
    if bitpix == 16 and bzero == 32768:
        return "uint16"
    if bitpix == 32 and bzero == 2**31:
        return "uint32"
    return {8: "uint8", 16: "int16", 32: "int32", 64: "int64", -32: "float32", -64: "float64"}[bitpix]


def default_product_spec(shape):
    """jwst's products (rate and rateints) when no ramp2slope run is available to copy."""
    nints, _, ny, nx = shape
    names = (("SCI", "float32"), ("ERR", "float32"), ("DQ", "uint32"),
             ("VAR_POISSON", "float32"), ("VAR_RNOISE", "float32"))
    return [
        {"name": "rate.fits", "hdus": [{"name": n, "shape": [ny, nx], "dtype": d} for n, d in names]},
        {"name": "rateints.fits",
         "hdus": [{"name": n, "shape": [nints, ny, nx], "dtype": d} for n, d in names]},
    ]


# ----------------------------------------------------------------------------------------------
# The benchmark
# ----------------------------------------------------------------------------------------------
def jwst_estimate_bytes(case):
    """Rough peak RSS of jwst 3.0: a base, 13 bytes per float32 ramp byte, 1.5 x the DARK file.

    Fitted to runs measured here (full frame 1 x 10: 2.75 GB; SUBGRISM256 20 x 10: 6.3 GB); it is
    only used to skip jwst on cases that could not fit in memory.
    """
    return 1.2 * GB + 13.0 * ramp_bytes(case["shape"]) + 1.5 * os.path.getsize(case["refs"]["dark"])


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def usable(runs):
    """Successful runs; ramp2slope runs that had to JIT-compile are left out when others did not."""
    ok = [r for r in runs if r.get("ok")]
    warm = [r for r in ok if not r.get("jit_compiled")]
    return warm or ok


def summarise(runs, key):
    return median([r.get(key) for r in usable(runs)])


def step_medians(runs, key="steps"):
    """{step: median seconds} of ``runs``' per-step ``key`` ("steps", or "kernels": their
    kernel loading; a step with none counts 0 there)."""
    runs = usable(runs)
    names = {name for r in runs for name in r.get(key, {})}
    default = 0.0 if key == "kernels" else None
    return {name: median([r.get(key, {}).get(name, default) for r in runs]) for name in names}


def warm_page_cache(case):
    """Read the case's files once, so every contender starts with them in the page cache."""
    for path in [case["uncal"], *case["refs"].values()]:
        with open(path, "rb") as handle:
            while handle.read(64 * 2**20):
                pass


def first_r2s_run(key, case, args, workroot, threads):
    """The run that fills the numba cache: measured as the cold run when asked for.

    With the cold measurement, every ramp2slope run of the benchmark uses NUMBA_CACHE_DIR set to
    a fresh folder: the first run compiles every kernel into it (the "first run after install"),
    and the later runs load them (warm). Without it, one unmeasured warm-up run uses the normal
    cache (``__pycache__`` next to the installed modules).
    Returns (run result or None, environment for the later ramp2slope runs).
    """
    rundir = workroot / f"runs_{key}"
    rundir.mkdir(parents=True, exist_ok=True)
    if args.cold:
        cache = Path(tempfile.mkdtemp(prefix="numba_cache_", dir=workroot))
        env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
        log(f"  [{key}] ramp2slope first run, empty numba cache (NUMBA_CACHE_DIR={cache.name}) ...")
        cold, _ = run_r2s(case, rundir, "r2s_cold", threads, args.ipc, env=env)
        log(f"  [{key}]   cold run {cold['wall_s']:.1f} s, {cold['jit_compiled']} kernels compiled"
            if cold["ok"]
            else f"  [{key}]   ramp2slope FAILED:\n{cold['error']}")
        return cold, env
    log(f"  [{key}] ramp2slope warm-up run ...")
    warm, _ = run_r2s(case, rundir, "r2s_warmup", threads, args.ipc)
    log(f"  [{key}]   warm-up {warm['wall_s']:.1f} s" if warm["ok"]
        else f"  [{key}]   ramp2slope FAILED:\n{warm['error']}")
    return None, None


def jit_note(run):
    n = run.get("jit_compiled")
    return f" (JIT-compiled {n} kernels: not warm)" if n else ""


def bench_case(key, case, args, workroot, crds_path, have_jwst, jwst_ok_for_case, r2s_env):
    rundir = workroot / f"runs_{key}"
    rundir.mkdir(parents=True, exist_ok=True)
    res = {"key": key, "description": CASES[key][0], "shape": case["shape"], "r2s": [],
           "r2s_t1": [], "jwst": [], "floor": [], "cold": None}
    threads = args.threads or available_cores()
    warm_page_cache(case)
    products_json = rundir / "products.json"
    r2s_works = True
    for rep in range(args.reps):
        line = []
        if r2s_works:
            r, outdir = run_r2s(case, rundir, f"r2s_{rep}", threads, args.ipc, env=r2s_env,
                                keep=(rep == 0))
            if r["ok"] and r["jit_compiled"]:
                # kernels (or signatures) this case needs that earlier runs did not: compiled
                # now; that run was a warm-up, measure again.
                log(f"  [{key}]   ramp2slope compiled {r['jit_compiled']} kernels "
                    f"({r['wall_s']:.1f} s); running again with the cache warm")
                shutil.rmtree(outdir, ignore_errors=True)
                r, outdir = run_r2s(case, rundir, f"r2s_{rep}", threads, args.ipc, env=r2s_env,
                                    keep=(rep == 0))
            if rep == 0:
                r2s_works = r["ok"]
                # the I/O floor writes the same files, with the same shapes and dtypes
                spec = product_spec(outdir) if r["ok"] else default_product_spec(case["shape"])
                shutil.rmtree(outdir, ignore_errors=True)
                res["products"] = spec
                products_json.write_text(json.dumps(spec, indent=1))
            if r["ok"]:
                res["r2s"].append(r)
                line.append(f"ramp2slope {r['wall_s']:.1f} s {r['rss'] / GB:.2f} GB"
                            + jit_note(r))
            else:
                line.append(f"ramp2slope FAILED\n{r['error']}\n")
        f = run_floor(case, rundir, f"floor_{rep}", products_json)
        res["floor"].append(f)
        line.append(f"floor {f['wall_s']:.1f} s {f['rss'] / GB:.2f} GB" if f["ok"]
                    else f"floor FAILED\n{f['error']}\n")
        if r2s_works and args.scaling and threads != 1:
            r1, _ = run_r2s(case, rundir, f"r2s_t1_{rep}", 1, args.ipc, env=r2s_env)
            res["r2s_t1"].append(r1)
            line.append(f"ramp2slope 1 thread {r1['wall_s']:.1f} s{jit_note(r1)}" if r1["ok"]
                        else f"ramp2slope 1 thread FAILED\n{r1['error']}\n")
        if have_jwst and jwst_ok_for_case:
            j = run_jwst(case, rundir, f"jwst_{rep}", args.ipc, args.jwst_cores, crds_path)
            res["jwst"].append(j)
            line.append(f"jwst {j['wall_s']:.1f} s {j['rss'] / GB:.2f} GB" if j["ok"]
                        else f"jwst FAILED\n{j['error']}\n")
        log(f"  [{key}] rep {rep + 1}/{args.reps}: {' | '.join(line)}  (load {loadavg()[0]:.2f})")
    if args.memory_profile and r2s_works:
        res["r2s_memory"] = run_r2s_memory(case, rundir, threads, args.ipc, env=r2s_env)
    if not args.keep_logs:
        shutil.rmtree(rundir, ignore_errors=True)
    return res


def fmt_s(x):
    return "-" if x is None else (f"{x:.2f}" if x < 10 else f"{x:.1f}")


def fmt_ms(x):
    """Seconds to the millisecond (the steps' lines give them so): for the short steps whose
    ratios the thread-scaling targets judge."""
    return "-" if x is None else f"{x:.3f}"


def fmt_gb(x):
    return "-" if x is None else f"{x / GB:.2f}"


def fmt_x(x):
    return "-" if x is None else f"{x:.1f}x" if x >= 10 else f"{x:.2f}x"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def report(results, args, meta):
    lines = []
    add = lines.append
    add("")
    add(f"ramp2slope {meta['ramp2slope']} vs jwst {meta['jwst']} | {meta['cpus']} cores | "
        f"threads {meta['threads']} | reps {args.reps} | ipc {'on' if args.ipc else 'off'} | "
        f"load avg {meta['load_start'][0]:.2f} at start, {meta['load_end'][0]:.2f} at end")
    add("")
    head = (f"{'case':<5} {'ints x groups x ny x nx':<24} | {'ramp2slope':>15} | {'jwst':>15} | "
            f"{'I/O floor':>15} | {'jwst/r2s':>14} | {'r2s/floor':>9}")
    add(head)
    add(f"{'':<5} {'':<24} | {'wall s':>7} {'RSS GB':>7} | {'wall s':>7} {'RSS GB':>7} | "
        f"{'wall s':>7} {'RSS GB':>7} | {'time':>6} {'RSS':>7} | {'time':>9}")
    add("-" * len(head))
    for res in results:
        r_w, r_m = summarise(res["r2s"], "wall_s"), summarise(res["r2s"], "rss")
        j_w, j_m = summarise(res["jwst"], "wall_s"), summarise(res["jwst"], "rss")
        f_w, f_m = summarise(res["floor"], "wall_s"), summarise(res["floor"], "rss")
        shape = "x".join(str(s) for s in res["shape"])
        add(f"{res['key']:<5} {shape:<24} | {fmt_s(r_w):>7} {fmt_gb(r_m):>7} | {fmt_s(j_w):>7} "
            f"{fmt_gb(j_m):>7} | {fmt_s(f_w):>7} {fmt_gb(f_m):>7} | {fmt_x(ratio(j_w, r_w)):>6} "
            f"{fmt_x(ratio(j_m, r_m)):>7} | {fmt_x(ratio(r_w, f_w)):>9}")
        if res.get("jwst_skipped"):
            add(f"{'':<5} jwst not run: {res['jwst_skipped']}")
    add("")
    for res in results:
        add(f"  {res['key']}: {res['description']}")

    # per-step table
    add("")
    add("Per-step medians (s). ramp2slope on N threads and on 1; jwst code defaults (1 core).")
    add("'loading': the part of the r2s time spent loading numba kernels on their first call.")
    for res in results:
        r_steps = step_medians(res["r2s"])
        r1_steps = step_medians(res["r2s_t1"])
        r_kernels = step_medians(res["r2s"], "kernels")
        j_steps = step_medians(res["jwst"])
        if not (r_steps or j_steps):
            continue
        add("")
        add(f"  case {res['key']} ({res['description']})")
        add(f"  {'step':<18} {'r2s':>8} {'loading':>8} {'r2s 1thr':>9} {'1thr/Nthr':>9} "
            f"{'jwst':>8} {'jwst/r2s':>9}")
        for name in STEP_ORDER:
            r, r1, j = r_steps.get(name), r1_steps.get(name), j_steps.get(name)
            if r is None and j is None:
                continue
            loading = r_kernels.get(name, 0.0) if r is not None else None
            add(f"  {name:<18} {fmt_s(r):>8} {fmt_s(loading):>8} {fmt_s(r1):>9} "
                f"{fmt_x(ratio(r1, r)):>9} {fmt_s(j):>8} {fmt_x(ratio(j, r)):>9}")
        rest = {k: median([x.get(k) for x in usable(res["r2s"])])
                for k in ("startup_s", "open_s", "save_other_s", "pipeline_s", "kernels_s")}
        j_rest = {k: median([x.get(k) for x in res["jwst"] if x.get("ok")])
                  for k in ("import_s", "pipeline_s")}
        add(f"  {'(open input)':<18} {fmt_s(rest['open_s']):>8}")
        add(f"  {'(I/O, other)':<18} {fmt_s(rest['save_other_s']):>8}")
        add(f"  {'(startup+imports)':<18} {fmt_s(rest['startup_s']):>8} {'':>8} {'':>9} {'':>9} "
            f"{fmt_s(j_rest['import_s']):>8}")
        add(f"  {'(kernel loading)':<18} {fmt_s(rest['kernels_s']):>8}   (in the steps above)")
        add(f"  {'pipeline total':<18} {fmt_s(rest['pipeline_s']):>8} {'':>8} {'':>9} {'':>9} "
            f"{fmt_s(j_rest['pipeline_s']):>8}")
        f_read = median([x.get("read_s") for x in res["floor"] if x.get("ok")])
        f_write = median([x.get("write_s") for x in res["floor"] if x.get("ok")])
        f_imp = median([x.get("import_s") for x in res["floor"] if x.get("ok")])
        add(f"  I/O floor: imports {fmt_s(f_imp)} s, read {fmt_s(f_read)} s, write {fmt_s(f_write)} s")

    for res in results:
        prof = res.get("r2s_memory")
        if not prof:
            continue
        add("")
        add(f"  ramp2slope memory, case {res['key']}: resident set (GB) when each step ends")
        if not prof.get("ok"):
            add("  (profile run failed)")
            continue
        add(f"  {'step':<18} {'now':>6} {'peak so far':>12} {'t (s)':>7}")
        for mark in prof["marks"]:
            if mark["event"] in ("done", "start", "end"):
                add(f"  {mark['step']:<18} {fmt_gb(mark['rss']):>6} {fmt_gb(mark['peak_rss']):>12} "
                    f"{mark['t']:7.2f}")

    add("")
    add("Targets")
    verdicts = targets(results, args)
    for verdict in verdicts:
        add("  " + verdict["line"])
    return "\n".join(lines), verdicts


def targets(results, args):
    out = []

    def verdict(name, ok, text):
        status = "n/a " if ok is None else ("PASS" if ok else "MISS")
        out.append({"target": name, "status": status.strip(), "line": f"{status} {name}: {text}"})

    for res in results:
        k = res["key"]
        r_w, r_m = summarise(res["r2s"], "wall_s"), summarise(res["r2s"], "rss")
        j_w, j_m = summarise(res["jwst"], "wall_s"), summarise(res["jwst"], "rss")
        f_w = summarise(res["floor"], "wall_s")
        x = ratio(j_w, r_w)
        verdict(f"[{k}] wall >= {SPEEDUP_VS_JWST:g}x faster than jwst",
                None if x is None else x >= SPEEDUP_VS_JWST,
                "-" if x is None else f"{x:.1f}x ({fmt_s(j_w)} s / {fmt_s(r_w)} s)"
                + (f" [{res['jwst_skipped']}]" if res.get("jwst_skipped") else ""))
        x = ratio(r_w, f_w)
        factor = floor_factor(res["shape"])
        verdict(f"[{k}] wall within {factor:g}x of the I/O floor",
                None if x is None else x <= factor,
                "-" if x is None else f"{x:.3f}x ({fmt_s(r_w)} s / {fmt_s(f_w)} s)")
        x = ratio(r_m, j_m)
        verdict(f"[{k}] peak RSS <= 1/4 of jwst",
                None if x is None else x <= RSS_VS_JWST,
                "-" if x is None else f"{x:.3f} ({fmt_gb(r_m)} GB / {fmt_gb(j_m)} GB)")
        if res["r2s_t1"]:
            for step in SCALING_STEPS:
                # the step's work: its kernels' first-call loading is start-up (judged below),
                # one-off and on one core whatever the threads; the whole time is shown too
                t1 = median([step_work(r, step) for r in res["r2s_t1"] if r.get("ok")])
                tn = median([step_work(r, step) for r in res["r2s"] if r.get("ok")])
                w1 = median([r.get("steps", {}).get(step) for r in res["r2s_t1"] if r.get("ok")])
                wn = median([r.get("steps", {}).get(step) for r in res["r2s"] if r.get("ok")])
                x = ratio(t1, tn)
                verdict(f"[{k}] {step} on {args.threads or available_cores()} threads >= "
                        f"{THREAD_SPEEDUP:g}x faster than on 1",
                        None if x is None else x >= THREAD_SPEEDUP,
                        "-" if x is None else
                        f"{x:.3f}x ({fmt_ms(t1)} s / {fmt_ms(tn)} s without kernel loading; "
                        f"{fmt_x(ratio(w1, wn))} with it, {fmt_ms(w1)} s / {fmt_ms(wn)} s)")
        startup = summarise(res["r2s"], "startup_all_s")
        f_imp = median([x.get("import_s") for x in res["floor"] if x.get("ok")])
        over = None if startup is None or f_imp is None else startup - f_imp
        verdict(f"[{k}] start-up <= the floor's imports + {STARTUP_OVER_FLOOR_S:g} s",
                None if over is None else over <= STARTUP_OVER_FLOOR_S,
                "-" if over is None else
                f"+{over:.3f} s ({startup:.3f} s: interpreter, imports and exit "
                f"{fmt_ms(summarise(res['r2s'], 'startup_s'))} s, numba and kernel loading "
                f"{fmt_ms(summarise(res['r2s'], 'kernels_s'))} s; floor imports {f_imp:.3f} s)")
    by_key = {res["key"]: res for res in results}
    for short, long, name in (("c50", "c200", "c"), ("mt50", "mt200", "mt")):
        if short not in by_key or long not in by_key:
            continue
        m50 = summarise(by_key[short]["r2s"], "rss")
        m200 = summarise(by_key[long]["r2s"], "rss")
        x = ratio(m200, m50)
        verdict(f"[{name}] peak RSS of 200 ints <= {RSS_GROWTH_TSO:g}x that of 50 ints",
                None if x is None else x <= RSS_GROWTH_TSO,
                "-" if x is None else f"{x:.3f}x ({fmt_gb(m200)} GB / {fmt_gb(m50)} GB)")
    for res in results:
        cold = res.get("cold")
        if cold:
            warm = summarise(res["r2s"], "wall_s")
            extra = None if not cold.get("ok") or warm is None else cold["wall_s"] - warm
            verdict(f"[{res['key']}] first run (empty JIT cache) <= {COLD_EXTRA_S:g} s slower than warm",
                    None if extra is None else extra <= COLD_EXTRA_S,
                    "-" if extra is None else f"+{extra:.1f} s ({cold['wall_s']:.1f} s vs {fmt_s(warm)} s)")
    return out


# ----------------------------------------------------------------------------------------------
# Case "batch": many exposures as one job (docs/batch.md)
# ----------------------------------------------------------------------------------------------
#: (count, description, simulate_exposure keyword arguments); one detector and read pattern,
#: so that one set of full-frame references serves every exposure.
BATCH_MIX = [
    (4, "full frame 1x10", dict(ngroups=10, nints=1)),
    (2, "full frame 3x5", dict(ngroups=5, nints=3)),
    (4, "SUBGRISM256 5x10", dict(subarray="SUBGRISM256", ngroups=10, nints=5)),
    (4, "SUB640 2x10", dict(subarray="SUB640", ngroups=10, nints=2)),
    (2, "SUB160 10x10", dict(subarray="SUB160", ngroups=10, nints=10)),
]
BATCH_THROUGHPUT_VS_JWST = 10.0
BATCH_RSS_VS_JWST = 0.25
BATCH_WORKER_SPEEDUP = 1.7
BATCH_OVERHEAD_S = 0.2


def prepare_batch(workdir):
    """Simulate (or reuse) the sixteen exposures; returns {'uncals', 'kinds', 'refdir', 'refs'}."""
    folder = Path(workdir) / "batch"
    marker = folder / "batch.json"
    wanted = [[n, d, k] for n, d, k in BATCH_MIX]
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("wanted") == wanted and all(Path(p).exists() for p in info["uncals"]):
            log(f"  batch: reusing the inputs in {folder}")
            return info
    from ramp2slope.simulate import simulate_exposure

    shutil.rmtree(folder, ignore_errors=True)
    inputs, refdir = folder / "inputs", folder / "refs"
    inputs.mkdir(parents=True)
    uncals, kinds, refs, darks, exposure_darks = [], [], None, {}, []
    index = 0
    start = time.perf_counter()
    for count, desc, kwargs in BATCH_MIX:
        subarray = kwargs.get("subarray", "FULL")
        for _ in range(count):
            sim_dir = folder / f"sim{index}"
            sim = simulate_exposure(sim_dir, seed=index, exposure=index + 1, **kwargs)
            target = inputs / Path(sim.uncal).name
            shutil.move(sim.uncal, target)
            if refs is None:
                # the first exposure has the most frames per integration: its full-frame
                # references serve every other one, except the DARK, which is not cut out
                # of a full frame: one per subarray, found in the folder by its SUBARRAY
                shutil.move(str(Path(sim.refs["mask"]).parent), refdir)
                refs = {k: str(refdir / Path(v).name) for k, v in sim.refs.items()}
                darks[subarray] = refs["dark"]
            elif subarray not in darks:
                darks[subarray] = str(refdir / Path(sim.refs["dark"]).name)
                shutil.move(sim.refs["dark"], darks[subarray])
            shutil.rmtree(sim_dir, ignore_errors=True)
            uncals.append(str(target))
            kinds.append(desc)
            exposure_darks.append(darks[subarray])
            index += 1
    info = {"wanted": wanted, "uncals": uncals, "kinds": kinds, "refdir": str(refdir),
            "refs": refs, "darks": exposure_darks}
    marker.write_text(json.dumps(info, indent=1))
    log(f"  batch: simulated 16 exposures in {time.perf_counter() - start:.0f} s")
    return info


def run_polled(cmd, logfile, also=(), env=None):
    """Run ``cmd``; (wall s, peak total RSS bytes, exit code).

    The peak is the largest sum of the resident sets of the command's process tree and of the
    trees of the ``also`` pids (a cluster it sends work to), sampled every 50 ms: a batch's
    memory is spread over several processes at once, which no single process's high-water mark
    gives. A peak shorter than the sampling interval can be missed."""
    import threading

    import psutil

    with open(logfile, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT,
                                env=env)
        peak = [0]
        stop = threading.Event()

        def sample():
            roots = [proc.pid, *also]
            while not stop.is_set():
                total = 0
                for pid in roots:
                    try:
                        root = psutil.Process(pid)
                        for p in [root, *root.children(recursive=True)]:
                            try:
                                total += p.memory_info().rss
                            except psutil.Error:
                                pass
                    except psutil.Error:
                        pass
                peak[0] = max(peak[0], total)
                stop.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        wall = time.perf_counter() - start
        stop.set()
        sampler.join()
    return wall, peak[0], code


def _same_fits(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        raw_a, raw_b = bytearray(fa.read()), bytearray(fb.read())
    for raw in (raw_a, raw_b):
        for start in range(0, len(raw), 80):
            if raw[start:start + 10] == b"DATE    = ":
                raw[start:start + 80] = b"DATE    = 'x'".ljust(80)
    return raw_a == raw_b


def _compare_products(outdir, singles):
    """Names of the products of ``outdir`` that differ from (or lack) the single runs' ones."""
    names = sorted(n for n in os.listdir(singles) if n.endswith(".fits"))
    mine = sorted(n for n in os.listdir(outdir) if n.endswith(".fits"))
    differ = sorted(set(names) ^ set(mine))
    differ += [n for n in names if n in mine and not _same_fits(Path(outdir) / n, Path(singles) / n)]
    return differ


def _manifest_records(outdir):
    with open(Path(outdir) / "ramp2slope_manifest.json") as handle:
        return json.load(handle)["exposures"]


def _scheduling_gaps(records):
    """Seconds between one exposure's end and the next one's start on the same worker process:
    the scheduler's and this package's overhead per exposure, without the pipeline's time."""
    by_worker = {}
    for record in records:
        if record.get("started") is not None:
            by_worker.setdefault(record.get("pid"), []).append(record)
    gaps = []
    for runs in by_worker.values():
        runs.sort(key=lambda r: r["started"])
        gaps += [b["started"] - a["finished"] for a, b in zip(runs, runs[1:])]
    return gaps


def _jwst_pool_main(spec_path):
    """The users' way: a multiprocessing pool of N processes, each calling jwst's pipeline on one
    exposure after another (jwst imported once per process)."""
    import multiprocessing

    spec = json.loads(Path(spec_path).read_text())
    runner.configure_offline_crds(spec["crds_path"])
    with multiprocessing.Pool(spec["processes"], initializer=_jwst_pool_init,
                              initargs=(spec,)) as pool:
        results = list(pool.imap_unordered(_jwst_pool_one, spec["uncals"]))
    failed = [r for r in results if r]
    for message in failed:
        print(message, flush=True)
    return 1 if failed else 0


_JWST_POOL = {}


def _jwst_pool_init(spec):
    import logging

    from jwst.pipeline import Detector1Pipeline

    logging.getLogger().setLevel(logging.WARNING)
    steps = runner.step_config(spec["refs"])
    for name in runner.MIRI_ONLY_STEPS:
        steps[name] = {"skip": True}
    _JWST_POOL.update(pipeline=Detector1Pipeline, steps=steps, outdir=spec["outdir"],
                      darks=spec["darks"])


def _jwst_pool_one(uncal):
    steps = dict(_JWST_POOL["steps"], dark_current={"override_dark": _JWST_POOL["darks"][uncal]})
    try:
        _JWST_POOL["pipeline"].call(uncal, steps=steps,
                                    output_dir=_JWST_POOL["outdir"], save_results=True)
        return None
    except Exception as exc:  # noqa: BLE001 -- reported, as a user's script would
        return f"{uncal}: {type(exc).__name__}: {exc}"


def _start_local_cluster(rundir, workers):
    """A LocalCluster of ``workers`` single-threaded processes in a process of its own; returns
    (process, scheduler address)."""
    address_file = rundir / "scheduler_address"
    address_file.unlink(missing_ok=True)
    code = ("import sys, time, distributed\n"
            "if __name__ == '__main__':\n"
            f"    c = distributed.LocalCluster(n_workers={workers}, threads_per_worker=1, "
            "dashboard_address=':0')\n"
            "    open(sys.argv[1], 'w').write(c.scheduler_address)\n"
            "    sys.stdin.read()\n"
            "    c.close()\n")
    script = rundir / "local_cluster.py"
    script.write_text(code)
    proc = subprocess.Popen([sys.executable, str(script), str(address_file)],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=open(rundir / "local_cluster.log", "w"))
    deadline = time.time() + 120
    while not address_file.exists() or not address_file.read_text():
        if time.time() > deadline or proc.poll() is not None:
            raise RuntimeError("the LocalCluster did not start; see local_cluster.log")
        time.sleep(0.2)
    return proc, address_file.read_text().strip()


def bench_batch(args, workroot, crds_path, have_jwst):
    info = prepare_batch(workroot)
    rundir = workroot / "batch_runs"
    shutil.rmtree(rundir, ignore_errors=True)
    rundir.mkdir()
    cores = available_cores()
    n = len(info["uncals"])
    steps = runner.step_config(info["refs"])
    del steps["dark_current"]          # each exposure's DARK comes from the folder
    refs_args = runner.cli_step_args(steps) + ["--refdir", info["refdir"]]
    r2s = [sys.executable, "-m", "ramp2slope.cli", "run"]
    res = {"n": n, "kinds": info["kinds"], "load_start": loadavg()[0], "runs": {}}

    log("  batch: single runs, one after another (the reference products)")
    singles = rundir / "singles"
    start = time.perf_counter()
    for uncal in info["uncals"]:
        _, _, code = run_polled(r2s + [uncal, "--output-dir", singles] + refs_args,
                                rundir / "singles.log")
        if code:
            raise RuntimeError(f"single run of {uncal} failed; see {rundir / 'singles.log'}")
    res["singles_s"] = time.perf_counter() - start

    def batch_run(tag, extra, also=()):
        outdir = rundir / f"out_{tag}"
        cmd = r2s + [Path(info["uncals"][0]).parent, "--output-dir", outdir] + extra + refs_args
        wall, peak, code = run_polled(cmd, rundir / f"{tag}.log", also=also)
        records = _manifest_records(outdir) if (outdir / "ramp2slope_manifest.json").exists() else []
        run = {"wall_s": wall, "rss": peak, "ok": code == 0, "load": loadavg()[0],
               "per_min": 60 * n / wall, "differ": _compare_products(outdir, singles),
               "records": [{k: r.get(k) for k in ("input", "seconds", "peak_memory",
                                                  "predicted_memory", "pid", "started",
                                                  "finished", "status")} for r in records]}
        res["runs"][tag] = run
        log(f"  batch {tag}: {wall:.1f} s, {run['per_min']:.1f} exposures/min, peak total "
            f"{peak / GB:.2f} GB, {'ok' if run['ok'] else 'FAILED'}, "
            f"{len(run['differ'])} product(s) differ from single runs")
        shutil.rmtree(outdir, ignore_errors=True)
        return run

    batch_run("local_w1_t1", ["--workers", "1", "--threads", "1"])
    batch_run("local_w1", ["--workers", "1"])
    batch_run("local_w2", ["--workers", str(min(2, cores))])
    cluster, address = _start_local_cluster(rundir, min(2, cores))
    try:
        batch_run("localcluster", ["--scheduler", address], also=(cluster.pid,))
    finally:
        cluster.stdin.close()
        cluster.wait(timeout=60)
    res["overhead_s"] = median(_scheduling_gaps(res["runs"]["localcluster"]["records"]))

    if have_jwst and not args.no_jwst:
        estimate = max(jwst_estimate_bytes({"shape": [1, 10, 2048, 2048], "refs": info["refs"]}),
                       jwst_estimate_bytes({"shape": [5, 10, 256, 2048], "refs": info["refs"]}))
        processes = 2 if 2 * estimate < 0.85 * (mem_available() or float("inf")) else 1
        spec = rundir / "jwst_pool.json"
        outdir = rundir / "out_jwst"
        spec.write_text(json.dumps({"uncals": info["uncals"], "refs": info["refs"],
                                    "darks": dict(zip(info["uncals"], info["darks"])),
                                    "outdir": str(outdir), "processes": processes,
                                    "crds_path": str(crds_path)}))
        outdir.mkdir()
        log(f"  batch: jwst in a multiprocessing pool of {processes} process(es) ...")
        wall, peak, code = run_polled([sys.executable, str(Path(__file__).resolve()),
                                       "--jwst-pool", spec], rundir / "jwst_pool.log")
        res["runs"]["jwst"] = {"wall_s": wall, "rss": peak, "ok": code == 0, "per_min": 60 * n / wall,
                               "processes": processes, "load": loadavg()[0]}
        log(f"  batch jwst: {wall:.1f} s, {60 * n / wall:.1f} exposures/min, peak total "
            f"{peak / GB:.2f} GB, {'ok' if code == 0 else 'FAILED'}")
        shutil.rmtree(outdir, ignore_errors=True)
    res["load_end"] = loadavg()[0]
    return res


def batch_report(res):
    lines, verdicts = [], []

    def verdict(name, ok, text):
        state = "n/a " if ok is None else ("PASS" if ok else "MISS")
        verdicts.append({"target": name, "state": state.strip(), "value": text})
        lines.append(f"  {state} {name}: {text}")

    runs = res["runs"]
    kinds = {}
    for kind in res["kinds"]:
        kinds[kind] = kinds.get(kind, 0) + 1
    lines.append(f"Batch: {res['n']} exposures ({', '.join(f'{c} x {k}' for k, c in kinds.items())}); "
                 f"load avg {res['load_start']:.2f} at start, {res['load_end']:.2f} at end")
    lines.append(f"  single runs one after another: {res['singles_s']:.1f} s "
                 f"({60 * res['n'] / res['singles_s']:.1f} exposures/min)")
    lines.append(f"  {'run':<34} {'wall s':>7} {'exp/min':>8} {'peak GB':>8}  products")
    labels = {"local_w1_t1": "ramp2slope local, 1 worker x 1 thr",
              "local_w1": "ramp2slope local, 1 worker x 2 thr",
              "local_w2": "ramp2slope local, 2 workers x 1 thr",
              "localcluster": "ramp2slope on a LocalCluster (2x1)",
              "jwst": "jwst, multiprocessing pool"}
    for tag, label in labels.items():
        run = runs.get(tag)
        if not run:
            continue
        if tag == "jwst":
            label += f" of {run['processes']}"
            products = "" if run["ok"] else "FAILED"
        else:
            products = ("identical to single runs" if run["ok"] and not run["differ"]
                        else f"DIFFER: {', '.join(run['differ'][:4])}" if run["differ"] else "FAILED")
        lines.append(f"  {label:<34} {run['wall_s']:>7.1f} {run['per_min']:>8.1f} "
                     f"{run['rss'] / GB:>8.2f}  {products}")
    lines.append("")
    lines.append("  predicted against measured peak per exposure (1 worker x 1 thread), GB:")
    by_kind = {}
    for kind, record in zip(res["kinds"], runs["local_w1_t1"]["records"]):
        if record.get("peak_memory"):
            by_kind.setdefault(kind, []).append((record["predicted_memory"], record["peak_memory"]))
    for kind, pairs in by_kind.items():
        lines.append(f"    {kind:<20} predicted {pairs[0][0] / GB:.2f}, measured "
                     f"{min(p for _, p in pairs) / GB:.2f}-{max(p for _, p in pairs) / GB:.2f}")
    lines.append("")
    lines.append("Targets")
    ours = [t for t in ("local_w1_t1", "local_w1", "local_w2", "localcluster") if t in runs]
    same = all(runs[t]["ok"] and not runs[t]["differ"] for t in ours)
    verdict("products identical to single runs", same,
            "all runs" if same else ", ".join(t for t in ours if runs[t]["differ"] or not runs[t]["ok"]))
    w2, jw = runs.get("local_w2"), runs.get("jwst")
    if jw and jw["ok"]:
        ratio_t = w2["per_min"] / jw["per_min"]
        verdict(f"throughput >= {BATCH_THROUGHPUT_VS_JWST:g}x jwst's", ratio_t >= BATCH_THROUGHPUT_VS_JWST,
                f"{ratio_t:.1f}x ({w2['per_min']:.1f} / {jw['per_min']:.1f} exposures/min)")
        ratio_m = w2["rss"] / jw["rss"]
        verdict(f"peak total memory <= {BATCH_RSS_VS_JWST:g} of jwst's", ratio_m <= BATCH_RSS_VS_JWST,
                f"{ratio_m:.3f} ({w2['rss'] / GB:.2f} GB / {jw['rss'] / GB:.2f} GB)")
    else:
        verdict("throughput >= 10x jwst's", None, "jwst not run")
    one = runs["local_w1_t1"]
    speedup = w2["per_min"] / one["per_min"]
    verdict(f"2 workers >= {BATCH_WORKER_SPEEDUP:g}x 1 worker (1 thread each)",
            speedup >= BATCH_WORKER_SPEEDUP, f"{speedup:.3f}x")
    overhead = res.get("overhead_s")
    verdict(f"scheduling overhead per exposure < {BATCH_OVERHEAD_S:g} s on a LocalCluster",
            overhead is not None and overhead < BATCH_OVERHEAD_S,
            "-" if overhead is None else f"{overhead:.3f} s (median gap between one exposure's "
                                         f"end and the next one's start on a worker)")
    return "\n".join(lines), verdicts


# ----------------------------------------------------------------------------------------------
# Case "likely": the ramp_fit step with algorithm='LIKELY' against stcal's (docs/likely.md)
# ----------------------------------------------------------------------------------------------
#: The ramp: case "a"'s exposure (full frame, 1 x 10), calibrated by ramp2slope up to the fit.
LIKELY_CASE = "a"
LIKELY_VS_STCAL = 5.0
LIKELY_THREADS = (1, 2)


def bench_likely(args, workroot, crds_path, have_jwst):
    """Time RampFitStep(algorithm='LIKELY') of ramp2slope (1 and 2 threads) and of jwst."""
    import numpy as np

    case = prepare_case(LIKELY_CASE, workroot, False)
    rundir = workroot / "likely_runs"
    shutil.rmtree(rundir, ignore_errors=True)
    rundir.mkdir()
    ramp_dir = rundir / "ramp"
    log("  likely: calibrating the ramp (ramp2slope, up to the jump step) ...")
    cmd = r2s_command(case, ramp_dir, None, False) + ["--save-calibrated-ramp"]
    _, _, code = measure(cmd, rundir / "ramp.log")
    ramps = sorted(ramp_dir.glob("*_ramp.fits"))
    if code or not ramps:
        raise RuntimeError(f"the calibrated ramp was not made; see {rundir / 'ramp.log'}")
    res = {"description": CASES[LIKELY_CASE][0], "shape": case["shape"],
           "load_start": loadavg()[0], "runs": {}}
    runs = [(f"ramp2slope_t{t}", "ramp2slope", t) for t in LIKELY_THREADS
            if t <= available_cores()]
    if have_jwst and not args.no_jwst:
        runs.append(("jwst", "jwst", None))
    rates = {}
    for tag, impl, threads in runs:
        timing, rate_out = rundir / f"{tag}.json", rundir / f"{tag}_rate.npy"
        cmd = [sys.executable, str(HERE / "runner.py"), "ramp-fit", "--impl", impl,
               "--ramp", ramps[0], "--refs", case["refs_json"], "--timing", timing,
               "--rate-out", rate_out, "--reps", str(args.reps)]
        if threads:
            cmd += ["--threads", str(threads)]
        if impl == "jwst":
            cmd += ["--crds-path", crds_path]
        log(f"  likely: {tag} ({args.reps} timed call(s)) ...")
        wall, rss, code = measure(cmd, rundir / f"{tag}.log")
        run = {"ok": code == 0 and timing.exists(), "rss": rss, "load": loadavg()[0]}
        if run["ok"]:
            run.update(json.loads(timing.read_text()))
            run["step_s"] = median(run["times_s"])
            rates[tag] = np.load(rate_out)
            rate_out.unlink()
            log(f"  likely {tag}: step {run['step_s']:.2f} s (median), peak RSS "
                f"{rss / GB:.2f} GB")
        else:
            run["error"] = tail(rundir / f"{tag}.log")
            log(f"  likely {tag}: FAILED\n{run['error']}")
        res["runs"][tag] = run
    if "jwst" in rates:
        ref = rates["jwst"]
        for tag, rate in rates.items():
            if tag == "jwst":
                continue
            same_nan = bool(np.array_equal(np.isnan(rate), np.isnan(ref)))
            both = np.isfinite(rate) & np.isfinite(ref)
            rel = np.abs(rate[both] - ref[both]) / np.maximum(np.abs(ref[both]), 1e-30)
            res["runs"][tag]["vs_jwst"] = {"same_nan": same_nan,
                                           "max_rel": float(rel.max()) if rel.size else 0.0}
    shutil.rmtree(ramp_dir, ignore_errors=True)
    res["load_end"] = loadavg()[0]
    return res


def likely_report(res):
    lines, verdicts = [], []

    def verdict(name, ok, text):
        state = "n/a " if ok is None else ("PASS" if ok else "MISS")
        verdicts.append({"target": name, "state": state.strip(), "value": text})
        lines.append(f"  {state} {name}: {text}")

    runs = res["runs"]
    lines.append(f"LIKELY ramp fitting: {res['description']} {tuple(res['shape'])}; load avg "
                 f"{res['load_start']:.2f} at start, {res['load_end']:.2f} at end")
    lines.append(f"  {'run':<28} {'step s':>8} {'peak GB':>8}  rate vs jwst")
    jw = runs.get("jwst")
    for tag, run in runs.items():
        label = "jwst (stcal LIKELY)" if tag == "jwst" else \
            f"ramp2slope, {run.get('threads')} thread(s)"
        if not run["ok"]:
            lines.append(f"  {label:<28} FAILED")
            continue
        cmp = run.get("vs_jwst")
        text = "" if cmp is None else (f"max rel diff {cmp['max_rel']:.1e}, NaNs "
                                       f"{'identical' if cmp['same_nan'] else 'DIFFER'}")
        lines.append(f"  {label:<28} {run['step_s']:>8.2f} {run['rss'] / GB:>8.2f}  {text}")
    lines.append("")
    lines.append("Targets")
    for tag, run in runs.items():
        if tag == "jwst":
            continue
        name = f"LIKELY ramp_fit >= {LIKELY_VS_STCAL:g}x stcal's, {run.get('threads')} thread(s)"
        if not (jw and jw["ok"]):
            verdict(name, None, "jwst not run")
        elif not run["ok"]:
            verdict(name, False, "ramp2slope failed")
        else:
            r = jw["step_s"] / run["step_s"]
            verdict(name, r >= LIKELY_VS_STCAL,
                    f"{r:.1f}x ({jw['step_s']:.2f} s / {run['step_s']:.2f} s)")
    return "\n".join(lines), verdicts


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Benchmark ramp2slope against jwst's Detector1Pipeline (see docs/benchmarks.md).")
    p.add_argument("--quick", action="store_true",
                   help=f"reduced set: cases {','.join(QUICK_CASES)}, 1 repetition (about 2 minutes)")
    p.add_argument("--cases", help=f"comma-separated cases from {', '.join(CASES)}, batch "
                                   f"(sixteen exposures as one job), likely (the ramp_fit step "
                                   f"with LIKELY against stcal's) "
                                   f"('c' = c50,c200; default {','.join(DEFAULT_CASES)})")
    p.add_argument("--reps", type=int, help="repetitions per case (default 3; 1 with --quick)")
    p.add_argument("--no-jwst", action="store_true", help="do not run the official pipeline")
    p.add_argument("--workdir", help="keep simulated inputs here between runs (default: a temporary "
                                     "folder, deleted at the end)")
    p.add_argument("--json", help="save every measurement to this JSON file")
    p.add_argument("--ipc", action="store_true",
                   help="run the IPC step on both (with a 3x3 kernel written by the benchmark)")
    p.add_argument("--threads", type=int, help="ramp2slope threads for the main runs (default: all cores)")
    p.add_argument("--jwst-cores", help="jwst maximum_cores for jump and ramp_fit (default: code "
                                        "default, one core)")
    p.add_argument("--jwst-max-gb", type=float,
                   help="skip jwst on cases whose estimated peak memory exceeds this "
                        "(default: 85%% of the memory available now)")
    p.add_argument("--no-scaling", dest="scaling", action="store_false",
                   help="skip the --threads 1 runs")
    p.add_argument("--no-cold", dest="cold", action="store_false",
                   help="skip the empty-JIT-cache run")
    p.add_argument("--memory-profile", action="store_true",
                   help="one more ramp2slope run per case, printing the RSS at the end of each step")
    p.add_argument("--keep-logs", action="store_true",
                   help="keep each case's run folder (logs; products are deleted)")
    p.add_argument("--jwst-pool", help=argparse.SUPPRESS)   # the batch case's jwst pool process
    args = p.parse_args(argv)
    args.batch = args.likely = False
    if args.cases:
        keys = []
        for item in args.cases.split(","):
            item = item.strip()
            if item in ("batch", "likely"):
                setattr(args, item, True)
                continue
            for key in CASE_ALIASES.get(item, [item]):
                if key not in CASES:
                    p.error(f"unknown case {key!r}; choose from {', '.join(CASES)}")
                keys.append(key)
        args.case_keys = keys
    else:
        args.case_keys = QUICK_CASES if args.quick else DEFAULT_CASES
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    return args


def main(argv=None):
    global SPAWNER
    args = parse_args(argv)
    if args.jwst_pool:
        return _jwst_pool_main(args.jwst_pool)
    SPAWNER = Spawner()          # first, while this process is still small
    try:
        import ramp2slope
        r2s_version = ramp2slope.__version__
    except Exception:
        r2s_version = "?"
    have_jwst = False
    jwst_version = "not installed"
    if not args.no_jwst:
        try:
            from importlib.metadata import version

            jwst_version = version("jwst")
            have_jwst = True
        except Exception:
            pass
    if args.no_jwst:
        jwst_version = "(not run)"

    tmp = None
    if args.workdir:
        workroot = Path(args.workdir).expanduser().resolve()
        workroot.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="r2s_bench_")
        workroot = Path(tmp)
    crds_path = workroot / "crds_stub"
    meta = {
        "ramp2slope": r2s_version, "jwst": jwst_version, "cpus": available_cores(),
        "threads": args.threads or available_cores(), "python": platform.python_version(),
        "machine": platform.machine(), "load_start": loadavg(), "cases": args.case_keys,
        "reps": args.reps, "ipc": args.ipc,
    }
    log(f"Benchmark: cases {', '.join(args.case_keys)}; {args.reps} repetition(s); "
        f"jwst {jwst_version}; load avg {meta['load_start'][0]:.2f}")
    log(f"Working folder: {workroot}")
    compile_bytecode()
    results = []
    r2s_env = None
    try:
        for index, key in enumerate(args.case_keys):
            log(f"Case {key}: {CASES[key][0]}")
            case = prepare_case(key, workroot, args.ipc)
            jwst_ok, skipped = True, None
            if have_jwst:
                estimate = jwst_estimate_bytes(case)
                limit = (args.jwst_max_gb * GB if args.jwst_max_gb
                         else 0.85 * (mem_available() or float("inf")))
                if estimate > limit:
                    jwst_ok = False
                    skipped = (f"estimated peak {estimate / GB:.0f} GB > {limit / GB:.0f} GB "
                               "available (--jwst-max-gb)")
                    log(f"  jwst skipped: {skipped}")
            if index == 0:
                cold, r2s_env = first_r2s_run(key, case, args, workroot,
                                              args.threads or available_cores())
            res = bench_case(key, case, args, workroot, crds_path, have_jwst, jwst_ok, r2s_env)
            res["cold"] = cold if index == 0 else None
            res["jwst_skipped"] = skipped
            results.append(res)
        if args.batch:
            log("Case batch: sixteen exposures as one job")
            batch = bench_batch(args, workroot, crds_path, have_jwst)
        if args.likely:
            log("Case likely: the ramp_fit step with algorithm='LIKELY', against stcal's")
            likely = bench_likely(args, workroot, crds_path, have_jwst)
        meta["load_end"] = loadavg()
        text, verdicts = report(results, args, meta) if results else ("", [])
        log(text)
        if args.batch:
            batch_text, batch_verdicts = batch_report(batch)
            log(batch_text)
            verdicts = list(verdicts) + batch_verdicts
            results.append({"case": "batch", **batch})
        if args.likely:
            likely_text, likely_verdicts = likely_report(likely)
            log(likely_text)
            verdicts = list(verdicts) + likely_verdicts
            results.append({"case": "likely", **likely})
        if args.json:
            Path(args.json).write_text(json.dumps(
                {"meta": meta, "results": results, "targets": verdicts}, indent=1, default=str))
            log(f"\nSaved {args.json}")
    finally:
        SPAWNER.close()
        for cache in workroot.glob("numba_cache_*"):
            shutil.rmtree(cache, ignore_errors=True)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
