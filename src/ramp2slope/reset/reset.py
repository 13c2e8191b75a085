"""reset: subtract the MIRI reset anomaly from the first groups of each integration.

The RESET reference holds, for each of its first NINTS integrations, the anomaly of its first
NGROUPS groups; later integrations use the last of them, later groups are not corrected.
"""
import numpy as np

__all__ = ["reset_plane_index", "subtract_reset"]


def reset_plane_index(integration, reset_nints):
    """The reference integration that serves exposure integration ``integration`` (0-based):
    the same one, or the last the reference has."""
    return min(int(integration), int(reset_nints) - 1)


def subtract_reset(data, pixeldq, reset, reset_dq, first_integration=0, integration_end=None):
    """Subtract ``reset`` from ``data`` and OR ``reset_dq`` into ``pixeldq``, in place.

    ``data``: float32 (nints, ngroups, ny, nx), integrations ``first_integration`` ... of the
    exposure (0-based; a segment of an exposure, or one integration when streaming).
    ``reset``: float32 (reset_nints, reset_ngroups, ny, nx) with NaN already zeroed (see
    ``reset.reference``); its first axis is the reference's NINTS (it may stop at the last
    integration the exposure uses), its second the groups to correct (those beyond ``ngroups``
    are ignored). ``integration_end``: the exposure's INTEND (1-based last integration, or its
    NINTS): integrations from there on are left alone, as jwst leaves them.
    """
    ngroups = min(data.shape[1], reset.shape[1])
    stop = data.shape[0]
    if integration_end is not None:
        stop = max(0, min(stop, integration_end - first_integration))
    k = 0
    while k < stop:
        # the run of integrations k .. end - 1 served by the same reference integration: each
        # plane is read once for the run and subtracted from all of it at once
        ir = reset_plane_index(first_integration + k, reset.shape[0])
        end = k + 1
        while end < stop and reset_plane_index(first_integration + end, reset.shape[0]) == ir:
            end += 1
        for j in range(ngroups):
            np.subtract(data[k:end, j], reset[ir, j], out=data[k:end, j])
        k = end
    # PIXELDQ is per pixel, not per integration: the same flags whatever integrations are handed
    pixeldq |= reset_dq
