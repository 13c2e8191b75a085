"""saturation: flag saturated, A/D-floor and partially saturated groups (spec §4.3).

Works on the raw ramp (DN, bias included) with the SATURATION threshold and DQ already
DQ_DEF-translated and cut out to the science subarray, plus the (cut-out, raw) SUPERBIAS image
for the group-2 test. Everything is done in place, one integration at a time, and matches
``stcal.saturation.flag_saturated_pixels`` as called by jwst 3.0.0 (not the NIRSpec IRS2
variant, which works on a different pixel layout).
"""
import numba
import numpy as np

from ramp2slope.datamodels import dqflags
from ramp2slope.datamodels.models import DataModel
from ramp2slope.errors import ReferenceFileError
from ramp2slope.runtime.threads import serial_if_small

__all__ = [
    "ATOD_LIMIT", "make_read_pattern", "prepare_thresholds", "grow_flags", "flag_saturation",
    "irs2_flag_saturation",
]

#: Largest value of the 16-bit A/D converter; NO_SAT_CHECK pixels get a threshold one above it.
ATOD_LIMIT = 65535.0

_DNU = dqflags.group["DO_NOT_USE"]
_SAT = dqflags.group["SATURATED"]
_AD_FLOOR = dqflags.group["AD_FLOOR"]
_NO_SAT_CHECK = dqflags.pixel["NO_SAT_CHECK"]


def make_read_pattern(ngroups, nframes):
    """The frames (1-based) averaged into each group: ``[[g*nframes+1, ..., g*nframes+nframes]]``.

    GROUPGAP is ignored, as in the official steps (saturation and linearity build it this way).
    """
    return [[x + 1 + g * nframes for x in range(nframes)] for g in range(ngroups)]


def prepare_thresholds(sat_thresh, sat_dq, in_place=False):
    """Return ``(thresh, dq, no_check)`` ready for flagging; the inputs are not modified, unless
    ``in_place`` (then float32 and uint32 inputs become ``thresh`` and ``dq`` themselves).

    ``thresh`` is a float32 copy of the threshold with ATOD_LIMIT + 1 (65536) where the reference
    DQ has NO_SAT_CHECK or the threshold is NaN; ``dq`` is a uint32 copy of the reference DQ with
    NO_SAT_CHECK added where the threshold is NaN (this is what is OR-ed into PIXELDQ);
    ``no_check`` is the boolean mask of those pixels.
    """
    def own(array, dtype):
        if in_place and isinstance(array, np.ndarray) and array.dtype == dtype \
                and array.flags.writeable:
            return array
        return np.array(array, dtype=dtype, copy=True)

    thresh = own(sat_thresh, np.float32)
    dq = own(sat_dq, np.uint32)
    if thresh.shape != dq.shape:
        raise ReferenceFileError(f"saturation threshold shape {thresh.shape} != DQ shape {dq.shape}")
    nan = np.isnan(thresh)
    no_check = ((dq & _NO_SAT_CHECK) == _NO_SAT_CHECK) | nan
    dq[nan] |= np.uint32(_NO_SAT_CHECK)
    thresh[no_check] = np.float32(ATOD_LIMIT + 1)
    return thresh, dq, no_check


# --------------------------------------------------------------------------------------------
# kernels


@numba.njit(parallel=True, cache=True)
def _dilate_or(src, srcbit, n, hbuf, target, bit):
    """target[y, x] |= bit wherever a pixel of the (2n+1)x(2n+1) box around (y, x), clipped at
    the array edges, has ``src & srcbit``. Binary dilation with a square element; pixels
    outside the array count as unflagged. ``src`` may be ``target``: it is read completely
    before anything is written.

    Each pass ORs whole shifted rows (one shift per offset) rather than scanning each pixel's
    window with an early exit: loops without branches, which the compiler vectorises (a full
    frame's plane took 45 ms on one core the other way)."""
    ny, nx = src.shape
    for y in numba.prange(ny):
        row, out = src[y], hbuf[y]
        for x in range(nx):
            out[x] = np.uint8(1) if row[x] & srcbit else np.uint8(0)
        for k in range(1, min(n, nx - 1) + 1):
            for x in range(nx - k):
                out[x] |= np.uint8(1) if row[x + k] & srcbit else np.uint8(0)
            for x in range(k, nx):
                out[x] |= np.uint8(1) if row[x - k] & srcbit else np.uint8(0)
    for y in numba.prange(ny):
        hit = hbuf[max(0, y - n)].copy()
        for k in range(max(0, y - n) + 1, min(ny, y + n + 1)):
            above = hbuf[k]
            for x in range(nx):
                hit[x] |= above[x]
        out = target[y]
        for x in range(nx):
            out[x] |= bit if hit[x] else np.uint8(0)


