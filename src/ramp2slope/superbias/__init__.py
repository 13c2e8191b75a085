"""superbias: subtract the SUPERBIAS reference image."""
from .superbias import subtract_superbias

__all__ = ["subtract_superbias"]
from .superbias_step import SuperBiasStep  # noqa: E402
__all__ += ["SuperBiasStep"]
