"""Numba kernels that turn accumulated charge into raw DN, one group at a time.

Per pixel, the charge in electrons at the first frame of a group is ``A`` (Poisson), plus the
cosmic-ray charge ``C`` that arrived up to that frame. With NFRAMES > 1 the ``W`` electrons that
arrive during the group's remaining frames are spread linearly over them, and ``dw`` adds the
scatter of the group mean around that linear spread (see ``physics.intra_group_variance``).
Each frame is converted to linear DN with the pixel gain, clamped at the hard full well, made
non-linear through the pixel's inverse linearity function, and the frames are averaged. Bias,
the reference pattern (amplifier offsets and 1/f row noise) and read noise are then added and
the result is rounded and clipped to the 16-bit A/D range.

The non-linearity of a pixel is ``m = T(s * Q) / s``: ``T`` is the tabulated inverse of the
reference polynomial on a uniform grid of step ``1/inv_step`` and ``s`` is the pixel's scale
(see ``physics.NonLinearity``).
"""
import numpy as np
from numba import njit, prange

ROW_BLOCK = 16                  # rows per parallel work item
PARALLEL_MIN_PIXELS = 1 << 17   # smaller frames are processed on one thread


@njit(inline="always", cache=True)
def _unlinearize(q, s, qhard, table, inv_step):
    if q > qhard:
        q = qhard
    if q < 0.0:
        q = 0.0
    u = q * s * inv_step
    i = int(u)
    last = table.shape[0] - 1
    if i >= last:
        return table[last] / s
    f = u - i
    return (table[i] + f * (table[i + 1] - table[i])) / s


@njit(inline="always", cache=True)
def _measured(a, w, c, dw, gain, s, qhard, table, inv_step, nframes, extra):
    """Mean non-linear signal (DN) of the frames of one group for one pixel."""
    if nframes == 1:
        return _unlinearize((a + c + extra[0]) / gain, s, qhard, table, inv_step)
    base = a + c + dw
    step = w / (nframes - 1)
    total = 0.0
    for j in range(nframes):
        total += _unlinearize((base + j * step + extra[j]) / gain, s, qhard, table, inv_step)
    return total / nframes


@njit(inline="always", cache=True)
def _to_dn(value):
    v = np.floor(value + 0.5)
    if v < 0.0:
        v = 0.0
    elif v > 65535.0:
        v = 65535.0
    return np.uint16(v)


@njit(inline="always", cache=True)
def _store(out, satgroup, threshold, group, y, x, value):
    dn = _to_dn(value)
    out[y, x] = dn
    if group >= 0 and satgroup[y, x] < 0 and dn >= threshold[y, x]:
        satgroup[y, x] = group


@njit(cache=True)
def _render_rows(y0, y1, out, satgroup, threshold, group, a, w, c, dw, noise, gain, scale,
                 qhard, bias, rowpat, colpat, table, inv_step, nframes):
    nx = out.shape[1]
    extra = np.zeros(nframes)
    for y in range(y0, y1):
        rp = rowpat[y]
        for x in range(nx):
            if nframes > 1:
                wv = w[y, x]
                dv = dw[y, x]
            else:
                wv = 0.0
                dv = 0.0
            m = _measured(a[y, x], wv, c[y, x], dv, gain[y, x], scale[y, x], qhard[y, x],
                          table, inv_step, nframes, extra)
            _store(out, satgroup, threshold, group, y, x,
                   bias[y, x] + rp + colpat[x] + m + noise[y, x])


@njit(parallel=True, cache=True)
def _render_parallel(out, satgroup, threshold, group, a, w, c, dw, noise, gain, scale, qhard,
                     bias, rowpat, colpat, table, inv_step, nframes):
    ny = out.shape[0]
    nblocks = (ny + ROW_BLOCK - 1) // ROW_BLOCK
    for b in prange(nblocks):
        _render_rows(b * ROW_BLOCK, min(ny, (b + 1) * ROW_BLOCK), out, satgroup, threshold,
                     group, a, w, c, dw, noise, gain, scale, qhard, bias, rowpat, colpat,
                     table, inv_step, nframes)


def render_group(out, satgroup, threshold, group, a, w, c, dw, noise, gain, scale, qhard, bias,
                 rowpat, colpat, table, inv_step, nframes):
    """Fill ``out`` (uint16, ny x nx) with the raw DN of one group.

    ``w`` and ``dw`` are only read when nframes > 1 (pass 1x1 arrays otherwise). Pixels that
    reach ``threshold`` for the first time get ``group`` in ``satgroup`` (skipped if group < 0).
    Small frames are done on one thread: starting threads costs more than it saves.
    """
    args = (out, satgroup, threshold, group, a, w, c, dw, noise, gain, scale, qhard, bias,
            rowpat, colpat, table, inv_step, nframes)
    if out.size >= PARALLEL_MIN_PIXELS:
        _render_parallel(*args)
    else:
        _render_rows(0, out.shape[0], *args)


