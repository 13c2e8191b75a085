"""Charge migration (brighter-fatter) flagging.

For every integration and pixel, the first group whose value exceeds ``signal_threshold`` (and
whose GROUPDQ is not exactly DO_NOT_USE) starts the flagging: that group and every later group of
the integration get CHARGELOSS|DO_NOT_USE, in the pixel itself and in its four edge-adjacent
neighbours. The trigger test uses the GROUPDQ as it was on entry, so flags set here never
trigger or suppress other flags.
"""
import logging

import numba
import numpy as np

from ..datamodels import dqflags
from ..errors import Ramp2SlopeError

log = logging.getLogger("ramp2slope")

DNU = dqflags.group["DO_NOT_USE"]
CHARGELOSS = dqflags.group["CHARGELOSS"]
CHLO_DNU = CHARGELOSS | DNU


@numba.njit(parallel=True, cache=True)
def _first_trigger(data, gdq, threshold, dnu, first):
    ngroups, ny, nx = data.shape
    for y in numba.prange(ny):
        for x in range(nx):
            first[y, x] = ngroups
            for g in range(ngroups):
                if data[g, y, x] > threshold and gdq[g, y, x] != dnu:
                    first[y, x] = g
                    break


@numba.njit(parallel=True, cache=True)
def _flag_from(gdq, first, flag):
    ngroups, ny, nx = gdq.shape
    for y in numba.prange(ny):
        for x in range(nx):
            start = first[y, x]
            if y > 0 and first[y - 1, x] < start:
                start = first[y - 1, x]
            if y < ny - 1 and first[y + 1, x] < start:
                start = first[y + 1, x]
            if x > 0 and first[y, x - 1] < start:
                start = first[y, x - 1]
            if x < nx - 1 and first[y, x + 1] < start:
                start = first[y, x + 1]
            for g in range(start, ngroups):
                gdq[g, y, x] |= flag


def flag_charge_migration(data, groupdq, signal_threshold=25000.0):
    """Flag charge migration in place.

    Parameters
    ----------
    data : float32 ndarray (nints, ngroups, ny, nx)
        Not modified.
    groupdq : uint8 ndarray, same shape
        CHARGELOSS|DO_NOT_USE is OR-ed in, one integration at a time.
    signal_threshold : float
        DN. The comparison ``data > signal_threshold`` is made in float32 (numpy compares a
        float32 array with a Python float in float32).

    The official step is SKIPPED when ngroups < 3; that decision belongs to the caller.
    Returns the number of (integration, pixel) pairs where flagging started.
    """
    if data.ndim != 4 or groupdq.shape != data.shape:
        raise Ramp2SlopeError("charge_migration needs 4-D data and GROUPDQ of the same shape")
    threshold = np.float32(float(signal_threshold))
    first = np.empty(data.shape[-2:], dtype=np.int64)
    ntrig = 0
    for integration in range(data.shape[0]):
        gdq = groupdq[integration]
        _first_trigger(data[integration], gdq, threshold, np.uint8(DNU), first)
        ntrig += int(np.count_nonzero(first < data.shape[1]))
        _flag_from(gdq, first, np.uint8(CHLO_DNU))
    return ntrig


def charge_migration(output_model, signal_threshold):
    """The official module-level interface: flag, in place, the groups of the RampModel
    ``output_model`` above ``signal_threshold`` (and their neighbours) CHARGELOSS|DO_NOT_USE,
    as :func:`flag_charge_migration` does on its arrays; returns the model."""
    log.info("Using signal_threshold: %.2f", signal_threshold)
    flag_charge_migration(output_model.data, output_model.groupdq, signal_threshold)
    return output_model
