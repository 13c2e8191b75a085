"""Numba kernels of the LIKELY ramp fit (Brandt 2024), one integration at a time.

``likely_fit.py`` holds the public API; read its docstring first. The fit works on the
differences of consecutive resultants, whose covariance matrix is tridiagonal: ``alpha`` on the
diagonal, ``beta`` beside it, each the sum of a read-noise and a photon-noise part. The
recurrences below (theta, phi and their sign-alternating partial sums) give the inverse of that
matrix without forming it. The arithmetic follows stcal 1.20's vectorised numpy, operation by
operation and in the same order (float64; sums over the differences start from the first term
and add the others in turn, as numpy's reductions over the leading axis do), because the
outputs must agree with it to float32 rounding. Masked differences are multiplied by zero
rather than skipped, exactly as there, so that NaN and infinite inputs propagate identically.
Each pixel is independent: the results do not depend on the number of threads.
"""
import numpy as np
from numba import njit, prange

from ..datamodels import dqflags

DNU = np.uint32(dqflags.group["DO_NOT_USE"])
SAT = np.uint32(dqflags.group["SATURATED"])
JUMP = np.uint32(dqflags.group["JUMP_DET"])
DNU_SAT = np.uint32(DNU | SAT)
PIX_DNU = np.uint32(dqflags.pixel["DO_NOT_USE"])
PIX_SAT = np.uint32(dqflags.pixel["SATURATED"])
PIX_JUMP = np.uint32(dqflags.pixel["JUMP_DET"])

#: Rescale the determinant recurrence every this many differences (as stcal does).
DN_SCALE = 10


@njit(cache=True, error_model="numpy", inline="always")
def _times(x, flag):
    # numpy's float * bool: x * 1.0 or x * 0.0 (NaN and inf stay NaN)
    return x * (1.0 if flag else 0.0)


@njit(cache=True, error_model="numpy", inline="always")
def _median(values, n, work):
    """numpy's median of values[:n]: NaN if any is NaN, else the middle (mean of two)."""
    for k in range(n):
        v = values[k]
        if np.isnan(v):
            return np.nan
        j = k
        while j > 0 and work[j - 1] > v:
            work[j] = work[j - 1]
            j -= 1
        work[j] = v
    h = n // 2
    if n % 2 == 1:
        return work[h]
    return (work[h - 1] + work[h]) / 2.0


