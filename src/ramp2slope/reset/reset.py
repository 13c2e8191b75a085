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
    for k in range(data.shape[0]):
        i = first_integration + k
        if integration_end is not None and i >= integration_end:
            break
        ir = reset_plane_index(i, reset.shape[0])
        for j in range(ngroups):
            np.subtract(data[k, j], reset[ir, j], out=data[k, j])
    # PIXELDQ is per pixel, not per integration: the same flags whatever integrations are handed
    pixeldq |= reset_dq
