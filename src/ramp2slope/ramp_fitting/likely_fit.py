"""LIKELY ramp fitting (the likelihood method of Brandt 2024), as stcal 1.20 does it.

Each integration is fitted on its own: the differences of consecutive resultants are fitted
with their full (tridiagonal) covariance matrix, read noise plus photon noise from a first
rate guess. Jumps are found inside the fit: the difference, or pair of consecutive differences,
whose omission lowers chi squared the most is dropped while the improvement exceeds 20.25
(one) or 23.8 (two), until no more than three differences remain, and the groups whose
difference was dropped get JUMP_DET. The rate combines the integrations with weights
recomputed from their median rate (two passes), as stcal does.

``fit_ramps_likely(data, groupdq, pixeldq, gain, readnoise, *, nframes, frame_time, groupgap=0,
zeroframe=None, average_dark_current=None, firstgroup=None, lastgroup=None, threads=None,
read_times=None) -> LikelyResult`` takes the arrays ``ols_fit.fit_ramps`` takes and returns
``rate`` and ``rateints`` ``ImageProduct``s plus ``chisq`` (2-D) and ``chisq_ints`` (3-D),
float32.
Needs at least ``MIN_NGROUPS`` groups (RampFitStep falls back to OLS_C below that, as jwst
does). Where they differ from OLS_C, products follow stcal's LIKELY:

* groups with any GROUPDQ flag (JUMP_DET from the jump step included) exclude both
  differences they belong to; there is no one-group suppression and no all-saturated skip;
* rateints ERR is the fit's own uncertainty; the rate's ERR is sqrt(VAR_POISSON +
  VAR_RNOISE) of the combination;
* a ZEROFRAME array, when present and NFRAMES >= 2, becomes a resultant of its own;
* the frames are read evenly, ``frame_time`` apart with GROUPGAP frames dropped between groups,
  unless ``read_times`` gives every group's frame times (``meta.exposure.read_times``: jwst's
  collated superstripes that repeat within a frame).

As in the OLS_C path, every NaN rate also gets DO_NOT_USE (``ImageProduct.flag_nan_do_not_use``).

Streaming: ``LikelyRampFitter(shape, gain, readnoise, pixeldq, ...)`` has the methods of
``OLSRampFitter`` the pipeline uses (``add_median_rate(s)`` only count, ``fit_integration(s)``
and ``finish``). The final combination needs the rateints SCI, VAR_POISSON, VAR_RNOISE, DQ and chi
squared of every integration (20 bytes per pixel and integration): they are kept in memory, or,
given ``storage`` (the pipeline's ``ScratchStore.extra``), in scratch files, and ``finish``
combines them in blocks of rows, so that memory does not grow with the number of integrations.
"""
from dataclasses import dataclass

import numba
import numpy as np

from ..errors import Ramp2SlopeError
from . import _likely_kernels as K
from .ols_fit import ImageProduct, group_range

__all__ = ["MIN_NGROUPS", "LikelyRampFitter", "LikelyResult", "covariance_terms",
           "fit_ramps_likely"]

#: The fewest groups LIKELY fits (its jump search needs them).
MIN_NGROUPS = 4
# chi-square thresholds for dropping one difference (4.5 sigma squared) and a pair: stcal's
# defaults, which jwst always gets (it never sets stcal's RampData.rejection_threshold)
_THRESHOLD_ONE = 20.25
_THRESHOLD_TWO = 23.8


@dataclass
class LikelyResult:
    rate: ImageProduct
    rateints: ImageProduct
    chisq: np.ndarray
    chisq_ints: np.ndarray


def even_read_times(nframes, groupgap, frame_time, ngroups):
    """Times of every frame of every group, evenly spaced (each a float64 array)."""
    per_group = nframes + groupgap
    frames = np.arange(1, nframes + 1)
    return [(frames + k * per_group) * frame_time for k in range(ngroups)]


def explicit_read_times(read_times, ngroups):
    """The exposure's own read times (``meta.exposure.read_times``: one list of frame times per
    group, as jwst records them for superstripes repeated within a frame), checked against the
    ramp; each group's times as a float64 array."""
    times = [np.atleast_1d(np.asarray(group, dtype=np.float64)) for group in read_times]
    if len(times) != ngroups:
        raise Ramp2SlopeError(
            f"the exposure's read times (meta.exposure.read_times) list {len(times)} groups, "
            f"the ramp has {ngroups}")
    if any(t.size == 0 or not np.isfinite(t).all() for t in times):
        raise Ramp2SlopeError("the exposure's read times (meta.exposure.read_times) hold an "
                              "empty group or a value that is not a finite number")
    return times


