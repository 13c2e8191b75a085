"""OLS_C ramp fitting (spec §4.13): rate, rateints and the optional fitopt arrays.

The fit is done one integration at a time, or a few at a time in one kernel call (the sums
over the integrations are made in the same order). Memory use beyond the outputs is a few 2-D
accumulators, whatever the number of integrations. ``fit_ramps`` on a one-integration exposure
needs none: one kernel pass computes each pixel's median rate from the ramp it fits and writes
the rate product directly. Every pixel is independent, so the results are
bit-identical for any numba thread count. Set that count with ``numba.set_num_threads`` or pass
``threads``.

Whole exposure
--------------
``fit_ramps(data, groupdq, pixeldq, gain, readnoise, *, nframes, group_time, frame_time,
groupgap=0, drop_frames1=0, zeroframe=None, average_dark_current=None, suppress_one_group=True,
firstgroup=None, lastgroup=None, save_opt=False, threads=None) -> RampFitResult | None``

* ``data``: float32 ``(nints, ngroups, ny, nx)`` in DN. ``groupdq``: uint8, same shape.
  ``pixeldq``: uint32 ``(ny, nx)``. None of these is modified.
* ``gain`` (e⁻/DN) and ``readnoise`` (CDS read noise in DN) are float32 ``(ny, nx)``, already
  cut out to the science subarray. ``average_dark_current`` is an optional float32 ``(ny, nx)``
  (None means zeros). It is added to the median rate as stored, with no unit conversion.
  ``zeroframe`` is an optional float32 ``(nints, ny, nx)``, used only when suppress_one_group is
  off (spec §4.13.1).
* ``nframes``, ``groupgap``, ``drop_frames1``: ints from the exposure metadata. ``group_time``
  and ``frame_time``: seconds. Like stcal, they are rounded to float32 before use.
* ``suppress_one_group`` is forced off when ngroups == 1. ``firstgroup``/``lastgroup`` are
  0-based and follow jwst's RampFitStep: groups outside the range get DO_NOT_USE, a negative
  firstgroup becomes 0, and firstgroup >= lastgroup ignores both.
* ``instrument``: "MIRI" makes the fit drop the groups stcal drops for MIRI: the leading groups
  that are DO_NOT_USE in every pixel of every integration, then the last group if it is (the
  firstframe/lastframe groups). What is left is fitted as the whole ramp (its group 0 is the
  first group for the one-group, pedestal and saturation rules; JUMP is ignored in it), so the
  products differ from a fit that merely skips those groups.
* Returns None when every pixel of every integration has SATURATED in group 0 (stcal writes no
  product then), or for MIRI when fewer than 2 groups are left. Otherwise returns a
  ``RampFitResult`` with:

  - ``rate``: ``ImageProduct`` with 2-D ``data`` (DN/s, float32, NaN where invalid), ``err``,
    ``var_poisson``, ``var_rnoise`` (float32) and ``dq`` (uint32);
  - ``rateints``: an ``ImageProduct`` with the same fields, 3-D ``(nints, ny, nx)``;
  - ``optional``: None unless ``save_opt``. Otherwise an ``OptionalProduct`` with ``slope``,
    ``sigslope``, ``var_poisson``, ``var_rnoise``, ``yint``, ``sigyint``, ``weights``, each
    float32 ``(nints, nseg_max, ny, nx)``; ``pedestal`` float32 ``(nints, ny, nx)``; and
    ``crmag`` float32 ``(nints, ncr_max, ny, nx)``;
  - ``nseg_max`` and ``ncr_max``, the sizes of those axes.

Streaming, integration by integration
-------------------------------------
``fitter = OLSRampFitter(shape, gain, readnoise, pixeldq, <same keywords as fit_ramps, without
zeroframe and threads>, has_zeroframe=False, dnu_groups=None)``, where
``shape = (nints, ngroups, ny, nx)``. For MIRI the groups to drop must be known before pass 1:
``dnu_groups`` is the AND over the integrations of :func:`all_dnu_groups` (a table of the groups
DO_NOT_USE in every pixel made earlier serves, as long as the one-group suppression adds no such
group); pass 1 recomputes it and raises Ramp2SlopeError if it was wrong. The arrays given to
the fitter are always whole ramps. Then:

1. ``fitter.add_median_rate(data_i, groupdq_i, zeroframe_i=None)`` once per integration, in
   order. The arguments are ``(ngroups, ny, nx)`` and ``(ny, nx)``. With save_opt this also
   counts the fitopt slots, and it tracks the all-saturated case.
   ``fitter.add_median_rates(data, groupdq, zeroframe=None)`` takes the next k integrations
   at once (``(k, ngroups, ny, nx)`` and ``(k, ny, nx)``), with the same result.
2. ``fitter.all_saturated`` is True when no product must be written (see above).
3. With save_opt, ``fitter.nseg_max`` and ``fitter.ncr_max`` give the fitopt sizes once every
   integration has been through step 1.
4. ``fitter.fit_integration(data_i, groupdq_i, zeroframe_i=None, out=None, opt_out=None) ->
   IntegrationFit`` once per integration, in order. ``out`` may be an ``ImageProduct`` of 2-D
   views to write into (for example the ``[i]`` slices of the rateints cubes). ``opt_out`` may be
   an ``IntegrationOptional`` of views: ``segments`` float32 ``(7, nslots, ny, nx)`` in
   the order ``SEGMENT_FIELDS``, ``pedestal`` ``(ny, nx)`` and ``crmag`` ``(ncr, ny, nx)``,
   all zero on entry. Otherwise the arrays are allocated and returned.
   Without save_opt, ``fitter.fit_integrations(data, groupdq, zeroframe=None, out=None) ->
   ImageProduct`` fits the next k integrations at once into (k, ny, nx) planes.
5. ``fitter.finish() -> ImageProduct`` for the rate.

Where the spec and the running stcal 1.20 differ, this module follows stcal:

* An integration with no usable segment that is not all DNU/SAT (for example every group
  flagged JUMP) gets slope 0 and variances 0, not NaN. The rate of such a pixel is 0 as well.
* Slopes are ``Σ(slope/var_r)`` multiplied by the variance *after* it has been zeroed at ≥ 1e6,
  so a combined read-noise variance ≥ 1e6 (DN/s)² gives slope 0.
* The fitopt NSEG axis uses stcal's segment count, which is not reduced when only the first of
  several one-group segments is kept. It can also be 0 (not "at least 1") when no pixel has a
  segment at all.
* CHARGELOSS recomputation toggles DNU|CHARGELOSS with XOR on each CHARGELOSS group, so a
  CHARGELOSS group without DNU gains DNU. The rate VAR_RNOISE of such a pixel is replaced even
  when the pixel's rate is invalid.
* The pedestal is 0 for an integration whose DQ has SAT before the partial-saturation flag
  (group 0 SAT or a pixel-level SAT). Otherwise it uses the float64 integration slope.
* For ngroups == 1 the median rate is the plain mean of d0/T1, with no NaN-to-0 step. A
  saturated group 0 therefore makes it NaN, and the Poisson terms fall back to the dark current.
* The rateints ERR is zeroed when 1/Σ(1/var_e) is strictly above 1e6. Variances are zeroed at
  1e6 and above.
"""
import logging
import math
from dataclasses import dataclass