@njit(cache=True, error_model="numpy", inline="always")
def _fit(nd, diffs, use, crg, gain, rn2, cov, detect, s, out):
    """Fit one pixel's differences; ``out`` gets countrate, chisq, uncert, var_p, var_r.

    ``cov`` rows: alpha_rn, alpha_ph (nd), beta_rn, beta_ph (nd - 1, padded). ``s`` is the
    scratch block (rows named below). With ``detect``, rows 14..17 get the count rate and chi
    squared of the fits omitting each difference (one_omit) and each pair (two_omit).
    """
    aph = s[0]
    arn = s[1]
    alpha = s[2]
    bph = s[3]
    brn = s[4]
    beta = s[5]
    theta = s[6]
    phi = s[7]
    big_phi = s[8]
    phi_d = s[9]
    big_theta = s[10]
    theta_d = s[11]
    d_c = s[12]
    d_b = s[13]
    dm = s[18]
    cid = s[19]
    coff = s[20]

    g = np.float64(gain)
    for k in range(nd):
        aph[k] = crg / g * cov[1, k]
        arn[k] = rn2 * cov[0, k]
        alpha[k] = aph[k] + arn[k]
    for k in range(nd - 1):
        bph[k] = crg / g * cov[3, k]
        brn[k] = rn2 * cov[2, k]
        beta[k] = bph[k] + brn[k]

    # Normalise the covariance to a determinant of about 1 (theta[i] scales as f**i).
    scale = 1.0
    theta[0] = 1.0
    theta[1] = alpha[0]
    for i in range(2, nd + 1):
        theta[i] = (alpha[i - 1] / scale * theta[i - 1]
                    - beta[i - 2] ** 2 / scale ** 2 * theta[i - 2])
        if i % DN_SCALE == 0 or i == nd:
            f = theta[i] ** (1.0 / i)
            scale *= f
            tmp = theta[i] / f
            theta[i - 1] /= tmp
            theta[i - 2] /= tmp / f
            theta[i] = 1.0
    for k in range(nd):
        alpha[k] /= scale
    for k in range(nd - 1):
        beta[k] /= scale

    for k in range(nd):
        dm[k] = diffs[k] * use[k]
    for k in range(nd - 1):
        beta[k] = beta[k] * use[k + 1] * use[k]

    theta[0] = 1.0
    theta[1] = alpha[0]
    for i in range(2, nd + 1):
        theta[i] = alpha[i - 1] * theta[i - 1] - beta[i - 2] ** 2 * theta[i - 2]
    phi[nd] = 1.0
    phi[nd - 1] = alpha[nd - 1]
    for i in range(nd - 2, -1, -1):
        phi[i] = alpha[i] * phi[i + 1] - beta[i] ** 2 * phi[i + 2]

    # sgn[k] = -1 for even k, +1 for odd k
    big_phi[nd - 1] = 0.0
    phi_d[nd - 1] = 0.0
    for i in range(nd - 2, -1, -1):
        sg = 1.0 if (i + 1) % 2 == 1 else -1.0
        big_phi[i] = big_phi[i + 1] * beta[i] + sg * beta[i] * phi[i + 2]
        phi_d[i] = (phi_d[i + 1] + sg * dm[i + 1] * phi[i + 2]) * beta[i]
    big_theta[0] = -theta[0]
    for i in range(1, nd):
        sg = 1.0 if i % 2 == 1 else -1.0
        big_theta[i] = big_theta[i - 1] * beta[i - 1] + sg * theta[i]
    theta_d[0] = 0.0
    theta_d[1] = -dm[0] * theta[0]
    for i in range(1, nd):
        sg = 1.0 if i % 2 == 1 else -1.0
        theta_d[i + 1] = beta[i - 1] * theta_d[i] + sg * dm[i] * theta[i]

    tn = theta[nd]
    # (+-1) / tn is exactly +-(1 / tn): one division instead of three per difference
    inv_tn = 1.0 / tn
    a_sum1 = 0.0
    a_sum2 = 0.0
    b_sum = 0.0
    c_sum = 0.0
    for k in range(nd):
        sg_tn = inv_tn if k % 2 == 1 else -inv_tn
        d_c[k] = sg_tn * (phi[k + 1] * big_theta[k] + theta[k] * big_phi[k])
        d_c[k] = d_c[k] * use[k]
        d_b[k] = sg_tn * (phi[k + 1] * theta_d[k + 1] + theta[k] * phi_d[k])
        bext = 1.0 if k == 0 else beta[k - 1]
        sg = 1.0 if k % 2 == 1 else -1.0
        t1 = dm[k] * sg / tn * bext * phi[k + 1] * theta_d[k]
        t2 = dm[k] ** 2 * theta[k] * phi[k + 1] / tn
        t3 = dm[k] * d_c[k]
        if k == 0:
            a_sum1, a_sum2, b_sum, c_sum = t1, t2, t3, d_c[k]
        else:
            a_sum1 += t1
            a_sum2 += t2
            b_sum += t3
            c_sum += d_c[k]
    big_a = 2.0 * a_sum1
    big_a += a_sum2
    big_b = b_sum
    big_c = c_sum

    countrate = big_b * (1.0 / big_c)
    chisq = (big_a - big_b ** 2 / big_c) / scale
    out[0] = countrate
    out[1] = chisq
    out[2] = np.sqrt(scale / big_c)
    wts = s[21]
    for k in range(nd):
        wts[k] = d_c[k] / big_c
    vp = 0.0
    vr = 0.0
    for k in range(nd):
        w = wts[k]
        if k == 0:
            vp = w ** 2 * aph[k]
            vr = w ** 2 * arn[k]
        else:
            vp += w ** 2 * aph[k]
            vr += w ** 2 * arn[k]
    vp2 = 0.0
    vr2 = 0.0
    for k in range(nd - 1):
        w0 = wts[k]
        w1 = wts[k + 1]
        if k == 0:
            vp2 = w1 * w0 * bph[k]
            vr2 = w1 * w0 * brn[k]
        else:
            vp2 += w1 * w0 * bph[k]
            vr2 += w1 * w0 * brn[k]
    out[3] = vp + 2.0 * vp2
    out[4] = vr + 2.0 * vr2

    if not detect:
        return

    cr1 = s[14]
    chi1 = s[15]
    cr2 = s[16]
    chi2 = s[17]
    for k in range(nd):
        cid[k] = theta[k] * phi[k + 1] / tn
        cid[k] = cid[k] * use[k]
    for k in range(nd - 1):
        coff[k] = -beta[k] * theta[k] * phi[k + 2] / tn
    # one difference omitted (Paper II, section 3.1)
    for k in range(nd):
        if use[k] == 0:
            # stcal replaces these (its 0/0) by the full fit
            cr1[k] = countrate
            chi1[k] = chisq
            continue
        a = (cid[k] * big_b - d_b[k] * d_c[k]) / (big_c * cid[k] - d_c[k] ** 2)
        b = (d_b[k] - a * d_c[k]) / cid[k]
        cr1[k] = a
        chi1[k] = (big_a + a ** 2 * big_c - 2 * a * big_b + b ** 2 * cid[k]
                   - 2 * b * d_b[k] + 2 * a * b * d_c[k]) / scale
    # two consecutive differences omitted (section 3.2)
    for k in range(nd - 1):
        if use[k + 1] == 0 or use[k] == 0:
            if use[k] == 0:
                cr2[k] = cr1[k + 1]
                chi2[k] = chi1[k + 1]
            else:
                cr2[k] = cr1[k]
                chi2[k] = chi1[k]
            continue
        cpj = d_c[k] ** 2 - big_c * cid[k]
        cjck = d_c[k] * d_c[k + 1] - big_c * coff[k]
        bcpj = big_b * d_c[k] - d_b[k] * big_c
        c = bcpj / cpj - (big_b * d_c[k + 1] - d_b[k + 1] * big_c) / cjck
        c /= cjck / cpj - (d_c[k + 1] ** 2 - big_c * cid[k + 1]) / cjck
        b = (bcpj - c * cjck) / cpj
        a = (big_b - b * d_c[k] - c * d_c[k + 1]) / big_c
        cr2[k] = a
        x = big_a + a ** 2 * big_c + b ** 2 * cid[k] + c ** 2 * cid[k + 1]
        x -= 2 * a * big_b + 2 * b * d_b[k] + 2 * c * d_b[k + 1]
        x += 2 * a * b * d_c[k] + 2 * a * c * d_c[k + 1] + 2 * b * c * coff[k]
        chi2[k] = x / scale


