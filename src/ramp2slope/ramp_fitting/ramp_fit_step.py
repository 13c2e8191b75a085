"""RampFitStep: fit slopes to the ramps (OLS_C or LIKELY) → rate and rateints."""
import logging

import numpy as np

from .. import datamodels
from ..datamodels.models import rate_model_class
from ..errors import Ramp2SlopeError
from ..references import load_gain, load_readnoise
from ..stpipe import Step
from ..stpipe.naming import make_output_path
from .likely_fit import MIN_NGROUPS, LikelyRampFitter, fit_ramps_likely
from .ols_fit import MedianRates, OLSRampFitter, fit_ramps, group_range

__all__ = ["RampFitStep", "set_groupdq"]

log = logging.getLogger("ramp2slope")


class RampFitStep(Step):
    """Fit each pixel's ramp; returns ``(rate ImageModel, rateints CubeModel)``."""

    class_alias = "ramp_fit"
    ramp_input = True
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
        gain, readnoise = self._prepare(model)
        if self.likely(model):
            result = fit_ramps_likely(
                model.data, model.groupdq, model.pixeldq, gain.data, readnoise.data,
                zeroframe=model.zeroframe if self.uses_zeroframe(model, model.has("zeroframe"))
                else None, read_times=model.meta.exposure.read_times or None,
                **self._fit_parameters(model))
            if self.save_opt:
                self.save_chisq(model, result.chisq)
            return self.products(model, result.rate, result.rateints)
        result = fit_ramps(
            model.data, model.groupdq, model.pixeldq, gain.data, readnoise.data,
            zeroframe=model.zeroframe if self.uses_zeroframe(model, model.has("zeroframe")) else None,
            instrument=model.meta.instrument.name, **self._fit_parameters(model))
        if result is None:
            return self.no_slopes(model)
        if result.optional is not None:
            self._save_optional(model, result.optional)
        return self.products(model, result.rate, result.rateints)

    # For a caller that has the exposure one integration at a time: begin_fit(model, ...) gives
    # an OLSRampFitter set up as process() sets up fit_ramps (with the same checks, references
    # and metadata); then no_slopes(model) when the fitter finds every pixel saturated, or
    # products(model, rate, rateints) for the output models.
    def begin_median_rates(self, model, has_zeroframe, dnu_table):
        """The OLS_C fit's first pass (:class:`MedianRates`) for ``model`` (which may hold
        metadata only), to be given blocks of rows before the fit begins and then passed to
        :meth:`begin_fit`; None where the first pass needs whole integrations (LIKELY, explicit
        read times, fitopt products, a ZEROFRAME the fit uses: ``MedianRates.takes_rows``).
        Needs no reference file."""
        if self._asks_likely(model):
            return None
        params = self._fit_parameters(model)
        for name in ("groupgap", "drop_frames1", "average_dark_current"):   # the fit's own
            del params[name]
        median = MedianRates(model.shape, has_zeroframe=self.uses_zeroframe(model, has_zeroframe),
                             dnu_groups=self._dnu_groups(model, dnu_table),
                             instrument=model.meta.instrument.name, **params)
        return median if median.takes_rows else None

    def _dnu_groups(self, model, dnu_table):
        if dnu_table is None:
            return None
        dnu_groups = np.asarray(dnu_table, bool).all(axis=0)
        first, last = group_range(model.shape[1], self.firstgroup, self.lastgroup)
        dnu_groups[:first] = True
        dnu_groups[last + 1:] = True
        return dnu_groups

    def begin_fit(self, model, has_zeroframe, storage=None, dnu_table=None, median_rates=None):
        """An :class:`OLSRampFitter` (or, for LIKELY, a :class:`LikelyRampFitter`, whose
        ``finish`` leaves the chi squared for ``save_chisq`` in its ``chisq``, and which keeps
        its per-integration planes in ``storage`` when given) for ``model`` (which may hold
        metadata only).

        ``dnu_table``: bool (nints, ngroups), the groups DO_NOT_USE in every pixel of each
        integration; OLS_C needs it for MIRI to know the groups stcal drops before the first
        pass (the fitter checks it, and raises if the exposure needed another choice).
        ``median_rates``: the first pass, made by :meth:`begin_median_rates` and complete."""
        gain, readnoise = self._prepare(model)
        if self.likely(model):
            return LikelyRampFitter(model.shape, gain.data, readnoise.data, model.pixeldq,
                                    has_zeroframe=self.uses_zeroframe(model, has_zeroframe),
                                    storage=storage,
                                    read_times=model.meta.exposure.read_times or None,
                                    **self._fit_parameters(model))
        return OLSRampFitter(model.shape, gain.data, readnoise.data, model.pixeldq,
                             has_zeroframe=self.uses_zeroframe(model, has_zeroframe),
                             dnu_groups=self._dnu_groups(model, dnu_table),
                             instrument=model.meta.instrument.name, median_rates=median_rates,
                             **self._fit_parameters(model))

    def uses_zeroframe(self, model, has_zeroframe):
        """Whether the fit is given the ZEROFRAME: for OLS_C when ZEROFRAM is set and the array
        is present; for LIKELY whenever the array is present (as stcal does)."""
        if self.likely(model):
            return bool(has_zeroframe)
        return bool(model.meta.exposure.zero_frame and has_zeroframe)

    def likely(self, model):
        """Whether LIKELY fits ``model``: asked for, or forced by explicit read times, and at
        least MIN_NGROUPS groups (jwst falls back to OLS_C below that)."""
        return self._asks_likely(model) and model.shape[1] >= MIN_NGROUPS

    def _asks_likely(self, model):
        return str(self.algorithm).upper() == "LIKELY" or bool(model.meta.exposure.read_times)

    def _prepare(self, model):
        read_times = model.meta.exposure.read_times
        if read_times and len(read_times) != model.shape[1]:
            # jwst 3.0.0 fails inside its fit here (its timing of a superstripe layout without
            # repeated reference rows counts other reads than its collation)
            raise Ramp2SlopeError(
                f"{model._path or 'input'}: ramp_fit: the exposure's read times "
                f"(meta.exposure.read_times) list {len(read_times)} groups, the ramp has "
                f"{model.shape[1]}")
        if read_times and str(self.algorithm).upper() != "LIKELY":
            # as jwst: unevenly spaced groups (superstripes repeated within a frame) need the
            # fit that takes every read's time
            log.warning("%s: Setting the algorithm to LIKELY for unevenly sampled exposure "
                        "(explicit read times), instead of %s", self.name, self.algorithm)
            self.algorithm = "LIKELY"
        if read_times:
            log.info("%s: Using explicit read times (%d groups) for the fit", self.name,
                     len(read_times))
        if self._asks_likely(model) and not self.likely(model):
            log.info("%s: LIKELY needs at least %d groups, got %d; using OLS_C", self.name,
                     MIN_NGROUPS, model.shape[1])
        group_range(model.shape[1], self.firstgroup, self.lastgroup, warn=True)
        gain = self.load_reference(model, "gain", load_gain, required=True)
        readnoise = self.load_reference(model, "readnoise", load_readnoise, required=True)
        if gain.gain_factor is not None:
            model.meta.exposure.gain_factor = gain.gain_factor
        return gain, readnoise

    def _fit_parameters(self, model):
        exposure = model.meta.exposure
        return dict(
            nframes=exposure.nframes or 1, group_time=exposure.group_time,
            frame_time=exposure.frame_time, groupgap=exposure.groupgap or 0,
            drop_frames1=exposure.drop_frames1 or 0,
            average_dark_current=model._arrays.get("average_dark_current"),
            suppress_one_group=self.suppress_one_group, firstgroup=self.firstgroup,
            lastgroup=self.lastgroup, save_opt=self.save_opt)

    def no_slopes(self, model):
        """Every pixel is saturated in group 0 (or a MIRI ramp has fewer than 2 groups once its
        all-DO_NOT_USE groups are dropped): the step is SKIPPED and gives no products."""
        log.warning("%s: every pixel is saturated in the first group, or (MIRI) fewer than 2 "
                    "groups are left to fit; no slopes", self.name)
        self.record_status(model, "SKIPPED")
        return None

    def products(self, model, rate, rateints):
        """The (rate ImageModel, rateints CubeModel) from the fitter's ``ImageProduct``s; the rate
        of an IFU exposure is an IFUImageModel, as officially."""
        rate = self._product(rate_model_class(model), model, rate)
        rateints = self._product(datamodels.CubeModel, model, rateints)
        rateints.int_times = model.int_times
        stripes = getattr(model, "int_times_stripe", None)
        if stripes is not None and len(stripes) > 0:
            rateints.int_times_stripe = stripes
        return rate, rateints

    def _product(self, cls, model, product):
        out = cls(data=product.data, dq=product.dq, err=product.err,
                  var_poisson=product.var_poisson, var_rnoise=product.var_rnoise)
        out.update(model)
        # the read times belong to the ramp: jwst's slope products do not carry them
        out.meta.exposure.read_times = None
        out.meta.bunit_data = "DN/s"
        out.meta.bunit_err = "DN/s"
        self.record_status(out, "COMPLETE")
        out._path = model._path
        return out

    def save_chisq(self, model, chisq):
        """LIKELY with save_opt: the rate's chi squared as an ImageModel (``likely_chisq``)."""
        out = datamodels.ImageModel(data=np.asarray(chisq, np.float32))
        out.update(model)
        base = self.opt_name or model._path or model.meta.filename
        path = make_output_path(base, output_dir=self.search_attr("output_dir"),
                                suffix="likely_chisq")
        out.save(path)
        log.info("%s: saved %s", self.name, path)
        return path

    def _save_optional(self, model, optional):
        fitopt = self.optional_model(model, optional)
        path = self.optional_path(model)
        fitopt.save(path)
        log.info("%s: saved %s", self.name, path)
        return path

    @staticmethod
    def optional_model(model, optional):
        """The fitopt RampFitOutputModel of ``model`` holding the arrays of ``optional``."""
        fitopt = datamodels.RampFitOutputModel(
            **{name: getattr(optional, name) for name in (
                "slope", "sigslope", "var_poisson", "var_rnoise", "yint", "sigyint", "pedestal",
                "weights", "crmag")})
        fitopt.update(model)
        return fitopt

    def optional_path(self, model):
        """Where the fitopt product of ``model`` is saved."""
        base = self.opt_name or model._path or model.meta.filename
        return make_output_path(base, output_dir=self.search_attr("output_dir"), suffix="fitopt")


def set_groupdq(firstgroup, lastgroup, ngroups, groupdq, groupdqflags):
    """OR DO_NOT_USE (from the ``groupdqflags`` table) into the groups of ``groupdq``
    (nints, ngroups, ...) outside ``[firstgroup, lastgroup]``, in place, with RampFitStep's rules
    and warnings for out-of-range or inconsistent values (the official function of this name)."""
    first, last = group_range(ngroups, firstgroup, lastgroup, warn=True)
    dnu = groupdqflags["DO_NOT_USE"]
    if first > 0:
        groupdq[:, :first] |= np.asarray(dnu).astype(groupdq.dtype)
    if last < ngroups - 1:
        groupdq[:, last + 1:] |= np.asarray(dnu).astype(groupdq.dtype)
