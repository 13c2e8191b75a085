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

from .background_level import background_level, clip_to_background
from .clean_flicker_noise import median_clean

__all__ = ["AUTOPARAM_EXP_TYPES", "image_parameters", "nircam_image_parameters",
           "niriss_image_parameters", "quick_clean"]

log = logging.getLogger("ramp2slope")

#: the exposure types autoparam knows, and the limits of its decision tree for each
_LIMITS = {
    "NIS_IMAGE": {"mask_frac": 0.07, "max_offset_high_mask": 0.07, "max_slope_low_offset": 1e-5,
                  "max_slope_high_offset": 1e-4, "slope_ratio": 5.0, "channel_sigma": 0.02},
    "NRC_IMAGE": {"mask_frac": 0.1, "max_offset_high_mask": 0.07, "max_slope_low_offset": 1e-5,
                  "max_slope_high_offset": 1e-5, "slope_ratio": 3.0, "channel_sigma": 0.02},
}
AUTOPARAM_EXP_TYPES = tuple(_LIMITS)


def _draft_image(input_model):
    """The rate image autoparam judges: a ramp's draft rate (the default ramp fit, its
    references found as the step finds them), a cube's mean over integrations, or a copy of
    a rate image."""
    from .. import datamodels

    if isinstance(input_model, datamodels.RampModel):
        from .clean_flicker_noise_step import CleanFlickerNoiseStep, ramp_drafts

        return ramp_drafts(CleanFlickerNoiseStep(), input_model)[0].data
    data = np.asarray(input_model.data)
    if data.ndim == 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(data, axis=0)
    return data.copy()


def _slow_axis_rows(input_model):
    from ..errors import Ramp2SlopeError

    slowaxis = input_model.meta.subarray.slowaxis
    if slowaxis is None:
        raise Ramp2SlopeError(f"{input_model._path or 'input'}: no SLOWAXIS keyword; the readout "
                              f"direction is needed to fit the 1/f stripes")
    return abs(int(slowaxis)) == 2


def _flat_for(input_model, flat_filename):
    """The FLAT cut to the exposure (as the step reads it), or None for None or "N/A"."""
    if flat_filename is None or str(flat_filename).strip().upper() == "N/A":
        return None
    from .clean_flicker_noise_step import load_flat

    return load_flat(str(flat_filename), input_model)


def quick_clean(input_model, flat_filename=None):
    """A median-cleaned, flat-fielded (when ``flat_filename`` names a FLAT) rate image of
    ``input_model`` (a ramp, rate or rateints model) and its background mask (True:
    background), with every cleaning parameter at its default: jwst's public
    ``autoparam.quick_clean``."""
    return _quick_clean_image(_draft_image(input_model), _flat_for(input_model, flat_filename),
                              _slow_axis_rows(input_model))


def _quick_clean_image(rate, flat, slow_axis_rows):
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
    image = median_clean(image, mask, 2 if slow_axis_rows else 1)
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
    """Intercept and slope of a straight line through the finite values, and the clipped
    spread about it."""
    from astropy.stats import sigma_clipped_stats

    good = np.isfinite(values)
    x = np.arange(values.size)
    fit = np.polynomial.Polynomial.fit(x[good], values[good], deg=1)
    coef = fit.convert().coef
    slope = coef[1] if len(coef) > 1 else 0.0
    _, _, sigma = sigma_clipped_stats(values[good] - fit(x[good]), sigma=10.0)
    return coef[0], slope, sigma


def _max_channel_offset(values):
    """The largest jump between neighbouring output channels' mean levels (0 unless full frame)."""
    from astropy.stats import sigma_clipped_stats

    if values.size != 2048:
        return 0.0
    means = np.array([sigma_clipped_stats(values[c * 512:(c + 1) * 512], sigma=3.0)[0]
                      for c in range(4)])
    return np.max(np.abs(means[1:] - means[:-1]))


def _decide(limits, mask_frac, max_offset, max_slope, slope_ratio, channel_sigma):
    """jwst's decision tree: the background method and whether to fit channel by channel. The
    branch taken is logged (DEBUG) under the labels jwst logs it with."""
    high_mask = mask_frac >= limits["mask_frac"]
    high_offset = max_offset >= limits["max_offset_high_mask"]
    slope_over_low = max_slope >= limits["max_slope_low_offset"]
    slope_over_high = max_slope >= limits["max_slope_high_offset"]
    if not high_mask and high_offset:
        log.debug("autoparam branch: Low mask, high offset -> median background, by channel")
        return "median", True
    if high_mask:
        steep = slope_over_high if high_offset else slope_over_low
        method = "model" if steep else "median"
        log.debug("autoparam branch: High mask, %s offset, %s slope -> %s background, whole "
                  "image", "high" if high_offset else "low", "high" if steep else "low", method)
        return method, False
    if slope_over_high:
        method, branch = "model", "high slope"
    elif slope_over_low:
        high_ratio = slope_ratio >= limits["slope_ratio"]
        method = "median" if high_ratio else "model"
        branch = f"medium slope, {'high' if high_ratio else 'low'} slope ratio"
    else:
        method, branch = "median", "low slope"
    by_channel = bool(max_offset > 0 and channel_sigma >= limits["channel_sigma"])
    log.debug("autoparam branch: Low mask, low offset, %s -> %s background; %s channel sigma",
              branch, method, "High" if by_channel else "Low")
    return method, by_channel


def image_parameters(exp_type, rate, flat, slow_axis_rows):
    """The parameters autoparam sets for an imaging exposure (``exp_type`` NRC_IMAGE or
    NIS_IMAGE) from its draft rate, with the FLAT (or None): apply_flat_field,
    background_method, fit_by_channel."""
    limits = _LIMITS[exp_type]
    cleaned, mask = _quick_clean_image(rate, flat, slow_axis_rows)
    background = background_level(cleaned, mask, "model")
    cleaned[~mask] = background if np.ndim(background) == 0 else background[~mask]
    mask_frac = np.sum(~mask) / mask.size
    over_rows = _band_average(cleaned, Fraction(3, 8), Fraction(5, 8), axis=0)
    over_cols = _band_average(cleaned, Fraction(3, 8), Fraction(5, 8), axis=1)
    _, col_slope, col_sigma = _line_fit(over_rows)
    _, row_slope, _ = _line_fit(over_cols)
    slopes = np.abs([row_slope, col_slope])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "divide by zero", RuntimeWarning)
        slope_ratio = np.max(slopes) / np.min(slopes)
    if exp_type == "NIS_IMAGE":
        # NIRISS: channel 1 (near the top) can look unlike the others
        top_rows = _band_average(cleaned, Fraction(10, 12), Fraction(11, 12), 0)
        _, _, channel_sigma = _line_fit(top_rows)
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


def _model_parameters(exp_type, input_model, flat_filename, rate=None):
    image = _draft_image(input_model) if rate is None else rate
    return image_parameters(exp_type, image, _flat_for(input_model, flat_filename),
                            _slow_axis_rows(input_model))


def niriss_image_parameters(input_model, flat_filename, rate=None):
    """The parameters autoparam sets for a NIRISS image (a ramp, rate or rateints model), with
    the FLAT ``flat_filename`` (None or "N/A": without): jwst's public function. ``rate``: the
    draft rate image when the caller has it already."""
    return _model_parameters("NIS_IMAGE", input_model, flat_filename, rate)


def nircam_image_parameters(input_model, flat_filename, rate=None):
    """As :func:`niriss_image_parameters`, for a NIRCam image."""
    return _model_parameters("NRC_IMAGE", input_model, flat_filename, rate)
