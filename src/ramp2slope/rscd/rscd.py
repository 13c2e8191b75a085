"""rscd: flag the first groups of MIRI integrations DO_NOT_USE (jwst 3.0.0's RSCD step).

The reset switch charge decay distorts the start of each MIRI ramp; the RSCD reference says how
many initial groups to drop in the first integration and in the later ones. Those numbers are
lowered so that at least two groups remain for the fit (three before lastframe took one), and,
pixel by pixel, so that a saturating pixel keeps groups before it saturates.
"""
from typing import NamedTuple

import numpy as np

from ..datamodels import dqflags

__all__ = ["MIN_GROUPS", "RscdCounts", "combine_counts", "flag_rscd", "flag_rscd_block",
           "rscd_groups_to_skip"]

#: Fewer groups than this and the step is skipped.
MIN_GROUPS = 3

_DNU = np.uint8(dqflags.group["DO_NOT_USE"])
_SAT = np.uint8(dqflags.group["SATURATED"])
_FLUX_ESTIMATED = np.uint32(dqflags.pixel["FLUX_ESTIMATED"])


class RscdCounts(NamedTuple):
    """What flagging one set of integrations did (jwst's INT?BORS and INT?UGP1 keywords)."""
    skip: int             #: groups flagged where saturation did not intervene
    lowered: int          #: pixels flagged FLUX_ESTIMATED (fewer groups dropped, in any integration)
    #: pixels that drop no group in some integration, counted (as by jwst) only when the
    #: back-off ran: then a block whose number is 0 counts every pixel
    only_one_group: int
    #: the pixels behind the two counts, (backed_off, drop_none) bool (ny, nx) arrays, and
    #: whether the back-off ran: what a run one integration at a time combines (see
    #: :func:`combine_counts`)
    masks: tuple = None


def rscd_groups_to_skip(skip_int1, skip_int2p, ngroups, nints):
    """``(skip_int1, skip_int2p)``: the reference's numbers of groups to drop, adjusted to an
    exposure of ``ngroups`` groups and ``nints`` integrations; None when it has too few groups.

    A negative ``skip_int1`` (an old reference without the first-integration column) means 1.
    Up to 5 groups drop 1 in every integration. Each number is lowered to leave 3 groups; the
    later integrations' only when there are later integrations (``nints`` is the exposure's).
    """
    if skip_int1 < 0:
        skip_int1 = 1
    if ngroups < MIN_GROUPS:
        return None
    if ngroups <= 5:
        skip_int1 = skip_int2p = 1
    if ngroups < skip_int1 + 3:
        skip_int1 = max(0, ngroups - 3)
    if nints > 1 and ngroups < skip_int2p + 3:
        skip_int2p = max(0, ngroups - 3)
    return int(skip_int1), int(skip_int2p)


def _saturated(groupdq, group):
    return (groupdq[:, group] & _SAT) != 0


def flag_rscd_block(groupdq, pixeldq, skip):
    """Drop the first ``skip`` groups of every integration in ``groupdq`` (n, ngroups, ny, nx),
    in place, with jwst's back-off for saturation; FLUX_ESTIMATED goes into ``pixeldq``.

    The back-off works down from group ``skip + 2`` (1-based): while some pixel of the block is
    SATURATED in the group examined (and not already in group 1, which nothing can save) and the
    group is above the first, those pixels drop one group fewer, and the group below is
    examined. The stop is decided for the block as a whole: a group that no pixel of the block
    saturates in ends the back-off for all of them. (Saturation flags run to the end of the ramp
    once set, and then this equals a pixel-by-pixel count; the order matters only for flags that
    come and go.)
    """
    ngroups = groupdq.shape[1]
    level = skip + 2   # 1-based group examined, as jwst counts
    problem = None
    if -ngroups <= level - 1 < ngroups:   # (a negative skip indexes from the end, as in jwst)
        sat_first = _saturated(groupdq, 0)
        problem = _saturated(groupdq, level - 1) & ~sat_first
    if problem is None or not problem.any():
        if skip > 0:
            groupdq[:, :skip] |= _DNU
        if not groupdq.shape[0]:
            return RscdCounts(skip, 0, 0)
        none = np.zeros(groupdq.shape[-2:], bool)
        return RscdCounts(skip, 0, 0, (none, np.full(none.shape, skip <= 0), False))

    skips = np.full(groupdq[:, 0].shape, skip, np.int64)
    while level > 1 and problem.any():
        skips[problem] = np.maximum(skips[problem] - 1, 0)
        level -= 1
        problem = _saturated(groupdq, level - 1) & ~sat_first
    backed_off = np.any(skips < skip, axis=0)
    pixeldq[backed_off] |= _FLUX_ESTIMATED
    np.maximum(skips, 0, out=skips)
    drop_none = np.any(skips == 0, axis=0)
    for g in range(min(max(skip, 0), ngroups)):
        plane = groupdq[:, g]
        np.bitwise_or(plane, _DNU, out=plane, where=skips > g)
    return RscdCounts(skip, int(np.count_nonzero(backed_off)), int(np.count_nonzero(drop_none)),
                      (backed_off, drop_none, True))


def combine_counts(a, b):
    """The counts of two sets of integrations flagged apart (each by :func:`flag_rscd_block`
    with the same ``skip``), as flagging them together gives them: the pixels are counted
    once, and those that drop no group only when the back-off ran in either. (The stop of the
    back-off is decided per set; with saturation flags that run to the end of the ramp, as the
    saturation step sets them, that is the same.)"""
    if a is None or a.masks is None:
        return b
    if b is None or b.masks is None:
        return a
    backed_off = a.masks[0] | b.masks[0]
    drop_none = a.masks[1] | b.masks[1]
    ran = a.masks[2] or b.masks[2]
    return RscdCounts(a.skip, int(np.count_nonzero(backed_off)),
                      int(np.count_nonzero(drop_none)) if ran else 0, (backed_off, drop_none, ran))


def flag_rscd(groupdq, pixeldq, skip_int1, skip_int2p, nints, first_integration=0):
    """Flag the RSCD groups of integrations ``first_integration`` ... of an exposure of ``nints``
    integrations, in place: ``groupdq`` (n, ngroups, ny, nx) holds them, ``pixeldq`` (ny, nx).

    ``skip_int1``, ``skip_int2p``: from :func:`rscd_groups_to_skip`. The exposure's first
    integration (``first_integration == 0``) drops ``skip_int1`` groups, the others (only when
    ``nints > 1``) ``skip_int2p``, each set with its own saturation back-off
    (:func:`flag_rscd_block`). Returns ``(counts_int1, counts_int2p)``, :class:`RscdCounts` or
    None for a set that was not handed.
    """
    first = None
    rest = groupdq
    if first_integration == 0:
        first = flag_rscd_block(groupdq[:1], pixeldq, skip_int1)
        rest = groupdq[1:]
    later = flag_rscd_block(rest, pixeldq, skip_int2p) if nints > 1 else None
    return first, later
