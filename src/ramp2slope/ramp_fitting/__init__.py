"""ramp_fit: OLS_C ramp fitting (the algorithm lives in ``ols_fit``)."""

from .ols_fit import fit_ramps  # noqa: E402
from .ramp_fit_step import RampFitStep  # noqa: E402

__all__ = ["fit_ramps", "RampFitStep"]
