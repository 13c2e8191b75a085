"""DarkCurrentStep: subtract the DARK reference, resampled to the science readout."""
import logging
import os

from ..datamodels import DarkMIRIModel, DarkModel
from ..references import load_dark
from ..stpipe import Step
from .dark_current import average_dark_current_array, dark_used, subtract_dark

__all__ = ["DarkCurrentStep", "DarkMIRIModel"]

log = logging.getLogger("ramp2slope")


def _file_nints(model):
    """Integrations in the input file: the model's own, or, for one integration of a file
    streamed integration by integration, those of its segment (INTEND - INTSTART + 1) or NINTS."""
    if not hasattr(model, "_integration_offset"):
        return model.shape[0]
    exp = model.meta.exposure
    if exp.integration_start is not None and exp.integration_end is not None:
        return int(exp.integration_end) - int(exp.integration_start) + 1
    if exp.nints is not None:
        return int(exp.nints)
    return int(model._integration_offset) + model.shape[0]


class DarkCurrentStep(Step):
    """Subtract the dark current group by group (frame-averaged for NFRAMES > 1)."""

    class_alias = "dark_current"
    ramp_input = True
    cal_step_name = "dark_sub"
    reference_file_types = ("dark",)
    spec = """
        dark_output = output_file(default=None)  # Dark model or averaged dark subtracted
        average_dark_current = float(default=None)  # The average dark current for this detector in units of e-/sec.
    """

    def process(self, model):
        # The dark is read plane by plane, only the planes the science groups use. Within a
        # pipeline run that shares references one integration at a time, the dark of each
        # group is computed once and kept with the shared reference (``dark.derived``).
        shared = self.reference_cache() is not None
        dark = self.load_reference(model, "dark", load_dark)
        if dark is None:
            return self.skipped(model, "no DARK reference")
        try:
            exposure = model.meta.exposure
            nframes, groupgap = exposure.nframes or 1, exposure.groupgap or 0
            current = model._arrays.get("average_dark_current")
            average, source = average_dark_current_array(
                model.shape[-2:], param=self.average_dark_current,
                ref_array=dark.average_dark_current, ref_scalar=dark.average_dark_current_keyword,
                current_shape=None if current is None else current.shape)
            if average is not None:
                model.average_dark_current = average
            elif source == "shape mismatch":
                log.info("%s: the reference AVDRKCUR array does not match the science "
                            "average_dark_current shape; not used", self.name)
            offset = int(getattr(model, "_integration_offset", 0))
            file_nints = _file_nints(model)
            # kept for the other integrations when they come on their own; a model holding the
            # whole exposure uses each group's dark once, so no copy is made of it
            whole = offset == 0 and model.shape[0] >= file_nints
            status, plan = subtract_dark(model.data, model.pixeldq, dark.data, dark.dq, nframes,
                                         groupgap, dark.nframes, dark.groupgap,
                                         reuse=dark.derived if shared and not whole else None,
                                         first_integration=offset,
                                         integration_start=exposure.integration_start,
                                         exposure_nints=file_nints)
            if status == "SKIPPED":
                return self.skipped(model, plan.reason)
            if plan.n_extend:
                log.warning("%s: the dark has too few frames; %d planes extrapolated",
                            self.name, plan.n_extend)
            # a model holding later integrations of a longer exposure has written it already
            if self.dark_output and offset == 0:
                self._save_dark_used(model, dark, nframes, groupgap)
        finally:
            self.release_reference(dark)
        return self.complete(model)

    def _save_dark_used(self, model, dark, nframes, groupgap):
        # dark.data reads from the file: dark_used gets new arrays, the reference is untouched.
        used = dark_used(dark.data, model.shape[1], nframes, groupgap, dark.nframes, dark.groupgap,
                         dark_ngroups=dark.ngroups, exposure_nints=_file_nints(model))
        if used is None:
            return
        data, out_nframes, out_ngroups, out_groupgap = used
        if dark.nints is not None:
            out = DarkMIRIModel(data=data, dq=dark.full_dq())
        else:
            out = DarkModel(data=data, dq=dark.dq)
        out.update(model)
        out.meta.exposure.nframes = out_nframes
        out.meta.exposure.ngroups = out_ngroups
        out.meta.exposure.groupgap = out_groupgap
        name = self.dark_output
        folder = self.search_attr("output_dir")
        if folder and not os.path.isabs(name):
            name = os.path.join(folder, name)
        if not name.endswith(".fits"):
            name += ".fits"
        out.save(name)
        log.info("%s: saved the dark used to %s", self.name, name)
