"""Numba kernels of the OLS_C ramp fit (spec §4.13), on a run of integrations.

Everything here works on plain arrays. ``ols_fit.py`` holds the public API and the orchestration;
read its docstring first. The arithmetic below follows stcal 1.20's C fitter operation by
operation (float64 throughout, with the float32 ``powf`` of the optimal weights), because the
outputs must agree with it to float32 rounding. Each pixel is independent, so the results do not
depend on the number of threads.

Group-DQ vocabulary used in the comments:

* *raw*: the GROUPDQ value as given;
* *orig*: raw plus DO_NOT_USE outside ``[firstgroup, lastgroup]`` (the copy the CHARGELOSS
  recomputation starts from);
* *effective*: orig plus DO_NOT_USE on every group of a suppressed one-good-group ramp, plus the
  ZEROFRAME substitution of group 0, minus JUMP in group 0 with ``CLEAR_JUMP0`` (MIRI ramps whose
  leading all-DO_NOT_USE groups were cut off).

The kernels take a run of consecutive integrations, ``data[j, start:stop]`` being the ramp
of integration j with the groups fitted (MIRI drops leading and trailing ones): one call per run
rather than per integration, which is what small frames in long series spend their time on.
Each task loops over the integrations of its rows in order, so every pixel's sums over the
integrations are made in the same order as one integration per call would make them.

Per-pixel helpers are inlined into the kernels (``inline="always"``; as plain calls they cost
up to 60 % more run time). Helpers called once per block of pixels are not: inlining them only
multiplied the compile time of the parallel kernels.
"""
import math

import numpy as np
from numba import njit, prange

from ..datamodels import dqflags

DNU = np.uint32(dqflags.group["DO_NOT_USE"])
SAT = np.uint32(dqflags.group["SATURATED"])
JUMP = np.uint32(dqflags.group["JUMP_DET"])
PERS = np.uint32(dqflags.group["PERSISTENCE"])
CLOSS = np.uint32(dqflags.group["CHARGELOSS"])
NOT_PERS = np.uint32(0xFFFFFFFF ^ dqflags.group["PERSISTENCE"])
DNU_SAT = np.uint32(DNU | SAT)
DNU_CLOSS = np.uint32(DNU | CLOSS)
NOT_JUMP = np.uint32(0xFFFFFFFF ^ dqflags.group["JUMP_DET"])

# Bits of the kernels' ``suppress`` argument.
SUPPRESS_ONE = 1   # one-good-group ramps are suppressed (RampFitStep's suppress_one_group)
CLEAR_JUMP0 = 2    # group 0 follows discarded all-DO_NOT_USE groups (MIRI): JUMP is ignored there

#: Variances (and 1/Σ) at or above this are replaced by 0, as stcal does.
LARGE_VARIANCE_THRESHOLD = 1.0e6
#: stcal's truncated sqrt(2) for the sigmas of a two-group segment.
SQRT2_TRUNCATED = 1.41421356

#: PIXELDQ flags added to a pixel whose gain is not positive (or NaN).
BAD_GAIN_PIXDQ = np.uint32(dqflags.pixel["DO_NOT_USE"] | dqflags.pixel["NO_GAIN_VALUE"])
# A deliberate difference from stcal: every NaN rate (a zero or NaN read noise, a NaN ramp)
# gets DO_NOT_USE, where stcal leaves it with its other flags only.
NAN_RATE_PIXDQ = np.uint32(dqflags.pixel["DO_NOT_USE"])

# Bits of the per-pixel exposure flag accumulator (one uint8 per pixel for the whole exposure).
FLAG_PARTIAL_SAT = np.uint8(1)   # some integration has a SAT group
FLAG_CHARGELOSS = np.uint8(2)    # some integration has a CHARGELOSS group
FLAG_JUMP = np.uint8(4)          # some integration has a JUMP group
FLAG_PERS = np.uint8(8)          # some integration has a PERSISTENCE group
FLAG_SOME_USED = np.uint8(16)    # some integration's DQ lacks DO_NOT_USE
FLAG_SOME_UNSAT = np.uint8(32)   # some integration's DQ lacks SATURATED

# Layout of the per-segment optional-output array (first axis of ``seg_out``).
SEG_SLOPE, SEG_SIGSLOPE, SEG_VAR_P, SEG_VAR_R, SEG_YINT, SEG_SIGYINT, SEG_WEIGHT = range(7)
N_SEG_FIELDS = 7

#: Rows per parallel task of the per-pixel kernels: their work buffers are allocated once per
#: task. Allocated once per row, a small frame's short rows (MIRI's SLITLESSPRISM: 72 pixels)
#: spent a good part of their time in the allocator, shared by the threads.
ROWS_PER_TASK = 8


# ------------------------------------------------------------------------------------------------
# Per-pixel helpers
# ------------------------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy", inline="always")
def _load_ramp(data, gdq, y, x, first, last, suppress, zframe, use_zframe, d, g, og):
    """Load one pixel's ramp of the current integration into ``d`` (float64), ``g`` (effective
    DQ) and ``og`` (orig DQ). SAT groups become NaN in ``d``.

    Returns (cnt_good, cnt_sat, cnt_dnu_sat, has_jump, has_pers, has_closs, is_0th, is_zf, d0_raw),
    where the counts are those of the effective DQ (after a ZEROFRAME substitution) and d0_raw is
    group 0 before any substitution (NaN if SAT).
    """
    ng = data.shape[0]
    n_ok = 0
    any_flag = np.uint32(0)
    for k in range(ng):
        v = np.uint32(gdq[k, y, x])
        if k < first or k > last:
            v |= DNU
        og[k] = v
        g[k] = v
        any_flag |= v
        if (v & NOT_PERS) == 0:
            n_ok += 1
        d[k] = np.float64(data[k, y, x])

    cnt_good = 0
    cnt_sat = 0
    cnt_dnu_sat = 0
    has_jump = False
    has_pers = False
    has_closs = False
    if any_flag == 0:
        # A clean ramp (the common case): nothing to count but the good groups.
        cnt_good = ng
    else:
        extra = DNU if ((suppress & SUPPRESS_ONE) and n_ok == 1) else np.uint32(0)
        for k in range(ng):
            v = og[k] | extra
            if k == 0 and (suppress & CLEAR_JUMP0):
                # stcal drops JUMP here after counting good groups for the one-group
                # suppression, and keeps it in the CHARGELOSS copy: only the effective DQ loses it
                v &= NOT_JUMP
            g[k] = v
            if v == 0:
                cnt_good += 1
                continue
            if v & JUMP:
                has_jump = True
            if v & PERS:
                has_pers = True
            if v & CLOSS:
                has_closs = True
            if v & DNU_SAT:
                cnt_dnu_sat += 1
            if v & SAT:
                d[k] = np.nan
                cnt_sat += 1
    d0_raw = d[0]

    is_0th = False
    is_zf = False
    if not (suppress & SUPPRESS_ONE):
        if cnt_good == 1 and g[0] == 0:
            is_0th = True
        elif cnt_good == 0 and use_zframe:
            z = np.float64(zframe[y, x])
            if z != 0.0:
                d[0] = z
                g[0] = 0
                cnt_good = 1
                cnt_dnu_sat -= 1
                if cnt_sat == ng:
                    cnt_sat -= 1
                is_zf = True
    return cnt_good, cnt_sat, cnt_dnu_sat, has_jump, has_pers, has_closs, is_0th, is_zf, d0_raw


