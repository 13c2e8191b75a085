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
        factor = self.gain_factor(model)
        if factor is None:
            return self.skipped(model, "GAINFACT not found")
        scale_by_gain(factor, model.data, model.err, model.var_poisson, model.var_rnoise)
        return self.scaled(model, factor)

    def gain_factor(self, model):
        """The factor to apply (looking up the GAIN reference when the model has none), or None."""
        reference_factor = None
        if model.meta.exposure.gain_factor is None:
            path = self.reference_or_skip(model, "gain")
            if path is not None:
                reference_factor = fits.getheader(path, 0).get("GAINFACT")
        return gain_factor_to_use(model.meta.exposure.gain_factor, reference_factor)

    def scaled(self, model, factor):
        """Record in ``model`` that its arrays were multiplied by ``factor``; returns it.

        Together with :meth:`gain_factor` this lets a caller scale a product that is written
        plane by plane (``scale_by_gain`` on each plane) and still get the step's metadata.
        """
        model.meta.exposure.gain_factor = factor
        return self.complete(model)
