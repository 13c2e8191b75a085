"""What scales clean_flicker_noise's median image on a NIRISS SOSS time series.

On NIS_SOSS, jwst 3.0.0 does not scale the median image by each integration's median rate: it
runs three stage-2 steps on the draft rateints (``tso_median_image.make_median_image``), and so
does this module, with the same arithmetic:

1. **Background** (``bkg_subtract`` on SOSS): the BKG reference holds background templates.
   Pixels below the 35th percentile of the whole draft (DO_NOT_USE and REFERENCE_PIXEL left out)
   are background. Each template is split at its step near columns 685-725 (the largest
   gradient of the template smoothed by a 3-pixel Gaussian, row by row); each side is scaled by
   the median of the data/template ratios lying between their 25th and 50th percentiles (the
   right side fitted only up to column 950), and the template whose two sides leave the
   smallest summed RMS residual is subtracted. SUBSTRIP96 uses rows 10-105 of 256-row
   templates; other row counts skip the subtraction. The background rate of an integration is
   the draft minus the subtracted draft; its non-finite pixels are filled from a photutils
   model of the rest.
2. **Box extraction**: order 1's trace at the pupil-wheel position (PASTASOSS reference, on the
   reference's own columns, with SUBSTRIP256 rows whatever the subarray, as jwst's box does), a
   15-row box with fractional edges, each column's flux summed and its wavelength the box's
   mean over the order's wavelength map; columns with no finite wavelength are dropped.
3. **White light**: each integration's fluxes summed over the WAVELENGTHRANGE reference's range
   for order 1 and the exposure's filter (every wavelength when there is no such reference).

The median image is then made from the ramps minus each integration's background ramp (the
background rate times each group's time), scaled by the light curve, and the background ramp
added back (:mod:`.clean_flicker_noise_step`).
"""
import logging
import warnings

import numpy as np

from ..datamodels import dqflags
from ..errors import ReferenceFileError
from .background_level import background_level
from .soss_traces import order_trace, wavelength_map

__all__ = ["BOX_WIDTH", "background_rates", "box_weights", "group_times",
           "read_background_templates", "read_wavelength_range", "soss_light_curve",
           "subtract_template_background"]

log = logging.getLogger("ramp2slope")

#: Pixels above this percentile of the draft are taken as source (jwst's BackgroundStep default).
SOURCE_PERCENTILE = 35.0
#: The data/template ratios kept for a side's scale (jwst's default percentiles).
RATIO_PERCENTILES = (25.0, 50.0)
#: Where a template's step between its two background levels is looked for (columns).
STEP_COLUMNS = (685, 725)
#: Columns right of this are not fitted (contaminated by the source, per the NIRISS team).
LAST_FITTED_COLUMN = 950
#: First row of a SUBSTRIP96 window in a 256-row template.
SUBSTRIP96_FIRST_ROW = 10
#: Rows of the extraction box, and the order extracted.
BOX_WIDTH = 15
ORDER = 1


def read_background_templates(path):
    """The templates (float32, ntemplates x rows x columns) of a SOSS BKG reference."""
    from astropy.io import fits

    try:
        with fits.open(path) as hdul:
            data = hdul["SCI"].data
            templates = None if data is None else np.asarray(data, dtype=np.float32)
    except (OSError, KeyError, ValueError) as exc:
        raise ReferenceFileError(f"{path}: not a readable SOSS BKG reference ({exc})") from None
    if templates is None or templates.ndim != 3:
        raise ReferenceFileError(f"{path}: a SOSS BKG reference holds a cube of templates in "
                                 f"SCI; found {None if templates is None else templates.shape}")
    return templates


