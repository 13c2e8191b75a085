"""firstframe: mark the first group of MIRI ramps DO_NOT_USE.

The first read after a MIRI reset is affected by the reset transient; jwst 3.0.0 keeps this step
(off by default, deprecated in favour of rscd, which now flags the first groups itself).
"""
import numpy as np

from ..datamodels import dqflags

__all__ = ["MIN_GROUPS", "first_frame_applies", "flag_first_frame"]

#: The first group is flagged only when more than this many groups remain.
MIN_GROUPS = 3

_DNU = np.uint8(dqflags.group["DO_NOT_USE"])
_SAT = np.uint8(dqflags.group["SATURATED"])
_FLUX_ESTIMATED = np.uint32(dqflags.pixel["FLUX_ESTIMATED"])
_PIXEL_DNU = np.uint32(dqflags.pixel["DO_NOT_USE"])


def first_frame_applies(ngroups):
    """Whether an integration of ``ngroups`` groups has enough of them to lose the first."""
    return int(ngroups) > MIN_GROUPS


def flag_first_frame(groupdq, pixeldq, bright_use_group1=True):
    """OR DO_NOT_USE into group 1 of every integration of ``groupdq`` (nints, ngroups, ny, nx),
    in place; the caller checks :func:`first_frame_applies` first.

    With ``bright_use_group1`` a pixel whose group 3 is SATURATED keeps its first group in that
    integration (its signal dwarfs the transient, and group 1 may be all it has left before
    saturation), and such pixels get FLUX_ESTIMATED in ``pixeldq`` (ny, nx). Returns the number
    of those pixels that are not DO_NOT_USE in ``pixeldq`` (0 without ``bright_use_group1``).
    """
    first = groupdq[:, 0]
    if not bright_use_group1:
        first |= _DNU
        return 0
    bright = (groupdq[:, 2] & _SAT) != 0
    np.bitwise_or(first, _DNU, out=first, where=~bright)
    # PIXELDQ is shared by the integrations: a pixel kept in any of them is marked
    kept = np.any(bright, axis=0)
    pixeldq[kept] |= _FLUX_ESTIMATED
    return int(np.count_nonzero((pixeldq[kept] & _PIXEL_DNU) == 0))
