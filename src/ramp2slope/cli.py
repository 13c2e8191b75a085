"""The ``ramp2slope`` command: run, info, simulate, demo, report.

Every user-caused problem (a bad file, a missing reference, a wrong parameter) is printed as one
line starting with ``ramp2slope: error:`` and the command exits with status 2.
"""
import argparse
import logging
import os
import sys
import time

from . import __version__
from .errors import Ramp2SlopeError
from .runtime import malloc, termination

log = logging.getLogger("ramp2slope")


class _StepTimingFormatter(logging.Formatter):
    def __init__(self):
        super().__init__()
        self._start = time.perf_counter()

    def format(self, record):
        return f"[{time.perf_counter() - self._start:7.2f} s] {record.getMessage()}"


def _setup_logging(verbose=False, quiet=False):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StepTimingFormatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO))
    log.propagate = False


def parse_step_overrides(extra):
    """``--steps.jump.rejection_threshold=5`` arguments as {'jump': {'rejection_threshold': '5'}}."""
    steps, pipeline = {}, {}
    args = list(extra)
    while args:
        arg = args.pop(0)
        if not arg.startswith("--"):
            raise Ramp2SlopeError(f"unexpected argument {arg!r}")
        key, sep, value = arg[2:].partition("=")
        if not sep:
            if not args or args[0].startswith("--"):
                raise Ramp2SlopeError(f"{arg} needs a value (--{key}=VALUE)")
            value = args.pop(0)
        parts = key.split(".")
        if parts[0] == "steps" and len(parts) == 3:
            steps.setdefault(parts[1], {})[parts[2]] = value
        elif len(parts) == 1:
            pipeline[key.replace("-", "_")] = value
        else:
            raise Ramp2SlopeError(f"cannot understand {arg!r}: use --steps.<step>.<parameter>=VALUE")
    return steps, pipeline


def run_pipeline(uncal, refdir=None, output_dir=None, save_steps=False, steps=None, threads=None,
                 extra_pipeline_params=None, save_calibrated_ramp=False, config_file=None,
                 save_parameters=None, disable_crds_steppars=None):
    """Run Detector1Pipeline as the command line does; returns the list of files written.

    Parameters come, lowest first, from the defaults, the CRDS parameter files for the exposure,
    ``config_file``, then these arguments; only the arguments given (not None or False) count.
    ``save_parameters`` names an ASDF file to write the resulting parameters to before the run.
    """
    from .pipeline import Detector1Pipeline
    from .stpipe.config import configure

    steps = {name: dict(values) for name, values in (steps or {}).items()}
    if save_steps:
        # (MIRI's steps too: a step writes nothing where it does not run)
        for name in ("dq_init", "emicorr", "saturation", "superbias", "firstframe", "lastframe",
                     "reset", "refpix", "linearity", "rscd", "dark_current", "jump"):
            steps.setdefault(name, {}).setdefault("save_results", True)
        steps.setdefault("ramp_fit", {}).setdefault("save_opt", True)
        steps.setdefault("ramp_fit", {}).setdefault("save_results", True)
        # what the report's picture_frame and clean_flicker_noise sections read; nothing is
        # written when they are skipped
        for step, options in (("picture_frame", ("save_correction", "save_mask")),
                              ("clean_flicker_noise", ("save_noise", "save_mask"))):
            for option in options:
                steps.setdefault(step, {}).setdefault(option, True)
    started = time.time() - 1
    given = {"refdir": refdir, "output_dir": output_dir, "threads": threads,
             "save_calibrated_ramp": save_calibrated_ramp or None}
    params = dict(extra_pipeline_params or {})
    params.update({key: value for key, value in given.items() if value is not None})
    params.setdefault("save_results", True)   # jwst's --save_results=false is honoured
    pipe = configure(Detector1Pipeline, uncal, config_file=config_file,
                     disable=disable_crds_steppars, steps=steps, **params)
    if save_parameters:
        pipe.export_config(save_parameters, include_metadata=True)
        log.info("parameters saved to %s", save_parameters)
    pipe.run(uncal)
    return _written_since(pipe.output_dir or os.getcwd(), started)


