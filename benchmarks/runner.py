"""Child processes started by ``bench.py``: the official pipeline and the I/O floor.

Each sub-command is one whole process, timed and measured (peak RSS) from the outside by
``bench.py``. ramp2slope itself is run through its own command line, not through this file.

    python runner.py jwst  --uncal U --refs refs.json --output-dir OUT --timing T.json [--ipc]
                           [--cores N]
    python runner.py floor --uncal U --refs refs.json --output-dir OUT --timing T.json
                           --products spec.json
    python runner.py r2s-mem --timing T.json -- run UNCAL --output-dir OUT ...
    python runner.py ramp-fit --impl {ramp2slope,jwst} --ramp RAMP --refs refs.json
                              --timing T.json --rate-out RATE.npy [--threads N] [--reps K]
                              [--crds-path P]

``spawner`` (used by ``bench.py``) starts the measured processes: it reads one JSON request per
line on stdin ({"cmd", "env", "logfile"}), runs the command, waits for it with ``wait4`` and
answers {"wall", "maxrss", "code"}. A process's ``ru_maxrss`` starts from the resident-set
high-water mark of the process that forked it (Linux copies it across fork and exec), so
measured processes must be started by a small process: this one, started before ``bench.py``
does anything big, stays at a few tens of MB.

``r2s-mem`` runs ramp2slope's command line in this process and records the resident set after
every step (the memory profile printed by ``bench.py --memory-profile``).

``ramp-fit`` times one implementation's RampFitStep with ``algorithm='LIKELY'`` on a calibrated
ramp, inside this process (the step's own time: reading the ramp, fitting, no product
written), ``--reps`` times; ramp2slope first runs it once untimed, so that the numba kernels
are loaded from their cache (or compiled) before the timed calls. The last rate is saved for
comparison.

``refs.json`` maps reference types to paths ({"mask": ..., "dark": ..., "ipc": ...}).
``spec.json`` lists the products to write: [{"name": file name, "hdus": [{"name": ..., "shape":
[...], "dtype": "float32"}, ...]}, ...]. ``--timing`` receives a small JSON report.
"""
import argparse
import json
import os
import sys
import time

_T0 = time.perf_counter()

# Steps that only MIRI runs; left on, jwst would try to look their reference types up in CRDS.
MIRI_ONLY_STEPS = ("emicorr", "rscd", "firstframe", "lastframe", "reset")

_SERVER_CONFIG = (
    "{'observatory': 'jwst', 'operational_context': 'jwst_0000.pmap', "
    "'latest_context': 'jwst_0000.pmap', 'edit_context': 'jwst_0000.pmap', "
    "'last_synced': 'never', 'bad_files_list': [], 'bad_files': '', 'mappings': [], "
    "'force_remote_mode': False, 'crds_version': {'str': 'offline'}}"
)


def configure_offline_crds(root):
    """A stub CRDS cache in ``root`` and the environment that keeps CRDS off the network.

    Must run before ``jwst`` (or ``crds``) is imported.
    """
    config_dir = os.path.join(root, "config", "jwst")
    os.makedirs(config_dir, exist_ok=True)
    path = os.path.join(config_dir, "server_config")
    if not os.path.exists(path):
        with open(path, "w") as handle:
            handle.write(_SERVER_CONFIG)
    os.environ.update(
        CRDS_PATH=root,
        CRDS_SERVER_URL="https://jwst-serverless-mode.stsci.edu",
        CRDS_OBSERVATORY="jwst",
        CRDS_CONTEXT="jwst_0000.pmap",
        CRDS_READONLY_CACHE="1",
        STPIPE_DISABLE_CRDS_STEPPARS="True",
    )


