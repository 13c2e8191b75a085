"""DQInitStep: copy the MASK reference's flags into PIXELDQ (and its DO_NOT_USE into GROUPDQ)."""
from astropy.io import fits

from ..errors import BadInputError
from ..references import load_mask
from ..stpipe import Step
from .dq_init import apply_mask, ensure_dq_arrays

__all__ = ["DQInitStep"]


class DQInitStep(Step):
    """Initialise the data-quality arrays from the MASK reference file."""

    class_alias = "dq_init"
    ramp_input = True
    cal_step_name = "dq_init"
    reference_file_types = ("mask",)
    spec = """
        user_supplied_dq = string(default=None)  # FITS user-supplied DQ file
    """

    def process(self, model):
        mask = self.load_reference(model, "mask", load_mask)
        if mask is None:
            return self.skipped(model, "no MASK reference")
        pixeldq, groupdq, _, _ = ensure_dq_arrays(model.data.shape, model._arrays.get("pixeldq"),
                                                  model._arrays.get("groupdq"))
        model.pixeldq, model.groupdq = pixeldq, groupdq
        apply_mask(model.pixeldq, model.groupdq, mask.dq, self._user_dq(model))
        return self.complete(model)

    def _user_dq(self, model):
        if not self.user_supplied_dq:
            return None
        try:
            with fits.open(self.user_supplied_dq) as hdul:
                hdu = hdul["DQ"] if "DQ" in hdul else hdul[1 if len(hdul) > 1 else 0]
                return hdu.data.astype("uint32")
        except (OSError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise BadInputError(f"{self.user_supplied_dq}: cannot read a DQ array "
                                f"({str(exc).splitlines()[0]})") from None