@njit(cache=True, error_model="numpy", inline="always")
def _segments(g, ng, seg_start, seg_len):
    """Split a ramp into segments (spec §4.13.2) with stcal's list semantics.

    Fills ``seg_start``/``seg_len`` with the kept segments and returns (n_kept, size), where
    ``size`` is the segment count stcal reports for the fitopt NSEG axis. The two differ when
    every segment has length 1: stcal keeps only the first one but does not update its count.
    A one-group segment found after a longer one is never added, even before pruning.
    """
    n = 0
    size = 0
    max_len = 0
    in_seg = False
    start = 0
    for idx in range(ng + 1):
        if idx < ng:
            good = (g[idx] & NOT_PERS) == 0
        else:
            good = False
        if good:
            if not in_seg:
                if idx > 0 and (g[idx - 1] & NOT_PERS) == JUMP:
                    start = idx - 1
                else:
                    start = idx
                in_seg = True
        elif in_seg:
            length = idx - start
            in_seg = False
            if length == 1 and max_len > 1:
                continue
            seg_start[n] = start
            seg_len[n] = length
            n += 1
            size += 1
            if length > max_len:
                max_len = length
    if size < 2:
        return n, size
    if max_len < 2:
        # Only the first one-group segment is used; stcal's count is left as it was.
        return 1, size
    kept = 0
    for j in range(n):
        if seg_len[j] != 1:
            seg_start[kept] = seg_start[j]
            seg_len[kept] = seg_len[j]
            kept += 1
        else:
            size -= 1
    return kept, size


@njit(cache=True, error_model="numpy", inline="always")
def _rnoise_var_default(rn, gain, tgroup, seglen):
    if gain <= 0.0 or math.isnan(gain):
        return 0.0
    rnum = rn / tgroup
    rnum = 12.0 * rnum * rnum
    rden = seglen * seglen * seglen - seglen
    rden = rden * gain * gain
    return rnum / rden


@njit(cache=True, error_model="numpy", inline="always")
def _rnoise_var_short(rn, gain, timing):
    # One- and two-group segments: 12 R^2 / (6 t^2 g^2), without a gain check.
    rnum = rn / timing
    rnum = 12.0 * rnum * rnum
    rden = 6.0
    rden = rden * gain * gain
    return rnum / rden


#: Fixsen et al. (2000) exponents, indexed by ``_snr_power_index``.
POWERS = np.array([0.0, 0.4, 1.0, 3.0, 6.0, 10.0])


@njit(cache=True, error_model="numpy", inline="always")
def _snr_power_index(snr):
    # Lower bounds inclusive; a NaN SNR falls through to the last bin, as in the C code.
    if snr < 5.0:
        return 0
    if snr < 10.0:
        return 1
    if snr < 20.0:
        return 2
    if snr < 50.0:
        return 3
    if snr < 100.0:
        return 4
    return 5


@njit(cache=True, error_model="numpy", inline="always")
def _weight_factor(k, length, power):
    """|(k − mid)/mid|^P with stcal's operation order and its single-precision powf."""
    mid = np.float64(length - 1) / 2.0
    invmid = 1.0 / mid
    w = abs((np.float64(k) - mid) * invmid)
    return np.float64(math.pow(np.float32(w), np.float32(power)))


@njit(cache=True, error_model="numpy", inline="always")
def weight_table(ngroups):
    """Table[length, power index, k] of ``_weight_factor`` for every segment of ≥ 3 groups.

    Saves the powf calls in the per-pixel loop; values are identical to computing them inline.
    """
    table = np.zeros((ngroups + 1, POWERS.size, ngroups), np.float64)
    for length in range(3, ngroups + 1):
        for p in range(POWERS.size):
            for k in range(length):
                table[length, p, k] = _weight_factor(k, length, POWERS[p])
    return table


@njit(cache=True, error_model="numpy", inline="always")
def _poisson_var(mrate, dcur, pden):
    if mrate > 0.0:
        return (mrate + dcur) / pden
    return dcur / pden


@njit(cache=True, error_model="numpy", inline="always")
def _fit_segment(d, start, length, rn, gain, dcur, mrate, tgroup, timing1, wtable, res):
    """Fit one segment; ``res`` receives the 7 SEG_* values plus var_e at index 7."""
    if length == 1:
        slope = d[start] / timing1
        var_p = _poisson_var(mrate, dcur, timing1 * gain)
        var_r = _rnoise_var_short(rn, gain, timing1)
        res[SEG_SLOPE] = slope
        res[SEG_SIGSLOPE] = 0.0
        res[SEG_YINT] = 0.0
        res[SEG_SIGYINT] = 0.0
        res[SEG_VAR_P] = var_p
        res[SEG_VAR_R] = var_r
        res[SEG_WEIGHT] = 1.0 / var_r
        res[7] = var_p + var_r
        return
    if length == 2:
        d0 = d[start]
        d1 = d[start + 1]
        res[SEG_SLOPE] = (d1 - d0) / tgroup
        var_p = _poisson_var(mrate, dcur, tgroup * gain)
        var_r = _rnoise_var_short(rn, gain, tgroup)
        sig = SQRT2_TRUNCATED * rn
        second = np.float64(start) + 1.0
        res[SEG_SIGSLOPE] = sig
        res[SEG_YINT] = d1 * (1.0 - second) + d0 * second
        res[SEG_SIGYINT] = sig
        res[SEG_VAR_P] = var_p
        res[SEG_VAR_R] = var_r
        res[SEG_WEIGHT] = 1.0 / var_r
        res[7] = var_p + var_r
        return

    # Signal-to-noise ratio of the segment -> exponent of the Fixsen weights.
    diff = d[start + length - 1] - d[start]
    den = rn * rn + diff * gain
    if den <= 0.0 or gain == 0.0:
        snr = 0.0
    else:
        snr = (diff * gain) / math.sqrt(den)
        if snr < 0.0:
            snr = 0.0
    pidx = _snr_power_index(snr)
    use_table = length < wtable.shape[0]

    invrn2 = 1.0 / (rn * rn)
    sumw = 0.0
    sumx = 0.0
    sumxx = 0.0
    sumy = 0.0
    sumxy = 0.0
    for k in range(length):
        if use_table:
            w = wtable[length, pidx, k] * invrn2
        else:
            w = _weight_factor(k, length, POWERS[pidx]) * invrn2
        xval = np.float64(k) + np.float64(start)
        val = d[start + k]
        if math.isnan(val):
            val = 0.0
        xwt = xval * w
        sumw += w
        sumx += xwt
        sumxx += xval * xwt
        sumy += val * w
        sumxy += val * xwt
    den = sumw * sumxx - sumx * sumx
    num = sumw * sumxy - sumx * sumy
    invden = 1.0 / den
    res[SEG_SLOPE] = (num * invden) / tgroup
    res[SEG_SIGSLOPE] = math.sqrt(sumw * invden)
    res[SEG_YINT] = (sumxx * sumy - sumx * sumxy) * invden
    res[SEG_SIGYINT] = math.sqrt(sumxx * invden)
    seglen = np.float64(length)
    var_p = _poisson_var(mrate, dcur, tgroup * gain * (seglen - 1.0))
    var_r = _rnoise_var_default(rn, gain, tgroup, seglen)
    res[SEG_VAR_P] = var_p
    res[SEG_VAR_R] = var_r
    res[SEG_WEIGHT] = 1.0 / var_r
    res[7] = var_p + var_r


