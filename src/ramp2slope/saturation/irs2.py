"""saturation for NIRSpec IRS2 readouts (jwst 3.0.0's own variant, not stcal's).

The threshold covers the 2048 science rows only, so each group's science rows are taken out of
the IRS2 layout, tested, and the flags put back; the interleaved reference samples and the
reference output are never flagged. jwst's IRS2 variant differs from the traditional one in ways
that change the flags, and they are kept:

* no frame-averaging backward pass (no DO_NOT_USE before a saturating group);
* the group-2 test sets SATURATED (not DO_NOT_USE) on group index 1, grown like any SAT flag, and
  asks only that group 2's own value reach the threshold;
* with no SUPERBIAS the group-2 test takes a bias of 0.
"""
import numpy as np

from ramp2slope.datamodels import dqflags
from ramp2slope.errors import ReferenceFileError

from .saturation import grow_flags, make_read_pattern, prepare_thresholds

__all__ = ["flag_saturation_irs2"]

_SAT = np.uint8(dqflags.group["SATURATED"])
_LOW = np.uint8(dqflags.group["AD_FLOOR"] | dqflags.group["DO_NOT_USE"])


def _group2_candidates(d0, d1, bias, thresh, pattern):
    """Pixels whose group 1 rose so fast that its last frame may have saturated.

    Types follow jwst's expression: the prediction from group 0 is float64 (a float64 mean of
    the read pattern divides it), the rise and the room left are float32.
    """
    first = d0 - bias
    predicted = (first / np.mean(pattern[0])) * pattern[2][-1] + bias
    room = (thresh - d0) / np.float32(len(pattern[1]))
    return (predicted < thresh) & ((d1 - d0) > room)


#: Science rows taken out of the IRS2 layout at a time: the tests' float temporaries stay a few
#: MB (whole 2048-row planes of them, float64 among them, added 0.27 GB to a full frame's peak).
_ROWS_AT_A_TIME = 128


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
    seen = np.zeros(science_shape, dtype=np.uint8)
    flag = np.empty(science_shape, dtype=np.uint8)
    low = np.empty(science_shape, dtype=np.uint8)
    early_flag = np.empty(science_shape, dtype=np.uint8)
    chunks = [slice(start, start + _ROWS_AT_A_TIME)
              for start in range(0, science_rows.size, _ROWS_AT_A_TIME)]

    for integ in range(nints):
        sticky = np.zeros(science_shape, dtype=np.uint8)
        for g in range(ngroups):
            early_test = g == 2 and pattern is not None
            for chunk in chunks:
                taken = science_rows[chunk]
                science = data[integ, g, taken]
                at_threshold = science >= thresh[chunk]
                flag[chunk] = np.where(at_threshold, _SAT, np.uint8(0))
                low[chunk] = np.where(science <= 0, _LOW, np.uint8(0))
                if early_test:
                    science_bias = (np.float32(0.0) if bias is None
                                    else np.asarray(bias[taken], dtype=np.float32))
                    early = _group2_candidates(data[integ, 0, taken], data[integ, 1, taken],
                                               science_bias, thresh[chunk], pattern)
                    early_flag[chunk] = (early & at_threshold).astype(np.uint8) * _SAT
            if early_test:
                grow_flags(early_flag, _SAT, _SAT, grow)
                groupdq[integ, 1, rows] |= early_flag
                seen |= early_flag
            grow_flags(flag, _SAT, _SAT, grow)
            sticky |= flag
            groupdq[integ, g, rows] |= sticky | low
            seen |= sticky | low
        if zeroframe is not None:
            plane = zeroframe[integ][rows]
            zflag = np.where(plane >= thresh, _SAT, np.uint8(0))
            grow_flags(zflag, _SAT, _SAT, grow)
            plane[(zflag != 0) | (plane <= 0)] = 0.0
            zeroframe[integ, rows] = plane
    pixeldq[rows] |= ref_dq
    return (int(np.count_nonzero(seen & _SAT)),
            int(np.count_nonzero(seen & np.uint8(dqflags.group["AD_FLOOR"]))))
