"""MIRI EMI correction (jwst 3.0.0 ``emicorr``), as plain functions on arrays.

Electromagnetic interference adds a periodic signal to MIRI reads. Each pixel is read at a known
time on the 10 us pixel clock (four output channels read in step, one "quad column" at a time),
so the interference at a given frequency is a waveform of the clock phase. Two algorithms fit it:

``sequential``
    Straighten each ramp crudely, average the four channels, and bin the residuals by phase over
    the first few integrations; the binned waveform (or the reference waveform aligned and
    scaled to it) is subtracted from every read.
``joint``
    Sum the reads of quiet pixels by phase and find the phase and amplitude of the reference
    waveform that make those sums most linear in time (one fit for the exposure, or one per
    integration); subtract it.

Frequencies are corrected one after another, each on the data already corrected for the ones
before it.

Streaming
---------
:class:`EmiCorrection` does the work one integration at a time, so that a pipeline never needs
the whole exposure in memory::

    corr = EmiCorrection(shape, pixeldq, clocks, frequencies, algorithm=...)
    while corr.needs_pass():
        for i in corr.pass_integrations():
            corr.feed(i, data_of_integration(i))     # the raw integration; not modified
        corr.end_pass()
    for i in range(nints):
        corr.apply(i, data_of_integration(i))        # corrected in place

``sequential`` needs one pass per frequency over only the first integrations it phases on
(usually one); ``joint`` needs two passes per frequency over every integration (the pixels it
uses are chosen against the median ramp scatter of the whole exposure, and one phase and
amplitude is fitted to all integrations together). What a pass keeps is small: the cleaned
quad-averaged reads of the phasing integrations (sequential; a quarter of an integration each),
or one scatter image per integration and the phased sums (joint).
:func:`correct_exposure` runs the same passes on an exposure held in memory.
"""
import logging
import math
import warnings

import numpy as np
from numba import njit, prange

from ..errors import BadInputError

__all__ = ["SUBARRAY_CLOCKS", "ALLOWED_READPATTS", "Clocks", "EmiCorrection", "correct_exposure",
           "onthefly_clocks", "phasing_integrations", "rebin_nearest"]

log = logging.getLogger("ramp2slope")

#: Read patterns the correction is defined for.
ALLOWED_READPATTS = ("FAST", "FASTR1", "SLOW", "SLOWR1")

#: Pixel-clock timing of the MIRI subarrays (full frame by read speed), used when the
#: frequencies are given on the fly instead of from an EMICORR reference.
SUBARRAY_CLOCKS = {
    "SLITLESSPRISM": (28, 15904),
    "MASKLYOT": (90, 32400),
    "SUB64": (28, 8512),
    "SUB128": (44, 11904),
    "MASK1140": (82, 23968),
    "MASK1550": (82, 23968),
    "MASK1065": (82, 23968),
    "FULL_FAST": (271, 277504),
    "FULL_SLOW": (2333, 2388992),
    "BRIGHTSKY": (162, 86528),
    "SUB256": (96, 29952),
}

# The pixel clock, in seconds per tick.
_PIXEL_TIME = 10.0e-6


class Clocks:
    """How the reads of one exposure sit on the pixel clock.

    nsamples: clock ticks per pixel (1 FAST, 9 SLOW); rowclocks: ticks per row; frameclocks:
    ticks of the reset frame; reset_frame: the read pattern resets a frame between integrations
    (FASTR1/SLOWR1); xsize, xstart: SUBSIZE1/SUBSTRT1 (the sequential algorithm shifts the last
    quad column of full-frame data by the right reference pixel's extra samples).
    """

    def __init__(self, nsamples, rowclocks, frameclocks, readpatt, xsize, xstart):
        self.nsamples = int(nsamples)
        self.rowclocks = int(rowclocks)
        self.frameclocks = int(frameclocks)
        self.reset_frame = str(readpatt).upper() in ("FASTR1", "SLOWR1")
        self.readpatt = str(readpatt)
        self.colstop = int(xsize / 4 + xstart - 1) if xsize is not None and xstart is not None else None


def onthefly_clocks(subarray, readpatt):
    """(rowclocks, frameclocks) of a subarray from the built-in table, or None."""
    name = subarray
    if name == "FULL":
        if "FAST" in readpatt.upper():
            name += "_FAST"
        elif "SLOW" in readpatt.upper():
            name += "_SLOW"
    return SUBARRAY_CLOCKS.get(name)


def rebin_nearest(arr, size):
    """Resample a 1-D array to ``size`` (a float is allowed) by nearest-lower index.

    The IDL ``congrid`` without interpolation: output ``k`` takes input ``int(k * n / size)``;
    the number of outputs is ``ceil(n / (n / size))``, as a grid with that float step gives.
    """
    n = arr.shape[0]
    step = float(n) / size
    count = int(math.ceil(n / step))
    index = (np.arange(count, dtype=np.float64) * step).astype(np.int32)
    return arr[index]


