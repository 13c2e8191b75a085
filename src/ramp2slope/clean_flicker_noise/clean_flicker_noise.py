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
from .nsclean import (ALLSLITS_CUTOFFS, SUBARRAY_CUTOFFS, NSClean, NSCleanSubarray,
                      nsclean_subarray)

__all__ = ["scene_mask", "row_medians", "median_clean", "clean_image", "clean_integration",
           "median_image_scale", "relative_scale", "median_ramp", "clean_integration_against",
           # jwst's function-level API (the end of this module)
           "read_flat_file", "make_rate", "post_process_rate", "mask_ifu_slices", "mask_slits",
           "create_mask", "fft_clean_full_frame", "fft_clean_subarray", "make_intermediate_model",
           "do_correction", "NRS_FS_REGION", "NSClean", "NSCleanSubarray"]

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


def fft_clean_full_frame(image, mask, detector):
    """A full-frame NIRSpec image cleaned by NSClean (``detector`` NRS1 or NRS2; ``mask`` marks
    the background), or None when its fit is singular (jwst then marks the step FAILED)."""
    try:
        return NSClean(detector, mask).clean(image, buff=True)
    except np.linalg.LinAlgError:
        log.warning("clean_flicker_noise: Error cleaning image: NSClean's fit is singular")
        return None


def fft_clean_subarray(image, mask, detector, npix_iter=512, fc=SUBARRAY_CUTOFFS,
                       exclude_outliers=True, sigrej=4, minfrac=0.05):
    """A NIRSpec subarray image cleaned by NSClean over blocks of lines (see
    :func:`.nsclean.nsclean_subarray` for the parameters), or None when the mask leaves no
    background pixel or a block's fit is singular (jwst then marks the step FAILED)."""
    try:
        cleaned = nsclean_subarray(image, mask, detector, fc, npix_iter=npix_iter,
                                   exclude_outliers=exclude_outliers, sigrej=sigrej,
                                   minfrac=minfrac)
    except np.linalg.LinAlgError:
        log.warning("clean_flicker_noise: Error cleaning image: a block's NSClean fit is singular")
        return None
    if cleaned is None:
        log.warning("clean_flicker_noise: No good pixels in the background mask for NSClean")
    return cleaned


class CleaningFailed(Ramp2SlopeError):
    """NSClean could not fit an image's background. As in jwst, the step then gives the whole
    exposure back as it was and records FAILED; ``group`` (1-based) says which group (or group
    difference) of the integration being cleaned failed, where known."""
    group = 1


def _nsclean(image, mask, detector, subarray):
    if image.shape == (2048, 2048):
        cleaned = fft_clean_full_frame(image, mask, detector)
    else:
        cutoffs = ALLSLITS_CUTOFFS if str(subarray).upper() == "ALLSLITS" else SUBARRAY_CUTOFFS
        cleaned = fft_clean_subarray(image, mask, detector, fc=cutoffs)
    if cleaned is None:
        raise CleaningFailed("NSClean could not fit the background")
    return cleaned


def _in_group(exc, group):
    exc.group = group
    return exc


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
        try:
            cleaned, level = clean_image(diff, group_mask, **options)
        except CleaningFailed as exc:
            raise _in_group(exc, j + 1) from None
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
        try:
            cleaned, _ = clean_image(data[j] - model, mask.copy(), **options)
        except CleaningFailed as exc:
            raise _in_group(exc, j + 1) from None
        if cleaned is None:
            skipped += 1
            continue
        data[j] = model + cleaned
        if background is not None:
            background[j] = model
    return skipped


# -- jwst's function-level API -------------------------------------------------------------------
# The functions jwst 3.0.0's clean_flicker_noise module exposes besides its step, with their
# signatures, on ramp2slope's models: code written against them runs here. They are built on
# the step's own methods (references found as the step finds them), so there is one
# implementation of each rule. NIRSpec's WCS (assign_wcs, msaflagopen) is not computed here:
# what needs it raises a one-line error.

#: Rows (y start, stop) of NIRSpec's fixed-slit region, masked on IFU and MOS exposures with
#: ``mask_science_regions`` unless open fixed slits are part of the MSA configuration.
NRS_FS_REGION = [922, 1116]