@numba.njit(parallel=True, cache=True)
def _first_saturated(data_int, gdq_int, thresh, first, input_sat, zplane, zflag):
    """Forward pass over a whole integration: ``first[y, x]`` = the first group at or above the
    threshold (ngroups if none), AD_FLOOR|DNU on every group whose value is <= 0, and
    ``input_sat[g]`` = 1 where group g already had SAT bits on input. With a zero frame
    ``zplane`` (a (0, 0) array when there is none), ``zflag`` gets its flags: SAT at or above
    the threshold, AD_FLOOR|DNU at or below 0."""
    ngroups, ny, nx = data_int.shape
    low = np.uint8(64 | 1)
    sat = np.uint8(2)
    zero = np.uint8(0)
    with_zero = zplane.shape[0] == ny
    for y in numba.prange(ny):
        row_first = first[y]
        row_thresh = thresh[y]
        if with_zero:
            zrow, zflags = zplane[y], zflag[y]
            for x in range(nx):
                z = zrow[x]
                zflags[x] = (sat if z >= row_thresh[x] else zero) | (low if z <= 0 else zero)
        for x in range(nx):
            row_first[x] = ngroups
        # Groups from the last to the first, so that the earliest group at the threshold is
        # the one left in ``first``: the inner loop has no dependence between pixels and
        # is vectorised (selects and unconditional stores instead of branches).
        for g in range(ngroups - 1, -1, -1):
            values = data_int[g, y]
            flags = gdq_int[g, y]
            group = np.uint16(g)
            seen = zero
            for x in range(nx):
                v = values[x]
                f = flags[x]
                seen |= f & sat
                if v >= row_thresh[x]:
                    row_first[x] = group
                flags[x] = f | (low if v <= 0 else zero)
            if seen:
                input_sat[g] = 1


@numba.njit(parallel=True, cache=True)
def _row_min(first, n, hmin):
    """hmin[y, x] = min of first[y, x-n .. x+n] (clipped at the edges): the minimum with each
    shifted row in turn (branch-free loops, vectorised; see ``_dilate_or``)."""
    ny, nx = first.shape
    for y in numba.prange(ny):
        row, out = first[y], hmin[y]
        for x in range(nx):
            out[x] = row[x]
        for k in range(1, min(n, nx - 1) + 1):
            for x in range(nx - k):
                out[x] = min(out[x], row[x + k])
            for x in range(k, nx):
                out[x] = min(out[x], row[x - k])


@numba.njit(parallel=True, cache=True)
def _or_sat_from(gdq_int, hmin, n, sat, zplane, zflag):
    """SAT on every group from the earliest first-saturated group of the (2n+1)^2 box around
    each pixel (rows clipped at the edges) to the last group; and 0.0 in the zero frame
    ``zplane`` (a (0, 0) array when there is none) where ``zflag`` has a flag."""
    ngroups, ny, nx = gdq_int.shape
    with_zero = zplane.shape[0] == ny
    for y in numba.prange(ny):
        if with_zero:
            zrow, zflags = zplane[y], zflag[y]
            for x in range(nx):
                if zflags[x] != 0:
                    zrow[x] = np.float32(0.0)
        earliest = hmin[max(0, y - n)].copy()
        for k in range(max(0, y - n) + 1, min(ny, y + n + 1)):
            other = hmin[k]
            for x in range(nx):
                earliest[x] = min(earliest[x], other[x])
        for g in range(ngroups):
            flags = gdq_int[g, y]
            for x in range(nx):
                flags[x] |= sat if earliest[x] <= g else np.uint8(0)


@numba.njit(parallel=True, cache=True)
def _backward_flags(plane, gdq, gdq_next, thresh, no_check, dilution, flag):
    """Second pass for one group: DNU where the value reaches the diluted threshold, the group
    is neither SAT nor DNU and the next group is SAT. Comparisons in float64, as the official
    float32-threshold times float64-factor product promotes them."""
    ny, nx = plane.shape
    for y in numba.prange(ny):
        for x in range(nx):
            factor = 1.0 if no_check[y, x] else dilution
            limit = np.float64(thresh[y, x]) * factor
            hit = (np.float64(plane[y, x]) >= limit) and (gdq[y, x] & 3) == 0 \
                and (gdq_next[y, x] & 2) != 0
            flag[y, x] = np.uint8(1) if hit else np.uint8(0)


