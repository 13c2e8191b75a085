"""Reference-pixel correction for MIRI full-frame ramps (1024 rows x 1032 columns).

MIRI has no reference rows: the 4 leftmost and 4 rightmost columns are reference pixels. The
four amplifiers are interleaved by column (column ``c`` is read by amplifier ``c % 4``), and
reference column ``a`` (left) and ``1028 + a`` (right) belong to amplifier ``a``.

For each integration, with ``first`` its first group:

1. every group is made relative to ``first`` (group 0 becomes zeros);
2. for every later group, each amplifier gets the sigma-clipped mean of its left and of its right
   reference column (separately for even and odd rows with ``odd_even_rows``, otherwise over all
   rows), ignoring DO_NOT_USE pixels; the average of left and right is subtracted from every
   pixel of the amplifier's columns (reference columns included), row parity permitting;
3. ``first`` is added back.

Group 0 is never corrected (it is identically zero at step 2, so its clipped mean would mean
nothing). If an amplifier has no usable reference pixel on one side (or in one row parity) the
official step gives up the correction of every group of the exposure; since that depends on
PIXELDQ alone it is decided once, up front, here. Steps 1 and 3 still happen then, and they are
not an identity in float32 (``(x - f) + f`` can differ from ``x``, and an infinite first group
gives NaN), so they are always applied.

Nothing carries over from one integration to the next, so a ramp can be corrected one
integration at a time.

Matching the official arithmetic: all subtractions and additions are float32 (the official code
goes through float64 for steps 1 and 3, but rounding a float64 sum or difference of two float32
values to float32 gives the float32 result). The reference signal is float32 when both clipped
means are float32 and float64 when either side had zero spread (then the official mean is
float64); the corrected value is the float64 difference rounded to float32, which for a float32
signal is again the plain float32 difference.
"""
import logging

import numba
import numpy as np

from ..datamodels import dqflags
from ..errors import Ramp2SlopeError
from .clipping import sigma_clipped_mean

__all__ = ["MIRI_FULL_SHAPE", "correct_miri_refpix", "miri_reference_signal"]

log = logging.getLogger("ramp2slope")

#: (rows, columns) of a MIRI full frame
MIRI_FULL_SHAPE = (1024, 1032)
#: amplifiers, interleaved by column
MIRI_NAMPS = 4
DNU = dqflags.pixel["DO_NOT_USE"]


def _reference_columns(ncols):
    """Left then right reference column of each amplifier: [a, ncols - 4 + a] for a = 0..3."""
    return np.array([[a, ncols - MIRI_NAMPS + a] for a in range(MIRI_NAMPS)])


def _row_sets(nrows, odd_even_rows):
    """Row selections whose reference pixels are pooled: rows 0, 2, ... then 1, 3, ... (or all)."""
    if odd_even_rows:
        return [slice(0, nrows, 2), slice(1, nrows, 2)]
    return [slice(0, nrows)]


def _usable_masks(pixeldq, odd_even_rows):
    """Usable-pixel masks [parity][amp][side] of the reference columns, and whether every one of
    them has at least one usable pixel (otherwise the official step corrects nothing)."""
    nrows, ncols = pixeldq.shape
    columns = _reference_columns(ncols)
    masks = []
    complete = True
    for rows in _row_sets(nrows, odd_even_rows):
        per_amp = []
        for amp in range(MIRI_NAMPS):
            sides = []
            for side, name in enumerate(("left", "right")):
                good = (pixeldq[rows, columns[amp, side]] & DNU) == 0
                if not good.any():
                    complete = False
                    which = f" in rows {rows.start}::2" if odd_even_rows else ""
                    log.warning("Amplifier %s has no good %s reference pixels%s: no reference "
                                "pixel correction", "ABCD"[amp], name, which)
                sides.append(good)
            per_amp.append(sides)
        masks.append(per_amp)
    return masks, complete


def miri_reference_signal(reference, usable, siglimit):
    """Reference signal of one group: float64 array [parity, amp].

    ``reference`` is the float32 (nrows, amp, side) array of the reference columns of the group
    minus the first group (:func:`_reference_columns` order); ``usable`` the masks of
    :func:`_usable_masks`, none of them empty.
    """
    rows_sets = _row_sets(reference.shape[0], len(usable) == 2)
    signal = np.empty((len(usable), MIRI_NAMPS), np.float64)
    for parity, rows in enumerate(rows_sets):
        for amp in range(MIRI_NAMPS):
            left, right = (
                sigma_clipped_mean(reference[rows, amp, side][usable[parity][amp][side]], siglimit)
                for side in (0, 1))
            # numpy scalar arithmetic: float32 unless either mean is float64, as officially
            signal[parity, amp] = 0.5 * (left + right)
    return signal