def _written_since(folder, started):
    if not os.path.isdir(folder):
        return []
    paths = (os.path.join(folder, n) for n in os.listdir(folder) if n.endswith((".fits", ".asdf")))
    return sorted(p for p in paths if os.path.getmtime(p) >= started)


def _cmd_run(args, extra):
    steps, pipeline_params = parse_step_overrides(extra)
    if args.step:
        return _cmd_run_step(args, steps, pipeline_params)
    if _wants_batch(args):
        return _cmd_run_many(args, steps, pipeline_params)
    args.uncal = args.uncal[0]
    if args.report and not args.save_steps:
        # the report reads every step's product: save them rather than write a failing report
        log.info("--report: saving each step's product for the report (as --save-steps)")
    written = run_pipeline(args.uncal, refdir=args.refdir, output_dir=args.output_dir,
                           save_steps=args.save_steps or args.report, steps=steps,
                           threads=args.threads,
                           extra_pipeline_params=pipeline_params,
                           save_calibrated_ramp=args.save_calibrated_ramp,
                           config_file=args.config, save_parameters=args.save_parameters,
                           disable_crds_steppars=args.disable_crds_steppars or None)
    print("Products written:")
    for path in written:
        print(f"  {path}")
    if args.report:
        rate = [path for path in written if path.endswith("_rate.fits")]
        folder = os.path.dirname(rate[0]) if rate else (args.output_dir or os.getcwd())
        _write_report(folder, args.uncal, None)
    return 0


def _cmd_run_step(args, steps, params):
    """One step on one file, as ``strun <step> FILE`` runs it: its output saved under the
    step's suffix (``--save_results=false`` to keep nothing)."""
    from .stpipe.config import configure

    cls = step_class(args.step)
    if steps:
        raise Ramp2SlopeError(f"{args.step} is one step: give its parameters as --<param>=VALUE, "
                              f"not --steps.<step>.<param>")
    unsupported = [option for option, given in (
        ("--save-steps", args.save_steps), ("--save-calibrated-ramp", args.save_calibrated_ramp),
        ("--report", args.report), ("--threads", args.threads is not None)) if given]
    if unsupported or _wants_batch(args) or len(args.uncal) != 1:
        what = ", ".join(unsupported) or "several inputs"
        raise Ramp2SlopeError(f"running the {args.step} step alone takes one file and none of "
                              f"{what}; run the pipeline for those")
    path = args.uncal[0]
    if not os.path.isfile(path):
        raise Ramp2SlopeError(f"{path}: no such file")
    given = {"refdir": args.refdir, "output_dir": args.output_dir}
    params = dict(params, **{key: value for key, value in given.items() if value is not None})
    params.setdefault("save_results", True)   # as strun
    started = time.time() - 1
    step = configure(cls, path, config_file=args.config, disable=args.disable_crds_steppars or None,
                     **params)
    if args.save_parameters:
        step.export_config(args.save_parameters, include_metadata=True)
        log.info("parameters saved to %s", args.save_parameters)
    step.run(path)
    print("Products written:")
    for written in _written_since(step.output_dir or os.getcwd(), started):
        print(f"  {written}")
    return 0


def step_class(name):
    """The step class strun would run for ``name``: a step's alias (``jump``), its class name
    (``JumpStep``), or its dotted path under jwst or ramp2slope."""
    from .pipeline import Detector1Pipeline

    classes = dict(Detector1Pipeline.step_defs)
    for alias, cls in Detector1Pipeline.step_defs.items():
        classes[cls.__name__] = cls
        for package in ("jwst", "ramp2slope"):
            classes[f"{package}.{alias}.{cls.__name__}"] = cls
            classes[f"{package}.{alias}.{alias}_step.{cls.__name__}"] = cls
    if name not in classes:
        raise Ramp2SlopeError(f"no step named {name}; the steps are "
                              f"{', '.join(Detector1Pipeline.step_defs)}")
    return classes[name]


