"""Reference-pixel correction of superstripe readouts, and their collation into a ramp.

A striped readout has no fixed reference rows and columns: the reference pixels are wherever the
(per-stripe) PIXELDQ says REFERENCE_PIXEL. Each group, in the detector frame, loses per amplifier
the sigma-clipped mean of its usable reference pixels (even and odd columns apart with
``odd_even_columns``), as jwst 3.0.0 does. jwst reads the DQ of the *first* stripe for every
integration (its stripe index evaluates to ``i % 1``); that is kept, so that the products agree.
The corrected superstripe ramp is then collated into an ordinary RampModel of the parent frame.
"""
import logging

import numpy as np

from ..datamodels import RampModel, dqflags
from ..references.stripes import (StripeLayout, collate_superstripes, stripe_int_times,
                                  stripe_read_times)
from .clipping import sigma_clipped_mean
from .orientation import dms_to_detector

__all__ = ["correct_superstripes", "collate_model"]

log = logging.getLogger("ramp2slope")

AMPLIFIERS = ((0, 512), (512, 1024), (1024, 1536), (1536, 2048))
_REF = dqflags.pixel["REFERENCE_PIXEL"]
_DNU = dqflags.pixel["DO_NOT_USE"]


def _amp_masks(pixeldq_det, fast_start):
    """Per amplifier that the subarray touches: (columns in it, usable reference mask)."""
    ncols = pixeldq_det.shape[1]
    x = np.arange(ncols) + fast_start
    usable = ((pixeldq_det & _REF) > 0) & ((pixeldq_det & _DNU) == 0)
    out = []
    for lo, hi in AMPLIFIERS:
        cols = (x >= lo) & (x < hi)
        if cols.any():
            out.append((cols, usable & cols[np.newaxis, :]))
    return out


def _correct_group(group, amps, odd_even_columns, siglimit):
    """``group``: a detector-frame view of one group, corrected in place."""
    if odd_even_columns:
        values = []
        for _, mask in amps:
            even, odd = mask.copy(), mask.copy()
            even[:, 1::2] = False
            odd[:, ::2] = False
            values.append((sigma_clipped_mean(group[even], siglimit),
                           sigma_clipped_mean(group[odd], siglimit)))
        for (cols, _), (even, odd) in zip(amps, values):
            if even is not None and odd is not None:
                block = group[:, ::2]
                block[:, cols[::2]] -= even
                block = group[:, 1::2]
                block[:, cols[1::2]] -= odd
    else:
        values = [sigma_clipped_mean(group[mask], siglimit) for _, mask in amps]
        for (cols, _), mean in zip(amps, values):
            if mean is not None:
                group[:, cols] -= mean


def correct_superstripes(data, pixeldq, layout, odd_even_columns=True, siglimit=3.0, zeroframe=None):
    """Correct a superstripe ramp (float32 ``(nints, ngroups, ny, nx)``) in place.

    ``pixeldq``: ``(nstripe, ny, nx)``; ``zeroframe``: ``(nints, ny, nx)`` or None, its exact
    zeros (unusable values) kept 0.
    """
    plane = pixeldq[0] if pixeldq.ndim == 3 else pixeldq
    det_dq = dms_to_detector(plane, layout.fastaxis, layout.slowaxis)
    amps = _amp_masks(np.ascontiguousarray(det_dq), layout.fast_start)
    for integ in range(data.shape[0]):
        for g in range(data.shape[1]):
            _correct_group(dms_to_detector(data[integ, g], layout.fastaxis, layout.slowaxis),
                           amps, odd_even_columns, siglimit)
    if zeroframe is not None:
        for integ in range(zeroframe.shape[0]):
            frame = zeroframe[integ]
            zeros = frame == 0.0
            _correct_group(dms_to_detector(frame, layout.fastaxis, layout.slowaxis),
                           amps, odd_even_columns, siglimit)
            frame[zeros] = 0.0


def collate_model(model):
    """The ordinary RampModel of a corrected SuperstripeRampModel (jwst's
    ``collate_superstripes``): integrations of the parent frame, INT_TIMES per parent
    integration and INT_TIMES_STRIPE per stripe (superstripes only), the stripe keywords
    removed."""
    layout = StripeLayout.from_model(model)
    zero = bool(model.meta.exposure.zero_frame)
    data, gdq, pdq, zf, slow_start, nrepeat = collate_superstripes(
        layout, model.data, model._arrays.get("groupdq"), model._arrays.get("pixeldq"),
        model._arrays.get("zeroframe") if zero else None)
    out = RampModel()
    out.update(model)
    if nrepeat > 1:
        # each group now holds nrepeat reads at uneven times: jwst records them, and the ramp
        # fit (LIKELY, forced) uses them
        exp = model.meta.exposure
        out.meta.exposure.read_times = stripe_read_times(
            layout, exp.nframes, exp.groupgap, exp.ngroups, exp.noutputs)
    out.data, out.groupdq, out.pixeldq = data, gdq, pdq
    if zf is not None:
        out.zeroframe = zf
    nstripe = max(layout.num_superstripe, 1)
    exp = model.meta.exposure
    table = model.int_times
    # without superstripes the integrations are the same: INT_TIMES stays as it is, with no
    # INT_TIMES_STRIPE (as jwst)
    if table is not None and len(table) > 0 and layout.num_superstripe > 0:
        parent, per_stripe = stripe_int_times(table, nstripe, exp.integration_start)
        out.int_times = np.array(parent, dtype=np.asarray(table).dtype)
        out.int_times_stripe = np.array(per_stripe, dtype=out.get_dtype("int_times_stripe"))
    elif table is not None:
        out.int_times = np.array(table)
    start = exp.integration_start if exp.integration_start is not None else 1
    end = exp.integration_end if exp.integration_end is not None else exp.nints
    out.meta.exposure.integration_start = int(np.ceil(start / nstripe))
    out.meta.exposure.integration_end = int(np.ceil(end / nstripe))
    out.meta.exposure.nints = int(np.ceil(exp.nints / nstripe))
    out.meta.exposure.ngroups = data.shape[1]
    sub = out.meta.subarray
    for name in ("multistripe_reads1", "multistripe_reads2", "multistripe_skips1",
                 "multistripe_skips2", "repeat_stripe", "interleave_reads1", "num_superstripe",
                 "superstripe_step"):
        setattr(sub, name, None)
    sub.ysize, sub.xsize = data.shape[-2:]
    if abs(layout.slowaxis) == 1:
        sub.xstart = slow_start
    else:
        sub.ystart = slow_start
    out._path = model._path
    return out