def step_config(refs, ipc=False, cores=None):
    """Step parameters shared by both pipelines: every reference given explicitly.

    Code defaults otherwise, except IPC, which is skipped unless ``ipc`` (jwst runs it by
    default, ramp2slope does not). ``cores`` sets jwst's ``maximum_cores`` for jump and ramp_fit
    (code default: one core).
    """
    if "rscd" in refs:   # a MIRI exposure
        return _miri_step_config(refs, cores)
    steps = {
        "dq_init": {"override_mask": refs["mask"]},
        "saturation": {"override_saturation": refs["saturation"],
                       "override_superbias": refs["superbias"]},
        "ipc": ({"skip": False, "override_ipc": refs["ipc"]} if ipc else {"skip": True}),
        "superbias": {"override_superbias": refs["superbias"]},
        "refpix": {"override_refpix": refs.get("refpix", "N/A"), "override_sirskernel": "N/A"},
        "linearity": {"override_linearity": refs["linearity"]},
        "dark_current": {"override_dark": refs["dark"]},
        "jump": {"override_gain": refs["gain"], "override_readnoise": refs["readnoise"]},
        "ramp_fit": {"override_gain": refs["gain"], "override_readnoise": refs["readnoise"]},
        "gain_scale": {"override_gain": refs["gain"]},
    }
    if cores:
        steps["jump"]["maximum_cores"] = str(cores)
        steps["ramp_fit"]["maximum_cores"] = str(cores)
    return steps


def _miri_step_config(refs, cores=None):
    """Every reference of a MIRI exposure given explicitly; the code defaults otherwise (emicorr
    and firstframe off, as in jwst)."""
    steps = {
        "dq_init": {"override_mask": refs["mask"]},
        "saturation": {"override_saturation": refs["saturation"], "override_superbias": "N/A"},
        "ipc": {"skip": True},
        "superbias": {"override_superbias": "N/A"},
        "refpix": {"override_refpix": "N/A", "override_sirskernel": "N/A"},
        "rscd": {"override_rscd": refs["rscd"]},
        "reset": {"override_reset": refs["reset"]},
        "linearity": {"override_linearity": refs["linearity"]},
        "dark_current": {"override_dark": refs["dark"]},
        "jump": {"override_gain": refs["gain"], "override_readnoise": refs["readnoise"]},
        "ramp_fit": {"override_gain": refs["gain"], "override_readnoise": refs["readnoise"]},
        "gain_scale": {"override_gain": refs["gain"]},
    }
    if cores:
        steps["jump"]["maximum_cores"] = str(cores)
        steps["ramp_fit"]["maximum_cores"] = str(cores)
    return steps


def cli_step_args(steps):
    """The same configuration as ``--steps.<step>.<param>=VALUE`` arguments (ramp2slope CLI)."""
    args = []
    for step, params in steps.items():
        for key, value in params.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            args.append(f"--steps.{step}.{key}={value}")
    return args


class _StepClock:
    """A logging handler that times jwst's steps from "Step X running" / "Step X done"."""

    def __init__(self):
        import logging
        import re

        self.running = re.compile(r"^Step (\w+) running")
        self.done = re.compile(r"^Step (\w+) done")
        self.started = {}
        self.steps = []          # [(name, seconds)] in order of completion
        clock = self

        class Handler(logging.Handler):
            def emit(self, record):
                try:
                    message = record.getMessage()
                except Exception:
                    return
                now = time.perf_counter()
                match = clock.running.match(message)
                if match:
                    clock.started[match.group(1)] = now
                    return
                match = clock.done.match(message)
                if match and match.group(1) in clock.started:
                    name = match.group(1)
                    clock.steps.append((name, now - clock.started.pop(name)))

        self.handler = Handler(level=logging.INFO)


def run_jwst(args):
    import logging

    configure_offline_crds(args.crds_path)
    refs = _load_refs(args.refs)
    t_import = time.perf_counter()
    from jwst.pipeline import Detector1Pipeline
    t_imported = time.perf_counter()

    clock = _StepClock()
    root = logging.getLogger()
    root.addHandler(clock.handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)

    steps = step_config(refs, ipc=args.ipc, cores=args.cores)
    if "rscd" not in refs:   # a near-infrared exposure: no lookup of MIRI reference types
        for name in MIRI_ONLY_STEPS:
            steps[name] = {"skip": True}
    os.makedirs(args.output_dir, exist_ok=True)
    t_run = time.perf_counter()
    Detector1Pipeline.call(args.uncal, steps=steps, output_dir=args.output_dir, save_results=True)
    t_end = time.perf_counter()
    report = {
        "import_s": t_imported - t_import,
        "pipeline_s": t_end - t_run,
        "process_s": t_end - _T0,
        "steps": _sum_steps(s for s in clock.steps if s[0] != "Detector1Pipeline"),
    }
    _write_json(args.timing, report)