@njit(cache=True)
def rerender_pixels(out, satgroup, threshold, group, pix_y, pix_x, offsets, amps, a, w, c, dw,
                    noise, gain, scale, qhard, bias, rowpat, colpat, table, inv_step, nframes):
    """Recompute pixels hit by cosmic rays between the frames of a group.

    The hits are sorted by pixel; ``offsets`` is the frame within the group where the charge
    ``amps`` (electrons) first appears. A hit only adds charge, so a saturation already
    recorded for this group stays right.
    """
    n = pix_y.shape[0]
    extra = np.zeros(nframes)
    k = 0
    while k < n:
        y = pix_y[k]
        x = pix_x[k]
        extra[:] = 0.0
        while k < n and pix_y[k] == y and pix_x[k] == x:
            for j in range(offsets[k], nframes):
                extra[j] += amps[k]
            k += 1
        wv = w[y, x] if nframes > 1 else 0.0
        dv = dw[y, x] if nframes > 1 else 0.0
        m = _measured(a[y, x], wv, c[y, x], dv, gain[y, x], scale[y, x], qhard[y, x],
                      table, inv_step, nframes, extra)
        _store(out, satgroup, threshold, group, y, x,
               bias[y, x] + rowpat[y] + colpat[x] + m + noise[y, x])


# Coefficients of P. J. Acklam's rational approximation of the inverse normal CDF
# (relative error below 1.2e-9 over (0, 1)).
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
      1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
      6.680131188771972e+01, -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
      -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
      3.754408661907416e+00)


@njit(inline="always", cache=True)
def _normal_quantile(u):
    if u <= 0.0:
        u = 1e-300
    elif u >= 1.0:
        u = 1.0 - 1e-16
    if u < 0.02425:
        q = np.sqrt(-2.0 * np.log(u))
        return (((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]) / \
            ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0)
    if u > 1.0 - 0.02425:
        q = np.sqrt(-2.0 * np.log(1.0 - u))
        return -(((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]) / \
            ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0)
    q = u - 0.5
    r = q * q
    return (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q / \
        (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0)


@njit(inline="always", cache=True)
def _poisson(lam, u):
    """A Poisson deviate of mean ``lam`` from one uniform deviate ``u``.

    Below a mean of 30 the uniform is inverted through the Poisson CDF (exact). Above, its
    normal quantile is mapped with the Cornish-Fisher expansion that restores the Poisson
    skewness, then rounded; at such means the difference from a true Poisson deviate is far
    below the noise itself.
    """
    if lam <= 0.0:
        return 0.0
    if lam < 30.0:
        p = np.exp(-lam)
        cdf = p
        k = 0
        while u > cdf and k < 200:
            k += 1
            p *= lam / k
            cdf += p
        return float(k)
    z = _normal_quantile(u)
    x = np.floor(lam + np.sqrt(lam) * z + (z * z - 1.0) / 6.0 + 0.5)
    return x if x > 0.0 else 0.0


@njit(cache=True)
def _poisson_rows(y0, y1, out, flux, dt, u, accumulate):
    nx = out.shape[1]
    for y in range(y0, y1):
        for x in range(nx):
            value = _poisson(flux[y, x] * dt, u[y, x])
            if accumulate:
                out[y, x] += value
            else:
                out[y, x] = value


@njit(parallel=True, cache=True)
def _poisson_parallel(out, flux, dt, u, accumulate):
    ny = out.shape[0]
    nblocks = (ny + ROW_BLOCK - 1) // ROW_BLOCK
    for b in prange(nblocks):
        _poisson_rows(b * ROW_BLOCK, min(ny, (b + 1) * ROW_BLOCK), out, flux, dt, u, accumulate)


def poisson_fill(out, flux, dt, u, accumulate):
    """``out = Poisson(flux * dt)`` (``out +=`` with accumulate) from uniform deviates ``u``."""
    if out.size >= PARALLEL_MIN_PIXELS:
        _poisson_parallel(out, flux, dt, u, accumulate)
    else:
        _poisson_rows(0, out.shape[0], out, flux, dt, u, accumulate)


@njit(parallel=True, cache=True)
def unlinearize_map(q, scale, table, inv_step, out):
    """Measured DN of linear DN ``q`` for every pixel (no full-well clamp)."""
    ny, nx = q.shape
    big = np.inf
    for y in prange(ny):
        for x in range(nx):
            out[y, x] = _unlinearize(q[y, x], scale[y, x], big, table, inv_step)
