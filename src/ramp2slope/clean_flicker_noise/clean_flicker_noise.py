"""Flicker (1/f) noise: a background mask from a draft rate, then per-group stripe removal.

The arithmetic follows jwst 3.0.0's clean_flicker_noise with ``fit_method='median'``:

* the scene mask starts from a draft rate (or rateints) image: pixels that are NaN or exactly
  zero are not background, nor are those outside ``[center - 3 sigma, center + n_sigma sigma]``
  where center and sigma come from an iterative 3-sigma clip (median center, population std);
* each group difference (group j+1 minus group j of the input) loses the pixels flagged
  DO_NOT_USE or JUMP_DET in group j+1, NaNs are set to 0 and masked, an optional flat divides
  it, a background level is the median of the mask after a 3-sigma clip of the lower half of the
  distribution, a second clip at ``n_sigma`` on the background-subtracted difference refines the
  mask, and the masked median of each row (along the fast axis; by output channel with
  ``fit_by_channel``) is the stripe removed;
* the cleaned group j+1 is the cleaned group j plus the cleaned difference, so group 0 is kept.

Statistics run in float64. The clipped statistics sort the mask's values once, so each
clipping pass keeps a slice of them (the mirrored lower half of the distribution is merged from
that sorted order, not sorted again); their medians are exact, their mean and std may differ
from numpy's pairwise sums in the last bit or two. The background median is an exact selection
by bucket counting; stripe medians are computed in float32 as numpy's masked median does.
"""
import logging

import numba
import numpy as np
from numba import njit, prange

from ..datamodels import dqflags
from ..errors import Ramp2SlopeError
from .nsclean import ALLSLITS_CUTOFFS, SUBARRAY_CUTOFFS, nsclean_full_frame, nsclean_subarray

__all__ = ["sigma_clipped_stats", "clip_to_background", "background_level", "model_background",
           "default_box_size", "scene_mask", "row_medians", "median_clean", "clean_image",
           "clean_integration", "median_image_scale", "relative_scale", "median_ramp",
           "clean_integration_against"]

log = logging.getLogger("ramp2slope")

#: jwst's fixed clip level for the statistics behind each threshold.
SIGMA_LIMIT = 3.0
_UNUSABLE = dqflags.group["DO_NOT_USE"] | dqflags.group["JUMP_DET"]


_BUCKETS = 65536
_SMALL = 4096


@njit(cache=True)
def _sorted_pair(candidates, k, below_max):
    ordered = np.sort(candidates)
    return (ordered[k - 1] if k > 0 else below_max), ordered[k]


@njit(parallel=True, cache=True)
def _ranked_pair(values, low, high, k, nthreads):
    """The (k-1)-th and k-th smallest (0-based; the first is -inf when k is 0) of the values
    of the 1-D ``values`` within ``[low, high]`` (not modified).

    Buckets of equal width between the minimum and maximum are counted per thread; the bucket
    holding rank k is gathered and searched the same way until it is small enough to sort, while
    the largest value ranked below it is kept. A bucket index is a non-decreasing function of
    the value, so ranks carry over exactly.
    """
    candidates = values
    below_max = -np.inf
    while True:
        n = candidates.size
        chunk = (n + nthreads - 1) // nthreads
        lows = np.empty(nthreads)
        highs = np.empty(nthreads)
        for t in prange(nthreads):
            lo = np.inf
            hi = -np.inf
            for i in range(t * chunk, min(n, (t + 1) * chunk)):
                v = candidates[i]
                if v >= low and v <= high:
                    lo = min(lo, v)
                    hi = max(hi, v)
            lows[t] = lo
            highs[t] = hi
        lo = lows.min()
        hi = highs.max()
        scale = _BUCKETS / (hi - lo) if hi > lo else 0.0
        if scale == 0.0 or not np.isfinite(scale):
            # all equal, or a spread the float arithmetic cannot divide
            return (lo if k > 0 else below_max), lo
        counts = np.zeros((nthreads, _BUCKETS), dtype=np.int64)
        for t in prange(nthreads):
            for i in range(t * chunk, min(n, (t + 1) * chunk)):
                v = candidates[i]
                if v >= low and v <= high:
                    counts[t, min(int((v - lo) * scale), _BUCKETS - 1)] += 1
        below = 0
        bucket = 0
        while True:
            in_bucket = 0
            for t in range(nthreads):
                in_bucket += counts[t, bucket]
            if below + in_bucket > k:
                break
            below += in_bucket
            bucket += 1
        starts = np.zeros(nthreads + 1, dtype=np.int64)
        for t in range(nthreads):
            starts[t + 1] = starts[t] + counts[t, bucket]
        members = np.empty(starts[nthreads], dtype=candidates.dtype)
        maxima = np.full(nthreads, -np.inf)
        for t in prange(nthreads):
            m = starts[t]
            top = -np.inf
            for i in range(t * chunk, min(n, (t + 1) * chunk)):
                v = candidates[i]
                if v >= low and v <= high:
                    b = min(int((v - lo) * scale), _BUCKETS - 1)
                    if b == bucket:
                        members[m] = v
                        m += 1
                    elif b < bucket:
                        top = max(top, v)
            maxima[t] = top
        if below > 0:
            below_max = max(below_max, maxima.max())
        k -= below
        if members.size <= _SMALL or members.size == n:
            return _sorted_pair(members, k, below_max)
        candidates = members


