"""Two-point-difference cosmic-ray detection kernels (numba).

Every kernel works on one pixel's ramp at a time, with ``prange`` over detector rows, and reads
the ramp straight from the caller's float32 DN array: the electrons ``D = float32(DN * gain)``
and the first differences ``Δ = float32(D[k+1] - D[k])`` are formed on the fly, so no copy of
the ramp and no ``(nints, ngroups-1, ny, nx)`` array of differences is ever allocated. The
statistics pooled over integrations (the median of Δ, the iterative search where n counts the
finite differences of *all* integrations) gather the ``nints*(ngroups-1)`` differences of one
pixel into a small per-row buffer, so the extra memory is a few buffers the size of one pixel's ramp
per row being processed, plus one uint8 image for neighbour flagging.

The per-pixel first-pass statistics are not stored: the few pixels that need them again
(neighbour and after-jump flagging look only at pixels with a jump) recompute them.

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

#: Pixels of a row handled together by one thread in the per-pixel kernels: the work is shared
#: out in pieces of rows, so that a block of very few rows still keeps every core busy.
ROW_CHUNK = 128


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
def _order_stats(buf, n, k1, k2):
    """The k1-th and k2-th smallest (0-based) of the non-NaN values buf[:n].

    Short ramps use a branch-free rank count (faster than sorting a handful of values,
    whose comparisons are unpredictable); long ones sort buf[:n] in place.
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
    buf[:n] = np.sort(buf[:n])
    return buf[k1], buf[k2]


@njit(cache=True, error_model="numpy")
def _nanmedian(values, m, tmp):
    """numpy's nanmedian of values[:m] (float64): the mean of the two middle values."""
    n = 0
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


@njit(cache=True, error_model="numpy")
def _load_diffs(data, gdq, gain, readnoise, rn_div, y, x, elec, delta):
    """First differences Δ of one pixel in electrons (into delta, integration-major; NaN
    where either group is SAT or DNU) and the read-noise term RN²/nframes (float64)."""
    nints, ngroups = data.shape[0], data.shape[1]
    nd = ngroups - 1
    gval = gain[y, x]
    rn_e = np.float32(readnoise[y, x] * gval)
    rn2 = np.float32(rn_e * rn_e)
    # electrons and their differences in float32, as stcal computes them
    for i in range(nints):
        for g in range(ngroups):
            if gdq[i, g, y, x] & SAT_OR_DNU:
                elec[g] = np.nan
            else:
                elec[g] = np.float32(data[i, g, y, x] * gval)
        for k in range(nd):
            delta[i * nd + k] = np.float64(np.float32(elec[k + 1] - elec[k]))
    return np.float64(rn2) / rn_div


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


