"""Jump (cosmic-ray) detection: two-point differences, neighbours, after-jump flags, snowballs.

The algorithm lives in :mod:`ramp2slope.jump.detect` (API), :mod:`ramp2slope.jump.twopoint`
(numba kernels) and :mod:`ramp2slope.jump.snowballs` (large events).
"""
from .detect import (
    STEP_DEFAULTS,
    JumpResult,
    detect_jumps,
    detect_jumps_in_blocks,
    effective_minimum_groups,
)

__all__ = ["detect_jumps", "detect_jumps_in_blocks", "JumpResult", "STEP_DEFAULTS",
           "effective_minimum_groups"]
from .jump_step import JumpStep  # noqa: E402
__all__ += ["JumpStep"]