def phasing_integrations(nints, ngroups, first_period, frameclocks, nints_to_phase, use_n_cycles):
    """The integrations the sequential algorithm bins its waveform over (a ``range``).

    The number is set for the first frequency (enough integrations for ``use_n_cycles`` of its
    waveform, unless given) and kept for the others, as officially; a number larger than the
    exposure is only clipped. The range follows slicing rules (a negative number drops
    integrations from the end).
    """
    if nints_to_phase is None and use_n_cycles is None:
        count = nints
    elif nints_to_phase is None:
        count = int(np.ceil((use_n_cycles * first_period) / (frameclocks * ngroups)))
    elif use_n_cycles == 3 and nints_to_phase > nints:
        count = nints
    else:
        count = nints_to_phase
    return range(nints)[0:count]


# ----------------------------------------------------------------------------------------------
# numba kernels
# ----------------------------------------------------------------------------------------------
@njit(cache=True)
def _nanmedian_f32(values, count):
    """The median of the non-NaN ``values[:count]`` in float32 (NaN when there are none)."""
    buf = np.empty(count, dtype=np.float32)
    m = 0
    for v in values[:count]:
        if not np.isnan(v):
            buf[m] = v
            m += 1
    if m == 0:
        return np.float32(np.nan)
    buf = np.sort(buf[:m])
    half = m // 2
    if m % 2 == 1:
        return buf[half]
    return np.float32((buf[half - 1] + buf[half]) / np.float32(2.0))


@njit(parallel=True, cache=True)
def _sequential_clean(data):
    """Cleaned, quad-averaged reads of one integration (sequential algorithm).

    Each ramp loses a straight line fitted to its inner groups and then its own median (or
    minimum, for two inner groups) level; the four output channels are averaged, and the two
    quad columns behind the bad reference column are replaced by the mean of their neighbours.
    The precision follows the official code: the line in float64, everything stored in float32.
    """
    ngroups, ny, nx = data.shape
    nx4 = nx // 4
    n = ngroups - 2
    sx = 0.0
    sxx = 0.0
    for g in range(n):
        sx += float(g)
        sxx += float(g) ** 2
    denom = n * sxx - sx * sx
    out = np.empty((ngroups, ny, nx4), dtype=np.float32)
    for j in prange(ny):
        clean = np.empty((ngroups, nx), dtype=np.float32)
        inner = np.empty(max(n, 1), dtype=np.float32)
        for x in range(nx):
            sxy = 0.0
            sy = 0.0
            for g in range(n):
                v = np.float64(data[g + 1, j, x])
                sxy = sxy + float(g) * v
                sy = sy + v
            slope = (n * sxy - sx * sy) / denom
            for g in range(ngroups):
                clean[g, x] = np.float32(np.float64(data[g, j, x]) - slope * g)
            if n <= 2:
                level = np.float32(np.nan)
                for g in range(n):
                    v = clean[g + 1, x]
                    if not np.isnan(v) and (np.isnan(level) or v < level):
                        level = v
            else:
                for g in range(n):
                    inner[g] = clean[g + 1, x]
                level = _nanmedian_f32(inner, n)
            for g in range(ngroups):
                clean[g, x] = clean[g, x] - level
        for g in range(ngroups):
            for c in range(nx4):
                out[g, j, c] = (clean[g, 4 * c] + clean[g, 4 * c + 1] + clean[g, 4 * c + 2]
                                + clean[g, 4 * c + 3]) / np.float32(4.0)
            fix = (out[g, j, 0] + out[g, j, 3]) / np.float32(2.0)
            out[g, j, 1] = fix
            out[g, j, 2] = fix
    return out


@njit(cache=True)
def _read_tick(start, g, j, c, frame_ticks, rowclocks, nsamples, last_col_shift, nx4):
    t = start + g * frame_ticks + j * rowclocks + c * nsamples
    if c == nx4 - 1:
        t += last_col_shift
    return t


@njit(parallel=True, cache=True)
def _sequential_bins(ngroups, ny, nx4, start, frame_ticks, rowclocks, nsamples, last_col_shift,
                     period, nbins):
    """The phase bin of every quad-averaged read of one integration (-1: in no bin).

    Bin ``b`` holds the phases in (b/nbins, (b+1)/nbins]: a phase of exactly 0 is in none.
    """
    bins = np.empty((ngroups, ny, nx4), dtype=np.int32)
    for g in prange(ngroups):
        for j in range(ny):
            for c in range(nx4):
                t = _read_tick(start, g, j, c, frame_ticks, rowclocks, nsamples, last_col_shift, nx4)
                p = np.float64(t) / period
                phase = p - np.floor(p)
                b = int(phase * nbins)
                if b >= nbins:
                    b = nbins - 1
                while b > 0 and not (phase > b / nbins):
                    b -= 1
                while b < nbins - 1 and phase > (b + 1) / nbins:
                    b += 1
                if phase > b / nbins and phase <= (b + 1) / nbins:
                    bins[g, j, c] = b
                else:
                    bins[g, j, c] = -1
    return bins


