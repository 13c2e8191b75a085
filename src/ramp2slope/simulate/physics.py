"""The detector and scene model of the simulator.

Everything here is generated from a seed. Static detector properties (bias, gain, read noise,
dark current, defects, non-linearity, saturation) are always built for the full 2048 x 2048
detector, so an exposure of any subarray sees a cut-out of the same detector and the reference
files are full frame. The scene, the cosmic rays and the readout pattern belong to an exposure.

Units: "linear DN" is accumulated charge divided by the gain, before non-linearity; "raw DN"
is what the detector reports (bias included).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..datamodels import dqflags
from . import _kernels
from .detector import AMP_WIDTH, NPIX, NREF

PIXEL_AREA_CM2 = (18e-4) ** 2     # NIRCam pixels are 18 micron

# RNG sub-streams: independent draws that do not shift when another part of the model changes.
STREAM_STATIC, STREAM_SCENE, STREAM_CR, STREAM_PATTERN, STREAM_NOISE = range(5)


def substream(seed, stream, detector=""):
    """A numpy Generator for one part of the model (deterministic in seed, stream, detector)."""
    key = [int(seed), int(stream)] + [ord(ch) for ch in detector]
    return np.random.default_rng(np.random.SeedSequence(key))


# --------------------------------------------------------------------------------------------
# Non-linearity
# --------------------------------------------------------------------------------------------
class NonLinearity:
    """Polynomial classical non-linearity shared by every pixel up to a scale factor.

    The reference polynomial maps measured DN ``m`` to linear DN: ``P(m) = sum_k A_k m^k`` with
    ``A_0 = 0`` and ``A_1 = 1``. A pixel with scale ``s`` uses ``p(m) = P(s m) / s``, whose
    coefficients are ``A_k s^(k-1)`` (this is the LINEARITY COEFFS plane stack). Its inverse,
    used to make the raw data, is ``p^-1(Q) = P^-1(s Q) / s``; ``P^-1`` is tabulated finely so
    that linearity correction with COEFFS recovers the injected linear signal to well below
    0.01 DN. INV_COEFFS hold a least-squares polynomial fit ``B_k s^(k-1)`` of the inverse
    over the useful range (accurate to about half a DN).
    """

    COEFFS = np.array([0.0, 1.0, 1.2e-6, 2.0e-11, 1.0e-16])
    TABLE_MAX = 70000.0       # largest s*Q tabulated (linear DN)
    TABLE_STEP = 0.5
    FIT_MAX = 60000.0

    def __init__(self):
        coeffs = self.COEFFS
        m = np.linspace(-100.0, 63000.0, 400001)
        q = np.polynomial.polynomial.polyval(m, coeffs)
        if np.any(np.diff(q) <= 0):
            raise ValueError("the reference non-linearity is not monotonic")
        u = np.arange(0.0, self.TABLE_MAX + self.TABLE_STEP, self.TABLE_STEP)
        self.table = np.interp(u, q, m)
        self.inv_step = 1.0 / self.TABLE_STEP
        # Inverse polynomial without a constant term (so that 0 maps to 0), fitted on a
        # normalized variable for conditioning.
        uf = np.linspace(0.0, self.FIT_MAX, 4001)
        mf = np.interp(uf, q, m)
        x = uf / self.FIT_MAX
        design = np.vstack([x ** k for k in range(1, len(coeffs))]).T
        sol, *_ = np.linalg.lstsq(design, mf, rcond=None)
        self.inv_coeffs = np.concatenate([[0.0], sol / self.FIT_MAX ** np.arange(1, len(coeffs))])

    @property
    def ncoeffs(self):
        return len(self.COEFFS)

    def unlinearize(self, q, scale):
        """Measured DN (float32) for linear DN ``q``, pixel scales ``scale`` (2-D arrays)."""
        q = np.ascontiguousarray(q, dtype=np.float32)
        out = np.empty(q.shape, dtype=np.float32)
        _kernels.unlinearize_map(q, np.ascontiguousarray(scale, dtype=np.float32), self.table,
                                 self.inv_step, out)
        return out

    def coefficient_planes(self, scale, inverse=False, out=None):
        """(ncoeff, ny, nx) float32 coefficients for the pixel scales."""
        base = self.inv_coeffs if inverse else self.COEFFS
        scale = np.asarray(scale, dtype=np.float32)
        if out is None:
            out = np.empty((len(base),) + scale.shape, dtype=np.float32)
        power = np.ones_like(scale)
        out[0] = base[0]
        for k in range(1, len(base)):
            out[k] = base[k] * power
            power *= scale
        return out


# --------------------------------------------------------------------------------------------
# Static detector
# --------------------------------------------------------------------------------------------
#: Defect populations on the full detector: name -> (count, flags in the MASK reference).
DEFECTS = {
    "dead": (800, dqflags.pixel["DEAD"] | dqflags.pixel["DO_NOT_USE"]),
    "hot": (2000, dqflags.pixel["HOT"]),
    "warm": (8000, dqflags.pixel["WARM"]),
    "low_qe": (1500, dqflags.pixel["LOW_QE"]),
    "noisy": (500, dqflags.pixel["OTHER_BAD_PIXEL"] | dqflags.pixel["DO_NOT_USE"]),
}
#: Pixels with unusable reference values (not in the MASK; flagged in their own reference).
REF_DEFECTS = {
    "sat_nan": 200,          # SATURATION threshold NaN (NO_SAT_CHECK)
    "lin_nan": 200,          # LINEARITY coefficients NaN (NO_LIN_CORR)
    "gain_bad": 200,         # GAIN 0 or NaN
    "bias_unreliable": 400,  # SUPERBIAS off by a random amount (UNRELIABLE_BIAS)
}


@dataclass
class StaticDetector:
    """Full-frame (2048 x 2048, DMS frame) maps of one detector."""

    detector: str
    fastaxis: int
    slowaxis: int
    bias: np.ndarray            # true bias, raw DN
    bias_ref: np.ndarray        # SUPERBIAS SCI (the bias, with unreliable pixels off)
    gain: np.ndarray            # true gain, e-/DN
    gain_ref: np.ndarray        # GAIN SCI (0 or NaN at bad pixels)
    rn_cds: np.ndarray          # CDS read noise, DN (READNOISE SCI)
    rn_frame: np.ndarray        # single-frame read noise injected, DN (rn_cds / sqrt(2))
    dark_rate: np.ndarray       # dark current, linear DN/s
    qe: np.ndarray              # relative response (0 for dead and reference pixels)
    nl_scale: np.ndarray        # non-linearity scale factor s
    qsat: np.ndarray            # linear DN at the saturation threshold
    qhard: np.ndarray           # linear DN at which charge stops accumulating
    sat_ref: np.ndarray         # SATURATION SCI, raw DN (NaN at unchecked pixels)
    mask_dq: np.ndarray         # MASK DQ
    truth_flags: np.ndarray     # every injected defect, JWST flag bits
    defect_index: dict = field(default_factory=dict)


def detector_index_maps(fastaxis, slowaxis):
    """Full-frame detector-frame column (for each DMS x) and row (for each DMS y)."""
    idx = np.arange(NPIX)
    cols = (NPIX - 1 - idx) if fastaxis < 0 else idx
    rows = (NPIX - 1 - idx) if slowaxis < 0 else idx
    return cols, rows


def reference_border(shape=(NPIX, NPIX)):
    border = np.zeros(shape, dtype=bool)
    border[:NREF, :] = border[-NREF:, :] = True
    border[:, :NREF] = border[:, -NREF:] = True
    return border


def build_static(detector, fastaxis, slowaxis, channel, seed, nl):
    """Generate the full-frame static maps of a detector."""
    rng = substream(seed, STREAM_STATIC, detector)
    shape = (NPIX, NPIX)
    f32 = np.float32
    det_cols, det_rows = detector_index_maps(fastaxis, slowaxis)
    amp = det_cols // AMP_WIDTH
    parity = det_cols % 2
    border = reference_border()
    long_wave = channel == "LONG"

    # Bias: a detector level, per-amplifier and odd/even offsets, column structure, a smooth
    # gradient along the detector rows, and pixel-to-pixel scatter.
    level = rng.uniform(14000.0, 16000.0)
    amp_offset = rng.normal(0.0, 500.0, 4)
    parity_offset = rng.normal(0.0, 40.0, (4, 2))
    column = amp_offset[amp] + parity_offset[amp, parity] + rng.normal(0.0, 15.0, NPIX)
    rown = det_rows / (NPIX - 1.0)
    row = 300.0 * (rown - 0.5) + 120.0 * np.sin(3.0 * rown)
    bias = rng.standard_normal(shape, dtype=f32)
    bias *= f32(60.0)
    bias += (level + row)[:, None].astype(f32)
    bias += column[None, :].astype(f32)
    np.clip(bias, 12000.0, 18000.0, out=bias)

    # Gain (e-/DN) with an amplifier pattern.
    nominal_gain = 1.82 if long_wave else 2.05
    gain = rng.standard_normal(shape, dtype=f32)
    gain *= f32(0.02 * nominal_gain)
    gain += (nominal_gain * (1.0 + rng.normal(0.0, 0.02, 4)))[amp][None, :].astype(f32)

    # CDS read noise (DN), per amplifier and per pixel.
    nominal_rn = 7.3 if long_wave else 7.7
    rn_cds = rng.standard_normal(shape, dtype=f32)
    rn_cds *= f32(0.06 * nominal_rn)
    rn_cds += (nominal_rn * (1.0 + rng.normal(0.0, 0.05, 4)))[amp][None, :].astype(f32)
    np.maximum(rn_cds, f32(0.5 * nominal_rn), out=rn_cds)

    # Dark current (linear DN/s): log-normal around the channel's typical value.
    nominal_dark = 0.019 if long_wave else 0.001
    dark_rate = rng.standard_normal(shape, dtype=f32)
    dark_rate *= f32(0.3 * np.log(10.0))
    np.exp(dark_rate, out=dark_rate)
    dark_rate *= f32(nominal_dark)

    qe = rng.standard_normal(shape, dtype=f32)
    qe *= f32(0.01)
    qe += f32(1.0)

    nl_scale = rng.standard_normal(shape, dtype=f32)
    nl_scale *= f32(0.03)
    nl_scale += (1.0 + rng.normal(0.0, 0.02, 4))[amp][None, :].astype(f32)
    np.clip(nl_scale, 0.85, 1.15, out=nl_scale)

    qsat = rng.standard_normal(shape, dtype=f32)
    qsat *= f32(1200.0)
    qsat += f32(44000.0)
    qhard = qsat * f32(1.04)

    # Defects: distinct active pixels for every population.
    active = np.flatnonzero(~border.ravel())
    counts = {name: count for name, (count, _) in DEFECTS.items()}
    counts.update(REF_DEFECTS)
    picks = rng.choice(active.size, size=sum(counts.values()), replace=False)
    defect_index = {}
    start = 0
    for name, count in counts.items():
        defect_index[name] = active[picks[start:start + count]]
        start += count

    flat = lambda a: a.reshape(-1)  # noqa: E731  (views of the full-frame maps)
    mask_dq = np.zeros(shape, dtype=np.uint32)
    mask_dq[border] = dqflags.pixel["REFERENCE_PIXEL"]
    for name, (_, flags) in DEFECTS.items():
        flat(mask_dq)[defect_index[name]] |= np.uint32(flags)

    flat(qe)[defect_index["dead"]] = 0.0
    flat(qe)[defect_index["low_qe"]] *= rng.uniform(0.2, 0.6, counts["low_qe"]).astype(f32)
    flat(dark_rate)[defect_index["hot"]] = 10.0 ** rng.uniform(np.log10(0.5), np.log10(30.0), counts["hot"])
    flat(dark_rate)[defect_index["warm"]] = rng.uniform(0.05, 0.5, counts["warm"])
    flat(dark_rate)[defect_index["dead"]] = 0.0
    flat(rn_cds)[defect_index["noisy"]] *= f32(6.0)
    rn_frame = rn_cds / f32(np.sqrt(2.0))
    qe[border] = 0.0
    dark_rate[border] = 0.0

    truth_flags = mask_dq.copy()

    # Reference-file values that differ from the truth.
    bias_ref = bias.copy()
    flat(bias_ref)[defect_index["bias_unreliable"]] += rng.normal(
        0.0, 60.0, counts["bias_unreliable"]).astype(f32)
    flat(truth_flags)[defect_index["bias_unreliable"]] |= np.uint32(dqflags.pixel["UNRELIABLE_BIAS"])

    gain_ref = gain.copy()
    bad_gain = defect_index["gain_bad"]
    flat(gain_ref)[bad_gain[: bad_gain.size // 2]] = 0.0
    flat(gain_ref)[bad_gain[bad_gain.size // 2:]] = np.nan
    flat(truth_flags)[bad_gain] |= np.uint32(dqflags.pixel["NO_GAIN_VALUE"])

    sat_ref = bias + nl.unlinearize(qsat, nl_scale)
    flat(sat_ref)[defect_index["sat_nan"]] = np.nan
    flat(truth_flags)[defect_index["sat_nan"]] |= np.uint32(dqflags.pixel["NO_SAT_CHECK"])
    flat(truth_flags)[defect_index["lin_nan"]] |= np.uint32(dqflags.pixel["NO_LIN_CORR"])

    return StaticDetector(detector, fastaxis, slowaxis, bias, bias_ref, gain, gain_ref, rn_cds,
                          rn_frame, dark_rate, qe, nl_scale, qsat, qhard, sat_ref, mask_dq,
                          truth_flags, defect_index)


# --------------------------------------------------------------------------------------------
# Scene
# --------------------------------------------------------------------------------------------
SOURCE_DTYPE = np.dtype([("x", "f8"), ("y", "f8"), ("sigma", "f8"), ("peak_rate", "f8"),
                         ("saturating", "i2")])


def build_scene(geom, readout, static, seed, sky=None, source_density=1.0 / 4000.0,
                n_saturating=None):
    """Light rate (linear DN/s) on the exposure's pixels and the list of sources.

    Sources are drawn over the whole detector (so that every subarray sees the same sky) plus a
    few bright ones inside the exposure that saturate part way up the ramp. Positions are
    0-based DMS full-frame pixel coordinates.
    """
    rng = substream(seed, STREAM_SCENE, static.detector)
    ys, xs = geom.slices
    ny, nx = geom.ny, geom.nx
    long_wave = static.detector.endswith("LONG")
    if sky is None:
        sky = 0.3 if long_wave else 0.1
    yy = (np.arange(ys.start, ys.stop) / (NPIX - 1.0))[:, None]
    xx = (np.arange(xs.start, xs.stop) / (NPIX - 1.0))[None, :]
    rate = np.empty((ny, nx), dtype=np.float32)
    rate[...] = sky * (1.0 + 0.08 * (xx - 0.5) - 0.05 * (yy - 0.5))

    n_global = int(round(NPIX * NPIX * source_density))
    glob = np.zeros(n_global, dtype=SOURCE_DTYPE)
    glob["x"] = rng.uniform(NREF, NPIX - NREF, n_global)
    glob["y"] = rng.uniform(NREF, NPIX - NREF, n_global)
    glob["sigma"] = rng.uniform(0.8, 1.8, n_global)
    glob["peak_rate"] = 10.0 ** rng.uniform(np.log10(0.3), np.log10(300.0), n_global)

    if n_saturating is None:
        n_saturating = 2 + int(round(10.0 * ny * nx / (NPIX * NPIX)))
    sat = np.zeros(n_saturating, dtype=SOURCE_DTYPE)
    margin = 8.0
    sat["x"] = xs.start + rng.uniform(margin, max(margin + 1.0, nx - margin), n_saturating)
    sat["y"] = ys.start + rng.uniform(margin, max(margin + 1.0, ny - margin), n_saturating)
    sat["sigma"] = rng.uniform(0.9, 1.6, n_saturating)
    # Reach the typical saturation level between 30 % and 70 % of the way up the ramp.
    t_last = (readout.group_start(readout.ngroups - 1) + readout.nframes) * readout.tframe
    frac = rng.uniform(0.3, 0.7, n_saturating)
    sat["peak_rate"] = 44000.0 / (frac * t_last)
    sat["saturating"] = 1

    sources = np.concatenate([glob, sat])
    keep = []
    for k, src in enumerate(sources):
        radius = int(np.ceil(5.0 * src["sigma"]))
        cx, cy = int(round(src["x"])), int(round(src["y"]))
        x_lo, x_hi = max(cx - radius, xs.start), min(cx + radius + 1, xs.stop)
        y_lo, y_hi = max(cy - radius, ys.start), min(cy + radius + 1, ys.stop)
        if x_lo >= x_hi or y_lo >= y_hi:
            continue
        keep.append(k)
        gx = np.exp(-0.5 * ((np.arange(x_lo, x_hi) - src["x"]) / src["sigma"]) ** 2)
        gy = np.exp(-0.5 * ((np.arange(y_lo, y_hi) - src["y"]) / src["sigma"]) ** 2)
        rate[y_lo - ys.start:y_hi - ys.start, x_lo - xs.start:x_hi - xs.start] += (
            src["peak_rate"] * gy[:, None] * gx[None, :]).astype(np.float32)
    rate *= static.qe[ys, xs]
    return rate, sources[keep]


# --------------------------------------------------------------------------------------------
# Cosmic rays
# --------------------------------------------------------------------------------------------
CR_DTYPE = np.dtype([("integration", "i4"), ("group", "i4"), ("frame", "i4"), ("y", "i4"),
                     ("x", "i4"), ("amplitude", "f4"), ("event", "i4")])


MIN_CR_DN = 0.5      # smaller shares of a hit are neither injected nor listed


def build_cosmic_rays(geom, readout, static, seed, rate_per_cm2_s=5.0):
    """Cosmic-ray hits, one record per affected pixel (subarray coordinates).

    Events arrive uniformly in time at ``rate_per_cm2_s``; a hit during frame k shows from
    frame k on. Most deposit 300-20000 electrons shared between the struck pixel (55-90 %) and
    its neighbours; 2 % are large (40000-200000 electrons) and spread over a 5x5 patch. The
    amplitude is the linear DN (electrons / true gain); reference and dead pixels receive none,
    and shares below ``MIN_CR_DN`` are dropped.
    ``group`` is the first group containing a frame at or after the hit.
    """
    rng = substream(seed, STREAM_CR, static.detector)
    ys, xs = geom.slices
    ny, nx = geom.ny, geom.nx
    nframes_int = readout.frames_per_int
    expected = rate_per_cm2_s * ny * nx * PIXEL_AREA_CM2 * nframes_int * readout.tframe
    qe = static.qe[ys, xs]
    gain = static.gain[ys, xs]
    stride = readout.nframes + readout.groupgap

    small_dy = np.array([0, -1, 1, 0, 0, -1, -1, 1, 1])
    small_dx = np.array([0, 0, 0, -1, 1, -1, 1, -1, 1])
    large_dy, large_dx = (a.ravel() for a in np.mgrid[-2:3, -2:3])

    parts = []
    first_event = 0
    for integ in range(readout.nints):
        nevents = int(rng.poisson(expected))
        if nevents == 0:
            continue
        cy = rng.integers(0, ny, nevents)
        cx = rng.integers(0, nx, nevents)
        frame = rng.integers(0, nframes_int, nevents)
        large = rng.random(nevents) < 0.02
        charge = np.where(large, 10.0 ** rng.uniform(4.6, 5.3, nevents),
                          10.0 ** rng.uniform(2.5, 4.3, nevents))
        core = rng.uniform(0.55, 0.9, nevents)
        sigma = rng.uniform(0.6, 1.2, nevents)
        sides = rng.dirichlet(np.ones(4), nevents)
        events = np.arange(nevents) + first_event
        first_event += nevents

        # Ordinary hits: the struck pixel, its 4 edge neighbours (85 % of the rest) and its
        # 4 diagonal neighbours.
        weight = np.empty((nevents, 9))
        weight[:, 0] = core
        weight[:, 1:5] = 0.85 * (1.0 - core)[:, None] * sides
        weight[:, 5:] = (0.15 / 4.0) * (1.0 - core)[:, None]
        # Large hits: a Gaussian patch of 5x5 pixels.
        big = np.exp(-0.5 * (large_dy ** 2 + large_dx ** 2)[None, :] / sigma[:, None] ** 2)
        big /= big.sum(axis=1, keepdims=True)
        for sel, dy, dx, w in ((~large, small_dy, small_dx, weight), (large, large_dy, large_dx, big)):
            if not sel.any():
                continue
            py = (cy[sel, None] + dy[None, :]).ravel()
            px = (cx[sel, None] + dx[None, :]).ravel()
            wv = w[sel].ravel()
            k = np.repeat(np.flatnonzero(sel), dy.size)
            ok = (py >= 0) & (py < ny) & (px >= 0) & (px < nx)
            py, px, wv, k = py[ok], px[ok], wv[ok], k[ok]
            ok = qe[py, px] > 0
            py, px, wv, k = py[ok], px[ok], wv[ok], k[ok]
            rec = np.zeros(py.size, dtype=CR_DTYPE)
            rec["integration"] = integ
            rec["frame"] = frame[k]
            # first group whose last frame is at or after the hit
            rec["group"] = np.maximum(0, -((readout.nframes - 1 - frame[k]) // stride))
            rec["y"] = py
            rec["x"] = px
            rec["amplitude"] = charge[k] * wv / gain[py, px]
            rec["event"] = events[k]
            parts.append(rec[rec["amplitude"] >= MIN_CR_DN])
    if not parts:
        return np.zeros(0, dtype=CR_DTYPE)
    hits = np.concatenate(parts)
    order = np.lexsort((hits["x"], hits["y"], hits["frame"], hits["integration"]))
    return hits[order]


# --------------------------------------------------------------------------------------------
# Readout pattern: amplifier offsets and 1/f noise
# --------------------------------------------------------------------------------------------
def one_over_f(rng, n, rms):
    """A 1/f noise series of length n scaled to the given rms."""
    white = rng.standard_normal(n)
    spectrum = np.fft.rfft(white)
    freq = np.arange(spectrum.size, dtype=np.float64)
    freq[0] = 1.0
    spectrum /= np.sqrt(freq)
    spectrum[0] = 0.0
    series = np.fft.irfft(spectrum, n)
    std = series.std()
    return series * (rms / std) if std > 0 else series


@dataclass
class Pattern:
    """Readout pattern averaged per group (DMS orientation of the exposure).

    The pattern added to pixel (y, x) of group g of integration i is
    ``row[i, g, y] + col[i, g, x]``; ``row0``/``col0`` are the same for the first frame of each
    integration (the ZEROFRAME).
    """

    row: np.ndarray     # (nints, ngroups, ny)
    col: np.ndarray     # (nints, ngroups, nx)
    row0: np.ndarray    # (nints, ny)
    col0: np.ndarray    # (nints, nx)


def build_pattern(geom, readout, seed, detector, row_rms=2.0, amp_sigma=8.0, parity_sigma=3.0,
                  drift_step=0.3, amp_drift_step=0.15):
    """Per-group amplifier/column-parity offsets and 1/f row noise, in readout order.

    The offsets are a constant per amplifier and column parity (detector frame) plus slow
    random-walk drifts from frame to frame (one common to all amplifiers, one per amplifier).
    The 1/f noise is a single time series sampled once per detector row over the whole
    exposure (reset frames and the row overheads included), common to all amplifiers, so that
    it shows in the reference columns of every row. Reference pixels get the pattern too.
    """
    rng = substream(seed, STREAM_PATTERN, detector)
    nint, nfr = readout.nints, readout.frames_per_int
    ny, nx = geom.ny, geom.nx
    namp = 4 if geom.noutputs == 4 else 1
    rows_per_frame = ny + (1 if geom.noutputs == 4 else 2)
    series = one_over_f(rng, nint * (nfr + 1) * rows_per_frame, row_rms)
    series = series.reshape(nint, nfr + 1, rows_per_frame)[:, 1:, :ny]   # drop reset frames
    if geom.slowaxis < 0:
        series = series[:, :, ::-1]                                      # detector -> DMS rows
    static = rng.normal(0.0, amp_sigma, (namp, 1)) + rng.normal(0.0, parity_sigma, (namp, 2))
    steps = (rng.normal(0.0, drift_step, (nint, nfr, 1, 1))
             + rng.normal(0.0, amp_drift_step, (nint, nfr, namp, 2)))
    walk = np.cumsum(steps.reshape(nint * nfr, namp, 2), axis=0).reshape(nint, nfr, namp, 2)
    offsets = static[None, None] + walk

    det_cols = geom.detector_columns()
    amp = (det_cols // AMP_WIDTH) if namp == 4 else np.zeros(nx, dtype=int)
    parity = det_cols % 2

    ng, nfm = readout.ngroups, readout.nframes
    row = np.empty((nint, ng, ny), dtype=np.float32)
    col = np.empty((nint, ng, nx), dtype=np.float32)
    for g in range(ng):
        s = readout.group_start(g)
        row[:, g] = series[:, s:s + nfm].mean(axis=1)
        col[:, g] = offsets[:, s:s + nfm].mean(axis=1)[:, amp, parity]
    row0 = series[:, 0].astype(np.float32)
    col0 = offsets[:, 0][:, amp, parity].astype(np.float32)
    return Pattern(row, col, row0, col0)


def intra_group_variance(nframes):
    """Variance factor of a group mean around the linear spread of its within-group charge.

    Given W electrons arriving during the N-1 frame intervals of a group (uniformly), the
    group mean exceeds the first frame by sum_j n_j (N-j)/N, whose conditional variance is
    W times the value returned here.
    """
    if nframes <= 1:
        return 0.0
    weights = (nframes - np.arange(1, nframes)) / nframes
    return float(np.mean(weights ** 2) - np.mean(weights) ** 2)
