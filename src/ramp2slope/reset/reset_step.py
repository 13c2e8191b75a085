"""ResetStep: subtract the MIRI reset anomaly (RESET reference) from the first groups."""
import logging

from ..stpipe import Step
from .reference import load_reset
from .reset import subtract_reset

__all__ = ["ResetStep", "first_integration_of"]

log = logging.getLogger("ramp2slope")


def first_integration_of(model):
    """The 0-based index in the exposure of the model's first integration: INTSTART for a
    segment, plus the offset of a one-integration model when the pipeline streams."""
    start = model.meta.exposure.integration_start
    offset = getattr(model, "_integration_offset", 0)
    return (int(start) - 1 if start is not None else 0) + int(offset)


class ResetStep(Step):
    """Subtract the reset anomaly from the first groups of each integration of MIRI ramps."""

    class_alias = "reset"
    ramp_input = True
    cal_step_name = "reset"
    reference_file_types = ("reset",)
    spec = ""

    def wanted_references(self, model):
        return self.reference_file_types if _is_miri(model) else ()

    def process(self, model):
        if not _is_miri(model):
            log.warning("%s: the reset correction is only for MIRI data; skipped", self.name)
            self.record_status(model, "SKIPPED")
            return model
        ref = self.load_reference(model, "reset", load_reset)
        if ref is None:
            log.warning("%s: No RESET reference file found; skipped", self.name)
            self.record_status(model, "SKIPPED")
            return model
        try:
            exp = model.meta.exposure
            end = exp.integration_end if exp.integration_end is not None else exp.nints
            subtract_reset(model.data, model.pixeldq, ref.data, ref.dq,
                           first_integration=first_integration_of(model),
                           integration_end=None if end is None else int(end))
        finally:
            self.release_reference(ref)
        return self.complete(model)


def _is_miri(model):
    return str(model.meta.instrument.detector or "").startswith("MIR")
