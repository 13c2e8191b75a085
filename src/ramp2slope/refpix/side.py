"""Running median of the side reference pixels (the 1/f row correction).

The left (detector columns 0-3) and right (2044-2047) reference strips are each reduced to one
value per detector row: the median of the usable pixels in a window of L rows x 4 columns around
the row. At the ends the strip is mirrored about its first and last rows (the end row itself is
not repeated) by ``h`` rows, where ``h = L//2`` for odd L and ``L/2`` for even L (the padding of
L+1: "an even L is made odd"). The window of row r is rows ``r-h .. r-h+L-1``: centred for odd L.

Deviation from the specification, following jwst 3.0.0: for an even L the official code pads
for L+1 but still takes windows of L rows, so the window is ``r-L/2 .. r+L/2-1`` (one row more
above than below), not L+1 rows. L < 2 makes the official code fail; here it is an error too.
"""
import math

import numba
import numpy as np

from ..errors import Ramp2SlopeError


def window_rows(side_smoothing_length):
    """``(pad, length)``: rows mirrored at each end, and rows per window."""
    length = int(side_smoothing_length)
    if length < 2:
        raise Ramp2SlopeError(f"side_smoothing_length must be >= 2, got {side_smoothing_length}")
    padded_length = length + 1 if length % 2 == 0 else length
    return padded_length // 2, length


def reflect_pad_rows(strip, side_smoothing_length):
    """Strip extended by ``h`` mirrored rows at each end (end rows not repeated).

    This is the padding the running median sees; :func:`running_median` reads the same values
    through index arithmetic instead of building the padded array.
    """
    half, _ = window_rows(side_smoothing_length)
    strip = np.asarray(strip)
    nrows = strip.shape[0]
    if half >= nrows:
        raise Ramp2SlopeError(f"side_smoothing_length {side_smoothing_length} exceeds the strip")
    index = np.arange(-half, nrows + half)
    index = np.where(index < 0, -index, index)
    index = np.where(index > nrows - 1, 2 * (nrows - 1) - index, index)
    return strip[index]


@numba.njit(cache=True, inline="always")
def _mirror(k, n):
    if k < 0:
        return -k
    if k > n - 1:
        return 2 * (n - 1) - k
    return k


@numba.njit(cache=True)
def _insertion_sort(buf, count):
    for i in range(1, count):
        v = buf[i]
        j = i - 1
        while j >= 0 and buf[j] > v:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = v


@numba.njit(parallel=True, cache=True)
def _running_median_kernel(values, good, half, length, single, out):
    nrows, ncols = values.shape
    chunk = 64
    nchunks = (nrows + chunk - 1) // chunk
    for block in numba.prange(nchunks):
        window = np.empty(length * ncols, dtype=np.float64)
        for row in range(block * chunk, min(nrows, (block + 1) * chunk)):
            count = 0
            has_nan = False
            for k in range(row - half, row - half + length):
                src = _mirror(k, nrows)
                for j in range(ncols):
                    if good[src, j]:
                        v = values[src, j]
                        if math.isnan(v):
                            has_nan = True
                        window[count] = v
                        count += 1
            if count == 0 or has_nan:
                out[row] = np.nan
                continue
            _insertion_sort(window, count)
            mid = count // 2
            if count % 2 == 1:
                out[row] = window[mid]
            elif single:
                # numpy's median of float32 values: the float32 mean of the two middle values.
                a = np.float32(window[mid - 1])
                b = np.float32(window[mid])
                out[row] = np.float32(a + b) / np.float32(2.0)
            else:
                out[row] = (window[mid - 1] + window[mid]) / 2.0


def running_median(values, good, side_smoothing_length, single_precision=True):
    """Per-row running median of a side strip.

    Parameters
    ----------
    values : ndarray (nrows, ncols)
        The strip. Held as float64; with ``single_precision`` its values are float32 numbers and
        the median of an even count is formed in float32, as numpy does for float32 data.
    good : bool ndarray (nrows, ncols)
        Usable pixels (no DO_NOT_USE).
    side_smoothing_length : int
        Window height L (see the module docstring for even L).

    Returns
    -------
    float64 ndarray (nrows,): the median, NaN where the window has no usable pixel or contains a
    NaN.
    """
    half, length = window_rows(side_smoothing_length)
    values = np.ascontiguousarray(values, dtype=np.float64)
    good = np.ascontiguousarray(good, dtype=np.bool_)
    if half >= values.shape[0]:
        raise Ramp2SlopeError(f"side_smoothing_length {side_smoothing_length} exceeds the strip")
    out = np.empty(values.shape[0], dtype=np.float64)
    _running_median_kernel(values, good, half, length, bool(single_precision), out)
    return out


def combine_sides(left, right):
    """Row-by-row mean of the left and right medians, the finite one if only one is, else 0."""
    left = np.asarray(left, dtype=np.float64)
    right = np.asarray(right, dtype=np.float64)
    left_ok = ~np.isnan(left)
    right_ok = ~np.isnan(right)
    combined = np.zeros(left.shape, dtype=np.float64)
    both = left_ok & right_ok
    combined[both] = 0.5 * (left[both] + right[both])
    only_left = left_ok & ~right_ok
    combined[only_left] = left[only_left]
    only_right = right_ok & ~left_ok
    combined[only_right] = right[only_right]
    return combined
