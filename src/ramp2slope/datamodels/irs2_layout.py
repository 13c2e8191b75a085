"""Where the pixels of a NIRSpec IRS2 readout sit in the stored array.

An IRS2 ("improved reference sampling and subtraction") readout interleaves reference samples
with the science pixels: each of the four amplifier outputs reads ``n`` normal pixels, then ``r``
reference pixels, and so on, and a fifth output (the reference output) is read alongside. Along the
detector's fast axis an IRS2 frame is therefore ``5 * (512 + 512 // n * r)`` samples long (3200 for
the usual n=16, r=4) instead of 2048. In the stored (DMS) frame of NRS1 that axis is the row axis
(second to last), reversed for NRS2.

Steps before refpix (dq_init, saturation, superbias) work on this layout; refpix removes the
reference samples, so every later step sees a 2048 x 2048 image.
"""
from dataclasses import dataclass

import numpy as np

__all__ = ["IRS2Layout", "is_irs2_shape", "layout_of", "science_shape", "normal_mask", "rows_mask",
           "to_normal", "from_normal"]

#: pixels per amplifier output of a NIRSpec detector along its fast axis
OUTPUT_PIXELS = 512
#: values of NRS_NORM and NRS_REF when the header has none (as jwst assumes)
DEFAULT_NORMAL = 16
DEFAULT_REFERENCE = 4


@dataclass(frozen=True)
class IRS2Layout:
    """The IRS2 sampling pattern: ``n`` normal samples, then ``r`` reference samples."""

    n: int = DEFAULT_NORMAL
    r: int = DEFAULT_REFERENCE

    @property
    def output_length(self):
        """Samples per output (each of the four amplifiers and the reference output)."""
        return OUTPUT_PIXELS + OUTPUT_PIXELS // self.n * self.r

    @property
    def length(self):
        """Samples along the fast axis of a full IRS2 frame (3200 for n=16, r=4)."""
        return 5 * self.output_length


def is_irs2_shape(shape):
    """True when an array's image axes are longer than a detector (jwst's test for IRS2 data)."""
    return max(shape[-1], shape[-2]) > 2048


def science_shape(model):
    """The image shape the science pixels fill: (2048, nx) for an IRS2 array, else its own shape."""
    ny, nx = model.shape[-2:]
    if not is_irs2_shape((ny, nx)):
        return ny, nx
    return int(np.count_nonzero(normal_mask(ny, layout_of(model)))), nx


def layout_of(model):
    """The layout named by the exposure's NRS_NORM and NRS_REF keywords (16 and 4 when absent)."""
    exposure = model.meta.exposure
    n = exposure.nrs_normal
    r = exposure.nrs_reference
    return IRS2Layout(DEFAULT_NORMAL if n is None else int(n), DEFAULT_REFERENCE if r is None else int(r))


def normal_mask(length, layout=IRS2Layout()):
    """Boolean mask along the fast axis, in read order: True on the 2048 science samples.

    The reference output comes first. In each amplifier output the reference samples start after
    ``n // 2`` normal ones and recur every ``n + r`` samples. When an output's samples do not end
    with the same ``n // 2`` normal ones, the pattern depends on the read direction, which
    alternates from one amplifier to the next.
    """
    n, r = layout.n, layout.r
    refout = length // 5
    mask = np.ones(length, dtype=bool)
    mask[:refout] = False
    period = n + r
    one_output = np.ones(refout, dtype=bool)
    for start in range(n // 2, refout + 1, period):
        one_output[start:start + r] = False
    tail = (refout - (n // 2 + r)) % period
    symmetric = tail == n // 2
    for amplifier in range(4):
        start = refout * (amplifier + 1)
        reversed_read = amplifier % 2 == 1 and not symmetric
        mask[start:start + refout] = one_output[::-1] if reversed_read else one_output
    return mask


def rows_mask(detector, length, layout=IRS2Layout()):
    """The normal-pixel mask along the stored row axis: read order for NRS1, reversed for NRS2."""
    mask = normal_mask(length, layout)
    if str(detector).upper() == "NRS2":
        return mask[::-1].copy()
    if str(detector).upper() != "NRS1":
        raise ValueError(f"IRS2 readouts exist for NRS1 and NRS2 only, not {detector}")
    return mask


def to_normal(array, rows):
    """The science rows of an IRS2-layout array (a copy): shape (..., 2048, nx)."""
    return array[..., rows, :]


def from_normal(irs2_array, normal_array, rows):
    """Write science rows back into an IRS2-layout array, in place."""
    irs2_array[..., rows, :] = normal_array
