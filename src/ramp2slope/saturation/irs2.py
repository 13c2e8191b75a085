"""saturation for NIRSpec IRS2 readouts (jwst 3.0.0's own variant, not stcal's).

The threshold covers the 2048 science rows only, so each group's science rows are tested where
they lie in the IRS2 layout, and the flags put back there; the interleaved reference samples
and the reference output are never flagged. jwst's IRS2 variant differs from the traditional
one in ways that change the flags, and they are kept:

* no frame-averaging backward pass (no DO_NOT_USE before a saturating group);
* the group-2 test sets SATURATED (not DO_NOT_USE) on group index 1, grown like any SAT flag, and
  asks only that group 2's own value reach the threshold;
* with no SUPERBIAS the group-2 test takes a bias of 0.

The tests run in compiled kernels over the science rows, in the arithmetic jwst's numpy
expressions use (float32 comparisons and differences, the group-2 prediction in float64); as
numpy expressions on pieces of rows they took 0.35 s of a full frame of 10 groups on either
one or two cores (gathering the rows, temporaries, boolean-mask writes), the kernels 0.05 s.
"""
import numba
import numpy as np

from ramp2slope.datamodels import dqflags
from ramp2slope.errors import ReferenceFileError

from .saturation import grow_flags, make_read_pattern, prepare_thresholds

__all__ = ["flag_saturation_irs2"]

_SAT = np.uint8(dqflags.group["SATURATED"])
_LOW = np.uint8(dqflags.group["AD_FLOOR"] | dqflags.group["DO_NOT_USE"])


# --------------------------------------------------------------------------------------------
# kernels (row k of the science arrays is row science_rows[k] of the IRS2 plane)


@numba.njit(parallel=True, cache=True)
def _test_rows(plane, science_rows, thresh, flag, low):
    """flag = SAT where a science pixel of ``plane`` is at or above its threshold, low =
    AD_FLOOR | DO_NOT_USE where it is at or below 0 (float32 comparisons, as jwst's)."""
    n, nx = thresh.shape
    for k in numba.prange(n):
        src = plane[science_rows[k]]
        for x in range(nx):
            value = src[x]
            flag[k, x] = _SAT if value >= thresh[k, x] else np.uint8(0)
            low[k, x] = _LOW if value <= 0 else np.uint8(0)


@numba.njit(parallel=True, cache=True)
def _group2_rows(d0, d1, d2, science_rows, bias, has_bias, thresh, frame_mean0, last_frame2,
                 frames1, early):
    """early = SAT where group 1 rose so fast that its last frame may have saturated and group
    2 itself is at the threshold. jwst's expression types: the prediction from group 0 is
    float64 (the float64 mean of group 0's frame numbers divides it), the rise and the room
    left (divided by ``frames1``, float32) are float32."""
    n, nx = thresh.shape
    for k in numba.prange(n):
        r = science_rows[k]
        for x in range(nx):
            v0 = d0[r, x]
            b = bias[r, x] if has_bias else np.float32(0.0)
            first = v0 - b
            predicted = (np.float64(first) / frame_mean0) * last_frame2 + np.float64(b)
            t = thresh[k, x]
            room = (t - v0) / frames1
            candidate = predicted < np.float64(t) and (d1[r, x] - v0) > room
            early[k, x] = _SAT if candidate and d2[r, x] >= t else np.uint8(0)


@numba.njit(parallel=True, cache=True)
def _or_rows(gdq_plane, science_rows, sticky, flag, low, seen):
    """sticky |= flag, then the science rows of ``gdq_plane`` and ``seen`` |= sticky | low."""
    n, nx = sticky.shape
    for k in numba.prange(n):
        row = gdq_plane[science_rows[k]]
        for x in range(nx):
            held = sticky[k, x] | flag[k, x]
            sticky[k, x] = held
            value = held | low[k, x]
            row[x] |= value
            seen[k, x] |= value


