"""GainScaleStep: rescale slopes by GAINFACT when the exposure used a non-standard gain."""
from astropy.io import fits

from ..stpipe import Step
from .gain_scale import gain_factor_to_use, scale_by_gain

__all__ = ["GainScaleStep"]


class GainScaleStep(Step):
    """Multiply SCI/ERR by GAINFACT (variances by its square); SKIPPED when GAINFACT is unknown."""

    class_alias = "gain_scale"
    cal_step_name = "gain_scale"
    reference_file_types = ("gain",)
    spec = ""

    def process(self, model):
        reference_factor = None
        if model.meta.exposure.gain_factor is None:
            path = self.reference_or_skip(model, "gain")
            if path is not None:
                reference_factor = fits.getheader(path, 0).get("GAINFACT")
        factor = gain_factor_to_use(model.meta.exposure.gain_factor, reference_factor)
        if factor is None:
            return self.skipped(model, "GAINFACT not found")
        scale_by_gain(factor, model.data, model.err, model.var_poisson, model.var_rnoise)
        model.meta.exposure.gain_factor = factor
        return self.complete(model)