import numba
import numpy as np

from ..datamodels import dqflags
from ..errors import Ramp2SlopeError
from . import _ols_kernels as K

log = logging.getLogger("ramp2slope")

__all__ = [
    "SEGMENT_FIELDS",
    "ImageProduct",
    "IntegrationFit",
    "IntegrationOptional",
    "MedianRates",
    "OLSRampFitter",
    "OptionalProduct",
    "RampFitResult",
    "effective_readnoise",
    "all_dnu_groups",
    "fit_ramps",
    "group_range",
    "miri_kept_groups",
]

#: Order of the per-segment fields in ``IntegrationOptional.segments``.
SEGMENT_FIELDS = ("slope", "sigslope", "var_poisson", "var_rnoise", "yint", "sigyint", "weights")
_PRODUCT_FIELDS = ("data", "err", "dq", "var_poisson", "var_rnoise")


@dataclass
class ImageProduct:
    """Rate (2-D) or rateints (3-D) arrays: SCI, ERR, DQ, VAR_POISSON, VAR_RNOISE."""

    data: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    var_poisson: np.ndarray
    var_rnoise: np.ndarray

    @classmethod
    def empty(cls, shape, allocate=np.zeros):
        """Arrays of ``shape``, zero (``allocate=np.empty``: see :meth:`unfilled`)."""
        return cls(*(allocate(shape, np.uint32 if name == "dq" else np.float32)
                     for name in _PRODUCT_FIELDS))

    @classmethod
    def unfilled(cls, shape):
        """As :meth:`empty`, the values left unset: for a kernel that writes every pixel of
        every array (zeroing a full frame's five arrays costs 10-15 ms on one core)."""
        return cls.empty(shape, np.empty)

    def __getitem__(self, index):
        """Views of every array at ``index`` (e.g. one integration of a rateints product)."""
        return ImageProduct(self.data[index], self.err[index], self.dq[index],
                            self.var_poisson[index], self.var_rnoise[index])

    def flag_nan_do_not_use(self):
        """Give DO_NOT_USE to every NaN rate that lacks it; returns how many were flagged.

        A deliberate difference from stcal: a zero or NaN read noise, or a NaN out of the
        earlier steps (infinite linearity coefficients), makes a NaN rate that stcal leaves
        with its other flags only, and a user who selects pixels by DQ would take it for good.
        (The OLS_C kernels flag their rates as they store them; the LIKELY fit calls this.)
        """
        dnu = np.uint32(dqflags.pixel["DO_NOT_USE"])
        unflagged = np.isnan(self.data) & ((self.dq & dnu) == 0)
        count = int(np.count_nonzero(unflagged))
        if count:
            np.bitwise_or(self.dq, dnu, out=self.dq, where=unflagged)
        return count


@dataclass
class IntegrationOptional:
    """fitopt arrays of one integration: segments (7, nslots, ny, nx), pedestal, crmag."""

    segments: np.ndarray
    pedestal: np.ndarray
    crmag: np.ndarray


@dataclass
class IntegrationFit:
    """Result of ``OLSRampFitter.fit_integration``: the rateints planes and optional arrays."""

    rateints: ImageProduct
    optional: IntegrationOptional = None


@dataclass
class OptionalProduct:
    """The fitopt (RampFitOutputModel) arrays, all float32."""

    slope: np.ndarray
    sigslope: np.ndarray
    var_poisson: np.ndarray
    var_rnoise: np.ndarray
    yint: np.ndarray
    sigyint: np.ndarray
    weights: np.ndarray
    pedestal: np.ndarray
    crmag: np.ndarray


@dataclass
class RampFitResult:
    rate: ImageProduct
    rateints: ImageProduct
    optional: OptionalProduct = None
    nseg_max: int = 0
    ncr_max: int = 0


def group_range(ngroups, firstgroup=None, lastgroup=None, warn=False):
    """Return the (first, last) groups kept, applying RampFitStep's rules for the parameters;
    with ``warn``, log the official warnings for the values it corrects or ignores."""
    first = 0 if firstgroup is None else int(firstgroup)
    last = ngroups - 1 if lastgroup is None else int(lastgroup)
    if first < 0:
        if warn:
            log.warning("first group < 0, reset to 0")
        first = 0
    if warn and last >= ngroups:
        log.warning("Last group number >= #groups (%d), reset to %d", ngroups, ngroups - 1)
    if first >= last:
        if warn:
            log.warning("firstgroup (%d) cannot be >= lastgroup (%d); group selectors ignored",
                        first, last)
        first, last = 0, ngroups - 1
    # A lastgroup beyond the ramp marks nothing (jwst only warns).
    return first, last


