"""lastframe: mark the last group of MIRI ramps DO_NOT_USE (it is affected by the reset that
follows it in the MIRI readout)."""
import numpy as np

from ..datamodels import dqflags

__all__ = ["MIN_GROUPS", "last_frame_applies", "flag_last_frame"]

#: The last group is flagged only when more than this many groups remain.
MIN_GROUPS = 2

_DNU = np.uint8(dqflags.group["DO_NOT_USE"])


def last_frame_applies(ngroups):
    """Whether an integration of ``ngroups`` groups has enough of them to lose the last."""
    return int(ngroups) > MIN_GROUPS


def flag_last_frame(groupdq):
    """OR DO_NOT_USE into the last group of every integration of ``groupdq`` (nints, ngroups,
    ny, nx), in place; the caller checks :func:`last_frame_applies` first."""
    groupdq[:, -1] |= _DNU