@numba.njit(parallel=True, cache=True)
def _subtract_reference_signal(ramp, signal):
    """In place on one integration (ngroups, nrows, ncols): each group made relative to the
    first, corrected by ``signal[group, row parity, column % 4]`` (group 0 never), and the first
    group added back, all in float32 (the correction is a float64 difference rounded to float32).
    ``signal`` has 1 parity plane when rows are not split by parity."""
    ngroups, nrows, ncols = ramp.shape
    nparity = signal.shape[1]
    namps = signal.shape[2]
    for row in numba.prange(nrows):
        parity = row % nparity
        first = ramp[0, row, :].copy()
        for group in range(1, ngroups):
            for col in range(ncols):
                f = first[col]
                value = ramp[group, row, col] - f
                value = np.float32(np.float64(value) - signal[group, parity, col % namps])
                ramp[group, row, col] = value + f
        for col in range(ncols):
            f = first[col]
            ramp[0, row, col] = (f - f) + f


def correct_miri_refpix(data, pixeldq, *, odd_even_rows=True, siglimit=3.0, zeroframe=None):
    """MIRI full-frame reference-pixel correction of ``data`` in place.

    Parameters
    ----------
    data : float32 ndarray (nints, ngroups, 1024, 1032)
        The ramp (any number of integrations: each is corrected independently).
    pixeldq : uint32 ndarray (1024, 1032)
        DO_NOT_USE reference pixels are ignored.
    odd_even_rows : bool
        Separate reference signals for even and odd rows.
    siglimit : float
        Sigma-clipping limit for the reference-pixel means.
    zeroframe : float32 ndarray (nints, 1024, 1032), optional
        Put through the same first-group arithmetic as the official step does (a one-group ramp:
        nothing is subtracted, but infinities become NaN); zeros stay zero.

    Returns
    -------
    bool
        True if the reference signal was subtracted, False if some amplifier had no usable
        reference pixels (the data then only went through the first-group round trip, as
        officially; the official step still reports COMPLETE).
    """
    if data.ndim != 4 or data.shape[-2:] != MIRI_FULL_SHAPE:
        raise Ramp2SlopeError(f"refpix: a MIRI full frame must be (nints, ngroups, "
                              f"{MIRI_FULL_SHAPE[0]}, {MIRI_FULL_SHAPE[1]}), not {data.shape}")
    if data.dtype != np.float32:
        raise Ramp2SlopeError("refpix: the MIRI ramp must be float32")
    if pixeldq.shape != MIRI_FULL_SHAPE:
        raise Ramp2SlopeError(f"refpix: PIXELDQ {pixeldq.shape} does not match the MIRI full frame")
    nints, ngroups, nrows, ncols = data.shape
    usable, complete = _usable_masks(pixeldq, odd_even_rows)
    nparity = 2 if odd_even_rows else 1
    columns = _reference_columns(ncols).ravel()
    for integration in range(nints):
        ramp = data[integration]
        # zero signal leaves every value as the round trip alone would (x - 0.0 == x exactly)
        signal = np.zeros((ngroups, nparity, MIRI_NAMPS), np.float64)
        if complete and ngroups > 1:
            reference = ramp[:, :, columns]
            with np.errstate(invalid="ignore"):
                reference = reference[1:] - reference[0]
            reference = reference.reshape(ngroups - 1, nrows, MIRI_NAMPS, 2)
            for group in range(1, ngroups):
                signal[group] = miri_reference_signal(reference[group - 1], usable, siglimit)
        with np.errstate(invalid="ignore"):
            _subtract_reference_signal(ramp, signal)
    if zeroframe is not None:
        if zeroframe.shape != (nints,) + MIRI_FULL_SHAPE:
            raise Ramp2SlopeError("refpix: ZEROFRAME must be (nints, 1024, 1032)")
        zeros = zeroframe == 0.0
        with np.errstate(invalid="ignore"):
            zeroframe[...] = (zeroframe - zeroframe) + zeroframe
        zeroframe[zeros] = 0.0
    return complete