@njit(cache=True)
def _group_by_bin(values, bins, nbins):
    """``values`` reordered bin after bin, each bin in its original order, and the bin edges."""
    counts = np.zeros(nbins + 1, dtype=np.int64)
    for b in bins:
        if b >= 0:
            counts[b + 1] += 1
    edges = np.cumsum(counts)
    fill = edges[:-1].copy()
    out = np.empty(edges[-1], dtype=np.float64)
    for k in range(bins.shape[0]):
        b = bins[k]
        if b >= 0:
            out[fill[b]] = values[k]
            fill[b] += 1
    return out, edges


@njit(parallel=True, cache=True)
def _sequential_subtract(data, lut, start, frame_ticks, rowclocks, nsamples, last_col_shift, period):
    """Subtract the looked-up waveform from every read of one integration, in place."""
    ngroups, ny, nx = data.shape
    nx4 = nx // 4
    nlut = lut.shape[0]
    bad = 0
    for g in prange(ngroups):
        for j in range(ny):
            for c in range(nx4):
                t = _read_tick(start, g, j, c, frame_ticks, rowclocks, nsamples, last_col_shift, nx4)
                p = np.float64(t) / period
                phase = p - np.floor(p)
                k = int(phase * period)
                if k < 0 or k >= nlut:
                    bad += 1
                    continue
                noise = lut[k]
                if not np.isfinite(noise):
                    noise = 0.0
                for q in range(4):
                    data[g, j, 4 * c + q] = np.float32(np.float64(data[g, j, 4 * c + q]) - noise)
    return bad


@njit(parallel=True, cache=True)
def _ramp_std_f32(data):
    """Per-pixel standard deviation over the groups, accumulated in float32 as numpy does."""
    ngroups, ny, nx = data.shape
    out = np.empty((ny, nx), dtype=np.float32)
    n = np.float32(ngroups)
    for j in prange(ny):
        for x in range(nx):
            s = np.float32(0.0)
            for g in range(ngroups):
                s += data[g, j, x]
            mean = s / n
            ss = np.float32(0.0)
            for g in range(ngroups):
                d = data[g, j, x] - mean
                ss += d * d
            out[j, x] = np.sqrt(ss / n)
    return out


@njit(parallel=True, cache=True)
def _phased_sums(data, ok, phase_index, nphases):
    """Sums of the reads of the usable pixels by first-read phase (joint algorithm).

    The quad columns behind the bad reference column are left out. A pixel that is not used
    still adds its value times zero, so a NaN read spoils its phase bin, as officially.
    """
    ngroups, ny, nx = data.shape
    nx4 = nx // 4
    y = np.zeros((nphases, ngroups))
    for g in prange(ngroups):
        for j in range(ny):
            for c in range(nx4):
                if c == 1 or c == 2:
                    continue
                k = phase_index[j, c]
                for q in range(4):
                    y[k, g] += np.float64(data[g, j, 4 * c + q] * np.float32(ok[j, 4 * c + q]))
    n = np.zeros(nphases)
    for j in range(ny):
        for c in range(nx4):
            if c == 1 or c == 2:
                continue
            k = phase_index[j, c]
            for q in range(4):
                n[k] += 1.0 if ok[j, 4 * c + q] else 0.0
    return y, n


@njit(parallel=True, cache=True)
def _subtract_quads(frame, amplitude, wave):
    """frame[:, 4c+q] -= amplitude * wave[:, c] for the four channels, in float64 then float32."""
    ny, nx = frame.shape
    nx4 = nx // 4
    for j in prange(ny):
        for c in range(nx4):
            noise = amplitude * wave[j, c]
            for q in range(4):
                frame[j, 4 * c + q] = np.float32(np.float64(frame[j, 4 * c + q]) - noise)


# ----------------------------------------------------------------------------------------------
# the corrections, once fitted
# ----------------------------------------------------------------------------------------------
class _SequentialTiming:
    """Clock ticks of the sequential algorithm's read times (counted across the exposure)."""

    def __init__(self, clocks, ngroups, ny, nx4):
        extra_rowclocks = int((1024 - ny) * (4 + 3))
        self.frame_ticks = ny * clocks.rowclocks + extra_rowclocks
        self.int_ticks = ngroups * self.frame_ticks + (clocks.frameclocks if clocks.reset_frame else 0)
        self.rowclocks = clocks.rowclocks
        self.nsamples = clocks.nsamples
        # the right reference pixel's 3 extra samples, with the 2**32 the official code adds too
        self.last_col_shift = 3 + 2 ** 32 if clocks.colstop == 258 else 0
        self.shape = (ngroups, ny, nx4)

    def start(self, i):
        return i * self.int_ticks


