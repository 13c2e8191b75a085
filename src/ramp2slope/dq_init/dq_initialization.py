"""The official module-level dq_init interface, on ramp2slope models.

``do_dqinit(model, mask_model, user_dq=None)`` is what ``DQInitStep`` does to a RampModel with
``mask_model`` (a :class:`~ramp2slope.datamodels.MaskModel`) as its reference, in place;
``check_dimensions(model)`` replaces missing or misshapen DQ arrays by zeros.
"""
import logging

import numpy as np

from ..datamodels import RampModel
from ..errors import BadInputError
from .dq_init import apply_mask, ensure_dq_arrays
from .dq_init_step import DQInitStep

__all__ = ["check_dimensions", "do_dqinit"]

log = logging.getLogger("ramp2slope")


def check_dimensions(input_model):
    """Give ``input_model`` zero PIXELDQ/GROUPDQ where they are missing or of the wrong shape
    (logging it, in the official words); arrays that fit are left alone."""
    if not isinstance(input_model, RampModel):
        raise BadInputError(f"check_dimensions: a RampModel is needed, not {type(input_model).__name__}")
    pixeldq, groupdq, new_pixeldq, new_groupdq = ensure_dq_arrays(
        input_model.data.shape, input_model._arrays.get("pixeldq"), input_model._arrays.get("groupdq"))
    if new_pixeldq:
        log.warning("Setting input pixel DQ to default array")
    if new_groupdq:
        log.warning("Setting input group DQ to default array")
    input_model.pixeldq, input_model.groupdq = pixeldq, groupdq


def do_dqinit(output_model, mask_model, user_dq=None):
    """OR the mask's flags (and ``user_dq``, an integer array of the mask's shape) into
    ``output_model``'s PIXELDQ, and its DO_NOT_USE into every group, in place; return the model.

    A ``user_dq`` of another shape is a ValueError, as officially.
    """
    check_dimensions(output_model)
    step = DQInitStep(override_mask=mask_model)
    if user_dq is None:
        return step.process(output_model)
    from ..references import load_mask

    mask = step.load_reference(output_model, "mask", load_mask)
    user_dq = np.asarray(user_dq)
    if user_dq.shape != mask.dq.shape:
        raise ValueError(f"user_dq has shape={user_dq.shape} but expecting {mask.dq.shape}")
    try:
        apply_mask(output_model.pixeldq, output_model.groupdq, mask.dq, user_dq)
    finally:
        step.release_reference(mask)
    return step.complete(output_model)
