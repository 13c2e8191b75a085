"""dq_init: initialise the data-quality arrays from the MASK reference (spec §4.2, §3.3).

The MASK DQ (already DQ_DEF-translated and cut out to the science subarray) is OR-ed into
PIXELDQ, and its DO_NOT_USE bit into every group of every integration, so that no ramp is
fitted to a pixel the mask declares unusable.
"""
import numba
import numpy as np

from ramp2slope.datamodels import dqflags
from ramp2slope.errors import BadInputError, ReferenceFileError

__all__ = ["ensure_dq_arrays", "combine_user_dq", "apply_mask"]

_DNU = dqflags.group["DO_NOT_USE"]


def ensure_dq_arrays(data_shape, pixeldq, groupdq):
    """Return usable DQ arrays for a ramp of ``data_shape`` (nints, ngroups, ny, nx).

    Returns ``(pixeldq, groupdq, replaced_pixeldq, replaced_groupdq)``. An array that is missing
    (None) or has the wrong shape is replaced by zeros of the right shape and dtype (uint32
    (ny, nx), uint8 (nints, ngroups, ny, nx)) and its flag is True; an array that fits is
    returned as it is.
    """
    data_shape = tuple(data_shape)
    replaced_pixeldq = pixeldq is None or tuple(pixeldq.shape) != data_shape[-2:]
    if replaced_pixeldq:
        pixeldq = np.zeros(data_shape[-2:], dtype=np.uint32)
    replaced_groupdq = groupdq is None or tuple(groupdq.shape) != data_shape
    if replaced_groupdq:
        groupdq = np.zeros(data_shape, dtype=np.uint8)
    return pixeldq, groupdq, replaced_pixeldq, replaced_groupdq


def combine_user_dq(mask, user_dq):
    """Return ``mask | user_dq`` as a new uint32 array (the official step casts ``user_dq`` to
    the mask's dtype first). A shape mismatch raises ``BadInputError``."""
    mask = np.asarray(mask)
    user_dq = np.asarray(user_dq)
    if user_dq.shape != mask.shape:
        raise BadInputError(
            f"user_supplied_dq has shape {user_dq.shape} but the mask has shape {mask.shape}")
    return mask.astype(np.uint32) | user_dq.astype(mask.dtype).astype(np.uint32)


@numba.njit(parallel=True, cache=True)
def _or_dnu_groups(gdq_int, mask, dnu):
    ngroups, ny, nx = gdq_int.shape
    for y in numba.prange(ny):
        for x in range(nx):
            if mask[y, x] & dnu:
                for g in range(ngroups):
                    gdq_int[g, y, x] |= np.uint8(dnu)


def apply_mask(pixeldq, groupdq, mask, user_dq=None):
    """OR the MASK DQ into ``pixeldq`` and ``mask & DO_NOT_USE`` into every group, in place.

    pixeldq: uint32 (ny, nx); groupdq: uint8 (nints, ngroups, ny, nx); mask: uint32 (ny, nx),
    already translated and cut out. ``user_dq`` (any integer array of the mask's shape, or None)
    is OR-ed into the mask first. Returns None.
    """
    mask = np.ascontiguousarray(mask, dtype=np.uint32)
    if user_dq is not None:
        mask = combine_user_dq(mask, user_dq)
    if mask.shape != pixeldq.shape:
        raise ReferenceFileError(
            f"the MASK reference has shape {mask.shape} but the science pixels are {pixeldq.shape}")
    pixeldq |= mask
    for integ in range(groupdq.shape[0]):
        _or_dnu_groups(groupdq[integ], mask, np.uint32(_DNU))