def read_wavelength_range(path, order, filter_name):
    """(min, max) wavelength of ``order`` and ``filter_name`` in a WAVELENGTHRANGE reference.
    ValueError when it lists none or several (jwst then leaves the exposure uncleaned)."""
    import asdf

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # the official data models' tags
            with asdf.open(path, lazy_load=False, memmap=False) as handle:
                entries = [list(entry) for entry in handle.tree["wavelengthrange"]]
    except Exception as exc:   # noqa: BLE001 - whatever is missing or unreadable
        raise ReferenceFileError(f"{path}: not a usable WAVELENGTHRANGE reference "
                                 f"({type(exc).__name__}: {exc})") from None
    # read as jwst's white_light reads it: through text, as an astropy Table of the list
    found = [entry for entry in entries
             if int(str(entry[0])) == int(order) and str(entry[1]) == str(filter_name)]
    if len(found) != 1:
        what = "No" if not found else "Multiple"
        raise ValueError(f"{what} reference wavelength range found for order {order} and "
                         f"filter {filter_name}.")
    return float(str(found[0][2])), float(str(found[0][3]))


def _sides(template, fitting):
    """(left, right) bool masks of a template's two background levels: split at its step, the
    right one cut at ``LAST_FITTED_COLUMN`` when ``fitting``."""
    from scipy import ndimage

    gradient = np.gradient(ndimage.gaussian_filter(template, 3), axis=1)
    first, last = STEP_COLUMNS
    step = np.argmax(gradient[:, first:last], axis=1) + first
    columns = np.arange(template.shape[1])[np.newaxis, :]
    right = columns >= step[:, np.newaxis]
    left = ~right
    if fitting:
        right[:, columns[0] > LAST_FITTED_COLUMN] = False
    return left, right


def _fit_template(rates, excluded, template):
    """The two sides' scales (float64) and RMS residuals of one template against the
    background pixels of ``rates``."""
    scales = np.array([np.nan, np.nan])
    residuals = np.array([np.inf, np.inf])
    for k, side in enumerate(_sides(template, fitting=True)):
        chosen = side[np.newaxis] & ~excluded
        data = rates[chosen]
        model = np.broadcast_to(template, rates.shape)[chosen]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = data / model
        finite = np.isfinite(ratio)
        if not finite.any():
            continue
        low, high = np.nanpercentile(ratio[finite], list(RATIO_PERCENTILES))
        kept = finite & (ratio > low) & (ratio < high)
        if not kept.any():
            continue
        scales[k] = np.nanmedian(ratio[kept])
        residuals[k] = np.sqrt(np.square(data[finite] - model[finite] * scales[k]).mean())
    return scales, residuals


def subtract_template_background(rates, dq, templates, source=None):
    """The draft ``rates`` (nints, rows, columns) minus the best-fitting scaled template (a new
    array), or an unchanged copy when the templates do not fit this subarray or no template
    can be fitted. ``source`` names the reference in the log."""
    nrows = rates.shape[-2]
    if templates.shape[-2] == 256 and nrows == 96:
        templates = templates[:, SUBSTRIP96_FIRST_ROW:SUBSTRIP96_FIRST_ROW + 96]
    elif templates.shape[-2] != nrows:
        log.warning("clean_flicker_noise: the BKG reference %s has %d rows, the SOSS subarray %d; "
                    "no background is subtracted", source, templates.shape[-2], nrows)
        return rates.copy()
    if templates.shape[-1] != rates.shape[-1]:
        raise ValueError(f"the BKG templates have {templates.shape[-1]} columns, the data "
                         f"{rates.shape[-1]}")
    flagged = (dq & np.uint32(dqflags.pixel["DO_NOT_USE"] | dqflags.pixel["REFERENCE_PIXEL"])) > 0
    usable = np.isfinite(rates) & ~flagged
    if not usable.any():
        # nothing to fit a template to (the background rate is then empty, as officially)
        return rates.copy()
    threshold = np.nanpercentile(rates[usable], SOURCE_PERCENTILE)
    excluded = (usable & (rates >= threshold)) | flagged
    best, best_scales, best_total = -1, None, np.inf
    for index, template in enumerate(templates):
        scales, residuals = _fit_template(rates, excluded, template)
        if np.sum(residuals) < best_total:
            best, best_scales, best_total = index, scales, np.sum(residuals)
    out = rates.copy()
    if best < 0:
        log.warning("clean_flicker_noise: no BKG template could be fitted; no background is "
                    "subtracted")
        return out
    log.info("clean_flicker_noise: SOSS background template %d, scaled by %.4g (left) and %.4g "
             "(right)", best, best_scales[0], best_scales[1])
    template = templates[best]
    for k, side in enumerate(_sides(template, fitting=False)):
        # float64 products rounded into the float32 cube, integration by integration as the
        # official cube-wide subtraction rounds them
        piece = template * side * best_scales[k]
        for plane in out:
            plane -= piece
    return out