def miri_kept_groups(all_dnu):
    """The groups stcal fits for MIRI: ``(start, stop)``, or None when it fits nothing.

    ``all_dnu``: bool per group, True when the group is DO_NOT_USE in every pixel of every
    integration (after firstgroup/lastgroup and the one-good-group suppression; see
    :func:`all_dnu_groups`). Every leading such group is dropped, then the last group if it is
    one (a single trailing group only, as stcal does); fewer than 2 groups left, or a ramp of
    1 group, gives None.
    """
    all_dnu = np.asarray(all_dnu, dtype=bool)
    ngroups = all_dnu.size
    start = 0
    while start < ngroups and all_dnu[start]:
        start += 1
    if start == ngroups:
        return None
    stop = ngroups - 1 if all_dnu[ngroups - 1] else ngroups
    if stop - start < 2:
        return None
    return (start, stop)


def all_dnu_groups(groupdq_i, firstgroup=None, lastgroup=None, suppress_one_group=True,
                   rows=None):
    """Bool per group of one integration (``groupdq_i`` uint8 (ngroups, ny, nx)), or of a run
    of them ((k, ngroups, ny, nx)): DO_NOT_USE in every pixel once the groups outside
    firstgroup/lastgroup and every group of a ramp with a single good group
    (``suppress_one_group``, off for one group) have it. AND these over the integrations for
    :func:`miri_kept_groups`. ``rows``: only the first rows of the arrays (a block of jump's
    whose last row is not final yet)."""
    gdq = _native(groupdq_i, np.uint8)
    if gdq.ndim == 3:
        gdq = gdq[np.newaxis]
    if gdq.ndim != 4:
        raise Ramp2SlopeError(f"groupdq of one integration must be 3-D (or 4-D for several), got "
                              f"shape {gdq.shape}")
    _, ngroups, ny, _ = gdq.shape
    ny = ny if rows is None else min(int(rows), ny)
    first, last = group_range(ngroups, firstgroup, lastgroup)
    suppress = K.SUPPRESS_ONE if (suppress_one_group and ngroups > 1) else 0
    row_all = np.empty((ny, ngroups), np.uint8)
    K.dnu_groups_kernel(gdq, first, last, suppress, row_all)
    return row_all.all(axis=0) if ny else np.ones(ngroups, bool)


def effective_readnoise(readnoise, gain, nframes):
    """Per-group read noise in electrons, ``RN_cds·gain/sqrt(2·NFRAMES)``, as float32."""
    rn = _native(readnoise, np.float32)
    g = _native(gain, np.float32)
    out = np.empty(rn.shape, np.float32)
    K.effective_readnoise_kernel(rn, g, float(np.sqrt(2.0 * nframes)), out)
    return out


def _is_native(arr, dtype):
    """Whether ``arr`` is a C-contiguous native-endian array of ``dtype`` (``_native`` would
    return it as it is)."""
    return isinstance(arr, np.ndarray) and arr.dtype == np.dtype(dtype) and arr.flags.c_contiguous


def _native(arr, dtype):
    """The array as a C-contiguous native-endian array of ``dtype`` (no copy when it already is)."""
    arr = np.asarray(arr)
    dtype = np.dtype(dtype)
    if arr.dtype != dtype or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=dtype)
    return arr


_DUMMY_ZF = np.zeros((1, 1), np.float32)
_DUMMY_ZF3 = np.zeros((1, 1, 1), np.float32)
_DUMMY_F64 = np.zeros((1, 1), np.float64)
_DUMMY_U8 = np.zeros((1, 1), np.uint8)
_MAX_TABLE_GROUPS = 256


_DUMMY_RATE = ImageProduct(np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32),
                           np.zeros((1, 1), np.uint32), np.zeros((1, 1), np.float32),
                           np.zeros((1, 1), np.float32))


#: The parameters of the first pass that the second must share (OLSRampFitter checks them
#: when it takes over a MedianRates).
_PASS_PARAMETERS = ("shape", "first", "last", "suppress", "has_zeroframe", "kept_groups",
                    "_mode", "tgroup", "tframe", "t1", "save_opt")


