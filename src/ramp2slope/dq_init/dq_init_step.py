"""DQInitStep: copy the MASK reference's flags into PIXELDQ (and its DO_NOT_USE into GROUPDQ);
into the 2-D DQ of raw FGS guide-star data (GuiderRawModel), as officially."""
import numpy as np
from astropy.io import fits

from ..datamodels import GuiderRawModel
from ..errors import BadInputError
from ..references import load_mask
from ..references.striped import is_superstripe, load_striped
from ..stpipe import Step
from .dq_init import apply_mask, combine_user_dq, ensure_dq_arrays

__all__ = ["DQInitStep"]


class DQInitStep(Step):
    """Initialise the data-quality arrays from the MASK reference file."""

    class_alias = "dq_init"
    ramp_input = True
    guider_input = True
    cal_step_name = "dq_init"
    reference_file_types = ("mask",)
    spec = """
        user_supplied_dq = string(default=None)  # FITS user-supplied DQ file
    """

    def process(self, model):
        if isinstance(model, GuiderRawModel):
            return self._process_guider(model)
        if is_superstripe(model):
            return self._process_superstripe(model)
        mask = self.load_reference(model, "mask", load_mask)
        if mask is None:
            return self.skipped(model, "no MASK reference")
        pixeldq, groupdq, _, _ = ensure_dq_arrays(model.data.shape, model._arrays.get("pixeldq"),
                                                  model._arrays.get("groupdq"))
        model.pixeldq, model.groupdq = pixeldq, groupdq
        apply_mask(model.pixeldq, model.groupdq, mask.dq, self._user_dq(model))
        return self.complete(model)

    def _process_guider(self, model):
        # guide-star data have one DQ plane and no group flags: the mask is OR-ed into it
        mask = self.load_reference(model, "mask", load_mask)
        if mask is None:
            return self.skipped(model, "no MASK reference")
        flags = mask.dq
        user_dq = self._user_dq(model)
        if user_dq is not None:
            flags = combine_user_dq(flags, user_dq)
        dq = model._arrays.get("dq")
        if dq is None or dq.shape != model.data.shape[-2:]:
            dq = np.zeros(model.data.shape[-2:], np.uint32)
        dq |= flags
        model.dq = dq
        return self.complete(model)

    def _process_superstripe(self, model, user_dq=None, user_dq_name=None):
        # integration i is stripe i % nstripe: its groups get that stripe's DO_NOT_USE
        mask = self.load_reference(model, "mask", lambda path, m: load_striped(path, m, "mask", False))
        if mask is None:
            return self.skipped(model, "no MASK reference")
        flags = mask.dq
        if user_dq is None and self.user_supplied_dq:
            user_dq, user_dq_name = self._user_dq(model), self.user_supplied_dq
        if user_dq is not None:
            # as jwst: one plane per stripe, the shape the MASK is cut to
            if np.shape(user_dq) != flags.shape:
                raise BadInputError(f"{user_dq_name or 'user_dq'}: user-supplied DQ of shape "
                                    f"{np.shape(user_dq)}, the superstripe exposure needs "
                                    f"{flags.shape} (one plane per stripe)")
            flags = flags | np.asarray(user_dq).astype(flags.dtype)
        nstripe = flags.shape[0]
        pixeldq = model._arrays.get("pixeldq")
        if pixeldq is None or pixeldq.shape != flags.shape:
            pixeldq = np.zeros(flags.shape, np.uint32)
        groupdq = model._arrays.get("groupdq")
        if groupdq is None or groupdq.shape != model.data.shape:
            groupdq = np.zeros(model.data.shape, np.uint8)
        scratch = np.zeros(flags.shape[1:], np.uint32)
        for integ in range(model.data.shape[0]):
            scratch[...] = 0
            apply_mask(scratch, groupdq[integ:integ + 1], flags[integ % nstripe])
        pixeldq |= flags
        model.pixeldq, model.groupdq = pixeldq, groupdq
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
