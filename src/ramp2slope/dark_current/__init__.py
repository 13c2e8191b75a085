"""dark_current: resample the DARK reference to the science readout and subtract it."""
from .dark_current import DarkPlan, average_dark_current_array, dark_used, plan_dark, subtract_dark

__all__ = ["DarkPlan", "average_dark_current_array", "dark_used", "plan_dark", "subtract_dark"]
from .dark_current_step import DarkCurrentStep  # noqa: E402
__all__ += ["DarkCurrentStep"]
