"""Large events ("snowballs") in near-infrared ramps: ``expand_large_events``.

For each integration and each group g >= 1 (in order, because the saturation grown in one
group changes what the next group sees):

1. Connected regions (8-connectivity) of JUMP_DET pixels whose filled area (holes included)
   is at least ``min_jump_area`` are described by an ellipse; so are the regions newly
   saturated in g (SAT in g but not in g-1) and in g+1 (SAT in g+1 but not in g), with
   ``min_sat_area``.
2. With ``sat_required_snowball``, a jump region is a snowball when its centroid lies within
   ``edge_size`` of the detector edge, or when the centroid of a newly saturated region lies
   inside its ellipse. Without it, every jump region is a snowball.
3. (``sat_required_snowball`` only) Each newly saturated region of g whose minor axis exceeds
   ``min_sat_radius_extend`` is grown by ``sat_expand`` on both axes (capped at
   ``max_extended_width``); the grown ellipse is *assigned* SATURATED (the DQ value becomes
   exactly SATURATED) in g and every later group of the integration. The ungrown ellipse is
   remembered, and after the integration has been processed JUMP_DET is OR-ed into groups
   1 … persist_groups-1 of the next integration there.
4. Each snowball's ellipse is enlarged (minor axis × expand_factor, major axis + (expand_factor
   - 1) × minor axis, both capped) and JUMP_DET is OR-ed into its non-saturated pixels of g.

The ellipse of a region is the one scikit-image's ``regionprops`` gives (as stcal uses it):
centroid, axis lengths 4·sqrt(eigenvalues of the inertia tensor) minus one, orientation from
the inertia tensor. It is computed here from the region's moments with numpy, performing the
same floating-point operations (einsum contractions, LAPACK ``eigvalsh``), because the
ellipses are rasterised with a strict ``< 1`` test and pixels lying exactly on an ellipse's
boundary depend on the last bit of the orientation. Rasterisation follows the pixel rule of
``skimage.draw.ellipse`` (bounding box from the rotated radii, then
((r cos a + c sin a)/R_r)² + ((r sin a - c cos a)/R_c)² < 1), with stcal's argument order
(the row radius comes from the major axis, the column radius from the minor axis).

Labelling uses ``scipy.ndimage.label``; per-region sums come from one numba pass over the
label image. Exact ellipses are computed only for the regions where they can matter.
"""
import math

import numpy as np
from numba import njit

from ..datamodels import dqflags

SAT = dqflags.group["SATURATED"]
JUMP = dqflags.group["JUMP_DET"]

_EIGHT = np.ones((3, 3), dtype=bool)
_ORDERS = np.arange(4, dtype=np.float64)
# Holes need a 4-connected ring of foreground around them; the smallest has 8 pixels, so a
# region with fewer pixels has filled area == area.
_MIN_AREA_WITH_HOLE = 8
_SCREEN_MARGIN = 1e-6


@njit(cache=True)
def _region_stats(labels, nlab):
    """Per label (index 0 unused): area, sums of row, col, row², col², row·col, and bbox."""
    area = np.zeros(nlab + 1, dtype=np.int64)
    s = np.zeros((nlab + 1, 5), dtype=np.float64)
    bbox = np.empty((nlab + 1, 4), dtype=np.int64)
    bbox[:, 0] = labels.shape[0]
    bbox[:, 1] = -1
    bbox[:, 2] = labels.shape[1]
    bbox[:, 3] = -1
    ny, nx = labels.shape
    for y in range(ny):
        for x in range(nx):
            lab = labels[y, x]
            if lab == 0:
                continue
            area[lab] += 1
            s[lab, 0] += y
            s[lab, 1] += x
            s[lab, 2] += y * y
            s[lab, 3] += x * x
            s[lab, 4] += y * x
            if y < bbox[lab, 0]:
                bbox[lab, 0] = y
            if y > bbox[lab, 1]:
                bbox[lab, 1] = y
            if x < bbox[lab, 2]:
                bbox[lab, 2] = x
            if x > bbox[lab, 3]:
                bbox[lab, 3] = x
    return area, s, bbox


