"""The scaled median image of ``background_method='median_image'``, as one array.

jwst 3.0.0 exposes it as ``make_median_image`` in a module of this name; the function here has
its signature and result, so code calling it there runs here. The step itself never builds
this array for a whole exposure: it keeps the median ramp and the per-integration scale apart
and scales one integration at a time (see :class:`.CleanFlickerNoiseStep`).
"""
import numpy as np

from .clean_flicker_noise import median_ramp
from .soss_light_curve import group_times

__all__ = ["make_median_image"]


def _make_background_ramp(input_model, background_rates):
    """The ramp (nints, ngroups, ny, nx) of the background ``background_rates`` (one rate image
    per integration) read at each group's time of ``input_model`` (a ramp)."""
    exposure = input_model.meta.exposure
    nints, ngroups = input_model.data.shape[:2]
    times = group_times(int(exposure.nframes), int(exposure.groupgap or 0),
                        float(exposure.frame_time), ngroups)
    ramp = np.empty_like(input_model.data)
    for g, seconds in enumerate(times):
        ramp[:, g] = background_rates * seconds
    return ramp


def make_median_image(input_model, rateints_model, soss_refmodel=None):
    """The image subtracted from each integration of ``input_model`` (a ramp or rateints model)
    before its 1/f fit: the median over integrations scaled by each integration's flux.

    ``rateints_model`` is the draft rateints of ``input_model`` (the same model for a rateints
    input). The flux is aperture photometry on imaging time series, a white-light curve along
    the order-1 trace on NIRISS SOSS (whose template background is taken out of the median and
    added back), else the median rate; references those need (GAIN, PASTASOSS, BKG,
    WAVELENGTHRANGE) come from CRDS, ``soss_refmodel`` (the path of a PASTASOSS reference)
    excepted. Returns an array of ``input_model.data``'s shape; the inputs are not modified.
    Raises ValueError for 2-D data, fewer than two integrations, or no finite flux.
    """
    from .clean_flicker_noise_step import CleanFlickerNoiseStep

    data = input_model.data
    if data.ndim < 3:
        raise ValueError("a median image is made over integrations: not for 2D data")
    nints = data.shape[0]
    if nints <= 1:
        raise ValueError(f"a median image is made over integrations: not for <2 integrations "
                         f"({nints})")
    options = {"background_method": "median_image", "skip": False}
    if soss_refmodel is not None:
        options["override_pastasoss"] = str(soss_refmodel)
    step = CleanFlickerNoiseStep(**options)
    scale, sky, subtracted = step.median_image_scale(input_model, rateints_model)
    if data.ndim == 4:
        median = median_ramp(data, sky)
        scaled = scale[:, None, None, None] * median[np.newaxis]
        if sky is not None:
            scaled += _make_background_ramp(input_model, sky[0])
        return scaled
    source = rateints_model.data if subtracted is None else subtracted
    scaled = scale[:, None, None] * median_ramp(source[:, np.newaxis])[0][np.newaxis]
    if sky is not None:
        scaled += sky[0]
    return scaled
