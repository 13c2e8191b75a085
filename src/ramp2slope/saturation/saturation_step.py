"""SaturationStep: flag groups at or above the saturation threshold (and A/D floor groups)."""
import logging

from ..datamodels.irs2_layout import is_irs2_shape, layout_of, rows_mask
from ..references import derived, load_saturation, load_superbias
from ..references.striped import is_superstripe, load_striped
from ..stpipe import Step
from .irs2 import flag_saturation_irs2
from .saturation import flag_saturation, prepare_thresholds

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
        if is_superstripe(model):
            return self._process_superstripe(model)
        sat = self.load_reference(model, "saturation", load_saturation)
        if sat is None:
            return self.skipped(model, "no SATURATION reference")
        bias = self.load_reference(model, "superbias", load_superbias)
        if bias is not None:
            bias = bias.data
        zeroframe = model.zeroframe if model.meta.exposure.zero_frame and model.has("zeroframe") else None
        # the loaded reference is this step's alone: its arrays become the prepared ones rather
        # than being held twice for the run
        prepared = derived(sat, "thresholds",
                           lambda: prepare_thresholds(sat.threshold, sat.dq, in_place=True))
        if is_irs2_shape(model.shape):
            rows = rows_mask(model.meta.instrument.detector, model.shape[-2], layout_of(model))
            n_sat, n_floor = flag_saturation_irs2(
                model.data, model.groupdq, model.pixeldq, sat.threshold, sat.dq, rows,
                n_pix_grow_sat=self.n_pix_grow_sat, use_readpatt=self.use_readpatt,
                nframes=model.meta.exposure.nframes or 1, bias=bias, zeroframe=zeroframe,
                prepared=prepared)
            log.info("%s: %d saturated pixels, %d A/D floor pixels", self.name, n_sat, n_floor)
            return self.complete(model)
        n_sat, n_floor = flag_saturation(
            model.data, model.groupdq, model.pixeldq, sat.threshold, sat.dq,
            n_pix_grow_sat=self.n_pix_grow_sat, use_readpatt=self.use_readpatt,
            nframes=model.meta.exposure.nframes or 1, bias=bias, zeroframe=zeroframe,
            prepared=prepared)
        log.info("%s: %d saturated pixels, %d A/D floor pixels", self.name, n_sat, n_floor)
        return self.complete(model)

    def _process_superstripe(self, model):
        # integration i is stripe i % nstripe, flagged with that stripe's planes; PIXELDQ plane k
        # ends as integration k leaves it (the reference flags are the same for every repeat)
        sat = self.load_reference(model, "saturation", lambda path, m: load_striped(path, m, "saturation"))
        if sat is None:
            return self.skipped(model, "no SATURATION reference")
        bias = self.load_reference(model, "superbias", lambda path, m: load_striped(path, m, "superbias"))
        nstripe = sat.data.shape[0]
        zeroframe = model.zeroframe if model.meta.exposure.zero_frame and model.has("zeroframe") else None
        pixeldq = model.pixeldq
        n_sat = n_floor = 0
        for integ in range(model.data.shape[0]):
            k = integ % nstripe
            plane = pixeldq[k] if integ < nstripe else pixeldq[k].copy()
            counts = flag_saturation(
                model.data[integ:integ + 1], model.groupdq[integ:integ + 1], plane, sat.data[k],
                sat.dq[k], n_pix_grow_sat=self.n_pix_grow_sat, use_readpatt=self.use_readpatt,
                nframes=model.meta.exposure.nframes or 1,
                bias=None if bias is None else bias.data[k],
                zeroframe=None if zeroframe is None else zeroframe[integ:integ + 1])
            n_sat, n_floor = n_sat + counts[0], n_floor + counts[1]
        log.info("%s: %d saturated pixels, %d A/D floor pixels", self.name, n_sat, n_floor)
        return self.complete(model)