#: The widest block of pixels of a row done at once: the median rate's sorting network and the
#: clean ramps' fit run across a block. Each block is a call of helpers that take some thirty
#: arrays, and such a call costs about half a microsecond (reference counts of the arrays, which
#: the threads share): blocks of 64 pixels spent a quarter of a full frame's fit there.
MEDIAN_BLOCK = 1024


@njit(cache=True, error_model="numpy", inline="always")
def _block_width(nx):
    """Width of the blocks of a row of ``nx`` pixels: as few blocks as MEDIAN_BLOCK allows, of
    equal widths (a 1032-pixel row is two blocks of 516, not 1024 and a short one of 8)."""
    nblocks = max(1, (nx + MEDIAN_BLOCK - 1) // MEDIAN_BLOCK)
    return max(1, (nx + nblocks - 1) // nblocks)


@njit(cache=True, error_model="numpy", inline="always")
def _median_setup(d, g, ng, is_0th, is_zf, tgroup, tframe, t1, vals, b):
    """First half of one integration's median rate (spec §4.13.3) for a loaded pixel.

    In the default case, writes the usable first differences (DN/s) to column ``b`` of ``vals``
    ((max(ng-1, 1), block width)), the rest of the column +inf, and returns (count, 0.0).
    Otherwise (one group, a 0th-group or ZEROFRAME ramp, no usable difference) returns
    (0, rate), the rate being final.
    """
    if ng == 1:
        # No NaN check in this branch of the C code.
        return 0, d[0] / t1
    if is_0th:
        m = d[0] / t1
    elif is_zf:
        m = d[0] / tframe
    else:
        n = 0
        prev = np.nan if (g[0] & DNU) else d[0] / tgroup
        m = prev
        for k in range(ng - 1):
            cur = np.nan if (g[k + 1] & DNU) else d[k + 1] / tgroup
            if not (g[k + 1] & JUMP):
                diff = cur - prev
                if not math.isnan(diff):
                    vals[n, b] = diff
                    n += 1
            prev = cur
        if n > 0:
            for k in range(n, vals.shape[0]):
                vals[k, b] = np.inf
            return n, 0.0
    if math.isnan(m):
        m = 0.0
    return 0, m


@njit(cache=True, error_model="numpy")  # not inlined: compile time
def _sort_columns(vals, nb):
    """Sort each of the first ``nb`` columns of ``vals`` (no NaN): Batcher's odd-even merge
    sorting network, each comparator branch-free and vectorised across the columns.

    For any number of rows m (the network's comparators beyond m are left out): 28
    comparators for 9 differences and 98 for 19, where the odd-even transposition network
    used before took m(m-1)/2 (36 and 171). Any sorting network leaves the same sorted
    columns."""
    m = vals.shape[0]
    p = 1
    while p < m:
        k = p
        while k >= 1:
            for j in range(k % p, m - k, 2 * k):
                for i in range(min(k, m - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        a = i + j
                        c = a + k
                        for b in range(nb):
                            lo = vals[a, b]
                            hi = vals[c, b]
                            vals[a, b] = lo if lo < hi else hi
                            vals[c, b] = hi if lo < hi else lo
            k //= 2
        p *= 2


@njit(cache=True, error_model="numpy", inline="always")
def _median_finish(vals, n, b, m):
    """Second half of ``_median_setup`` after ``_sort_columns``: the NaN-median of the ``n``
    differences of column ``b`` (NaN counts as 0), or ``m`` when ``n`` is 0.

    The middle value, or the mean of the two middle ones: the same order statistics as stcal's
    qsort, whatever the order of ties.
    """
    if n == 0:
        return m
    half = n >> 1
    if n & 1:
        m = vals[half, b]
    else:
        m = (vals[half, b] + vals[half - 1, b]) / 2.0
    if math.isnan(m):
        m = 0.0
    return m


@njit(cache=True, error_model="numpy", inline="always")
def _block_lead(gdq, y, x0, ng):
    """The leading groups of a block's clean ramps: those flagged exactly DO_NOT_USE in the
    block's first pixel (row ``y``) when at least 3 groups are left after them, else 0.

    jwst's RSCD step makes the first groups of every integration after the first DO_NOT_USE
    (MIRI); the ramps are then one segment of the groups after them, as regular as clean ones.
    The hint costs nothing when wrong: each pixel is still tested (``_or_group_flags``)."""
    lead = 0
    while lead < ng and gdq[lead, y, x0] == DNU:
        lead += 1
    return lead if ng - lead >= 3 else 0


@njit(cache=True, error_model="numpy", inline="always")
def _or_group_flags(gdq, y, x0, nb, lead, pfl):
    """``pfl[b]`` = 0 where pixel ``x0+b`` of row ``y`` has no group DQ but DO_NOT_USE (alone)
    on its ``lead`` first groups, else non-zero."""
    for b in range(nb):
        pfl[b] = 0
    for k in range(gdq.shape[0]):
        flag = np.uint8(DNU) if k < lead else np.uint8(0)
        for b in range(nb):
            pfl[b] |= np.int32(gdq[k, y, x0 + b] ^ flag)


@njit(cache=True, error_model="numpy")  # not inlined: compile time
def _block_median_setup(data, gdq, zframe, use_zframe, y, x0, nb, first, last, suppress,
                        tgroup, tframe, t1, vals, cnt, mval, pfl, d, g, og, quot):
    """``_median_setup`` for pixels ``x0 … x0+nb-1`` of row ``y`` (column b of ``vals``,
    ``cnt[b]``, ``mval[b]``). Returns (whether some of them is not SATURATED in group 0,
    ``lead``).

    Clean ramps (no group DQ but DO_NOT_USE on the ``lead`` first groups, see
    ``_block_lead``; every group in range; no NaN difference after the leading groups), the
    common case, are done across the block at once (``pfl[b]`` left 0); the others pixel by
    pixel through ``_load_ramp`` (``d``, ``g``, ``og`` are scratch; ``quot``, one float64 per
    pixel of the block, too).
    """
    ng = data.shape[0]
    unsat0 = False
    lead = 0
    if ng >= 2 and first <= 0 and last >= ng - 1:
        lead = _block_lead(gdq, y, x0, ng)
        _or_group_flags(gdq, y, x0, nb, lead, pfl)
        # each group's quotient by tgroup is computed once and serves both of its differences
        # (half the divisions: 10 % of the first pass of a 50-integration series)
        for b in range(nb):
            quot[b] = np.float64(data[lead, y, x0 + b]) / tgroup
        for k in range(lead, ng - 1):
            for b in range(nb):
                # With every group from lead on usable, these are the differences of
                # _median_setup (those into a DO_NOT_USE group are NaN there, and left out).
                following = np.float64(data[k + 1, y, x0 + b]) / tgroup
                diff = following - quot[b]
                quot[b] = following
                vals[k - lead, b] = diff
                pfl[b] |= np.int32(256) if math.isnan(diff) else np.int32(0)
        for k in range(ng - 1 - lead, ng - 1):
            for b in range(nb):
                vals[k, b] = np.inf
    else:
        for b in range(nb):
            pfl[b] = 1
    for b in range(nb):
        if pfl[b] == 0:
            cnt[b] = ng - 1 - lead
            unsat0 = True
        else:
            x = x0 + b
            st = _load_ramp(data, gdq, y, x, first, last, suppress, zframe, use_zframe, d, g, og)
            if not (gdq[0, y, x] & SAT):
                unsat0 = True
            cnt[b], mval[b] = _median_setup(d, g, ng, st[6], st[7], tgroup, tframe, t1, vals, b)
    return unsat0, lead


@njit(cache=True, error_model="numpy")  # not inlined: compile time
def _block_pixel_terms(gain2d, readnoise2d, rn_factor, mrate_sum, mrate_div, single, y, x0, nb,
                       rn_blk, mr_blk):
    """Per-pixel terms of a block that need a division, computed across the block (vectorised,
    much cheaper than in the per-pixel fit): the per-group read noise in electrons,
    RN_cds·gain/sqrt(2·NFRAMES) rounded to float32 as stcal stores it, and (unless ``single``)
    the mean median rate."""
    for b in range(nb):
        rn_blk[b] = np.float64(np.float32(
            np.float64(readnoise2d[y, x0 + b]) * (np.float64(gain2d[y, x0 + b]) / rn_factor)))
    if not single:
        for b in range(nb):
            mr_blk[b] = mrate_sum[y, x0 + b] / mrate_div


@njit(cache=True, error_model="numpy", inline="always")
def _pixel_dq(pixdq, gain2d, y, x):
    """PIXELDQ with the bad-gain flags (gain <= 0 or NaN)."""
    dq = np.uint32(pixdq[y, x])
    if not (gain2d[y, x] > 0):
        dq |= BAD_GAIN_PIXDQ
    return dq


@njit(cache=True, error_model="numpy")  # not inlined: compile time
def _rate_values(dq, num, sum_ip, sum_ir, sum_clr, flags):
    """The rate of one pixel from its exposure sums (spec §4.13.5).

    ``dq`` is the PIXELDQ (with the bad-gain flags); returns (slope, err, dq, var_p, var_r).
    """
    if flags & FLAG_JUMP:
        dq |= JUMP
    if flags & FLAG_PERS:
        dq |= PERS
    if not (flags & FLAG_SOME_USED):
        dq |= DNU
    if not (flags & FLAG_SOME_UNSAT):
        dq |= SAT
    var_p = sum_ip
    if var_p > 0.0:
        var_p = 1.0 / var_p
    if var_p >= LARGE_VARIANCE_THRESHOLD or var_p < 0.0:
        var_p = 0.0
    var_r = sum_ir
    if var_r > 0.0:
        var_r = 1.0 / var_r
    if var_r >= LARGE_VARIANCE_THRESHOLD:
        var_r = 0.0
    err = math.sqrt(var_p + var_r)
    slope = num
    if dq & DNU_SAT:
        slope = np.nan
        var_p = 0.0
        var_r = 0.0
        err = 0.0
    if flags & FLAG_PARTIAL_SAT:
        dq |= SAT
    if not math.isnan(slope):
        slope = slope * var_r
    if flags & FLAG_CHARGELOSS:
        # Only VAR_RNOISE is replaced, even for a pixel whose rate is invalid.
        if sum_clr > 0.0:
            var_r = 1.0 / sum_clr
        if var_r >= LARGE_VARIANCE_THRESHOLD:
            var_r = 0.0
    if math.isnan(slope):
        dq |= NAN_RATE_PIXDQ
    return slope, err, dq, var_p, var_r


@njit(cache=True, error_model="numpy")  # not inlined: compile time
def _block_clean_flags(data, gdq, y, x0, nb, pfl):
    """``pfl[b]`` = 0 where pixel ``x0+b`` of row ``y`` is clean after the block's ``lead``
    leading DO_NOT_USE groups (``_block_lead``; no NaN difference after them either; the test
    ``_block_median_setup`` makes for a single integration), else non-zero. Returns ``lead``."""
    ng = data.shape[0]
    lead = _block_lead(gdq, y, x0, ng)
    _or_group_flags(gdq, y, x0, nb, lead, pfl)
    for k in range(lead, ng - 1):
        for b in range(nb):
            diff = np.float64(data[k + 1, y, x0 + b]) - np.float64(data[k, y, x0 + b])
            pfl[b] |= np.int32(256) if math.isnan(diff) else np.int32(0)
    return lead


#: The block fit runs when at least 1 / MIN_CLEAN_SHARE of a block's ramps are clean: it costs
#: about the same for any number of them (MIRI time series, whose ramps are mostly flagged
#: somewhere, were 25 % slower with it on every block).
MIN_CLEAN_SHARE = 4

#: Rows of the float64 scratch of ``_block_clean_fit``.
N_BLOCK_ROWS = 15


@njit(cache=True, error_model="numpy")  # not inlined: compile time
def _block_clean_fit(data, gain2d, dark2d, has_dark, pixdq, single, wtable, tgroup, y, x0, nb,
                     lead, pfl, rn_blk, mr_blk, vals, cnt, mval, blk, pidx,
                     out_slope, out_err, out_dq, out_vp, out_vr,
                     acc_num, acc_ip, acc_ir, acc_clr, acc_flags,
                     rate_slope, rate_err, rate_dq, rate_vp, rate_vr):
    """The fit of the block's clean ramps, the common case, across the block at once.

    A clean ramp (``pfl[b] == 0`` on entry: no group DQ but DO_NOT_USE on the ``lead`` first
    groups, no NaN after them, every group in range) of at least 3 groups after them, with a
    positive gain and neither DO_NOT_USE nor SATURATED in its PIXELDQ, is one segment of every
    group from ``lead`` on; its fit is then the same sequence of operations for every pixel,
    done here with exactly the arithmetic of the per-pixel path (``_fit_segment``, the sums
    and thresholds of ``fit_integration_kernel`` and ``_rate_values`` for such a ramp), so
    that the results are identical. ``pfl[b]`` is left 0 for the ramps done here and set to 1
    for the others, which the caller fits pixel by pixel afterwards. ``blk`` (float64,
    (N_BLOCK_ROWS, block width)) and ``pidx`` (int64, block width) are scratch.

    Why so many short loops: each writes one or two arrays, so that the compiler, which cannot
    know that the arrays do not overlap, needs few run-time overlap checks and vectorises them
    (a loop writing seven arrays stayed scalar). Written that way the fit of a full frame took
    0.19 s instead of 0.30 s per integration on one core.
    """
    ng = data.shape[0]
    length = ng - lead   # the one segment: groups lead ... ng - 1
    w_ng = wtable[length]
    seglen = np.float64(length)
    sumw, sumx, sumxx, sumy, sumxy = blk[0], blk[1], blk[2], blk[3], blk[4]
    invrn2, mrate = blk[5], blk[6]
    slope_o, err_o, vp_o, vr_o = blk[7], blk[8], blk[9], blk[10]
    num_o, seg_vr, seg_vp, wk = blk[11], blk[12], blk[13], blk[14]
    for b in range(nb):
        usable = gain2d[y, x0 + b] > 0 and (np.uint32(pixdq[y, x0 + b]) & DNU_SAT) == 0
        ok = pfl[b] == 0 and usable
        pfl[b] = 0 if ok else 1
    if single:
        for b in range(nb):
            # the exposure mean of the one median rate, as in the per-pixel path
            mrate[b] = 0.0 + _median_finish(vals, cnt[b], b, mval[b])
    else:
        for b in range(nb):
            mrate[b] = mr_blk[b]
    for b in range(nb):
        gain = np.float64(gain2d[y, x0 + b])
        rn = rn_blk[b]
        diff = np.float64(data[ng - 1, y, x0 + b]) - np.float64(data[lead, y, x0 + b])
        den = rn * rn + diff * gain
        snr = (diff * gain) / math.sqrt(den) if den > 0.0 else 0.0
        snr = snr if snr >= 0.0 else 0.0
        p = 5
        p = 4 if snr < 100.0 else p
        p = 3 if snr < 50.0 else p
        p = 2 if snr < 20.0 else p
        p = 1 if snr < 10.0 else p
        p = 0 if snr < 5.0 else p
        pidx[b] = p
    for b in range(nb):
        rn = rn_blk[b]
        invrn2[b] = 1.0 / (rn * rn)
    for b in range(nb):
        sumw[b] = 0.0
        sumx[b] = 0.0
        sumxx[b] = 0.0
        sumy[b] = 0.0
        sumxy[b] = 0.0
    for k in range(length):
        xval = np.float64(k) + np.float64(lead)
        for b in range(nb):
            wk[b] = w_ng[pidx[b], k] * invrn2[b]
        for b in range(nb):
            w = wk[b]
            xwt = xval * w
            sumw[b] += w
            sumx[b] += xwt
            sumxx[b] += xval * xwt
        for b in range(nb):
            w = wk[b]
            val = np.float64(data[lead + k, y, x0 + b])
            sumy[b] += val * w
            sumxy[b] += val * (xval * w)
    for b in range(nb):
        gain = np.float64(gain2d[y, x0 + b])
        rnum = rn_blk[b] / tgroup
        rnum = 12.0 * rnum * rnum
        rden = seglen * seglen * seglen - seglen
        rden = rden * gain * gain
        seg_vr[b] = rnum / rden
    if has_dark:
        for b in range(nb):
            pden = tgroup * np.float64(gain2d[y, x0 + b]) * (seglen - 1.0)
            dcur = np.float64(dark2d[y, x0 + b])
            seg_vp[b] = (mrate[b] + dcur) / pden if mrate[b] > 0.0 else dcur / pden
    else:
        for b in range(nb):
            pden = tgroup * np.float64(gain2d[y, x0 + b]) * (seglen - 1.0)
            seg_vp[b] = (mrate[b] + 0.0) / pden if mrate[b] > 0.0 else 0.0 / pden
    for b in range(nb):
        den = sumw[b] * sumxx[b] - sumx[b] * sumx[b]
        num_s = sumw[b] * sumxy[b] - sumx[b] * sumy[b]
        seg_slope = (num_s * (1.0 / den)) / tgroup
        num_o[b] = 0.0 + seg_slope / seg_vr[b]
    # rows no longer needed keep inv_p (invrn2) and inv_r (mrate) for the exposure sums
    for b in range(nb):
        mrate[b] = 0.0 + 1.0 / seg_vr[b]
    for b in range(nb):
        var_r = 1.0 / mrate[b]
        vr_o[b] = 0.0 if var_r >= LARGE_VARIANCE_THRESHOLD else var_r
    for b in range(nb):
        invrn2[b] = (0.0 + 1.0 / seg_vp[b]) if seg_vp[b] > 0.0 else 0.0
    for b in range(nb):
        var_p = 1.0 / invrn2[b] if invrn2[b] > 0.0 else 0.0
        vp_o[b] = 0.0 if var_p >= LARGE_VARIANCE_THRESHOLD else var_p
    for b in range(nb):
        var_e = 1.0 / (0.0 + 1.0 / (seg_vp[b] + seg_vr[b]))
        err_o[b] = 0.0 if var_e > LARGE_VARIANCE_THRESHOLD else math.sqrt(var_e)
    for b in range(nb):
        slope_o[b] = num_o[b] * vr_o[b]
    _store_block(pfl, pixdq, y, x0, nb, slope_o, err_o, vp_o, vr_o,
                 out_slope, out_err, out_dq, out_vp, out_vr)
    if single:
        # _rate_values of sums over this one integration: a fully used, unsaturated ramp
        for b in range(nb):
            a_ip = (0.0 + invrn2[b]) if invrn2[b] > 0.0 else 0.0
            var_p = 1.0 / a_ip if a_ip > 0.0 else a_ip
            vp_o[b] = 0.0 if (var_p >= LARGE_VARIANCE_THRESHOLD or var_p < 0.0) else var_p
        for b in range(nb):
            a_ir = 0.0 + mrate[b]
            var_r = 1.0 / a_ir if a_ir > 0.0 else a_ir
            vr_o[b] = 0.0 if var_r >= LARGE_VARIANCE_THRESHOLD else var_r
        for b in range(nb):
            a_num = 0.0 + num_o[b]
            slope_o[b] = a_num if math.isnan(a_num) else a_num * vr_o[b]
        for b in range(nb):
            err_o[b] = math.sqrt(vp_o[b] + vr_o[b])
        _store_block(pfl, pixdq, y, x0, nb, slope_o, err_o, vp_o, vr_o,
                     rate_slope, rate_err, rate_dq, rate_vp, rate_vr)
    else:
        # the per-pixel path reads and rewrites the sums of the other ramps: 0 is added there
        # (a sum that starts at +0.0 is never -0.0, so adding 0.0 leaves it unchanged)
        for b in range(nb):
            acc_ip[y, x0 + b] += invrn2[b] if (pfl[b] == 0 and invrn2[b] > 0.0) else 0.0
        for b in range(nb):
            acc_ir[y, x0 + b] += mrate[b] if pfl[b] == 0 else 0.0
        for b in range(nb):
            acc_num[y, x0 + b] += num_o[b] if pfl[b] == 0 else 0.0
        used = FLAG_SOME_USED | FLAG_SOME_UNSAT
        for b in range(nb):
            acc_flags[y, x0 + b] |= used if pfl[b] == 0 else np.uint8(0)
        for b in range(nb):
            acc_clr[y, x0 + b] += (1.0 / vr_o[b]) if (pfl[b] == 0 and vr_o[b] > 0.0) else 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _store_block(pfl, pixdq, y, x0, nb, slope, err, var_p, var_r,
                 out_slope, out_err, out_dq, out_vp, out_vr):
    """The block's results into a product's planes (the PIXELDQ as their DQ), for every pixel
    of the block: those of the ramps not fitted here are overwritten by the per-pixel path,
    and storing them all keeps the loops free of conditions."""
    for b in range(nb):
        out_slope[y, x0 + b] = np.float32(slope[b])
    for b in range(nb):
        nan = math.isnan(slope[b])
        out_dq[y, x0 + b] = np.uint32(pixdq[y, x0 + b]) | (NAN_RATE_PIXDQ if nan else np.uint32(0))
    for b in range(nb):
        out_vp[y, x0 + b] = np.float32(var_p[b])
    for b in range(nb):
        out_vr[y, x0 + b] = np.float32(var_r[b])
    for b in range(nb):
        out_err[y, x0 + b] = np.float32(err[b])


# ------------------------------------------------------------------------------------------------
# Kernels
# ------------------------------------------------------------------------------------------------
@njit(parallel=True, cache=True, error_model="numpy")
def dnu_groups_kernel(gdq, first, last, suppress, row_all):
    """``row_all[y, k]`` = 1 when group k is DO_NOT_USE in every pixel of row y of every
    integration of ``gdq`` (nints, ngroups, rows, nx) once the groups outside ``[first, last]``
    and (``suppress & SUPPRESS_ONE``) the one-good-group ramps have it, else 0 (the DQ stcal's
    MIRI group discarding looks at). The rows are the first ``row_all.shape[0]`` of ``gdq``."""
    nk, ng, nx = gdq.shape[0], gdq.shape[1], gdq.shape[3]
    ny = row_all.shape[0]
    for y in prange(ny):
        for k in range(ng):
            row_all[y, k] = 1
        # group by group along the row (a pixel's groups are a plane apart), and a group is
        # done with at its first pixel without DO_NOT_USE
        n_ok = np.empty(nx, np.int64)
        for j in range(nk):
            if suppress & SUPPRESS_ONE:
                for x in range(nx):
                    n_ok[x] = 0
                for k in range(max(first, 0), min(last, ng - 1) + 1):
                    for x in range(nx):
                        if (np.uint32(gdq[j, k, y, x]) & NOT_PERS) == 0:
                            n_ok[x] += 1
            for k in range(max(first, 0), min(last, ng - 1) + 1):
                if row_all[y, k] == 0:
                    continue
                for x in range(nx):
                    if (suppress & SUPPRESS_ONE) and n_ok[x] == 1:
                        continue  # every group of this ramp gets DO_NOT_USE
                    if not (np.uint32(gdq[j, k, y, x]) & DNU):
                        row_all[y, k] = 0
                        break


@njit(parallel=True, cache=True, error_model="numpy")
def median_rate_kernel(data, gdq, zframe, use_zframe, start, stop, first, last, suppress,
                       tgroup, tframe, t1, accum, row_unsat0):
    """Add the median rate (spec §4.13.3) of each integration of ``data`` (nints, ngroups,
    rows, nx; groups ``start:stop`` fitted) to ``accum`` (float64, (ny, nx)), in order. The rows
    are the first ``ny`` of ``data`` (a block of rows, some of which may not be final yet).

    ``row_unsat0[y]`` is set to 1 when some pixel of row y is not SATURATED in group 0.
    """
    nk, ny, nx = data.shape[0], accum.shape[0], data.shape[3]
    ng = stop - start
    bw = _block_width(nx)
    # A task is a few rows of one block of columns; the more integrations a call holds, the
    # fewer rows (down to one): each row is then work enough for its buffers, and a block of
    # jump's (13 rows of a 256x2048 series of 50 integrations) splits evenly between threads.
    rows = max(1, ROWS_PER_TASK // nk)
    nxb = (nx + bw - 1) // bw
    for task in prange(((ny + rows - 1) // rows) * nxb):
        y_task, x0 = task // nxb, (task % nxb) * bw
        nb = min(bw, nx - x0)
        # work buffers once per task, not once per row (see ROWS_PER_TASK)
        d = np.empty(ng, np.float64)
        g = np.empty(ng, np.uint32)
        og = np.empty(ng, np.uint32)
        vals = np.empty((max(ng - 1, 1), bw), np.float64)
        cnt = np.empty(bw, np.int64)
        mval = np.empty(bw, np.float64)
        quot = np.empty(bw, np.float64)
        pfl = np.empty(bw, np.int32)
        for y in range(y_task * rows, min(ny, (y_task + 1) * rows)):
            unsat0 = False
            for j in range(nk):
                dj, gj = data[j, start:stop], gdq[j, start:stop]
                zj = zframe[j] if use_zframe else zframe[0]
                some_unsat0, _ = _block_median_setup(dj, gj, zj, use_zframe, y, x0, nb, first,
                                                     last, suppress, tgroup, tframe, t1, vals,
                                                     cnt, mval, pfl, d, g, og, quot)
                if some_unsat0:
                    unsat0 = True
                _sort_columns(vals, nb)
                for b in range(nb):
                    accum[y, x0 + b] += _median_finish(vals, cnt[b], b, mval[b])
            if unsat0:   # another task of the row may set it too: they only ever set it
                row_unsat0[y] = 1


@njit(parallel=True, cache=True, error_model="numpy")
def count_slots_kernel(data, gdq, zframe, use_zframe, start, stop, first, last, suppress,
                       nseg_rows, ncr_rows):
    """Per row, the largest segment count (stcal's) and JUMP count of the integrations of
    ``data`` (nints, ngroups, ny, nx; groups ``start:stop`` fitted)."""
    nk, ny, nx = data.shape[0], data.shape[2], data.shape[3]
    ng = stop - start
    for task in prange((ny + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        # work buffers once per task of a few rows, not once per row (see ROWS_PER_TASK)
        d = np.empty(ng, np.float64)
        g = np.empty(ng, np.uint32)
        og = np.empty(ng, np.uint32)
        s0 = np.empty(ng, np.int64)
        sl = np.empty(ng, np.int64)
        for y in range(task * ROWS_PER_TASK, min(ny, (task + 1) * ROWS_PER_TASK)):
            best_seg = 0
            best_cr = 0
            for j in range(nk):
                dj, gj = data[j, start:stop], gdq[j, start:stop]
                zj = zframe[j] if use_zframe else zframe[0]
                for x in range(nx):
                    _load_ramp(dj, gj, y, x, first, last, suppress, zj, use_zframe, d, g, og)
                    ncr = 0
                    for k in range(1, ng):
                        if g[k] & JUMP:
                            ncr += 1
                    if ncr > best_cr:
                        best_cr = ncr
                    if g[0] & SAT:
                        continue
                    size = _segments(g, ng, s0, sl)[1]
                    if size > best_seg:
                        best_seg = size
            nseg_rows[y] = best_seg
            ncr_rows[y] = best_cr


@njit(cache=True, error_model="numpy")  # not inlined: compile time (see its docstring)
def _fit_block_pixels(
    data, gdq, zframe, use_zframe, first, last, suppress, gain2d, dark2d, has_dark, pixdq, single,
    wtable, tgroup, tframe, t1, ped_factor, y, x0, nb, block_fit, pfl, rn_blk, mr_blk, vals, cnt,
    mval, d, g, og, s0, sl, res,
    out_slope, out_err, out_dq, out_vp, out_vr,
    acc_num, acc_ip, acc_ir, acc_clr, acc_flags,
    rate_slope, rate_err, rate_dq, rate_vp, rate_vr,
    save_opt, seg_out, ped_out, cr_out,
):
    """Fit pixel by pixel the ramps of a block that the block fit left (all with ``block_fit``
    False): ramps with jumps, saturation, DO_NOT_USE or CHARGELOSS groups, and every ramp when
    the optional outputs are saved.

    Called once per block. Its per-pixel helpers are inlined here: inlined into the parallel
    kernel, where numba optimises every linked helper once more, they made the ramp-fitting
    kernels take 40.6 s to compile (23.4 s like this), for no gain at run time since a call per
    block costs a microsecond.
    """
    ng = data.shape[0]
    nslots = seg_out.shape[1]
    ncr_slots = cr_out.shape[0]
    for b in range(nb):
        if block_fit and pfl[b] == 0:
            continue   # a clean ramp, fitted above
        x = x0 + b
        (_, cnt_sat, cnt_dnu_sat, has_jump, has_pers, has_closs,
         is_0th, is_zf, d0_raw) = _load_ramp(
            data, gdq, y, x, first, last, suppress, zframe, use_zframe, d, g, og)
        pdq = _pixel_dq(pixdq, gain2d, y, x)
        gain = np.float64(gain2d[y, x])
        rn = rn_blk[b]
        dcur = np.float64(dark2d[y, x]) if has_dark else 0.0
        if single:
            # The exposure mean of one median rate: (0 + m) / 1, where / 1 is exact.
            mrate = 0.0 + _median_finish(vals, cnt[b], b, mval[b])
            a_num = 0.0
            a_ip = 0.0
            a_ir = 0.0
            a_clr = 0.0
            a_flags = np.uint8(0)
        else:
            mrate = mr_blk[b]
            a_num = acc_num[y, x]
            a_ip = acc_ip[y, x]
            a_ir = acc_ir[y, x]
            a_clr = acc_clr[y, x]
            a_flags = acc_flags[y, x]
        if suppress & SUPPRESS_ONE:
            timing1 = tgroup
        elif is_0th:
            timing1 = t1
        elif is_zf:
            timing1 = tframe
        else:
            timing1 = tgroup

        dq = pdq
        if has_jump:
            dq |= JUMP
            a_flags |= FLAG_JUMP
        if has_pers:
            dq |= PERS
            a_flags |= FLAG_PERS

        slope = 0.0
        var_p = 0.0
        var_r = 0.0
        err = 0.0
        nseg = 0
        if g[0] & SAT:
            dq |= DNU_SAT
            slope = np.nan
        else:
            nseg = _segments(g, ng, s0, sl)[0]

        if cnt_dnu_sat == ng:
            dq |= DNU
            if cnt_sat == ng:
                dq |= SAT
        elif nseg > 0:
            inv_r = 0.0
            inv_p = 0.0
            inv_e = 0.0
            num = 0.0
            for j in range(nseg):
                _fit_segment(d, s0[j], sl[j], rn, gain, dcur, mrate, tgroup, timing1,
                             wtable, res)
                inv_r += res[SEG_WEIGHT]  # = 1.0 / res[SEG_VAR_R]
                if res[SEG_VAR_P] > 0.0:
                    inv_p += 1.0 / res[SEG_VAR_P]
                inv_e += 1.0 / res[7]
                num += res[SEG_SLOPE] / res[SEG_VAR_R]
                if save_opt and j < nslots:
                    for f in range(N_SEG_FIELDS):
                        seg_out[f, j, y, x] = np.float32(res[f])
            if inv_p > 0.0:
                var_p = 1.0 / inv_p
            if var_p >= LARGE_VARIANCE_THRESHOLD:
                var_p = 0.0
            var_r = 1.0 / inv_r
            if var_r >= LARGE_VARIANCE_THRESHOLD:
                var_r = 0.0
            if dq & DNU_SAT:
                slope = np.nan
                var_p = 0.0
                var_r = 0.0
                err = 0.0
            else:
                var_e = 1.0 / inv_e
                # The slope is multiplied by the already-thresholded 1/Σ(1/var_r).
                slope = num * var_r
                if var_e > LARGE_VARIANCE_THRESHOLD:
                    err = 0.0
                else:
                    err = math.sqrt(var_e)
            if inv_p > 0.0:
                a_ip += inv_p
            a_ir += inv_r
            a_num += num

        if dq & DNU:
            slope = np.nan
        else:
            a_flags |= FLAG_SOME_USED

        if save_opt:
            # The pedestal sees the integration DQ before the partial-saturation flag.
            if dq & SAT:
                ped = 0.0
            else:
                ped = d[0] - slope * ped_factor
                if math.isnan(ped):
                    ped = 0.0
            ped_out[y, x] = np.float32(ped)
            icr = 0
            for k in range(1, ng):
                if g[k] & JUMP:
                    prev = d0_raw if k == 1 else d[k - 1]
                    if icr < ncr_slots:
                        cr_out[icr, y, x] = np.float32(d[k] - prev)
                    icr += 1

        if dq & SAT:
            slope = np.nan
        else:
            a_flags |= FLAG_SOME_UNSAT
        if cnt_sat > 0:
            dq |= SAT
            a_flags |= FLAG_PARTIAL_SAT

        # CHARGELOSS: recompute the read-noise variance without the CHARGELOSS groups.
        if has_closs:
            a_flags |= FLAG_CHARGELOSS
            for k in range(ng):
                if og[k] & CLOSS:
                    og[k] ^= DNU_CLOSS
            nseg2 = _segments(og, ng, s0, sl)[0]
            inv_r2 = 0.0
            for j in range(nseg2):
                ln = sl[j]
                if ln == 1:
                    sv = _rnoise_var_short(rn, gain, timing1)
                elif ln == 2:
                    sv = _rnoise_var_short(rn, gain, tgroup)
                else:
                    sv = _rnoise_var_default(rn, gain, tgroup, np.float64(ln))
                if sv > 0.0:
                    inv_r2 += 1.0 / sv
            var_r = 1.0 / inv_r2
            if var_r >= LARGE_VARIANCE_THRESHOLD:
                var_r = 0.0
            a_clr += inv_r2
        elif var_r > 0.0:
            a_clr += 1.0 / var_r

        if math.isnan(slope):
            dq |= NAN_RATE_PIXDQ
        out_slope[y, x] = np.float32(slope)
        out_dq[y, x] = dq
        out_vp[y, x] = np.float32(var_p)
        out_vr[y, x] = np.float32(var_r)
        out_err[y, x] = np.float32(err)

        if single:
            r_slope, r_err, r_dq, r_vp, r_vr = _rate_values(pdq, a_num, a_ip, a_ir,
                                                            a_clr, a_flags)
            rate_slope[y, x] = np.float32(r_slope)
            rate_dq[y, x] = r_dq
            rate_vp[y, x] = np.float32(r_vp)
            rate_vr[y, x] = np.float32(r_vr)
            rate_err[y, x] = np.float32(r_err)
        else:
            acc_num[y, x] = a_num
            acc_ip[y, x] = a_ip
            acc_ir[y, x] = a_ir
            acc_clr[y, x] = a_clr
            acc_flags[y, x] = a_flags



@njit(parallel=True, cache=True, error_model="numpy")
def fit_integrations_kernel(
    data, gdq, zframe, use_zframe, start, stop, first, last, suppress,
    gain2d, readnoise2d, rn_factor, dark2d, has_dark, pixdq, mrate_sum, mrate_div, single,
    wtable, tgroup, tframe, t1, ped_factor,
    out_slope, out_err, out_dq, out_vp, out_vr,
    acc_num, acc_ip, acc_ir, acc_clr, acc_flags,
    rate_slope, rate_err, rate_dq, rate_vp, rate_vr,
    save_opt, seg_out, ped_out, cr_out, fresh,
):
    """Fit each integration of ``data`` (nints, ngroups, ny, nx; groups ``start:stop`` fitted),
    in order (spec §4.13.2–4.13.6).

    ``pixdq`` is the input PIXELDQ (the bad-gain flags are added here); ``readnoise2d`` is the
    CDS read noise in DN, turned into the per-group noise in electrons with ``rn_factor`` =
    sqrt(2·NFRAMES); ``dark2d`` is used only with ``has_dark``. The pixel's median rate is
    ``mrate_sum / mrate_div``. The outputs of integration j go to the ``[j]`` planes of the 3-D
    ``out_*`` arrays.

    * ``single`` False: the exposure sums go to the ``acc_*`` arrays (``mrate_sum`` is the sum of
      the per-integration median rates); the ``rate_*`` arrays are not used. With ``fresh``
      (the call starts with the exposure's first integration) the sums start from zero here,
      whatever the arrays held, else from their values.
    * ``single`` True (a one-integration exposure, one integration given): the median rate is computed here from the
      ramp (``mrate_sum`` is not used, ``mrate_div`` must be 1), the rate product is written to
      the 2-D ``rate_*`` arrays and the ``acc_*`` arrays are not used.

    With ``save_opt`` (one integration given), ``seg_out`` (7, nslots, ny, nx), ``ped_out``
    (ny, nx) and ``cr_out`` (ncr, ny, nx) are filled (they must be zero on entry).
    """
    nk, ny, nx = data.shape[0], data.shape[2], data.shape[3]
    ng = stop - start
    # Clean ramps are fitted across a block at once (``_block_clean_fit``), the others pixel by
    # pixel; the optional outputs are written by the per-pixel path only.
    block_fit = (not save_opt) and ng >= 3 and first <= 0 and last >= ng - 1
    bw = _block_width(nx)
    # Work buffers once per task of a few rows, not once per row (see ROWS_PER_TASK); the more
    # integrations a call holds, the fewer rows (down to one, then work enough for its
    # buffers), so that a block of a few rows (13 of a 256x2048 series of 50 integrations)
    # splits evenly between threads.
    rows = max(1, ROWS_PER_TASK // nk)
    for task in prange((ny + rows - 1) // rows):
        # For a single integration, the median rates of a block of pixels are computed first
        # (the sort runs across the block), then the block is fitted.
        d = np.empty(ng, np.float64)
        g = np.empty(ng, np.uint32)
        og = np.empty(ng, np.uint32)
        vals = np.empty((max(ng - 1, 1), bw), np.float64)
        cnt = np.empty(bw, np.int64)
        mval = np.empty(bw, np.float64)
        quot = np.empty(bw, np.float64)
        pfl = np.empty(bw, np.int32)
        rn_blk = np.empty(bw, np.float64)
        mr_blk = np.empty(bw, np.float64)
        s0 = np.empty(ng, np.int64)
        sl = np.empty(ng, np.int64)
        res = np.empty(8, np.float64)
        blk = np.empty((N_BLOCK_ROWS, bw), np.float64)
        pidx = np.empty(bw, np.int64)
        for y in range(task * rows, min(ny, (task + 1) * rows)):
            for x0 in range(0, nx, bw):
                nb = min(bw, nx - x0)
                _block_pixel_terms(gain2d, readnoise2d, rn_factor, mrate_sum, mrate_div, single, y,
                                   x0, nb, rn_blk, mr_blk)
                if fresh and not single:
                    # zeroed here, in parallel, rather than by the caller on one thread
                    for b in range(nb):
                        acc_num[y, x0 + b] = 0.0
                        acc_ip[y, x0 + b] = 0.0
                        acc_ir[y, x0 + b] = 0.0
                        acc_clr[y, x0 + b] = 0.0
                        acc_flags[y, x0 + b] = 0
                for j in range(nk):
                    dj, gj = data[j, start:stop], gdq[j, start:stop]
                    zj = zframe[j] if use_zframe else zframe[0]
                    o_slope, o_err, o_dq = out_slope[j], out_err[j], out_dq[j]
                    o_vp, o_vr = out_vp[j], out_vr[j]
                    lead = 0   # leading groups DO_NOT_USE in the block's clean ramps
                    if single:
                        _, lead = _block_median_setup(dj, gj, zj, use_zframe, y, x0, nb, first,
                                                      last, suppress, tgroup, tframe, t1, vals,
                                                      cnt, mval, pfl, d, g, og, quot)
                        _sort_columns(vals, nb)
                    elif block_fit:
                        lead = _block_clean_flags(dj, gj, y, x0, nb, pfl)
                    if block_fit:
                        n_clean = 0
                        for b in range(nb):
                            if pfl[b] == 0:
                                n_clean += 1
                        if n_clean * MIN_CLEAN_SHARE >= nb:
                            _block_clean_fit(dj, gain2d, dark2d, has_dark, pixdq, single, wtable,
                                             tgroup, y, x0, nb, lead, pfl, rn_blk, mr_blk, vals,
                                             cnt, mval, blk, pidx, o_slope, o_err, o_dq, o_vp,
                                             o_vr, acc_num, acc_ip, acc_ir, acc_clr, acc_flags,
                                             rate_slope, rate_err, rate_dq, rate_vp, rate_vr)
                        else:
                            for b in range(nb):
                                pfl[b] = 1   # too few to gain from the block fit: pixel by pixel
                    _fit_block_pixels(
                        dj, gj, zj, use_zframe, first, last, suppress, gain2d, dark2d, has_dark,
                        pixdq, single, wtable, tgroup, tframe, t1, ped_factor, y, x0, nb,
                        block_fit, pfl, rn_blk, mr_blk, vals, cnt, mval, d, g, og, s0, sl, res,
                        o_slope, o_err, o_dq, o_vp, o_vr,
                        acc_num, acc_ip, acc_ir, acc_clr, acc_flags,
                        rate_slope, rate_err, rate_dq, rate_vp, rate_vr,
                        save_opt, seg_out, ped_out, cr_out)


@njit(parallel=True, cache=True, error_model="numpy")
def finish_rate_kernel(pixdq, gain2d, acc_num, acc_ip, acc_ir, acc_clr, acc_flags,
                       out_slope, out_err, out_dq, out_vp, out_vr):
    """Combine the integration sums into the rate product (spec §4.13.5)."""
    ny, nx = pixdq.shape
    for y in prange(ny):
        for x in range(nx):
            dq = _pixel_dq(pixdq, gain2d, y, x)
            slope, err, dq, var_p, var_r = _rate_values(
                dq, acc_num[y, x], acc_ip[y, x], acc_ir[y, x], acc_clr[y, x], acc_flags[y, x])
            out_slope[y, x] = np.float32(slope)
            out_dq[y, x] = dq
            out_vp[y, x] = np.float32(var_p)
            out_vr[y, x] = np.float32(var_r)
            out_err[y, x] = np.float32(err)


@njit(parallel=True, cache=True, error_model="numpy")
def effective_readnoise_kernel(readnoise, gain, factor, out):
    """R = RN_cds·gain/sqrt(2·NFRAMES) in electrons, rounded to float32 like stcal's in-place
    numpy product (float64 arithmetic, float32 storage)."""
    ny, nx = readnoise.shape
    for y in prange(ny):
        for x in range(nx):
            out[y, x] = np.float32(np.float64(readnoise[y, x]) * (np.float64(gain[y, x]) / factor))
