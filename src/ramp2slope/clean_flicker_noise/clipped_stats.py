"""Exact, fast statistics of large 1-D samples for the flicker-noise fits.

astropy's ``sigma_clipped_stats`` and numpy's median, as jwst 3.0.0's clean_flicker_noise uses
them, recomputed here without copying or re-sorting the sample at every pass:

* :func:`exact_median` selects the middle values by bucket counting (the same value and dtype
  as ``np.median``);
* :func:`sigma_clipped_stats` sorts the sample once, so each clipping pass keeps a slice; its
  median is exact, its mean and std are summed in another order than numpy's pairwise sums and
  may differ from them in the last bit or two;
* :func:`mirrored_lower_half` builds the symmetric sample of the values below a center (the
  "lower half only" statistics) by one merge of the sorted order, not a second sort.
"""
import numba
import numpy as np
from numba import njit, prange

__all__ = ["exact_median", "sigma_clipped_stats", "mirrored_lower_half", "SIGMA_LIMIT"]

#: jwst's fixed clip level for the statistics behind each threshold.
SIGMA_LIMIT = 3.0
_BUCKETS = 65536
_SMALL = 4096


@njit(cache=True)
def _sorted_pair(candidates, k, below_max):
    ordered = np.sort(candidates)
    return (ordered[k - 1] if k > 0 else below_max), ordered[k]


@njit(parallel=True, cache=True)
def _ranked_pair(values, low, high, k, nthreads):
    """The (k-1)-th and k-th smallest (0-based; the first is -inf when k is 0) of the values
    of the 1-D ``values`` within ``[low, high]`` (not modified).

    Buckets of equal width between the minimum and maximum are counted per thread; the bucket
    holding rank k is gathered and searched the same way until it is small enough to sort, while
    the largest value ranked below it is kept. A bucket index is a non-decreasing function of
    the value, so ranks carry over exactly.
    """
    candidates = values
    below_max = -np.inf
    while True:
        n = candidates.size
        chunk = (n + nthreads - 1) // nthreads
        lows = np.empty(nthreads)
        highs = np.empty(nthreads)
        for t in prange(nthreads):
            lo = np.inf
            hi = -np.inf
            for i in range(t * chunk, min(n, (t + 1) * chunk)):
                v = candidates[i]
                if v >= low and v <= high:
                    lo = min(lo, v)
                    hi = max(hi, v)
            lows[t] = lo
            highs[t] = hi
        lo = lows.min()
        hi = highs.max()
        scale = _BUCKETS / (hi - lo) if hi > lo else 0.0
        if scale == 0.0 or not np.isfinite(scale):
            # all equal, or a spread the float arithmetic cannot divide
            return (lo if k > 0 else below_max), lo
        counts = np.zeros((nthreads, _BUCKETS), dtype=np.int64)
        for t in prange(nthreads):
            for i in range(t * chunk, min(n, (t + 1) * chunk)):
                v = candidates[i]
                if v >= low and v <= high:
                    counts[t, min(int((v - lo) * scale), _BUCKETS - 1)] += 1
        below = 0
        bucket = 0
        while True:
            in_bucket = 0
            for t in range(nthreads):
                in_bucket += counts[t, bucket]
            if below + in_bucket > k:
                break
            below += in_bucket
            bucket += 1
        starts = np.zeros(nthreads + 1, dtype=np.int64)
        for t in range(nthreads):
            starts[t + 1] = starts[t] + counts[t, bucket]
        members = np.empty(starts[nthreads], dtype=candidates.dtype)
        maxima = np.full(nthreads, -np.inf)
        for t in prange(nthreads):
            m = starts[t]
            top = -np.inf
            for i in range(t * chunk, min(n, (t + 1) * chunk)):
                v = candidates[i]
                if v >= low and v <= high:
                    b = min(int((v - lo) * scale), _BUCKETS - 1)
                    if b == bucket:
                        members[m] = v
                        m += 1
                    elif b < bucket:
                        top = max(top, v)
            maxima[t] = top
        if below > 0:
            below_max = max(below_max, maxima.max())
        k -= below
        if members.size <= _SMALL or members.size == n:
            return _sorted_pair(members, k, below_max)
        candidates = members