def flag_saturation_irs2(data, groupdq, pixeldq, sat_thresh, sat_dq, rows, n_pix_grow_sat=1,
                         use_readpatt=True, nframes=1, bias=None, zeroframe=None, prepared=None):
    """Flag saturation of an IRS2-layout ramp in place.

    Parameters
    ----------
    data : float32 (nints, ngroups, L, nx), raw DN in the IRS2 layout (not modified)
    groupdq : uint8, same shape; SAT and AD_FLOOR|DNU are OR-ed in on science rows
    pixeldq : uint32 (L, nx); the reference DQ is OR-ed into the science rows
    sat_thresh, sat_dq : (nrows, nx) threshold and translated DQ of the science rows only
    rows : bool (L,) the science rows (:func:`ramp2slope.datamodels.irs2_layout.rows_mask`)
    bias : SUPERBIAS in the IRS2 layout (L, nx) or None
    zeroframe : float32 (nints, L, nx) or None; flagged science pixels are set to 0.0
    prepared : ``prepare_thresholds(sat_thresh, sat_dq)`` when the caller has it already

    Returns ``(n_saturated, n_ad_floor)`` counted over the whole IRS2 array, as jwst logs them.
    """
    nints, ngroups = data.shape[:2]
    if prepared is None:
        prepared = prepare_thresholds(sat_thresh, sat_dq)
    thresh, ref_dq, _ = prepared
    science_rows = np.flatnonzero(rows)
    science_shape = (science_rows.size, data.shape[-1])
    if thresh.shape != science_shape:
        raise ReferenceFileError(f"saturation reference shape {thresh.shape} != the IRS2 science "
                                 f"pixels {science_shape}")
    if bias is not None and bias.shape != data.shape[-2:]:
        raise ReferenceFileError(f"superbias shape {bias.shape} != the IRS2 layout {data.shape[-2:]}")
    pattern = make_read_pattern(ngroups, int(nframes)) if use_readpatt else None
    grow = int(n_pix_grow_sat)
    science_rows = science_rows.astype(np.intp)
    has_bias = bias is not None
    bias_plane = np.ascontiguousarray(bias, dtype=np.float32) if has_bias \
        else np.zeros((1, 1), np.float32)
    seen = np.zeros(science_shape, dtype=np.uint8)
    flag = np.empty(science_shape, dtype=np.uint8)
    low = np.empty(science_shape, dtype=np.uint8)
    no_flags = np.zeros(science_shape, dtype=np.uint8)
    early = np.empty(science_shape, dtype=np.uint8)
    data = np.ascontiguousarray(data, dtype=np.float32)

    for integ in range(nints):
        sticky = np.zeros(science_shape, dtype=np.uint8)
        for g in range(ngroups):
            _test_rows(data[integ, g], science_rows, thresh, flag, low)
            if g == 2 and pattern is not None:
                _group2_rows(data[integ, 0], data[integ, 1], data[integ, 2], science_rows,
                             bias_plane, has_bias, thresh, float(np.mean(pattern[0])),
                             float(pattern[2][-1]), np.float32(len(pattern[1])), early)
                grow_flags(early, _SAT, _SAT, grow)
                # into group 1, alone: as "sticky" it is only written over with itself
                _or_rows(groupdq[integ, 1], science_rows, early, no_flags, no_flags, seen)
            grow_flags(flag, _SAT, _SAT, grow)
            _or_rows(groupdq[integ, g], science_rows, sticky, flag, low, seen)
        if zeroframe is not None:
            plane = zeroframe[integ][rows]
            zflag = np.where(plane >= thresh, _SAT, np.uint8(0))
            grow_flags(zflag, _SAT, _SAT, grow)
            plane[(zflag != 0) | (plane <= 0)] = 0.0
            zeroframe[integ, rows] = plane
    pixeldq[rows] |= ref_dq
    return (int(np.count_nonzero(seen & _SAT)),
            int(np.count_nonzero(seen & np.uint8(dqflags.group["AD_FLOOR"]))))