@njit(cache=True, error_model="numpy")
def _iterative_centre(absd, m, tmp, first):
    """Centre of the iterative search and the number n of usable values, for one pixel.

    n >= 4: drop every value equal to the maximum, then the median of the rest;
    n == 3: the median; n == 2: the smaller value; otherwise NaN. After the first pass stcal
    stores the centre in float32.
    """
    n = 0
    vmax = -np.inf
    for k in range(m):
        v = absd[k]
        if not np.isnan(v):
            tmp[n] = v
            n += 1
            if v > vmax:
                vmax = v
    if n >= 4:
        below = 0
        for k in range(n):
            below += tmp[k] < vmax
        if below == 0:
            c = np.nan
        else:
            lo, hi = _order_stats(tmp, n, (below - 1) // 2, below // 2)
            c = (lo + hi) / 2.0
    elif n == 3:
        c = _order_stats(tmp, n, 1, 1)[0]
    elif n == 2:
        c = min(tmp[0], tmp[1])
    else:
        c = np.nan
    if not first:
        c = np.float64(np.float32(c))
    return c, n


@njit(parallel=True, cache=True, error_model="numpy")
def detect(data, gdq, gain, readnoise, nframes, mode, rej, thr_two_diffs, thr_three_diffs,
           only_use_ints):
    """Primary detection for every pixel (in place on gdq).

    ``thr_two_diffs`` applies when a pixel has 2 usable differences (3 groups),
    ``thr_three_diffs`` when it has 3 (4 groups), ``rej`` otherwise.
    """
    nints, ngroups, ny, nx = data.shape
    nd = ngroups - 1
    m = nints * nd
    rn_div = 0.5 * (2.0 * nframes)
    per_row = (nx + ROW_CHUNK - 1) // ROW_CHUNK
    for chunk in prange(ny * per_row):
        y = chunk // per_row
        x0 = (chunk - y * per_row) * ROW_CHUNK
        elec = np.empty(ngroups, dtype=np.float32)
        delta = np.empty(m, dtype=np.float64)
        absd = np.empty(m, dtype=np.float64)
        ratio = np.empty(m, dtype=np.float64)
        tmp = np.empty(m, dtype=np.float64)
        for x in range(x0, min(x0 + ROW_CHUNK, nx)):
            rn_term = _load_diffs(data, gdq, gain, readnoise, rn_div, y, x, elec, delta)

            if mode == MODE_ITERATIVE:
                for k in range(m):
                    absd[k] = abs(delta[k])
                first = True
                while True:
                    c, n = _iterative_centre(absd, m, tmp, first)
                    if n >= 4:
                        thr = rej
                    elif n == 3:
                        thr = thr_three_diffs
                    elif n == 2:
                        thr = thr_two_diffs
                    else:
                        break
                    s = math.sqrt(abs(c) * 1.0 + rn_term) / 1.0
                    if s == 0.0:
                        s = np.nan
                    # the deviation is stored in float32 by stcal before the division
                    rmax = -np.inf
                    for k in range(m):
                        r = abs(np.float64(np.float32(absd[k] - c))) / s
                        ratio[k] = r
                        if r > rmax:
                            rmax = r
                    if not (rmax > thr):
                        break
                    for k in range(m):
                        if ratio[k] == rmax:
                            i = k // nd
                            gdq[i, k - i * nd + 1, y, x] |= JUMP
                            absd[k] = np.nan
                    first = False

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


def reset_all_jump_planes(gdq):
    """Sigma-clip mode: in a group where every pixel has JUMP or DNU, clear the pixels whose
    flag is exactly JUMP_DET."""
    reset_jump_planes(gdq, jump_or_dnu_planes(gdq))


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
def _plane_triggers(data, gdq, gain, readnoise, rn_div, i, g, min_sigma, max_sigma, trigger,
                    active):
    """Set trigger[y, x] (and active[y]) where the jump of plane (i, g) at (y, x) has a
    first-pass significance strictly between min_sigma and max_sigma."""
    nints, ngroups, ny, nx = data.shape
    nd = ngroups - 1
    where = np.empty(nx, dtype=np.int64)
    elec = np.empty(ngroups, dtype=np.float32)
    delta = np.empty(nints * nd, dtype=np.float64)
    tmp = np.empty(nints * nd, dtype=np.float64)
    for y in range(ny):
        # list the jumps of the row first: a loop that computes under the JUMP test gets
        # vectorised with loads of every pixel's data, which is far slower
        row = gdq[i, g, y]
        count = 0
        for x in range(nx):
            if row[x] & JUMP:
                where[count] = x
                count += 1
        for p in range(count):
            x = where[p]
            med, sig = _pixel_stats(data, gdq, gain, readnoise, rn_div, y, x, elec, delta, tmp)
            r = abs(delta[i * nd + g - 1] - med) / sig
            if r < max_sigma and r > min_sigma:
                trigger[y, x] = 1
                active[y] = 1


@njit(parallel=True, cache=True, error_model="numpy")
def neighbour_triggers(data, gdq, gain, readnoise, nframes, min_sigma, max_sigma, trigger):
    """The triggers of :func:`flag_neighbours` for every plane, into ``trigger`` (uint8, the
    shape of gdq, zero on entry; 1 where a jump triggers neighbour flagging).

    Together with :func:`apply_neighbour_triggers` this does what flag_neighbours does, for an
    exposure processed in blocks of rows: a block's triggers reach the rows just outside it.
    """
    nints, ngroups, ny, nx = data.shape
    nd = ngroups - 1
    rn_div = 0.5 * (2.0 * nframes)
    for plane in prange(nints * nd):
        i = plane // nd
        g = plane - i * nd + 1
        active = np.zeros(ny, dtype=np.uint8)
        _plane_triggers(data, gdq, gain, readnoise, rn_div, i, g, min_sigma, max_sigma,
                        trigger[i, g], active)


@njit(parallel=True, cache=True, error_model="numpy")
def apply_neighbour_triggers(gdq, trigger, outside):
    """OR JUMP into the pixels (without SAT or DNU) at or next to a trigger, in place.

    ``trigger`` has the shape of ``gdq`` (a block of rows); ``outside`` (nints, ngroups, nx)
    holds the triggers of the row adjacent to the block that is not in it (the row above it,
    or below it for a one-row block given no triggers of its own; zeros when there is none).
    Contributions can be applied in several calls: flagging only ORs JUMP into usable pixels.
    """
    nints, ngroups, ny, nx = gdq.shape
    nd = ngroups - 1
    for plane in prange(nints * nd):
        i = plane // nd
        g = plane - i * nd + 1
        for y in range(ny):
            cur = trigger[i, g, y]
            up = trigger[i, g, y - 1] if y > 0 else outside[i, g]
            down = trigger[i, g, y + 1] if y < ny - 1 else outside[i, g]
            use_down = y < ny - 1
            row = gdq[i, g, y]
            for x in range(nx):
                f = cur[x] | up[x]
                if use_down:
                    f |= down[x]
                if x > 0:
                    f |= cur[x - 1]
                if x < nx - 1:
                    f |= cur[x + 1]
                v = row[x]
                usable = np.uint8((v & SAT_OR_DNU) == 0)
                row[x] = v | (np.uint8(JUMP) * (f & usable))


@njit(parallel=True, cache=True, error_model="numpy")
def flag_neighbours(data, gdq, gain, readnoise, nframes, min_sigma, max_sigma):
    """OR JUMP into the 4 edge neighbours (and the pixel itself) of each jump whose
    first-pass significance |Δ - median|/sigma lies strictly between min_sigma and max_sigma,
    where those pixels have neither SAT nor DNU. Each group is treated independently, using
    the jumps present before any neighbour was flagged.

    The (integration, group) planes are shared out between the threads (one parallel region
    for the whole exposure: many small regions cost more than the work when nints is large).
    """
    nints, ngroups, ny, nx = data.shape
    nd = ngroups - 1
    rn_div = 0.5 * (2.0 * nframes)
    for plane in prange(nints * nd):
        i = plane // nd
        g = plane - i * nd + 1
        trigger = np.zeros((ny, nx), dtype=np.uint8)
        active = np.zeros(ny, dtype=np.uint8)       # rows holding a trigger
        blank = np.zeros(nx, dtype=np.uint8)
        _plane_triggers(data, gdq, gain, readnoise, rn_div, i, g, min_sigma, max_sigma,
                        trigger, active)
        for y in range(ny):
            if not (active[y] or (y > 0 and active[y - 1]) or (y < ny - 1 and active[y + 1])):
                continue
            cur = trigger[y]
            above = trigger[y - 1] if y > 0 else blank
            below = trigger[y + 1] if y < ny - 1 else blank
            row = gdq[i, g, y]
            for x in range(nx):
                f = cur[x] | above[x] | below[x]
                if x > 0:
                    f |= cur[x - 1]
                if x < nx - 1:
                    f |= cur[x + 1]
                v = row[x]
                usable = np.uint8((v & SAT_OR_DNU) == 0)
                row[x] = v | (np.uint8(JUMP) * (f & usable))


@njit(parallel=True, cache=True, error_model="numpy")
def flag_after_jumps_and_clean(data, gdq, gain, readnoise, nframes, e1, n1, e2, n2,
                               do_after):
    """After-jump flagging (when do_after), then removal of JUMP wherever DNU or SAT is set.

    For a jump at group g whose Δ[g-1] - median reaches e1 (e2), JUMP is added to groups
    g+1 … g+min(n1, ngroups-2) (n2 respectively) that have neither SAT nor DNU.
    """
    nints, ngroups, ny, nx = gdq.shape
    nd = ngroups - 1
    rn_div = 0.5 * (2.0 * nframes)
    j1 = min(n1, ngroups - 2)
    j2 = min(n2, ngroups - 2)
    per_row = (nx + ROW_CHUNK - 1) // ROW_CHUNK
    for chunk in prange(ny * per_row):
        y = chunk // per_row
        x0 = (chunk - y * per_row) * ROW_CHUNK
        big = np.zeros(ngroups, dtype=np.uint8)
        elec = np.empty(ngroups, dtype=np.float32)
        delta = np.empty(nints * nd, dtype=np.float64)
        tmp = np.empty(nints * nd, dtype=np.float64)
        for x in range(x0, min(x0 + ROW_CHUNK, nx)):
            if do_after:
                has_jump = False
                for i in range(nints):
                    for g in range(1, ngroups):
                        if gdq[i, g, y, x] & JUMP:
                            has_jump = True
                if has_jump:
                    med, _ = _pixel_stats(data, gdq, gain, readnoise, rn_div, y, x,
                                          elec, delta, tmp)
                    for i in range(nints):
                        for g in range(ngroups):
                            big[g] = 0
                        for g in range(1, ngroups):
                            if gdq[i, g, y, x] & JUMP:
                                e = (delta[i * nd + g - 1] - med) * 1.0
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
            for i in range(nints):
                for g in range(ngroups):
                    v = gdq[i, g, y, x]
                    if (v & JUMP) and (v & SAT_OR_DNU):
                        gdq[i, g, y, x] = v ^ JUMP
