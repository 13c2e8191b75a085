"""jwst's ``firstframe_sub.do_correction`` on a ramp2slope RampModel (the official function's
name and arguments, for code and tests written against jwst)."""
import logging

from .firstframe import first_frame_applies, flag_first_frame

log = logging.getLogger("ramp2slope")

__all__ = ["do_correction"]


def do_correction(output, bright_use_group1=False):
    """Flag the first group of each integration of ``output`` DO_NOT_USE (more than 3 groups
    only); records COMPLETE or SKIPPED and returns ``output``."""
    if not first_frame_applies(output.data.shape[1]):
        output.meta.cal_step.firstframe = "SKIPPED"
        return output
    kept = flag_first_frame(output.groupdq, output.pixeldq, bright_use_group1)
    if bright_use_group1:
        log.info("Number of usable bright pixels with first group not set to DO_NOT_USE: %d", kept)
    output.meta.cal_step.firstframe = "COMPLETE"
    return output
