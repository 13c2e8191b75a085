"""First run after installation against a warm run, and the longest silence in the log.

    python benchmarks/first_run.py [--workdir DIR] [--size ROWSxCOLS] [--keep]

Builds the project's wheel (``pip wheel``: the build compiles the kernels, see setup.py),
timing the build; installs it into a folder of its own, once per measured first run (so each
is a real first run); and runs ``ramp2slope demo`` there with the command line a new user
types. Three runs per size: the first run after installation, a second (warm) run, and a run
with the shipped kernels set aside (``NUMBA_CACHE_DIR`` pointing to an empty folder), which is
what a machine gets whose CPU differs from the build machine's. For each, the wall time and the
longest stretch without a line of output. Targets (issue "first run"): first run at most 10 s
slower than warm; never silent for more than 5 s.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def log(msg=""):
    print(msg, flush=True)


def timed_output(cmd, env, cwd):
    """Run ``cmd``; returns (wall seconds, longest gap between output lines, exit code, text)."""
    start = last = time.perf_counter()
    longest = 0.0
    lines = []
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    for line in proc.stdout:
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
        lines.append(line)
    code = proc.wait()
    end = time.perf_counter()
    return end - start, max(longest, end - last), code, "".join(lines)


def install(wheel, target):
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", help="scratch folder (default: a temporary one)")
    parser.add_argument("--size", action="append",
                        help="demo size ROWSxCOLS or 'full' (repeatable; default: full and 160x160)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    sizes = args.size or ["full", "160x160"]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="r2s-first-run-"))
    work.mkdir(parents=True, exist_ok=True)
    log(f"load average at start: {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores")

    wheels = work / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                    str(REPO)], check=True)
    build_s = time.perf_counter() - t0
    wheel = next(wheels.glob("ramp2slope-*.whl"))
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        kernels = sum(1 for n in zf.namelist() if n.endswith(".nbi"))
    log(f"wheel built in {build_s:.0f} s (kernels compiled into it: {kernels} index files)")

    verdicts = []
    rows = []
    for size in sizes:
        base = ["demo", "--no-report", "--ngroups", "10"] + ([] if size == "full" else ["--size", size])
        results = {}
        for kind in ("first", "warm", "no shipped kernels"):
            if kind != "warm":
                install(wheel, work / "site")
            env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
            env["PYTHONPATH"] = str(work / "site")
            if kind == "no shipped kernels":
                empty = work / "empty_cache"
                shutil.rmtree(empty, ignore_errors=True)
                empty.mkdir()
                env["NUMBA_CACHE_DIR"] = str(empty)
            outdir = work / f"demo_{size}_{kind.replace(' ', '_')}"
            shutil.rmtree(outdir, ignore_errors=True)
            wall, silent, code, text = timed_output(
                [sys.executable, "-m", "ramp2slope.cli", *base, "--outdir", str(outdir)], env, work)
            if code:
                log(text[-3000:])
                raise SystemExit(f"{size} {kind}: exit {code}")
            results[kind] = (wall, silent)
            shutil.rmtree(outdir, ignore_errors=True)
            log(f"  {size:>8} {kind:<20} {wall:6.1f} s   longest silence {silent:4.1f} s   "
                f"(load {os.getloadavg()[0]:.1f})")
        extra = results["first"][0] - results["warm"][0]
        rows.append((size, results, extra))
        verdicts.append((f"{size}: first run at most 10 s slower than warm ({extra:+.1f} s)", extra <= 10))
        for kind, (_, silent) in results.items():
            verdicts.append((f"{size} {kind}: never silent more than 5 s ({silent:.1f} s)", silent <= 5))

    log()
    log("| demo size | first run after install | warm | first - warm | without shipped kernels |")
    log("|---|---|---|---|---|")
    for size, results, extra in rows:
        log(f"| {size} | {results['first'][0]:.1f} s | {results['warm'][0]:.1f} s | {extra:+.1f} s | "
            f"{results['no shipped kernels'][0]:.1f} s |")
    log(f"build (pip wheel, kernels included): {build_s:.0f} s")
    for text, ok in verdicts:
        log(f"{'PASS' if ok else 'MISS'}  {text}")
    if not args.keep and not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