class _SequentialFix:
    def __init__(self, lut, period, timing):
        self.lut = np.ascontiguousarray(lut, dtype=np.float64)
        self.period = period
        self.timing = timing

    def apply(self, i, data):
        tm = self.timing
        bad = _sequential_subtract(data, self.lut, tm.start(i), tm.frame_ticks, tm.rowclocks,
                                   tm.nsamples, tm.last_col_shift, self.period)
        if bad:
            raise BadInputError(f"emicorr: the EMI waveform table ({self.lut.shape[0]} values) is "
                                f"too short for a period of {self.period} pixel times")


class _JointFix:
    def __init__(self, spline, phase, dphase, phases, amplitudes):
        self.spline = spline
        self.phase = phase
        self.dphase = dphase
        self.phases = phases
        self.amplitudes = amplitudes

    def apply(self, i, data):
        amplitude = float(self.amplitudes[i])
        for g in range(data.shape[0]):
            wave = self.spline((self.phase + self.dphase * g + self.phases[i]) % 1)
            _subtract_quads(data[g], amplitude, wave)


# ----------------------------------------------------------------------------------------------
# the driver
# ----------------------------------------------------------------------------------------------
class EmiCorrection:
    """Fit and remove EMI from an exposure read one integration at a time (see the module doc).

    shape: (nints, ngroups, ny, nx); pixeldq: (ny, nx) (the joint algorithm uses only pixels
    with no flag); clocks: :class:`Clocks`; frequencies: list of ``(name, frequency in Hz,
    reference waveform or None)`` in correction order (no waveform: self-correction, sequential
    only). The other parameters are the step's.
    """

    def __init__(self, shape, pixeldq, clocks, frequencies, algorithm="joint", nints_to_phase=None,
                 nbins=None, scale_reference=True, use_n_cycles=3, fit_ints_separately=False):
        self.nints, self.ngroups, self.ny, self.nx = (int(v) for v in shape)
        if self.nx % 4:
            raise BadInputError(f"emicorr: {self.nx} columns is not a whole number of 4-channel "
                                f"quad columns")
        self.nx4 = self.nx // 4
        self.pixeldq = pixeldq
        self.clocks = clocks
        self.frequencies = list(frequencies)
        self.algorithm = algorithm
        self.nbins = nbins
        self.scale_reference = scale_reference
        self.fit_ints_separately = fit_ints_separately
        self.fixes = []                 # fitted corrections, in order
        self.phase_amplitudes = {}      # name -> binned waveform (sequential), for saving
        self._seq_timing = _SequentialTiming(clocks, self.ngroups, self.ny, self.nx4)
        first_period = (1.0 / self.frequencies[0][1]) / _PIXEL_TIME if self.frequencies else 1.0
        self.phasing = phasing_integrations(self.nints, self.ngroups, first_period,
                                            clocks.frameclocks, nints_to_phase, use_n_cycles)
        self._stage = 0
        self._stages = []
        for index in range(len(self.frequencies)):
            if algorithm == "joint":
                self._stages += [(index, "scatter"), (index, "sums")]
            else:
                self._stages += [(index, "bin")]
        self._begin()

    # -- passes --------------------------------------------------------------------------------
    def needs_pass(self):
        """Whether another read-only pass over integrations is needed before :meth:`apply`."""
        return self._stage < len(self._stages)

    def pass_integrations(self):
        """The integrations the current pass reads, in the order to feed them."""
        _, kind = self._stages[self._stage]
        return self.phasing if kind == "bin" else range(self.nints)

    def feed(self, i, data):
        """Give the pass integration ``i`` (ngroups, ny, nx) as read (no correction); not modified."""
        index, kind = self._stages[self._stage]
        work = self._corrected_copy(i, data)
        if kind == "bin":
            cleaned = _sequential_clean(work)
            for frame in cleaned:
                # each frame's own median level (NaN-propagating, as the binned means expect)
                frame -= np.median(frame)
            self._cleaned[i] = cleaned
        elif kind == "scatter":
            self._scatter[i] = _ramp_std_f32(work)
        else:
            ok = (self._scatter[i] < self._threshold) & (self.pixeldq == 0)
            self._sums_y[i], self._sums_n[i] = _phased_sums(work, ok, self._phase_index,
                                                            self._nphases)

    def end_pass(self):
        """Finish the current pass (fitting a frequency when it was its last)."""
        index, kind = self._stages[self._stage]
        name, freq, wave = self.frequencies[index]
        period = (1.0 / freq) / _PIXEL_TIME
        if kind == "bin":
            self._fit_sequential(name, freq, wave, period)
        elif kind == "scatter":
            missing = [i for i in range(self.nints) if i not in self._scatter]
            if missing:
                raise RuntimeError(f"emicorr: integration(s) {missing} were not fed")
            stack = np.stack([self._scatter[i] for i in range(self.nints)])
            self._threshold = 2 * np.median(stack)
        else:
            self._fit_joint(wave, period)
        self._stage += 1
        self._begin()

    def apply(self, i, data):
        """Subtract every fitted frequency from integration ``i`` (float32), in place."""
        if self.needs_pass():
            raise RuntimeError("emicorr: apply() before the fit passes were done")
        for fix in self.fixes:
            fix.apply(i, data)
        return data

    # -- internals -----------------------------------------------------------------------------
    def _begin(self):
        if not self.needs_pass():
            return
        index, kind = self._stages[self._stage]
        name, freq, wave = self.frequencies[index]
        period = (1.0 / freq) / _PIXEL_TIME
        if kind == "bin":
            self._cleaned = {}
            log.info("emicorr: correcting %s Hz (%d of %d), sequential algorithm", freq, index + 1,
                     len(self.frequencies))
        elif kind == "scatter":
            self._scatter = {}
            self._prepare_joint(wave, period)
            log.info("emicorr: correcting %s Hz (%d of %d), joint algorithm", freq, index + 1,
                     len(self.frequencies))
        else:
            self._sums_y, self._sums_n = {}, {}

    def _corrected_copy(self, i, data):
        if data.ndim != 3 or data.shape != (self.ngroups, self.ny, self.nx):
            raise ValueError(f"emicorr: integration {i} has shape {data.shape}, expected "
                             f"{(self.ngroups, self.ny, self.nx)}")
        if not self.fixes:
            return np.ascontiguousarray(data, dtype=np.float32)
        work = np.array(data, dtype=np.float32, order="C", copy=True)
        for fix in self.fixes:
            fix.apply(i, work)
        return work

    # sequential
    def _fit_sequential(self, name, freq, wave, period):
        missing = [i for i in self.phasing if i not in self._cleaned]
        if missing:
            raise RuntimeError(f"emicorr: integration(s) {missing} were not fed")
        nbins = int(period / 2.0) if self.nbins is None else self.nbins
        if nbins > 501:
            nbins = 500
        log.info("emicorr: phase amplitude in %d bins over %d integration(s)", nbins,
                 len(self.phasing))
        tm = self._seq_timing
        values, bins = [], []
        for i in self.phasing:
            values.append(self._cleaned.pop(i).ravel())
            bins.append(_sequential_bins(self.ngroups, self.ny, self.nx4, tm.start(i),
                                         tm.frame_ticks, tm.rowclocks, tm.nsamples,
                                         tm.last_col_shift, period, nbins).ravel())
        self._cleaned = {}
        if values:
            grouped, edges = _group_by_bin(np.concatenate(values), np.concatenate(bins), nbins)
        else:
            grouped, edges = np.empty(0), np.zeros(nbins + 1, dtype=np.int64)
        del values, bins
        pa = _clipped_bin_means(grouped, edges, nbins)
        pa -= np.median(pa)
        lut = rebin_nearest(pa, period)
        if wave is not None:
            lut = _align_reference(pa, lut, np.asarray(wave, dtype=np.float64), period,
                                   self.scale_reference)
        self.phase_amplitudes[name] = (freq, pa)
        self.fixes.append(_SequentialFix(lut, period, tm))

    # joint
    def _prepare_joint(self, wave, period):
        from scipy.interpolate import make_interp_spline

        clocks = self.clocks
        extra_rowclocks = (1024.0 - self.ny) * (4 + 3.0)
        frametime = self.ny * clocks.rowclocks + extra_rowclocks
        t0 = (np.arange(self.ny)[:, None] * clocks.rowclocks
              + np.arange(self.nx4)[None, :] * clocks.nsamples).astype(np.float64)
        self._phase = (t0 / period) % 1
        self._dphase = (frametime / period) % 1
        frameclocks = clocks.frameclocks if clocks.reset_frame else 0
        self._dphase_frame = self._dphase * self.ngroups + frameclocks / period
        wave = np.asarray(wave, dtype=np.float64)
        self._spline = _WaveSpline(wave, make_interp_spline)
        self._nphases = len(wave)
        self._phase_index = (self._phase * self._nphases).astype(np.int64)
        self._wave = wave

    def _fit_joint(self, wave, period):
        nints = self.nints
        all_y = np.stack([self._sums_y.pop(i) for i in range(nints)])
        all_n = np.stack([self._sums_n.pop(i) for i in range(nints)])
        self._scatter = {}
        phases, amplitudes = _joint_fit(all_y, all_n, self._spline, self._dphase,
                                        self._dphase_frame, self.fit_ints_separately)
        self.fixes.append(_JointFix(self._spline, self._phase, self._dphase, phases, amplitudes))


