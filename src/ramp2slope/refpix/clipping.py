"""Sigma-clipped mean of reference pixels, with the exact semantics the official step uses.

The official step clips with ``scipy.stats.sigmaclip`` and averages what survives. The arithmetic
happens in the dtype of the values: for float32 input the mean and the standard deviation are
float32 numpy reductions (pairwise summation), the clip limits are float32, and the result is a
float32 scalar. Matching that bit for bit matters because a value sitting exactly on a clip limit
changes the mean.

:func:`sigma_clip_values` and :func:`sigma_clipped_mean` (which the corrections call, two to
sixteen times a group) run a compiled kernel that repeats numpy's arithmetic step by step: its
pairwise summation (runs of up to 128 values summed with eight accumulators, longer runs split
at a multiple of eight below the middle, the total added to a zero of the values' type), the
divisions and the square root rounded to the values' type, the limits as ``mean - std * limit``
in that type. A call on 4096 values takes about 25 us against 90-100 us with numpy's reductions,
whose fixed costs dominate on lists this short.
"""
import numba
import numpy as np


def sigma_clip_values(values, low, high):
    """Iterative sigma clipping with ``scipy.stats.sigmaclip`` semantics.

    Repeatedly keep ``mean - low*std <= v <= mean + high*std`` (population std, both computed in
    the dtype of ``values``; other than float32 and float64, in float64) until nothing more is
    removed. Returns ``(kept, lower, upper)``: the values kept, in their order and dtype, and
    the last limits (NaN when everything was rejected, which only NaN or infinite values do).
    """
    original = np.ravel(np.asarray(values))
    floats = _as_float(original)
    kind = floats.dtype.type
    kept, count, _, lower, upper = _clip(floats, kind(low), kind(high), kind(0))
    return kept[:count].astype(original.dtype, copy=False), kind(lower), kind(upper)


def sigma_clipped_mean(values, siglimit):
    """Clipped mean of the usable reference pixels ``values`` (1-D, in reading order).

    Returns None when ``values`` is empty. When the values have zero spread the plain mean is
    returned (as float64, which is what the official code does); otherwise the mean of the values
    that survive :func:`sigma_clip_values`, in the dtype of ``values``.
    """
    values = _as_float(values)
    if values.size == 0:
        return None
    kind = values.dtype.type
    spread, value = _clipped_mean(values, kind(siglimit), kind(0))
    # zero spread: the float64 mean of equal values is that value exactly
    return kind(value) if spread else np.float64(value)


def _as_float(values):
    """``values`` as a contiguous 1-D float32 or float64 array (other types as float64)."""
    values = np.ravel(np.asarray(values))
    if values.dtype.type not in (np.float32, np.float64):
        values = values.astype(np.float64)
    return np.ascontiguousarray(values)


@numba.njit(cache=True)
def _block_sum(a, start, n, zero):
    """numpy's sum of a run of at most 128 values: eight accumulators, then the rest."""
    if n < 8:
        total = zero
        for i in range(start, start + n):
            total += a[i]
        return total
    r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
    r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
    stop = start + n - n % 8
    for i in range(start + 8, stop, 8):
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(stop, start + n):
        total += a[i]
    return total


@numba.njit(cache=True)
def _pairwise_sum(a, n, zero):
    """numpy's sum of ``a[:n]`` (a contiguous float reduction), in ``a``'s type: runs of more
    than 128 values are split in two at a multiple of 8 below the middle, each half summed
    the same way, left plus right. numpy recurses; this walks the same tree with a stack of
    its own (numba's cache cannot hold a self-recursive function: loaded back, it crashed)."""
    if n <= 128:
        return _block_sum(a, 0, n, zero)
    starts = np.empty(64, np.int64)
    counts = np.empty(64, np.int64)
    stages = np.zeros(64, np.int8)    # 0: nothing summed, 1: left half summed, in ``lefts``
    lefts = np.empty(64, a.dtype)
    top = 0
    starts[0], counts[0] = 0, n
    total = zero
    while True:
        start, count = starts[top], counts[top]
        half = count // 2
        half -= half % 8
        if count <= 128:
            total = _block_sum(a, start, count, zero)
            top -= 1
        elif stages[top] == 0:
            stages[top] = 1
            top += 1
            starts[top], counts[top], stages[top] = start, half, 0
            continue
        elif stages[top] == 1:
            lefts[top] = total
            stages[top] = 2
            top += 1
            starts[top], counts[top], stages[top] = start + half, count - half, 0
            continue
        else:
            total = lefts[top] + total
            top -= 1
        if top < 0:
            return total


@numba.njit(cache=True)
def _mean_of(a, n, zero):
    # numpy's reduction starts from the additive identity; the count is exact in either type
    return (zero + _pairwise_sum(a, n, zero)) / (zero + np.float32(n))


@numba.njit(cache=True)
def _clip(values, low, high, zero):
    """scipy's sigmaclip: ``(kept, count, centre, lower, upper)``, the values kept in
    ``kept[:count]`` (in order), the last pass's mean (which is the mean of what is kept) and
    limits; NaN for the three when nothing is kept."""
    n = values.size
    kept = values.copy()
    squares = np.empty_like(values)
    while n > 0:
        centre = _mean_of(kept, n, zero)
        for i in range(n):
            deviation = kept[i] - centre
            squares[i] = deviation * deviation
        spread = np.sqrt(_mean_of(squares, n, zero))
        lower = centre - spread * low
        upper = centre + spread * high
        count = 0
        for i in range(n):   # in place and without branches (count <= i)
            value = kept[i]
            kept[count] = value
            count += (value >= lower) & (value <= upper)
        if count == n:
            return kept, n, centre, lower, upper
        n = count
    nan = zero + np.float32(np.nan)
    return kept, 0, nan, nan, nan


@numba.njit(cache=True)
def _clipped_mean(values, limit, zero):
    """``(spread, value)``: ``spread`` False when the official float64 standard deviation of
    the values is 0 (``value`` is then their float64 mean), else True and ``value`` the mean
    of what scipy's sigmaclip keeps (NaN when nothing is kept).

    The standard deviation is 0 exactly when the values are equal, finite and their mean is
    that value: always so for float32 values (their float64 sum is exact), checked for float64
    ones."""
    n = values.size
    first = values[0]
    equal = np.isfinite(first)
    for i in range(1, n):
        if not values[i] == first:
            equal = False
            break
    if equal and (values.itemsize == 4 or _mean_of(values, n, zero) == first):
        return False, first
    return True, _clip(values, limit, limit, zero)[2]


def average_or_single(a, b):
    """Average of two clipped means; the one that exists if the other is None; else None.

    Done with numpy scalar arithmetic, so the result keeps the precision of the inputs
    (float32 when both are float32), as in the official code.
    """
    if a is None:
        return b
    if b is None:
        return a
    return 0.5 * (a + b)
