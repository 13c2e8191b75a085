"""saturation: flag saturated, A/D-floor and partially saturated groups."""
from .saturation import (
    ATOD_LIMIT, flag_saturation, grow_flags, irs2_flag_saturation, make_read_pattern,
    prepare_thresholds,
)

__all__ = ["ATOD_LIMIT", "flag_saturation", "grow_flags", "irs2_flag_saturation", "make_read_pattern",
           "prepare_thresholds"]
from .saturation_step import SaturationStep  # noqa: E402
__all__ += ["SaturationStep"]