def covariance_terms(times):
    """(delta_t, cov, two_ok) of the resultants whose frame times are ``times``.

    ``cov`` rows: read-noise and photon-noise diagonal (per difference), then read-noise and
    photon-noise off-diagonal (padded by one), from the resultants' mean times, their
    variance-weighted times (Paper 1, eqs. 4, 11, 28, 29) and their numbers of reads."""
    mean_t = np.array([np.mean(t) for t in times])
    n = np.array([len(t) for t in times])
    tau = []
    for t in times:
        m = len(t)
        weight = (2 * m + 1) - 2 * np.arange(1, m + 1)
        tau.append(np.sum(weight * np.asarray(t)) / m**2)
    tau = np.array(tau)
    dt = mean_t[1:] - mean_t[:-1]
    nd = dt.size
    cov = np.zeros((4, nd), np.float64)
    cov[0] = (1 / n[:-1] + 1 / n[1:]) / dt**2
    cov[1] = (tau[:-1] + tau[1:] - 2 * mean_t[:-1]) / dt**2
    cov[2, :nd - 1] = -1 / (n[1:-1] * dt[1:] * dt[:-1])
    cov[3, :nd - 1] = (mean_t[1:-1] - tau[1:-1]) / (dt[1:] * dt[:-1])
    # pairs may only be omitted where the resultant between them has several reads
    two_ok = (n[1:-1] > 1).astype(np.uint8)
    return np.ascontiguousarray(dt), cov, two_ok


def _native(arr, dtype):
    return np.ascontiguousarray(arr, dtype=dtype)


#: The kept planes of every integration: name and dtype (the combine kernel's argument order).
_KEPT = (("sci", np.float32), ("var_poisson", np.float32), ("var_rnoise", np.float32),
         ("dq", np.uint32), ("chisq", np.float32))
#: Bytes of kept planes combined at a time by ``finish``.
FINISH_BLOCK_BYTES = 16 << 20


class _Planes:
    """An array in memory, read and written at byte offsets like the pipeline's scratch
    arrays (``offset(*index)``, ``write(offset, array)``, ``read(offset, out)``)."""

    def __init__(self, shape, dtype):
        self.array = np.empty(shape, dtype)
        self._bytes = self.array.reshape(-1).view(np.uint8)

    def offset(self, *index):
        return sum(i * s for i, s in zip(index, self.array.strides))

    def write(self, offset, array):
        flat = np.ascontiguousarray(array, self.array.dtype).reshape(-1).view(np.uint8)
        self._bytes[offset:offset + flat.size] = flat

    def read(self, offset, out):
        flat = out.reshape(-1).view(np.uint8)
        flat[...] = self._bytes[offset:offset + flat.size]


