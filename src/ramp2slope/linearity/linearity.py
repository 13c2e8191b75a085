"""linearity: polynomial correction of the detector's non-linear response (spec §4.7).

The LINEARITY coefficients (c0 first, already cut out) are applied to every group that is not
SATURATED. Pixels flagged NO_LIN_CORR in the reference, or with a NaN coefficient, or with
c1 == 0 are corrected with the identity polynomial (c1 = 1, others 0), and the last two cases
add NO_LIN_CORR to PIXELDQ. The coefficient arrays are never modified: the identity is
evaluated on the fly for those pixels.

For group-averaged data (NFRAMES > 1) with inverse coefficients in the reference and no
explicit read times, the read-level path of stcal is used: each group is rebuilt as the mean of
its individual reads, those are linearized one by one and averaged again (float64 throughout,
like the official code).
"""
import numba
import numpy as np

from ramp2slope.datamodels import dqflags
from ramp2slope.errors import ReferenceFileError
from ramp2slope.saturation.saturation import make_read_pattern

__all__ = ["identity_pixels", "prepare_coefficients", "use_read_level", "correct_linearity",
           "do_correction"]

_SAT = dqflags.group["SATURATED"]
_NO_LIN_CORR = dqflags.pixel["NO_LIN_CORR"]


def identity_pixels(coeffs, lin_dq):
    """The pixels that get the identity polynomial, and what they add to PIXELDQ.

    Returns ``(benign, flags)``: ``benign`` a uint8 (ny, nx) array, 1 where a coefficient is
    NaN, c1 == 0 or ``lin_dq`` has NO_LIN_CORR; ``flags`` the uint32 (ny, nx) bits to OR into
    PIXELDQ: ``lin_dq``, plus NO_LIN_CORR on those pixels. ``coeffs`` (ncoeffs >= 2, ny, nx) is
    not modified.
    """
    ncoef = coeffs.shape[0]
    if coeffs.ndim != 3 or ncoef < 2:
        raise ReferenceFileError(
            f"linearity coefficients must be (ncoeffs >= 2, ny, nx), got {coeffs.shape}")
    lin_dq = np.ascontiguousarray(lin_dq, dtype=np.uint32)
    # 2-D, once per run: numpy is fast enough and spares compiling a kernel
    bad = (lin_dq & np.uint32(_NO_LIN_CORR)) != 0
    for plane in coeffs:
        bad |= np.isnan(plane)
    bad |= coeffs[1] == 0
    benign = bad.view(np.uint8)
    flags = lin_dq.copy()
    flags[bad] |= np.uint32(_NO_LIN_CORR)
    return benign, flags


def prepare_coefficients(coeffs, lin_dq, pixeldq):
    """Find the pixels that get the identity polynomial and update PIXELDQ, in place.

    ``pixeldq |= lin_dq``, and NO_LIN_CORR is added where a coefficient is NaN or c1 == 0
    (pixels with NO_LIN_CORR in ``lin_dq`` already carry it). Returns a uint8 (ny, nx) array,
    1 where the identity is to be used. ``coeffs`` (ncoeffs >= 2, ny, nx) is not modified.
    """
    benign, flags = identity_pixels(coeffs, lin_dq)
    pixeldq |= flags
    return benign


def use_read_level(has_inv_coeffs, nframes, has_read_times=False):
    """The official rule for the read-level path: inverse coefficients present, NFRAMES > 1
    and no explicit read times."""
    return bool(has_inv_coeffs) and nframes is not None and int(nframes) > 1 and not has_read_times


@numba.njit(cache=True)
def _poly32(v, coeffs, benign, y, x):
    """c0 + c1 v + ... in float32, Horner form, starting from the highest term."""
    n = coeffs.shape[0]
    if benign:
        top = np.float32(1.0) if n - 1 == 1 else np.float32(0.0)
        r = top * v
        for j in range(n - 2, 0, -1):
            r += np.float32(1.0) if j == 1 else np.float32(0.0)
            r *= v
        r += np.float32(0.0)
        return r
    r = coeffs[n - 1, y, x] * v
    for j in range(n - 2, 0, -1):
        r += coeffs[j, y, x]
        r *= v
    r += coeffs[0, y, x]
    return r


@numba.njit(cache=True)
def _poly64(v, coeffs, benign, y, x):
    """The same polynomial with float64 data (float32 coefficients promoted)."""
    n = coeffs.shape[0]
    if benign:
        r = (1.0 if n - 1 == 1 else 0.0) * v
        for j in range(n - 2, 0, -1):
            r += 1.0 if j == 1 else 0.0
            r *= v
        r += 0.0
        return r
    r = np.float64(coeffs[n - 1, y, x]) * v
    for j in range(n - 2, 0, -1):
        r += np.float64(coeffs[j, y, x])
        r *= v
    r += np.float64(coeffs[0, y, x])
    return r


@numba.njit(parallel=True, cache=True)
def _correct_groups(data, gdq, coeffs, benign, sat):
    # The polynomial of _poly32, evaluated a row at a time term by term so that the loops over
    # x vectorize: the same float32 operations in the same order for every pixel, with the
    # identity coefficients selected for benign pixels.
    ngroups, ny, nx = data.shape
    n = coeffs.shape[0]
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for y in numba.prange(ny):
        acc = np.empty(nx, dtype=np.float32)
        for g in range(ngroups):
            top = one if n - 1 == 1 else zero
            for x in range(nx):
                c = top if benign[y, x] else coeffs[n - 1, y, x]
                acc[x] = c * data[g, y, x]
            for j in range(n - 2, 0, -1):
                unit = one if j == 1 else zero
                for x in range(nx):
                    c = unit if benign[y, x] else coeffs[j, y, x]
                    acc[x] = (acc[x] + c) * data[g, y, x]
            for x in range(nx):
                c = zero if benign[y, x] else coeffs[0, y, x]
                r = acc[x] + c
                if (gdq[g, y, x] & sat) == 0:
                    data[g, y, x] = r


