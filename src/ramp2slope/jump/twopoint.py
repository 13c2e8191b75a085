"""Two-point-difference cosmic-ray detection kernels (numba).

Every kernel works on one pixel's ramp at a time, with ``prange`` over detector rows, and reads
the ramp straight from the caller's float32 DN array: the electrons ``D = float32(DN * gain)``
and the first differences ``Δ = float32(D[k+1] - D[k])`` are formed on the fly, so no copy of
the ramp and no ``(nints, ngroups-1, ny, nx)`` array of differences is ever allocated. The
statistics pooled over integrations (the median of Δ, the iterative search where n counts the
finite differences of *all* integrations) gather the ``nints*(ngroups-1)`` differences of one
pixel into a small per-row buffer, so the peak extra memory is two float64 images (the median
and sigma of the first pass, needed again for neighbour and after-jump flagging) plus buffers
proportional to one pixel's ramp.

The arithmetic reproduces the precision of the official code (stcal 1.20): electrons and
differences in float32, medians and sigmas in float64, the iterative search's deviation
``|A - c|`` stored in float32 and its centre ``c`` rounded to float32 after the first pass.
Those roundings decide borderline flags, so they are kept on purpose.
"""
import math

import numpy as np
from numba import njit, prange

from ..datamodels import dqflags

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

@njit(cache=True, error_model="numpy", inline="always")
def _sort(buf, n):
    """Sort buf[:n] in place (insertion sort for short ramps, numpy's sort otherwise)."""
    if n <= 32:
        for i in range(1, n):
            v = buf[i]
            j = i - 1
            while j >= 0 and buf[j] > v:
                buf[j + 1] = buf[j]
                j -= 1
            buf[j + 1] = v
    else:
        buf[:n] = np.sort(buf[:n])


