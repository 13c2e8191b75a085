"""firstframe: flag the first group of MIRI ramps DO_NOT_USE."""
from .firstframe import MIN_GROUPS, first_frame_applies, flag_first_frame

__all__ = ["MIN_GROUPS", "first_frame_applies", "flag_first_frame"]
from .firstframe_step import FirstFrameStep  # noqa: E402
__all__ += ["FirstFrameStep"]
