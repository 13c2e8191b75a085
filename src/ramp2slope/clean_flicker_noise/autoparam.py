"""clean_flicker_noise's ``autoparam``: choosing the background method, the flat and the fit by
channel from the exposure itself (jwst 3.0.0, NIRCam and NIRISS imaging).

A draft rate is cleaned quickly (flat-fielded when a FLAT exists, the scene clipped away, the
median background removed, one median per stripe subtracted), its sources are replaced by a
smooth background model, and a few statistics of the result decide: how much of the image the
scene covers, how much the background slopes across the middle of the image, how different the
four output channels look. The thresholds and the decision tree are jwst's; so are the
statistics' conventions (middle rows 3/8 to 5/8, a straight-line fit with 10-sigma clipped
residual spread), so that the same exposure gets the same parameters.
"""
import logging
import warnings
from fractions import Fraction

import numpy as np

from .clean_flicker_noise import background_level, clip_to_background, median_clean

__all__ = ["AUTOPARAM_EXP_TYPES", "quick_clean", "image_parameters"]

log = logging.getLogger("ramp2slope")

#: the exposure types autoparam knows, and the limits of its decision tree for each
_LIMITS = {
    "NIS_IMAGE": {"mask_frac": 0.07, "max_offset_high_mask": 0.07, "max_slope_low_offset": 1e-5,
                  "max_slope_high_offset": 1e-4, "slope_ratio": 5.0, "channel_sigma": 0.02},
    "NRC_IMAGE": {"mask_frac": 0.1, "max_offset_high_mask": 0.07, "max_slope_low_offset": 1e-5,
                  "max_slope_high_offset": 1e-5, "slope_ratio": 3.0, "channel_sigma": 0.02},
}
AUTOPARAM_EXP_TYPES = tuple(_LIMITS)


def quick_clean(rate, flat, slow_axis_rows):
    """A median-cleaned copy of a draft rate image and its background mask (True: background)."""
    image = np.array(rate, dtype=np.float32, copy=True)
    if flat is not None:
        image /= flat
    mask = np.full(image.shape, True)
    clip_to_background(image, mask)
    nan_pix = np.isnan(image)
    image[nan_pix] = 0.0
    mask[nan_pix] = False
    background = background_level(image, mask)
    image -= background
    clip_to_background(image, mask, lower_half_only=True)
    image = median_clean(image, mask, slow_axis_rows)
    image += background
    image[nan_pix] = np.nan
    return image, mask


def _band_average(image, start, stop, axis):
    """Mean over the band of rows (axis 0) or columns (axis 1) from ``start`` to ``stop`` (as
    fractions of the image), NaNs ignored: one value per column (per row)."""
    size = image.shape[axis]
    lo, hi = int(round(start * size)), int(round(stop * size))
    band = image[lo:hi, :] if axis == 0 else image[:, lo:hi]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(band, axis=axis)


def _line_fit(values):
    """Slope of a straight line through the finite values, and the clipped spread about it."""
    from astropy.stats import sigma_clipped_stats

    good = np.isfinite(values)
    x = np.arange(values.size)
    fit = np.polynomial.Polynomial.fit(x[good], values[good], deg=1)
    coef = fit.convert().coef
    slope = coef[1] if len(coef) > 1 else 0.0
    _, _, sigma = sigma_clipped_stats(values[good] - fit(x[good]), sigma=10.0)
    return slope, sigma


def _max_channel_offset(values):
    """The largest jump between neighbouring output channels' mean levels (0 unless full frame)."""
    from astropy.stats import sigma_clipped_stats

    if values.size != 2048:
        return 0.0
    means = np.array([sigma_clipped_stats(values[c * 512:(c + 1) * 512], sigma=3.0)[0]
                      for c in range(4)])
    return np.max(np.abs(means[1:] - means[:-1]))


def _decide(limits, mask_frac, max_offset, max_slope, slope_ratio, channel_sigma):
    """jwst's decision tree: the background method and whether to fit channel by channel."""
    high_mask = mask_frac >= limits["mask_frac"]
    high_offset = max_offset >= limits["max_offset_high_mask"]
    slope_over_low = max_slope >= limits["max_slope_low_offset"]
    slope_over_high = max_slope >= limits["max_slope_high_offset"]
    if not high_mask and high_offset:
        return "median", True
    if high_mask:
        steep = slope_over_high if high_offset else slope_over_low
        return ("model" if steep else "median"), False
    if slope_over_high:
        method = "model"
    elif slope_over_low:
        method = "median" if slope_ratio >= limits["slope_ratio"] else "model"
    else:
        method = "median"
    return method, bool(max_offset > 0 and channel_sigma >= limits["channel_sigma"])


def image_parameters(exp_type, rate, flat, slow_axis_rows):
    """The parameters autoparam sets for an imaging exposure (``exp_type`` NRC_IMAGE or
    NIS_IMAGE) from its draft rate, with the FLAT (or None): apply_flat_field,
    background_method, fit_by_channel."""
    limits = _LIMITS[exp_type]
    cleaned, mask = quick_clean(rate, flat, slow_axis_rows)
    background = background_level(cleaned, mask, "model")
    cleaned[~mask] = background if np.ndim(background) == 0 else background[~mask]
    mask_frac = np.sum(~mask) / mask.size
    over_rows = _band_average(cleaned, Fraction(3, 8), Fraction(5, 8), axis=0)
    over_cols = _band_average(cleaned, Fraction(3, 8), Fraction(5, 8), axis=1)
    col_slope, col_sigma = _line_fit(over_rows)
    row_slope, _ = _line_fit(over_cols)
    slopes = np.abs([row_slope, col_slope])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "divide by zero", RuntimeWarning)
        slope_ratio = np.max(slopes) / np.min(slopes)
    if exp_type == "NIS_IMAGE":
        # NIRISS: channel 1 (near the top) can look unlike the others
        _, channel_sigma = _line_fit(_band_average(cleaned, Fraction(10, 12), Fraction(11, 12), 0))
        max_offset = _max_channel_offset(over_cols)
    else:
        channel_sigma = col_sigma
        max_offset = _max_channel_offset(over_rows)
    log.debug("autoparam statistics: mask fraction %.5g, max offset %.5g, max slope %.5g, "
              "slope ratio %.5g, channel sigma %.5g", mask_frac, max_offset, np.max(slopes),
              slope_ratio, channel_sigma)
    method, by_channel = _decide(limits, mask_frac, max_offset, np.max(slopes), slope_ratio,
                                 channel_sigma)
    return {"apply_flat_field": flat is not None, "background_method": method,
            "fit_by_channel": by_channel}
