"""Synthetic MIRI imager exposures (full frame and subarrays, e.g. an LRS slitless time series),
their reference files and the injected truth.

The MIRI detectors are Si:As arrays of 1024 rows x 1032 columns read through four amplifiers
that interleave by column (column ``x % 4``); the four columns on each side are reference
columns, which see the electronics but no light. Unlike the near-infrared detectors there is no
superbias: MIRI's stage 1 removes the reset anomaly (RESET), a dark of per-integration planes
(DARK, 4-D), the drifts the reference columns measure (refpix), and flags the groups the
previous integration's reset leaves unsettled (RSCD) and the first and last groups (firstframe,
lastframe).

The raw value of a pixel in integration ``i`` and group ``g`` (0-based) is::

    raw = bias + reset[i', g] + rscd(i, g) + drift[i, g, amplifier, row parity]
          + nonlin(Q) + read noise

with ``Q`` the accumulated linear DN (light and cosmic-ray charge, Poisson noise, plus the
DARK's plane ``dark[i'', g]``), ``nonlin(s) = s - k s**2`` and ``i'``, ``i''`` the reference
integrations used for ``i`` (the last one for later integrations). The LINEARITY
coefficients ``f(m) = m + k (m - bias)**2`` undo ``nonlin`` to second order; ``reset`` and
``dark`` are what the RESET and DARK references hold, so those corrections are exact.
Cosmic rays hit single pixels or small clusters; showers are faint disks (a few DN) that
appear at one group, the events MIRI's jump step flags with ``find_showers``.

Outputs of :func:`simulate_miri_exposure`: ``<root>_uncal.fits`` (SCI uint16, REFOUT, GROUP
and INT_TIMES tables), ``refs/<root>_<reftype>.fits`` for mask, saturation, linearity, dark,
reset, rscd, gain and readnoise, and ``<root>_truth.fits`` (:mod:`.truth` layout; RATE in
linear DN/s, SHOWERS as an extra table).
"""
from __future__ import annotations

import datetime as _dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from astropy.io import fits

from ..datamodels import dqflags
from ..errors import Ramp2SlopeError
from . import fitsio
from .exposure import EXPSTART_MJD, SimulationResult, _GROUP_DTYPE, _INT_TIMES_DTYPE, _iso
from .truth import write_truth

log = logging.getLogger("ramp2slope")

P = dqflags.pixel

#: MIRI imager subarrays: (SUBSTRT1, SUBSTRT2, SUBSIZE1, SUBSIZE2, TFRAME of the FAST readout).
MIRI_SUBARRAYS = {
    "FULL": (1, 1, 1032, 1024, 2.77504),
    "BRIGHTSKY": (457, 51, 512, 512, 0.86528),
    "SUB256": (413, 51, 256, 256, 0.29952),
    "SUB128": (1, 889, 136, 128, 0.11904),
    "SUB64": (1, 779, 72, 64, 0.08500),
    "SLITLESSPRISM": (1, 529, 72, 416, 0.15904),
}

NX_FULL, NY_FULL = 1032, 1024
NREFCOLS = 4          # reference columns on each side of the full frame
GAIN = 5.5            # e-/DN
READNOISE_CDS = 9.0   # DN, of a difference of two frames
BIAS_LEVEL = 11000.0
NONLIN_K = 1.5e-6     # 1/DN: 6 % at 40000 DN
SATURATION_DN = 58000.0
RESET_AMPLITUDE = 60.0    # DN of the reset anomaly in the first group of the first integration
RSCD_AMPLITUDE = 25.0     # DN of the RSCD transient in the first group of later integrations
RSCD_SKIP = (1, 3)        # groups the RSCD table flags in integration 1, and in 2 and later
DARK_RATE = 0.3           # DN/s, plus a transient in the first integration
PROGRESS_EVERY_S = 10.0


@dataclass(frozen=True)
class MiriGeometry:
    subarray: str
    xstart: int
    ystart: int
    nx: int
    ny: int
    tframe: float

    @property
    def slices(self):
        return (slice(self.ystart - 1, self.ystart - 1 + self.ny),
                slice(self.xstart - 1, self.xstart - 1 + self.nx))

    @property
    def reference_columns(self):
        """Columns of this window that are reference columns (a bool mask of length nx)."""
        x = np.arange(self.xstart - 1, self.xstart - 1 + self.nx)
        return (x < NREFCOLS) | (x >= NX_FULL - NREFCOLS)