@njit(cache=True, error_model="numpy", inline="always")
def _mask_jumps(nd, diffs, use, gain, rn2, cov, two_ok, thr1, thr2, s, res, work):
    """Iteratively drop the difference (or pair) whose omission most improves chi squared.

    Updates ``use`` in place; returns the count rate of the last accepted fit."""
    crg = _median(diffs, nd, work)
    crg = _times(crg, crg > 0)
    countrate = 0.0
    cr1 = s[14]
    chi1 = s[15]
    cr2 = s[16]
    chi2 = s[17]
    for j in range(nd):
        _fit(nd, diffs, use, crg, gain, rn2, cov, True, s, res)
        chisq = res[1]
        if j == 0:
            countrate = res[0]
        best1 = 0.0
        for k in range(nd):
            v = chisq - chi1[k]
            if k == 0 or np.isnan(v) or v > best1:
                best1 = v
            if np.isnan(v):
                break
        best2 = 0.0
        for k in range(nd - 1):
            v = _times(chisq - chi2[k], two_ok[k])
            if k == 0 or np.isnan(v) or v > best2:
                best2 = v
            if np.isnan(v):
                break
        one_better = best1 - thr1 > best2 - thr2
        best = _times(_times(best1, best1 > thr1), one_better)
        best += _times(_times(best2, best2 > thr2), not one_better)
        if best == 0:
            best = np.nan
        any_one = False
        any_two = False
        new_ct = 0.0
        if one_better:
            for k in range(nd):
                hit = (chisq - chi1[k]) == best
                any_one = any_one or hit
                term = _times(cr1[k], hit)
                new_ct = term if k == 0 else new_ct + term
            for k in range(nd):
                if (chisq - chi1[k]) == best:
                    use[k] = 0
        else:
            for k in range(nd - 1):
                hit = (chisq - chi2[k]) == best
                any_two = any_two or hit
                term = _times(cr2[k], hit)
                new_ct = term if k == 0 else new_ct + term
            if any_two:
                for k in range(nd - 1):
                    if (chisq - chi2[k]) == best:
                        # both differences of the pair; the second pass sees the first's zero
                        use[k] = 0
                        use[k + 1] = 0
        if not (any_one or any_two):
            break
        countrate = countrate * 0.0 + new_ct
        n_use = 0
        for k in range(nd):
            n_use += use[k]
        if n_use <= 3:
            break
    return countrate


