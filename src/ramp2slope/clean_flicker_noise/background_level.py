"""The background of an image under a mask: clipping the mask to the background's range, and
the level (a median, or photutils' Background2D model) removed before the stripe fit.

The public functions have jwst 3.0.0's names and signatures (``jwst.clean_flicker_noise.
background_level``), so code calling them there runs here unchanged.
"""
import logging

import numpy as np

from ..errors import Ramp2SlopeError
from .clipped_stats import SIGMA_LIMIT, exact_median, mirrored_lower_half, sigma_clipped_stats

__all__ = ["clip_to_background", "background_level", "model_background", "default_box_size",
           "histogram_fit"]

log = logging.getLogger("ramp2slope")

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


def clip_to_background(image, mask, sigma_lower=3.0, sigma_upper=2.0, fit_histogram=False,
                       lower_half_only=False, verbose=False):
    """Unset in ``mask`` (bool, in place) the pixels of ``image`` outside the background's range
    ``[center - sigma_lower * sigma, center + sigma_upper * sigma]``.

    Center and sigma come from a 3-sigma iterative clip of the masked values (the median, or
    with ``fit_histogram`` the mean refined with the sigma by a Gaussian fit to their
    histogram); with ``lower_half_only`` from the values below the center mirrored about it.
    ``verbose`` logs them at debug level. An empty mask is left as it is.
    """
    if not mask.any():
        return
    # sorted in the image's dtype (float32 sorts faster), compared in float64 (exact)
    ordered = np.sort(image[mask]).astype(np.float64)
    mean, median, sigma = sigma_clipped_stats(ordered, presorted=True)
    center = mean if fit_histogram else median
    if verbose:
        log.debug("background clip: center: %.5g sigma: %.5g", center, sigma)
    if lower_half_only:
        ordered = mirrored_lower_half(ordered, center)
        mean, median, sigma = sigma_clipped_stats(ordered, presorted=True)
        center = mean if fit_histogram else median
        if verbose:
            log.debug("lower half mirrored: center: %.5g sigma: %.5g", center, sigma)
    if fit_histogram:
        center, sigma = histogram_fit(ordered, center, sigma)
        center, sigma = np.float64(center), np.float64(sigma)
        if verbose:
            log.debug("histogram fit: center: %.5g sigma: %.5g", center, sigma)
    low, high = center - sigma_lower * sigma, center + sigma_upper * sigma
    if verbose:
        log.debug("background range: %.5g to %.5g", low, high)
    # float64 thresholds: a float32 image is compared in float64, as jwst's float64 copy is
    mask[image < low] = False
    mask[image > high] = False


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
    if box_size is None:
        box_size = default_box_size(image.shape)
        log.debug("background model: box size %s", box_size)
    box_size = [int(n) for n in box_size]
    if image.shape[0] % box_size[0] or image.shape[1] % box_size[1]:
        log.warning("background box size %s does not divide evenly into the image shape %s",
                    box_size, image.shape)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=AstropyUserWarning)
            fitted = Background2D(image, box_size=box_size, filter_size=(5, 5), mask=~mask,
                                  sigma_clip=SigmaClip(sigma=SIGMA_LIMIT, maxiters=5),
                                  bkg_estimator=MedianBackground())
    except ValueError:
        log.error("Background fit failed, using median value instead of the model")
        return None
    return fitted.background


def background_level(image, mask, background_method="median", background_box_size=None):
    """The background removed before the stripe fit and restored after it.

    The mask (modified in place) is first clipped to the background by the mirrored lower
    half of its values; then ``background_method`` 'median' gives their median (NaNs ignored),
    'model' photutils' Background2D of the masked image over boxes of ``background_box_size``
    (default: per axis the largest size up to 32 dividing the image) or, where it cannot be
    fitted, the median; None gives 0.
    """
    if background_method is None:
        return 0.0
    clip_to_background(image, mask, SIGMA_LIMIT, SIGMA_LIMIT, lower_half_only=True)
    if background_method == "model":
        fitted = model_background(image, mask, background_box_size)
        if fitted is not None:
            return fitted
    values = image[mask]
    finite = np.isfinite(values)
    if not finite.all():
        values = values[finite]
        if values.size == 0:
            return np.nan
    return exact_median(values)
