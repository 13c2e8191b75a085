"""Two-point-difference cosmic-ray detection kernels (numba).

The kernels read the ramp straight from the caller's float32 DN array: the electrons
``D = float32(DN * gain)`` and the first differences ``Δ = float32(D[k+1] - D[k])`` are formed
on the fly, so no copy of the ramp and no ``(nints, ngroups-1, ny, nx)`` array of differences is
ever allocated. The work is shared out between the threads in pieces of a row
(``ROW_CHUNK`` pixels, wider in the detection, see ``detection_piece_width``); the differences
of every integration of such a piece go to a small (differences, pixels) buffer, filled plane
by plane along the row (vectorised).

Detection (:func:`detect`) first screens the piece's pixels across the buffer (vectorised):
in the iterative search and in sigma clipping, a pixel without a jump can be recognised with
counts and extremes only, bounding the medians by counting values under bounds derived with
a margin far larger than any rounding; only the other pixels (those with a jump, a few percent)
get the exact search, which reproduces stcal operation by operation. The iterative search
itself needs no sorting for its first passes: its deviation is monotonic on either side of the
centre, so a pass needs the extremes and two order statistics (a selection); a pixel with more
jumps sorts its values once and each later pass removes values from the ends of that range.

The first-pass statistics (median of the pooled Δ) of the pixels left with a jump are kept by
:func:`detect` when the caller gives room for them; neighbour and after-jump flagging use
them, or recompute them for the few pixels that need them otherwise.

The arithmetic reproduces the precision of the official code (stcal 1.20): electrons and
differences in float32, medians and sigmas in float64, the iterative search's deviation
``|A - c|`` stored in float32 and its centre ``c`` rounded to float32 after the first pass.
Those roundings decide borderline flags, so they are kept on purpose.
"""
import math

import numba
import numpy as np
from numba import njit, prange

from ..datamodels import dqflags
from ..runtime.threads import map_in_threads

DNU = dqflags.group["DO_NOT_USE"]
SAT = dqflags.group["SATURATED"]
JUMP = dqflags.group["JUMP_DET"]
SAT_OR_DNU = SAT | DNU

#: Detection modes, chosen once per exposure by :func:`choose_mode`.
MODE_SKIP = 0
MODE_ITERATIVE = 1
MODE_SINGLE_PASS = 2
MODE_SIGMA_CLIP = 3

#: astropy's sigma_clip default number of iterations (used by stcal with its default).
SIGCLIP_MAXITERS = 5

#: Pixels of a row handled together by one thread in the per-pixel kernels: the work is shared
#: out in pieces of rows, so that a block of very few rows still keeps every core busy.
ROW_CHUNK = 128

#: The detection's pieces are wider when a pixel has few differences: each piece is a few
#: calls of helpers that take a dozen arrays (about half a microsecond each), while its buffer
#: of differences should stay in the core's fast cache (DIFFS_BUDGET float32 values).
WIDEST_PIECE = 1024
DIFFS_BUDGET = 16384
#: Passes of the iterative search after its first that select on the values left before the
#: rest are sorted once (see :func:`_iterative_search`).
SELECTION_PASSES = 2
#: Below this many GROUPDQ bytes, the JUMP clean-up without after-jump flagging runs on one
#: thread (see :func:`flag_after_jumps_and_clean`).
CLEAN_ALONE_BYTES = 16 << 20
#: Tasks of rows per thread in the detection (rows with jumps take longer than the others).
TASKS_PER_THREAD = 4


