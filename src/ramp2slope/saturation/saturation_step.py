"""SaturationStep: flag groups at or above the saturation threshold (and A/D floor groups)."""
import logging

from ..references import load_saturation, load_superbias
from ..stpipe import Step
from .saturation import flag_saturation

__all__ = ["SaturationStep"]

log = logging.getLogger("ramp2slope")


class SaturationStep(Step):
    """Flag saturated groups from the SATURATION reference (raw DN, bias included)."""

    class_alias = "saturation"
    ramp_input = True
    cal_step_name = "saturation"
    reference_file_types = ("saturation", "superbias")
    spec = """
        n_pix_grow_sat = integer(default=1)  # number of layers adjacent pixels to flag
        use_readpatt = boolean(default=True)  # Use grouped read pattern information to assist with flagging
    """

    def process(self, model):
        sat = self.load_reference(model, "saturation", load_saturation)
        if sat is None:
            return self.skipped(model, "no SATURATION reference")
        bias = self.load_reference(model, "superbias", load_superbias)
        if bias is not None:
            bias = bias.data
        zeroframe = model.zeroframe if model.meta.exposure.zero_frame and model.has("zeroframe") else None
        n_sat, n_floor = flag_saturation(
            model.data, model.groupdq, model.pixeldq, sat.threshold, sat.dq,
            n_pix_grow_sat=self.n_pix_grow_sat, use_readpatt=self.use_readpatt,
            nframes=model.meta.exposure.nframes or 1, bias=bias, zeroframe=zeroframe)
        log.info("%s: %d saturated pixels, %d A/D floor pixels", self.name, n_sat, n_floor)
        return self.complete(model)