class _WaveSpline:
    """The reference waveform as a periodic function of phase (cubic spline through the samples
    at the bin centres, padded by one sample each side so that no phase in [0, 1) extrapolates)."""

    def __init__(self, wave, make_interp_spline):
        n = len(wave)
        extended = np.concatenate([wave[-1:], wave, wave[:1]])
        self.knots = (np.arange(n + 2) - 0.5) / n
        if np.isnan(extended).any():
            self._spline = None   # a single NaN makes the whole interpolant NaN
        else:
            self._spline = make_interp_spline(self.knots, extended, k=3, check_finite=False)

    def __call__(self, phase):
        phase = np.asarray(phase, dtype=np.float64)
        if self._spline is None:
            return np.full(phase.shape, np.nan)
        return self._spline(phase)


def _clipped_bin_means(grouped, edges, nbins):
    """Sigma-clipped (3 sigma, 5 iterations) mean of each bin; NaN for an empty bin."""
    from astropy.stats import sigma_clipped_stats

    pa = np.empty(nbins, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for b in range(nbins):
            pa[b] = sigma_clipped_stats(grouped[edges[b]:edges[b + 1]])[0]
    return pa


def _align_reference(pa, lut, wave, period, scale):
    """The reference waveform shifted to the phase of the binned one (the best correlation over
    whole-sample shifts), resampled to a period, and optionally scaled to its amplitude."""
    size = wave.shape[0]
    binned = rebin_nearest(pa, size)
    corr = np.zeros(size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for shift in range(size):
            corr[shift] = np.corrcoef(np.roll(wave, shift), binned)[0, 1]
    shifted = rebin_nearest(np.roll(wave, int(np.argmax(corr))), period)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        slope, _ = np.polyfit(shifted, lut, 1)
    return shifted * slope if scale else shifted


# -- the joint fit --------------------------------------------------------------------------------
_TRIAL_PHASES = 500


def _joint_fit(all_y, all_n, spline, dphase, dphase_frame, separately):
    """Best waveform phase and amplitude for each integration from the phased sums.

    For a trial phase, the waveform value of every (phase bin, group) is known, and the
    amplitude that makes the summed ramps most linear has a closed form (a quadratic in the
    amplitude); chi squared is evaluated at evenly spaced trial phases and its minimum refined
    with a parabola.
    """
    nints, nphases, ngroups = all_y.shape
    t = np.arange(ngroups)
    s_tt = np.sum(t ** 2)
    s_t = np.sum(t)
    delta = ngroups * s_tt - s_t ** 2
    all_sy = np.sum(all_y, axis=2)
    all_sty = np.sum(all_y * t, axis=2)
    trial = np.arange(_TRIAL_PHASES) * 1.0 / _TRIAL_PHASES
    knots = spline.knots
    template = (knots[1:-1, np.newaxis] + t * dphase) % 1

    sz = np.empty((_TRIAL_PHASES, nphases))
    stz = np.empty((_TRIAL_PHASES, nphases))
    szz = np.empty((_TRIAL_PHASES, nphases))
    syz = np.empty((nints, _TRIAL_PHASES, nphases))
    # The waveform at (bin, group) for each trial phase, evaluated group-major and summed over
    # the groups along the strided axis as the official code does, so that sums agree bit for bit.
    for k, offset in enumerate(trial):
        z = spline((template.T + offset) % 1).T
        stz[k] = np.sum(t * z, axis=1)
        sz[k] = np.sum(z, axis=1)
        szz[k] = np.sum(z ** 2, axis=1)
        for i in range(nints):
            syz[i, k] = np.sum(z * all_y[i], axis=1)

    sums = (all_n, all_sy, all_sty, sz, stz, szz, syz, s_tt, s_t, ngroups, delta, trial,
            dphase_frame)
    if separately:
        phases, amplitudes = [], []
        for i in range(nints):
            chisq, _ = _chisq_amplitudes(sums, [i], trial)
            best = _best_phase(trial, chisq)
            phases.append(best + i * dphase_frame)
            amplitudes += _chisq_amplitudes(sums, [i], np.array([best]))[1]
        return phases, amplitudes
    ints = list(range(nints))
    chisq, _ = _chisq_amplitudes(sums, ints, trial)
    best = _best_phase(trial, chisq)
    amplitude = _chisq_amplitudes(sums, ints, np.array([best]))[1]
    phases = list((best + np.arange(nints) * dphase_frame) % 1)
    return phases, amplitude * nints


def _chisq_amplitudes(sums, ints, phases):
    """chi squared and best amplitude at each phase, over the given integrations."""
    (all_n, all_sy, all_sty, sz, stz, szz, syz, s_tt, s_t, ngroups, delta, trial,
     dphase_frame) = sums
    a = np.zeros(len(phases))
    b = np.zeros(len(phases))
    for i in ints:
        n_ = all_n[i]
        s_y = all_sy[i]
        s_ty = all_sty[i]
        # the trial phase nearest below each phase, moved to this integration's start
        k = np.argmin(np.abs((trial[np.newaxis, :] - phases[:, np.newaxis] - dphase_frame * i) % 1),
                      axis=1)
        s_z, s_tz, s_zz = sz[k], stz[k], szz[k]
        s_yz = syz[i, k]
        a = a + np.sum(n_ / delta * (-s_tt * s_z ** 2 + 2 * s_t * s_z * s_tz
                                     - ngroups * s_tz ** 2 + s_zz * delta), axis=1)
        b = b + (2 / delta) * np.sum(s_tt * s_z * s_y - s_t * s_tz * s_y - s_t * s_z * s_ty
                                     + ngroups * s_tz * s_ty, axis=1)
        b = b - 2 * np.sum(s_yz, axis=1)
    chisq, amplitudes = [], []
    for a_, b_ in zip(a, b):
        if np.isclose(a_, 0, atol=1e-8) or not np.isfinite(a_) or not np.isfinite(b_):
            chisq.append(np.nan)
            amplitudes.append(0.0)
        else:
            c = -b_ / (2 * a_)
            chisq.append(a_ * c ** 2 + b_ * c)
            amplitudes.append(c)
    return chisq, amplitudes


def _best_phase(phases, chisq):
    """The phase of least chi squared: a parabola through the lowest value and its neighbours
    (the phases wrap around)."""
    chisq = np.asarray(chisq, dtype=np.float64)
    if np.all(~np.isfinite(chisq)):
        log.warning("emicorr: chi squared values are all NaN")
        return phases[0]
    best = int(np.nanargmin(chisq))
    below = best - 1
    above = best + 1 if best + 1 <= len(chisq) - 1 else 0
    values = [chisq[below], chisq[best], chisq[above]]
    if np.any(~np.isfinite(values)):
        log.warning("emicorr: chi squared values in the final optimization are NaN")
        return phases[best]
    if np.nanstd(values) == 0:
        log.warning("emicorr: chi squared values are equal around the best phase")
        return phases[best]
    a, b, _ = np.polyfit([phases[below], phases[best], phases[above]], values, 2)
    return -b / (2 * a)


def correct_exposure(data, pixeldq, clocks, frequencies, **parameters):
    """Correct a whole exposure (nints, ngroups, ny, nx) float32 array in place.

    Runs the passes of :class:`EmiCorrection` over the integrations in memory; returns it.
    """
    corr = EmiCorrection(data.shape, pixeldq, clocks, frequencies, **parameters)
    while corr.needs_pass():
        for i in corr.pass_integrations():
            corr.feed(i, data[i])
        corr.end_pass()
    for i in range(data.shape[0]):
        corr.apply(i, data[i])
    return corr


# ----------------------------------------------------------------------------------------------
# jwst's module-level API (``jwst.emicorr.emicorr``), over the functions above
# ----------------------------------------------------------------------------------------------
def _emi_reference(emicorr_model):
    """An :class:`~ramp2slope.emicorr.reference.EmiReference` for an EmiModel (or a path, or an
    EmiReference), checked as :func:`~ramp2slope.emicorr.reference.load_emicorr` checks a file."""
    import os

    from ..errors import ReferenceFileError
    from .reference import EmiReference, load_emicorr, reference_from_tree

    if isinstance(emicorr_model, EmiReference):
        return emicorr_model
    if isinstance(emicorr_model, (str, os.PathLike)):
        return load_emicorr(emicorr_model)
    tree = getattr(emicorr_model, "instance", None)
    name = (tree or {}).get("meta", {}).get("filename") or "EmiModel"
    if not isinstance(tree, dict):
        raise ReferenceFileError(f"{name}: not an EMICORR reference (no 'frequencies' and "
                                 f"'subarray_cases' mappings)")
    return reference_from_tree(tree, name)


def _readout_speed(readpatt):
    readpatt = str(readpatt).upper()
    return "SLOW" if "SLOW" in readpatt else "FAST" if "FAST" in readpatt else None


def apply_emicorr(output_model, emicorr_model, save_onthefly_reffile=None, algorithm="sequential",
                  nints_to_phase=None, nbins=None, scale_reference=True, onthefly_corr_freq=None,
                  use_n_cycles=3, fit_ints_separately=False):
    """Correct a RampModel for EMI in place, as jwst's ``apply_emicorr``.

    ``emicorr_model``: an EmiModel (or a path to one), or None; ignored when
    ``onthefly_corr_freq`` is given. Returns ``output_model`` corrected, or None where the
    correction cannot be done (fewer than 3 groups, no match for the configuration), with the
    reason logged. ``save_onthefly_reffile``: where the sequential algorithm writes the waveforms
    it binned, as an EMICORR ASDF file (a ``.fits`` name becomes ``.asdf``).
    """
    # emicorr_step imports this module: plan_emicorr is taken when called
    from .emicorr_step import plan_emicorr

    reference = None
    if onthefly_corr_freq is None and emicorr_model is not None:
        reference = _emi_reference(emicorr_model)
    clocks, frequencies, algorithm = plan_emicorr(output_model, reference, algorithm,
                                                  onthefly_corr_freq)
    if clocks is None:
        return None
    if output_model.data.dtype != np.float32:
        output_model.data = output_model.data.astype(np.float32)
    corr = correct_exposure(
        output_model.data, output_model.pixeldq, clocks, frequencies, algorithm=algorithm,
        nints_to_phase=nints_to_phase, nbins=nbins, scale_reference=scale_reference,
        use_n_cycles=use_n_cycles, fit_ints_separately=fit_ints_separately)
    if save_onthefly_reffile is not None and algorithm == "sequential":
        meta = output_model.meta
        readpatt = meta.exposure.readpatt
        names = list(corr.phase_amplitudes)
        freqs = {readpatt: names} if "FAST" in readpatt else {readpatt: {meta.instrument.detector: names}}
        mk_reffile({
            "frequencies": {name: {"frequency": freq, "phase_amplitudes": pa}
                            for name, (freq, pa) in corr.phase_amplitudes.items()},
            "subarray_cases": {meta.subarray.name: {"rowclocks": clocks.rowclocks,
                                                    "frameclocks": clocks.frameclocks,
                                                    "freqs": freqs}},
        }, save_onthefly_reffile)
    return output_model


def get_subarcase(emi_model, subarray, readpatt, detector):
    """``(subname, rowclocks, frameclocks, frequency names)`` of a configuration in an EmiModel.

    All four are None for a read pattern neither FAST nor SLOW; past the subarray name, a value
    is None from the first level of the reference that is missing on (as in jwst).
    """
    if _readout_speed(readpatt) is None:
        log.warning("Read pattern %s does not include expected string FAST or SLOW",
                    str(readpatt).upper())
        return None, None, None, None
    subname, rowclocks, frameclocks, names = _emi_reference(emi_model).case(subarray, readpatt,
                                                                           detector)
    if rowclocks is None or names is None:
        log.debug("Subarray %s not found", subname)
    return subname, rowclocks, frameclocks, names


def get_frequency_info(emi_model, frequency_name):
    """``(frequency in Hz, phase amplitudes)`` of a named frequency of an EmiModel.

    Raises AttributeError (``No attribute '<name>'``) when the model has no such frequency.
    """
    from .reference import EmiReference

    if isinstance(emi_model, EmiReference):
        if frequency_name not in emi_model.frequencies:
            raise AttributeError(f"No attribute '{frequency_name}'")
        return emi_model.frequencies[frequency_name]
    entry = getattr(emi_model.frequencies, frequency_name)
    return entry.frequency, entry.phase_amplitudes


def sloper(data):
    """Least-squares slope and intercept of every pixel's ramp (ngroups, ny, nx), against the
    group number (one frame per unit of time); returns ``(slope, intercept)`` in float64."""
    data = np.asarray(data)
    ngroups = data.shape[0]
    t = np.arange(ngroups, dtype=np.float64)
    sx = t.sum()
    sxx = (t * t).sum()
    sy = data.sum(axis=0, dtype=np.float64)
    sxy = np.tensordot(t, data, axes=1)
    denom = ngroups * sxx - sx * sx
    return (ngroups * sxy - sx * sy) / denom, (sxx * sy - sx * sxy) / denom


def minmed(data):
    """The NaN-ignoring median of a stack of images along the first axis, or its minimum when
    the stack has two images or fewer (the level the sequential algorithm subtracts)."""
    data = np.asarray(data)
    if data.shape[0] <= 2:
        return np.nanmin(data, axis=0)
    return np.nanmedian(data, axis=0)


def rebin(arr, newshape):
    """``arr`` resampled to ``newshape`` by nearest-lower index along every axis (IDL
    ``congrid`` without interpolation; see :func:`rebin_nearest`)."""
    arr = np.asarray(arr)
    if len(arr.shape) != len(newshape):
        raise ValueError("New shape dimensions must match old shape")
    index = [rebin_nearest(np.arange(old), new) for old, new in zip(arr.shape, newshape)]
    return arr[np.ix_(*index)]


def mk_reffile(freq_pa_dict, emicorr_ref_filename):
    """Save ``{"frequencies": ..., "subarray_cases": ...}`` as an EMICORR ASDF file (an EmiModel;
    a ``.fits`` name becomes ``.asdf``)."""
    import datetime

    from ..datamodels import EmiModel

    model = EmiModel()
    model.frequencies = freq_pa_dict["frequencies"]
    model.subarray_cases = freq_pa_dict["subarray_cases"]
    model.meta.reftype = "emicorr"
    model.meta.author = "JWST calibration pipeline"
    model.meta.description = "EMI correction file"
    model.meta.pedigree = "GROUND"
    model.meta.useafter = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if emicorr_ref_filename.endswith(".fits"):
        emicorr_ref_filename = emicorr_ref_filename[:-len(".fits")] + ".asdf"
    log.info("Writing on-the-fly reference file to: %s", emicorr_ref_filename)
    model.save(emicorr_ref_filename)
    return emicorr_ref_filename


__all__ += ["apply_emicorr", "get_frequency_info", "get_subarcase", "minmed", "mk_reffile", "rebin",
            "sloper"]
