"""MIRI cosmic-ray showers: the faint extended emission flagged when ``find_showers`` is on.

What jwst 3.0.0 (stcal's ``find_faint_extended``) does, and this module reproduces:

1. Nothing when the exposure has fewer than 10 usable group differences
   (nints·(ngroups-1) minus the groups that are DO_NOT_USE in every pixel).
2. Electrons D = float32(DN·gain); a group whose GROUPDQ is *exactly* one of DNU, SAT, JUMP,
   JUMP|DNU or SAT|DNU is set to NaN (any other combination, e.g. with CHARGELOSS, is kept),
   and so are the differences Δ that touch it.
3. Statistics of Δ per pixel. With fewer integrations than ``minimum_sigclip_groups``: the
   NaN-median m of every Δ of every integration and σ = sqrt(|m| + (RN·gain)²/nframes), all
   float32. Otherwise the 5-sigma clipped median and standard deviation across integrations,
   per group (astropy's ``sigma_clipped_stats``, called here exactly as stcal calls it).
4. For each integration and each group g after the first group that is not DO_NOT_USE in every
   pixel: the ratio |Δ_g - m| / σ, NaN where GROUPDQ of g or PIXELDQ has DNU, SAT or JUMP and
   at reference pixels (PIXELDQ exactly REFERENCE_PIXEL); convolved with astropy's
   ``Ring2DKernel(extend_inner_radius, extend_outer_radius)``, NaNs ignored and the result
   renormalised by the weight of the finite pixels (pixels beyond the edge count as finite
   zeros); pixels above ``extend_snr_threshold`` form regions (8-connected) and each region of
   filled area >= ``extend_min_area`` is a shower, described by an ellipse (as the snowballs).
5. Once all the showers of the integration are found, each ellipse is grown (minor axis ×
   ``extend_ellipse_expand_ratio``, major axis + (ratio - 1) × minor, both capped at twice
   ``max_extended_radius``) and JUMP_DET is OR-ed into it in group g and the next
   int(``time_masked_after_shower`` // TGROUP) groups; a pixel saturated in one of those
   groups is left alone there and in the following ones.
6. Per pixel, the mean of the usable Δ (groups without DNU, SAT or JUMP) before and after that
   flagging is compared; where it is not finite or changed by more than the amplitude limit,
   the pixel's GROUPDQ of the integration goes back to what it was. jwst 3.0.0 sets the limit to
   6 × TGROUP whatever ``max_shower_amplitude`` says (it scales stcal's default instead of the
   parameter), and compares it with electrons; both are followed.

The number of showers is the number of ellipses found (before step 6).

The convolution is done directly over the ring's non-zero taps. stcal uses an FFT
(``scipy.signal.oaconvolve``), whose rounding differs by ~1e-16 relative; so a plane with a
pixel whose smoothed ratio lies within a tolerance far above that rounding of the threshold is
convolved again the way stcal does it, and that result decides the plane.
"""
import math

import numpy as np
from numba import njit, prange

from ..datamodels import dqflags
from .snowballs import _ellipse_patch, _Regions, _snowball_axes

DNU = dqflags.group["DO_NOT_USE"]
SAT = dqflags.group["SATURATED"]
JUMP = dqflags.group["JUMP_DET"]
REFERENCE_PIXEL = dqflags.pixel["REFERENCE_PIXEL"]
_BAD = DNU | SAT | JUMP

#: stcal's fixed minimum number of usable differences for shower detection.
MIN_DIFFS_FOR_SHOWERS = 10
#: The amplitude limit jwst 3.0.0 applies is this times TGROUP (stcal's JumpData default).
STCAL_SHOWER_AMPLITUDE = 6
#: Rows of every integration whose differences are held at once for the sigma-clip statistics.
_SIGCLIP_BLOCK_ROWS = 32

#: The shower parameters of jwst 3.0.0's JumpStep with their defaults.
SHOWER_DEFAULTS = dict(
    find_showers=False,
    max_shower_amplitude=4.0,
    extend_snr_threshold=1.2,
    extend_min_area=90,
    extend_inner_radius=1.0,
    extend_outer_radius=2.6,
    extend_ellipse_expand_ratio=1.1,
    time_masked_after_shower=15.0,
)