def exact_median(values):
    """``np.median`` of finite 1-D ``values`` by selection: the same value and dtype (the two
    middle values of an even count averaged in that dtype)."""
    n = values.size
    if n < 2 * _SMALL:
        return np.median(values)
    kind = values.dtype.type
    lower, upper = _ranked_pair(np.ascontiguousarray(values), -np.inf, np.inf, n // 2,
                                numba.get_num_threads())
    if n % 2:
        return kind(upper)
    return (kind(lower) + kind(upper)) / kind(2)


@njit(parallel=True, cache=True)
def _slice_moments(ordered, start, stop):
    """Mean and population std of ``ordered[start:stop]`` (two passes, float64)."""
    total = 0.0
    for i in prange(start, stop):
        total += ordered[i]
    mean = total / (stop - start)
    squares = 0.0
    for i in prange(start, stop):
        squares += (ordered[i] - mean) * (ordered[i] - mean)
    return mean, np.sqrt(squares / (stop - start))


@njit(cache=True)
def _slice_median(ordered, start, stop):
    n = stop - start
    middle = start + n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0


@njit(cache=True)
def _sorted_clipped_stats(ordered, sigma, maxiters):
    """``sigma_clipped_stats`` of sorted float64 values: each pass keeps a slice."""
    start = np.searchsorted(ordered, -np.inf, side="right")
    stop = np.searchsorted(ordered, np.inf, side="left")
    for _ in range(maxiters):
        if stop <= start:
            break
        _, std = _slice_moments(ordered, start, stop)
        center = _slice_median(ordered, start, stop)
        new_start = start + np.searchsorted(ordered[start:stop], center - std * sigma, side="left")
        new_stop = start + np.searchsorted(ordered[start:stop], center + std * sigma, side="right")
        changed = new_start != start or new_stop != stop
        start, stop = new_start, new_stop
        if not changed:
            break
    if stop <= start:
        return np.nan, np.nan, np.nan
    mean, std = _slice_moments(ordered, start, stop)
    return mean, _slice_median(ordered, start, stop), std


def sigma_clipped_stats(values, sigma=SIGMA_LIMIT, maxiters=5, presorted=False):
    """(mean, median, std) of the finite values of 1-D ``values`` after iterative symmetric
    clipping about the median (astropy's ``sigma_clipped_stats`` defaults: at most 5 passes,
    ddof 0), in float64.

    The values are sorted once (unless ``presorted``), so every pass keeps a slice. The median
    is exact; mean and std are summed in another order than numpy's pairwise sums, so they may
    differ in the last bit or two (1e-15 relative).
    """
    ordered = values if presorted else np.sort(values)
    ordered = np.ascontiguousarray(ordered, dtype=np.float64)
    mean, median, std = _sorted_clipped_stats(ordered, float(sigma), maxiters)
    return np.float64(mean), np.float64(median), np.float64(std)


@njit(cache=True)
def _mirrored_lower_half(ordered, center):
    """Sorted ``concatenate((lower - center, center - lower)) + center`` of the finite sorted
    values ``<= center``: both halves are monotonic in the value, so one merge sorts them."""
    first = np.searchsorted(ordered, -np.inf, side="right")
    stop = np.searchsorted(ordered, center, side="right")
    n = stop - first
    out = np.empty(2 * n)
    below = first            # ascending: (x - c) + c
    above = stop - 1         # ascending as x descends: (c - x) + c
    for k in range(2 * n):
        if below < stop:
            a = (ordered[below] - center) + center
        else:
            a = np.inf
        if above >= first:
            b = (center - ordered[above]) + center
        else:
            b = np.inf
        if a <= b:
            out[k] = a
            below += 1
        else:
            out[k] = b
            above -= 1
    return out


