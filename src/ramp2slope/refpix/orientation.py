"""DMS (science) frame <-> detector (readout) frame for the NIR 2048x2048 detectors.

FASTAXIS/SLOWAXIS say which DMS axis the readout runs along and in which direction:
``|FASTAXIS| = 1`` means the fast (column-to-column) direction is DMS x, ``|FASTAXIS| = 2`` means it
is DMS y (the detector is transposed with respect to the stored image, NIRISS and NIRSpec). A
negative value flips that axis. In the detector frame the fast direction is always along x (the
last axis) and the four amplifiers are vertical stripes of 512 columns.

The transforms return numpy *views*; they never copy.
"""
import numpy as np

from ..errors import Ramp2SlopeError

#: Size of a NIR detector, in pixels, along each axis.
NIR_SIZE = 2048


def check_axes(fastaxis, slowaxis):
    """Validate the FASTAXIS/SLOWAXIS pair; return them as ints."""
    try:
        fast, slow = int(fastaxis), int(slowaxis)
    except (TypeError, ValueError):
        raise Ramp2SlopeError(
            f"FASTAXIS/SLOWAXIS must be +-1 or +-2, got {fastaxis!r}/{slowaxis!r}") from None
    if {abs(fast), abs(slow)} != {1, 2}:
        raise Ramp2SlopeError(
            f"FASTAXIS/SLOWAXIS must be one of +-1 and one of +-2, got {fast}/{slow}")
    return fast, slow


def dms_to_detector(array, fastaxis, slowaxis):
    """View of a DMS-frame array (last two axes y, x) in the detector frame."""
    fast, slow = check_axes(fastaxis, slowaxis)
    sf = 1 if fast > 0 else -1
    ss = 1 if slow > 0 else -1
    if abs(fast) == 1:
        return array[..., ::ss, ::sf]
    # The fast direction is DMS y: flip DMS y by the fast sign and DMS x by the slow sign, then
    # exchange the two axes.
    return np.swapaxes(array[..., ::sf, ::ss], -2, -1)


def detector_to_dms(array, fastaxis, slowaxis):
    """View of a detector-frame array in the DMS frame (inverse of :func:`dms_to_detector`)."""
    fast, slow = check_axes(fastaxis, slowaxis)
    sf = 1 if fast > 0 else -1
    ss = 1 if slow > 0 else -1
    if abs(fast) == 1:
        return array[..., ::ss, ::sf]
    return np.swapaxes(array, -2, -1)[..., ::sf, ::ss]


def detector_to_dms_index(row, col, fastaxis, slowaxis, size=NIR_SIZE):
    """DMS (y, x) of detector pixel (row, col) in a ``size`` x ``size`` frame (arrays allowed)."""
    fast, slow = check_axes(fastaxis, slowaxis)
    row = np.asarray(row)
    col = np.asarray(col)
    last = size - 1
    if abs(fast) == 1:
        y = row if slow > 0 else last - row
        x = col if fast > 0 else last - col
    else:
        y = col if fast > 0 else last - col
        x = row if slow > 0 else last - row
    return y, x


def dms_to_detector_index(y, x, fastaxis, slowaxis, size=NIR_SIZE):
    """Detector (row, col) of DMS pixel (y, x) in a ``size`` x ``size`` frame (arrays allowed)."""
    fast, slow = check_axes(fastaxis, slowaxis)
    y = np.asarray(y)
    x = np.asarray(x)
    last = size - 1
    if abs(fast) == 1:
        row = y if slow > 0 else last - y
        col = x if fast > 0 else last - x
    else:
        col = y if fast > 0 else last - y
        row = x if slow > 0 else last - x
    return row, col
