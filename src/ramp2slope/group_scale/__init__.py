"""group_scale: rescale groups averaged on board with a power-of-two divisor."""
from .group_scale import GroupScaleDecision, group_scale_decision, scale_groups

__all__ = ["GroupScaleDecision", "group_scale_decision", "scale_groups"]
from .group_scale_step import GroupScaleStep  # noqa: E402
__all__ += ["GroupScaleStep"]