def miri_geometry(subarray="FULL"):
    name = str(subarray).upper()
    if name not in MIRI_SUBARRAYS:
        raise Ramp2SlopeError(f"unknown MIRI subarray {subarray!r}; one of {', '.join(MIRI_SUBARRAYS)}")
    return MiriGeometry(name, *MIRI_SUBARRAYS[name])


def _exp_type(geom):
    return "MIR_LRS-SLITLESS" if geom.subarray == "SLITLESSPRISM" else "MIR_IMAGE"


def _uncal_cards(root, geom, nints, ngroups, tgroup, filename, seed, readpatt):
    frames = ngroups
    int_duration = frames * geom.tframe
    start = EXPSTART_MJD
    end = start + nints * int_duration / 86400.0
    start_iso, end_iso = _iso(start), _iso(end)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    tso = geom.subarray == "SLITLESSPRISM"
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
        ("OBS_ID", "V01234001001P0000000001101", "programmatic observation identifier"),
        ("VISIT_ID", "01234001001", "visit identifier"),
        ("PROGRAM", "01234", "program number"),
        ("OBSERVTN", "001", "observation number"),
        ("VISIT", "001", "visit number"),
        ("VISITGRP", "01", "visit group identifier"),
        ("SEQ_ID", "1", "parallel sequence identifier"),
        ("ACT_ID", "01", "activity identifier"),
        ("EXPOSURE", "00001", "exposure request number"),
        ("TEMPLATE", "MIRI Low Resolution Spectroscopy" if tso else "MIRI Imaging",
         "proposal instruction template used"),
        ("TSOVISIT", tso, "time series observation visit indicator"),
        ("TARGPROP", "SIMFIELD", "proposer's name for the target"),
        ("TARGNAME", "SIMFIELD", "standard astronomical catalog name for target"),
        ("TARG_RA", 80.0, "target RA at mid time of exposure"),
        ("TARG_DEC", -69.5, "target Dec at mid time of exposure"),
        ("INSTRUME", "MIRI", "instrument used to acquire the data"),
        ("DETECTOR", "MIRIMAGE", "name of detector used to acquire the data"),
        ("FILTER", "P750L" if tso else "F770W", "name of the filter element used"),
        ("EXP_TYPE", _exp_type(geom), "type of data in the exposure"),
        ("EXPSTART", start, "UTC exposure start time (MJD)"),
        ("EXPMID", 0.5 * (start + end), "UTC exposure mid time (MJD)"),
        ("EXPEND", end, "UTC exposure end time (MJD)"),
        ("READPATT", readpatt, "readout pattern"),
        ("NOUTPUTS", 4, "number of detector outputs used"),
        ("NINTS", nints, "number of integrations in exposure"),
        ("INTSTART", 1, "starting integration number in this segment"),
        ("INTEND", nints, "ending integration number in this segment"),
        ("NGROUPS", ngroups, "number of groups in integration"),
        ("NFRAMES", 1, "number of frames per group"),
        ("GROUPGAP", 0, "number of frames dropped between groups"),
        ("NSAMPLES", 1, "number of A/D samples per pixel"),
        ("TSAMPLE", 10.0, "[us] time between samples"),
        ("TFRAME", geom.tframe, "[s] time between frames"),
        ("TGROUP", tgroup, "[s] time between groups"),
        ("EFFINTTM", tgroup * (ngroups - 1), "[s] effective integration time"),
        ("EFFEXPTM", tgroup * (ngroups - 1) * nints, "[s] effective exposure time"),
        ("DURATION", int_duration * nints, "[s] total duration of exposure"),
        ("NRSTSTRT", 1, "number of resets at start of exposure"),
        ("NRESETS", 0 if readpatt == "FAST" else 1, "number of resets between integrations"),
        ("ZEROFRAM", False, "T if a zero frame was read separately"),
        ("DATAPROB", False, "science telemetry indicated a problem"),
        ("FRMDIVSR", 1, "divisor applied to frame-averaged groups"),
        ("DRPFRMS1", 0, "number of frames dropped prior to first integration"),
        ("DRPFRMS3", 0, "number of frames dropped between integrations"),
        ("SUBARRAY", geom.subarray, "subarray used"),
        ("SUBSTRT1", geom.xstart, "starting pixel in axis 1 direction"),
        ("SUBSTRT2", geom.ystart, "starting pixel in axis 2 direction"),
        ("SUBSIZE1", geom.nx, "number of pixels in axis 1 direction"),
        ("SUBSIZE2", geom.ny, "number of pixels in axis 2 direction"),
        ("FASTAXIS", 1, "fast readout axis direction"),
        ("SLOWAXIS", 2, "slow readout axis direction"),
        ("APERNAME", f"MIRIM_{'SLITLESSPRISM' if tso else geom.subarray}", "PRD science aperture used"),
        ("HISTORY", f"Simulated by ramp2slope.simulate.miri with seed {seed}."),
    ]


