"""refpix's optional mean subtraction before the IRS2 correction (``irs2_mean_subtraction=True``).

jwst runs its traditional top/bottom correction on the IRS2 layout: in the detector frame the
3200 fast-axis columns are cut into five sectors of 640 (the reference output and the four
amplifiers), each sector's clipped means of the 4 bottom and 4 top rows are averaged and
subtracted from the whole sector. With ``odd_even_columns`` the parity of a column follows the
read: science columns alternate as usual, while the interleaved reference samples come in pairs,
the first pair of each group of four counted odd and the second even; the reference output is
given the pattern of the first amplifier. There is no side (row) correction for IRS2.
"""
import numpy as np

from ..datamodels import dqflags
from ..datamodels.irs2_layout import normal_mask
from .clipping import average_or_single, sigma_clipped_mean

__all__ = ["irs2_odd_columns", "subtract_irs2_means"]

_DNU = dqflags.pixel["DO_NOT_USE"]
_EDGES = ((2044, 2048), (0, 4))   # top and bottom reference rows, detector frame


def irs2_odd_columns(length, layout):
    """Boolean (length,) along the detector's fast axis: True on the columns counted odd."""
    reference = ~normal_mask(length, layout)
    sector = length // 5
    reference[:sector] = reference[sector:2 * sector]
    first_pair = reference.copy()
    first_pair[2::4] = False
    first_pair[3::4] = False
    second_pair = reference.copy()
    second_pair[0::4] = False
    second_pair[1::4] = False
    odd = np.zeros(length, dtype=bool)
    odd[0::2] = True
    odd[second_pair] = False
    odd[first_pair] = True
    return odd


def _to_detector(array, detector):
    """A view of a DMS-frame IRS2 array (..., L, 2048) in the detector frame (..., 2048, L)."""
    view = np.swapaxes(array, -1, -2)
    return view[..., ::-1, ::-1] if str(detector).upper() == "NRS2" else view


class _SectorMeans:
    """The usable top/bottom reference pixels of each sector (and parity), found once."""

    def __init__(self, det_dq, odd, odd_even_columns, siglimit):
        self.siglimit = float(siglimit)
        length = det_dq.shape[-1]
        sector = length // 5
        self.parts = []   # per sector: [(columns, [(rows, cols) top, (rows, cols) bottom])]
        for s in range(5):
            columns = np.arange(s * sector, (s + 1) * sector)
            if odd_even_columns:
                selections = [columns[odd[columns]], columns[~odd[columns]]]
            else:
                selections = [columns]
            parts = []
            for cols in selections:
                edges = []
                for r0, r1 in _EDGES:
                    usable = (det_dq[r0:r1][:, cols] & _DNU) == 0
                    rr, cc = np.nonzero(usable)   # row-major: the official reading order
                    edges.append((rr + r0, cols[cc]))
                parts.append((cols, edges))
            self.parts.append(parts)

    def subtract(self, det_group):
        """Subtract each sector's reference means from ``det_group`` (a detector-frame view)."""
        for parts in self.parts:
            values = []
            for cols, edges in parts:
                top, bottom = (sigma_clipped_mean(det_group[rows, cc], self.siglimit)
                               for rows, cc in edges)
                values.append(average_or_single(top, bottom))
            if any(value is None for value in values):
                continue   # as jwst: this sector is left alone
            for (cols, _), value in zip(parts, values):
                det_group[:, cols] -= value


def subtract_irs2_means(data, pixeldq, detector, layout, odd_even_columns=True, siglimit=3.0,
                        zeroframe=None):
    """The mean subtraction on an IRS2 ramp (nints, ngroups, L, 2048), DMS frame, in place.

    ZEROFRAME (nints, L, 2048), when given, gets the same treatment; its zeros stay zero.
    """
    length = data.shape[-2]
    det_dq = np.ascontiguousarray(_to_detector(pixeldq, detector))
    means = _SectorMeans(det_dq, irs2_odd_columns(length, layout), odd_even_columns, siglimit)
    for integration in range(data.shape[0]):
        for group in range(data.shape[1]):
            means.subtract(_to_detector(data[integration, group], detector))
    if zeroframe is not None:
        for integration in range(zeroframe.shape[0]):
            frame = zeroframe[integration]
            zeros = frame == 0.0
            means.subtract(_to_detector(frame, detector))
            frame[zeros] = 0.0
