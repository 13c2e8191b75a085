"""dark_current: resample the DARK reference to the science readout and subtract it
(spec §2.4, §4.9), matching ``stcal.dark_current.dark_sub`` as jwst 3.0.0 calls it (NIR: 3-D
darks).

The dark is never copied as a whole: extension planes are computed on the fly, NaNs count as
0, and for each science group only the dark planes that group needs are averaged into a 2-D
buffer, which is then subtracted from every integration. ZEROFRAME is not dark-subtracted.

Arithmetic follows the official code. When the dark has to be extended, the official code
builds the extension in float64 (an int64 ramp times a float32 slope), which turns the whole
dark into float64; the subtraction (and any averaging) is then done in float64 before rounding
to float32. Otherwise a frame average is a float32 sum divided by the count, and subtraction is
float32.
"""
from typing import NamedTuple

import numba
import numpy as np

from ramp2slope.errors import ReferenceFileError

__all__ = [
    "DarkPlan", "plan_dark", "subtract_dark", "dark_used", "average_dark_current_array",
]


class DarkPlan(NamedTuple):
    """How the dark reference maps onto the science groups.

    skip: the step must be SKIPPED (the dark has NFRAMES or GROUPGAP larger than the science);
    n_extend: number of planes to append to the dark by linear extrapolation;
    direct: the dark's NFRAMES and GROUPGAP equal the science ones, so dark plane g is
        subtracted from group g as it is;
    starts: for each science group, the dark plane subtracted from it (direct: ``g``) or the
        first plane averaged into it (``g*(Ns+Gs)``);
    nframes: planes per group (science NFRAMES);
    reason: a sentence for the log.
    """

    skip: bool
    n_extend: int
    direct: bool
    starts: tuple
    nframes: int
    reason: str