def _time_tables(nints, ngroups, tgroup, tframe, geom):
    groups = np.zeros(nints * ngroups, dtype=_GROUP_DTYPE)
    times = np.zeros(nints, dtype=_INT_TIMES_DTYPE)
    int_duration = ngroups * tframe
    tdb = (69.184 + 312.4) / 86400.0
    row = 0
    for i in range(nints):
        t0 = EXPSTART_MJD + i * int_duration / 86400.0
        t1 = t0 + int_duration / 86400.0
        times[i] = (i + 1, t0, 0.5 * (t0 + t1), t1, t0 + tdb, 0.5 * (t0 + t1) + tdb, t1 + tdb)
        for g in range(ngroups):
            end = t0 + (g + 1) * tgroup / 86400.0
            groups[row] = (i + 1, g + 1, 0, 0, 0, _iso(end).encode(), geom.nx, geom.ny, 0, 0,
                           b"COMPLETE", end + tdb, end + tdb)
            row += 1
    return groups, times


class _Detector:
    """The static detector of one simulation, cut to the exposure's window."""

    def __init__(self, geom, seed):
        rng = np.random.default_rng([seed, 101])
        ny, nx = NY_FULL, NX_FULL
        full = (ny, nx)
        self.bias = (BIAS_LEVEL + 800.0 * rng.standard_normal(full)).astype(np.float32)
        self.gain = np.full(full, GAIN, np.float32) * (1 + 0.02 * rng.standard_normal(full)).astype(np.float32)
        self.readnoise = (READNOISE_CDS * (1 + 0.05 * rng.standard_normal(full))).astype(np.float32)
        self.saturation = np.full(full, SATURATION_DN, np.float32)
        self.nonlin_k = np.full(full, NONLIN_K, np.float32) * (1 + 0.05 * rng.standard_normal(full)).astype(np.float32)
        mask = np.zeros(full, np.uint32)
        mask[:, :NREFCOLS] = P["REFERENCE_PIXEL"]
        mask[:, -NREFCOLS:] = P["REFERENCE_PIXEL"]
        n_bad = ny * nx // 2000
        yy = rng.integers(0, ny, n_bad)
        xx = rng.integers(NREFCOLS, nx - NREFCOLS, n_bad)
        mask[yy[: n_bad // 2], xx[: n_bad // 2]] |= P["DEAD"] | P["DO_NOT_USE"]
        mask[yy[n_bad // 2:], xx[n_bad // 2:]] |= P["HOT"]
        self.mask = mask
        # the dark's spatial structure and the reset anomaly's pixel-to-pixel factor
        self.dark_factor = (1 + 0.2 * rng.standard_normal(full)).astype(np.float32)
        self.reset_factor = (1 + 0.1 * rng.standard_normal(full)).astype(np.float32)
        ys, xs = geom.slices
        for name in ("bias", "gain", "readnoise", "saturation", "nonlin_k", "mask", "dark_factor",
                     "reset_factor"):
            setattr(self, f"{name}_cut", np.ascontiguousarray(getattr(self, name)[ys, xs]))


def _scene(geom, seed, tso):
    """Light rate in linear DN/s on the window: a sky, point sources (a few saturating), or for
    the slitless time series a dispersed trace with a transit-like dip."""
    rng = np.random.default_rng([seed, 202])
    ny, nx = geom.ny, geom.nx
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    rate = np.full((ny, nx), 8.0 if not tso else 3.0, np.float32)
    sources = []
    if tso:
        centre = nx / 2 + 0.5
        profile = np.exp(-0.5 * ((xx - centre) / 1.6) ** 2)
        along = np.clip((yy - 40) / (ny - 80), 0, 1) * np.clip((ny - 20 - yy) / 40, 0, 1)
        rate += (1500.0 * profile * along).astype(np.float32)
        sources.append((centre + geom.xstart - 1, ny / 2 + geom.ystart - 1, 1.6, 1500.0, 0))
    else:
        n = max(3, ny * nx // 6000)
        for k in range(n):
            x0, y0 = rng.uniform(8, nx - 8), rng.uniform(8, ny - 8)
            sigma = rng.uniform(1.0, 2.2)
            peak = float(10 ** rng.uniform(1.0, 3.0))
            saturating = k < max(1, n // 20)
            if saturating:
                peak = 60000.0 / max(geom.tframe, 1e-3) / 4
            box = (slice(max(0, int(y0) - 12), int(y0) + 13), slice(max(0, int(x0) - 12), int(x0) + 13))
            rate[box] += (peak * np.exp(-0.5 * ((yy[box] - y0) ** 2 + (xx[box] - x0) ** 2) / sigma ** 2)
                          ).astype(np.float32)
            sources.append((x0 + geom.xstart - 1, y0 + geom.ystart - 1, sigma, peak, int(saturating)))
    rate[:, geom.reference_columns] = 0.0
    table = np.array(sources, dtype=[("x", ">f8"), ("y", ">f8"), ("sigma", ">f8"),
                                     ("peak_rate", ">f8"), ("saturating", ">i2")])
    return rate, table


def _cosmic_rays(geom, nints, ngroups, seed, rate_per_cm2_s):
    """Point hits: (integration, group, y, x, amplitude in linear DN)."""
    rng = np.random.default_rng([seed, 303])
    area_cm2 = geom.ny * geom.nx * (25e-4) ** 2
    expected = rate_per_cm2_s * area_cm2 * ngroups * geom.tframe
    rows = []
    for i in range(nints):
        n = rng.poisson(expected)
        for _ in range(n):
            g = int(rng.integers(1, ngroups)) if ngroups > 1 else 0
            y, x = int(rng.integers(0, geom.ny)), int(rng.integers(0, geom.nx))
            amp = float(10 ** rng.uniform(2.0, 3.3))
            rows.append((i, g, g, y, x, amp, len(rows)))
            if rng.random() < 0.3 and x + 1 < geom.nx:
                rows.append((i, g, g, y, x + 1, 0.3 * amp, len(rows) - 1))
    return np.array(rows, dtype=[("integration", ">i4"), ("group", ">i4"), ("frame", ">i4"),
                                 ("y", ">i4"), ("x", ">i4"), ("amplitude", ">f4"), ("event", ">i4")])


def _showers(geom, nints, ngroups, seed, n_showers):
    """Faint extended events: (integration, group, y, x, radius, amplitude in DN)."""
    rng = np.random.default_rng([seed, 404])
    rows = []
    if ngroups < 4:
        return np.zeros(0, dtype=[("integration", ">i4"), ("group", ">i4"), ("y", ">f4"),
                                  ("x", ">f4"), ("radius", ">f4"), ("amplitude", ">f4")])
    for _ in range(n_showers):
        rows.append((int(rng.integers(0, nints)), int(rng.integers(2, ngroups - 1)),
                     float(rng.uniform(0, geom.ny)), float(rng.uniform(0, geom.nx)),
                     float(rng.uniform(15, 40)), float(rng.uniform(4, 10))))
    return np.array(rows, dtype=[("integration", ">i4"), ("group", ">i4"), ("y", ">f4"),
                                 ("x", ">f4"), ("radius", ">f4"), ("amplitude", ">f4")])


def _reset_planes(det, nints_ref, ngroups):
    """The RESET reference: the anomaly per integration and group (DN, raw space)."""
    g = np.arange(ngroups, dtype=np.float32)
    planes = np.empty((nints_ref, ngroups) + det.bias_cut.shape, np.float32)
    for i in range(nints_ref):
        amplitude = RESET_AMPLITUDE * (1.0 if i == 0 else 0.6)
        for k in range(ngroups):
            planes[i, k] = amplitude * np.exp(-g[k] / 3.0) * det.reset_factor_cut
    return planes


def _dark_planes(det, nints_ref, ngroups, tgroup):
    """The DARK reference: accumulated dark signal per integration and group (linear DN)."""
    planes = np.empty((nints_ref, ngroups) + det.bias_cut.shape, np.float32)
    for i in range(nints_ref):
        for k in range(ngroups):
            t = (k + 1) * tgroup
            transient = (4.0 if i == 0 else 1.0) * (1 - np.exp(-(k + 1) / 4.0))
            planes[i, k] = (DARK_RATE * t + transient) * det.dark_factor_cut
    return planes


def _drifts(rng, nints, ngroups):
    """Per integration, group, amplifier and row parity: the offsets refpix measures in the
    reference columns (DN)."""
    slow = np.cumsum(rng.normal(0, 0.05, (nints, ngroups, 4, 1)), axis=1)
    parity = rng.normal(0, 2.0, (nints, 1, 4, 2))
    return (slow + parity).astype(np.float32)   # (nints, ngroups, amplifier, parity)


#: The EMI pick-up simulated (one of the frequencies MIRI's EMICORR reference lists).
EMI_NAME, EMI_HZ = "Hz218a", 218.52
EMI_BINS = 500    # samples of one period in the EMICORR reference's waveform


def _emi_ticks(geom, nints, ngroups, readpatt):
    """Pixel-clock ticks (10 us) at which each quad column of each row is read, per integration
    and group: ``start[i, g] + row * rowclocks + quad * nsamples`` (the four amplifiers of a
    column quad are read at the same tick)."""
    from ..emicorr.emicorr import onthefly_clocks

    rowclocks, frameclocks = onthefly_clocks(geom.subarray, readpatt)
    frame_ticks = geom.ny * rowclocks + (1024 - geom.ny) * 7   # padded to 1024 rows
    int_ticks = ngroups * frame_ticks + (frameclocks if readpatt.endswith("R1") else 0)
    start = (np.arange(nints)[:, None] * int_ticks + np.arange(ngroups)[None, :] * frame_ticks)
    within = (np.arange(geom.ny)[:, None] * rowclocks
              + np.arange(geom.nx // 4)[None, :]).astype(np.int64)   # FAST: 1 sample per pixel
    return start.astype(np.int64), within, rowclocks, frameclocks


def simulate_miri_exposure(outdir, *, subarray="FULL", ngroups=10, nints=1, readpatt="FAST",
                           seed=0, cr_rate=5.0, n_showers=None, dark_nints=2, reset_nints=2,
                           emi_amplitude=3.0, program=1234, observation=1, visit=1, exposure=1):
    """Simulate a raw MIRI imager exposure (detector MIRIMAGE) with its references and truth.

    Parameters
    ----------
    subarray : str
        FULL, BRIGHTSKY, SUB256, SUB128, SUB64 or SLITLESSPRISM (the LRS slitless time-series
        window: EXP_TYPE MIR_LRS-SLITLESS, TSOVISIT=T, a spectral trace as the scene).
    ngroups, nints : int
        Readout (one frame per group, as MIRI's FAST and SLOW patterns).
    readpatt : str
        FAST or FASTR1 (same timing here).
    cr_rate : float
        Cosmic-ray events per cm^2 per second.
    n_showers : int, optional
        Faint extended showers over the exposure (default: about one per 20 integration-groups
        on a full frame, scaled by area, at least 1 when there are enough groups).
    dark_nints, reset_nints : int
        Integrations in the DARK and RESET references (later integrations use the last one).
    emi_amplitude : float
        DN of the EMI sine wave at ``EMI_HZ`` on the pixel read clock (0 for none); the
        EMICORR reference (``refs/<root>_emicorr.asdf``, for the emicorr step, which is off by
        default) lists it.
    """
    geom = miri_geometry(subarray)
    readpatt = str(readpatt).upper()
    if readpatt not in ("FAST", "FASTR1"):
        raise Ramp2SlopeError(f"simulate: MIRI read pattern {readpatt!r} is not simulated (FAST, FASTR1)")
    if ngroups < 1 or nints < 1:
        raise Ramp2SlopeError("simulate: ngroups and nints must be at least 1")
    seed = int(seed)
    tgroup = geom.tframe
    tso = geom.subarray == "SLITLESSPRISM"
    outdir = Path(outdir)
    (outdir / "refs").mkdir(parents=True, exist_ok=True)
    root = f"jw{int(program):05d}{int(observation):03d}{int(visit):03d}_01101_{int(exposure):05d}_mirimage"
    uncal_path = outdir / f"{root}_uncal.fits"
    truth_path = outdir / f"{root}_truth.fits"

    det = _Detector(geom, seed)
    rate, sources = _scene(geom, seed, tso)
    hits = _cosmic_rays(geom, nints, ngroups, seed, cr_rate)
    if n_showers is None:
        n_showers = max(1, round(nints * ngroups * geom.ny * geom.nx / (20 * NX_FULL * NY_FULL)))
    showers = _showers(geom, nints, ngroups, seed, n_showers)
    rng = np.random.default_rng([seed, 505])
    drifts = _drifts(rng, nints, ngroups)
    reset = _reset_planes(det, reset_nints, ngroups)
    dark = _dark_planes(det, dark_nints, ngroups, tgroup)

    ny, nx = geom.ny, geom.nx
    amplifier = (np.arange(geom.xstart - 1, geom.xstart - 1 + nx) % 4)
    parity = (np.arange(geom.ystart - 1, geom.ystart - 1 + ny) % 2)
    bias, gain, k = det.bias_cut, det.gain_cut, det.nonlin_k_cut
    frame_noise = det.readnoise_cut / np.float32(np.sqrt(2.0))
    electrons_per_group = np.maximum(rate, 0) * gain * np.float32(tgroup)
    sat_threshold = det.saturation_cut
    satgroup = np.full((nints, ny, nx), -1, np.int16)
    yy, xx = np.mgrid[0:ny, 0:nx]
    shape = (nints, ngroups, ny, nx)
    refout_shape = (nints, ngroups, max(ny // 4, 1), nx)
    out = np.empty((ny, nx), np.uint16)
    emi_start, emi_within, rowclocks, frameclocks = _emi_ticks(geom, nints, ngroups, readpatt)
    emi_phase = float(np.random.default_rng([seed, 606]).uniform(0, 1))

    with open(uncal_path, "wb") as handle:
        fitsio.write_header(handle, fitsio.primary_header(
            _uncal_cards(root, geom, nints, ngroups, tgroup, uncal_path.name, seed, readpatt)))
        writer = fitsio.ImageWriter(handle, shape, np.uint16, "SCI", [("BUNIT", "DN")])
        said = time.perf_counter()
        for i in range(nints):
            q = np.zeros((ny, nx), np.float64)     # accumulated linear DN from light and hits
            mine = hits[hits["integration"] == i]
            mine_showers = showers[showers["integration"] == i]
            dark_plane = dark[min(i, dark_nints - 1)]
            reset_plane = reset[min(i, reset_nints - 1)]
            for g in range(ngroups):
                q += rng.poisson(electrons_per_group) / gain
                now = mine[mine["group"] == g]
                if now.size:
                    np.add.at(q, (now["y"], now["x"]), now["amplitude"].astype(np.float64))
                for shower in mine_showers[mine_showers["group"] == g]:
                    inside = (yy - shower["y"]) ** 2 + (xx - shower["x"]) ** 2 < shower["radius"] ** 2
                    q[inside] += shower["amplitude"]
                s = q + dark_plane[g]
                s[:, geom.reference_columns] = 0.0
                measured = s - k * s * s
                value = bias + reset_plane[g] + measured
                if i > 0:
                    value = value + RSCD_AMPLITUDE * np.exp(-g / 1.5)
                value = value + drifts[i, g][amplifier[None, :], parity[:, None]]
                value = value + frame_noise * rng.standard_normal((ny, nx), dtype=np.float32)
                if emi_amplitude:
                    seconds = (emi_start[i, g] + emi_within) * 1e-5
                    wave = emi_amplitude * np.sin(2 * np.pi * (EMI_HZ * seconds + emi_phase))
                    value = value + np.repeat(wave, 4, axis=1)[:, :nx].astype(np.float32)
                reached = (value >= sat_threshold) & (satgroup[i] < 0)
                satgroup[i][reached] = g
                np.clip(np.rint(value), 0, 65535, out=value)
                out[...] = value.astype(np.uint16)
                writer.write(out)
                if time.perf_counter() - said >= PROGRESS_EVERY_S:
                    log.info("simulate: integration %d/%d, group %d/%d written", i + 1, nints, g + 1, ngroups)
                    said = time.perf_counter()
        writer.close()
        # the reference output: a fifth output reading no pixels, the amplifiers' drifts and noise
        refout = np.empty(refout_shape[2:], np.float32)
        ref_writer = fitsio.ImageWriter(handle, refout_shape, np.uint16, "REFOUT", [("BUNIT", "DN")])
        for i in range(nints):
            for g in range(ngroups):
                refout[...] = BIAS_LEVEL + drifts[i, g].mean() + 6.0 * rng.standard_normal(refout.shape)
                ref_writer.write(np.clip(np.rint(refout), 0, 65535).astype(np.uint16))
        ref_writer.close()
        groups, times = _time_tables(nints, ngroups, tgroup, geom.tframe, geom)
        fitsio.write_table(handle, groups, "GROUP")
        fitsio.write_table(handle, times, "INT_TIMES")
        fitsio.write_asdf_stub(handle)

    refs = _write_references(outdir / "refs", root, geom, det, dark, reset, ngroups, readpatt, seed)
    refs["emicorr"] = _write_emicorr(outdir / "refs" / f"{root}_emicorr.asdf", geom, rowclocks,
                                     frameclocks, emi_amplitude)

    badpix = det.mask_cut.copy()
    params = {"seed": seed, "detector": "MIRIMAGE", "subarray": geom.subarray,
              "xstart": geom.xstart, "ystart": geom.ystart, "nx": nx, "ny": ny, "noutputs": 4,
              "fastaxis": 1, "slowaxis": 2, "readpatt": readpatt, "nints": nints,
              "ngroups": ngroups, "nframes": 1, "groupgap": 0, "tframe": geom.tframe,
              "tgroup": tgroup, "sky": 8.0, "cr_rate": float(cr_rate),
              "n_cr_events": int(np.unique(hits["event"]).size) if hits.size else 0,
              "n_cr_hits": int(hits.size), "n_sources": int(sources.size),
              "dark_nplanes": int(dark_nints), "zeroframe": False}
    pattern = SimpleNamespace(row=np.zeros((nints, ngroups, ny), np.float32),
                              col=np.zeros((nints, ngroups, nx), np.float32),
                              row0=np.zeros((nints, ny), np.float32),
                              col0=np.zeros((nints, nx), np.float32))
    write_truth(truth_path, rate=rate, dark_rate=np.full((ny, nx), DARK_RATE, np.float32),
                satgroup=satgroup, badpix=badpix, pattern=pattern, cosmic_rays=hits,
                sources=sources, params=params)
    with fits.open(truth_path, mode="append") as hdul:
        hdul.append(fits.BinTableHDU(showers, name="SHOWERS"))
    return SimulationResult(uncal=uncal_path, refs=refs, truth=truth_path, root=root, shape=shape)


def _write_emicorr(path, geom, rowclocks, frameclocks, amplitude):
    """The EMICORR reference (ASDF, EmiModel layout): the simulated frequency with one period of
    its waveform, for this subarray's clocks and both read speeds."""
    from ..emicorr.reference import write_emicorr

    wave = np.sin(2 * np.pi * np.arange(EMI_BINS) / EMI_BINS) * max(float(amplitude), 1.0)
    cases = {geom.subarray: {"rowclocks": int(rowclocks), "frameclocks": int(frameclocks),
                             "freqs": {"FAST": [EMI_NAME], "SLOW": {"MIRIMAGE": [EMI_NAME]}}}}
    write_emicorr(str(path), {EMI_NAME: (EMI_HZ, wave.astype(np.float32))}, cases,
                  "2022-01-01T00:00:00")
    return path


def _ref_header(reftype, datamodel, geom, readpatt="ANY", extra=()):
    header = fits.Header()
    for key, value, comment in [
        ("TELESCOP", "JWST", "telescope used to acquire the data"),
        ("INSTRUME", "MIRI", "instrument used to acquire the data"),
        ("DETECTOR", "MIRIMAGE", "name of detector used to acquire the data"),
        ("REFTYPE", reftype.upper(), "type of reference file"),
        ("DATAMODL", datamodel, "type of data model"),
        ("DESCRIP", f"Simulated MIRI {reftype.upper()} reference", "description"),
        ("AUTHOR", "ramp2slope.simulate", "author of the reference file"),
        ("PEDIGREE", "SIMULATION", "pedigree of the reference file"),
        ("USEAFTER", "2022-01-01T00:00:00", "use after date of the reference file"),
        ("READPATT", readpatt, "readout pattern"),
        ("SUBARRAY", geom.subarray, "subarray used"),
        ("SUBSTRT1", geom.xstart, "starting pixel in axis 1 direction"),
        ("SUBSTRT2", geom.ystart, "starting pixel in axis 2 direction"),
        ("SUBSIZE1", geom.nx, "number of pixels in axis 1 direction"),
        ("SUBSIZE2", geom.ny, "number of pixels in axis 2 direction"),
        ("FASTAXIS", 1, "fast readout axis direction"),
        ("SLOWAXIS", 2, "slow readout axis direction"),
    ] + list(extra):
        header[key] = (value, comment)
    return header


def _dq_def(*names):
    records = fitsio.dq_def_table([(P[name], name, name.replace("_", " ").lower()) for name in names])
    return fits.BinTableHDU(records, name="DQ_DEF")


def _write_references(folder, root, geom, det, dark, reset, ngroups, readpatt, seed):
    """Full-frame MASK, SATURATION, LINEARITY, GAIN, READNOISE (cut out by the pipeline), and
    the DARK and RESET of the exposure's own subarray and read pattern (as CRDS has them), and
    the RSCD table."""
    full = miri_geometry("FULL")
    paths = {}

    def write(reftype, hdus, header):
        path = folder / f"{root}_{reftype}.fits"
        fits.HDUList([fits.PrimaryHDU(header=header)] + hdus).writeto(path, overwrite=True)
        paths[reftype] = path

    write("mask", [fits.ImageHDU(det.mask, name="DQ"),
                   _dq_def("DO_NOT_USE", "DEAD", "HOT", "REFERENCE_PIXEL")],
          _ref_header("mask", "MaskModel", full))
    write("saturation", [fits.ImageHDU(det.saturation, name="SCI"),
                         fits.ImageHDU(np.zeros(det.saturation.shape, np.uint32), name="DQ"),
                         _dq_def("DO_NOT_USE", "NO_SAT_CHECK")],
          _ref_header("saturation", "SaturationModel", full))
    k = det.nonlin_k.astype(np.float64)
    b = det.bias.astype(np.float64)
    coeffs = np.stack([k * b * b, 1 - 2 * k * b, k]).astype(np.float32)
    write("linearity", [fits.ImageHDU(coeffs, name="COEFFS"),
                        fits.ImageHDU(np.zeros(det.bias.shape, np.uint32), name="DQ"),
                        _dq_def("DO_NOT_USE", "NO_LIN_CORR")],
          _ref_header("linearity", "LinearityModel", full))
    write("gain", [fits.ImageHDU(det.gain, name="SCI")],
          _ref_header("gain", "GainModel", full, extra=[("BUNIT", "electron/DN", "units")]))
    write("readnoise", [fits.ImageHDU(det.readnoise, name="SCI")],
          _ref_header("readnoise", "ReadnoiseModel", full, extra=[("BUNIT", "DN", "units")]))
    dark_dq = np.zeros((dark.shape[0], 1) + dark.shape[2:], np.uint32)
    dark_dq[0, 0][det.mask_cut & P["HOT"] != 0] = P["HOT"]
    write("dark", [fits.ImageHDU(dark, name="SCI"), fits.ImageHDU(dark_dq, name="DQ"),
                   fits.ImageHDU(np.full(dark.shape, 0.5, np.float32), name="ERR"),
                   _dq_def("DO_NOT_USE", "HOT")],
          _ref_header("dark", "DarkMIRIModel", geom, readpatt,
                      extra=[("NINTS", dark.shape[0], "integrations"),
                             ("NGROUPS", dark.shape[1], "groups"), ("NFRAMES", 1, "frames per group"),
                             ("GROUPGAP", 0, "frames dropped between groups")]))
    write("reset", [fits.ImageHDU(reset, name="SCI"),
                    fits.ImageHDU(np.zeros(reset.shape[2:], np.uint32), name="DQ"),
                    fits.ImageHDU(np.full(reset.shape, 0.5, np.float32), name="ERR"),
                    _dq_def("DO_NOT_USE")],
          _ref_header("reset", "ResetModel", geom, readpatt,
                      extra=[("NINTS", reset.shape[0], "integrations"),
                             ("NGROUPS", reset.shape[1], "groups")]))
    table = np.zeros(len(MIRI_SUBARRAYS) * 2, dtype=[("subarray", "S20"), ("readpatt", "S20"),
                                                      ("group_skip1", ">i4"), ("group_skip", ">i4")])
    row = 0
    for name in MIRI_SUBARRAYS:
        for pattern in ("FAST", "SLOW"):
            table[row] = (name, pattern, RSCD_SKIP[0], RSCD_SKIP[1])
            row += 1
    write("rscd", [fits.BinTableHDU(table, name="RSCD_GROUP_SKIP")],
          _ref_header("rscd", "RSCDModel", full))
    return paths