class LikelyRampFitter:
    """One integration at a time; see the module docstring."""

    is_likely = True
    nseg_max = 0
    ncr_max = 0

    def __init__(self, shape, gain, readnoise, pixeldq, *, nframes, frame_time, groupgap=0,
                 average_dark_current=None, firstgroup=None, lastgroup=None,
                 has_zeroframe=False, storage=None, read_times=None, **_ignored):
        if len(shape) != 4:
            raise Ramp2SlopeError(f"ramp fitting needs a 4-D ramp, got shape {tuple(shape)}")
        nints, ngroups, ny, nx = (int(v) for v in shape)
        if ngroups < MIN_NGROUPS:
            raise Ramp2SlopeError(
                f"LIKELY ramp fitting needs at least {MIN_NGROUPS} groups, got {ngroups}")
        for name, arr in (("gain", gain), ("readnoise", readnoise), ("pixeldq", pixeldq)):
            if np.shape(arr) != (ny, nx):
                raise Ramp2SlopeError(
                    f"{name} has shape {np.shape(arr)}, the science data needs {(ny, nx)}")
        self.shape = (nints, ngroups, ny, nx)
        self.nints, self.ngroups, self.ny, self.nx = nints, ngroups, ny, nx
        self.nframes = int(nframes)
        if self.nframes < 1:
            raise Ramp2SlopeError(f"NFRAMES must be at least 1, got {self.nframes}")
        self.first, self.last = group_range(ngroups, firstgroup, lastgroup)
        if read_times:
            times = explicit_read_times(read_times, ngroups)
        else:
            times = even_read_times(self.nframes, int(groupgap or 0), frame_time, ngroups)
        # A ZEROFRAME is its group's first frame: it becomes a resultant of its own.
        self.use_zf = bool(has_zeroframe) and len(times[0]) >= 2
        if self.use_zf:
            times = [times[0][:1], times[0][1:]] + times[1:]
        self.delta_t, self.cov, self.two_ok = covariance_terms(times)
        self.thr1, self.thr2 = _THRESHOLD_ONE, _THRESHOLD_TWO
        self.gain = _native(gain, np.float32)
        self.readnoise = _native(readnoise, np.float32)
        self.pixeldq = np.array(pixeldq, dtype=np.uint32)
        if average_dark_current is None:
            self.dark = np.zeros((ny, nx), np.float32)
        else:
            if np.shape(average_dark_current) != (ny, nx):
                raise Ramp2SlopeError(
                    f"average_dark_current has shape {np.shape(average_dark_current)}, "
                    f"the science data needs {(ny, nx)}")
            self.dark = _native(average_dark_current, np.float32)
        self._storage = storage or (lambda name, shape, dtype: _Planes(shape, dtype))
        self._n_median = 0
        self._n_fit = 0
        self._kept = None
        self._last = None

    # pass 1 has nothing to gather for LIKELY
    def add_median_rate(self, data_i, groupdq_i, zeroframe_i=None):
        self._n_median += 1

    def add_median_rates(self, data, groupdq, zeroframe=None):
        """As ``OLSRampFitter.add_median_rates``: integrations given a few at a time."""
        self._n_median += len(data)

    def fit_integrations(self, data, groupdq, zeroframe=None, out=None):
        """As ``OLSRampFitter.fit_integrations``: the integrations of the run one by one, into
        the planes of ``out`` (an ``ImageProduct`` of (k, ny, nx) arrays, made when None)."""
        if out is None:
            out = ImageProduct.empty((len(data), self.ny, self.nx))
        for j in range(len(data)):
            self.fit_integration(data[j], groupdq[j], None if zeroframe is None else zeroframe[j],
                                 out=out[j])
        return out

    @property
    def all_saturated(self):
        return False  # stcal's LIKELY writes products even then

    def fit_integration(self, data_i, groupdq_i, zeroframe_i=None, out=None, opt_out=None,
                        chisq_out=None):
        """Fit the next integration into ``out`` (an ``ImageProduct`` of 2-D planes)."""
        if self._n_fit >= self.nints:
            raise Ramp2SlopeError("fit_integration called more often than there are integrations")
        shape = (self.ngroups, self.ny, self.nx)
        if np.shape(data_i) != shape or np.shape(groupdq_i) != shape:
            raise Ramp2SlopeError(
                f"integration arrays must have shape {shape}, got {np.shape(data_i)} and "
                f"{np.shape(groupdq_i)}")
        plane = (self.ny, self.nx)
        use_zf = self.use_zf and zeroframe_i is not None
        if use_zf and np.shape(zeroframe_i) != plane:
            raise Ramp2SlopeError(
                f"zeroframe plane has shape {np.shape(zeroframe_i)}, needs {plane}")
        zf = _native(zeroframe_i, np.float32) if use_zf else np.zeros((1, 1), np.float32)
        if use_zf != self.use_zf:
            raise Ramp2SlopeError("the ZEROFRAME must be given for every integration or none")
        if out is None:
            out = ImageProduct.empty(plane)
        if chisq_out is None:
            chisq_out = np.zeros(plane, np.float32)
        K.integration_kernel(
            _native(data_i, np.float32), _native(groupdq_i, np.uint8), zf, use_zf,
            self.nframes, self.first, self.last, self.gain, self.readnoise, self.dark,
            self.pixeldq, self.delta_t, self.cov, self.two_ok, self.thr1, self.thr2,
            out.data, out.err, out.dq, out.var_poisson, out.var_rnoise, chisq_out)
        if self.nints > 1:
            if self._kept is None:
                cube = (self.nints, self.ny, self.nx)
                self._kept = [self._storage(f"likely_{name}", cube, dtype)
                              for name, dtype in _KEPT]
            planes = (out.data, out.var_poisson, out.var_rnoise, out.dq, chisq_out)
            for stored, plane in zip(self._kept, planes):
                stored.write(stored.offset(self._n_fit), plane)
        else:
            self._last = (ImageProduct(out.data.copy(), out.err.copy(), out.dq.copy(),
                                       out.var_poisson.copy(), out.var_rnoise.copy()),
                          chisq_out.copy())
        self._n_fit += 1
        out.flag_nan_do_not_use()
        return out, chisq_out

    def finish(self, out=None):
        """The rate product (after every fit_integration); its chi squared is ``self.chisq``."""
        if self._n_fit != self.nints:
            raise Ramp2SlopeError(
                f"the rate needs all {self.nints} integrations fitted, got {self._n_fit}")
        if out is None:
            out = ImageProduct.empty((self.ny, self.nx))
        if self.nints == 1:
            rate, self.chisq = self._last
            for name in ("data", "err", "dq", "var_poisson", "var_rnoise"):
                getattr(out, name)[...] = getattr(rate, name)
        else:
            self.chisq = np.zeros((self.ny, self.nx), np.float32)
            self._combine(out)
            self._kept = None
        out.flag_nan_do_not_use()
        return out

    def _combine(self, out):
        """The rate from the kept planes, in blocks of rows (each pixel on its own)."""
        nints, ny, nx = self.nints, self.ny, self.nx
        rows = max(1, min(ny, FINISH_BLOCK_BYTES // (20 * nints * nx)))
        buffers = [np.empty(nints * rows * nx, dtype) for _, dtype in _KEPT]
        for y0 in range(0, ny, rows):
            y1 = min(ny, y0 + rows)
            blocks = [buf[:nints * (y1 - y0) * nx].reshape(nints, y1 - y0, nx)
                      for buf in buffers]
            for stored, block in zip(self._kept, blocks):
                for i in range(nints):
                    stored.read(stored.offset(i, y0), block[i])
            data, vp, vr, dq, chisq = blocks
            K.combine_kernel(data, vp, vr, dq, chisq, out.data[y0:y1], out.err[y0:y1],
                             out.dq[y0:y1], out.var_poisson[y0:y1], out.var_rnoise[y0:y1],
                             self.chisq[y0:y1])


def fit_ramps_likely(data, groupdq, pixeldq, gain, readnoise, *, nframes, frame_time,
                     groupgap=0, zeroframe=None, average_dark_current=None, firstgroup=None,
                     lastgroup=None, threads=None, read_times=None, **_ignored):
    """Fit every ramp of an exposure with LIKELY; see the module docstring."""
    if np.ndim(data) != 4 or np.shape(groupdq) != np.shape(data):
        raise Ramp2SlopeError(
            f"data and groupdq must be 4-D arrays of one shape, got {np.shape(data)} and "
            f"{np.shape(groupdq)}")
    nints, ngroups, ny, nx = np.shape(data)
    if zeroframe is not None and np.shape(zeroframe) != (nints, ny, nx):
        raise Ramp2SlopeError(
            f"zeroframe has shape {np.shape(zeroframe)}, the science data needs {(nints, ny, nx)}")
    previous = None
    if threads is not None:
        previous = numba.get_num_threads()
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        fitter = LikelyRampFitter(
            (nints, ngroups, ny, nx), gain, readnoise, pixeldq, nframes=nframes,
            frame_time=frame_time, groupgap=groupgap,
            average_dark_current=average_dark_current, firstgroup=firstgroup,
            lastgroup=lastgroup, has_zeroframe=zeroframe is not None, read_times=read_times)
        rateints = ImageProduct.empty((nints, ny, nx))
        chisq_ints = np.zeros((nints, ny, nx), np.float32)
        for i in range(nints):
            fitter.add_median_rate(data[i], groupdq[i])
        for i in range(nints):
            fitter.fit_integration(data[i], groupdq[i],
                                   None if zeroframe is None else zeroframe[i],
                                   out=rateints[i], chisq_out=chisq_ints[i])
        rate = fitter.finish()
        return LikelyResult(rate=rate, rateints=rateints, chisq=fitter.chisq,
                            chisq_ints=chisq_ints)
    finally:
        if previous is not None:
            numba.set_num_threads(previous)
