"""LinearityStep: correct the classical non-linearity with the LINEARITY polynomials."""
import logging

from ..references import derived, load_linearity
from ..stpipe import Step
from .linearity import correct_linearity

__all__ = ["LinearityStep"]

log = logging.getLogger("ramp2slope")


class LinearityStep(Step):
    """Apply the per-pixel linearity polynomial (read-level for averaged groups with INV_COEFFS)."""

    class_alias = "linearity"
    ramp_input = True
    cal_step_name = "linearity"
    reference_file_types = ("linearity",)
    spec = ""

    def process(self, model):
        lin = self.load_reference(model, "linearity", load_linearity)
        if lin is None:
            return self.skipped(model, "no LINEARITY reference")
        zeroframe = model.zeroframe if model.meta.exposure.zero_frame and model.has("zeroframe") else None
        read_level = correct_linearity(
            model.data, model.groupdq, model.pixeldq, lin.coeffs, lin.dq, zeroframe=zeroframe,
            inv_coeffs=lin.inv_coeffs, nframes=model.meta.exposure.nframes or 1,
            has_read_times=bool(model.meta.exposure.read_times),
            cache=derived(lin, "linearity", dict))
        if read_level:
            log.info("%s: read-level correction (NFRAMES=%s, INV_COEFFS present)", self.name,
                     model.meta.exposure.nframes)
        return self.complete(model)
