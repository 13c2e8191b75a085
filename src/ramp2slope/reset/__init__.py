"""reset: subtract the MIRI reset anomaly from the first groups of each integration."""
from .reference import ResetRef, load_reset
from .reset import reset_plane_index, subtract_reset

__all__ = ["ResetRef", "load_reset", "reset_plane_index", "subtract_reset"]
from .reset_step import ResetStep  # noqa: E402
__all__ += ["ResetStep"]
