"""``simulate_exposure``: a raw near-infrared exposure, its reference files and the injected truth."""
from __future__ import annotations

import datetime as _dt
import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.time import Time

from ..errors import Ramp2SlopeError
from . import _kernels, fitsio, physics
from .detector import (DETECTOR_INFO, INSTRUMENT, NIS_SOSS_SUBARRAYS, SOSS_PWCPOS, TRANSPOSED,
                       geometry, instrument_mode, readout as make_readout)
from .references import write_references
from .transposed import transpose_products
from .truth import write_truth

log = logging.getLogger("ramp2slope")

PROGRESS_EVERY_S = 2.0   # a full frame takes seconds per group on two cores: keep the log talking

#: Largest DARK reference written by default (bytes of its SCI array); longer exposures get a
#: shorter dark that the pipeline extends linearly (exactly, since the simulated dark is linear).
DARK_BUDGET_BYTES = 512 * 2**20

EXPSTART_MJD = 60400.5          # 2024-03-31T12:00:00 UTC


@dataclass
class SimulationResult:
    """Paths of everything a simulation wrote."""

    uncal: Path
    refs: dict = field(default_factory=dict)   # reftype -> Path
    truth: Path = None
    root: str = ""
    shape: tuple = ()                          # (nints, ngroups, ny, nx)


@functools.lru_cache(maxsize=1)
def _nonlinearity():
    return physics.NonLinearity()


def _root_name(program, observation, visit, exposure, detector):
    return (f"jw{int(program):05d}{int(observation):03d}{int(visit):03d}_01101_"
            f"{int(exposure):05d}_{detector.lower()}")


def _iso(mjd, precision=3):
    time = Time(mjd, format="mjd", scale="utc")
    time.precision = precision
    return time.isot