_BATCH_OPTIONS = ("workers", "memory_limit", "scheduler", "manifest", "overwrite")


def _wants_batch(args):
    from .batch import is_batch

    return is_batch(args.uncal) or any(getattr(args, name, None) for name in _BATCH_OPTIONS)


def _cmd_run_many(args, steps, pipeline_params):
    from .batch import run_many

    for option, given in (("--report", args.report), ("--save-parameters", args.save_parameters)):
        if given:
            raise Ramp2SlopeError(f"{option} works on one exposure, not on a batch")
    result = run_many(args.uncal, args.output_dir, refdir=args.refdir, steps=steps,
                      threads=args.threads, save_steps=args.save_steps,
                      save_calibrated_ramp=args.save_calibrated_ramp, config_file=args.config,
                      disable_crds_steppars=args.disable_crds_steppars or None,
                      extra_pipeline_params=pipeline_params, workers=args.workers,
                      memory_limit=args.memory_limit, scheduler=args.scheduler,
                      manifest=args.manifest, overwrite=args.overwrite)
    return result.exit_code


def _cmd_refs(args, extra):
    import json

    from .pipeline import Detector1Pipeline
    from .references.plan import format_plan, plan_references
    from .stpipe.crds_pars import metadata_model

    steps, pipeline_params = parse_step_overrides(extra)
    pipe = Detector1Pipeline(steps=steps, refdir=args.refdir, **pipeline_params)
    report = {}
    for uncal in args.uncal:
        if not os.path.isfile(uncal):
            raise Ramp2SlopeError(f"{uncal}: no such file")
        model, close = metadata_model(uncal)
        try:
            plan = plan_references(pipe, model, sync=args.sync)
        finally:
            close()
        report[uncal] = [p.as_dict() for p in plan]
        if not args.json:
            print("\n".join(format_plan(uncal, plan)))
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


def _write_report(products, uncal, truth, out=None):
    from .report import write_report

    path = write_report(products, truth=truth, out=out, uncal=uncal)
    print(f"Validation report: {path}")
    return path


def _cmd_info(args, extra):
    from . import datamodels

    model = datamodels.open(args.file)
    print(model.info_text())
    for key, value in model.meta.to_flat_dict().items():
        print(f"  {key} = {value!r}")
    return 0


def _cmd_simulate(args, extra):
    from .simulate.cli import run_from_args

    return run_from_args(args) or 0


def _folder_bytes(folder):
    total = 0
    for base, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.path.getsize(os.path.join(base, name))
            except OSError:
                pass
    return total


def _size_text(nbytes):
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.0f} MB"