def exact_median(values):
    """``np.median`` of finite 1-D ``values`` by selection: the same value and dtype (the two
    middle values of an even count averaged in that dtype)."""
    n = values.size
    if n < 2 * _SMALL:
        return np.median(values)
    kind = values.dtype.type
    lower, upper = _ranked_pair(np.ascontiguousarray(values), -np.inf, np.inf, n // 2,
                                numba.get_num_threads())
    if n % 2:
        return kind(upper)
    return (kind(lower) + kind(upper)) / kind(2)


@njit(parallel=True, cache=True)
def _slice_moments(ordered, start, stop):
    """Mean and population std of ``ordered[start:stop]`` (two passes, float64)."""
    total = 0.0
    for i in prange(start, stop):
        total += ordered[i]
    mean = total / (stop - start)
    squares = 0.0
    for i in prange(start, stop):
        squares += (ordered[i] - mean) * (ordered[i] - mean)
    return mean, np.sqrt(squares / (stop - start))


@njit(cache=True)
def _slice_median(ordered, start, stop):
    n = stop - start
    middle = start + n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0


@njit(cache=True)
def _sorted_clipped_stats(ordered, sigma, maxiters):
    """``sigma_clipped_stats`` of sorted float64 values: each pass keeps a slice."""
    start = np.searchsorted(ordered, -np.inf, side="right")
    stop = np.searchsorted(ordered, np.inf, side="left")
    for _ in range(maxiters):
        if stop <= start:
            break
        _, std = _slice_moments(ordered, start, stop)
        center = _slice_median(ordered, start, stop)
        new_start = start + np.searchsorted(ordered[start:stop], center - std * sigma, side="left")
        new_stop = start + np.searchsorted(ordered[start:stop], center + std * sigma, side="right")
        changed = new_start != start or new_stop != stop
        start, stop = new_start, new_stop
        if not changed:
            break
    if stop <= start:
        return np.nan, np.nan, np.nan
    mean, std = _slice_moments(ordered, start, stop)
    return mean, _slice_median(ordered, start, stop), std


def sigma_clipped_stats(values, sigma=SIGMA_LIMIT, maxiters=5, presorted=False):
    """(mean, median, std) of the finite values of 1-D ``values`` after iterative symmetric
    clipping about the median (astropy's ``sigma_clipped_stats`` defaults: at most 5 passes,
    ddof 0), in float64.

    The values are sorted once (unless ``presorted``), so every pass keeps a slice. The median
    is exact; mean and std are summed in another order than numpy's pairwise sums, so they may
    differ in the last bit or two (1e-15 relative).
    """
    ordered = values if presorted else np.sort(values)
    ordered = np.ascontiguousarray(ordered, dtype=np.float64)
    mean, median, std = _sorted_clipped_stats(ordered, float(sigma), maxiters)
    return np.float64(mean), np.float64(median), np.float64(std)


@njit(cache=True)
def mirrored_lower_half(ordered, center):
    """Sorted ``concatenate((lower - center, center - lower)) + center`` of the finite sorted
    values ``<= center``: both halves are monotonic in the value, so one merge sorts them."""
    first = np.searchsorted(ordered, -np.inf, side="right")
    stop = np.searchsorted(ordered, center, side="right")
    n = stop - first
    out = np.empty(2 * n)
    below = first            # ascending: (x - c) + c
    above = stop - 1         # ascending as x descends: (c - x) + c
    for k in range(2 * n):
        if below < stop:
            a = (ordered[below] - center) + center
        else:
            a = np.inf
        if above >= first:
            b = (center - ordered[above]) + center
        else:
            b = np.inf
        if a <= b:
            out[k] = a
            below += 1
        else:
            out[k] = b
            above -= 1
    return out
