"""The draft rate that clean_flicker_noise and picture_frame build their scene masks from.

Officially both steps run a default RampFitStep on the ramp (``make_rate``); here the ramp fitter
makes its two passes over the integrations, one integration in memory at a time, so that whole
and streamed exposures give the same draft.
"""
import logging

import numpy as np

from .. import datamodels
from ..errors import Ramp2SlopeError

__all__ = ["draft_rates", "draft_gain"]

log = logging.getLogger("ramp2slope")


def _draft_fitter_step(step):
    """The ramp fit behind the draft: default parameters, references as the pipeline's ramp_fit
    step finds them (officially a default RampFitStep, whose references CRDS gives)."""
    from .ramp_fit_step import RampFitStep

    draft = RampFitStep(name="ramp_fit", parent=step)
    pipeline_fit = getattr(step.parent, "ramp_fit", None) if step.parent is not None else None
    if pipeline_fit is not None:
        draft.override_gain = pipeline_fit.override_gain
        draft.override_readnoise = pipeline_fit.override_readnoise
    return draft


def _miri_dnu_table(shell, nints, read):
    """For MIRI, the groups DO_NOT_USE in every pixel of each integration (the fit drops those
    at the start of the ramp, as stcal does, and must know them before its first pass); None
    for the other instruments."""
    if str(shell.meta.instrument.name or "").strip().upper() != "MIRI":
        return None
    from ..jump.twopoint import dnu_planes

    table = None
    for i in range(nints):
        groupdq = read(i)[1]
        if table is None:
            table = np.zeros((nints, groupdq.shape[0]), dtype=bool)
        table[i] = dnu_planes(groupdq[np.newaxis])[0]
    return table


def draft_rates(step, shell, nints, has_zeroframe, read):
    """The draft (rate, rateints) models, SCI and DQ, for ``step`` (whose name the log and the
    errors give). ``shell`` holds the exposure's metadata; ``read(i)`` gives integration i's
    (data, groupdq, zeroframe or None)."""
    log.info("%s: creating a draft rate for the scene mask", step.name)
    draft = _draft_fitter_step(step)
    fitter = draft.begin_fit(shell, has_zeroframe, dnu_table=_miri_dnu_table(shell, nints, read))
    use_zf = draft.uses_zeroframe(shell, has_zeroframe)
    for i in range(nints):
        data, groupdq, zeroframe = read(i)
        fitter.add_median_rate(data, groupdq, zeroframe if use_zf else None)
    if fitter.all_saturated:
        raise Ramp2SlopeError(f"{step.name}: every pixel is saturated in the first group; "
                              f"no draft rate for the scene mask")
    planes = dq_planes = None
    for i in range(nints):
        data, groupdq, zeroframe = read(i)
        plane = fitter.fit_integration(data, groupdq, zeroframe if use_zf else None)
        if planes is None:
            planes = np.empty((nints,) + plane.rateints.data.shape, np.float32)
            dq_planes = np.empty((nints,) + plane.rateints.dq.shape, np.uint32)
        planes[i] = plane.rateints.data
        dq_planes[i] = plane.rateints.dq
    final = fitter.finish()
    # the DQ too: MIRI's science-region mask starts from the draft's DO_NOT_USE pixels
    rate = datamodels.ImageModel(data=final.data, dq=final.dq)
    rateints = datamodels.CubeModel(data=planes, dq=dq_planes)
    # the metadata the pipeline's ramp fit gives its products (RampFitStep.products)
    for product in (rate, rateints):
        product.update(shell)
        product.meta.bunit_data = product.meta.bunit_err = "DN/s"
        draft.record_status(product, "COMPLETE")
        product._path = shell._path
    return rate, rateints


def draft_gain(step, shell):
    """The GAIN (float32, the science window) of the ramp fit behind the draft: the pipeline's
    ramp_fit reference, which is CRDS's for the exposure unless the user chose another."""
    from ..references import load_gain

    draft = _draft_fitter_step(step)
    gain = draft.load_reference(shell, "gain", load_gain, required=True)
    try:
        return np.array(gain.data, dtype=np.float32)
    finally:
        draft.release_reference(gain)