def _cmd_demo(args, extra):
    from .simulate import simulate_exposure

    outdir = os.path.abspath(args.outdir)
    size = None
    if args.size:
        try:
            size = tuple(int(v) for v in args.size.lower().split("x"))
            assert len(size) == 2
        except (ValueError, AssertionError):
            raise Ramp2SlopeError(f"--size {args.size!r}: give ROWSxCOLUMNS, e.g. 256x2048") from None
    what = "full-frame" if size is None else f"{size[0]}x{size[1]}"
    print(f"Simulating a {what} NIRCam exposure in {outdir} ...", flush=True)
    start = time.perf_counter()
    sim = simulate_exposure(outdir, size=size, ngroups=args.ngroups, nints=args.nints, seed=args.seed)
    refdir = os.path.dirname(sim.refs["mask"])
    print(f"  simulated in {time.perf_counter() - start:.1f} s: {sim.uncal}", flush=True)
    products = os.path.join(outdir, "products")
    start = time.perf_counter()
    # The report reads every step's product; without --keep-steps they are removed once it is
    # written, so the demo leaves the exposure, its references, the rates and the report.
    save_steps = args.keep_steps or not args.no_report
    written = run_pipeline(sim.uncal, refdir=refdir, output_dir=products,
                           save_steps=save_steps, threads=args.threads)
    print(f"Pipeline finished in {time.perf_counter() - start:.1f} s. Products in {products}:")
    for path in written:
        print(f"  {os.path.basename(path)}")
    if not args.no_report:
        _write_report(products, sim.uncal, sim.truth, out=os.path.join(outdir, "report.html"))
    if save_steps and not args.keep_steps:
        kept = {f"{sim.root}_rate.fits", f"{sim.root}_rateints.fits"}
        removed = 0
        for path in written:
            if os.path.basename(path) not in kept and os.path.exists(path):
                removed += os.path.getsize(path)
                os.unlink(path)
        print(f"Step products read by the report removed ({_size_text(removed)}; --keep-steps "
              f"keeps them).")
    print(f"The demo folder {outdir} holds {_size_text(_folder_bytes(outdir))}: the simulated "
          f"exposure and truth, the reference files in {os.path.relpath(refdir, outdir)}/, the "
          f"products" + ("" if args.no_report else " and report.html") + ".")
    return 0