@njit(cache=True, error_model="numpy", parallel=True)
def integration_kernel(data, gdq, zf, use_zf, nframes, first, last, gain, readnoise, dark,
                       pixeldq, delta_t, cov, two_ok, thr1, thr2,
                       out_data, out_err, out_dq, out_vp, out_vr, out_chisq):
    """Fit one integration: data/gdq (ngroups, ny, nx); zf (ny, nx) used when use_zf.

    ``first``/``last``: groups outside get DO_NOT_USE. ``readnoise`` is the CDS read noise in
    DN (float32); the fit uses (readnoise / sqrt 2)**2 in float64."""
    ngroups, ny, nx = data.shape
    nres = ngroups + 1 if use_zf else ngroups
    nd = nres - 1
    nf = np.float32(nframes)
    nf1 = np.float32(nframes - 1)
    sqrt2 = np.sqrt(2.0)
    for y in prange(ny):
        res_v = np.empty(nres, np.float32)
        res_g = np.empty(nres, np.uint32)
        diffs = np.empty(nd, np.float64)
        use = np.empty(nd, np.uint8)
        use0 = np.empty(nd, np.uint8)
        s = np.empty((22, nd + 1), np.float64)
        work = np.empty(nd, np.float64)
        res = np.empty(5, np.float64)
        for x in range(nx):
            off = 0
            if use_zf:
                res_v[0] = zf[y, x]
                res_v[1] = (data[0, y, x] * nf - zf[y, x]) / nf1
                off = 1
                for gi in range(1, ngroups):
                    res_v[gi + 1] = data[gi, y, x]
            else:
                for gi in range(ngroups):
                    res_v[gi] = data[gi, y, x]
            for gi in range(ngroups):
                flag = np.uint32(gdq[gi, y, x])
                if gi < first or gi > last:
                    flag |= DNU
                res_g[gi + off] = flag
            if use_zf:
                res_g[0] = res_g[1]
            for k in range(nd):
                diffs[k] = np.float64(res_v[k + 1] - res_v[k]) / delta_t[k]
                u = np.uint8(1)
                if res_g[k + 1] != 0 or res_g[k] != 0:
                    u = np.uint8(0)
                use[k] = u
                use0[k] = u
            rn = np.float64(readnoise[y, x]) / sqrt2
            rn2 = rn ** 2
            g = gain[y, x]
            cr = _mask_jumps(nd, diffs, use, g, rn2, cov, two_ok, thr1, thr2, s, res, work)
            for k in range(nd):
                if use0[k] != use[k]:
                    res_g[k + 1] |= JUMP
            guess = _times(cr, cr > 0) + np.float64(dark[y, x])
            _fit(nd, diffs, use, guess, g, rn2, cov, False, s, res)
            out_data[y, x] = np.float32(res[0])
            out_chisq[y, x] = np.float32(res[1])
            out_err[y, x] = np.float32(res[2])
            out_vp[y, x] = np.float32(res[3])
            out_vr[y, x] = np.float32(res[4])

            dq = pixeldq[y, x]
            all_bad = True
            any_sat = False
            any_jump = False
            for gi in range(nres):
                fl = res_g[gi]
                if fl & DNU_SAT == 0:
                    all_bad = False
                if fl & SAT:
                    any_sat = True
                if fl & JUMP:
                    any_jump = True
            if all_bad:
                dq |= PIX_DNU
            if any_sat:
                dq |= PIX_SAT
            if any_jump:
                dq |= PIX_JUMP
            out_dq[y, x] = dq


