"""SuperBiasStep: subtract the bias level (SUPERBIAS reference) from every group."""
from ..references import load_superbias
from ..stpipe import Step
from .superbias import subtract_superbias

__all__ = ["SuperBiasStep"]


class SuperBiasStep(Step):
    """Subtract the superbias from every group of every integration (and from ZEROFRAME)."""

    class_alias = "superbias"
    ramp_input = True
    cal_step_name = "superbias"
    reference_file_types = ("superbias",)
    spec = ""

    def process(self, model):
        bias = self.load_reference(model, "superbias", load_superbias)
        if bias is None:
            return self.skipped(model, "no SUPERBIAS reference")
        zeroframe = model.zeroframe if model.meta.exposure.zero_frame and model.has("zeroframe") else None
        subtract_superbias(model.data, model.pixeldq, bias.data, bias.dq, zeroframe=zeroframe)
        return self.complete(model)
