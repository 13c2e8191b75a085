"""Reference-pixel correction (refpix) for the NIR detectors, traditional (non-IRS2) readout.

:func:`correct_refpix` corrects a whole ramp (and its ZEROFRAME) in place; call it once per
exposure, because the official arithmetic differs between the very first group and the rest.
"""
from .clipping import sigma_clip_values, sigma_clipped_mean
from .orientation import (
    detector_to_dms,
    detector_to_dms_index,
    dms_to_detector,
    dms_to_detector_index,
)
from .reference_pixels import COMPLETE, SKIPPED, correct_refpix
from .side import combine_sides, reflect_pad_rows, running_median
from .sirs import load_sirs_coefficients, make_sirs_kernels, sirs_coefficients

__all__ = [
    "COMPLETE", "SKIPPED", "correct_refpix", "dms_to_detector", "detector_to_dms",
    "dms_to_detector_index", "detector_to_dms_index", "sigma_clip_values", "sigma_clipped_mean",
    "reflect_pad_rows", "running_median", "combine_sides", "make_sirs_kernels",
    "sirs_coefficients", "load_sirs_coefficients",
]
from .refpix_step import RefPixStep  # noqa: E402
__all__ += ["RefPixStep"]
