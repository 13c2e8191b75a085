"""jwst's ``lastframe_sub.do_correction`` on a ramp2slope RampModel (the official function's
name and arguments, for code and tests written against jwst)."""
from .lastframe import flag_last_frame, last_frame_applies

__all__ = ["do_correction"]


def do_correction(output):
    """Flag the last group of each integration of ``output`` DO_NOT_USE (more than 2 groups
    only); records COMPLETE or SKIPPED and returns ``output``."""
    if not last_frame_applies(output.data.shape[1]):
        output.meta.cal_step.lastframe = "SKIPPED"
        return output
    flag_last_frame(output.groupdq)
    output.meta.cal_step.lastframe = "COMPLETE"
    return output