@numba.njit(parallel=True, cache=True)
def _group2_test(d0, d1, gdq1, gdq2, thresh, bias, has_bias, mean_first, last_third, nread_second):
    """Group-2 test: DNU on group index 1 where group 0 predicts no saturation by group 2, the
    jump from group 0 to 1 could come from a saturating last frame, and group 2 (but not 1)
    is SAT. Arithmetic types follow the official NumPy expression."""
    ny, nx = d0.shape
    for y in numba.prange(ny):
        for x in range(nx):
            t = thresh[y, x]
            b = bias[y, x] if has_bias else np.float32(0.0)
            first = d0[y, x] - b  # float32
            predicted = (np.float64(first) / mean_first) * last_third + np.float64(b)
            if not (predicted < np.float64(t)):
                continue
            step = d1[y, x] - d0[y, x]  # float32
            room = (t - d0[y, x]) / nread_second  # float32
            if not (step > room):
                continue
            if (gdq2[y, x] & 2) != 0 and (gdq1[y, x] & 2) == 0:
                gdq1[y, x] |= np.uint8(1)


def _flag_model(model, ref_model, n_pix_grow_sat, use_readpatt, bias_model):
    """The official module-level forms: flag ``model`` as SaturationStep would, return it."""
    from .saturation_step import SaturationStep

    step = SaturationStep(override_saturation=ref_model, n_pix_grow_sat=n_pix_grow_sat,
                          use_readpatt=use_readpatt,
                          override_superbias=bias_model if bias_model is not None else "N/A")
    return step.process(model)


def irs2_flag_saturation(output_model, ref_model, n_pix_grow_sat, use_readpatt, bias_model=None):
    """The official module-level IRS2 function: a RampModel in the IRS2 layout, a SaturationModel
    of its science pixels and optionally an IRS2-layout SuperBiasModel; returns the model."""
    return _flag_model(output_model, ref_model, n_pix_grow_sat, use_readpatt, bias_model)


def grow_flags(plane_dq, srcbit, bit, n, target=None):
    """Dilate the pixels of ``plane_dq`` having ``srcbit`` by a (2n+1)^2 square (edges clipped,
    no cascading) and OR ``bit`` into ``target`` (default: ``plane_dq`` itself) there, in place.
    ``n <= 0`` does nothing."""
    if n <= 0:
        return
    if target is None:
        target = plane_dq
    hbuf = np.empty(plane_dq.shape, dtype=np.uint8)
    _dilate_or(plane_dq, np.uint8(srcbit), int(n), hbuf, target, np.uint8(bit))


