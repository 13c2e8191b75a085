"""picture_frame: scale and subtract NIRSpec's thermal "picture frame" pattern (jwst 3.0.0).

The PICTUREFRAME reference holds the pattern as a full-frame rate image. In each group (minus
the integration's first group) or rate image, the medians of background pixels in the centre
of the detector and in a band along its edges fix a scale and an offset for the pattern, and the
scaled pattern is subtracted. The arithmetic is NumPy's float32 in the official order, so the
result is bit-identical to jwst's.
"""
import numpy as np

__all__ = ["region_masks", "reference_levels", "correct_ramp_integration", "correct_rate",
           "correct_picture_frame", "LOWER_EDGE_REGION", "UPPER_EDGE_REGION", "CENTER_REGION"]

# full-frame rows/columns (0-based, stop excluded): the edge band between the reference pixels
# and the centre, on each side, and the centre (jwst's names)
LOWER_EDGE_REGION = (4, 75)
UPPER_EDGE_REGION = (1985, 2043)
CENTER_REGION = (76, 1984)


def region_masks(background):
    """``(center, edge)``: the background pixels (``background``, bool, full frame) of the
    centre and of the edge bands (reference pixels excluded)."""
    y, x = np.mgrid[: background.shape[0], : background.shape[1]]
    in_center = ((y >= CENTER_REGION[0]) & (y < CENTER_REGION[1])
                 & (x >= CENTER_REGION[0]) & (x < CENTER_REGION[1]))
    outside = ((y < LOWER_EDGE_REGION[0]) | (y >= UPPER_EDGE_REGION[1])
               | (x < LOWER_EDGE_REGION[0]) | (x >= UPPER_EDGE_REGION[1]))
    band = np.zeros(background.shape, bool)
    for axis in (y, x):
        band |= ((axis >= LOWER_EDGE_REGION[0]) & (axis < LOWER_EDGE_REGION[1])) | \
                ((axis >= UPPER_EDGE_REGION[0]) & (axis < UPPER_EDGE_REGION[1]))
    return background & in_center, background & band & ~outside


def reference_levels(pattern, center, edge):
    """Median of the reference pattern over the centre and over the edge pixels."""
    return np.nanmedian(pattern[center]), np.nanmedian(pattern[edge])


def _correction(images, pattern, center, edge, levels):
    # one scale and one offset per image: the centre-to-edge contrast of the image against the
    # pattern's, and the image's edge level
    median_center = np.nanmedian(images[..., center], axis=-1)
    median_edge = np.nanmedian(images[..., edge], axis=-1)
    center_ref, edge_ref = levels
    scale = (median_center - median_edge) / (center_ref - edge_ref)
    return scale[..., None, None] * (pattern - edge_ref) + median_edge[..., None, None]


def correct_ramp_integration(data, pattern, center, edge, levels):
    """Correct one integration's groups (ngroups, ny, nx), float32, in place: every group after
    the first, taken relative to the first, loses its scaled pattern."""
    first = data[:1]
    later = data[1:]
    later -= first
    later += first - _correction(later, pattern, center, edge, levels)
    return data


def correct_rate(image, pattern, center, edge, levels):
    """Correct a rate image (ny, nx) or cube (nints, ny, nx), float32, in place."""
    image += 0.0 - _correction(image, pattern, center, edge, levels)
    return image


def correct_picture_frame(input_model, pictureframe_model, mask_science_regions=True, n_sigma=2.0,
                          input_dir="", save_mask=False, save_correction=False):
    """The step's correction on ``input_model`` (a NIRSpec full-frame ramp or rate model,
    updated in place) with the PICTUREFRAME reference ``pictureframe_model`` (a model or a
    path), as jwst's function of this name: returns ``(output_model, mask_model,
    correction_model, status)``, the mask and correction models only where ``save_mask`` and
    ``save_correction`` ask for them and the correction was made, status 'COMPLETE' or
    'SKIPPED'. ``mask_science_regions`` needs NIRSpec's WCS: a one-line error here (pass
    False). ``input_dir`` is accepted for jwst's signature and not needed."""
    from .picture_frame_step import PictureFrameStep

    step = PictureFrameStep(skip=False, mask_science_regions=mask_science_regions,
                            n_sigma=n_sigma, save_mask=save_mask,
                            save_correction=save_correction,
                            override_pictureframe=pictureframe_model)
    output, status, kept = step.process_as_function(input_model)
    if status != "COMPLETE":
        return output, kept.get("pctfrm_mask"), None, "SKIPPED"
    return output, kept.get("pctfrm_mask"), kept.get("pctfrm_correction"), "COMPLETE"