class _Regions:
    """Connected regions of one binary plane that pass the filled-area threshold."""

    def __init__(self, mask, min_area):
        from scipy import ndimage  # imported here: only runs that look for snowballs need it

        self.labels, nlab = ndimage.label(mask, structure=_EIGHT, output=np.int32)
        area, sums, bbox = _region_stats(self.labels, nlab)
        ids = np.arange(1, nlab + 1)
        area = area[1:]
        keep = area >= min_area
        if min_area > _MIN_AREA_WITH_HOLE:
            for j in np.nonzero((~keep) & (area >= _MIN_AREA_WITH_HOLE))[0]:
                r0, r1, c0, c1 = bbox[j + 1]
                img = self.labels[r0:r1 + 1, c0:c1 + 1] == ids[j]
                if ndimage.binary_fill_holes(img, structure=_EIGHT).sum() >= min_area:
                    keep[j] = True
        self.ids = ids[keep]
        self.area = area[keep]
        sums = sums[1:][keep]
        self.bbox = bbox[1:][keep]
        n = self.area.astype(np.float64)
        # centroids exactly as a mean of integer coordinates
        self.cen_r = sums[:, 0] / n
        self.cen_c = sums[:, 1] / n
        # approximate second moments, used only to screen with a safety margin
        var_r = np.maximum(sums[:, 2] / n - self.cen_r ** 2, 0.0)
        var_c = np.maximum(sums[:, 3] / n - self.cen_c ** 2, 0.0)
        cov = sums[:, 4] / n - self.cen_r * self.cen_c
        half_diff = 0.5 * (var_r - var_c)
        root = np.sqrt(half_diff ** 2 + cov ** 2)
        mean = 0.5 * (var_r + var_c)
        self.approx_minor = 4.0 * np.sqrt(np.maximum(mean - root, 0.0))
        # any point inside the ellipse is within max(|semi-axes|) of the centroid
        self.reach = 2.0 * np.sqrt(var_r + var_c) + 0.5 + _SCREEN_MARGIN
        self._cache = {}

    def __len__(self):
        return len(self.ids)

    def ellipse(self, j):
        """((centroid col, centroid row), (minor - 1, major - 1), orientation in degrees)."""
        if j not in self._cache:
            self._cache[j] = _exact_ellipse(self.labels, int(self.ids[j]), self.bbox[j],
                                            float(self.cen_c[j]), float(self.cen_r[j]))
        return self._cache[j]


def _moments(calc, centre_r, centre_c):
    """Moment matrix m[p, q] = sum img * (r - centre_r)^p (c - centre_c)^q, p, q <= 3."""
    dr = np.arange(calc.shape[0], dtype=np.float64) * 1.0 - centre_r
    dc = np.arange(calc.shape[1], dtype=np.float64) * 1.0 - centre_c
    per_col = np.einsum(calc, [2, 1], dr[:, np.newaxis] ** _ORDERS, [2, 3], [3, 1],
                        optimize="greedy")
    return np.einsum(per_col, [0, 2], dc[:, np.newaxis] ** _ORDERS, [2, 3], [0, 3],
                     optimize="greedy")


def _exact_ellipse(labels, lab, bbox, cen_c, cen_r):
    r0, r1, c0, c1 = (int(v) for v in bbox)
    calc = (labels[r0:r1 + 1, c0:c1 + 1] == lab).astype(np.uint8).astype(np.float64)
    raw = _moments(calc, 0, 0)
    mu = _moments(calc, raw[1, 0] / raw[0, 0], raw[0, 1] / raw[0, 0])
    mu0 = mu[0, 0]
    second = np.array([mu[2, 0], mu[0, 2]])
    diag = (np.sum(second) - second) / mu0
    tensor = np.zeros((2, 2), dtype=np.float64)
    tensor[0, 0] = diag[0]
    tensor[1, 1] = diag[1]
    tensor[0, 1] = tensor[1, 0] = -mu[1, 1] / mu0
    eig = np.clip(np.linalg.eigvalsh(tensor), 0, None)
    major = 4 * math.sqrt(max(eig))
    minor = 4 * math.sqrt(min(eig))
    a, b, c = tensor[0, 0], tensor[0, 1], tensor[1, 1]
    if a - c == 0:
        orientation = math.pi / 4.0 if b < 0 else -math.pi / 4.0
    else:
        orientation = 0.5 * math.atan2(-2 * b, c - a)
    return ((cen_c, cen_r), (minor - 1, major - 1), np.degrees(orientation))


def _ellipse_pixels(shape, r, c, r_radius, c_radius, rotation):
    """Rows and columns of the pixels inside a rotated ellipse (skimage.draw.ellipse rule)."""
    rot = rotation % np.pi
    sin_b, cos_b = np.sin(rot), np.cos(rot)
    half = np.array([abs(r_radius * cos_b) + c_radius * sin_b,
                     r_radius * sin_b + abs(c_radius * cos_b)])
    centre = np.array([r, c])
    lo = np.maximum(np.ceil(centre - half).astype(int), 0)
    hi = np.minimum(np.floor(centre + half).astype(int), np.array(shape[:2]) - 1)
    local = centre - lo
    extent = hi - lo + 1
    rot = rot % np.pi
    sin_a, cos_a = np.sin(rot), np.cos(rot)
    radii = np.array([r_radius, c_radius])
    dr = np.arange(0, float(extent[0]))[:, np.newaxis] - local[0]
    dc = np.arange(0, float(extent[1]))[np.newaxis, :] - local[1]
    dist = ((dr * cos_a + dc * sin_a) / radii[0]) ** 2 + ((dr * sin_a - dc * cos_a) / radii[1]) ** 2
    rows, cols = np.nonzero(dist < 1)
    return rows + lo[0], cols + lo[1]