def flag_saturation(data, groupdq, pixeldq=None, sat_thresh=None, sat_dq=None, n_pix_grow_sat=1,
                    use_readpatt=True, nframes=1, bias=None, zeroframe=None, bias_model=None,
                    prepared=None):
    """Flag saturation in place.

    Also takes the official module-level form, ``flag_saturation(model, ref_model,
    n_pix_grow_sat, use_readpatt, bias_model=None)``: a RampModel and a SaturationModel (and
    optionally a SuperBiasModel), flagged as SaturationStep flags them; it returns the model.

    Returns ``(n_saturated, n_ad_floor)``: the numbers of pixels with SAT, resp. AD_FLOOR, in
    any group of any integration (the official step logs them).

    Parameters
    ----------
    data : float32 (nints, ngroups, ny, nx), raw DN (not modified)
    groupdq : uint8, same shape; SAT, AD_FLOOR|DNU and DNU are OR-ed in
    pixeldq : uint32 (ny, nx); the reference DQ (plus NO_SAT_CHECK where the threshold is NaN)
        is OR-ed in
    sat_thresh, sat_dq : (ny, nx) threshold (raw DN) and translated DQ of the SATURATION
        reference; not modified
    n_pix_grow_sat : int, the half-width of the square used to grow the flags
    use_readpatt : bool, enables the frame-averaging backward pass and the group-2 test
    nframes : int, science NFRAMES (used for the read pattern)
    bias : (ny, nx) SUPERBIAS image (raw; NaN left as is) for the group-2 test, or None (= 0)
    zeroframe : float32 (nints, ny, nx) or None; flagged zero-frame pixels are set to 0.0
    prepared : ``prepare_thresholds(sat_thresh, sat_dq)`` when the caller has it already (a
        pipeline flagging one integration at a time); not modified
    """
    if isinstance(data, DataModel):
        return _flag_model(data, groupdq, n_pix_grow_sat, use_readpatt, bias_model)
    nints, ngroups, ny, nx = data.shape
    if prepared is None:
        prepared = prepare_thresholds(sat_thresh, sat_dq)
    thresh, ref_dq, no_check = prepared
    if thresh.shape != (ny, nx):
        raise ReferenceFileError(f"saturation reference shape {thresh.shape} != science pixels {(ny, nx)}")
    no_check = no_check.view(np.uint8) if no_check.dtype == np.bool_ else no_check.astype(np.uint8)

    pattern = make_read_pattern(ngroups, int(nframes)) if use_readpatt else None
    has_bias = bias is not None
    bias_arr = (np.ascontiguousarray(bias, dtype=np.float32) if has_bias
                else np.zeros((1, 1), dtype=np.float32))
    if has_bias and bias_arr.shape != (ny, nx):
        raise ReferenceFileError(f"superbias shape {bias_arr.shape} != science pixels {(ny, nx)}")

    grow = int(n_pix_grow_sat)
    flag = np.empty((ny, nx), dtype=np.uint8)
    hbuf = np.empty((ny, nx), dtype=np.uint8)
    first = np.empty((ny, nx), dtype=np.uint16)
    hmin = np.empty((ny, nx), dtype=np.uint16)
    input_sat = np.zeros(ngroups, dtype=np.uint8)
    any_flag = np.zeros((ny, nx), dtype=np.uint8)
    no_zero = np.zeros((0, 0), dtype=np.float32)
    sat = np.uint8(_SAT)
    dnu = np.uint8(_DNU)
    # each group's dilution (mean over its frames / its last frame), the same in every integration
    dilutions = [np.mean(frames) / frames[-1] for frames in pattern] if pattern is not None else []

    # the kernels below do little per pixel: one thread on a small frame (see serial_if_small)
    with serial_if_small(ny * nx):
        for integ in range(nints):
            gdq_int = groupdq[integ]
            # Forward pass. SAT is sticky from the first group at the threshold, and is grown by
            # the (2n+1)^2 box group by group; growing the sticky set of group g is the same as
            # flagging every group from the earliest first-saturated group in the box on, so the
            # whole integration takes three passes instead of three per group.
            input_sat[:] = 0
            # The zero frame (when there is one): flagged values become 0.0, meaning "bad" from
            # here on. Its flags are made in ``flag`` with the first pass, grown, and applied
            # with the second, before the backward pass takes ``flag`` (on their own they were
            # numpy expressions: 10 ms a full frame, serial).
            zplane = no_zero if zeroframe is None else zeroframe[integ]
            _first_saturated(data[integ], gdq_int, thresh, first, input_sat, zplane, flag)
            if zeroframe is not None and grow > 0:
                _dilate_or(flag, sat, grow, hbuf, flag, sat)
            # SAT bits present on input are grown too, in their own group only (rare)
            pre_sat = {g: gdq_int[g] & sat for g in np.flatnonzero(input_sat)} if grow > 0 else {}
            _row_min(first, max(grow, 0), hmin)
            _or_sat_from(gdq_int, hmin, max(grow, 0), sat, zplane, flag)
            for g, plane in pre_sat.items():
                _dilate_or(plane, sat, grow, hbuf, gdq_int[g], sat)
            # backward pass for groups averaged from several frames
            if pattern is not None:
                for g in range(ngroups - 2, -1, -1):
                    dilution = dilutions[g]
                    if dilution == 1:
                        continue
                    _backward_flags(data[integ, g], gdq_int[g], gdq_int[g + 1], thresh, no_check,
                                    float(dilution), flag)
                    if grow > 0:
                        _dilate_or(flag, np.uint8(1), grow, hbuf, gdq_int[g], dnu)
                    else:
                        gdq_int[g] |= flag  # flag holds 0 or 1 == DNU
                # group-2 test
                if ngroups > 2:
                    _group2_test(data[integ, 0], data[integ, 1], gdq_int[1], gdq_int[2], thresh,
                                 bias_arr, has_bias, float(np.mean(pattern[0])),
                                 float(pattern[2][-1]), np.float32(len(pattern[1])))
            any_flag |= np.bitwise_or.reduce(gdq_int, axis=0)

    pixeldq |= ref_dq
    return (int(np.count_nonzero(any_flag & sat)),
            int(np.count_nonzero(any_flag & np.uint8(_AD_FLOOR))))