def background_rates(rates, subtracted):
    """Each integration's background rate (float32): the draft minus its subtracted copy, its
    non-finite pixels filled from a photutils model of the rest. ValueError when an
    integration has no finite value."""
    background = rates - subtracted
    for i, plane in enumerate(background):
        bad = ~np.isfinite(plane)
        if bad.all():
            raise ValueError("No valid values in background rate")
        if bad.any():
            level = background_level(plane, ~bad, "model")
            plane[bad] = level if np.isscalar(level) else level[bad]
            log.debug("clean_flicker_noise: %d background value(s) filled in integration %d",
                      int(bad.sum()), i + 1)
    return background


def box_weights(centre, width, shape, columns):
    """Weights (float64, ``shape``) of a box ``width`` rows high centred on ``centre`` (one per
    entry of ``columns``): 1 inside, the covered fraction on the edge rows, 0 elsewhere."""
    rows = np.indices((shape[0], len(columns)))[0]
    half = width / 2
    weights = ((rows <= centre - 0.5 + half) & (centre + 0.5 - half <= rows)).astype(float)
    top = (centre - 0.5 + half < rows) & (rows < centre + 0.5 + half)
    weights[top] = (centre + half - (rows - 0.5))[top]
    bottom = (rows < centre + 0.5 - half) & (centre - 0.5 - half < rows)
    weights[bottom] = (rows + 0.5 - (centre - half))[bottom]
    out = np.zeros(shape, dtype=float)
    out[:, columns] = weights
    return out


def soss_light_curve(subtracted, pastasoss, pwcpos, subarray, wave_range=None):
    """The white-light flux (float64, one per integration) of the background-subtracted draft
    ``subtracted`` (nints, rows, columns): see the module. ``wave_range``: (min, max) or None
    for every wavelength. ValueError where jwst's extraction fails (the exposure is then left
    as it was)."""
    nints, nrows, ncols = subtracted.shape
    try:
        x, y, _ = order_trace(pastasoss, pwcpos, ORDER)
        wavelengths = wavelength_map(pastasoss, pwcpos, ORDER, subarray)
    except ReferenceFileError as exc:
        if "pupil wheel position" in str(exc):
            raise ValueError(str(exc)) from None    # jwst: a ValueError, the step FAILED
        raise
    if wavelengths.shape != (nrows, ncols):
        raise ValueError(f"the order {ORDER} wavelength map is {wavelengths.shape}, the data "
                         f"{(nrows, ncols)}")
    weights = box_weights(y, BOX_WIDTH, (nrows, ncols), x.astype(int))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        wavelength = np.nansum(wavelengths * weights, axis=0) / np.sum(weights, axis=0)
    valid = np.isfinite(wavelength)
    low, high = wave_range if wave_range is not None else (-1.0, 1.0e10)
    inside = (wavelength[valid] >= low) & (wavelength[valid] <= high)
    fluxes = np.empty((nints, int(valid.sum())))
    for i in range(nints):
        fluxes[i] = np.nansum(subtracted[i] * weights, axis=0)[valid]
    fluxes[:, ~inside] = np.nan
    return np.nansum(fluxes, axis=1)


def group_times(nframes, groupgap, frame_time, ngroups):
    """Seconds from the reset to each group's read (a group's frames end it; the gap follows)."""
    return [(nframes + (nframes + groupgap) * g) * frame_time for g in range(ngroups)]