def _ellipse_patch(cen_c, cen_r, axis1, axis2, alpha, shape):
    """A filled ellipse (full axes axis1 along columns, axis2 along rows before rotation by
    alpha degrees) centred on the rounded centroid, as a boolean patch and its slices."""
    yc, xc = round(cen_c), round(cen_r)
    half1, half2 = round(axis1 / 2), round(axis2 / 2)
    pad = max(half1, half2) + 2
    c0, c1 = max(yc - pad, 0), min(yc + pad + 1, shape[1])
    r0, r1 = max(xc - pad, 0), min(xc + pad + 1, shape[0])
    patch = np.zeros((r1 - r0, c1 - c0), dtype=bool)
    if half1 != 0 and half2 != 0:
        rows, cols = _ellipse_pixels(patch.shape, xc - r0, yc - c0, half2, half1,
                                     np.radians(alpha))
        patch[rows, cols] = True
    return (slice(r0, r1), slice(c0, c1)), patch


def _point_in_ellipse(pc, pr, ellipse):
    """stcal's inside test of the point (col pc, row pc) for ellipse (see module docs)."""
    (ec, er), (ax0, ax1), deg = ellipse
    angle = np.radians(180 - deg)
    cos_a, sin_a = np.cos(angle), np.sin(angle)
    xc = pc - ec
    yc = pr - er
    xct = xc * cos_a - yc * sin_a
    yct = xc * sin_a + yc * cos_a
    if ax1 >= ax0:
        semi_major, semi_minor = ax1 * 0.5, ax0 * 0.5
    else:
        semi_major, semi_minor = ax0 * 0.5, ax1 * 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        rad = (xct ** 2 / semi_major ** 2) + (yct ** 2 / semi_minor ** 2)
    return bool(rad <= 1)


def _snowball_axes(ellipse, expand_factor, max_width):
    minor, major = ellipse[1]
    if major < minor:
        axis1 = minor + (expand_factor - 1.0) * major
        axis2 = major * expand_factor
    else:
        axis1 = minor * expand_factor
        axis2 = major + (expand_factor - 1.0) * minor
    axis1 = min(axis1, max_width)
    axis2 = min(axis2, max_width)
    return round(axis1 / 2) * 2, round(axis2 / 2) * 2


def _select_snowballs(jumps, sat_points, ny, edge_size):
    """Indices (in label order) of the jump regions that are snowballs: centroid within
    edge_size of the edge (stcal compares both coordinates with ny - edge_size), or one of
    sat_points (col, row) inside the region's ellipse. Like stcal, a region whose ellipse is
    identical to one already chosen is not chosen again unless it is at the edge."""
    low = edge_size
    high = max(0, ny - edge_size)
    near_edge = ((jumps.cen_c < low) | (jumps.cen_r < low)
                 | (jumps.cen_c > high) | (jumps.cen_r > high))
    candidate_points = {}
    if len(sat_points) and len(jumps):
        pts = np.asarray(sat_points, dtype=np.float64)
        d2 = ((jumps.cen_c[:, None] - pts[None, :, 0]) ** 2
              + (jumps.cen_r[:, None] - pts[None, :, 1]) ** 2)
        close = d2 <= jumps.reach[:, None] ** 2
        for j, p in zip(*np.nonzero(close & ~near_edge[:, None])):
            candidate_points.setdefault(int(j), []).append(int(p))
    chosen = []
    seen = set()
    for j in range(len(jumps)):
        if near_edge[j]:
            ell = jumps.ellipse(j)
            chosen.append(j)
            seen.add(ell)
            continue
        for p in candidate_points.get(j, ()):
            ell = jumps.ellipse(j)
            if _point_in_ellipse(sat_points[p][0], sat_points[p][1], ell):
                if ell not in seen:
                    chosen.append(j)
                    seen.add(ell)
                break
    return chosen