@njit(cache=True, error_model="numpy", inline="always")
def _nanmedian32(values, n, work):
    m = 0
    for k in range(n):
        v = values[k]
        if np.isnan(v):
            continue
        j = m
        while j > 0 and work[j - 1] > v:
            work[j] = work[j - 1]
            j -= 1
        work[j] = v
        m += 1
    if m == 0:
        return np.float32(np.nan)
    h = m // 2
    if m % 2 == 1:
        lo = work[h]
        hi = work[h]
    else:
        lo = work[h - 1]
        hi = work[h]
    return np.float32(lo + hi) / np.float32(2.0)


@njit(cache=True, error_model="numpy", parallel=True)
def combine_kernel(data, vp, vr, dq, chisq, out_data, out_err, out_dq, out_vp, out_vr,
                   out_chisq):
    """The rate from the rateints (nints, ny, nx): stcal's re-weighted combination."""
    nints, ny, nx = data.shape
    zero = np.float32(0.0)
    one = np.float32(1.0)
    not_dnu = np.uint32(~PIX_DNU & 0xFFFFFFFF)
    for y in prange(ny):
        work = np.empty(nints, np.float32)
        vals = np.empty(nints, np.float32)
        avp = np.empty(nints, np.float32)
        w = np.empty(nints, np.float32)
        for x in range(nx):
            for i in range(nints):
                vals[i] = data[i, y, x]
            slope = _nanmedian32(vals, nints, work)
            for _ in range(2):
                wsum = zero
                for i in range(nints):
                    rs = slope / vals[i]
                    if not np.isfinite(rs) or rs < 0:
                        rs = zero
                    avp[i] = vp[i, y, x] * rs
                    w[i] = one / (avp[i] + vr[i, y, x])
                    t = w[i]
                    if np.isnan(t):
                        t = zero
                    wsum = t if i == 0 else wsum + t
                all_nan = True
                acc = zero
                for i in range(nints):
                    w[i] = w[i] / wsum
                    t = vals[i] * w[i]
                    if not np.isnan(t):
                        all_nan = False
                    else:
                        t = zero
                    acc = t if i == 0 else acc + t
                slope = np.float32(np.nan) if all_nan else acc
            p_nan = True
            r_nan = True
            p_acc = zero
            r_acc = zero
            c_acc = zero
            for i in range(nints):
                tp = avp[i] * (w[i] * w[i])
                tr = vr[i, y, x] * (w[i] * w[i])
                if np.isnan(tp):
                    tp = zero
                else:
                    p_nan = False
                if np.isnan(tr):
                    tr = zero
                else:
                    r_nan = False
                p_acc = tp if i == 0 else p_acc + tp
                r_acc = tr if i == 0 else r_acc + tr
                c_acc = chisq[i, y, x] if i == 0 else c_acc + chisq[i, y, x]
            var_p = np.float32(np.nan) if p_nan else p_acc
            var_r = np.float32(np.nan) if r_nan else r_acc
            out_data[y, x] = slope
            out_vp[y, x] = var_p
            out_vr[y, x] = var_r
            out_err[y, x] = np.sqrt(var_p + var_r)
            out_chisq[y, x] = c_acc

            flags = np.uint32(0)
            all_dnu = True
            for i in range(nints):
                f = dq[i, y, x]
                flags |= f
                if f & PIX_DNU == 0:
                    all_dnu = False
            flags &= not_dnu
            if all_dnu:
                flags |= PIX_DNU
            out_dq[y, x] = flags