def _same(a, b):
    """Equal, NaN included (a missing TFRAME makes the frame time NaN in both)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


class MedianRates:
    """The first pass of the OLS_C fit on its own: each pixel's median rate summed over the
    integrations (float64), whether some pixel is not SATURATED in group 0, and with save_opt
    the fitopt slot counts; for MIRI, the check of the groups cut off the ramps.

    Arguments as for :class:`OLSRampFitter`, which makes one of these unless given one
    (``median_rates``). It needs no reference file, so the pipeline starts it before jump and
    feeds it jump's blocks of rows as they are finished (:meth:`add_rows`), rather than
    reading every integration once more after jump.
    """

    def __init__(self, shape, *, nframes, group_time, frame_time, suppress_one_group=True,
                 firstgroup=None, lastgroup=None, save_opt=False, has_zeroframe=False,
                 instrument=None, dnu_groups=None, _dnu_exact=False):
        # _dnu_exact: dnu_groups was computed by all_dnu_groups from every integration, so
        # the pass need not check it.
        if len(shape) != 4:
            raise Ramp2SlopeError(f"ramp fitting needs a 4-D ramp, got shape {tuple(shape)}")
        nints, ngroups, ny, nx = (int(v) for v in shape)
        if nints < 1 or ngroups < 1:
            raise Ramp2SlopeError("ramp fitting needs at least one integration and one group")
        self.shape = (nints, ngroups, ny, nx)
        self.nints, self.ngroups, self.ny, self.nx = nints, ngroups, ny, nx
        nframes = int(nframes)
        if nframes < 1:
            raise Ramp2SlopeError(f"NFRAMES must be at least 1, got {nframes}")
        self.nframes = nframes
        self.save_opt = bool(save_opt)
        self.suppress = bool(suppress_one_group) and ngroups > 1
        self.first, self.last = group_range(ngroups, firstgroup, lastgroup)
        self.has_zeroframe = bool(has_zeroframe)

        # MIRI: stcal cuts the leading groups (and the last one) that are DO_NOT_USE in every
        # pixel off the ramp before fitting. Group 0 of what is left is then the ramp's first
        # group for every rule keyed on group 0 (one-group ramps, pedestal, saturation check).
        self.miri = str(instrument or "").strip().upper() == "MIRI" and ngroups > 1
        self.kept_groups = (0, ngroups)
        self._dnu_seen = None
        if self.miri:
            given = np.zeros(ngroups, bool) if dnu_groups is None else np.asarray(dnu_groups, bool)
            if given.shape != (ngroups,):
                raise Ramp2SlopeError(f"dnu_groups needs one value per group ({ngroups}), got "
                                      f"shape {given.shape}")
            self.kept_groups = miri_kept_groups(given)
            if not _dnu_exact:
                self._dnu_seen = np.ones(ngroups, bool)
        self.too_few_groups = self.kept_groups is None
        start, stop = self.kept_groups or (0, ngroups)
        self._start, self._stop = start, stop   # the groups the kernels fit
        self._fit_first, self._fit_last = self.first - start, self.last - start
        self._mode = ((K.SUPPRESS_ONE if self.suppress else 0)
                      | (K.CLEAR_JUMP0 if start > 0 else 0))

        # stcal reads the times as C floats, then works in double.
        self.tgroup = float(np.float32(group_time))
        self.tframe = float(np.float32(frame_time))
        self.t1 = (float(nframes) + 1.0) * self.tframe / 2.0

        self._sum = None            # allocated on first use (a one-integration fit needs none)
        self._row_unsat0 = np.zeros(ny, np.uint8)
        self.count = 0              # integrations added
        self.any_unsat0 = False
        self.nseg_max = 0
        self.ncr_max = 0
        self._rows_done = None      # add_rows: the rows added, of every integration

    def _check_integration(self, data_i, gdq_i):
        shape = (self.ngroups, self.ny, self.nx)
        if np.shape(data_i) != shape or np.shape(gdq_i) != shape:
            raise Ramp2SlopeError(
                f"integration arrays must have shape {shape}, got {np.shape(data_i)} and "
                f"{np.shape(gdq_i)}")

    def _run_arrays(self, data, gdq, zeroframe, rows=None):
        """A run of integrations as the kernels take it: (data, gdq, zframe, use_zframe), the
        first two (k, ngroups, ny, nx) (``rows`` rows rather than ny when given), the
        ZEROFRAME (k, ny, nx) or a stand-in."""
        shape = (self.ngroups, self.ny if rows is None else rows, self.nx)
        if (np.ndim(data) != 4 or np.shape(data)[1:] != shape or np.shape(gdq) != np.shape(data)
                or np.shape(data)[0] < 1):
            raise Ramp2SlopeError(
                f"the arrays of a run of integrations must have shape (k, {', '.join(map(str, shape))}) "
                f"with k >= 1, got {np.shape(data)} and {np.shape(gdq)}")
        data = _native(data, np.float32)
        gdq = _native(gdq, np.uint8)
        if not self.uses_zeroframe or zeroframe is None:
            return data, gdq, _DUMMY_ZF3, False
        planes = (data.shape[0], self.ny, self.nx)
        if np.shape(zeroframe) != planes:
            raise Ramp2SlopeError(
                f"zeroframe planes have shape {np.shape(zeroframe)}, need {planes}")
        return data, gdq, _native(zeroframe, np.float32), True

    @property
    def uses_zeroframe(self):
        """Whether a ZEROFRAME given with the ramps is used (not with one-group suppression)."""
        return self.has_zeroframe and not self.suppress

    @property
    def takes_rows(self):
        """Whether :meth:`add_rows` may be used: without a ZEROFRAME to use and without save_opt
        (which count the fitopt slots of whole integrations)."""
        return not self.uses_zeroframe and not self.save_opt and self.count == 0

    def add(self, data, groupdq, zeroframe=None):
        """The next k integrations (``data``, ``groupdq`` (k, ngroups, ny, nx), ``zeroframe``
        (k, ny, nx)), in order."""
        if self._rows_done is not None:
            raise Ramp2SlopeError("the first pass was given blocks of rows: add_rows only")
        data, gdq, zf, use_zf = self._run_arrays(data, groupdq, zeroframe)
        count = data.shape[0]
        if self.count + count > self.nints:
            raise Ramp2SlopeError("add_median_rate called more often than there are integrations")
        if self._dnu_seen is not None:
            self._dnu_seen &= all_dnu_groups(gdq, self.first, self.last, self.suppress)
            if self.count + count == self.nints:
                self._check_kept_groups()
        if not self.too_few_groups:
            K.median_rate_kernel(data, gdq, zf, use_zf, self._start, self._stop,
                                 self._fit_first, self._fit_last, self._mode, self.tgroup,
                                 self.tframe, self.t1, self._sums(), self._row_unsat0)
            self.any_unsat0 = self.any_unsat0 or bool(self._row_unsat0.any())
            if self.save_opt:
                self.count_slots(data, gdq, zf, use_zf)
        self.count += count

    def add_rows(self, y0, data, groupdq, rows):
        """Rows ``y0 .. y0 + rows - 1`` of every integration at once, from the first ``rows``
        rows of ``data`` and ``groupdq`` (float32 and uint8 (nints, ngroups, R, nx), R >= rows,
        C-contiguous: a block of jump's). Each row once, in any order; the pass is complete once
        every row has been given. Not with ``takes_rows`` False."""
        if self._rows_done is None:
            if not self.takes_rows:
                raise Ramp2SlopeError("the first pass needs whole integrations here (a ZEROFRAME "
                                      "to use, save_opt, or integrations already given)")
            self._rows_done = np.zeros(self.ny, bool)
        shape = (self.nints, self.ngroups)
        if (np.ndim(data) != 4 or np.shape(data)[:2] != shape or np.shape(data)[3] != self.nx
                or np.shape(groupdq) != np.shape(data) or not 0 < rows <= np.shape(data)[2]
                or not 0 <= y0 <= self.ny - rows):
            raise Ramp2SlopeError(
                f"rows {y0}..{y0 + rows - 1} of the first pass: blocks must have shape "
                f"({self.nints}, {self.ngroups}, >= rows, {self.nx}) within {self.ny} rows, got "
                f"{np.shape(data)} and {np.shape(groupdq)}")
        if not (_is_native(data, np.float32) and _is_native(groupdq, np.uint8)):
            raise Ramp2SlopeError("the first pass takes C-contiguous float32 and uint8 blocks")
        done = self._rows_done[y0:y0 + rows]
        if done.any():
            raise Ramp2SlopeError(f"row {y0 + int(np.argmax(done))} given twice to the first pass")
        if self._dnu_seen is not None:
            self._dnu_seen &= all_dnu_groups(groupdq, self.first, self.last, self.suppress,
                                             rows=rows)
        if not self.too_few_groups:
            K.median_rate_kernel(data, groupdq, _DUMMY_ZF3, False, self._start, self._stop,
                                 self._fit_first, self._fit_last, self._mode, self.tgroup,
                                 self.tframe, self.t1, self._sums()[y0:y0 + rows],
                                 self._row_unsat0[y0:y0 + rows])
            self.any_unsat0 = self.any_unsat0 or bool(self._row_unsat0[y0:y0 + rows].any())
        done[...] = True
        if self._rows_done.all():
            if self._dnu_seen is not None:
                self._check_kept_groups()
            self.count = self.nints

    def _sums(self):
        if self._sum is None:
            self._sum = np.zeros((self.ny, self.nx), np.float64)
        return self._sum

    def _check_kept_groups(self):
        exact = miri_kept_groups(self._dnu_seen)
        if exact != self.kept_groups:
            raise Ramp2SlopeError(
                f"MIRI ramp fitting: the groups to fit are {exact} (start, stop) from the group "
                f"DQ but {self.kept_groups} from dnu_groups; pass the groups DO_NOT_USE in every "
                f"pixel after one-group suppression (all_dnu_groups)")

    def count_slots(self, data, gdq, zf, use_zf):
        """The fitopt slot counts of a run of integrations (arrays as ``_run_arrays`` gives)."""
        nseg_rows = np.zeros(self.ny, np.int64)
        ncr_rows = np.zeros(self.ny, np.int64)
        K.count_slots_kernel(data, gdq, zf, use_zf, self._start, self._stop, self._fit_first,
                             self._fit_last, self._mode, nseg_rows, ncr_rows)
        if self.ny:
            self.nseg_max = max(self.nseg_max, int(nseg_rows.max()))
            self.ncr_max = max(self.ncr_max, int(ncr_rows.max()))

    @property
    def complete(self):
        return self.count == self.nints

    def sums(self):
        """The sums over the integrations (float64 (ny, nx)), once every integration is in."""
        if not self.complete:
            raise Ramp2SlopeError(
                f"the median rate needs all {self.nints} integrations, got {self.count}")
        return self._sum


class OLSRampFitter:
    """Streaming OLS_C fitter; see the module docstring for the call sequence.

    ``median_rates``: a :class:`MedianRates` made with the same arguments, which this fitter
    takes over (its first pass, done or under way)."""

    def __init__(self, shape, gain, readnoise, pixeldq, *, nframes, group_time, frame_time,
                 groupgap=0, drop_frames1=0, average_dark_current=None, suppress_one_group=True,
                 firstgroup=None, lastgroup=None, save_opt=False, has_zeroframe=False,
                 instrument=None, dnu_groups=None, median_rates=None, _copy_pixeldq=True,
                 _dnu_exact=False):
        # _copy_pixeldq=False (fit_ramps) reads ``pixeldq`` in place: the caller must leave it
        # unchanged until finish(). _dnu_exact: see MedianRates.
        median = MedianRates(
            shape, nframes=nframes, group_time=group_time, frame_time=frame_time,
            suppress_one_group=suppress_one_group, firstgroup=firstgroup, lastgroup=lastgroup,
            save_opt=save_opt, has_zeroframe=has_zeroframe, instrument=instrument,
            dnu_groups=dnu_groups, _dnu_exact=_dnu_exact)
        if median_rates is not None:
            differ = [name for name in _PASS_PARAMETERS
                      if not _same(getattr(median_rates, name), getattr(median, name))]
            if differ:
                raise Ramp2SlopeError(f"the first pass given was made with other parameters "
                                      f"({', '.join(differ)})")
            median = median_rates
        self._median = median
        nints, ngroups, ny, nx = self.shape = median.shape
        self.nints, self.ngroups, self.ny, self.nx = nints, ngroups, ny, nx
        for name in ("save_opt", "suppress", "first", "last", "has_zeroframe", "miri",
                     "kept_groups", "too_few_groups", "_start", "_stop", "_fit_first",
                     "_fit_last", "_mode", "tgroup", "tframe", "t1"):
            setattr(self, name, getattr(median, name))
        for name, arr in (("gain", gain), ("readnoise", readnoise), ("pixeldq", pixeldq)):
            if np.shape(arr) != (ny, nx):
                raise Ramp2SlopeError(
                    f"{name} has shape {np.shape(arr)}, the science data needs {(ny, nx)}")
        nframes = median.nframes
        drop = 0 if drop_frames1 is None else int(drop_frames1)
        self.ped_factor = ((nframes + 1) / 2.0 + drop) / (nframes + int(groupgap))

        # The kernels derive the per-group read noise in electrons (effective_readnoise) and the
        # bad-gain PIXELDQ flags pixel by pixel, so neither needs a full-frame array.
        self.gain = _native(gain, np.float32)
        self.readnoise = _native(readnoise, np.float32)
        self.rn_factor = float(np.sqrt(2.0 * nframes))
        if average_dark_current is None:
            self.dark, self.has_dark = _DUMMY_ZF, False
        else:
            if np.shape(average_dark_current) != (ny, nx):
                raise Ramp2SlopeError(
                    f"average_dark_current has shape {np.shape(average_dark_current)}, "
                    f"the science data needs {(ny, nx)}")
            self.dark, self.has_dark = _native(average_dark_current, np.float32), True
        if _copy_pixeldq:
            self.pixeldq = np.array(pixeldq, dtype=np.uint32)
        else:
            self.pixeldq = _native(pixeldq, np.uint32)
        # Optimal-weight factors for every segment length; beyond _MAX_TABLE_GROUPS they are
        # computed inline instead (same values, more powf calls).
        fit_ngroups = self._stop - self._start
        if fit_ngroups <= _MAX_TABLE_GROUPS:
            self._wtable = K.weight_table(fit_ngroups)
        else:
            self._wtable = np.zeros((0, K.POWERS.size, 0), np.float64)

        self._acc = None
        self._n_fit = 0
        self._rows_next = None   # fit_rows: each row's next integration

    # -- pass 1 -------------------------------------------------------------------------------
    @property
    def median_rates(self):
        """The first pass (:class:`MedianRates`)."""
        return self._median

    def add_median_rate(self, data_i, groupdq_i, zeroframe_i=None):
        """Pass 1 for one integration: its median rate, the SAT-in-group-0 check, slot counts."""
        self._median._check_integration(data_i, groupdq_i)
        self.add_median_rates(np.asarray(data_i)[np.newaxis], np.asarray(groupdq_i)[np.newaxis],
                              None if zeroframe_i is None else np.asarray(zeroframe_i)[np.newaxis])

    def add_median_rates(self, data, groupdq, zeroframe=None):
        """Pass 1 for the next k integrations at once (``data``, ``groupdq`` (k, ngroups, ny,
        nx), ``zeroframe`` (k, ny, nx)): the same sums as k calls of add_median_rate."""
        self._median.add(data, groupdq, zeroframe)

    @property
    def nseg_max(self):
        return self._median.nseg_max

    @property
    def ncr_max(self):
        return self._median.ncr_max

    @property
    def all_saturated(self):
        """True when stcal writes no product: every pixel of every integration seen so far is
        SAT in group 0, or (MIRI, ``too_few_groups``) fewer than 2 groups are left to fit."""
        return self.too_few_groups or not self._median.any_unsat0

    def _median_rate_sum(self):
        return self._median.sums()

    @property
    def median_rate(self):
        """Mean over integrations of the per-integration median rates (float64, DN/s)."""
        # stcal divides by (float) nints; the kernel divides each pixel's sum the same way.
        return self._median_rate_sum() / float(self.nints)

    def _run_arrays(self, data, gdq, zeroframe, rows=None):
        return self._median._run_arrays(data, gdq, zeroframe, rows)

    def _check_integration(self, data_i, gdq_i):
        self._median._check_integration(data_i, gdq_i)

    def _accumulators(self):
        if self._acc is None:
            shape = (self.ny, self.nx)
            # num, Σ 1/var_p, Σ 1/var_r, Σ 1/var_r after CHARGELOSS (float64), then the flags;
            # the kernel starts them with each pixel's first integration
            self._acc = tuple(np.empty(shape, np.float64) for _ in range(4)) + (
                np.empty(shape, np.uint8),)
        return self._acc

    def _opt_arrays(self, opt_out):
        """(opt_out, seg_out, ped_out, cr_out) for the kernel, allocating opt_out if needed."""
        if not self.save_opt:
            return (None, np.zeros((K.N_SEG_FIELDS, 0, 1, 1), np.float32),
                    np.zeros((1, 1), np.float32), np.zeros((0, 1, 1), np.float32))
        if opt_out is None:
            ny, nx = self.ny, self.nx
            opt_out = IntegrationOptional(
                segments=np.zeros((K.N_SEG_FIELDS, self.nseg_max, ny, nx), np.float32),
                pedestal=np.zeros((ny, nx), np.float32),
                crmag=np.zeros((self.ncr_max, ny, nx), np.float32),
            )
        return opt_out, opt_out.segments, opt_out.pedestal, opt_out.crmag

    def _run_fit_kernel(self, data_i, gdq_i, zf, use_zf, mrate_sum, mrate_div, single, out,
                        acc, rate, seg_out, ped_out, cr_out, rows=slice(None), fresh=False):
        # ``rows``: the image rows that data_i holds, of the per-pixel planes (views of whole
        # rows of C-contiguous planes are C-contiguous: the kernel is compiled once)
        dark = self.dark[rows] if self.has_dark else self.dark
        K.fit_integrations_kernel(
            data_i, gdq_i, zf, use_zf, self._start, self._stop, self._fit_first, self._fit_last,
            self._mode,
            self.gain[rows], self.readnoise[rows], self.rn_factor, dark, self.has_dark,
            self.pixeldq[rows], mrate_sum, mrate_div, single, self._wtable,
            self.tgroup, self.tframe, self.t1, self.ped_factor,
            out.data, out.err, out.dq, out.var_poisson, out.var_rnoise,
            *acc,
            rate.data, rate.err, rate.dq, rate.var_poisson, rate.var_rnoise,
            self.save_opt, seg_out, ped_out, cr_out, fresh,
        )

    # -- pass 2 -------------------------------------------------------------------------------
    def fit_integration(self, data_i, groupdq_i, zeroframe_i=None, out=None, opt_out=None):
        """Pass 2 for the next integration; returns its rateints planes (and fitopt arrays)."""
        self._check_integration(data_i, groupdq_i)
        if out is None:
            out = ImageProduct.unfilled((self.ny, self.nx))
        opt_out = self._fit_run(np.asarray(data_i)[np.newaxis], np.asarray(groupdq_i)[np.newaxis],
                                None if zeroframe_i is None else np.asarray(zeroframe_i)[np.newaxis],
                                out[np.newaxis], opt_out)
        return IntegrationFit(rateints=out, optional=opt_out)

    def fit_integrations(self, data, groupdq, zeroframe=None, out=None):
        """Pass 2 for the next k integrations at once (arrays as for add_median_rates); returns
        their rateints planes, an ``ImageProduct`` of (k, ny, nx) arrays (``out`` when given).
        Without save_opt only: its arrays are made one integration at a time."""
        if self.save_opt:
            raise Ramp2SlopeError("with save_opt, fit the integrations one by one "
                                  "(fit_integration)")
        count = np.shape(data)[0] if np.ndim(data) == 4 else 0
        if out is None:
            out = ImageProduct.unfilled((count, self.ny, self.nx))
        self._fit_run(data, groupdq, zeroframe, out, None)
        return out

    @property
    def fits_rows(self):
        """Whether :meth:`fit_rows` may be used: without save_opt or a ZEROFRAME to use, and
        before any fit_integration(s)."""
        return not (self.save_opt or self._median.uses_zeroframe or self._n_fit)

    def fit_rows(self, y0, data, groupdq, out, start=0):
        """Pass 2 for rows ``y0 .. y0 + R - 1`` of integrations ``start .. start + k - 1``,
        instead of fit_integration(s): ``data`` and ``groupdq`` (k, ngroups, R, nx), ``out`` an
        ``ImageProduct`` of (k, R, nx) arrays that receives their rateints rows (returned).
        Blocks of rows in any order; for each row, its integrations in order (each pixel's
        exposure sums are then those of one integration at a time). Without save_opt or a
        ZEROFRAME to use (their arrays are made by whole integrations)."""
        if not self.fits_rows:
            raise Ramp2SlopeError("fit_rows: not with save_opt or a ZEROFRAME to use (fit whole "
                                  "integrations), nor after fit_integration(s)")
        count, rows = (np.shape(data)[0], np.shape(data)[2]) if np.ndim(data) == 4 else (0, 0)
        if (np.shape(data) != (count, self.ngroups, rows, self.nx)
                or np.shape(groupdq) != np.shape(data) or rows < 1 or count < 1
                or not 0 <= y0 <= self.ny - rows or not 0 <= start <= self.nints - count):
            raise Ramp2SlopeError(
                f"rows {y0}.. of integrations {start}.. of the fit: blocks must have shape "
                f"(k, {self.ngroups}, R, {self.nx}) within {self.nints} integrations and "
                f"{self.ny} rows, got {np.shape(data)} and {np.shape(groupdq)}")
        planes = (count, rows, self.nx)
        if any(np.shape(getattr(out, name)) != planes for name in _PRODUCT_FIELDS):
            raise Ramp2SlopeError(f"the rateints rows to fill must have shape {planes}")
        if self._rows_next is None:
            self._rows_next = np.zeros(self.ny, np.int64)
        following = self._rows_next[y0:y0 + rows]
        if (following != start).any():
            y = int(np.argmax(following != start))
            raise Ramp2SlopeError(f"row {y0 + y} of the fit: integration {start} given, "
                                  f"{int(following[y])} expected (each once, in order)")
        data, gdq, zf, use_zf = self._run_arrays(data, groupdq, None, rows)
        acc = tuple(array[y0:y0 + rows] for array in self._accumulators())
        self._run_fit_kernel(data, gdq, zf, use_zf, self._median_rate_sum()[y0:y0 + rows],
                             float(self.nints), False, out, acc, _DUMMY_RATE,
                             *self._opt_arrays(None)[1:], rows=slice(y0, y0 + rows),
                             fresh=start == 0)
        following += count
        return out

    def _fit_run(self, data, groupdq, zeroframe, out, opt_out):
        """The fit kernel on a run of integrations into ``out`` (3-D planes); returns opt_out."""
        if self._rows_next is not None:
            raise Ramp2SlopeError("fit_integration(s) after fit_rows: use one kind of call")
        data, gdq, zf, use_zf = self._run_arrays(data, groupdq, zeroframe)
        count = data.shape[0]
        if self._n_fit + count > self.nints:
            raise Ramp2SlopeError("fit_integration called more often than there are integrations")
        planes = (count, self.ny, self.nx)
        if any(np.shape(getattr(out, name)) != planes for name in _PRODUCT_FIELDS):
            raise Ramp2SlopeError(f"the rateints planes to fill must have shape {planes}")
        mrate_sum = self._median_rate_sum()
        opt_out, seg_out, ped_out, cr_out = self._opt_arrays(opt_out)
        self._run_fit_kernel(data, gdq, zf, use_zf, mrate_sum, float(self.nints), False,
                             out, self._accumulators(), _DUMMY_RATE, seg_out, ped_out, cr_out,
                             fresh=self._n_fit == 0)
        self._n_fit += count
        return opt_out

    def _fit_only_integration(self, data_i, groupdq_i, zeroframe_i, out, rate, opt_out=None):
        """Both passes of a one-integration exposure in one kernel call: the median rate comes
        from the ramp being fitted, and the rate product is written straight to ``rate``
        (an ``ImageProduct`` of 2-D arrays) without exposure sums. Replaces add_median_rate,
        fit_integration and finish; the all-saturated case must be checked by the caller.
        With save_opt, the slot counts must have been set (``MedianRates.count_slots``)."""
        if self.nints != 1 or self._median.count or self._n_fit:
            raise Ramp2SlopeError("_fit_only_integration needs a fresh one-integration fitter")
        self._check_integration(data_i, groupdq_i)
        data, gdq, zf, use_zf = self._run_arrays(
            np.asarray(data_i)[np.newaxis], np.asarray(groupdq_i)[np.newaxis],
            None if zeroframe_i is None else np.asarray(zeroframe_i)[np.newaxis])
        opt_out, seg_out, ped_out, cr_out = self._opt_arrays(opt_out)
        acc = (_DUMMY_F64,) * 4 + (_DUMMY_U8,)
        self._run_fit_kernel(data, gdq, zf, use_zf, _DUMMY_F64, 1.0, True, out[np.newaxis], acc,
                             rate, seg_out, ped_out, cr_out)
        self._median.count = self._n_fit = 1
        self._median.any_unsat0 = True
        return IntegrationFit(rateints=out, optional=opt_out)

    def finish(self, out=None):
        """Combine the integrations into the rate product (after every fit_integration, or
        fit_rows of every row)."""
        if self._rows_next is not None:
            if (self._rows_next != self.nints).any():
                y = int(np.argmax(self._rows_next != self.nints))
                raise Ramp2SlopeError(f"the rate needs every row of all {self.nints} "
                                      f"integrations fitted, row {y} has "
                                      f"{int(self._rows_next[y])}")
        elif self._n_fit != self.nints:
            raise Ramp2SlopeError(
                f"the rate needs all {self.nints} integrations fitted, got {self._n_fit}")
        if out is None:
            out = ImageProduct.unfilled((self.ny, self.nx))
        K.finish_rate_kernel(
            self.pixeldq, self.gain, *self._accumulators(),
            out.data, out.err, out.dq, out.var_poisson, out.var_rnoise,
        )
        return out


def fit_ramps(data, groupdq, pixeldq, gain, readnoise, *, nframes, group_time, frame_time,
              groupgap=0, drop_frames1=0, zeroframe=None, average_dark_current=None,
              suppress_one_group=True, firstgroup=None, lastgroup=None, save_opt=False,
              threads=None, instrument=None):
    """Fit every ramp of an exposure with OLS_C; see the module docstring for the contract.

    ``instrument`` "MIRI" (of a ramp of more than one group) fits only the groups that stcal
    keeps for MIRI (:func:`miri_kept_groups`), and returns None when fewer than 2 are left."""
    if np.ndim(data) != 4 or np.shape(groupdq) != np.shape(data):
        raise Ramp2SlopeError(
            f"data and groupdq must be 4-D arrays of one shape, got {np.shape(data)} and "
            f"{np.shape(groupdq)}")
    nints, ngroups, ny, nx = np.shape(data)
    if zeroframe is not None and np.shape(zeroframe) != (nints, ny, nx):
        raise Ramp2SlopeError(
            f"zeroframe has shape {np.shape(zeroframe)}, the science data needs {(nints, ny, nx)}")
    previous_threads = None
    if threads is not None:
        previous_threads = numba.get_num_threads()
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        return _fit_ramps(data, groupdq, pixeldq, gain, readnoise, nframes, group_time,
                          frame_time, groupgap, drop_frames1, zeroframe, average_dark_current,
                          suppress_one_group, firstgroup, lastgroup, save_opt, instrument)
    finally:
        if previous_threads is not None:
            numba.set_num_threads(previous_threads)


def _fit_ramps(data, groupdq, pixeldq, gain, readnoise, nframes, group_time, frame_time,
               groupgap, drop_frames1, zeroframe, average_dark_current, suppress_one_group,
               firstgroup, lastgroup, save_opt, instrument):
    nints, ngroups, ny, nx = np.shape(data)
    start = 0
    dnu_groups = None
    if str(instrument or "").strip().upper() == "MIRI" and ngroups > 1:
        dnu_groups = np.ones(ngroups, bool)
        for i in range(nints):
            dnu_groups &= all_dnu_groups(groupdq[i], firstgroup, lastgroup, suppress_one_group)
        kept = miri_kept_groups(dnu_groups)
        if kept is None:
            log.warning("MIRI ramps need at least 2 groups left once the groups DO_NOT_USE in "
                        "every pixel are dropped; no slopes")
            return None
        start = kept[0]
    sat = np.uint8(dqflags.group["SATURATED"])
    if np.all(np.asarray(groupdq[:, start]) & sat):
        return None
    fitter = OLSRampFitter(
        (nints, ngroups, ny, nx), gain, readnoise, pixeldq, nframes=nframes,
        group_time=group_time, frame_time=frame_time, groupgap=groupgap,
        drop_frames1=drop_frames1, average_dark_current=average_dark_current,
        suppress_one_group=suppress_one_group, firstgroup=firstgroup, lastgroup=lastgroup,
        save_opt=save_opt, has_zeroframe=zeroframe is not None, instrument=instrument,
        dnu_groups=dnu_groups, _copy_pixeldq=False, _dnu_exact=True,
    )

    def zf(i):
        return None if zeroframe is None else zeroframe[i]

    # Arrays the kernels take as they are go to each kernel in one call (the sums over the
    # integrations are made in the same order as one integration at a time); others are
    # converted one integration at a time, which keeps the copies small.
    at_once = _is_native(data, np.float32) and _is_native(groupdq, np.uint8) and (
        zeroframe is None or _is_native(zeroframe, np.float32))
    single = nints == 1
    if single:
        if save_opt:
            fitter.median_rates.count_slots(*fitter._run_arrays(
                data[:1], groupdq[:1], None if zeroframe is None else zeroframe[:1]))
    elif at_once:
        fitter.add_median_rates(data, groupdq, zeroframe)
    else:
        for i in range(nints):
            fitter.add_median_rate(data[i], groupdq[i], zf(i))

    rateints = ImageProduct.unfilled((nints, ny, nx))
    optional = None
    if save_opt:
        nseg, ncr = fitter.nseg_max, fitter.ncr_max
        # One block holds the seven per-segment arrays: each integration's (7, nseg, ny, nx)
        # part is segments[:, i].
        segments = np.zeros((len(SEGMENT_FIELDS), nints, nseg, ny, nx), np.float32)
        optional = OptionalProduct(
            *(segments[f] for f in range(len(SEGMENT_FIELDS))),
            pedestal=np.zeros((nints, ny, nx), np.float32),
            crmag=np.zeros((nints, ncr, ny, nx), np.float32),
        )
    rate = ImageProduct.unfilled((ny, nx)) if single else None
    # segments[:, i] is strided for several integrations: the kernel writes a contiguous
    # block, copied into place, so that it runs with the array layout the pipeline compiled
    # (a strided one is another compilation of the whole kernel, about 25 s)
    scratch = (np.zeros(segments.shape[:1] + segments.shape[2:], np.float32)
               if save_opt and not single else None)
    if at_once and not single and not save_opt:
        fitter.fit_integrations(data, groupdq, zeroframe, out=rateints)
    for i in range(fitter._n_fit, nints):
        opt_out = None
        if save_opt:
            opt_out = IntegrationOptional(
                segments=segments[:, 0] if single else scratch, pedestal=optional.pedestal[i],
                crmag=optional.crmag[i])
        if single:
            fitter._fit_only_integration(data[0], groupdq[0], zf(0), rateints[0], rate, opt_out)
        else:
            if scratch is not None:
                scratch[...] = 0
            fitter.fit_integration(data[i], groupdq[i], zf(i), out=rateints[i], opt_out=opt_out)
            if scratch is not None:
                segments[:, i] = scratch
    if not single:
        rate = fitter.finish()
    return RampFitResult(rate=rate, rateints=rateints, optional=optional,
                         nseg_max=fitter.nseg_max if save_opt else 0,
                         ncr_max=fitter.ncr_max if save_opt else 0)