@njit(cache=True, error_model="numpy")
def _median_of_sorted(buf, n):
    """numpy's median of n sorted finite values: the mean of the two middle ones."""
    if n == 0:
        return np.nan
    return (buf[(n - 1) // 2] + buf[n // 2]) / 2.0


@njit(cache=True, error_model="numpy")
def _nanmedian(values, m, tmp):
    """nanmedian of values[:m] (float64), using tmp as scratch."""
    n = 0
    for k in range(m):
        v = values[k]
        if not np.isnan(v):
            tmp[n] = v
            n += 1
    _sort(tmp, n)
    return _median_of_sorted(tmp, n)


@njit(cache=True, error_model="numpy")
def _clipped_centre(absdiff, m, tmp):
    """Centre of the iterative search for one pixel, and the number of usable values.

    n >= 4: drop every value equal to the maximum, then the median of the rest;
    n == 3: the median; n == 2: the smaller value; otherwise NaN.
    """
    n = 0
    vmax = -np.inf
    for k in range(m):
        v = absdiff[k]
        if not np.isnan(v):
            n += 1
            if v > vmax:
                vmax = v
    if n >= 4:
        c = 0
        for k in range(m):
            v = absdiff[k]
            if not np.isnan(v) and v != vmax:
                tmp[c] = v
                c += 1
        _sort(tmp, c)
        return _median_of_sorted(tmp, c), n
    if n == 3 or n == 2:
        c = 0
        for k in range(m):
            v = absdiff[k]
            if not np.isnan(v):
                tmp[c] = v
                c += 1
        _sort(tmp, c)
        if n == 2:
            return tmp[0], n
        return _median_of_sorted(tmp, c), n
    return np.nan, n


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
            # the C expression 0.5 * (kth(n/2) + kth(n/2 - 1)) evaluates the left call first
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

@njit(parallel=True, cache=True, error_model="numpy")
def dnu_planes(gdq):
    """(nints, ngroups) bool: True where every pixel of the group has DO_NOT_USE."""
    nints, ngroups, ny, nx = gdq.shape
    missing = np.zeros((ny, nints, ngroups), dtype=np.uint8)
    for y in prange(ny):
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
def _diff(data, gdq, i, g, y, x, gain):
    """Δ of group g-1 -> g in electrons (float32 arithmetic), NaN if either is SAT/DNU."""
    if ((gdq[i, g, y, x] | gdq[i, g - 1, y, x]) & SAT_OR_DNU) != 0:
        return np.nan
    d1 = np.float32(data[i, g, y, x] * gain)
    d0 = np.float32(data[i, g - 1, y, x] * gain)
    return np.float64(np.float32(d1 - d0))


@njit(parallel=True, cache=True, error_model="numpy")
def detect(data, gdq, gain, readnoise, nframes, mode, rej, thr_two_diffs, thr_three_diffs,
           only_use_ints, med_out, sig_out):
    """First-pass statistics and primary detection for every pixel (in place on gdq).

    med_out/sig_out (ny, nx) float64 receive the pooled median of Δ and its sigma
    sqrt(|median| + RN²/nframes) (NaN where that sigma is 0). ``thr_two_diffs`` applies
    when a pixel has 2 usable differences (3 groups), ``thr_three_diffs`` for 3 (4 groups).
    """
    nints, ngroups, ny, nx = data.shape
    nd = ngroups - 1
    m = nints * nd
    rn_div = 0.5 * (2.0 * nframes)
    for y in prange(ny):
        delta = np.empty(m, dtype=np.float64)
        absd = np.empty(m, dtype=np.float64)
        tmp = np.empty(m, dtype=np.float64)
        for x in range(nx):
            gval = gain[y, x]
            rn_e = np.float32(readnoise[y, x] * gval)
            rn2 = np.float32(rn_e * rn_e)
            rn_term = np.float64(rn2) / rn_div
            for i in range(nints):
                for k in range(nd):
                    delta[i * nd + k] = _diff(data, gdq, i, k + 1, y, x, gval)
            med = _nanmedian(delta, m, tmp)
            sig = math.sqrt(abs(med) * 1.0 + rn_term) / 1.0
            if sig == 0.0:
                sig = np.nan
            med_out[y, x] = med
            sig_out[y, x] = sig

            if mode == MODE_ITERATIVE:
                for k in range(m):
                    absd[k] = abs(delta[k])
                first = True
                while True:
                    c, n = _clipped_centre(absd, m, tmp)
                    if not first:
                        c = np.float64(np.float32(c))
                    s = math.sqrt(abs(c) * 1.0 + rn_term) / 1.0
                    if s == 0.0:
                        s = np.nan
                    if n >= 4:
                        thr = rej
                    elif n == 3:
                        thr = thr_three_diffs
                    elif n == 2:
                        thr = thr_two_diffs
                    else:
                        break
                    # ratio of each difference; the largest one is the candidate
                    rmax = -np.inf
                    anyfinite = False
                    for k in range(m):
                        a = absd[k]
                        if np.isnan(a):
                            tmp[k] = np.nan
                            continue
                        e = np.float32(a - c)
                        r = abs(np.float64(e)) / s
                        tmp[k] = r
                        if not np.isnan(r):
                            anyfinite = True
                            if r > rmax:
                                rmax = r
                    if not anyfinite or not (rmax > thr):
                        break
                    for k in range(m):
                        if tmp[k] == rmax:
                            i = k // nd
                            gdq[i, k - i * nd + 1, y, x] |= JUMP
                            absd[k] = np.nan
                    first = False

            elif mode == MODE_SINGLE_PASS:
                for k in range(m):
                    d = delta[k]
                    if np.isfinite(d) and abs(d - med) / sig > rej:
                        i = k // nd
                        gdq[i, k - i * nd + 1, y, x] |= JUMP

            elif mode == MODE_SIGMA_CLIP:
                if only_use_ints:
                    for k in range(nd):
                        cnt = 0
                        for i in range(nints):
                            d = delta[i * nd + k]
                            if np.isfinite(d):
                                tmp[cnt] = d
                                cnt += 1
                        lo, hi = _sigma_clip_bounds(tmp, cnt, rej)
                        for i in range(nints):
                            d = delta[i * nd + k]
                            if np.isfinite(d) and (d < lo or d > hi):
                                gdq[i, k + 1, y, x] |= JUMP
                else:
                    cnt = 0
                    for k in range(m):
                        d = delta[k]
                        if np.isfinite(d):
                            tmp[cnt] = d
                            cnt += 1
                    lo, hi = _sigma_clip_bounds(tmp, cnt, rej)
                    for k in range(m):
                        d = delta[k]
                        if np.isfinite(d) and (d < lo or d > hi):
                            i = k // nd
                            gdq[i, k - i * nd + 1, y, x] |= JUMP


@njit(parallel=True, cache=True, error_model="numpy")
def reset_all_jump_planes(gdq):
    """Sigma-clip mode: in a group where every pixel has JUMP or DNU, clear the pixels whose
    flag is exactly JUMP_DET."""
    nints, ngroups, ny, nx = gdq.shape
    full = np.ones((nints, ngroups), dtype=np.bool_)
    missing = np.zeros((ny, nints, ngroups), dtype=np.uint8)
    for y in prange(ny):
        for i in range(nints):
            for g in range(ngroups):
                for x in range(nx):
                    if (gdq[i, g, y, x] & (JUMP | DNU)) == 0:
                        missing[y, i, g] = 1
                        break
    for y in range(ny):
        for i in range(nints):
            for g in range(ngroups):
                if missing[y, i, g]:
                    full[i, g] = False
    for y in prange(ny):
        for i in range(nints):
            for g in range(ngroups):
                if full[i, g]:
                    for x in range(nx):
                        if gdq[i, g, y, x] == JUMP:
                            gdq[i, g, y, x] = 0


@njit(parallel=True, cache=True, error_model="numpy")
def flag_neighbours(data, gdq, gain, med, sig, min_sigma, max_sigma):
    """OR JUMP into the 4 edge neighbours (and the pixel itself) of each jump whose
    first-pass significance |Δ - median|/sigma lies strictly between min_sigma and max_sigma,
    where those pixels have neither SAT nor DNU. Each group is treated independently, using
    the jumps present before any neighbour was flagged."""
    nints, ngroups, ny, nx = data.shape
    trigger = np.zeros((ny, nx), dtype=np.uint8)
    for i in range(nints):
        for g in range(1, ngroups):
            for y in prange(ny):
                for x in range(nx):
                    t = 0
                    if gdq[i, g, y, x] & JUMP:
                        d = _diff(data, gdq, i, g, y, x, gain[y, x])
                        r = abs(d - med[y, x]) / sig[y, x]
                        if r < max_sigma and r > min_sigma:
                            t = 1
                    trigger[y, x] = t
            for y in prange(ny):
                for x in range(nx):
                    f = trigger[y, x]
                    if y > 0:
                        f |= trigger[y - 1, x]
                    if y < ny - 1:
                        f |= trigger[y + 1, x]
                    if x > 0:
                        f |= trigger[y, x - 1]
                    if x < nx - 1:
                        f |= trigger[y, x + 1]
                    if f and (gdq[i, g, y, x] & SAT_OR_DNU) == 0:
                        gdq[i, g, y, x] |= JUMP


@njit(parallel=True, cache=True, error_model="numpy")
def flag_after_jumps_and_clean(data, gdq, gain, med, e1, n1, e2, n2, do_after):
    """After-jump flagging, then removal of JUMP wherever DNU or SAT is also set.

    For a jump at group g whose Δ[g-1] - median reaches e1 (e2), JUMP is added to groups
    g+1 … g+min(n1, ngroups-2) (n2 respectively) that have neither SAT nor DNU.
    """
    nints, ngroups, ny, nx = gdq.shape
    j1 = min(n1, ngroups - 2)
    j2 = min(n2, ngroups - 2)
    for y in prange(ny):
        big = np.zeros(ngroups, dtype=np.uint8)
        for x in range(nx):
            for i in range(nints):
                if do_after:
                    for g in range(ngroups):
                        big[g] = 0
                    for g in range(1, ngroups):
                        if gdq[i, g, y, x] & JUMP:
                            d = _diff(data, gdq, i, g, y, x, gain[y, x])
                            e = (d - med[y, x]) * 1.0
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
                for g in range(ngroups):
                    v = gdq[i, g, y, x]
                    if (v & JUMP) and (v & SAT_OR_DNU):
                        gdq[i, g, y, x] = v ^ JUMP