def plan_dark(sci_ngroups, sci_nframes, sci_groupgap, dark_nplanes, dark_nframes, dark_groupgap):
    """Work out extension, skip rule and plane selection (spec §2.4 steps 1, 2 and 4).

    ``dark_nplanes`` is the number of planes in the dark's SCI array (its shape, not the
    NGROUPS keyword); ``dark_nframes``/``dark_groupgap`` are the dark's NFRAMES/GROUPGAP keywords.
    """
    ng, ns, gs = int(sci_ngroups), int(sci_nframes), int(sci_groupgap)
    nm, nd, gd = int(dark_nplanes), int(dark_nframes), int(dark_groupgap)
    sci_frames = ng * ns + (ng - 1) * gs
    dark_frames = nm * nd + (nm - 1) * gd
    n_extend = 0
    if sci_frames > dark_frames:
        # ceil((frames missing + Gd) / (Nd + Gd)) planes, as the official code computes it
        n_extend = -(-(sci_frames - dark_frames + gd) // (nd + gd))
    direct = ns == nd and gs == gd
    # the dark plane subtracted from (direct) or first averaged into (otherwise) each group
    starts = tuple(range(ng)) if direct else tuple(g * (ns + gs) for g in range(ng))
    if nd > ns or gd > gs:
        return DarkPlan(True, n_extend, False, starts, ns,
                        f"dark NFRAMES={nd}/GROUPGAP={gd} exceed the science "
                        f"NFRAMES={ns}/GROUPGAP={gs}; dark current is not subtracted")
    if direct:
        reason = "dark readout matches the science readout; subtracting dark planes directly"
    else:
        reason = f"averaging dark planes to NFRAMES={ns}, GROUPGAP={gs}"
    if n_extend:
        reason += f"; dark extrapolated by {n_extend} planes"
    return DarkPlan(False, n_extend, direct, starts, ns, reason)


@numba.njit(cache=True)
def _plane_value(dark, p, y, x):
    """Dark plane ``p`` at (y, x) as the official (possibly extended) array holds it, NaN -> 0.
    Returns float64; without extension the value is a float32 one."""
    nm = dark.shape[0]
    if p < nm:
        v = np.float64(dark[p, y, x])
    else:
        slope = dark[nm - 1, y, x] - dark[nm - 2, y, x]  # float32
        v = np.float64(p - nm + 1) * np.float64(slope) + np.float64(dark[nm - 1, y, x])
    if np.isnan(v):
        v = 0.0
    return v


@numba.njit(parallel=True, cache=True)
def _group_dark(dark, start, nframes, nplanes, extended, direct, out64, out32):
    """Fill the dark used for one science group.

    direct: out64 = plane ``start`` (float64). Otherwise out32 = float32 mean of planes
    [start, start+nframes) clipped to the ``nplanes`` available (NaN if none), averaged in
    float64 when the dark is extended and in float32 otherwise."""
    ny, nx = dark.shape[1], dark.shape[2]
    end = min(start + nframes, nplanes)
    count = end - start
    for y in numba.prange(ny):
        for x in range(nx):
            if direct:
                out64[y, x] = _plane_value(dark, start, y, x)
            elif count <= 0:
                out32[y, x] = np.float32(np.nan)
            elif nframes == 1:
                out32[y, x] = np.float32(_plane_value(dark, start, y, x))
            elif extended:
                s = _plane_value(dark, start, y, x)
                for p in range(start + 1, end):
                    s = s + _plane_value(dark, p, y, x)
                out32[y, x] = np.float32(s / count)
            else:
                s32 = np.float32(_plane_value(dark, start, y, x))
                for p in range(start + 1, end):
                    s32 = s32 + np.float32(_plane_value(dark, p, y, x))
                out32[y, x] = np.float32(np.float64(s32) / count)


@numba.njit(parallel=True, cache=True)
def _subtract64(plane, dark64):
    ny, nx = plane.shape
    for y in numba.prange(ny):
        for x in range(nx):
            plane[y, x] = np.float32(np.float64(plane[y, x]) - dark64[y, x])


@numba.njit(parallel=True, cache=True)
def _subtract32(plane, dark32):
    ny, nx = plane.shape
    for y in numba.prange(ny):
        for x in range(nx):
            plane[y, x] = plane[y, x] - dark32[y, x]


def _native(dark):
    """The dark as a native float32 array: no copy when it already is one (the normal case)."""
    return np.asarray(dark, dtype=np.float32)


def _check(dark, ny, nx):
    if dark.ndim != 3:
        raise ReferenceFileError(f"the DARK reference SCI array must be 3-D, got shape {dark.shape}")
    if dark.shape[1:] != (ny, nx):
        raise ReferenceFileError(
            f"the DARK reference has {dark.shape[1:]} pixels but the science data have {(ny, nx)}")


def _check_planes(plan, nplanes, dark):
    if plan.n_extend and dark.shape[0] < 2:
        raise ReferenceFileError("the DARK reference has a single plane and cannot be extrapolated")
    if plan.nframes == 1 and plan.starts and plan.starts[-1] >= nplanes:
        raise ReferenceFileError(
            f"the DARK reference has too few planes ({nplanes}) for the science readout")


def _for_each_group(dark, plan, ny, nx, callback):
    nplanes = dark.shape[0] + plan.n_extend
    extended = plan.n_extend > 0
    out64 = np.empty((ny, nx), dtype=np.float64) if plan.direct else np.empty((1, 1), np.float64)
    out32 = np.empty((1, 1), np.float32) if plan.direct else np.empty((ny, nx), dtype=np.float32)
    for g, start in enumerate(plan.starts):
        _group_dark(dark, start, plan.nframes, nplanes, extended, plan.direct, out64, out32)
        callback(g, out64 if plan.direct else out32)


def subtract_dark(data, pixeldq, dark, dark_dq, nframes, groupgap, dark_nframes, dark_groupgap):
    """Subtract the dark in place; returns ``(status, plan)`` with status 'COMPLETE' or 'SKIPPED'.

    data: float32 (nints, ngroups, ny, nx); pixeldq: uint32 (ny, nx), ``|= dark_dq`` unless
    skipped; dark: float32 (nplanes, ny, nx), the DARK SCI array (not modified, not cut out;
    anything but native float32 is converted, which costs a copy);
    dark_dq: uint32 (ny, nx); nframes/groupgap: science NFRAMES/GROUPGAP; dark_nframes,
    dark_groupgap: the dark's NFRAMES/GROUPGAP keywords. When SKIPPED nothing is changed.
    """
    nints, ngroups, ny, nx = data.shape
    dark = _native(dark)
    _check(dark, ny, nx)
    plan = plan_dark(ngroups, nframes, groupgap, dark.shape[0], dark_nframes, dark_groupgap)
    if plan.skip:
        return "SKIPPED", plan
    _check_planes(plan, dark.shape[0] + plan.n_extend, dark)
    pixeldq |= np.asarray(dark_dq, dtype=np.uint32)

    def subtract(g, dark_plane):
        kernel = _subtract64 if plan.direct else _subtract32
        for integ in range(nints):
            kernel(data[integ, g], dark_plane)

    _for_each_group(dark, plan, ny, nx, subtract)
    return "COMPLETE", plan


def dark_used(dark, ngroups, nframes, groupgap, dark_nframes, dark_groupgap, dark_ngroups=None):
    """The dark that :func:`subtract_dark` subtracts, for ``dark_output``; None when skipped.

    Returns ``(array, nframes, ngroups, groupgap)``: a float32 array and the NFRAMES, NGROUPS,
    GROUPGAP values the official step writes with it.

    * Frame averaging needed: the averaged dark (ngroups, ny, nx), with the science values.
    * Direct case: the whole reference dark with NaN -> 0, extended when needed, with the
      dark's own NFRAMES/GROUPGAP and NGROUPS = ``dark_ngroups`` (the keyword; defaults to the
      number of planes) plus the planes added. Without extension this is ``dark`` itself,
      with its NaNs replaced by 0 IN PLACE (no copy is made); with extension a new array.
    """
    dark = _native(dark)
    ny, nx = dark.shape[1:]
    plan = plan_dark(ngroups, nframes, groupgap, dark.shape[0], dark_nframes, dark_groupgap)
    if plan.skip:
        return None
    _check_planes(plan, dark.shape[0] + plan.n_extend, dark)
    if plan.direct:
        ngroups_kw = (dark.shape[0] if dark_ngroups is None else int(dark_ngroups)) + plan.n_extend
        if plan.n_extend == 0:
            np.nan_to_num(dark, copy=False, nan=0.0, posinf=np.inf, neginf=-np.inf)
            return dark, int(dark_nframes), ngroups_kw, int(dark_groupgap)
        nplanes = dark.shape[0] + plan.n_extend
        out = np.empty((nplanes, ny, nx), dtype=np.float32)
        full = DarkPlan(False, plan.n_extend, True, tuple(range(nplanes)), 1, "")

        def store(g, plane):
            out[g] = plane

        _for_each_group(dark, full, ny, nx, store)
        return out, int(dark_nframes), ngroups_kw, int(dark_groupgap)
    out = np.empty((int(ngroups), ny, nx), dtype=np.float32)

    def keep(g, plane):
        out[g] = plane

    _for_each_group(dark, plan, ny, nx, keep)
    return out, int(nframes), int(ngroups), int(groupgap)


def average_dark_current_array(shape, param=None, ref_array=None, ref_scalar=None,
                               current_shape=None):
    """Choose the average dark current (e-/s) stored with the ramp (spec §4.9).

    Returns ``(array_or_None, source)``: a float32 array of ``shape`` (ny, nx), or None when
    the official step leaves the model's array unchanged; ``source`` is one of 'parameter',
    'reference array', 'reference keyword', 'default', 'shape mismatch'.

    Priority: the step parameter (a constant); else the reference 2-D AVDRKCUR array when it
    exists and its sum is not 0 (a NaN sum counts as non-zero); else the reference AVDRKCUR
    keyword; else 0. For the reference array the official step compares its shape with the
    *current* ``average_dark_current`` of the science model, ``current_shape`` (None when
    the model has none, which is the usual case for a raw exposure): if they differ it only
    warns and assigns nothing (source 'shape mismatch').
    """
    shape = tuple(shape)
    if param is not None:
        return np.zeros(shape, dtype=np.float32) + np.float32(param), "parameter"
    if ref_array is None or np.sum(ref_array) == 0.0:
        scalar = 0.0 if ref_scalar is None else ref_scalar
        return (np.zeros(shape, dtype=np.float32) + np.float32(scalar),
                "default" if ref_scalar is None else "reference keyword")
    cur = () if current_shape is None else tuple(current_shape)
    if cur != tuple(np.shape(ref_array)):
        return None, "shape mismatch"
    return np.asarray(ref_array, dtype=np.float32), "reference array"
