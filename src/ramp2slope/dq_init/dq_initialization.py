"""The official module-level dq_init interface, on ramp2slope models.

``do_dqinit(model, mask_model, user_dq=None)`` is what ``DQInitStep`` does to a RampModel with
``mask_model`` (a :class:`~ramp2slope.datamodels.MaskModel`) as its reference, in place;
``check_dimensions(model)`` replaces missing or misshapen DQ arrays by zeros.
"""
import logging

import numpy as np

from ..datamodels import GuiderRawModel, RampModel, SuperstripeRampModel
from ..errors import BadInputError
from ..references import load_mask
from ..references.striped import is_superstripe
from .dq_init import apply_mask, combine_user_dq, ensure_dq_arrays
from .dq_init_step import DQInitStep

__all__ = ["check_dimensions", "do_dqinit"]

log = logging.getLogger("ramp2slope")


def check_dimensions(input_model):
    """Give ``input_model`` zero DQ arrays where they are missing or of the wrong shape
    (logging it, in the official words); arrays that fit are left alone.

    A RampModel has PIXELDQ (ny, nx) and GROUPDQ, a SuperstripeRampModel one PIXELDQ plane per
    stripe, a GuiderRawModel only DQ (ny, nx).
    """
    if isinstance(input_model, GuiderRawModel):
        dq = input_model._arrays.get("dq")
        if dq is None or dq.shape != input_model.data.shape[-2:]:
            log.warning("Setting input DQ to default array")
            input_model.dq = input_model.get_default("dq")
        return
    if not isinstance(input_model, RampModel):
        raise BadInputError(f"check_dimensions: a RampModel is needed, not {type(input_model).__name__}")
    if isinstance(input_model, SuperstripeRampModel):
        expected = input_model.get_default("pixeldq")
        pixeldq = input_model._arrays.get("pixeldq")
        if pixeldq is None or pixeldq.shape != expected.shape:
            log.warning("Setting input pixel DQ to default array")
            input_model.pixeldq = expected
        groupdq = input_model._arrays.get("groupdq")
        if groupdq is None or groupdq.shape != input_model.data.shape:
            log.warning("Setting input group DQ to default array")
            input_model.groupdq = input_model.get_default("groupdq")
        return
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
    if is_superstripe(output_model):
        try:
            return step._process_superstripe(output_model, user_dq)
        except BadInputError as exc:
            raise ValueError(str(exc)) from None
    mask = step.load_reference(output_model, "mask", load_mask)
    try:
        _check_user_dq_shape(user_dq, mask.dq)
        if isinstance(output_model, GuiderRawModel):
            output_model.dq |= combine_user_dq(mask.dq, user_dq)
        else:
            apply_mask(output_model.pixeldq, output_model.groupdq, mask.dq, user_dq)
    finally:
        step.release_reference(mask)
    return step.complete(output_model)


def _check_user_dq_shape(user_dq, mask):
    # the official message, and a ValueError as there
    shape = np.shape(user_dq)
    if shape != mask.shape:
        raise ValueError(f"user_dq has shape={shape} but expecting {mask.shape}")
