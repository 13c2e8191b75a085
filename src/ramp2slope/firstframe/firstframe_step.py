"""FirstFrameStep: flag the first group of MIRI ramps (deprecated in jwst, off by default)."""
import logging
import warnings

from ..stpipe import Step
from .firstframe import first_frame_applies, flag_first_frame

__all__ = ["FirstFrameStep"]

log = logging.getLogger("ramp2slope")


class FirstFrameStep(Step):
    """Set DO_NOT_USE in the first group of MIRI integrations with more than 3 groups."""

    class_alias = "firstframe"
    ramp_input = True
    cal_step_name = "firstframe"
    spec = """
        bright_use_group1 = boolean(default=True) # do not flag group1 if group3 is saturated
        skip = boolean(default=True) # Do not run this step.
    """

    def process(self, model):
        message = ("'FirstFrameStep' has been deprecated since jwst 2.0.0: the rscd step flags "
                   "the first groups")
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        log.warning("%s: %s", self.name, message)
        # unlike lastframe, reset and rscd, jwst compares DETECTOR in upper case here
        if not str(model.meta.instrument.detector or "").upper().startswith("MIR"):
            log.warning("%s: the first frame correction is only for MIRI data; skipped", self.name)
            self.record_status(model, "SKIPPED")
            return model
        if not first_frame_applies(model.shape[1]):
            log.warning("%s: too few groups (%d) to apply the correction; skipped", self.name,
                        model.shape[1])
            self.record_status(model, "SKIPPED")
            return model
        kept = flag_first_frame(model.groupdq, model.pixeldq, self.bright_use_group1)
        if self.bright_use_group1:
            log.info("Number of usable bright pixels with first group not set to DO_NOT_USE: %d",
                     kept)
        return self.complete(model)