def _uncal_cards(root, geom, ro, filename, program, observation, visit, exposure, filt, pupil,
                 zeroframe, seed):
    module, channel, _, aperture = DETECTOR_INFO[geom.detector]
    mode = instrument_mode(geom)   # None for NIRCam
    start = EXPSTART_MJD
    end = start + ro.nints * ro.int_duration / 86400.0
    start_iso, end_iso = _iso(start), _iso(end)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    obs_id = f"V{int(program):05d}{int(observation):03d}{int(visit):03d}P0000000001101"
    apername = f"{aperture}_{geom.subarray if geom.subarray not in ('GENERIC',) else 'FULL'}"
    return [
        ("DATE", now, "UTC date file created"),
        ("ORIGIN", "ramp2slope", "organization responsible for creating file"),
        ("TIMESYS", "UTC", "principal time system for time-related keywords"),
        ("TIMEUNIT", "s", "default unit applicable to all time values"),
        ("FILENAME", filename, "name of the file"),
        ("FILETYPE", "uncalibrated", "type of data in the file"),
        ("DATAMODL", "Level1bModel", "type of data model"),
        ("TELESCOP", "JWST", "telescope used to acquire the data"),
        ("TITLE", "ramp2slope simulated exposure", "proposal title"),
        ("DATE-OBS", start_iso[:10], "[yyyy-mm-dd] UTC date at start of exposure"),
        ("TIME-OBS", start_iso[11:23], "[hh:mm:ss.sss] UTC time at start of exposure"),
        ("DATE-BEG", start_iso, "date-time start of exposure"),
        ("DATE-END", end_iso, "date-time end of exposure"),
        ("OBS_ID", obs_id, "programmatic observation identifier"),
        ("VISIT_ID", f"{int(program):05d}{int(observation):03d}{int(visit):03d}", "visit identifier"),
        ("PROGRAM", f"{int(program):05d}", "program number"),
        ("OBSERVTN", f"{int(observation):03d}", "observation number"),
        ("VISIT", f"{int(visit):03d}", "visit number"),
        ("VISITGRP", "01", "visit group identifier"),
        ("SEQ_ID", "1", "parallel sequence identifier"),
        ("ACT_ID", "01", "activity identifier"),
        ("EXPOSURE", f"{int(exposure):05d}", "exposure request number"),
        ("TEMPLATE", mode.template if mode else "NIRCam Imaging", "proposal instruction template used"),
        ("TARGPROP", "SIMFIELD", "proposer's name for the target"),
        ("TARGNAME", "SIMFIELD", "standard astronomical catalog name for target"),
        ("TARG_RA", 80.0, "target RA at mid time of exposure"),
        ("TARG_DEC", -69.5, "target Dec at mid time of exposure"),
        ("INSTRUME", INSTRUMENT[geom.detector], "instrument used to acquire the data"),
        ("DETECTOR", geom.detector, "name of detector used to acquire the data"),
    ] + ([(key, value, f"name of the {key.lower()} element used") for key, value in mode.elements]
         if mode else [
        ("MODULE", module, "NIRCam module: A or B"),
        ("CHANNEL", channel, "instrument channel"),
        ("FILTER", filt, "name of the filter element used"),
        ("PUPIL", pupil, "name of the pupil element used"),
    ]) + ([("PWCPOS", SOSS_PWCPOS, "[deg] pupil wheel position")]
          if geom.subarray in NIS_SOSS_SUBARRAYS else []) + [
        ("EXP_TYPE", mode.exp_type if mode else "NRC_IMAGE", "type of data in the exposure"),
        ("EXPSTART", start, "UTC exposure start time (MJD)"),
        ("EXPMID", 0.5 * (start + end), "UTC exposure mid time (MJD)"),
        ("EXPEND", end, "UTC exposure end time (MJD)"),
        ("READPATT", ro.readpatt, "readout pattern"),
        ("NOUTPUTS", geom.noutputs, "number of detector outputs used"),
        ("NINTS", ro.nints, "number of integrations in exposure"),
        ("INTSTART", 1, "starting integration number in this segment"),
        ("INTEND", ro.nints, "ending integration number in this segment"),
        ("NGROUPS", ro.ngroups, "number of groups in integration"),
        ("NFRAMES", ro.nframes, "number of frames per group"),
        ("GROUPGAP", ro.groupgap, "number of frames dropped between groups"),
        ("NSAMPLES", 1, "number of A/D samples per pixel"),
        ("TSAMPLE", 10.0, "[us] time between samples"),
        ("TFRAME", ro.tframe, "[s] time between frames"),
        ("TGROUP", ro.tgroup, "[s] time between groups"),
        ("EFFINTTM", ro.effinttm, "[s] effective integration time"),
        ("EFFEXPTM", ro.effinttm * ro.nints, "[s] effective exposure time"),
        ("DURATION", ro.int_duration * ro.nints, "[s] total duration of exposure"),
        ("NRSTSTRT", 1, "number of resets at start of exposure"),
        ("NRESETS", 1, "number of resets between integrations"),
        ("ZEROFRAM", bool(zeroframe), "T if a zero frame was read separately"),
        ("DATAPROB", False, "science telemetry indicated a problem"),
        ("FRMDIVSR", ro.nframes, "divisor applied to frame-averaged groups"),
        ("DRPFRMS1", 0, "number of frames dropped prior to first integration"),
        ("DRPFRMS3", 0, "number of frames dropped between integrations"),
        ("SUBARRAY", geom.subarray, "subarray used"),
        ("SUBSTRT1", geom.xstart, "starting pixel in axis 1 direction"),
        ("SUBSTRT2", geom.ystart, "starting pixel in axis 2 direction"),
        ("SUBSIZE1", geom.nx, "number of pixels in axis 1 direction"),
        ("SUBSIZE2", geom.ny, "number of pixels in axis 2 direction"),
        ("FASTAXIS", geom.fastaxis, "fast readout axis direction"),
        ("SLOWAXIS", geom.slowaxis, "slow readout axis direction"),
        ("APERNAME", apername, "PRD science aperture used"),
        ("HISTORY", f"Simulated by ramp2slope.simulate with seed {seed}."),
    ]


