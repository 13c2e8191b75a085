"""gain_scale: rescale rates by GAINFACT for non-standard gain settings."""
from .gain_scale import gain_factor_to_use, scale_by_gain

__all__ = ["gain_factor_to_use", "scale_by_gain"]
from .gain_scale_step import GainScaleStep  # noqa: E402
__all__ += ["GainScaleStep"]
