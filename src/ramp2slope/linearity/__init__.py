"""linearity: correct the non-linear detector response."""
from .linearity import correct_linearity, prepare_coefficients, use_read_level

__all__ = ["correct_linearity", "prepare_coefficients", "use_read_level"]
from .linearity_step import LinearityStep  # noqa: E402
__all__ += ["LinearityStep"]
