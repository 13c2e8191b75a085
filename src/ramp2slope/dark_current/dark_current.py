"""dark_current: resample the DARK reference to the science readout and subtract it
(spec §2.4, §4.9), matching ``stcal.dark_current.dark_sub`` as jwst 3.0.0 calls it (NIR: 3-D
darks; MIRI: 4-D darks, one dark ramp per integration).

MIRI: science integration ``a`` (0-based in the file) uses dark integration ``a``, or the
dark's last one beyond its integrations or whenever the file is a later segment (INTSTART not
1). Each dark integration is resampled like a 3-D dark. The DQ flagged into PIXELDQ is the OR
over the dark's integrations of their DQ planes ``[i, 0]``.

The dark is never held as a whole: for each science group only the dark planes that group
needs are read, one at a time into one buffer (from the file, through
``references.DarkPlanes``), and accumulated into a 2-D buffer (extension planes are computed on
the fly, NaNs count as 0), which is then subtracted from every integration. When the caller
keeps the dark for several calls (one per integration), the per-group darks are computed once
and reused. ZEROFRAME is not dark-subtracted.

Arithmetic follows the official code. When the dark has to be extended, the official code
builds the extension in float64 (an int64 ramp times a float32 slope), which turns the whole
dark into float64; the subtraction (and any averaging) is then done in float64 before rounding
to float32 (a real, float32 plane subtracted in float64 rounds to the same float32 result as a
float32 subtraction: float64 has more than twice float32's precision). Otherwise a frame average
is a float32 sum, in plane order, divided by the count, and subtraction is float32.
"""
from typing import NamedTuple

import numba
import numpy as np

from ramp2slope.errors import ReferenceFileError

