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

Statistics run in float64 (see :mod:`.clipped_stats`); stripe medians are computed in float32
as numpy's masked median does.
"""
import logging

import numpy as np
from numba import njit, prange

from ..datamodels import dqflags
from ..errors import Ramp2SlopeError
from .background_level import background_level, clip_to_background
from .nsclean import ALLSLITS_CUTOFFS, SUBARRAY_CUTOFFS, nsclean_full_frame, nsclean_subarray

__all__ = ["scene_mask", "row_medians", "median_clean", "clean_image",
           "clean_integration", "median_image_scale", "relative_scale", "median_ramp",
           "clean_integration_against"]

log = logging.getLogger("ramp2slope")

_UNUSABLE = dqflags.group["DO_NOT_USE"] | dqflags.group["JUMP_DET"]


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


def median_clean(image, mask, axis_to_correct, fit_by_channel=False):
    """``image`` minus its masked stripe medians (0 for a stripe with no mask pixel).

    ``axis_to_correct`` is the axis the medians run along, numbered as in the SLOWAXIS keyword
    and jwst's function of this name: 1 takes the median of each column (the stripes are
    columns), 2 of each row. ``fit_by_channel`` fits each of the four 512-pixel output
    channels of a 2048-pixel axis on its own.
    """
    rows = int(axis_to_correct) == 2
    work_image, work_mask = (image, mask) if rows else (image.T, mask.T)
    nx = work_image.shape[1]
    # channels divide the median direction of a full frame
    nchan = 4 if fit_by_channel and nx == 2048 else 1
    size = nx // nchan
    cleaned = np.empty_like(work_image)
    for c in range(nchan):
        cols = slice(c * size, (c + 1) * size)
        stripes = row_medians(work_image, work_mask, c * size, (c + 1) * size)
        cleaned[:, cols] = work_image[:, cols] - stripes[:, np.newaxis]
    return cleaned if rows else np.ascontiguousarray(cleaned.T)


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
        cleaned = median_clean(subtracted, mask, 2 if slow_axis_rows else 1, fit_by_channel)
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