def _sum_steps(pairs):
    """{step: seconds}, summing repeated runs of a step (gain_scale runs twice)."""
    out = {}
    for name, seconds in pairs:
        out[name] = out.get(name, 0.0) + seconds
    return out


def run_floor(args):
    """Import the runtime libraries, read every input, write same-sized products. No processing."""
    t_import = time.perf_counter()
    import astropy.io.fits as fits
    import numba  # noqa: F401  (ramp2slope's runtime libraries)
    import numpy as np
    import scipy  # noqa: F401
    import scipy.ndimage  # noqa: F401
    t_imported = time.perf_counter()
    # The floor allocates as ramp2slope does (no huge-page advice, freed arrays kept for reuse;
    # see ramp2slope.runtime.hugepages and .malloc), so that the comparison is about processing,
    # not about the kernel's page compaction and page faults.
    from ramp2slope.runtime.hugepages import no_hugepage_advice
    from ramp2slope.runtime.malloc import retained_heap

    advice, heap = no_hugepage_advice(), retained_heap()
    advice.__enter__()
    heap.__enter__()

    refs = _load_refs(args.refs)
    # the references the pipeline runs read (not e.g. MIRI's EMICORR when emicorr is off)
    used = {value for params in step_config(refs, ipc="ipc" in refs).values()
            for key, value in params.items()
            if key.startswith("override_")}
    paths = [args.uncal] + sorted(used - {"N/A"})
    nbytes = 0
    for path in paths:
        with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
            for hdu in hdul:
                data = hdu.data            # reads (and byte-swaps / unscales) the array
                if data is not None:
                    nbytes += data.nbytes
                    del data
    t_read = time.perf_counter()

    with open(args.products) as handle:
        spec = json.load(handle)
    os.makedirs(args.output_dir, exist_ok=True)
    written = 0
    for product in spec:
        hdus = [fits.PrimaryHDU()]
        for item in product["hdus"]:
            array = np.zeros(item["shape"], dtype=item["dtype"]) if item["shape"] else None
            if item.get("kind") == "table" or array is None:
                continue
            hdus.append(fits.ImageHDU(array, name=item["name"]))
            written += array.nbytes
        fits.HDUList(hdus).writeto(os.path.join(args.output_dir, product["name"]), overwrite=True)
        del hdus
    t_end = time.perf_counter()
    _write_json(args.timing, {
        "import_s": t_imported - t_import, "read_s": t_read - t_imported,
        "write_s": t_end - t_read, "process_s": t_end - _T0,
        "bytes_read": nbytes, "bytes_written": written,
    })


def run_spawner():
    import subprocess

    for line in sys.stdin:
        request = json.loads(line)
        with open(request["logfile"], "wb") as out:
            start = time.perf_counter()
            proc = subprocess.Popen(request["cmd"], stdout=out, stderr=subprocess.STDOUT,
                                    env=request["env"])
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        sys.stdout.write(json.dumps({"wall": wall, "maxrss": usage.ru_maxrss * 1024,
                                     "code": proc.returncode}) + "\n")
        sys.stdout.flush()
    return 0


def vm_hwm():
    """This process's own resident-set high-water mark (bytes), from /proc/self/status.

    Unlike ``ru_maxrss`` it belongs to the current address space only, so it does not include
    whatever the parent process had used before starting this one.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def run_r2s_memory(args):
    """ramp2slope's CLI in-process, noting the RSS high-water mark at each of its log lines."""
    import logging
    import re

    from ramp2slope import cli

    done = re.compile(r"^(\S+) (done in|skipped|running)")
    marks = []

    def current_rss():
        try:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            return None

    class Handler(logging.Handler):
        def emit(self, record):
            match = done.match(record.getMessage())
            if match:
                peak = vm_hwm()
                marks.append({"step": match.group(1), "event": match.group(2).split()[0],
                              "peak_rss": peak, "rss": current_rss(),
                              "t": time.perf_counter() - _T0})

    setup = cli._setup_logging

    def setup_and_listen(*a, **k):
        setup(*a, **k)
        logging.getLogger("ramp2slope").addHandler(Handler(level=logging.INFO))

    cli._setup_logging = setup_and_listen
    marks.append({"step": "(imports)", "event": "start", "peak_rss": vm_hwm(),
                  "rss": current_rss(), "t": time.perf_counter() - _T0})
    code = cli.main(args.cli_args)
    marks.append({"step": "(end)", "event": "end", "peak_rss": vm_hwm(),
                  "rss": current_rss(), "t": time.perf_counter() - _T0})
    _write_json(args.timing, {"marks": marks, "exit": code})
    return code


