#!/usr/bin/env python
"""clean_flicker_noise alone: ramp2slope's step against jwst 3.0.0's on the same ramp.

Simulates an exposure (default: NIRCam full frame, 3 integrations x 5 groups, with the
simulator's 1/f noise), takes it through jump with ramp2slope's pipeline (bit-identical to
jwst's up to there) and saves the ramp; then runs each step, median fit with default options,
on that ramp file in a fresh process per repetition, and prints the time of the step call,
the process's wall time and peak RSS, and the largest difference between the two outputs.

    python benchmarks/flicker.py                       # full frame 3 x 5, 3 repetitions
    python benchmarks/flicker.py --nints 1 --ngroups 10 --reps 1 --option fit_by_channel=true

jwst's draft-rate ramp fit is given the simulated GAIN and READNOISE, as ramp2slope's is.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _parse_option(text):
    key, _, value = text.partition("=")
    lowered = value.lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    if lowered == "none":
        return key, None
    try:
        return key, float(value) if "." in value else int(value)
    except ValueError:
        return key, value


def prepare(workdir, ngroups, nints, subarray):
    from ramp2slope.pipeline import Detector1Pipeline
    from ramp2slope.simulate import simulate_exposure

    sys.path.insert(0, str(HERE))
    import runner

    sim = simulate_exposure(workdir / "sim", subarray=subarray, ngroups=ngroups, nints=nints,
                            seed=11)
    refs = {k: str(v) for k, v in sim.refs.items()}
    pipe = Detector1Pipeline(steps=runner.step_config(refs), output_dir=str(workdir),
                             save_calibrated_ramp=True)
    pipe.run(str(sim.uncal))
    ramp = workdir / f"{sim.root}_ramp.fits"
    (workdir / "refs.json").write_text(json.dumps(refs))
    return ramp


def child(which, ramp, refs_path, output, options):
    """One contender in this process: open the ramp, run the step, save its data."""
    import numpy as np

    refs = json.loads(Path(refs_path).read_text())
    if which == "jwst":
        sys.path.insert(0, str(HERE))
        import runner
        runner.configure_offline_crds(tempfile.mkdtemp(prefix="crds_stub_"))
        import jwst.clean_flicker_noise.clean_flicker_noise as official
        from jwst.clean_flicker_noise import CleanFlickerNoiseStep
        from jwst.ramp_fitting import RampFitStep
        from stdatamodels.jwst import datamodels

        official.RampFitStep = lambda: RampFitStep(override_gain=refs["gain"],
                                                   override_readnoise=refs["readnoise"])
        model = datamodels.RampModel(str(ramp))
        step = CleanFlickerNoiseStep(skip=False, **options)
    else:
        from ramp2slope import datamodels
        from ramp2slope.clean_flicker_noise import CleanFlickerNoiseStep

        model = datamodels.open(str(ramp))
        step = CleanFlickerNoiseStep(skip=False, refdir=os.path.dirname(refs["gain"]), **options)
    start = time.perf_counter()
    result = step.run(model)
    seconds = time.perf_counter() - start
    np.save(output, np.asarray(result.data, dtype=np.float32))
    return seconds


def measure(which, ramp, refs, output, options):
    cmd = [sys.executable, __file__, "--child", which, "--ramp", str(ramp), "--refs", str(refs),
           "--output", str(output), "--options", json.dumps(options)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read()
    proc.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{which}: the step failed (exit {os.waitstatus_to_exitcode(status)})")
    return dict(step=float(out.strip().splitlines()[-1]), wall=wall, rss=usage.ru_maxrss * 1024)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ngroups", type=int, default=5)
    parser.add_argument("--nints", type=int, default=3)
    parser.add_argument("--subarray", default="FULL")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="a step option for both contenders (repeatable)")
    parser.add_argument("--no-jwst", action="store_true", help="time ramp2slope only")
    parser.add_argument("--child", choices=("ours", "jwst"), help=argparse.SUPPRESS)
    parser.add_argument("--ramp", help=argparse.SUPPRESS)
    parser.add_argument("--refs", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(child(args.child, args.ramp, args.refs, args.output, json.loads(args.options)))
        return

    import numpy as np

    options = dict(_parse_option(text) for text in args.option)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        workdir = Path(tmp)
        print(f"simulating {args.subarray} {args.nints} x {args.ngroups} and running it through "
              f"jump ...", flush=True)
        ramp = prepare(workdir, args.ngroups, args.nints, args.subarray)
        contenders = ["ours"] + ([] if args.no_jwst else ["jwst"])
        # one untimed run first, so numba's cache is warm for the measured ones
        measure("ours", ramp, workdir / "refs.json", workdir / "warm.npy", options)
        runs = {name: [] for name in contenders}
        for _ in range(args.reps):
            for name in contenders:
                runs[name].append(measure(name, ramp, workdir / "refs.json",
                                          workdir / f"{name}.npy", options))
        print(f"clean_flicker_noise {options or 'defaults'}, medians of {args.reps}:")
        for name in contenders:
            step = statistics.median(r["step"] for r in runs[name])
            wall = statistics.median(r["wall"] for r in runs[name])
            rss = statistics.median(r["rss"] for r in runs[name])
            print(f"  {name:5s} step {step:6.2f} s  process {wall:6.2f} s  peak RSS "
                  f"{rss / 1e9:5.2f} GB")
        if "jwst" in runs:
            ours, theirs = np.load(workdir / "ours.npy"), np.load(workdir / "jwst.npy")
            same_nan = np.array_equal(np.isnan(ours), np.isnan(theirs))
            diff = np.nanmax(np.abs(ours - theirs))
            print(f"  max |ours - jwst| = {diff:.3g} DN (NaNs {'same' if same_nan else 'DIFFER'})")
            for key in ("step", "wall", "rss"):
                ratio = statistics.median(r[key] for r in runs["jwst"]) / \
                    statistics.median(r[key] for r in runs["ours"])
                print(f"  jwst / ours {key}: {ratio:.2f}")


if __name__ == "__main__":
    main()
