"""dq_init: initialise PIXELDQ/GROUPDQ from the MASK reference file."""
from .dq_init import apply_mask, combine_user_dq, ensure_dq_arrays

__all__ = ["apply_mask", "combine_user_dq", "ensure_dq_arrays"]
from .dq_init_step import DQInitStep  # noqa: E402
__all__ += ["DQInitStep"]