def run_ramp_fit(args):
    """Time RampFitStep(algorithm='LIKELY') of ramp2slope or jwst (stcal) on a ramp file."""
    import numpy as np

    refs = _load_refs(args.refs)
    params = dict(algorithm="LIKELY", override_gain=refs["gain"],
                  override_readnoise=refs["readnoise"])
    if args.impl == "jwst":
        configure_offline_crds(args.crds_path)
        from jwst.ramp_fitting import RampFitStep
    else:
        from ramp2slope.ramp_fitting import RampFitStep
    warm = None
    if args.impl == "ramp2slope":
        from ramp2slope.runtime.threads import thread_limit

        with thread_limit(args.threads):
            t0 = time.perf_counter()
            RampFitStep.call(args.ramp, **params)
            warm = time.perf_counter() - t0
    times = []
    rate = None
    for _ in range(args.reps):
        if args.impl == "ramp2slope":
            with thread_limit(args.threads):
                t0 = time.perf_counter()
                rate, _ints = RampFitStep.call(args.ramp, **params)
                times.append(time.perf_counter() - t0)
        else:
            t0 = time.perf_counter()
            rate, _ints = RampFitStep.call(args.ramp, **params)
            times.append(time.perf_counter() - t0)
    np.save(args.rate_out, np.asarray(rate.data, np.float32))
    _write_json(args.timing, {"impl": args.impl, "threads": args.threads, "times_s": times,
                              "first_call_s": warm})


def _load_refs(path):
    with open(path) as handle:
        return json.load(handle)


def _write_json(path, obj):
    obj = dict(obj, vm_hwm=vm_hwm())
    if path:
        with open(path, "w") as handle:
            json.dump(obj, handle, indent=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("jwst", "floor"):
        p = sub.add_parser(name)
        p.add_argument("--uncal", required=True)
        p.add_argument("--refs", required=True, help="JSON file {reftype: path}")
        p.add_argument("--output-dir", required=True)
        p.add_argument("--timing", help="JSON report to write")
        if name == "jwst":
            p.add_argument("--ipc", action="store_true")
            p.add_argument("--cores", help="jwst maximum_cores for jump and ramp_fit")
            p.add_argument("--crds-path", required=True, help="folder for the stub CRDS cache")
        else:
            p.add_argument("--products", required=True, help="JSON list of products to write")
    mem = sub.add_parser("r2s-mem")
    mem.add_argument("--timing", required=True)
    mem.add_argument("cli_args", nargs=argparse.REMAINDER, help="ramp2slope CLI arguments")
    fit = sub.add_parser("ramp-fit")
    fit.add_argument("--impl", choices=("ramp2slope", "jwst"), required=True)
    fit.add_argument("--ramp", required=True, help="a calibrated ramp (_ramp.fits)")
    fit.add_argument("--refs", required=True, help="JSON file {reftype: path}")
    fit.add_argument("--timing", required=True)
    fit.add_argument("--rate-out", required=True, help="the rate's SCI array as .npy")
    fit.add_argument("--threads", type=int, help="ramp2slope threads")
    fit.add_argument("--reps", type=int, default=1)
    fit.add_argument("--crds-path", help="folder for the stub CRDS cache (jwst)")
    sub.add_parser("spawner")
    args = parser.parse_args(argv)
    if args.command == "spawner":
        return run_spawner()
    if args.command == "r2s-mem":
        if args.cli_args and args.cli_args[0] == "--":
            args.cli_args = args.cli_args[1:]
        return run_r2s_memory(args) or 0
    {"jwst": run_jwst, "floor": run_floor, "ramp-fit": run_ramp_fit}[args.command](args)
    if args.command == "floor":
        # the floor ends as ramp2slope's command line does, without the interpreter's
        # teardown (runtime/process_exit.py): that teardown is no I/O a run must do
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