@njit(cache=True, inline="always")
def _nan_group(dq):
    # stcal NaNs a group by equality with a few flag combinations, not by bit tests
    return dq == 1 or dq == 2 or dq == 3 or dq == 4 or dq == 5


@njit(cache=True, inline="always")
def _diff(data, gdq, gain, i, g, y, x):
    """float32 Δ between groups g-1 and g in electrons, NaN where either group is NaN-ed."""
    if _nan_group(gdq[i, g - 1, y, x]) or _nan_group(gdq[i, g, y, x]):
        return np.float32(np.nan)
    gn = gain[y, x]
    return np.float32(data[i, g, y, x] * gn) - np.float32(data[i, g - 1, y, x] * gn)


@njit(parallel=True, cache=True)
def _median_sigma(data, gdq, gain, readnoise, nframes, centre, spread):
    nints, ngroups, ny, nx = data.shape
    nf = np.float32(nframes)
    two = np.float32(2.0)
    for y in prange(ny):
        # the differences of a whole row, gathered plane by plane (contiguous reads)
        diffs = np.empty((nints * (ngroups - 1), nx), dtype=np.float32)
        count = np.zeros(nx, dtype=np.int64)
        for i in range(nints):
            for g in range(1, ngroups):
                for x in range(nx):
                    d = _diff(data, gdq, gain, i, g, y, x)
                    if not np.isnan(d):
                        diffs[count[x], x] = d
                        count[x] += 1
        s = np.empty(nints * (ngroups - 1), dtype=np.float32)
        for x in range(nx):
            n = count[x]
            if n == 0:
                med = np.float32(np.nan)
            else:
                for a in range(n):
                    s[a] = diffs[a, x]
                if n <= 32:
                    # a few tens of values per pixel: insertion sort beats a general sort
                    for a in range(1, n):
                        v = s[a]
                        b = a - 1
                        while b >= 0 and s[b] > v:
                            s[b + 1] = s[b]
                            b -= 1
                        s[b + 1] = v
                else:
                    s[:n].sort()
                hi = n // 2
                lo = hi if n % 2 == 1 else hi - 1
                med = np.float32(s[lo] + s[hi]) / two
            rn = np.float32(readnoise[y, x] * gain[y, x])
            var = np.float32(np.float32(rn * rn) / nf)
            centre[y, x] = med
            spread[y, x] = np.sqrt(np.float32(np.abs(med) + var))


def shower_statistics(data, groupdq, gain, readnoise, *, nframes, minimum_sigclip_groups):
    """Per-pixel statistics of the differences (step 3) for rows of an exposure.

    ``data`` float32 DN and ``groupdq`` uint8 (nints, ngroups, rows, nx) and ``gain``,
    ``readnoise`` (rows, nx) float32 may be any block of rows (the statistics are per pixel).
    Returns ``(centre, spread)``: (rows, nx) float32 median and sigma, or with at least
    ``minimum_sigclip_groups`` integrations (ngroups-1, rows, nx) clipped median and standard
    deviation per group.
    """
    nints, ngroups, ny, nx = data.shape
    if nints < minimum_sigclip_groups:
        centre = np.empty((ny, nx), dtype=np.float32)
        spread = np.empty((ny, nx), dtype=np.float32)
        _median_sigma(data, groupdq, gain, readnoise, float(nframes), centre, spread)
        return centre, spread
    import warnings

    from astropy import stats

    centre = spread = None
    for y0 in range(0, ny, _SIGCLIP_BLOCK_ROWS):
        y1 = min(ny, y0 + _SIGCLIP_BLOCK_ROWS)
        elec = data[:, :, y0:y1] * gain[y0:y1]
        dq = groupdq[:, :, y0:y1]
        elec[(dq >= 1) & (dq <= 5)] = np.nan
        diffs = np.diff(elec, axis=1)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore")
            _, med, std = stats.sigma_clipped_stats(diffs, sigma=5, axis=0)
        if centre is None:
            centre = np.empty((ngroups - 1, ny, nx), dtype=med.dtype)
            spread = np.empty((ngroups - 1, ny, nx), dtype=std.dtype)
        centre[:, y0:y1] = med
        spread[:, y0:y1] = std
    return centre, spread