__all__ = [
    "DarkPlan", "plan_dark", "subtract_dark", "dark_used", "average_dark_current_array",
    "dark_integration", "collapse_dark_dq",
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


@numba.njit(parallel=True, cache=True)
def _accumulate(plane, last, prev, k, use_ext, wide, first, acc64, acc32):
    """Add one dark plane (NaN -> 0) to the group's accumulator.

    The plane is ``plane`` (float32), or with ``use_ext`` the extrapolated plane ``k`` steps
    after the last one, ``k * (last - prev) + last`` with a float32 slope and a float64 result
    (the official extension). ``wide``: accumulate in float64 (``acc64``), else in float32
    (``acc32``, the float64 value rounded first); ``first``: assign instead of adding."""
    ny, nx = acc64.shape if wide else acc32.shape
    kk = np.float64(k)
    for y in numba.prange(ny):
        for x in range(nx):
            if use_ext:
                slope = last[y, x] - prev[y, x]  # float32
                v = kk * np.float64(slope) + np.float64(last[y, x])
            else:
                v = np.float64(plane[y, x])
            if np.isnan(v):
                v = 0.0
            if wide:
                if first:
                    acc64[y, x] = v
                else:
                    acc64[y, x] = acc64[y, x] + v
            else:
                if first:
                    acc32[y, x] = np.float32(v)
                else:
                    acc32[y, x] = acc32[y, x] + np.float32(v)


@numba.njit(parallel=True, cache=True)
def _mean_from32(acc32, count):
    """acc32 = float32(float64(acc32) / count): the float32 sum's mean."""
    ny, nx = acc32.shape
    for y in numba.prange(ny):
        for x in range(nx):
            acc32[y, x] = np.float32(np.float64(acc32[y, x]) / count)


@numba.njit(parallel=True, cache=True)
def _mean_from64(acc64, count, acc32):
    ny, nx = acc32.shape
    for y in numba.prange(ny):
        for x in range(nx):
            acc32[y, x] = np.float32(acc64[y, x] / count)


# The subtractions take group g of integrations start .. stop - 1 of the 4-D ramp, in one
# parallel section: a section costs about 50 microseconds to start on the test machine
# (numba's threads sleep between sections), more than the work on a small frame. (The ramp
# rather than a view of that group: a view of several integrations is strided and one of a
# single integration contiguous, two array types the kernel had to be loaded for.)
@numba.njit(parallel=True, cache=True)
def _subtract64(data, g, start, stop, dark64):
    ny, nx = data.shape[2:]
    for row in numba.prange((stop - start) * ny):
        j, y = start + row // ny, row % ny
        for x in range(nx):
            data[j, g, y, x] = np.float32(np.float64(data[j, g, y, x]) - dark64[y, x])


@numba.njit(parallel=True, cache=True)
def _subtract32(data, g, start, stop, dark32):
    ny, nx = data.shape[2:]
    for row in numba.prange((stop - start) * ny):
        j, y = start + row // ny, row % ny
        for x in range(nx):
            data[j, g, y, x] = data[j, g, y, x] - dark32[y, x]


def _plane_reader(dark):
    """``read(p, buffer)``: plane ``p`` of ``dark`` as a native float32 2-D array, either
    ``buffer`` filled with it or (for a native in-memory array) the plane itself, not a copy.

    ``dark`` is an array or an object with ``read_plane(p, out)`` (a reference file read plane
    by plane); it is never converted whole."""
    read_plane = getattr(dark, "read_plane", None)
    if read_plane is not None:
        return read_plane

    def read(p, out):
        plane = dark[p]
        if plane.dtype == np.float32 and plane.dtype.isnative and plane.flags.c_contiguous:
            return plane
        out[...] = plane
        return out

    return read


def _check(dark, ny, nx):
    if dark.ndim not in (3, 4):
        raise ReferenceFileError(f"the DARK reference SCI array must be 3-D (or 4-D for MIRI), "
                                 f"got shape {dark.shape}")
    if tuple(dark.shape[-2:]) != (ny, nx):
        raise ReferenceFileError(
            f"the DARK reference has {tuple(dark.shape[-2:])} pixels but the science data have "
            f"{(ny, nx)}")


def _check_planes(plan, nplanes, dark):
    if plan.n_extend and dark.shape[0] < 2:
        raise ReferenceFileError("the DARK reference has a single plane and cannot be extrapolated")
    if plan.nframes == 1 and plan.starts and plan.starts[-1] >= nplanes:
        raise ReferenceFileError(
            f"the DARK reference has too few planes ({nplanes}) for the science readout")


def _group_darks(dark, plan, ny, nx, kept=False):
    """Yield ``(g, array)``: the dark subtracted from science group ``g``, float32 or float64
    (float64 only for a direct subtraction of an extrapolated plane, which the official code
    subtracts in float64). The arrays are work buffers, reused for the next group, unless
    ``kept``: then each is an array of its own (a plane used as it is in the file is read
    straight into it, its NaNs zeroed in place).

    Planes are read one at a time into a single buffer and accumulated in file order, which
    is the order of the official float32 sum; the two last planes are kept when the dark has
    to be extrapolated."""
    nm = dark.shape[0]
    nplanes = nm + plan.n_extend
    extended = plan.n_extend > 0
    read = _plane_reader(dark)
    buffer = np.empty((ny, nx), np.float32)
    none32 = np.empty((1, 1), np.float32)
    none64 = np.empty((1, 1), np.float64)
    last = prev = none32
    if extended and any(min(s + (1 if plan.direct else plan.nframes), nplanes) > nm
                        for s in plan.starts):
        last = np.array(read(nm - 1, buffer), dtype=np.float32, copy=True)
        prev = np.array(read(nm - 2, buffer), dtype=np.float32, copy=True)
    acc32 = np.empty((ny, nx), np.float32)
    acc64 = None
    for g, start in enumerate(plan.starts):
        if kept and g:
            acc32, acc64 = np.empty((ny, nx), np.float32), None
        if plan.direct:
            if start < nm:  # float32 plane: subtracting it in float32 or float64 is the same
                plane = read(start, acc32 if kept else buffer)
                _accumulate(plane, none32, none32, 0, False, False, True, none64, acc32)
                yield g, acc32
            else:
                if acc64 is None:
                    acc64 = np.empty((ny, nx), np.float64)
                _accumulate(none32, last, prev, start - nm + 1, True, True, True, acc64, none32)
                yield g, acc64
            continue
        end = min(start + plan.nframes, nplanes)
        count = end - start
        if count <= 0:
            acc32.fill(np.nan)
            yield g, acc32
            continue
        wide = extended and plan.nframes > 1
        if wide and acc64 is None:
            acc64 = np.empty((ny, nx), np.float64)
        for p in range(start, end):
            ext = p >= nm
            plane = none32 if ext else read(p, buffer)
            _accumulate(plane, last, prev, p - nm + 1, ext, wide, p == start,
                        acc64 if wide else none64, none32 if wide else acc32)
        if plan.nframes == 1:
            pass  # the plane's value, rounded to float32
        elif wide:
            _mean_from64(acc64, count, acc32)
        else:
            _mean_from32(acc32, count)
        yield g, acc32


def dark_integration(science_integration, dark_nints, integration_start=None):
    """The dark integration stcal subtracts from science integration ``science_integration``
    (0-based within the file) of a MIRI exposure: the same one while the dark has it, else the
    last; always the last for a later segment (``integration_start`` not None or 1)."""
    first_segment = integration_start is None or int(integration_start) == 1
    if first_segment and science_integration < dark_nints:
        return int(science_integration)
    return int(dark_nints) - 1


def collapse_dark_dq(dark_dq, dark_nints):
    """A MIRI dark's 4-D DQ as the 2-D flags stcal ORs into PIXELDQ: the OR of ``[i, 0]`` over
    the ``dark_nints`` integrations of the dark SCI. A 2-D array is returned as it is."""
    dq = np.asarray(dark_dq)
    if dq.ndim == 2:
        return dq.astype(np.uint32, copy=False)
    if dq.ndim != 4 or dq.shape[0] < dark_nints:
        raise ReferenceFileError(f"the DARK reference DQ must be 4-D with at least {dark_nints} "
                                 f"integrations, got shape {dq.shape}")
    out = np.array(dq[0, 0], dtype=np.uint32)
    for i in range(1, dark_nints):
        out |= dq[i, 0]
    return out


def _dark_of_integration(dark, d):
    """Integration ``d`` of a 4-D dark, as a 3-D dark (a view, or a plane reader)."""
    part = getattr(dark, "integration", None)
    return part(d) if part is not None else dark[d]


def _subtract(data, g, dark_plane, start=0, stop=None):
    """Subtract ``dark_plane`` (ny, nx) from group ``g`` of integrations ``start .. stop - 1``
    (default: all) of ``data`` (nints, ngroups, ny, nx), in place."""
    stop = data.shape[0] if stop is None else stop
    if dark_plane.dtype == np.float64:
        _subtract64(data, g, start, stop, dark_plane)
    else:
        _subtract32(data, g, start, stop, dark_plane)


def subtract_dark(data, pixeldq, dark, dark_dq, nframes, groupgap, dark_nframes, dark_groupgap,
                  reuse=None, first_integration=0, integration_start=None, exposure_nints=None):
    """Subtract the dark in place; returns ``(status, plan)`` with status 'COMPLETE' or 'SKIPPED'.

    data: float32 (nints, ngroups, ny, nx); pixeldq: uint32 (ny, nx), ``|= dark_dq`` unless
    skipped; dark: the DARK SCI array (nplanes, ny, nx), not modified and not cut out: a
    float32 array, or an object with ``shape`` and ``read_plane(p, out)`` reading one plane
    (:class:`ramp2slope.references.loaders.DarkPlanes`); only the planes the science groups
    use are read, one at a time (a non-native array is converted plane by plane);
    dark_dq: uint32 (ny, nx); nframes/groupgap: science NFRAMES/GROUPGAP; dark_nframes,
    dark_groupgap: the dark's NFRAMES/GROUPGAP keywords. When SKIPPED nothing is changed.

    reuse: None, or a dict kept with the dark between calls (one per integration of an
    exposure): the dark of each group is then computed once, stored there, and reused.

    MIRI (a 4-D ``dark``, (dark_nints, nplanes, ny, nx), or a 4-D plane reader with
    ``integration(i)``): ``dark_dq`` is 2-D (already collapsed) or the 4-D DQ
    (:func:`collapse_dark_dq`); ``data`` holds the file's integrations from
    ``first_integration`` on (0-based), each using the dark integration of
    :func:`dark_integration` (``integration_start``: INTSTART). ``exposure_nints``: the number
    of integrations in the file (default: ``first_integration`` + those in ``data``); stcal
    averages only the first ``min(dark_nints, exposure_nints)`` dark integrations when frames
    must be averaged and subtracts zeros where it uses another (a later segment with a dark of
    more integrations than the file).
    """
    nints, ngroups, ny, nx = data.shape
    _check(dark, ny, nx)
    if dark.ndim == 4:
        return _subtract_dark_4d(data, pixeldq, dark, dark_dq, nframes, groupgap, dark_nframes,
                                 dark_groupgap, reuse, first_integration, integration_start,
                                 exposure_nints)
    plan = plan_dark(ngroups, nframes, groupgap, dark.shape[0], dark_nframes, dark_groupgap)
    if plan.skip:
        return "SKIPPED", plan
    _check_planes(plan, dark.shape[0] + plan.n_extend, dark)
    pixeldq |= np.asarray(dark_dq, dtype=np.uint32)
    if reuse is not None:
        key = ("group darks", plan, ny, nx)
        stored = reuse.get(key)
        if stored is None:
            stored = [plane for _, plane in _group_darks(dark, plan, ny, nx, kept=True)]
            reuse[key] = stored
        for g, dark_plane in enumerate(stored):
            _subtract(data, g, dark_plane)
        return "COMPLETE", plan
    for g, dark_plane in _group_darks(dark, plan, ny, nx):
        _subtract(data, g, dark_plane)
    return "COMPLETE", plan


def _subtract_dark_4d(data, pixeldq, dark, dark_dq, nframes, groupgap, dark_nframes,
                      dark_groupgap, reuse, first_integration, integration_start, exposure_nints):
    nints, ngroups, ny, nx = data.shape
    dark_nints = dark.shape[0]
    plan = plan_dark(ngroups, nframes, groupgap, dark.shape[1], dark_nframes, dark_groupgap)
    if plan.skip:
        return "SKIPPED", plan
    _check_planes(plan, dark.shape[1] + plan.n_extend, dark[0] if isinstance(dark, np.ndarray)
                  else _dark_of_integration(dark, 0))
    if exposure_nints is None:
        exposure_nints = int(first_integration) + nints
    pixeldq |= collapse_dark_dq(dark_dq, dark_nints)
    local = {} if reuse is None else reuse
    j = 0
    while j < nints:
        d = dark_integration(int(first_integration) + j, dark_nints, integration_start)
        # the run of integrations j .. end - 1 that use the same dark integration
        end = j + 1
        while end < nints and dark_integration(int(first_integration) + end, dark_nints,
                                               integration_start) == d:
            end += 1
        if not plan.direct and d >= exposure_nints:
            j = end
            continue  # stcal's averaged dark of these integrations stays 0
        key = ("group darks", plan, ny, nx, d)
        stored = local.get(key)
        if stored is None:
            stored = [plane for _, plane in
                      _group_darks(_dark_of_integration(dark, d), plan, ny, nx, kept=True)]
            local[key] = stored
        for g, dark_plane in enumerate(stored):
            _subtract(data, g, dark_plane, j, end)
        j = end
    return "COMPLETE", plan


def dark_used(dark, ngroups, nframes, groupgap, dark_nframes, dark_groupgap, dark_ngroups=None,
              exposure_nints=None):
    """The dark that :func:`subtract_dark` subtracts, for ``dark_output``; None when skipped.

    Returns ``(array, nframes, ngroups, groupgap)``: a float32 array and the NFRAMES, NGROUPS,
    GROUPGAP values the official step writes with it.

    * Frame averaging needed: the averaged dark (ngroups, ny, nx), with the science values.
    * Direct case: the whole reference dark with NaN -> 0, extended when needed, with the
      dark's own NFRAMES/GROUPGAP and NGROUPS = ``dark_ngroups`` (the keyword; defaults to the
      number of planes) plus the planes added. Without extension, for a native float32 array
      this is ``dark`` itself with its NaNs replaced by 0 IN PLACE (no copy is made); for a
      plane reader (or another dtype) a new array; with extension always a new array.

    A 4-D (MIRI) dark gives a 4-D array, one ramp per dark integration: in the averaged case
    only the first ``min(dark_nints, exposure_nints)`` are computed, the others are 0 (stcal's
    DarkMIRIModel); ``exposure_nints`` (the file's integrations) must then be given.
    """
    if dark.ndim == 4:
        return _dark_used_4d(dark, ngroups, nframes, groupgap, dark_nframes, dark_groupgap,
                             dark_ngroups, exposure_nints)
    ny, nx = dark.shape[1:]
    plan = plan_dark(ngroups, nframes, groupgap, dark.shape[0], dark_nframes, dark_groupgap)
    if plan.skip:
        return None
    _check_planes(plan, dark.shape[0] + plan.n_extend, dark)
    if plan.direct:
        ngroups_kw = (dark.shape[0] if dark_ngroups is None else int(dark_ngroups)) + plan.n_extend
        if plan.n_extend == 0:
            full = dark.read_all() if hasattr(dark, "read_all") else np.asarray(dark, np.float32)
            np.nan_to_num(full, copy=False, nan=0.0, posinf=np.inf, neginf=-np.inf)
            return full, int(dark_nframes), ngroups_kw, int(dark_groupgap)
        nplanes = dark.shape[0] + plan.n_extend
        out = np.empty((nplanes, ny, nx), dtype=np.float32)
        every = DarkPlan(False, plan.n_extend, True, tuple(range(nplanes)), 1, "")
        for g, plane in _group_darks(dark, every, ny, nx):
            out[g] = plane
        return out, int(dark_nframes), ngroups_kw, int(dark_groupgap)
    out = np.empty((int(ngroups), ny, nx), dtype=np.float32)
    for g, plane in _group_darks(dark, plan, ny, nx):
        out[g] = plane
    return out, int(nframes), int(ngroups), int(groupgap)


def _dark_used_4d(dark, ngroups, nframes, groupgap, dark_nframes, dark_groupgap, dark_ngroups,
                  exposure_nints):
    dark_nints, nplanes, ny, nx = dark.shape
    plan = plan_dark(ngroups, nframes, groupgap, nplanes, dark_nframes, dark_groupgap)
    if plan.skip:
        return None
    parts = [dark[d] if isinstance(dark, np.ndarray) else _dark_of_integration(dark, d)
             for d in range(dark_nints)]
    if plan.direct:
        out = None
        for d, part in enumerate(parts):
            used = dark_used(part, ngroups, nframes, groupgap, dark_nframes, dark_groupgap,
                             dark_ngroups=dark_ngroups)
            if out is None:
                out = np.empty((dark_nints,) + used[0].shape, np.float32)
            out[d] = used[0]
        return (out,) + tuple(used[1:])
    if exposure_nints is None:
        raise ValueError("dark_used needs exposure_nints for a 4-D dark")
    out = np.zeros((dark_nints, int(ngroups), ny, nx), dtype=np.float32)
    for d in range(min(dark_nints, int(exposure_nints))):
        out[d] = dark_used(parts[d], ngroups, nframes, groupgap, dark_nframes, dark_groupgap)[0]
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