class LargeEventFlagger:
    """Snowball flagging one integration at a time, in order (the state carried from one
    integration to the next is the saturated cores to mask in it); see
    :func:`expand_large_events` for the parameters."""

    def __init__(self, *, min_jump_area, min_sat_area, expand_factor, sat_required_snowball,
                 min_sat_radius_extend, sat_expand, edge_size, mask_snowball_core_next_int,
                 persist_groups, max_extended_width):
        self.min_jump_area = min_jump_area
        self.min_sat_area = min_sat_area
        self.expand_factor = expand_factor
        self.sat_required_snowball = sat_required_snowball
        self.min_sat_radius_extend = min_sat_radius_extend
        self.sat_expand = sat_expand
        self.edge_size = edge_size
        self.mask_snowball_core_next_int = mask_snowball_core_next_int
        self.persist_groups = persist_groups
        self.max_extended_width = max_extended_width
        self.previous_core = None
        self.total = 0

    def flag_integration(self, gdq_i):
        """Flag the snowballs of one integration in place on ``gdq_i`` (ngroups, ny, nx) uint8,
        then mask the previous integration's saturated cores; returns its number of snowballs."""
        ngroups, ny, nx = gdq_i.shape
        shape = (ny, nx)
        sat_required_snowball = self.sat_required_snowball
        max_extended_width = self.max_extended_width
        count = 0
        core = np.zeros(shape, dtype=bool) if sat_required_snowball else None
        next_sat = None
        for g in range(1, ngroups):
            cur_sat = (gdq_i[g] & SAT) != 0
            jumps = _Regions((gdq_i[g] & JUMP) != 0, self.min_jump_area)
            if not sat_required_snowball:
                chosen = list(range(len(jumps)))
            else:
                if next_sat is not None:
                    new_sat = next_sat       # unchanged since it was computed for g-1
                else:
                    new_sat = _Regions(cur_sat & ((gdq_i[g - 1] & SAT) == 0), self.min_sat_area)
                points = list(zip(new_sat.cen_c.tolist(), new_sat.cen_r.tolist()))
                next_sat = None
                if g < ngroups - 1:
                    next_sat = _Regions(((gdq_i[g + 1] & SAT) != 0) & ~cur_sat, self.min_sat_area)
                    points += list(zip(next_sat.cen_c.tolist(), next_sat.cen_r.tolist()))
                chosen = _select_snowballs(jumps, points, ny, self.edge_size)

                grown = False
                for j in np.nonzero(new_sat.approx_minor - 1
                                    > self.min_sat_radius_extend - _SCREEN_MARGIN)[0]:
                    ell = new_sat.ellipse(int(j))
                    (cc, cr), (ax0, ax1), alpha = ell
                    if min(ax1, ax0) <= self.min_sat_radius_extend:
                        continue
                    a1 = min(ax0 + self.sat_expand, max_extended_width)
                    a2 = min(ax1 + self.sat_expand, max_extended_width)
                    sl, patch = _ellipse_patch(cc, cr, a1, a2, alpha, shape)
                    if patch.any():
                        gdq_i[g:][(slice(None),) + sl][:, patch] = SAT
                        grown = True
                    sl, patch = _ellipse_patch(cc, cr, ax0, ax1, alpha, shape)
                    core[sl] |= patch
                if grown:
                    next_sat = None   # saturation changed: recompute for the next group

            count += len(chosen)
            plane = gdq_i[g]
            for j in chosen:
                ell = jumps.ellipse(j)
                (cc, cr), _, alpha = ell
                a1, a2 = _snowball_axes(ell, self.expand_factor, max_extended_width)
                sl, patch = _ellipse_patch(cc, cr, a1, a2, alpha, shape)
                sub = plane[sl]
                sub[patch & ((sub & SAT) == 0)] |= JUMP
            del jumps, chosen
            if sat_required_snowball:
                del new_sat

        previous_core = self.previous_core
        persist_groups = self.persist_groups
        if self.mask_snowball_core_next_int and previous_core is not None and persist_groups >= 1:
            last = min(persist_groups, ngroups)
            if last > 1 and previous_core.any():
                gdq_i[1:last][:, previous_core] |= JUMP
        self.previous_core = core if self.mask_snowball_core_next_int else None
        self.total += count
        return count


def expand_large_events(gdq, *, min_jump_area, min_sat_area, expand_factor,
                        sat_required_snowball, min_sat_radius_extend, sat_expand, edge_size,
                        mask_snowball_core_next_int, persist_groups, max_extended_width):
    """Find and flag snowballs in place on ``gdq`` (nints, ngroups, ny, nx) uint8.

    ``sat_expand`` and ``max_extended_width`` are full-axis lengths in pixels (the JumpStep
    parameters ``sat_expand`` and ``max_extended_radius`` times two); ``persist_groups`` is
    ``int(snowball_time_masked_next_int // group_time)``. Returns the number of snowballs.
    The integrations are processed in order by a :class:`LargeEventFlagger`.
    """
    flagger = LargeEventFlagger(
        min_jump_area=min_jump_area, min_sat_area=min_sat_area, expand_factor=expand_factor,
        sat_required_snowball=sat_required_snowball, min_sat_radius_extend=min_sat_radius_extend,
        sat_expand=sat_expand, edge_size=edge_size,
        mask_snowball_core_next_int=mask_snowball_core_next_int, persist_groups=persist_groups,
        max_extended_width=max_extended_width)
    for i in range(gdq.shape[0]):
        flagger.flag_integration(gdq[i])
    return flagger.total