def histogram_fit(values, center, sigma):
    """Center and width of a Gaussian least-squares fit to a 2000-bin histogram of ``values``
    over ``center +- 4 sigma`` (``fit_histogram``); the inputs back when the fit fails."""
    from scipy.optimize import curve_fit

    try:
        counts, edges = np.histogram(values, bins=2000,
                                     range=(center - 4.0 * sigma, center + 4.0 * sigma))
    except ValueError:
        log.error("Histogram failed; using clip center and sigma.")
        return center, sigma
    mids = (edges[1:] + edges[:-1]) / 2.0
    peak = np.argmax(counts)

    def gaussian(x, amplitude, mean, width):
        return amplitude * np.exp(-0.5 * ((x - mean) / width) ** 2)

    bounds = [(0, mids[0], 0), (np.inf, mids[-1], mids[-1] - mids[0])]
    try:
        fitted, _ = curve_fit(gaussian, mids, counts, p0=(counts[peak], mids[peak], sigma),
                              bounds=bounds)
    except RuntimeError:
        log.error("Gaussian fit failed; using clip center and sigma.")
        return center, sigma
    return fitted[1], fitted[2]


def clip_to_background(image, mask, sigma_lower=3.0, sigma_upper=2.0, lower_half_only=False,
                       fit_histogram=False):
    """Unset in ``mask`` (in place) the pixels of ``image`` outside the background's range.

    The center is the clipped median, or with ``fit_histogram`` the clipped mean refined with
    the sigma by a Gaussian fit to the histogram of the values.
    """
    if not mask.any():
        return
    # sorted in the image's dtype (float32 sorts faster), compared in float64 (exact)
    ordered = np.sort(image[mask]).astype(np.float64)
    mean, median, sigma = sigma_clipped_stats(ordered, presorted=True)
    center = mean if fit_histogram else median
    if lower_half_only:
        ordered = _mirrored_lower_half(ordered, center)
        mean, median, sigma = sigma_clipped_stats(ordered, presorted=True)
        center = mean if fit_histogram else median
    if fit_histogram:
        center, sigma = histogram_fit(ordered, center, sigma)
        center, sigma = np.float64(center), np.float64(sigma)
    # float64 thresholds: a float32 image is compared in float64, as jwst's float64 copy is
    mask[image < center - sigma_lower * sigma] = False
    mask[image > center + sigma_upper * sigma] = False


def default_box_size(shape):
    """Per axis, the largest size up to 32 that divides the image evenly (jwst's default)."""
    return [max(n for n in range(1, 33) if size % n == 0) for size in shape]


def model_background(image, mask, box_size=None):
    """photutils' Background2D of the masked image, set up as jwst 3.0.0 sets it up (3-sigma,
    5-iteration clip, median estimator, 5 x 5 filter), or None when photutils cannot fit it."""
    import warnings

    from astropy.stats import SigmaClip
    from astropy.utils.exceptions import AstropyUserWarning
    try:
        from photutils.background import Background2D, MedianBackground
    except ImportError:  # a core dependency; only a broken install gets here
        raise Ramp2SlopeError("clean_flicker_noise: background_method='model' needs the photutils "
                              "package (pip install photutils)") from None
    box_size = list(box_size) if box_size is not None else default_box_size(image.shape)
    if image.shape[0] % box_size[0] or image.shape[1] % box_size[1]:
        log.warning("background box size %s does not divide the image shape %s evenly",
                    box_size, image.shape)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=AstropyUserWarning)
            fitted = Background2D(image, box_size=box_size, filter_size=(5, 5), mask=~mask,
                                  sigma_clip=SigmaClip(sigma=SIGMA_LIMIT, maxiters=5),
                                  bkg_estimator=MedianBackground())
    except ValueError:
        log.error("background model fit failed; using the median background value")
        return None
    return fitted.background


def background_level(image, mask, method="median", box_size=None):
    """The background removed before the stripe fit and restored after it: a scalar, or an
    image for ``method='model'`` (photutils' Background2D)."""
    if method is None:
        return np.float32(0.0)
    clip_to_background(image, mask, SIGMA_LIMIT, SIGMA_LIMIT, lower_half_only=True)
    if method == "model":
        fitted = model_background(image, mask, box_size)
        if fitted is not None:
            return fitted
    return exact_median(image[mask])


