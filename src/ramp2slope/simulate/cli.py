"""Command-line front end: ``ramp2slope simulate --outdir D [options]``.

``add_arguments(parser)`` fills an argparse parser (for mounting as a subcommand) and
``run_from_args(args)`` runs it; ``main(argv)`` does both for stand-alone use.
"""
from __future__ import annotations

import argparse
import sys
import time

from ..errors import Ramp2SlopeError
from .detector import (AXES, INSTRUMENT, INSTRUMENT_MODES, NIS_SOSS_SUBARRAYS, READ_PATTERNS,
                       SUBARRAY_NAMES)

#: MIRI windows and read patterns (:mod:`.miri`, not imported to build the parser)
MIRI_SUBARRAY_NAMES = ("BRIGHTSKY", "SUB256", "SUB128", "SUB64", "SLITLESSPRISM")
MIRI_READ_PATTERNS = ("FAST", "FASTR1")

#: the read pattern that asks for a NIRSpec IRS2 exposure (:mod:`.irs2`)
IRS2_READPATT = "NRSIRS2RAPID"


def _size(text):
    """Parse ``ROWSxCOLS`` (e.g. 2048x2048 or 256x2048) into (ny, nx)."""
    try:
        rows, cols = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 2048x2048 (rows x columns), not {text!r}")
    return rows, cols


def _default_readpatt(detector):
    """RAPID on NIRCam; the one pattern simulated on the other near-infrared instruments."""
    mode = INSTRUMENT_MODES.get(INSTRUMENT.get(detector))
    return mode.readpatt if mode else "RAPID"


def add_arguments(parser):
    parser.add_argument("--outdir", required=True,
                        help="output directory (uncal, truth, and refs/ with the reference files)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--size", type=_size, default=None,
                       help="ROWSxCOLS; 2048x2048 is FULL, other sizes a GENERIC window at the origin")
    where.add_argument("--subarray", type=str.upper,
                       choices=SUBARRAY_NAMES + tuple(NIS_SOSS_SUBARRAYS) + MIRI_SUBARRAY_NAMES,
                       default=None,
                       help="named NIRCam (with --detector NIS, a NIRISS SOSS stripe; with --detector "
                            "MIRIMAGE, MIRI) subarray at its flight position (default FULL)")
    parser.add_argument("--ngroups", type=int, default=10, help="groups per integration (default 10)")
    parser.add_argument("--nints", type=int, default=1, help="integrations (default 1)")
    parser.add_argument("--readpatt", type=str.upper,
                        choices=tuple(READ_PATTERNS) + (IRS2_READPATT,) + MIRI_READ_PATTERNS,
                        default=None,
                        help="read pattern (default RAPID; NRSRAPID, NISRAPID and FGSRAPID, the "
                             f"defaults for NIRSpec, NIRISS and FGS; {IRS2_READPATT}: a NIRSpec "
                             "IRS2 full frame; FAST (default) or FASTR1 for MIRI)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--detector", type=str.upper, choices=tuple(AXES) + ("MIRIMAGE",),
                        default="NRCBLONG",
                        help="NIRCam detector; NRS1/NRS2, NIS, GUIDER1/GUIDER2 for NIRSpec, NIRISS, "
                             "FGS; MIRIMAGE for the MIRI imager (default NRCBLONG)")
    parser.add_argument("--cr-rate", type=float, default=5.0,
                        help="cosmic-ray events per cm^2 per s (default 5)")
    parser.add_argument("--filter", type=str.upper, default=None,
                        help="FILTER keyword (default F444W long wave, F200W short wave)")
    parser.add_argument("--sky", type=float, default=None, help="sky level in DN/s")
    parser.add_argument("--dark-planes", type=int, default=None,
                        help="planes in the DARK reference (default: all frames, capped at 512 MiB)")
    parser.add_argument("--no-zeroframe", action="store_true", help="do not write a ZEROFRAME")
    parser.add_argument("--subarray-refs", action="store_true",
                        help="cut the reference files to the subarray instead of writing them full frame")
    return parser


def run_from_args(args):
    """Run a simulation from parsed arguments; prints what was written and returns 0."""
    from .exposure import simulate_exposure

    start = time.perf_counter()
    if args.detector == "MIRIMAGE":
        result = _simulate_miri(args)
    elif args.readpatt == IRS2_READPATT:
        result = _simulate_irs2(args)
    else:
        if args.subarray in MIRI_SUBARRAY_NAMES and args.subarray not in SUBARRAY_NAMES:
            raise Ramp2SlopeError(f"{args.subarray} is a MIRI subarray: add --detector MIRIMAGE")
        if args.readpatt in MIRI_READ_PATTERNS:
            raise Ramp2SlopeError(f"{args.readpatt} is a MIRI read pattern: add --detector MIRIMAGE")
        result = simulate_exposure(
            args.outdir, size=args.size, subarray=args.subarray, ngroups=args.ngroups,
            nints=args.nints, readpatt=args.readpatt or _default_readpatt(args.detector),
            seed=args.seed, detector=args.detector,
            zeroframe=not args.no_zeroframe, cr_rate=args.cr_rate, sky=args.sky,
            dark_nplanes=args.dark_planes, full_frame_refs=not args.subarray_refs,
            filter_name=args.filter)
    elapsed = time.perf_counter() - start
    print(f"uncal: {result.uncal}")
    for reftype, path in result.refs.items():
        print(f"{reftype}: {path}")
    print(f"truth: {result.truth}")
    print(f"shape {result.shape} simulated in {elapsed:.1f} s")
    return 0


def _simulate_miri(args):
    from .miri import simulate_miri_exposure

    if args.size is not None:
        raise Ramp2SlopeError("MIRI exposures take a named --subarray (or none: FULL), not --size")
    if args.readpatt not in (None,) + MIRI_READ_PATTERNS:
        raise Ramp2SlopeError(f"MIRI read patterns: {', '.join(MIRI_READ_PATTERNS)}, not {args.readpatt}")
    return simulate_miri_exposure(args.outdir, subarray=args.subarray or "FULL",
                                  ngroups=args.ngroups, nints=args.nints,
                                  readpatt=args.readpatt or "FAST", seed=args.seed,
                                  cr_rate=args.cr_rate)


def _simulate_irs2(args):
    from .irs2 import simulate_irs2_exposure

    if args.size not in (None, (2048, 2048)) or args.subarray not in (None, "FULL"):
        raise Ramp2SlopeError(f"{IRS2_READPATT} exposures are full frames (no --size or --subarray)")
    if args.detector not in ("NRS1", "NRS2"):
        raise Ramp2SlopeError(f"{IRS2_READPATT} is a NIRSpec readout: use --detector NRS1 or NRS2")
    return simulate_irs2_exposure(args.outdir, detector=args.detector, ngroups=args.ngroups,
                                  nints=args.nints, seed=args.seed)


def main(argv=None):
    parser = add_arguments(argparse.ArgumentParser(
        prog="ramp2slope simulate",
        description="Simulate a raw NIRCam exposure with matching reference files and its truth."))
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except Ramp2SlopeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
