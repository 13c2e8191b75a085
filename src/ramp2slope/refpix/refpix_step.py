"""RefPixStep: remove amplifier offsets and 1/f row noise using the reference pixels."""
import logging
from dataclasses import dataclass

import numpy as np

from ..datamodels.irs2_layout import is_irs2_shape, layout_of, rows_mask
from ..errors import ReferenceFileError
from ..references import load_irs2_refpix
from ..stpipe import Step
from . import reference_pixels
from .irs2_mean import subtract_irs2_means
from .sirs import load_sirs_coefficients, make_sirs_kernels

__all__ = ["RefPixStep"]

log = logging.getLogger("ramp2slope")


class RefPixStep(Step):
    """Reference-pixel correction for the near-infrared detectors (traditional readout)."""

    class_alias = "refpix"
    ramp_input = True
    cal_step_name = "refpix"
    reference_file_types = ("refpix", "sirskernel")
    # REFPIX serves IRS2 exposures only and SIRSKERNEL is optional: nothing to check up front.
    prefetch_types = ()
    spec = """
        odd_even_columns = boolean(default=True)  # Compute reference signal separately for even/odd columns
        use_side_ref_pixels = boolean(default=True)  # Use side reference pixels for reference signal for each row
        side_smoothing_length = integer(default=11)  # Median window smoothing height for side reference signal
        side_gain = float(default=1.0)  # Multiplicative factor for side reference signal before subtracting from rows
        odd_even_rows = boolean(default=True)  # Compute reference signal separately for even- and odd-numbered rows
        ovr_corr_mitigation_ftr = float(default=3.0)  # Factor to avoid overcorrection of bad reference pixels for IRS2
        preserve_irs2_refpix = boolean(default=False)  # Preserve reference pixels in output
        irs2_mean_subtraction = boolean(default=False)  # Apply a mean offset subtraction before IRS2 correction
        refpix_algorithm = option('median', 'sirs', default='median')  # NIR full-frame side pixel algorithm
        sigreject = float(default=4.0)  # Number of sigmas to reject as outliers
        gaussmooth = float(default=1.0)  # Width of Gaussian smoothing kernel to use as a low-pass filter
        halfwidth = integer(default=30)  # Half-width of convolution kernel to build
        siglimit = float(default=3.0)  # Sigma clipping limit for outlier rejection
    """

    def process(self, model):
        if is_irs2_shape(model.shape):
            return self._process_irs2(model)
        miri = str(model.meta.instrument.name or "").upper() == "MIRI"
        if miri and self.refpix_algorithm == "sirs":
            log.info("Simple Improved Reference Subtraction (SIRS) not applied for MIRI data.")
        if getattr(self, "_corrector_cache", None) is None:
            self._corrector_cache = {}
        params = {"refpix_algorithm": self.refpix_algorithm, "sirs_kernel_model": None,
                  "sirs_kernels": None if miri else self._sirs_kernels(model),
                  "sigreject": self.sigreject, "gaussmooth": self.gaussmooth, "halfwidth": self.halfwidth,
                  # reused by the calls on the integrations of a streamed exposure
                  "corrector_cache": self._corrector_cache}
        # looked up in the module at each call, so that it can be replaced as the official one can
        status = reference_pixels.correct_model(
            model, self.odd_even_columns, self.use_side_ref_pixels, self.side_smoothing_length,
            self.side_gain, self.odd_even_rows, params, self.siglimit)
        if status == reference_pixels.SUBARRAY_DOESNTFIT:
            log.warning("Subarray doesn't fit in full-sized array")
            return self.skipped(model, "the subarray extends beyond the detector")
        if status == reference_pixels.BAD_REFERENCE_PIXELS:
            log.warning("No valid reference pixels, refpix step skipped")
            return self.skipped(model, "no valid reference pixels")
        if status == reference_pixels.SUBARRAY_SKIPPED:
            return self.skipped(model, "MIRI subarray")
        model = self.complete(model)
        if int(model.meta.subarray.num_superstripe or 0) > 0:
            from .multistripe import collate_model   # (it imports references, which import refpix)

            log.info("Reassembling striped data to standard ramp format")
            model = collate_model(model)
        return model

    def _process_irs2(self, model):
        """NIRSpec IRS2: the interleaved reference samples and the reference output, weighted in
        Fourier space by the REFPIX reference, are subtracted, then dropped (2048 rows remain)."""
        from . import irs2_subtract_reference as irs2   # only IRS2 exposures need it

        layout = layout_of(model)
        known = getattr(self, "_irs2_reference_flags", None)
        if known is None:
            irs2.flag_bad_reference_samples(model.data, model.pixeldq, layout,
                                            n_sigma=self.ovr_corr_mitigation_ftr, flag_only=True)
        else:
            # streamed, one integration at a time: flagged from every integration beforehand
            # (pipeline/streaming.py), as the whole exposure's correction flags them
            model.pixeldq |= known
        if self.irs2_mean_subtraction:
            if self.use_side_ref_pixels:
                log.info("Turning off side pixel correction for IRS2")
                self.use_side_ref_pixels = False
            zeroframe = model.zeroframe if model.meta.exposure.zero_frame and model.has("zeroframe") else None
            subtract_irs2_means(model.data, model.pixeldq, model.meta.instrument.detector, layout,
                                self.odd_even_columns, self.siglimit, zeroframe)
        irs2.flag_bad_reference_samples(model.data, model.pixeldq, layout, replace_only=True)
        ref = self.load_reference(model, "refpix", _load_folded_coefficients)
        if ref is None:
            log.warning("No refpix reference file found")
            log.warning("RefPix step will be skipped")
            return self.skipped(model, "no REFPIX reference")
        log.info("Using refpix reference file: %s", ref.path)
        self.release_reference(ref)
        if ref.alpha is None:   # (the count was logged as jwst logs it)
            return self.skipped(model, "the REFPIX table has the wrong number of rows")
        data, pixeldq, groupdq = irs2.correct_irs2(
            model.data, model.pixeldq, model.groupdq, model.meta.instrument.detector, ref.alpha,
            ref.beta, ref.dq_table, layout, preserve_refpix=self.preserve_irs2_refpix,
            release_input=True)
        model.data, model.pixeldq, model.groupdq = data, pixeldq, groupdq
        zeroframe = model._arrays.get("zeroframe")
        if zeroframe is not None and zeroframe.shape[-2] != data.shape[-2]:
            # jwst leaves the ZEROFRAME in the IRS2 layout, which no later step can use with the
            # 2048-row ramp: its science rows are kept instead (IRS2 files seldom have one)
            rows = rows_mask(model.meta.instrument.detector, zeroframe.shape[-2], layout)
            model.zeroframe = np.ascontiguousarray(zeroframe[:, rows])
        return self.complete(model)

    def _sirs_kernels(self, model):
        """SIRS kernels when asked for and available; otherwise None (running median)."""
        if self.refpix_algorithm != "sirs":
            return None
        if "FULL" not in str(model.meta.subarray.name or "").upper():
            log.info("Simple Improved Reference Subtraction (SIRS) not applied for subarray data.")
            return None
        try:
            kernels = self.load_reference(model, "sirskernel", self._load_sirs_kernels,
                                          key=(self.gaussmooth, self.halfwidth))
        except ReferenceFileError as exc:
            log.warning("%s: %s; using the running median", self.name, exc)
            return None
        if kernels is None:   # the official step's words for "N/A"
            log.warning("No reference file found for the optimized convolution kernel. "
                        "REFPIX step will use the running median algorithm for side pixels.")
            return None
        if getattr(model, "_integration_offset", 0) == 0:   # once per exposure when streaming
            log.info("Using SIRS reference file: %s", model.meta.ref_file.sirskernel.name)
        if isinstance(kernels, str):
            log.warning("%s: %s; using the running median", self.name, kernels)
            return None
        return kernels

    def _load_sirs_kernels(self, path, model):
        """The SIRS kernels of the exposure's detector, or a message saying why there are none."""
        detector = model.meta.instrument.detector
        gamma, zeta = load_sirs_coefficients(path, detector)
        if gamma is None:
            return f"{path} has no kernel for {detector}"
        return make_sirs_kernels(gamma, zeta, gaussmooth=self.gaussmooth, halfwidth=self.halfwidth)


@dataclass(frozen=True)
class _FoldedCoefficients:
    """The REFPIX reference as the IRS2 correction uses it: kept by the run's reference cache
    in place of its table, so that the folding is done once per run and the table's memory
    goes. ``alpha``/``beta`` are None where the table has the wrong number of rows."""

    path: str
    alpha: object
    beta: object
    dq_table: tuple


def _load_folded_coefficients(path, model):
    from . import irs2_subtract_reference as irs2   # only IRS2 exposures need it

    ref = load_irs2_refpix(path, model, derive=irs2.folded_coefficients_from_rows)
    coefficients = ref.irs2_table
    if coefficients is None:
        return _FoldedCoefficients(ref.path, None, None, ref.dq_table)
    return _FoldedCoefficients(ref.path, *coefficients, ref.dq_table)