@numba.njit(parallel=True, cache=True)
def _correct_reads(data, gdq, coeffs, benign, icoeffs, ibenign, pattern, mean_read, sat):
    ngroups, ny, nx = data.shape
    nreads = pattern.shape[1]
    for y in numba.prange(ny):
        unlin = np.empty(nreads, dtype=np.float64)
        for x in range(nx):
            n_ok = 0
            for g in range(ngroups):
                if (gdq[g, y, x] & sat) == 0:
                    n_ok += 1
            # the last unsaturated group is treated as saturated; at least two groups are used
            n_ok -= 1
            if n_ok < 2:
                n_ok = 2
            last = n_ok - 1
            bx = benign[y, x]
            ibx = ibenign[y, x]
            d0 = data[0, y, x]
            first = d0 if gdq[0, y, x] & sat else _poly32(d0, coeffs, bx, y, x)
            dl = data[last, y, x]
            final = dl if gdq[last, y, x] & sat else _poly32(dl, coeffs, bx, y, x)
            rate = np.float64(final - first) / (mean_read[last] - mean_read[0])  # per read
            for g in range(ngroups):
                if gdq[g, y, x] & sat:
                    continue
                total = 0.0
                for k in range(nreads):
                    lin = np.float64(first) + rate * (np.float64(pattern[g, k]) - mean_read[0])
                    u = _poly64(lin, icoeffs, ibx, y, x)
                    unlin[k] = u
                    total = u if k == 0 else total + u
                offset = np.float64(data[g, y, x]) - total / nreads
                total = 0.0
                for k in range(nreads):
                    c = _poly64(unlin[k] + offset, coeffs, bx, y, x)
                    total = c if k == 0 else total + c
                data[g, y, x] = np.float32(total / nreads)


def correct_linearity(data, groupdq, pixeldq, coeffs, lin_dq, zeroframe=None, inv_coeffs=None,
                      nframes=1, has_read_times=False, cache=None):
    """Apply the linearity correction in place.

    data: float32 (nints, ngroups, ny, nx), corrected except in SAT groups; groupdq: uint8, not
    modified; pixeldq: uint32 (ny, nx), updated as in :func:`prepare_coefficients`;
    coeffs: float32 (ncoeffs, ny, nx); lin_dq: uint32 (ny, nx); zeroframe: float32
    (nints, ny, nx) or None, corrected with the plain polynomial, zeros kept at 0;
    inv_coeffs: float32 (ncoeffs_inv, ny, nx) or None (the INV_COEFFS extension);
    nframes: science NFRAMES; has_read_times: whether the exposure carries explicit read times;
    cache: a dict kept with the reference between calls (a pipeline correcting one integration
    at a time), where the arrays prepared from the coefficients are kept, or None.

    Returns True when the read-level path was used (see :func:`use_read_level`). The inverse
    coefficients get the same identity/NO_LIN_CORR treatment as the forward ones. With fewer
    than two groups the read-level path is not defined (the official code fails with an
    IndexError) and the group-by-group polynomial is used instead.
    """
    nints, ngroups, ny, nx = data.shape
    cache = {} if cache is None else cache
    coeffs, benign = _prepared(cache, "forward", coeffs, lin_dq, pixeldq, (ny, nx))
    read_level = use_read_level(inv_coeffs is not None, nframes, has_read_times)
    if read_level:
        icoeffs, ibenign = _prepared(cache, "inverse", inv_coeffs, lin_dq, pixeldq, (ny, nx))
        if ngroups < 2:
            read_level = False
    sat = np.uint8(_SAT)
    if read_level:
        pattern = np.array(make_read_pattern(ngroups, int(nframes)), dtype=np.int64)
        mean_read = np.array([np.mean(reads) for reads in pattern.tolist()], dtype=np.float64)
        for integ in range(nints):
            _correct_reads(data[integ], groupdq[integ], coeffs, benign, icoeffs, ibenign,
                           pattern, mean_read, sat)
    else:
        for integ in range(nints):
            _correct_groups(data[integ], groupdq[integ], coeffs, benign, sat)
    if zeroframe is not None:
        # the zero frame goes through the group kernel as a one-group ramp; its zeros (bad
        # values) are kept as 0.0
        for integ in range(zeroframe.shape[0]):
            zplane = zeroframe[integ]
            zero = (zplane == 0.0)[None]
            _correct_groups(zplane[None], zero.view(np.uint8) * sat, coeffs, benign, sat)
            zplane[zero[0]] = 0.0
    return read_level


def _prepared(cache, key, coeffs, lin_dq, pixeldq, shape):
    """float32 ``coeffs`` and their identity pixels, from ``cache`` or made and put there; the
    PIXELDQ flags are OR-ed into ``pixeldq`` either way."""
    if key not in cache:
        coeffs = np.ascontiguousarray(coeffs, dtype=np.float32)
        if coeffs.shape[1:] != shape:
            which = "linearity" if key == "forward" else "inverse"
            raise ReferenceFileError(
                f"{which} coefficients shape {coeffs.shape} does not match {shape}")
        cache[key] = (coeffs,) + identity_pixels(coeffs, lin_dq)
    coeffs, benign, flags = cache[key]
    pixeldq |= flags
    return coeffs, benign


def do_correction(output_model, lin_model):
    """The official module-level interface: what ``LinearityStep`` does to the RampModel
    ``output_model`` with ``lin_model`` (a LinearityModel) as its reference, in place; returns
    the model."""
    from .linearity_step import LinearityStep

    return LinearityStep(override_linearity=lin_model).process(output_model)