def scene_mask(rate, n_sigma=2.0, fit_histogram=False, exclude=None):
    """The background mask of a draft rate image (2-D) or rateints cube (3-D, plane by plane).
    ``exclude``: pixels known not to be background (bool, broadcast to ``rate``), left out of
    the clipping statistics too."""
    mask = ~(np.isnan(rate) | (rate == 0))
    if exclude is not None:
        mask &= ~exclude
    if n_sigma > 0:
        planes = zip(rate, mask) if rate.ndim == 3 else [(rate, mask)]
        for image, plane in planes:
            clip_to_background(image, plane, sigma_upper=n_sigma, fit_histogram=fit_histogram)
    return mask


@njit(parallel=True, cache=True)
def _row_medians(image, mask, c0, c1, out, two):
    ny = image.shape[0]
    for y in prange(ny):
        buf = np.empty(c1 - c0, dtype=image.dtype)
        n = 0
        for x in range(c0, c1):
            if mask[y, x]:
                buf[n] = image[y, x]
                n += 1
        if n == 0:
            out[y] = 0.0
            continue
        half = n // 2
        vals = np.partition(buf[:n], half)
        if n % 2 == 1:
            out[y] = vals[half]
        else:
            # sum and halving in the image's precision, as numpy's masked median does
            out[y] = (vals[:half].max() + vals[half]) / two


def row_medians(image, mask, c0=0, c1=None):
    """Masked median of each row of ``image[:, c0:c1]`` (0 where a row has no mask pixel), in
    the image's float type: float32 images, or float64 ones where the official step's image is
    float64 (a median image scaled by a float64 light curve)."""
    dtype = np.float64 if image.dtype == np.float64 else np.float32
    out = np.empty(image.shape[0], dtype=dtype)
    _row_medians(image.astype(dtype, copy=False), mask, c0, image.shape[1] if c1 is None else c1,
                 out, dtype(2.0))
    return out


def median_clean(image, mask, slow_axis_rows, fit_by_channel=False):
    """``image`` minus its masked stripe medians, along the fast readout direction.

    ``slow_axis_rows`` is True when the slow readout axis runs along the array's rows (y), so a
    stripe is a row; otherwise stripes are columns. ``fit_by_channel`` fits each of the four
    512-pixel output channels of a full frame on its own.
    """
    work_image, work_mask = (image, mask) if slow_axis_rows else (image.T, mask.T)
    nx = work_image.shape[1]
    # channels divide the fast (median) direction of a full frame
    nchan = 4 if fit_by_channel and nx == 2048 else 1
    size = nx // nchan
    cleaned = np.empty_like(work_image)
    for c in range(nchan):
        cols = slice(c * size, (c + 1) * size)
        stripes = row_medians(work_image, work_mask, c * size, (c + 1) * size)
        cleaned[:, cols] = work_image[:, cols] - stripes[:, np.newaxis]
    return cleaned if slow_axis_rows else np.ascontiguousarray(cleaned.T)


def _nsclean(image, mask, detector, subarray):
    # where jwst marks the step FAILED and leaves the data, a one-line error here
    try:
        if image.shape == (2048, 2048):
            return nsclean_full_frame(image, mask, detector)
        cutoffs = ALLSLITS_CUTOFFS if str(subarray).upper() == "ALLSLITS" else SUBARRAY_CUTOFFS
        cleaned = nsclean_subarray(image, mask, detector, cutoffs)
    except np.linalg.LinAlgError:
        raise Ramp2SlopeError("clean_flicker_noise: NSClean's fit is singular (jwst marks the step "
                              "FAILED); use fit_method='median'") from None
    if cleaned is None:
        raise Ramp2SlopeError("clean_flicker_noise: no background pixel left for NSClean (jwst "
                              "marks the step FAILED)")
    return cleaned


