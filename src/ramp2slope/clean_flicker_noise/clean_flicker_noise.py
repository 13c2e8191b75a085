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

Statistics run in float64 on the mask's pixels in C order (the order jwst's masked arrays give
them), stripe medians in float32 as numpy's masked median computes them.
"""
import numpy as np
from numba import njit, prange

from ..datamodels import dqflags

__all__ = ["sigma_clipped_stats", "clip_to_background", "background_level", "scene_mask",
           "row_medians", "median_clean", "clean_image", "clean_integration"]

#: jwst's fixed clip level for the statistics behind each threshold.
SIGMA_LIMIT = 3.0
_UNUSABLE = dqflags.group["DO_NOT_USE"] | dqflags.group["JUMP_DET"]


def sigma_clipped_stats(values, sigma=SIGMA_LIMIT, maxiters=5):
    """(mean, median, std) of 1-D float64 ``values`` after iterative symmetric clipping about
    the median (astropy's ``sigma_clipped_stats`` defaults: at most 5 passes, ddof 0)."""
    values = values[np.isfinite(values)]
    for _ in range(maxiters):
        if values.size == 0:
            break
        center = np.median(values)
        std = np.std(values)
        keep = (values >= center - std * sigma) & (values <= center + std * sigma)
        if keep.all():
            break
        values = values[keep]
    if values.size == 0:
        return np.nan, np.nan, np.nan
    return np.mean(values), np.median(values), np.std(values)


def clip_to_background(image, mask, sigma_lower=3.0, sigma_upper=2.0, lower_half_only=False):
    """Unset in ``mask`` (in place) the pixels of ``image`` outside the background's range."""
    if not mask.any():
        return
    image = image.astype(np.float64)
    _, center, sigma = sigma_clipped_stats(image[mask])
    if lower_half_only:
        lower = image[mask & (image <= center)]
        mirrored = np.concatenate((lower - center, center - lower)) + center
        _, center, sigma = sigma_clipped_stats(mirrored)
    mask[image < center - sigma_lower * sigma] = False
    mask[image > center + sigma_upper * sigma] = False


def background_level(image, mask, method="median"):
    """The background removed before the stripe fit and restored after it (a scalar)."""
    if method is None:
        return np.float32(0.0)
    clip_to_background(image, mask, SIGMA_LIMIT, SIGMA_LIMIT, lower_half_only=True)
    return np.median(image[mask])


def scene_mask(rate, n_sigma=2.0):
    """The background mask of a draft rate image (2-D) or rateints cube (3-D, plane by plane)."""
    mask = ~(np.isnan(rate) | (rate == 0))
    if n_sigma > 0:
        planes = zip(rate, mask) if rate.ndim == 3 else [(rate, mask)]
        for image, plane in planes:
            clip_to_background(image, plane, sigma_upper=n_sigma)
    return mask


@njit(parallel=True, cache=True)
def _row_medians(image, mask, c0, c1, out):
    ny = image.shape[0]
    for y in prange(ny):
        buf = np.empty(c1 - c0, dtype=np.float32)
        n = 0
        for x in range(c0, c1):
            if mask[y, x]:
                buf[n] = image[y, x]
                n += 1
        if n == 0:
            out[y] = 0.0
            continue
        vals = np.sort(buf[:n])
        half = n // 2
        if n % 2 == 1:
            out[y] = vals[half]
        else:
            # float32 sum then halving, as numpy's masked median does
            out[y] = np.float32(vals[half - 1] + vals[half]) / np.float32(2.0)


def row_medians(image, mask, c0=0, c1=None):
    """Masked median of each row of ``image[:, c0:c1]`` (0 where a row has no mask pixel)."""
    out = np.empty(image.shape[0], dtype=np.float32)
    _row_medians(image, mask, c0, image.shape[1] if c1 is None else c1, out)
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


def clean_image(image, mask, *, background_method="median", n_sigma=2.0, slow_axis_rows=True,
                fit_by_channel=False, flat=None):
    """One cleaned image (float32) and its background, or (None, None) when the mask is empty.

    ``image`` is a float32 array the function may modify; ``mask`` is modified in place.
    """
    if flat is not None:
        image /= flat
    nan_pix = np.isnan(image)
    image[nan_pix] = 0.0
    mask[nan_pix] = False
    if not mask.any():
        return None, None
    background = background_level(image, mask, background_method)
    if background_method is None:
        subtracted = image
    else:
        subtracted = image - background
        if n_sigma > 0:
            clip_to_background(subtracted, mask, n_sigma, n_sigma, lower_half_only=True)
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
