"""rscd: flag the first groups of MIRI integrations affected by the reset switch charge decay."""
from .reference import RscdRef, load_rscd
from .rscd import MIN_GROUPS, RscdCounts, flag_rscd, flag_rscd_block, rscd_groups_to_skip

__all__ = ["MIN_GROUPS", "RscdCounts", "RscdRef", "flag_rscd", "flag_rscd_block", "load_rscd",
           "rscd_groups_to_skip"]
from .rscd_step import RscdStep  # noqa: E402
__all__ += ["RscdStep"]