def _step(**options):
    from .clean_flicker_noise_step import CleanFlickerNoiseStep

    return CleanFlickerNoiseStep(skip=False, **options)


def _no_nirspec_wcs(what):
    return Ramp2SlopeError(f"clean_flicker_noise: {what} needs NIRSpec's WCS (assign_wcs, "
                           f"msaflagopen), which ramp2slope does not compute")


def read_flat_file(input_model, flat_filename):
    """The FLAT at ``flat_filename`` cut to ``input_model``'s window with its zero and NaN
    values filled (see :func:`.clean_flicker_noise_step.load_flat`), or None without a file."""
    from .clean_flicker_noise_step import load_flat

    if flat_filename is None or str(flat_filename).lower() == "none":
        return None
    return load_flat(str(flat_filename), input_model)


def make_rate(input_model, input_dir="", return_cube=False):
    """The draft rate (an ImageModel) of a ramp model, or its draft rateints (a CubeModel) with
    ``return_cube``: an ordinary least-squares fit of each pixel's ramp (GAIN and READNOISE from
    CRDS). ``input_dir`` is accepted for jwst's signature and not needed."""
    from .clean_flicker_noise_step import ramp_drafts

    log.info("clean_flicker_noise: Creating draft rate file for the scene mask")
    rate, rateints = ramp_drafts(_step(), input_model)
    return rateints if return_cube else rate


def post_process_rate(input_model, assign_wcs=False, msaflagopen=False, flat_dq=False,
                      input_dir=""):
    """A draft rate prepared for the scene mask: with ``flat_dq`` its DQ combined with the
    FLAT's (CRDS), the pixels the flat cannot correct flagged DO_NOT_USE. ``assign_wcs`` and
    ``msaflagopen`` (NIRSpec) raise Ramp2SlopeError: ramp2slope computes no NIRSpec WCS."""
    if assign_wcs or msaflagopen:
        raise _no_nirspec_wcs("post_process_rate(assign_wcs/msaflagopen)")
    if flat_dq:
        log.info("clean_flicker_noise: Retrieving flat DQ to mask the non-science regions")
        output = input_model.copy()
        output.dq = np.asarray(output.dq, np.uint32) | _step()._flat_dq(output, "the DQ")
        return output
    return input_model


def mask_ifu_slices(input_model, mask):
    """Would unset the pixels of NIRSpec's IFU slices in ``mask``: needs the NIRSpec WCS."""
    raise _no_nirspec_wcs("masking the IFU slices")


def mask_slits(input_model, mask):
    """Would unset the pixels of NIRSpec's open slits in ``mask``: needs the NIRSpec WCS."""
    raise _no_nirspec_wcs("masking the open slits")


def _fixed_slits_open(input_model):
    """Whether the MSA configuration in the model's WCS opens fixed slits (never known here:
    no NIRSpec WCS is computed, so the fixed-slit region is masked, as jwst does without one)."""
    wcs = getattr(input_model.meta, "wcs", None)
    try:
        slits = wcs.get_transform("gwa", "slit_frame").slits
    except (AttributeError, ValueError, TypeError):
        log.warning("clean_flicker_noise: Open slits not found in input WCS; masking the "
                    "fixed-slit region")
        return False
    return any(getattr(slit, "quadrant", None) == 5 for slit in slits)