@njit(parallel=True, cache=True)
def _ratio_plane(data, gdq, gain, i, g, masked, centre, spread, ratio, out):
    """|Δ_g - centre| / spread (or Δ_g itself when not ``ratio``), NaN where masked."""
    ny, nx = out.shape
    for y in prange(ny):
        for x in range(nx):
            if masked[y, x] or (gdq[i, g, y, x] & _BAD) != 0:
                out[y, x] = np.nan
            else:
                d = _diff(data, gdq, gain, i, g, y, x)
                if ratio:
                    out[y, x] = np.float32(np.abs(np.float32(d - centre[y, x]))) / spread[y, x]
                else:
                    out[y, x] = d


@njit(parallel=True, cache=True)
def _smooth_above(ratio, dy, dx, w, threshold, min_norm, tol, out, near):
    """Normalised ring convolution of the finite pixels of ``ratio`` (beyond the edge: weight
    without value), thresholded into ``out``; ``near[y]`` counts the pixels of row y within
    ``tol`` of the threshold."""
    ny, nx = ratio.shape
    nk = len(w)
    for y in prange(ny):
        count = 0
        for x in range(nx):
            out[y, x] = 0
            if not np.isfinite(ratio[y, x]):
                continue
            s = 0.0
            norm = 0.0
            for k in range(nk):
                yy = y + dy[k]
                xx = x + dx[k]
                if yy < 0 or yy >= ny or xx < 0 or xx >= nx:
                    norm += w[k]
                    continue
                v = ratio[yy, xx]
                if np.isfinite(v):
                    s += w[k] * np.float64(v)
                    norm += w[k]
            if not norm > min_norm:
                continue
            value = s / norm
            if value > threshold:
                out[y, x] = 1
            if abs(value - threshold) <= tol:
                count += 1
        near[y] = count


@njit(parallel=True, cache=True)
def _finite_norm2(ratio):
    ny, nx = ratio.shape
    rows = np.zeros(ny, dtype=np.float64)
    for y in prange(ny):
        s = 0.0
        for x in range(nx):
            v = np.float64(ratio[y, x])
            if np.isfinite(v):
                s += v * v
        rows[y] = s
    return rows.sum()


def _smooth_above_like_stcal(ratio, kernel, threshold):
    """The thresholded smoothed ratio exactly as stcal computes it (FFT convolutions)."""
    from scipy import signal

    array = ratio.copy()
    good = np.isfinite(array)
    array[~good] = 0
    smoothed = signal.oaconvolve(array, kernel, mode="same")
    n = kernel.shape[0] // 2
    padded = np.ones((good.shape[0] + kernel.shape[0] - 1, good.shape[1] + kernel.shape[1] - 1))
    padded[n:-n, n:-n] = good
    norm = signal.oaconvolve(padded, kernel, mode="valid")
    good &= norm > 1e-3 * np.mean(kernel)
    with np.errstate(invalid="ignore", divide="ignore"):
        smoothed /= norm
    smoothed[~good] = np.nan
    return (smoothed > threshold).astype(np.uint8)


