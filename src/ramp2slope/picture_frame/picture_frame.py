"""picture_frame: scale and subtract NIRSpec's thermal "picture frame" pattern (jwst 3.0.0).

The PICTUREFRAME reference holds the pattern as a full-frame rate image. In each group (minus
the integration's first group) or rate image, the medians of background pixels in the centre
of the detector and in a band along its edges fix a scale and an offset for the pattern, and the
scaled pattern is subtracted. The arithmetic is NumPy's float32 in the official order, so the
result is bit-identical to jwst's.
"""
import numpy as np

__all__ = ["region_masks", "reference_levels", "correct_ramp_integration", "correct_rate"]

# full-frame rows/columns (0-based, stop excluded): the edge band between the reference pixels
# and the centre, on each side, and the centre
LOWER_EDGE = (4, 75)
UPPER_EDGE = (1985, 2043)
CENTER = (76, 1984)


def region_masks(background):
    """``(center, edge)``: the background pixels (``background``, bool, full frame) of the
    centre and of the edge bands (reference pixels excluded)."""
    y, x = np.mgrid[: background.shape[0], : background.shape[1]]
    in_center = (y >= CENTER[0]) & (y < CENTER[1]) & (x >= CENTER[0]) & (x < CENTER[1])
    outside = (y < LOWER_EDGE[0]) | (y >= UPPER_EDGE[1]) | (x < LOWER_EDGE[0]) | (x >= UPPER_EDGE[1])
    band = np.zeros(background.shape, bool)
    for axis in (y, x):
        band |= ((axis >= LOWER_EDGE[0]) & (axis < LOWER_EDGE[1])) | \
                ((axis >= UPPER_EDGE[0]) & (axis < UPPER_EDGE[1]))
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