def _sci_cards(ro):
    start = EXPSTART_MJD
    end = start + ro.nints * ro.int_duration / 86400.0
    return [
        ("BUNIT", "DN", "physical units of the array values"),
        ("MJD-BEG", start, "[d] exposure start time in MJD"),
        ("MJD-AVG", 0.5 * (start + end), "[d] exposure mid time in MJD"),
        ("MJD-END", end, "[d] exposure end time in MJD"),
        ("XPOSURE", ro.effinttm * ro.nints, "[s] effective exposure time"),
        ("TELAPSE", ro.int_duration * ro.nints, "[s] total elapsed exposure time"),
    ]


_GROUP_DTYPE = np.dtype([
    ("integration_number", ">i4"), ("group_number", ">i2"), ("end_day", ">i2"),
    ("end_milliseconds", ">i4"), ("end_submilliseconds", ">i2"), ("group_end_time", "S26"),
    ("number_of_columns", ">i2"), ("number_of_rows", ">i2"), ("number_of_gaps", ">i2"),
    ("completion_code_number", ">i2"), ("completion_code_text", "S36"),
    ("bary_end_time", ">f8"), ("helio_end_time", ">f8"),
])

_INT_TIMES_DTYPE = np.dtype([
    ("integration_number", ">i4"), ("int_start_MJD_UTC", ">f8"), ("int_mid_MJD_UTC", ">f8"),
    ("int_end_MJD_UTC", ">f8"), ("int_start_BJD_TDB", ">f8"), ("int_mid_BJD_TDB", ">f8"),
    ("int_end_BJD_TDB", ">f8"),
])

# Offset from UTC to barycentric TDB used for the BJD columns (TT-UTC plus a light-travel time).
_TDB_OFFSET_DAYS = (69.184 + 312.4) / 86400.0