@njit(parallel=True, cache=True)
def _restore_big_changes(data, gain, before, after, refpix, limit):
    """Step 6 for one integration: where the mean usable Δ moved by more than ``limit`` (or is
    not finite), put the GROUPDQ back. Only pixels that changed are looked at (the others
    have nothing to restore); reference pixels are always restored (stcal marks them DNU in
    its working copy, so their mean is never finite)."""
    ngroups, ny, nx = after.shape
    for y in prange(ny):
        for x in range(nx):
            changed = False
            for g in range(ngroups):
                if before[g, y, x] != after[g, y, x]:
                    changed = True
                    break
            if not changed:
                continue
            restore = refpix[y, x]
            if not restore:
                gn = gain[y, x]
                means = np.empty(2, dtype=np.float32)
                for which in range(2):
                    dq = before if which == 0 else after
                    # numpy's nanmean over axis 0: float32 running sum in group order, then
                    # float64 division by the count, stored as float32
                    total = np.float32(0.0)
                    count = 0
                    for g in range(1, ngroups):
                        if (dq[g - 1, y, x] & _BAD) != 0 or (dq[g, y, x] & _BAD) != 0:
                            continue
                        d = np.float32(data[g, y, x] * gn) - np.float32(data[g - 1, y, x] * gn)
                        if np.isnan(d):
                            continue
                        total = np.float32(total + d)
                        count += 1
                    means[which] = np.float32(np.float64(total) / np.float64(count)) if count \
                        else np.float32(np.nan)
                change = np.float32(np.abs(np.float32(means[0] - means[1])))
                restore = not np.isfinite(change) or change > limit
            if restore:
                for g in range(ngroups):
                    after[g, y, x] = before[g, y, x]


def enough_differences(dnu_table):
    """Whether stcal looks for showers at all, from the (nints, ngroups) table of groups that
    are DO_NOT_USE in every pixel (at the time of the shower search)."""
    nints, ngroups = np.shape(dnu_table)
    return nints * (ngroups - 1) - int(np.sum(dnu_table)) >= MIN_DIFFS_FOR_SHOWERS