def _cmd_report(args, extra):
    _write_report(args.products, args.uncal, args.truth, out=args.out)
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ramp2slope",
        description="JWST Stage 1 (calwebb_detector1): raw ramps to count-rate images, fast.")
    parser.add_argument("--version", action="version", version=f"ramp2slope {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="show only warnings and errors")
    # the same options after the subcommand (`ramp2slope run X -v`, as strun users type them)
    verbosity = argparse.ArgumentParser(add_help=False)
    verbosity.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                           help="show debug messages")
    verbosity.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                           help="show only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_parser = sub.add_parser

    def add_command(*args, **kwargs):
        return add_parser(*args, parents=[verbosity], **kwargs)

    sub.add_parser = add_command

    run = sub.add_parser(
        "run", help="run Detector1Pipeline on an _uncal.fits file",
        description="Run the Stage 1 pipeline. Step parameters: --steps.<step>.<param>=VALUE, "
                    "e.g. --steps.jump.rejection_threshold=5 --steps.ipc.skip=false; pipeline "
                    "parameters: --<param>=VALUE (jwst's spellings such as --output_dir=out and "
                    "--save_results=true work too). strun's order works as well: "
                    "`ramp2slope run calwebb_detector1 FILE` or `ramp2slope run PARS.asdf FILE`; "
                    "one step alone: `ramp2slope run STEP FILE --<param>=VALUE` (e.g. `run "
                    "clean_flicker_noise x_rate.fits --skip=false`), its output saved under its "
                    "suffix as strun saves it. "
                    "Every parameter, its default and meaning: `ramp2slope steps`.")
    run.add_argument("uncal", nargs="+",
                     help="raw exposure (*_uncal.fits); several, a folder, a glob pattern or a "
                          "jwst association (.json) run them as one batch (docs/batch.md)")
    run.add_argument("--refdir", help="directory with the reference files (default: $RAMP2SLOPE_REFDIR)")
    run.add_argument("--output-dir", help="where to write products (default: current directory)")
    run.add_argument("--save-steps", action="store_true",
                     help="also save each step's output and the ramp-fit optional output")
    run.add_argument("--save-calibrated-ramp", action="store_true", help="save the _ramp file")
    run.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    run.add_argument("--config", metavar="FILE",
                     help="parameter file (ASDF, as jwst's strun --save-parameters writes, or .cfg); "
                          "the command line's options override it")
    run.add_argument("--save-parameters", metavar="FILE",
                     help="write the parameters of this run to an ASDF parameter file")
    run.add_argument("--disable-crds-steppars", action="store_true",
                     help="do not apply CRDS parameter reference files (pars-*); also "
                          "STPIPE_DISABLE_CRDS_STEPPARS=true")
    run.add_argument("--report", action="store_true",
                     help="write the validation report (HTML); implies --save-steps")
    batch = run.add_argument_group(
        "many exposures", "each exposure is one task on dask.distributed (pip install "
        "'ramp2slope[dask]'); exit status 1 when some failed")
    batch.add_argument("--workers", type=int,
                       help="local worker processes (default: the cores, fewer where the "
                            "exposures' predicted memory would not fit)")
    batch.add_argument("--memory-limit", metavar="SIZE",
                       help="start an exposure only while the predicted peaks of those running "
                            "fit in SIZE, e.g. 16GB or 50%% (default: 80%% of RAM)")
    batch.add_argument("--scheduler", metavar="ADDRESS",
                       help="send the exposures to this dask.distributed scheduler (default: "
                            "Dask's configuration, else a local cluster)")
    batch.add_argument("--manifest", metavar="FILE",
                       help="JSON record of every exposure (default: "
                            "OUTPUT_DIR/ramp2slope_manifest.json)")
    batch.add_argument("--overwrite", action="store_true",
                       help="process exposures whose products an earlier run completed")
    run.add_argument("--step", help=argparse.SUPPRESS)   # strun's `run STEP FILE`, see strun_order
    run.set_defaults(func=_cmd_run)

    refs = sub.add_parser(
        "refs", help="the reference file each step would use, and where it comes from",
        description="For each exposure, the reference file every enabled step would use and "
                    "its source: a step's override (--steps.<step>.override_<type>=PATH), the "
                    "--refdir folder or $RAMP2SLOPE_REFDIR, the CRDS cache (CRDS_PATH), or the "
                    "CRDS server (CRDS_SERVER_URL) when the cache lacks it. --sync fetches what "
                    "CRDS chooses into the cache, so that a machine with no network can run "
                    "them.")
    refs.add_argument("uncal", nargs="+", help="raw exposures (*_uncal.fits)")
    refs.add_argument("--refdir", help="folder of reference files (default: $RAMP2SLOPE_REFDIR)")
    refs.add_argument("--sync", action="store_true",
                      help="fetch the references CRDS chooses into the CRDS cache")
    refs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    refs.set_defaults(func=_cmd_refs)

    steps = sub.add_parser("steps", help="list the pipeline's steps and their parameters",
                           description="The parameters of calwebb_detector1 and of each step, "
                                       "with their defaults and meaning (the steps' specs).")
    steps.add_argument("names", nargs="*", metavar="STEP",
                       help="only these steps (aliases such as jump, or calwebb_detector1)")
    steps.set_defaults(func=_cmd_steps)

    info = sub.add_parser("info", help="describe a FITS product")
    info.add_argument("file")
    info.set_defaults(func=_cmd_info)

    sim = sub.add_parser("simulate", help="write a synthetic exposure, its reference files and truth")
    from .simulate.cli import add_arguments

    add_arguments(sim)
    sim.set_defaults(func=_cmd_simulate)

    demo = sub.add_parser("demo", help="simulate a full-frame exposure and run the pipeline on it")
    demo.add_argument("--outdir", default="ramp2slope_demo", help="folder for everything (default: %(default)s)")
    demo.add_argument("--ngroups", type=int, default=10)
    demo.add_argument("--nints", type=int, default=1)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--threads", type=int, default=None)
    demo.add_argument("--no-report", action="store_true", help="skip the HTML report")
    demo.add_argument("--keep-steps", action="store_true",
                      help="keep every step's product (about 1.6 GB more for a full frame)")
    demo.add_argument("--size", help="simulate ROWSxCOLUMNS instead of a full frame (e.g. 256x2048)")
    demo.set_defaults(func=_cmd_demo)

    rep = sub.add_parser("report", help="write the validation report for a run made with --save-steps")
    rep.add_argument("products", help="output folder (or root name) of the run")
    rep.add_argument("--uncal", help="the raw exposure (*_uncal.fits), for the figures of the raw ramps")
    rep.add_argument("--truth", help="the simulator's truth file, for accuracy checks")
    rep.add_argument("--out", help="HTML file to write (default: <products>/report.html)")
    rep.set_defaults(func=_cmd_report)
    return parser