def create_mask(input_model, mask_science_regions=False, n_sigma=2.0, fit_histogram=False,
                single_mask=False, soss_refmodel=None):
    """The background mask (bool, True for background) of a rate image or rateints cube model.

    Pixels NaN or exactly zero are not background; with ``mask_science_regions`` neither are
    NIRSpec's slits, IFU slices, failed-open shutters and (on IFU and MOS) fixed-slit region,
    MIRI imaging's DO_NOT_USE and NON_SCIENCE pixels, nor NIRISS SOSS's traces (from the
    PASTASOSS reference at path ``soss_refmodel``, else from CRDS). The rest is clipped to the
    background's range (``n_sigma`` above, 3 sigma below; plane by plane for a cube);
    ``single_mask`` reduces a cube's mask to one plane (background in every integration).
    """
    data = np.asarray(input_model.data)
    exp_type = str(input_model.meta.exposure.type or "").upper()
    mask = np.full(data.shape, True)
    if mask_science_regions:
        if exp_type == "NRS_IFU":
            mask = mask_ifu_slices(input_model, mask)
        elif exp_type in ("NRS_FIXEDSLIT", "NRS_BRIGHTOBJ", "NRS_MSASPEC"):
            mask = mask_slits(input_model, mask)
        dq = np.asarray(input_model.dq, np.uint32)
        if exp_type.startswith("NRS"):
            mask &= (dq & np.uint32(dqflags.pixel["MSA_FAILED_OPEN"])) == 0
        if exp_type == "MIR_IMAGE":
            unusable = np.uint32(dqflags.pixel["DO_NOT_USE"] | dqflags.pixel["NON_SCIENCE"])
            mask &= (dq & unusable) == 0
        if exp_type == "NIS_SOSS":
            step = _step(mask_science_regions=True,
                         **({} if soss_refmodel is None else {"override_pastasoss": str(soss_refmodel)}))
            mask &= ~step._soss_traces(input_model, data.shape[-2:])
        if exp_type == "NRS_IFU" or (exp_type == "NRS_MSASPEC"
                                     and not _fixed_slits_open(input_model)):
            mask[..., NRS_FS_REGION[0]:NRS_FS_REGION[1], :] = False
    mask = scene_mask(data, n_sigma, fit_histogram, exclude=~mask)
    if single_mask and mask.ndim == 3:
        mask = np.all(mask, axis=0)
    return mask


def make_intermediate_model(input_model, intermediate_data):
    """A model of ``input_model``'s class holding ``intermediate_data`` (a saved background or
    noise), with the input's metadata."""
    output = type(input_model)(data=intermediate_data)
    output.update(input_model)
    return output


def do_correction(input_model, input_dir=None, fit_method="median", fit_by_channel=False,
                  background_method="median", background_box_size=None,
                  mask_science_regions=False, flat_filename=None, pastasoss_filename=None,
                  n_sigma=2.0, fit_histogram=False, single_mask=True, user_mask=None,
                  save_mask=False, save_background=False, save_noise=False):
    """The step's correction on ``input_model`` (a ramp, rate or rateints model, updated in
    place), with the step's parameters as arguments (``flat_filename`` applies that FLAT;
    ``pastasoss_filename`` names the PASTASOSS reference).

    Returns ``(output_model, mask_model, background_model, noise_model, status)``: the cleaned
    model, the scene mask, fitted background and fitted noise models where ``save_mask``,
    ``save_background``, ``save_noise`` ask for them (else None), and 'COMPLETE' or 'FAILED'
    (the data then left as they were). Nothing is written to disk.
    """
    if isinstance(background_method, str) and background_method.lower() == "none":
        background_method = None
    options = dict(fit_method=fit_method, fit_by_channel=fit_by_channel,
                   background_method=background_method, background_box_size=background_box_size,
                   mask_science_regions=mask_science_regions, n_sigma=n_sigma,
                   fit_histogram=fit_histogram, single_mask=single_mask, user_mask=user_mask,
                   save_mask=save_mask, save_background=save_background, save_noise=save_noise,
                   apply_flat_field=flat_filename is not None
                   and str(flat_filename).lower() != "none")
    if options["apply_flat_field"]:
        options["override_flat"] = str(flat_filename)
    if pastasoss_filename is not None:
        options["override_pastasoss"] = str(pastasoss_filename)
    step = _step(**options)
    log.info("clean_flicker_noise: Input exposure type is %s, detector=%s",
             input_model.meta.exposure.type, input_model.meta.instrument.detector)
    output, status, kept = step.process_as_function(input_model)
    if status != "COMPLETE":
        return output, None, None, None, "FAILED"
    return (output, kept.get("mask"), kept.get("flicker_bkg"), kept.get("flicker_noise"),
            "COMPLETE")