def _time_tables(geom, ro):
    day = 86400.0
    int_start = EXPSTART_MJD + np.arange(ro.nints) * ro.int_duration / day
    int_end = int_start + ro.int_duration / day
    times = np.zeros(ro.nints, dtype=_INT_TIMES_DTYPE)
    times["integration_number"] = np.arange(1, ro.nints + 1)
    times["int_start_MJD_UTC"] = int_start
    times["int_mid_MJD_UTC"] = 0.5 * (int_start + int_end)
    times["int_end_MJD_UTC"] = int_end
    times["int_start_BJD_TDB"] = int_start + _TDB_OFFSET_DAYS
    times["int_mid_BJD_TDB"] = 0.5 * (int_start + int_end) + _TDB_OFFSET_DAYS
    times["int_end_BJD_TDB"] = int_end + _TDB_OFFSET_DAYS

    groups = np.zeros(ro.nints * ro.ngroups, dtype=_GROUP_DTYPE)
    epoch = 51544.0                      # 2000-01-01 (MJD), origin of end_day
    row = 0
    for i in range(ro.nints):
        for g in range(ro.ngroups):
            # one reset frame, then every frame up to the last one of group g
            mjd = int_start[i] + (1 + ro.group_start(g) + ro.nframes) * ro.tframe / day
            since = (mjd - epoch) * day
            whole_days = int(since // day)
            ms = (since - whole_days * day) * 1000.0
            groups[row] = (i + 1, g + 1, whole_days, int(ms), int((ms % 1.0) * 1000.0),
                           _iso(mjd, 6).encode("ascii"), geom.nx, geom.ny, 0, 0,
                           b"COMPLETE", mjd + _TDB_OFFSET_DAYS, mjd + _TDB_OFFSET_DAYS)
            row += 1
    return groups, times


def simulate_exposure(outdir, *, size=None, subarray=None, ngroups=10, nints=1, readpatt="RAPID",
                      seed=0, detector="NRCBLONG", zeroframe=True, cr_rate=5.0, sky=None,
                      dark_nplanes=None, full_frame_refs=True, filter_name=None, pupil="CLEAR",
                      program=1234, observation=1, visit=1, exposure=1, origin=None,
                      frame_time=None):
    """Simulate a raw near-infrared exposure with matching reference files and its truth.

    Parameters
    ----------
    outdir : path
        Output directory (created if needed). Writes ``<root>_uncal.fits``,
        ``<root>_truth.fits`` and ``refs/<root>_<reftype>.fits``.
    size : (ny, nx), optional
        Window size; (2048, 2048) is FULL, anything else a GENERIC window at SUBSTRT 1,1.
    subarray : str, optional
        A named NIRCam subarray (see ``detector.SUBARRAY_NAMES``) at its flight position, or on
        NIS a SOSS stripe, SUBSTRIP256 or SUBSTRIP96 (``detector.NIS_SOSS_SUBARRAYS``): a
        NIS_SOSS exposure with the GR700XD grism and PWCPOS.
        With neither ``size`` nor ``subarray``, the exposure is FULL.
    ngroups, nints, readpatt :
        Readout: any NIRCam read pattern (RAPID, BRIGHT1, BRIGHT2, SHALLOW2, SHALLOW4, MEDIUM2,
        MEDIUM8, DEEP2, DEEP8); see ``detector`` for the other instruments.
    seed : int
        Everything is deterministic in the seed.
    detector : str
        NRCA1..NRCA4, NRCALONG, NRCB1..NRCB4, NRCBLONG; or NRS1, NRS2 (NIRSpec, NRS_MSASPEC),
        NIS (NIRISS, NIS_IMAGE), GUIDER1, GUIDER2 (FGS, FGS_IMAGE): these are stored transposed
        (|FASTAXIS| = 2), take FULL, a ``size`` window or (NIS) a SOSS stripe, and their read
        pattern NRSRAPID, NISRAPID or FGSRAPID. ``size`` is always the stored (rows, columns).
    zeroframe : bool
        Write the ZEROFRAME extension (ZEROFRAM=T).
    cr_rate : float
        Cosmic-ray events per cm^2 per second (about 5 at L2).
    sky : float, optional
        Sky level in DN/s (default 0.3 for the long-wave and 0.1 for the short-wave channel).
    dark_nplanes : int, optional
        Planes of the DARK reference (NFRAMES=1). By default, the exposure's total number of
        frames, capped at 512 MiB of data (at least 2 planes); a shorter dark is extended by
        the pipeline.
    full_frame_refs : bool
        Write 2048 x 2048 references (default). False cuts them to the exposure's subarray.
    filter_name, pupil, program, observation, visit, exposure :
        Metadata (FILTER, PUPIL and the parts of the file name). The default filter is F444W
        for the long-wave detectors and F200W for the short-wave ones.
    origin : (row, column), optional
        1-based stored position (SUBSTRT2, SUBSTRT1) of a ``size`` window (default 1, 1).
    frame_time : float, optional
        TFRAME in seconds instead of the window's own (a striped readout reads fewer rows per
        frame than the window it is cut from; see :mod:`.superstripe`).
    """
    geom = geometry(detector, subarray=subarray, size=size, origin=origin)
    ro = make_readout(readpatt, ngroups, nints, frame_time or geom.frame_time, geom.detector)
    module, channel, default_filter, _ = DETECTOR_INFO[geom.detector]
    filt = str(filter_name or default_filter).upper()
    pupil = str(pupil).upper()
    seed = int(seed)
    if cr_rate < 0:
        raise Ramp2SlopeError("cr_rate must not be negative")
    total_frames = ro.frames_per_int
    if dark_nplanes is None:
        budget = max(2, DARK_BUDGET_BYTES // (4 * geom.ny * geom.nx))
        dark_nplanes = min(total_frames, budget)
    dark_nplanes = int(dark_nplanes)
    if dark_nplanes < 1:
        raise Ramp2SlopeError("dark_nplanes must be at least 1")
    dark_nplanes = max(dark_nplanes, min(2, total_frames))

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    root = _root_name(program, observation, visit, exposure, geom.detector)
    uncal_path = outdir / f"{root}_uncal.fits"
    truth_path = outdir / f"{root}_truth.fits"

    from ..runtime import cache_loading, compile_notice

    compile_notice.install()
    cache_loading.install()
    log.info("simulate: building the detector model (%dx%d, %s)", geom.ny, geom.nx, geom.detector)
    nl = _nonlinearity()
    static = physics.build_static(geom.detector, geom.fastaxis, geom.slowaxis, channel, seed, nl)
    ys, xs = geom.slices

    def cut(full, dtype=np.float32):
        return np.ascontiguousarray(full[ys, xs], dtype=dtype)

    bias = cut(static.bias)
    gain = cut(static.gain)
    scale = cut(static.nl_scale)
    qhard = cut(static.qhard)
    rn_frame = cut(static.rn_frame)
    dark_rate = cut(static.dark_rate)
    threshold = cut(static.sat_ref)

    log.info("simulate: the scene, cosmic rays and readout pattern")
    rate, sources = physics.build_scene(geom, ro, static, seed, sky=sky)
    hits = physics.build_cosmic_rays(geom, ro, static, seed, rate_per_cm2_s=cr_rate)
    pattern = physics.build_pattern(geom, ro, seed, geom.detector)

    # electrons per second
    flux = (rate.astype(np.float64) + dark_rate) * gain
    rng = physics.substream(seed, physics.STREAM_NOISE, geom.detector)
    ny, nx = geom.ny, geom.nx
    nfr = ro.nframes
    wvar = physics.intra_group_variance(nfr)
    table = nl.table.astype(np.float64)
    inv_step = float(nl.inv_step)
    dummy = np.zeros((1, 1), dtype=np.float32)

    satgroup = np.full((ro.nints, ny, nx), -1, dtype=np.int16)
    zero = np.empty((ro.nints, ny, nx), dtype=np.uint16) if zeroframe else None
    out = np.empty((ny, nx), dtype=np.uint16)
    charge_cr = np.empty((ny, nx), dtype=np.float32)
    acc = np.empty((ny, nx), dtype=np.float32)
    within = np.empty((ny, nx), dtype=np.float32) if nfr > 1 else dummy

    shape = (ro.nints, ro.ngroups, ny, nx)
    filename = uncal_path.name
    with open(uncal_path, "wb") as handle:
        fitsio.write_header(handle, fitsio.primary_header(
            _uncal_cards(root, geom, ro, filename, program, observation, visit, exposure, filt,
                         pupil, zeroframe, seed)))
        writer = fitsio.ImageWriter(handle, shape, np.uint16, "SCI", _sci_cards(ro))
        said = time.perf_counter()
        for i in range(ro.nints):
            mine = hits[hits["integration"] == i] if hits.size else hits
            mine_electrons = (mine["amplitude"].astype(np.float64) * gain[mine["y"], mine["x"]]
                              if mine.size else np.zeros(0))
            added = 0                                  # hits of this integration already in C
            charge_cr[...] = 0.0
            _kernels.poisson_fill(acc, flux, ro.tframe, rng.random((ny, nx)), False)
            for g in range(ro.ngroups):
                first = ro.group_start(g)
                # cosmic rays up to the group's first frame become part of the accumulated charge
                upto = int(np.searchsorted(mine["frame"], first, side="right"))
                if upto > added:
                    np.add.at(charge_cr, (mine["y"][added:upto], mine["x"][added:upto]),
                              mine_electrons[added:upto].astype(np.float32))
                    added = upto
                # ... the ones arriving between the group's frames change only some of them
                last = int(np.searchsorted(mine["frame"], first + nfr - 1, side="right"))
                if nfr > 1:
                    _kernels.poisson_fill(within, flux, (nfr - 1) * ro.tframe,
                                          rng.random((ny, nx)), False)
                    spread = rng.standard_normal((ny, nx), dtype=np.float32)
                    spread *= np.sqrt(within * np.float32(wvar))
                else:
                    spread = dummy
                z = rng.standard_normal((ny, nx), dtype=np.float32)
                if g == 0 and zeroframe and nfr > 1:
                    z0 = rng.standard_normal((ny, nx), dtype=np.float32)
                    noise = (z0 + np.float32(np.sqrt(nfr - 1.0)) * z) * (rn_frame / np.float32(nfr))
                else:
                    noise = z * (rn_frame / np.float32(np.sqrt(nfr)))
                _kernels.render_group(out, satgroup[i], threshold, g, acc, within, charge_cr,
                                      spread, noise, gain, scale, qhard, bias, pattern.row[i, g],
                                      pattern.col[i, g], table, inv_step, nfr)
                if last > added:
                    sel = mine[added:last]
                    order = np.lexsort((sel["x"], sel["y"]))
                    sel = sel[order]
                    _kernels.rerender_pixels(
                        out, satgroup[i], threshold, g,
                        sel["y"].astype(np.int64), sel["x"].astype(np.int64),
                        (sel["frame"] - first).astype(np.int64),
                        mine_electrons[added:last][order], acc, within, charge_cr, spread,
                        noise, gain, scale, qhard, bias, pattern.row[i, g], pattern.col[i, g],
                        table, inv_step, nfr)
                writer.write(out)
                if time.perf_counter() - said >= PROGRESS_EVERY_S:
                    log.info("simulate: integration %d/%d, group %d/%d written", i + 1, ro.nints,
                             g + 1, ro.ngroups)
                    said = time.perf_counter()
                if g == 0 and zeroframe:
                    if nfr == 1:
                        zero[i] = out
                    else:
                        _kernels.render_group(zero[i], satgroup[i], threshold, -1, acc, dummy,
                                              charge_cr, dummy, z0 * rn_frame, gain, scale,
                                              qhard, bias, pattern.row0[i], pattern.col0[i],
                                              table, inv_step, 1)
                if g + 1 < ro.ngroups:
                    if nfr > 1:
                        acc += within
                    _kernels.poisson_fill(acc, flux, (ro.groupgap + 1) * ro.tframe,
                                          rng.random((ny, nx)), True)
        writer.close()
        if zeroframe:
            fitsio.write_image(handle, zero, "ZEROFRAME", [("BUNIT", "DN")])
        group_table, int_times = _time_tables(geom, ro)
        fitsio.write_table(handle, group_table, "GROUP")
        fitsio.write_table(handle, int_times, "INT_TIMES")
        fitsio.write_asdf_stub(handle)

    log.info("simulate: writing the reference files")
    refs = write_references(outdir / "refs", root, static, geom, ro, nl, seed, dark_nplanes,
                            full_frame=full_frame_refs)

    params = {
        "seed": seed, "detector": geom.detector, "subarray": geom.subarray,
        "xstart": geom.xstart, "ystart": geom.ystart, "nx": nx, "ny": ny,
        "noutputs": geom.noutputs, "fastaxis": geom.fastaxis, "slowaxis": geom.slowaxis,
        "readpatt": ro.readpatt, "nints": ro.nints, "ngroups": ro.ngroups, "nframes": nfr,
        "groupgap": ro.groupgap, "tframe": ro.tframe, "tgroup": ro.tgroup,
        "sky": float(sky if sky is not None else (0.3 if channel == "LONG" else 0.1)),
        "cr_rate": float(cr_rate), "n_cr_events": int(np.unique(hits["event"]).size),
        "n_cr_hits": int(hits.size), "n_sources": int(sources.size),
        "dark_nplanes": dark_nplanes, "zeroframe": bool(zeroframe),
    }
    for k, coeff in enumerate(nl.COEFFS):
        params[f"nl_coeff{k}"] = float(coeff)
    write_truth(truth_path, rate=rate, dark_rate=dark_rate, satgroup=satgroup,
                badpix=cut(static.truth_flags, np.uint32), pattern=pattern, cosmic_rays=hits,
                sources=sources, params=params)
    if geom.detector in TRANSPOSED:
        # modelled in the untransposed frame; the detector stores the transpose
        transpose_products([uncal_path, truth_path, *refs.values()], TRANSPOSED[geom.detector][1])
        shape = shape[:2] + shape[:1:-1]
    return SimulationResult(uncal=uncal_path, refs=refs, truth=truth_path, root=root, shape=shape)
