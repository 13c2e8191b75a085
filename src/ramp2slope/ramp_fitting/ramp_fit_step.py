"""RampFitStep: fit slopes to the ramps (OLS with optimal weighting) → rate and rateints."""
import logging

import numpy as np

from .. import datamodels
from ..errors import Ramp2SlopeError
from ..references import load_gain, load_readnoise
from ..stpipe import Step
from ..stpipe.naming import make_output_path
from .ols_fit import fit_ramps

__all__ = ["RampFitStep"]

log = logging.getLogger("ramp2slope")


class RampFitStep(Step):
    """Fit each pixel's ramp; returns ``(rate ImageModel, rateints CubeModel)``."""

    class_alias = "ramp_fit"
    cal_step_name = "ramp_fit"
    reference_file_types = ("readnoise", "gain")
    spec = """
        algorithm = option('OLS_C', 'LIKELY', default='OLS_C')  # Ramp fitting algorithm
        int_name = string(default='')
        save_opt = boolean(default=False)  # Save optional output
        opt_name = string(default='')
        suppress_one_group = boolean(default=True)  # Suppress saturated ramps with good 0th group
        firstgroup = integer(default=None)  # Ignore groups before this one (zero indexed)
        lastgroup = integer(default=None)  # Ignore groups after this one (zero indexed)
        maximum_cores = string(default='1')  # cores for multiprocessing. Can be an integer, 'half', 'quarter', or 'all'
    """

    def process(self, model):
        if self.algorithm == "LIKELY" and model.shape[1] >= 4:
            raise Ramp2SlopeError(f"{self.name}: algorithm='LIKELY' is not available in ramp2slope; "
                                  f"use the default 'OLS_C'")
        gain = load_gain(self.get_reference_file(model, "gain"), model)
        readnoise = load_readnoise(self.get_reference_file(model, "readnoise"), model)
        if gain.gain_factor is not None:
            model.meta.exposure.gain_factor = gain.gain_factor
        exposure = model.meta.exposure
        result = fit_ramps(
            model.data, model.groupdq, model.pixeldq, gain.data, readnoise.data,
            nframes=exposure.nframes or 1, group_time=exposure.group_time,
            frame_time=exposure.frame_time, groupgap=exposure.groupgap or 0,
            drop_frames1=exposure.drop_frames1 or 0,
            zeroframe=model.zeroframe if exposure.zero_frame and model.has("zeroframe") else None,
            average_dark_current=model._arrays.get("average_dark_current"),
            suppress_one_group=self.suppress_one_group, firstgroup=self.firstgroup,
            lastgroup=self.lastgroup, save_opt=self.save_opt)
        if result is None:
            log.warning("%s: every pixel is saturated in the first group; no slopes", self.name)
            self.record_status(model, "SKIPPED")
            return None
        if result.optional is not None:
            self._save_optional(model, result.optional)
        rate = self._product(datamodels.ImageModel, model, result.rate)
        rateints = self._product(datamodels.CubeModel, model, result.rateints)
        rateints.int_times = model.int_times
        return rate, rateints

    def _product(self, cls, model, product):
        out = cls(data=product.data, dq=product.dq, err=product.err,
                  var_poisson=product.var_poisson, var_rnoise=product.var_rnoise)
        out.update(model)
        out.meta.bunit_data = "DN/s"
        out.meta.bunit_err = "DN/s"
        self.record_status(out, "COMPLETE")
        out._path = model._path
        return out

    def _save_optional(self, model, optional):
        fitopt = datamodels.RampFitOutputModel(
            **{name: getattr(optional, name) for name in (
                "slope", "sigslope", "var_poisson", "var_rnoise", "yint", "sigyint", "pedestal",
                "weights", "crmag")})
        fitopt.update(model)
        base = self.opt_name or model._path or model.meta.filename
        path = make_output_path(base, output_dir=self.search_attr("output_dir"), suffix="fitopt")
        fitopt.save(path)
        log.info("%s: saved %s", self.name, path)
        return path
