"""lastframe: flag the last group of MIRI ramps DO_NOT_USE."""
from .lastframe import MIN_GROUPS, flag_last_frame, last_frame_applies

__all__ = ["MIN_GROUPS", "flag_last_frame", "last_frame_applies"]
from .lastframe_step import LastFrameStep  # noqa: E402
__all__ += ["LastFrameStep"]