def clean_image(image, mask, *, background_method="median", n_sigma=2.0, slow_axis_rows=True,
                fit_by_channel=False, flat=None, background_box_size=None, fit_method="median",
                detector=None, subarray=None):
    """One cleaned image (float32) and its background, or (None, None) when the mask is empty.

    ``image`` is a float32 array the function may modify; ``mask`` is modified in place.
    ``fit_method='fft'`` fits NIRSpec images (``detector`` NRS1 or NRS2; ``subarray`` picks the
    subarray fit's frequency cut-offs) with NSClean. Other float types are rounded to float32
    first, as officially (a median image scaled by a float64 light curve gives float64).
    """
    image = image.astype(np.float32, copy=False)
    if flat is not None:
        image /= flat
    nan_pix = np.isnan(image)
    image[nan_pix] = 0.0
    mask[nan_pix] = False
    if not mask.any():
        return None, None
    background = background_level(image, mask, background_method, background_box_size)
    if background_method is None:
        subtracted = image
    else:
        subtracted = image - background
        if n_sigma > 0:
            clip_to_background(subtracted, mask, n_sigma, n_sigma, lower_half_only=True)
    if fit_method == "fft":
        cleaned = _nsclean(subtracted, mask, detector, subarray)
    else:
        cleaned = median_clean(subtracted, mask, slow_axis_rows, fit_by_channel)
    cleaned += background
    if flat is not None:
        cleaned *= flat
    cleaned[nan_pix] = np.nan
    return cleaned, background


def clean_integration(data, groupdq, mask, *, background=None, **options):
    """Clean one integration's ramp ``data`` (ngroups, ny, nx) in place, group difference by
    group difference; ``mask`` is the 2-D scene mask (not modified).

    ``background``, when given (ngroups, ny, nx), receives each difference's background level.
    Returns the number of differences left uncleaned for lack of background pixels.
    """
    skipped = 0
    previous = data[0].copy()        # the input group before the one being cleaned
    for j in range(data.shape[0] - 1):
        current = data[j + 1].copy()
        diff = current - previous
        group_mask = mask & ((groupdq[j + 1] & _UNUSABLE) == 0)
        cleaned, level = clean_image(diff, group_mask, **options)
        previous = current
        if cleaned is None:
            skipped += 1
            continue
        data[j + 1] = data[j] + cleaned
        if background is not None:
            background[j + 1] = level
    return skipped


# -- background_method='median_image' -----------------------------------------------------------
def median_image_scale(rateints):
    """Each integration's brightness relative to the others (float32, one value per
    integration) from the median of its draft rate: see :func:`relative_scale`."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = np.nanmedian(rateints, axis=(1, 2))
    return relative_scale(medians)


def relative_scale(fluxes):
    """``fluxes`` (one per integration) over their median, and how many integrations had no
    finite value (they get the median of the others). Raises ValueError when none is finite
    (jwst then leaves the exposure uncleaned)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scale = fluxes / np.nanmedian(fluxes)
    invalid = ~np.isfinite(scale)
    if invalid.all():
        raise ValueError("No valid flux for scaling")
    if invalid.any():
        scale[invalid] = np.median(scale[~invalid])
    return scale, int(invalid.sum())


def median_ramp(ramps, offset=None):
    """The NaN-ignoring median over integrations of ``ramps`` (nints, ngroups, ...), group by
    group, in their dtype (numpy's nanmedian). ``offset`` (background rates (nints, ...), each
    group's time): each integration's background ramp is taken out first."""
    import warnings

    out = np.empty(ramps.shape[1:], dtype=ramps.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for g in range(ramps.shape[1]):
            planes = ramps[:, g] if offset is None else ramps[:, g] - offset[0] * offset[1][g]
            np.nanmedian(planes, axis=0, out=out[g])
    return out


def clean_integration_against(data, median, scale, mask, *, background=None, offset=None,
                              **options):
    """Clean one integration's ramp ``data`` (ngroups, ny, nx) in place against a scaled median
    ramp (``background_method='median_image'``): each group, the first one included, minus
    ``scale * median[j]`` is cleaned with no further background and the scaled median added
    back. ``offset`` (a background rate image, each group's time), when given, adds that
    background's ramp to the scaled median. The group DQ is not consulted (the median carries
    the scene). ``background``, when given, receives what was subtracted from each cleaned
    group. Returns the number of groups left uncleaned for lack of background pixels."""
    options = dict(options, background_method=None)
    skipped = 0
    for j in range(data.shape[0]):
        model = scale * median[j]
        if offset is not None:
            model += offset[0] * offset[1][j]    # float32 ramp, as officially
        cleaned, _ = clean_image(data[j] - model, mask.copy(), **options)
        if cleaned is None:
            skipped += 1
            continue
        data[j] = model + cleaned
        if background is not None:
            background[j] = model
    return skipped
