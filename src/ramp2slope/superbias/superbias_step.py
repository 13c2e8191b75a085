"""SuperBiasStep: subtract the bias level (SUPERBIAS reference) from every group."""
import numpy as np

from ..references import load_superbias
from ..references.striped import is_superstripe, load_striped
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
        if is_superstripe(model):
            return self._process_superstripe(model)
        bias = self.load_reference(model, "superbias", load_superbias)
        if bias is None:
            return self.skipped(model, "no SUPERBIAS reference")
        zeroframe = model.zeroframe if model.meta.exposure.zero_frame and model.has("zeroframe") else None
        subtract_superbias(model.data, model.pixeldq, bias.data, bias.dq, zeroframe=zeroframe)
        return self.complete(model)

    def _process_superstripe(self, model):
        # integration i is stripe i % nstripe and loses that stripe's bias plane
        bias = self.load_reference(model, "superbias", lambda path, m: load_striped(path, m, "superbias"))
        if bias is None:
            return self.skipped(model, "no SUPERBIAS reference")
        nstripe = bias.data.shape[0]
        zeroframe = model.zeroframe if model.meta.exposure.zero_frame and model.has("zeroframe") else None
        no_dq = np.zeros(bias.data.shape[1:], np.uint32)
        scratch = np.zeros(bias.data.shape[1:], np.uint32)
        for integ in range(model.data.shape[0]):
            k = integ % nstripe
            zf = None if zeroframe is None else zeroframe[integ:integ + 1]
            subtract_superbias(model.data[integ:integ + 1], scratch, bias.data[k], no_dq, zeroframe=zf)
        model.pixeldq |= bias.dq
        return self.complete(model)