class ShowerFlagger:
    """Steps 4-6 for one integration at a time (integrations are independent once the
    statistics of step 3 are known).

    ``pixeldq`` (ny, nx) uint32 and ``gain`` (ny, nx) float32; ``group_time`` is TGROUP in
    seconds; the other arguments are the JumpStep parameters.
    """

    def __init__(self, pixeldq, gain, *, group_time, extend_snr_threshold, extend_min_area,
                 extend_inner_radius, extend_outer_radius, extend_ellipse_expand_ratio,
                 time_masked_after_shower, max_extended_radius):
        from astropy.convolution import Ring2DKernel

        self.gain = np.ascontiguousarray(gain, dtype=np.float32)
        pixeldq = np.asarray(pixeldq)
        self.refpix = np.ascontiguousarray(pixeldq == REFERENCE_PIXEL)
        self.masked = np.ascontiguousarray(self.refpix | ((pixeldq & _BAD) != 0))
        self.kernel = Ring2DKernel(extend_inner_radius, extend_outer_radius).array
        n = self.kernel.shape[0] // 2
        rows, cols = np.nonzero(self.kernel)
        # convolution: output (y, x) takes input (y + n - row, x + n - col)
        self.dy = (n - rows).astype(np.int64)
        self.dx = (n - cols).astype(np.int64)
        self.weights = self.kernel[rows, cols].astype(np.float64)
        self.min_norm = 1e-3 * float(np.mean(self.kernel))
        self.threshold = float(extend_snr_threshold)
        self.min_area = extend_min_area
        self.expand_ratio = float(extend_ellipse_expand_ratio)
        self.max_width = int(max_extended_radius) * 2
        self.groups_after = int(time_masked_after_shower // group_time)
        self.limit = np.float32(STCAL_SHOWER_AMPLITUDE * group_time)
        self.total = 0

    def find(self, data_i, gdq_i, centre, spread):
        """The showers of one integration: a list of (group, ellipses)."""
        ngroups, ny, nx = gdq_i.shape
        data4 = data_i[np.newaxis]
        gdq4 = gdq_i[np.newaxis]
        refpix = self.refpix
        first = 0
        for g in range(ngroups):
            # stcal's working copy has DNU at the reference pixels
            if not np.all(((gdq_i[g] & DNU) != 0) | refpix):
                first = g
                break
        per_group = centre.ndim == 3
        ratio = np.empty((ny, nx), dtype=np.float32)
        mask = np.empty((ny, nx), dtype=np.uint8)
        near = np.zeros(ny, dtype=np.int64)
        found = []
        for g in range(first + 1, ngroups):
            if per_group:
                _ratio_plane(data4, gdq4, self.gain, 0, g, self.masked, ratio, ratio, False,
                             ratio)
                # the clipped statistics have astropy's dtype: the same numpy operations
                with np.errstate(invalid="ignore", divide="ignore"):
                    plane = np.ascontiguousarray(np.abs(ratio - centre[g - 1]) / spread[g - 1])
            else:
                _ratio_plane(data4, gdq4, self.gain, 0, g, self.masked, centre, spread, True,
                             ratio)
                plane = ratio
            # far above the FFT's rounding (about 1e-16 of the plane's norm)
            tol = 1e-12 * max(math.sqrt(_finite_norm2(plane)), 1000.0)
            _smooth_above(plane, self.dy, self.dx, self.weights, self.threshold, self.min_norm,
                          tol, mask, near)
            emission = mask
            if near.any():
                emission = _smooth_above_like_stcal(plane, self.kernel, self.threshold)
            regions = _Regions(emission, self.min_area)
            if len(regions):
                found.append((g, [regions.ellipse(j) for j in range(len(regions))]))
        return found

    def flag_integration(self, data_i, gdq_i, centre, spread):
        """Find and flag the showers of one integration in place on ``gdq_i`` (ngroups, ny, nx)
        uint8, ``data_i`` being its float32 DN ramp; returns the number of showers."""
        found = self.find(data_i, gdq_i, centre, spread)
        count = sum(len(ellipses) for _, ellipses in found)
        self.total += count
        if not count:
            return 0
        ngroups, ny, nx = gdq_i.shape
        before = gdq_i.copy()
        last = self.groups_after
        for g, ellipses in found:
            for ell in ellipses:
                (cc, cr), _, alpha = ell
                a1, a2 = _snowball_axes(ell, self.expand_ratio, self.max_width)
                sl, patch = _ellipse_patch(cc, cr, a1, a2, alpha, (ny, nx))
                for flag_g in range(g, min(g + last + 1, ngroups)):
                    sub = gdq_i[flag_g][sl]
                    patch &= (sub & SAT) == 0
                    sub[patch] |= JUMP
        _restore_big_changes(data_i, self.gain, before, gdq_i, self.refpix, self.limit)
        return count


def flag_showers(data, groupdq, pixeldq, gain, readnoise, *, nframes, group_time,
                 minimum_sigclip_groups=100, max_extended_radius=200, dnu_table=None,
                 **parameters):
    """Find and flag MIRI showers in place on ``groupdq`` (nints, ngroups, ny, nx) uint8.

    ``data`` float32 DN of the same shape; ``pixeldq`` (ny, nx) as it is after the jump
    step's bad-gain flags; ``gain`` and ``readnoise`` (DN) (ny, nx) float32. The keyword
    parameters are those of :data:`SHOWER_DEFAULTS` (``find_showers`` and
    ``max_shower_amplitude`` are accepted and ignored, see the module docstring). ``dnu_table``
    is the table of all-DO_NOT_USE groups of ``groupdq`` (computed when None). Returns the
    number of showers.
    """
    p = {**SHOWER_DEFAULTS, **parameters}
    if dnu_table is None:
        from .twopoint import dnu_planes
        dnu_table = dnu_planes(groupdq)
    if not enough_differences(dnu_table):
        return 0
    gain = np.ascontiguousarray(gain, dtype=np.float32)
    readnoise = np.ascontiguousarray(readnoise, dtype=np.float32)
    centre, spread = shower_statistics(data, groupdq, gain, readnoise, nframes=nframes,
                                       minimum_sigclip_groups=minimum_sigclip_groups)
    flagger = ShowerFlagger(
        pixeldq, gain, group_time=group_time, extend_snr_threshold=p["extend_snr_threshold"],
        extend_min_area=p["extend_min_area"], extend_inner_radius=p["extend_inner_radius"],
        extend_outer_radius=p["extend_outer_radius"],
        extend_ellipse_expand_ratio=p["extend_ellipse_expand_ratio"],
        time_masked_after_shower=p["time_masked_after_shower"],
        max_extended_radius=max_extended_radius)
    for i in range(data.shape[0]):
        flagger.flag_integration(data[i], groupdq[i], centre, spread)
    return flagger.total