def detection_piece_width(ndiffs):
    """Pixels per piece of :func:`detect` for pixels of ``ndiffs`` differences in all:
    ROW_CHUNK to WIDEST_PIECE, as many as DIFFS_BUDGET allows."""
    return max(ROW_CHUNK, min(WIDEST_PIECE, DIFFS_BUDGET // max(ndiffs, 1)))


#: Pixels of a row tested together for any JUMP flag before they are looked at one by one.
SCAN_PIECE = 64
#: The same, 8 pixels a 64-bit word (rows with a contiguous last axis): 256 pixels. A full
#: frame's 9 planes of 4 million flags were scanned in 20 ms a byte at a time, 4 ms a word.
SCAN_WORDS = 32
#: JUMP in each of the 8 bytes of a word.
JUMP_IN_WORD = np.uint64(JUMP * 0x0101010101010101)


def choose_mode(dnu_planes, *, minimum_groups, minimum_sigclip_groups, only_use_ints,
                min_diffs_single_pass):
    """Pick the detection mode from the (nints, ngroups) table of all-DO_NOT_USE planes.

    Returns ``(mode, skipped)``; ``skipped`` is True when there are too few usable groups
    for any mode (stcal then reports -99 primary cosmic rays and flags nothing).
    """
    nints, ngroups = dnu_planes.shape
    per_int = dnu_planes.sum(axis=1)
    max_flagged = int(per_int.max()) if nints else 0
    total_flagged = int(per_int.sum())
    min_usable_groups = ngroups - max_flagged
    total_groups = nints * ngroups - total_flagged
    min_usable_diffs = min_usable_groups - 1

    if only_use_ints:
        sigclip_ok = nints >= minimum_sigclip_groups
    else:
        sigclip_ok = total_groups >= minimum_sigclip_groups
    if min_usable_groups < minimum_groups and not sigclip_ok:
        return MODE_SKIP, True
    if sigclip_ok:
        return MODE_SIGMA_CLIP, False
    if min_usable_diffs >= min_diffs_single_pass:
        return MODE_SINGLE_PASS, False
    return MODE_ITERATIVE, False


# ------------------------------------------------------------------------------------------
# small helpers (serial, inlined into the kernels)
#
# Counts passed to them start as np.int64(0), constants as np.int64(k): numba types a plain 0
# as a literal first and compiles the helper once more for it (about 2 s of a first run).

@njit(cache=True, error_model="numpy")
def _kth_smallest(a, n, k):
    """Wirth's selection, exactly as astropy's fast sigma clip performs it (permutes a)."""
    lo = 0
    hi = n - 1
    while lo < hi:
        x = a[k]
        i = lo
        j = hi
        while True:
            while a[i] < x:
                i += 1
            while x < a[j]:
                j -= 1
            if i <= j:
                t = a[i]
                a[i] = a[j]
                a[j] = t
                i += 1
                j -= 1
            if i > j:
                break
        if j < k:
            lo = i
        if k < i:
            hi = j
    return a[k]


@njit(cache=True, error_model="numpy")
def _select(a, n, k):
    """The k-th smallest (0-based) of the non-NaN values a[:n], left at a[k] with the smaller
    values in front of it and the larger behind (a is permuted).

    A quickselect whose partitions are branch-free (each value is swapped into place and the
    boundary moved by the comparison's result): on a long ramp's differences the comparisons
    are unpredictable, and Wirth's selection (:func:`_kth_smallest`) spends most of its time
    on mispredicted branches (about 2.5x slower on 450 values). Values equal to the pivot are
    gathered in a second pass, so that ties cannot make it quadratic."""
    lo = 0
    hi = n
    while hi - lo > 16:
        x, y, z = a[lo], a[(lo + hi) >> 1], a[hi - 1]
        pivot = max(min(x, y), min(max(x, y), z))   # the median of the three
        if pivot != pivot:
            break   # a NaN (never given): the partitions could not shrink the range
        store = lo
        for i in range(lo, hi):
            v = a[i]
            a[i] = a[store]
            a[store] = v
            store += v < pivot
        if k < store:
            hi = store
            continue
        equal = store
        for i in range(store, hi):
            v = a[i]
            a[i] = a[equal]
            a[equal] = v
            equal += v == pivot
        if k < equal:
            return pivot
        lo = equal
    for i in range(lo + 1, hi):      # a few values left: insertion sort
        v = a[i]
        j = i - 1
        while j >= lo and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v
    return a[k]


@njit(cache=True, error_model="numpy")
def _order_stats(buf, n, k1, k2):
    """The k1-th and k2-th smallest (0-based, k2 == k1 or k1 + 1) of the non-NaN values buf[:n].

    Short ramps use a branch-free rank count (faster than sorting a handful of values,
    whose comparisons are unpredictable); long ones a selection (buf[:n] is permuted).
    """
    if n <= 24:
        a = np.nan
        b = np.nan
        for i in range(n):
            vi = buf[i]
            rank = 0
            for j in range(n):
                vj = buf[j]
                rank += (vj < vi) | ((vj == vi) & (j < i))
            if rank == k1:
                a = vi
            if rank == k2:
                b = vi
        return a, b
    b = _select(buf, n, k2)
    if k1 == k2:
        return b, b
    # the selection leaves the values below rank k2 in front of it: k1 is their largest
    a = buf[0]
    for i in range(1, k2):
        if buf[i] > a:
            a = buf[i]
    return a, b


@njit(cache=True, error_model="numpy")
def _nanmedian(values, m, tmp):
    """numpy's nanmedian of values[:m] (float64): the mean of the two middle values."""
    n = np.int64(0)
    for k in range(m):
        v = values[k]
        if not np.isnan(v):
            tmp[n] = v
            n += 1
    if n == 0:
        return np.nan
    lo, hi = _order_stats(tmp, n, (n - 1) // 2, n // 2)
    return (lo + hi) / 2.0


@njit(cache=True, error_model="numpy")
def _sigma_clip_bounds(buf, count, nsigma):
    """Lower and upper bounds of astropy's sigma_clip (median centre, population std).

    ``buf[:count]`` holds the finite values in array order and is reordered in place as
    astropy's C implementation reorders its buffer, so that the float sums come out the same.
    """
    lo = np.nan
    hi = np.nan
    if count == 0:
        return lo, hi
    iteration = 0
    while True:
        if count % 2 == 0:
            # astropy's 0.5 * (kth(n/2) + kth(n/2 - 1)) runs the left selection first; the
            # order matters because each selection permutes the buffer the sums then follow
            upper = _kth_smallest(buf, count, count // 2)
            lower = _kth_smallest(buf, count, count // 2 - 1)
            med = 0.5 * (upper + lower)
        else:
            med = _kth_smallest(buf, count, (count - 1) // 2)
        mean = 0.0
        for i in range(count):
            mean += buf[i]
        mean /= count
        ssq = 0.0
        for i in range(count):
            d = buf[i] - mean
            ssq += d * d
        std = math.sqrt(ssq / count)
        lo = med - nsigma * std
        hi = med + nsigma * std
        kept = 0
        for i in range(count):
            v = buf[i]
            if v >= lo and v <= hi:
                buf[kept] = v
                kept += 1
        if kept == count or kept == 0:
            return lo, hi
        count = kept
        iteration += 1
        if iteration >= SIGCLIP_MAXITERS:
            return lo, hi


# ------------------------------------------------------------------------------------------
# kernels

@njit(cache=True, error_model="numpy")
def dnu_planes(gdq):
    """(nints, ngroups) bool: True where every pixel of the group has DO_NOT_USE.

    Serial: a row's scan stops at its first usable pixel, usually the first, so threads gain
    nothing, while a parallel kernel costs 1.5 s more to compile on a first run."""
    nints, ngroups, ny, nx = gdq.shape
    missing = np.zeros((ny, nints, ngroups), dtype=np.uint8)
    for y in range(ny):
        for i in range(nints):
            for g in range(ngroups):
                for x in range(nx):
                    if (gdq[i, g, y, x] & DNU) == 0:
                        missing[y, i, g] = 1
                        break
    out = np.ones((nints, ngroups), dtype=np.bool_)
    for y in range(ny):
        for i in range(nints):
            for g in range(ngroups):
                if missing[y, i, g]:
                    out[i, g] = False
    return out


@njit(parallel=True, cache=True, error_model="numpy")
def count_jump_flags(gdq):
    """Number of (integration, group, pixel) elements with the JUMP_DET bit."""
    nints, ngroups, ny, nx = gdq.shape
    per_row = np.zeros(ny, dtype=np.int64)
    for y in prange(ny):
        c = 0
        for i in range(nints):
            for g in range(ngroups):
                for x in range(nx):
                    if gdq[i, g, y, x] & JUMP:
                        c += 1
        per_row[y] = c
    return per_row.sum()


@njit(cache=True, error_model="numpy", inline="always")
def _rn_term(gain, readnoise, rn_div, y, x):
    """The read-noise term RN²/nframes of one pixel in electrons (float64)."""
    gval = gain[y, x]
    rn_e = np.float32(readnoise[y, x] * gval)
    rn2 = np.float32(rn_e * rn_e)
    return np.float64(rn2) / rn_div


@njit(cache=True, error_model="numpy")
def _load_diffs(data, gdq, gain, readnoise, rn_div, y, x, elec, delta):
    """First differences Δ of one pixel in electrons (into delta, integration-major; NaN
    where either group is SAT or DNU) and the read-noise term RN²/nframes (float64)."""
    nints, ngroups = data.shape[0], data.shape[1]
    nd = ngroups - 1
    gval = gain[y, x]
    # electrons and their differences in float32, as stcal computes them
    for i in range(nints):
        for g in range(ngroups):
            if gdq[i, g, y, x] & SAT_OR_DNU:
                elec[g] = np.nan
            else:
                elec[g] = np.float32(data[i, g, y, x] * gval)
        for k in range(nd):
            delta[i * nd + k] = np.float64(np.float32(elec[k + 1] - elec[k]))
    return _rn_term(gain, readnoise, rn_div, y, x)


@njit(cache=True, error_model="numpy")
def _load_chunk_diffs(data, gdq, gain, y, x0, x1, prev, diffs):
    """_load_diffs for the pixels x0 <= x < x1 of row y at once: diffs[k, x - x0] = Δ[k]
    (float32). Plane by plane along the row, so that the arithmetic is vectorised."""
    nints, ngroups = data.shape[0], data.shape[1]
    nd = ngroups - 1
    w = x1 - x0
    grow = gain[y, x0:x1]
    for i in range(nints):
        for g in range(ngroups):
            drow = data[i, g, y, x0:x1]
            qrow = gdq[i, g, y, x0:x1]
            if g == 0:
                for j in range(w):
                    e = np.float32(drow[j] * grow[j])
                    prev[j] = np.float32(np.nan) if qrow[j] & SAT_OR_DNU else e
            else:
                out = diffs[i * nd + g - 1]
                for j in range(w):
                    e = np.float32(drow[j] * grow[j])
                    e = np.float32(np.nan) if qrow[j] & SAT_OR_DNU else e
                    out[j] = np.float32(e - prev[j])
                    prev[j] = e


@njit(cache=True, error_model="numpy")
def _first_pass_stats(delta, m, rn_term, tmp):
    """Pooled median of Δ and sigma = sqrt(|median| + RN²/nframes) (NaN where 0)."""
    med = _nanmedian(delta, m, tmp)
    sig = math.sqrt(abs(med) * 1.0 + rn_term) / 1.0
    if sig == 0.0:
        sig = np.nan
    return med, sig


@njit(cache=True, error_model="numpy")
def _pixel_stats(data, gdq, gain, readnoise, rn_div, y, x, elec, delta, tmp):
    """Load one pixel's differences and return its first-pass (median, sigma)."""
    rn_term = _load_diffs(data, gdq, gain, readnoise, rn_div, y, x, elec, delta)
    m = data.shape[0] * (data.shape[1] - 1)
    return _first_pass_stats(delta, m, rn_term, tmp)


@njit(cache=True, error_model="numpy", inline="always")
def _one_diff(data, gdq, gain, i, g, y, x):
    """Δ[g - 1] of integration i at one pixel, exactly as :func:`_load_diffs` computes it."""
    gval = gain[y, x]
    if (gdq[i, g, y, x] | gdq[i, g - 1, y, x]) & SAT_OR_DNU:
        return np.nan
    e1 = np.float32(data[i, g, y, x] * gval)
    e0 = np.float32(data[i, g - 1, y, x] * gval)
    return np.float64(np.float32(e1 - e0))


@njit(cache=True, error_model="numpy")
def _known_stats(data, gdq, gain, readnoise, rn_div, y, x, elec, delta, tmp, stats):
    """A pixel's first-pass (median, sigma): from ``stats`` when :func:`detect` stored them
    (they depend only on the data and the SAT/DNU flags, which the step does not change),
    otherwise computed. Returns (median, sigma, whether delta holds the pixel's differences).
    """
    if stats.shape[0] == gdq.shape[2] and stats[y, 1, x] == 1.0:
        med = stats[y, 0, x]
        sig = math.sqrt(abs(med) * 1.0 + _rn_term(gain, readnoise, rn_div, y, x)) / 1.0
        if sig == 0.0:
            sig = np.nan
        return med, sig, False
    med, sig = _pixel_stats(data, gdq, gain, readnoise, rn_div, y, x, elec, delta, tmp)
    return med, sig, True


@njit(cache=True, error_model="numpy")
def _deviation(v, c, s):
    """|v - c| / s with the deviation stored in float32 before the division, as stcal does."""
    return abs(np.float64(np.float32(v - c))) / s


@njit(cache=True, error_model="numpy")
def _iterative_sigma(c, rn_term):
    s = math.sqrt(abs(c) * 1.0 + rn_term) / 1.0
    if s == 0.0:
        s = np.nan
    return s


@njit(cache=True, error_model="numpy")
def _flag_deviation(delta, m, nd, c, s, rmax, gdq, y, x):
    """Flag JUMP at every difference whose deviation is rmax and drop it (NaN in delta)."""
    for k in range(m):
        if _deviation(abs(delta[k]), c, s) == rmax:
            i = k // nd
            gdq[i, k - i * nd + 1, y, x] |= JUMP
            delta[k] = np.nan


@njit(cache=True, error_model="numpy")
def _iterative_screen(diffs, m, w, gain, readnoise, rn_div, y, x0, rej, cnt, vmin, vmax, c_lo,
                      c_hi, below, n_lo, n_hi, todo):
    """todo[j] = 1 for the pixels x0 + j of a chunk whose iterative search may find a jump.

    Most pixels have none, and proving it needs no order statistic. With n >= 4 usable
    values, the first pass finds a jump only if (vmax - c)/s(c) or (c - vmin)/s(c) exceeds
    ``rej``, where s(c) = sqrt(c + RN²) and c, the median of the values below vmax, lies
    between two order statistics. The first ratio decreases and the second increases with c,
    so each is below the threshold (with a margin far larger than any rounding) for c above
    c_lo, respectively below c_hi, solved from a quadratic; counting the values under c_lo
    and c_hi then bounds the order statistics. Everything runs across the pixels of the chunk
    (vectorised). Undecided pixels (todo = 1) get the exact search.
    """
    for j in range(w):
        cnt[j] = 0
        vmin[j] = np.inf
        vmax[j] = -np.inf
    for k in range(m):
        row = diffs[k]
        for j in range(w):
            v = abs(row[j])
            cnt[j] += v == v
            vmin[j] = v if v < vmin[j] else vmin[j]
            vmax[j] = v if v > vmax[j] else vmax[j]
    lim = rej * (1.0 - 1e-6) - 1e-6
    for j in range(w):
        rn = _rn_term(gain, readnoise, rn_div, y, x0 + j)
        c_lo[j] = np.inf
        c_hi[j] = -np.inf
        hi = np.float64(vmax[j])
        if lim > 0.0 and rn > 0.0 and rn < 1e30 and hi < 1e12:
            u = (math.sqrt(lim * lim + 4.0 * (hi + rn)) - lim) / 2.0
            c_lo[j] = u * u - rn
            u = (math.sqrt(lim * lim + 4.0 * (np.float64(vmin[j]) + rn)) + lim) / 2.0
            c_hi[j] = u * u - rn
        below[j] = 0
        n_lo[j] = 0
        n_hi[j] = 0
    for k in range(m):
        row = diffs[k]
        for j in range(w):
            v = abs(row[j])
            v64 = np.float64(v)
            below[j] += v < vmax[j]
            n_lo[j] += v64 < c_lo[j]
            n_hi[j] += v64 <= c_hi[j]
    for j in range(w):
        n = cnt[j]
        b = below[j]
        if n < 2:
            todo[j] = 0
        elif n < 4:
            todo[j] = 1
        elif b == 0:
            todo[j] = 0     # no value below the maximum: the centre is NaN, nothing is flagged
        elif n_lo[j] <= (b - 1) // 2 and n_hi[j] >= b // 2 + 1:
            todo[j] = 0
        else:
            todo[j] = 1


@njit(cache=True, error_model="numpy")
def _sigma_clip_screen(diffs, r0, step, nrows, w, nsigma, cnt, vmin, vmax, mean, std, b_lo,
                       b_hi, n_lo, n_hi, todo):
    """todo[j] = 1 for the pixels x0 + j of a chunk where sigma clipping the finite values
    diffs[r0 + step*t, j] (t < nrows) may flag something.

    Nothing is flagged when every value lies within median ± nsigma·std on the first
    iteration, i.e. when the median is at least vmax - nsigma·std and at most
    vmin + nsigma·std. With a std lowered by a relative margin far larger than any difference
    in rounding (the exact one is summed in another order), counting the values under those
    two bounds brackets the median's order statistics. Vectorised across the chunk's pixels.
    """
    for j in range(w):
        cnt[j] = 0
        vmin[j] = np.inf
        vmax[j] = -np.inf
        mean[j] = 0.0
    for t in range(nrows):
        row = diffs[r0 + step * t]
        for j in range(w):
            v = row[j]
            ok = abs(v) < np.inf
            cnt[j] += ok
            mean[j] += np.float64(v) if ok else 0.0
            vmin[j] = v if (ok and v < vmin[j]) else vmin[j]
            vmax[j] = v if (ok and v > vmax[j]) else vmax[j]
    for j in range(w):
        mean[j] = mean[j] / max(cnt[j], 1)
        std[j] = 0.0
    for t in range(nrows):
        row = diffs[r0 + step * t]
        for j in range(w):
            v = row[j]
            d = np.float64(v) - mean[j]
            std[j] += d * d if abs(v) < np.inf else 0.0
    for j in range(w):
        half = nsigma * (math.sqrt(std[j] / max(cnt[j], 1)) * (1.0 - 1e-4))
        b_lo[j] = np.float64(vmax[j]) - half
        b_hi[j] = np.float64(vmin[j]) + half
        n_lo[j] = 0
        n_hi[j] = 0
    for t in range(nrows):
        row = diffs[r0 + step * t]
        for j in range(w):
            v = np.float64(row[j])
            ok = abs(v) < np.inf
            n_lo[j] += ok and v < b_lo[j]
            n_hi[j] += ok and v <= b_hi[j]
    for j in range(w):
        n = cnt[j]
        if n == 0:
            todo[j] = 0
        elif nsigma >= 0.0 and n_lo[j] <= (n - 1) // 2 and n_hi[j] >= n // 2 + 1:
            todo[j] = 0
        else:
            todo[j] = 1


@njit(cache=True, error_model="numpy")
def _pass_centre(buf, n, vmax, rej, thr_two_diffs, thr_three_diffs):
    """An iterative pass's centre (unrounded) and threshold from its n usable values buf[:n]
    (unordered; permuted) whose largest is vmax; ``go`` is False when the search ends here
    (fewer than 2 values, or none below the largest of 4 or more)."""
    if n >= 4:
        below = 0
        for k in range(n):
            below += buf[k] < vmax
        if below == 0:
            return np.nan, np.nan, False
        lo_v, hi_v = _order_stats(buf, n, (below - 1) // 2, below // 2)
        return (lo_v + hi_v) / 2.0, rej, True
    if n == 3:
        return _order_stats(buf, n, np.int64(1), np.int64(1))[0], thr_three_diffs, True
    if n == 2:
        return min(buf[0], buf[1]), thr_two_diffs, True
    return np.nan, np.nan, False


@njit(cache=True, error_model="numpy")
def _largest_deviation(vmin, vmax, c, s):
    """The larger of the extremes' deviations; NaN deviations never count (they only occur
    with a NaN centre or sigma), -inf when both are NaN."""
    rmax = -np.inf
    r = _deviation(vmin, c, s)
    if r > rmax:
        rmax = r
    r = _deviation(vmax, c, s)
    if r > rmax:
        rmax = r
    return rmax


@njit(cache=True, error_model="numpy")
def _iterative_search(delta, m, nd, rn_term, rej, thr_two_diffs, thr_three_diffs, buf, gdq,
                      y, x):
    """stcal's iterative search for one pixel: one jump (the largest deviation |A - c|/s of
    the usable |Δ| pooled over integrations) per pass, until none exceeds the threshold.

    A pass's centre c is the median of the usable values below their maximum (n >= 4), the
    median (n = 3) or the smaller (n = 2); the centre is rounded to float32 after the first
    pass. The deviation is, as a function of the value, non-increasing below c and
    non-decreasing above it (every rounding is monotonic), so its maximum is reached at the
    smallest or the largest value and the values that reach it are the few smallest and/or
    largest: a pass needs only the extremes and two order statistics (a selection). The first
    ``SELECTION_PASSES`` passes after the first select on the values left; a pixel with more
    jumps than that sorts its values once and then shrinks a range from both ends (sorting
    costs about three selections on a long ramp).
    ``delta`` is consumed (flagged differences become NaN); ``buf`` is scratch of size m.
    """
    n = np.int64(0)
    vmin = np.inf
    vmax = -np.inf
    for k in range(m):
        v = abs(delta[k])
        if not np.isnan(v):
            buf[n] = v
            n += 1
            vmin = min(vmin, v)
            vmax = max(vmax, v)
    c, thr, go = _pass_centre(buf, n, vmax, rej, thr_two_diffs, thr_three_diffs)
    if not go:
        return
    s = _iterative_sigma(c, rn_term)
    rmax = _largest_deviation(vmin, vmax, c, s)
    if not (rmax > thr):
        return
    _flag_deviation(delta, m, nd, c, s, rmax, gdq, y, x)
    for _ in range(SELECTION_PASSES):
        # the values just flagged (deviation rmax) leave; the rest stay unordered
        kept = np.int64(0)
        vmin = np.inf
        vmax = -np.inf
        for k in range(n):
            v = buf[k]
            if _deviation(v, c, s) != rmax:
                buf[kept] = v
                kept += 1
                vmin = min(vmin, v)
                vmax = max(vmax, v)
        n = kept
        c, thr, go = _pass_centre(buf, n, vmax, rej, thr_two_diffs, thr_three_diffs)
        if not go:
            return
        c = np.float64(np.float32(c))
        s = _iterative_sigma(c, rn_term)
        rmax = _largest_deviation(vmin, vmax, c, s)
        if not (rmax > thr):
            return
        _flag_deviation(delta, m, nd, c, s, rmax, gdq, y, x)
    buf[:n].sort()
    lo = 0
    hi = n
    while True:
        # drop the values just flagged: they are at the ends of the sorted range
        while lo < hi and _deviation(buf[lo], c, s) == rmax:
            lo += 1
        while hi > lo and _deviation(buf[hi - 1], c, s) == rmax:
            hi -= 1
        n = hi - lo
        if n >= 4:
            top = hi - 1
            while top > lo and buf[top - 1] == buf[hi - 1]:
                top -= 1
            below = top - lo
            if below == 0:
                return
            c = (buf[lo + (below - 1) // 2] + buf[lo + below // 2]) / 2.0
            thr = rej
        elif n == 3:
            c = buf[lo + 1]
            thr = thr_three_diffs
        elif n == 2:
            c = buf[lo]
            thr = thr_two_diffs
        else:
            return
        c = np.float64(np.float32(c))
        s = _iterative_sigma(c, rn_term)
        rmax = _largest_deviation(buf[lo], buf[hi - 1], c, s)
        if not (rmax > thr):
            return
        _flag_deviation(delta, m, nd, c, s, rmax, gdq, y, x)


@njit(cache=True, error_model="numpy", nogil=True)
def _detect_chunk(data, gdq, gain, readnoise, rn_div, mode, rej, thr_two_diffs, thr_three_diffs,
                  only_use_ints, stats, counts, kept, chunk_lo, chunk_hi, per_row, width):
    """:func:`detect` for the pieces ``chunk_lo:chunk_hi`` of rows, ``width`` pixels each (the
    last of a row shorter), ``per_row`` per row. The work buffers are allocated once per
    call, not once per piece. The pieces of a row are all in one call (``counts[y]`` is
    written by one thread)."""
    nints, ngroups, ny, nx = data.shape
    nd = ngroups - 1
    m = nints * nd
    prev = np.empty(width, dtype=np.float32)
    diffs = np.empty((m, width), dtype=np.float32)
    delta = np.empty(m, dtype=np.float64)
    tmp = np.empty(m, dtype=np.float64)
    cnt = np.empty(width, dtype=np.int32)
    below = np.empty(width, dtype=np.int32)
    n_lo = np.empty(width, dtype=np.int32)
    n_hi = np.empty(width, dtype=np.int32)
    todo = np.empty(width, dtype=np.uint8)
    vmin = np.empty(width, dtype=np.float32)
    vmax = np.empty(width, dtype=np.float32)
    c_lo = np.empty(width, dtype=np.float64)
    c_hi = np.empty(width, dtype=np.float64)
    b_lo = np.empty(width, dtype=np.float64)
    b_hi = np.empty(width, dtype=np.float64)
    todo_k = np.empty((nd, width), dtype=np.uint8)
    for chunk in range(chunk_lo, chunk_hi):
        y = chunk // per_row
        x0 = (chunk - y * per_row) * width
        x1 = min(x0 + width, nx)
        _load_chunk_diffs(data, gdq, gain, y, x0, x1, prev, diffs)
        if mode == MODE_ITERATIVE:
            _iterative_screen(diffs, m, x1 - x0, gain, readnoise, rn_div, y, x0, rej, cnt, vmin,
                              vmax, c_lo, c_hi, below, n_lo, n_hi, todo)
        elif mode == MODE_SIGMA_CLIP:
            # todo_k[k, j]: pixel x0 + j needs the exact clipping of group k (only_use_ints)
            # or of all its differences (row 0)
            for j in range(x1 - x0):
                todo[j] = 0
            for k in range(nd if only_use_ints else 1):
                _sigma_clip_screen(diffs, k, nd if only_use_ints else 1,
                                   nints if only_use_ints else m, x1 - x0, rej, cnt, vmin,
                                   vmax, c_lo, c_hi, b_lo, b_hi, n_lo, n_hi, todo_k[k])
                for j in range(x1 - x0):
                    todo[j] |= todo_k[k, j]
        for x in range(x0, x1):
            if mode != MODE_SINGLE_PASS and todo[x - x0] == 0:
                continue
            for k in range(m):
                delta[k] = np.float64(diffs[k, x - x0])
            rn_term = _rn_term(gain, readnoise, rn_div, y, x)

            if mode == MODE_ITERATIVE:
                _iterative_search(delta, m, nd, rn_term, rej, thr_two_diffs, thr_three_diffs,
                                  tmp, gdq, y, x)

            elif mode == MODE_SINGLE_PASS:
                med, sig = _first_pass_stats(delta, m, rn_term, tmp)
                for k in range(m):
                    d = delta[k]
                    if np.isfinite(d) and abs(d - med) / sig > rej:
                        i = k // nd
                        gdq[i, k - i * nd + 1, y, x] |= JUMP

            elif mode == MODE_SIGMA_CLIP:
                if only_use_ints:
                    for k in range(nd):
                        if todo_k[k, x - x0] == 0:
                            continue
                        nv = np.int64(0)
                        for i in range(nints):
                            d = delta[i * nd + k]
                            if np.isfinite(d):
                                tmp[nv] = d
                                nv += 1
                        lo, hi = _sigma_clip_bounds(tmp, nv, rej)
                        for i in range(nints):
                            d = delta[i * nd + k]
                            if np.isfinite(d) and (d < lo or d > hi):
                                gdq[i, k + 1, y, x] |= JUMP
                else:
                    nv = np.int64(0)
                    for k in range(m):
                        d = delta[k]
                        if np.isfinite(d):
                            tmp[nv] = d
                            nv += 1
                    lo, hi = _sigma_clip_bounds(tmp, nv, rej)
                    for k in range(m):
                        d = delta[k]
                        if np.isfinite(d) and (d < lo or d > hi):
                            i = k // nd
                            gdq[i, k - i * nd + 1, y, x] |= JUMP

        if counts.shape[0] == ny:
            # the JUMP flags of the piece while it is in the cache (every group: flags given
            # on input count too)
            c = 0
            for i in range(nints):
                for g in range(ngroups):
                    row = gdq[i, g, y, x0:x1]
                    for j in range(x1 - x0):
                        c += (row[j] & JUMP) != 0
            if x0 == 0:
                counts[y] = 0
            counts[y] += c
        kept_n, kept_x, kept_med = kept
        if stats.shape[0] == ny or kept_n.shape[0] == ny:
            # first-pass statistics of the pixels with a jump
            for j in range(x1 - x0):
                todo[j] = 0
            for i in range(nints):
                for g in range(1, ngroups):
                    row = gdq[i, g, y, x0:x1]
                    for j in range(x1 - x0):
                        todo[j] |= row[j]
            if stats.shape[0] == ny:
                for x in range(x0, x1):
                    if todo[x - x0] & JUMP:
                        for k in range(m):
                            delta[k] = np.float64(diffs[k, x - x0])
                        stats[y, 0, x] = _nanmedian(delta, m, tmp)
                        stats[y, 1, x] = 1.0
                    else:
                        stats[y, 1, x] = 0.0
            else:
                # the row's list, in x order, up to its capacity (the rest are computed
                # again where needed)
                n = 0 if x0 == 0 else kept_n[y]
                for x in range(x0, x1):
                    if todo[x - x0] & JUMP and n < kept_x.shape[1]:
                        for k in range(m):
                            delta[k] = np.float64(diffs[k, x - x0])
                        kept_x[y, n] = x
                        kept_med[y, n] = _nanmedian(delta, m, tmp)
                        n += 1
                kept_n[y] = n


def detect(data, gdq, gain, readnoise, nframes, mode, rej, thr_two_diffs, thr_three_diffs,
           only_use_ints, stats, counts=None, kept=None):
    """Primary detection for every pixel (in place on gdq).

    ``counts`` (int64, (ny,), optional) receives the number of elements of each row with the
    JUMP flag afterwards (:func:`count_jump_flags` of the row): counted here, where each piece
    of a row was just worked on, rather than in a pass over the whole ramp after.

    ``thr_two_diffs`` applies when a pixel has 2 usable differences (3 groups),
    ``thr_three_diffs`` when it has 3 (4 groups), ``rej`` otherwise.

    ``stats`` (float64, (ny, 2, nx), or (0, 2, 1) to skip this) receives the first-pass
    median of every pixel that has a JUMP flag afterwards (stats[y, 0, x]) and 1.0 in
    stats[y, 1, x] there (0.0 elsewhere): the neighbour and after-jump passes need them, and
    the pixel's differences are at hand here, while they would have to be gathered again
    from the ramp.

    ``kept`` (from :func:`kept_medians`, optional; with ``stats`` of shape (0, 2, 1)) keeps
    the same medians for a list of pixels per row instead: the pixels with a jump are few,
    and a full (ny, 2, nx) array would cost more memory than recomputing them saves when the
    pixels have few differences.
    Each pass works in pieces of a row: differences of every integration in a (differences,
    pixels) buffer, a vectorised screening that clears most pixels (iterative search and
    sigma clipping), then the exact search for the others, pixel by pixel.

    Rows are shared out between the threads by Python (``_detect_chunk`` releases the GIL),
    not by a parallel numba loop: such a loop around this much code took numba 5 s more to
    compile on a first run, and a task of several rows costs microseconds to start.
    """
    nints, ngroups, ny, nx = data.shape
    rn_div = 0.5 * (2.0 * float(nframes))
    width = detection_piece_width(nints * (ngroups - 1))
    per_row = (nx + width - 1) // width

    if counts is None:
        counts = _NO_COUNTS
    if kept is None:
        kept = NO_KEPT

    def rows(lo_hi):
        _detect_chunk(data, gdq, gain, readnoise, rn_div, mode, rej, thr_two_diffs,
                      thr_three_diffs, only_use_ints, stats, counts, kept, lo_hi[0] * per_row,
                      lo_hi[1] * per_row, per_row, width)

    map_in_threads(rows, _task_ranges(ny))


_NO_COUNTS = np.zeros(0, dtype=np.int64)

#: Pixels with a jump whose first-pass median :func:`detect` keeps per row (``kept``). A full
#: frame with 33,000 jumps has 16 a row on average.
KEPT_PER_ROW = 64


def kept_medians(ny, per_row=KEPT_PER_ROW):
    """Empty per-row lists for :func:`detect`'s ``kept``: (count (ny,) int32, x (ny, per_row)
    int32, median (ny, per_row) float64)."""
    return (np.zeros(ny, dtype=np.int32), np.zeros((ny, per_row), dtype=np.int32),
            np.zeros((ny, per_row), dtype=np.float64))


#: No kept medians.
NO_KEPT = kept_medians(0, 1)


def _task_ranges(n):
    """(start, stop) ranges splitting range(n) into a few tasks per thread."""
    step = max(1, -(-n // (numba.get_num_threads() * TASKS_PER_THREAD)))
    return [(lo, min(n, lo + step)) for lo in range(0, n, step)]


@njit(parallel=True, cache=True, error_model="numpy")
def jump_or_dnu_planes(gdq):
    """(nints, ngroups) bool: True where every pixel of the group has JUMP_DET or DO_NOT_USE.

    For an exposure read in blocks of rows, the table of the whole is the AND of the blocks'.
    """
    nints, ngroups, ny, nx = gdq.shape
    missing = np.zeros((ny, nints, ngroups), dtype=np.uint8)
    for y in prange(ny):
        for i in range(nints):
            for g in range(ngroups):
                for x in range(nx):
                    if (gdq[i, g, y, x] & (JUMP | DNU)) == 0:
                        missing[y, i, g] = 1
                        break
    full = np.ones((nints, ngroups), dtype=np.bool_)
    for y in range(ny):
        for i in range(nints):
            for g in range(ngroups):
                if missing[y, i, g]:
                    full[i, g] = False
    return full


@njit(parallel=True, cache=True, error_model="numpy")
def reset_jump_planes(gdq, full):
    """Clear the pixels whose flag is exactly JUMP_DET in the (integration, group) planes where
    ``full`` (from :func:`jump_or_dnu_planes` of the whole exposure) is True."""
    nints, ngroups, ny, nx = gdq.shape
    for y in prange(ny):
        for i in range(nints):
            for g in range(ngroups):
                if full[i, g]:
                    for x in range(nx):
                        if gdq[i, g, y, x] == JUMP:
                            gdq[i, g, y, x] = 0


@njit(cache=True, error_model="numpy")
def _plane_triggers(data, gdq, gain, readnoise, rn_div, i, g, min_sigma, max_sigma, ty, tx,
                    stats, kept, words):
    """The jumps of plane (i, g) whose first-pass significance lies strictly between min_sigma
    and max_sigma: (ty, tx, n), their rows and columns in ty[:n] and tx[:n] (the arrays given,
    or larger ones when they were full). The medians come from ``stats`` or ``kept`` (see
    :func:`detect`) where they hold them. ``words``: gdq's rows are contiguous, and are
    scanned 8 flags at a time."""
    nints, ngroups, ny, nx = data.shape
    nd = ngroups - 1
    where = np.empty(nx, dtype=np.int64)
    elec = np.empty(ngroups, dtype=np.float32)
    delta = np.empty(nints * nd, dtype=np.float64)
    tmp = np.empty(nints * nd, dtype=np.float64)
    nw = nx // 8 if words else 0
    kept_n, kept_x, kept_med = kept
    use_kept = kept_n.shape[0] == ny
    n = 0
    for y in range(ny):
        # list the jumps of the row first: a loop that computes under the JUMP test gets
        # vectorised with loads of every pixel's data, which is far slower; jumps are rare,
        # so pieces of the row are first tested for any JUMP with an OR over the piece
        row = gdq[i, g, y]
        count = 0
        if nw > 0:
            packed = row[:nw * 8].view(np.uint64)
            for w0 in range(0, nw, SCAN_WORDS):
                w1 = min(w0 + SCAN_WORDS, nw)
                seen_w = np.uint64(0)
                for w in range(w0, w1):
                    seen_w |= packed[w]
                if seen_w & JUMP_IN_WORD:
                    count = _list_jumps(row, w0 * 8, w1 * 8, where, count)
        for s0 in range(nw * 8, nx, SCAN_PIECE):
            s1 = min(s0 + SCAN_PIECE, nx)
            seen = np.uint8(0)
            for x in range(s0, s1):
                seen |= row[x]
            if seen & JUMP:
                count = _list_jumps(row, s0, s1, where, count)
        n_kept = kept_n[y] if use_kept else 0
        k = 0
        for p in range(count):
            x = where[p]
            while k < n_kept and kept_x[y, k] < x:
                k += 1
            if k < n_kept and kept_x[y, k] == x:
                med = kept_med[y, k]
                sig = _iterative_sigma(med, _rn_term(gain, readnoise, rn_div, y, x))
                d = _one_diff(data, gdq, gain, i, g, y, x)
            else:
                med, sig, loaded = _known_stats(data, gdq, gain, readnoise, rn_div, y, x, elec,
                                                delta, tmp, stats)
                d = delta[i * nd + g - 1] if loaded else _one_diff(data, gdq, gain, i, g, y, x)
            r = abs(d - med) / sig
            if r < max_sigma and r > min_sigma:
                if n == ty.shape[0]:
                    ty, tx = _grown(ty), _grown(tx)
                ty[n] = y
                tx[n] = x
                n += 1
    return ty, tx, n


@njit(cache=True, error_model="numpy")
def _grown(values):
    """``values`` copied into an array twice as long."""
    out = np.empty(2 * values.shape[0], dtype=values.dtype)
    out[:values.shape[0]] = values
    return out


@njit(cache=True, error_model="numpy", inline="always")
def _list_jumps(row, x0, x1, where, count):
    """Append to ``where`` (from ``count`` on) the x in x0:x1 where ``row`` has JUMP."""
    for x in range(x0, x1):
        if row[x] & JUMP:
            where[count] = x
            count += 1
    return count


@njit(parallel=True, cache=True, error_model="numpy")
def neighbour_triggers(data, gdq, gain, readnoise, nframes, min_sigma, max_sigma, trigger,
                       row_any, stats):
    """The triggers of :func:`flag_neighbours` for every plane, into ``trigger`` (uint8, the
    shape of gdq: 1 where a jump triggers neighbour flagging, else 0) and ``row_any`` (uint8,
    (nints, ngroups, ny): 1 where the row of the plane holds a trigger). Only the rows with
    ``row_any`` set are written in ``trigger`` (the others keep whatever the buffer held: jumps
    are rare, and a buffer serves block after block without a pass that clears it).

    Together with :func:`apply_neighbour_triggers` this does what flag_neighbours does, for an
    exposure processed in blocks of rows: a block's triggers reach the rows just outside it.
    Pixel by pixel (pieces of rows shared out between the threads): a pixel's first-pass
    statistics are computed once for all its jumps.
    """
    nints, ngroups, ny, nx = data.shape
    nd = ngroups - 1
    rn_div = 0.5 * (2.0 * nframes)
    per_row = (nx + ROW_CHUNK - 1) // ROW_CHUNK
    for y in prange(ny):
        for i in range(nints):
            for g in range(ngroups):
                row_any[i, g, y] = 0
        # work buffers once per row, not once per piece
        any_jump = np.empty(ROW_CHUNK, dtype=np.uint8)
        elec = np.empty(ngroups, dtype=np.float32)
        delta = np.empty(nints * nd, dtype=np.float64)
        tmp = np.empty(nints * nd, dtype=np.float64)
        for piece in range(per_row):
            _neighbour_piece(data, gdq, gain, readnoise, rn_div, min_sigma, max_sigma, trigger,
                             row_any, stats, y, piece * ROW_CHUNK,
                             min(piece * ROW_CHUNK + ROW_CHUNK, nx), any_jump, elec, delta, tmp)


@njit(cache=True, error_model="numpy")
def _neighbour_piece(data, gdq, gain, readnoise, rn_div, min_sigma, max_sigma, trigger, row_any,
                     stats, y, x0, x1, any_jump, elec, delta, tmp):
    """:func:`neighbour_triggers` for pixels x0:x1 of row y."""
    nints, ngroups, ny, nx = data.shape
    nd = ngroups - 1
    w = x1 - x0
    # which pixels have a jump (vectorised along the row)
    for j in range(w):
        any_jump[j] = 0
    for i in range(nints):
        for g in range(1, ngroups):
            row = gdq[i, g, y, x0:x1]
            for j in range(w):
                any_jump[j] |= row[j]
    found = False
    for j in range(w):
        if any_jump[j] & JUMP:
            found = True
    if not found:
        return
    for x in range(x0, x1):
        if (any_jump[x - x0] & JUMP) == 0:
            continue
        med, sig, loaded = _known_stats(data, gdq, gain, readnoise, rn_div, y, x, elec, delta,
                                        tmp, stats)
        for i in range(nints):
            for g in range(1, ngroups):
                if gdq[i, g, y, x] & JUMP:
                    d = delta[i * nd + g - 1] if loaded else _one_diff(data, gdq, gain, i, g,
                                                                         y, x)
                    r = abs(d - med) / sig
                    if r < max_sigma and r > min_sigma:
                        if row_any[i, g, y] == 0:   # the row's first trigger: the row is cleared
                            row = trigger[i, g, y]
                            for k in range(nx):
                                row[k] = 0
                            row_any[i, g, y] = 1
                        trigger[i, g, y, x] = 1


@njit(parallel=True, cache=True, error_model="numpy")
def apply_neighbour_triggers(gdq, trigger, row_any, outside):
    """OR JUMP into the pixels (without SAT or DNU) at or next to a trigger, in place.

    ``trigger`` has the shape of ``gdq`` (a block of rows), its rows read only where
    ``row_any`` (see :func:`neighbour_triggers`) is set; ``outside`` (nints, ngroups, nx)
    holds the triggers of the row adjacent to the block that is not in it (the row above it,
    or below it for a one-row block given no triggers of its own; zeros when there is none).
    Contributions can be applied in several calls: flagging only ORs JUMP into usable pixels.
    """
    nints, ngroups, ny, nx = gdq.shape
    nd = ngroups - 1
    for plane in prange(nints * nd):
        i = plane // nd
        g = plane - i * nd + 1
        blank = np.zeros(nx, dtype=np.uint8)
        edge = outside[i, g]
        edge_any = np.uint8(0)
        for x in range(nx):
            edge_any |= edge[x]
        for y in range(ny):
            # most rows have no trigger near them: they are neither read nor rewritten
            any_up = row_any[i, g, y - 1] if y > 0 else edge_any
            any_down = row_any[i, g, y + 1] if y < ny - 1 else np.uint8(0)
            if not (row_any[i, g, y] or any_up or any_down):
                continue
            cur = trigger[i, g, y] if row_any[i, g, y] else blank
            up = (trigger[i, g, y - 1] if any_up else blank) if y > 0 else edge
            down = trigger[i, g, y + 1] if any_down else blank
            row = gdq[i, g, y]
            _or_jump(row, 0, cur[0] | up[0] | down[0] | (cur[1] if nx > 1 else np.uint8(0)))
            for x in range(1, nx - 1):
                _or_jump(row, x, cur[x] | up[x] | down[x] | cur[x - 1] | cur[x + 1])
            if nx > 1:
                _or_jump(row, nx - 1, cur[nx - 1] | up[nx - 1] | down[nx - 1] | cur[nx - 2])


@njit(cache=True, error_model="numpy", inline="always")
def _or_jump(row, x, f):
    """JUMP into ``row[x]`` when ``f`` (a trigger there or next to it) and the pixel is usable."""
    v = row[x]
    row[x] = v | (np.uint8(JUMP) * (f & np.uint8((v & SAT_OR_DNU) == 0)))


def flag_neighbours(data, gdq, gain, readnoise, nframes, min_sigma, max_sigma, stats,
                    kept=None):
    """OR JUMP into the 4 edge neighbours (and the pixel itself) of each jump whose
    first-pass significance |Δ - median|/sigma lies strictly between min_sigma and max_sigma,
    where those pixels have neither SAT nor DNU. Each group is treated independently, using
    the jumps present before any neighbour was flagged.

    The (integration, group) planes are shared out between the threads, in runs of planes
    (as in :func:`detect`, by Python: many small tasks would cost more than the work when
    nints is large).
    """
    nints, ngroups = data.shape[:2]
    rn_div = 0.5 * (2.0 * float(nframes))

    words = gdq.strides[-1] == 1
    if kept is None:
        kept = NO_KEPT

    def planes(lo_hi):
        _flag_neighbour_planes(data, gdq, gain, readnoise, rn_div, float(min_sigma),
                               float(max_sigma), stats, kept, words, lo_hi[0], lo_hi[1])

    map_in_threads(planes, _task_ranges(nints * (ngroups - 1)))


@njit(cache=True, error_model="numpy", nogil=True)
def _flag_neighbour_planes(data, gdq, gain, readnoise, rn_div, min_sigma, max_sigma, stats,
                           kept, words, plane_lo, plane_hi):
    """:func:`flag_neighbours` for the planes ``plane_lo:plane_hi`` (integration-major)."""
    nints, ngroups, ny, nx = data.shape
    nd = ngroups - 1
    ty = np.empty(4096, dtype=np.int64)
    tx = np.empty(4096, dtype=np.int64)
    for plane in range(plane_lo, plane_hi):
        i = plane // nd
        g = plane - i * nd + 1
        # every trigger of the plane first, then their flags: the triggers are the jumps
        # before any neighbour was flagged. Triggers are few (a full frame's 33,000 jumps in 9
        # planes): each flags its 5 pixels, rather than a pass over the plane's rows.
        ty, tx, n = _plane_triggers(data, gdq, gain, readnoise, rn_div, i, g, min_sigma,
                                    max_sigma, ty, tx, stats, kept, words)
        one = np.uint8(1)
        for t in range(n):
            y, x = ty[t], tx[t]
            row = gdq[i, g, y]
            _or_jump(row, x, one)
            if x > 0:
                _or_jump(row, x - 1, one)
            if x < nx - 1:
                _or_jump(row, x + 1, one)
            if y > 0:
                _or_jump(gdq[i, g, y - 1], x, one)
            if y < ny - 1:
                _or_jump(gdq[i, g, y + 1], x, one)


@njit(cache=True, error_model="numpy", nogil=True)
def _after_chunks(data, gdq, gain, readnoise, rn_div, e1, e2, j1, j2, do_after, stats,
                  chunk_lo, chunk_hi, per_row):
    """:func:`flag_after_jumps_and_clean` for the pieces ``chunk_lo:chunk_hi`` of rows
    (``per_row`` pieces of ROW_CHUNK pixels per row). The work buffers are allocated once per
    call, not once per piece."""
    nints, ngroups, ny, nx = gdq.shape
    nd = ngroups - 1
    big = np.zeros(ngroups, dtype=np.uint8)
    elec = np.empty(ngroups, dtype=np.float32)
    delta = np.empty(nints * nd, dtype=np.float64)
    tmp = np.empty(nints * nd, dtype=np.float64)
    any_jump = np.empty(ROW_CHUNK, dtype=np.uint8)
    for chunk in range(chunk_lo, chunk_hi):
        y = chunk // per_row
        x0 = (chunk - y * per_row) * ROW_CHUNK
        x1 = min(x0 + ROW_CHUNK, nx)
        w = x1 - x0
        if do_after:
            # which pixels have a jump (vectorised along the row)
            any_jump[:] = 0
            for i in range(nints):
                for g in range(1, ngroups):
                    row = gdq[i, g, y, x0:x1]
                    for j in range(w):
                        any_jump[j] |= row[j]
            for x in range(x0, x1):
                if (any_jump[x - x0] & JUMP) == 0:
                    continue
                med, _, loaded = _known_stats(data, gdq, gain, readnoise, rn_div, y, x,
                                              elec, delta, tmp, stats)
                for i in range(nints):
                    for g in range(ngroups):
                        big[g] = 0
                    for g in range(1, ngroups):
                        if gdq[i, g, y, x] & JUMP:
                            d = (delta[i * nd + g - 1] if loaded
                                 else _one_diff(data, gdq, gain, i, g, y, x))
                            e = (d - med) * 1.0
                            if e >= e1:
                                big[g] |= 1
                            if e >= e2:
                                big[g] |= 2
                    until = -1
                    for g in range(1, ngroups):
                        if big[g] & 1:
                            until = max(until, g + j1)
                        if big[g] & 2:
                            until = max(until, g + j2)
                        if g <= until and (gdq[i, g, y, x] & SAT_OR_DNU) == 0:
                            gdq[i, g, y, x] |= JUMP
        # no JUMP where SAT or DNU (vectorised along the row)
        for i in range(nints):
            for g in range(ngroups):
                row = gdq[i, g, y, x0:x1]
                for j in range(w):
                    v = row[j]
                    row[j] = v & ~(np.uint8(JUMP) * np.uint8((v & SAT_OR_DNU) != 0))


def flag_after_jumps_and_clean(data, gdq, gain, readnoise, nframes, e1, n1, e2, n2,
                               do_after, stats, rows):
    """After-jump flagging (when do_after), then removal of JUMP wherever DNU or SAT is set,
    in the first ``rows`` rows.

    For a jump at group g whose Δ[g-1] - median reaches e1 (e2), JUMP is added to groups
    g+1 … g+min(n1, ngroups-2) (n2 respectively) that have neither SAT nor DNU. Pieces of
    rows are shared out between threads as in :func:`detect`.
    """
    ngroups, nx = gdq.shape[1], gdq.shape[3]
    rn_div = 0.5 * (2.0 * float(nframes))
    j1 = min(int(n1), ngroups - 2)
    j2 = min(int(n2), ngroups - 2)
    per_row = (nx + ROW_CHUNK - 1) // ROW_CHUNK
    rows = min(int(rows), gdq.shape[2])

    def pieces(lo_hi):
        _after_chunks(data, gdq, gain, readnoise, rn_div, float(e1), float(e2), j1, j2,
                      bool(do_after), stats, lo_hi[0], lo_hi[1], per_row)

    # Without after-jump flagging what is left is the clean-up, one pass over the flags: for
    # a block of a few MB one thread costs less than sharing it out (a NIRISS series of 50
    # integrations, 8 MB blocks: 0.04 s on one thread, 0.06 s shared between two), while a
    # full frame's 42 MB still gains from two (2 ms against 3)
    alone = not do_after and rows * gdq.shape[0] * ngroups * nx < CLEAN_ALONE_BYTES
    map_in_threads(pieces, _task_ranges(rows * per_row), threads=1 if alone else None)
