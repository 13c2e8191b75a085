"""picture_frame: NIRSpec's thermal picture-frame correction (full frames; off by default)."""
from .picture_frame import correct_ramp_integration, correct_rate, reference_levels, region_masks

__all__ = ["correct_ramp_integration", "correct_rate", "reference_levels", "region_masks"]
from .picture_frame_step import PictureFrameStep  # noqa: E402
__all__ += ["PictureFrameStep"]