#: Names strun accepts for this pipeline as its first argument.
PIPELINE_NAMES = ("calwebb_detector1", "Detector1Pipeline", "jwst.pipeline.Detector1Pipeline",
                  "jwst.pipeline.calwebb_detector1.Detector1Pipeline",
                  "ramp2slope.pipeline.Detector1Pipeline",
                  "ramp2slope.pipeline.calwebb_detector1.Detector1Pipeline")


def _is_step_name(name):
    try:
        step_class(name)
    except Ramp2SlopeError:
        return False
    return True


def strun_order(argv):
    """``run calwebb_detector1 FILE``, ``run PARS.asdf FILE`` and ``run STEP FILE`` (strun's
    order) as ``run FILE``, ``run FILE --config PARS.asdf`` and ``run FILE --step STEP``."""
    argv = list(argv)
    if len(argv) < 3 or argv[0] != "run" or argv[1].startswith("-"):
        return argv
    first, second = argv[1], argv[2]
    if second.startswith("-"):
        return argv
    if first in PIPELINE_NAMES:
        return ["run"] + argv[2:]
    if _is_step_name(first):
        return ["run"] + argv[2:] + ["--step", first]
    if first.lower().endswith((".asdf", ".cfg")) and not second.lower().endswith((".asdf", ".cfg")):
        return ["run"] + argv[2:] + ["--config", first]
    return argv


def _cmd_steps(args, extra):
    from .pipeline import Detector1Pipeline

    pipe = Detector1Pipeline
    chosen = set(args.names)
    unknown = chosen - set(pipe.step_defs) - {pipe.class_alias}
    if unknown:
        raise Ramp2SlopeError(f"no step named {', '.join(sorted(unknown))}; the steps are "
                              f"{pipe.class_alias}, {', '.join(pipe.step_defs)}")
    classes = [(pipe.class_alias, pipe)] + list(pipe.step_defs.items())
    for alias, cls in classes:
        if chosen and alias not in chosen:
            continue
        print(f"{alias} ({cls.__name__})" + ("" if cls is pipe else
                                             f": --steps.{alias}.<parameter>=VALUE"))
        for param in cls.parameters():
            default = "(off by default in calwebb_detector1)" if (
                param.name == "skip" and alias in pipe._OFF_BY_DEFAULT) else ""
            help_text = f"  # {param.help}" if param.help else ""
            print(f"    {param.name} = {param.default!r}{help_text} {default}".rstrip())
        print()
    return 0


def main(argv=None):
    termination.handle_sigterm()   # SIGTERM cleans up as Ctrl-C does
    parser = build_parser()
    argv = strun_order(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    args.verbose = getattr(args, "verbose", False)
    args.quiet = getattr(args, "quiet", False)
    if args.command is None:
        parser.print_help()
        return 2
    if extra and args.command not in ("run", "refs"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _setup_logging(args.verbose, args.quiet)
    try:
        return args.func(args, extra)
    except Ramp2SlopeError as exc:
        print(f"ramp2slope: error: {exc}", file=sys.stderr)
        return 2
    except termination.Terminated:
        print("ramp2slope: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("ramp2slope: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`ramp2slope info X | head`): stop quietly, as other command-line
        # tools do. stdout is pointed at devnull so that the interpreter's final flush does not
        # raise again on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def entry_point():
    """The ``ramp2slope`` command: :func:`main`, then a fast process exit
    (:func:`~ramp2slope.runtime.process_exit.exit_process`)."""
    from .runtime.process_exit import exit_process

    malloc.use_one_arena()   # the process is the command's own: see ramp2slope.runtime.malloc
    exit_process(main())


if __name__ == "__main__":
    entry_point()
