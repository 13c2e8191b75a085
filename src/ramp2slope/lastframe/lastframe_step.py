"""LastFrameStep: flag the last group of MIRI ramps."""
import logging

from ..stpipe import Step
from .lastframe import flag_last_frame, last_frame_applies

__all__ = ["LastFrameStep"]

log = logging.getLogger("ramp2slope")


class LastFrameStep(Step):
    """Set DO_NOT_USE in the last group of MIRI integrations with more than 2 groups."""

    class_alias = "lastframe"
    ramp_input = True
    cal_step_name = "lastframe"
    spec = ""

    def process(self, model):
        if not str(model.meta.instrument.detector or "").startswith("MIR"):
            log.warning("%s: the last frame correction is only for MIRI data; skipped", self.name)
            self.record_status(model, "SKIPPED")
            return model
        if not last_frame_applies(model.shape[1]):
            log.warning("%s: too few groups (%d) to apply the correction; skipped", self.name,
                        model.shape[1])
            self.record_status(model, "SKIPPED")
            return model
        flag_last_frame(model.groupdq)
        return self.complete(model)
