"""CleanFlickerNoiseStep: remove 1/f stripes from each group difference of a ramp (jwst 3.0.0's
median method; off by default, as officially)."""
import logging
import os

import numpy as np

from .. import datamodels
from ..datamodels import dqflags
from ..errors import Ramp2SlopeError
from ..ramp_fitting.draft_rate import draft_gain, draft_rates
from ..references.loaders import _RefFile
from ..stpipe import Step
from .background_level import background_level
from .clean_flicker_noise import (CleaningFailed, clean_image, clean_integration,
                                  clean_integration_against, create_mask, make_intermediate_model,
                                  median_image_scale, median_ramp, relative_scale)

__all__ = ["CleanFlickerNoiseStep"]

log = logging.getLogger("ramp2slope")

#: EXP_TYPEs jwst fits in frequency space (NSClean) with fit_method='fft'
NSCLEAN_EXP_TYPES = ("NRS_MSASPEC", "NRS_IFU", "NRS_FIXEDSLIT", "NRS_BRIGHTOBJ")


def load_flat(path, model):
    """The FLAT's SCI cut out to the science window, float32.

    Zero and NaN flat values are filled, as jwst fills them, with the photutils background
    model of the good values (their median when the model cannot be fitted).
    """
    ref = _RefFile(path, "FLAT", model)
    try:
        flat = np.array(ref.cut("SCI", model), dtype=np.float32)
        if ref.hdu("SCI").shape != flat.shape:
            log.info("%s: Extracting matching subarray %s from the flat", path, flat.shape)
    finally:
        ref.close()
    bad = (flat == 0) | ~np.isfinite(flat)
    if bad.any():
        if bad.all():
            raise Ramp2SlopeError(f"{path}: the FLAT has no usable value in the science window")
        smooth = background_level(flat, ~bad, "model")
        flat[bad] = smooth if np.ndim(smooth) == 0 else smooth[bad]
        log.warning("%s: %d zero or NaN flat values replaced by a smooth model of the flat",
                    path, int(bad.sum()))
    return flat


def load_flat_dq(path, model):
    """The FLAT's DQ cut out to the science window, with the pixels that the flat_field step
    would not correct (NaN or zero flat, NO_FLAT_FIELD) flagged DO_NOT_USE | NO_FLAT_FIELD."""
    ref = _RefFile(path, "FLAT", model)
    try:
        flat = ref.cut("SCI", model)
        dq = np.array(ref.cut("DQ", model, dtype=np.uint32))
    finally:
        ref.close()
    no_flat = np.uint32(dqflags.pixel["NO_FLAT_FIELD"])
    bad = np.isnan(flat) | (flat == 0) | ((dq & no_flat) != 0)
    dq[bad] |= np.uint32(dqflags.pixel["DO_NOT_USE"]) | no_flat
    return dq


#: The exposure types on which jwst's median_image light curve comes from stage-2 spectral
#: extraction through the spectral WCS (imaging time series are measured here as its
#: tso_photometry does, NIRISS SOSS by its background templates and a box on the traces).
MEDIAN_IMAGE_STAGE2 = {
    "NRS_BRIGHTOBJ": "extract_2d, extract_1d and white_light",
    "NRC_TSGRISM": "extract_2d, extract_1d and white_light",
}

#: The SOSS subarrays jwst makes a median image on; the stripe layouts among them are refused.
SOSS_MEDIAN_SUBARRAYS = ("SUBSTRIP256", "SUBSTRIP96")
SOSS_STRIPE_SUBARRAYS = ("SUB17STRIPE_SOSS", "SUB60STRIPE_SOSS", "SUB204STRIPE_SOSS",
                         "SUB680STRIPE_SOSS")


def _exp_type(model):
    return str(model.meta.exposure.type or "").upper()


def _is_tso(model):
    """A time series as jwst tells one (TSOVISIT, or a time-series EXP_TYPE) of 2+ integrations."""
    exp_type = _exp_type(model)
    tso = bool(model.meta.visit.tsovisit) or exp_type in (
        "MIR_LRS-SLITLESS", "NIS_SOSS", "NRC_TSGRISM", "NRC_TSIMAGE", "NRS_BRIGHTOBJ")
    return tso and (model.meta.exposure.nints or 0) >= 2


def _stored_median_ramp(store, sky=None, block_bytes=64 << 20):
    """:func:`median_ramp` of the exposure in a ScratchStore, by blocks of rows spanning every
    integration (about ``block_bytes`` each); ``sky`` as there."""
    nints, ngroups, ny, nx = store.shape
    out = np.empty((ngroups, ny, nx), np.float32)
    rows = int(max(1, min(ny, block_bytes // max(1, nints * ngroups * nx * 5))))
    rows = max(1, rows // store.block_rows) * store.block_rows   # whole blocks move fastest
    for y0 in range(0, ny, rows):
        y1 = min(ny, y0 + rows)
        data = np.empty((nints, ngroups, y1 - y0, nx), np.float32)
        groupdq = np.empty(data.shape, np.uint8)
        store.read_rows(y0, y1, data, groupdq)
        out[:, y0:y1] = median_ramp(data, None if sky is None else (sky[0][:, y0:y1], sky[1]))
    return out


def ramp_drafts(step, model):
    """The draft (rate, rateints) models of a ramp held in memory, made for ``step``."""
    has_zf = model.has("zeroframe")
    return draft_rates(step, model, model.shape[0], has_zf, lambda i: (
        model.data[i], model.groupdq[i], model.zeroframe[i] if has_zf else None))


def _is_tso_imaging(model):
    """Where jwst measures the median image's scale with tso_photometry."""
    exp_type = _exp_type(model)
    return exp_type == "NRC_TSIMAGE" or (exp_type == "MIR_IMAGE" and _is_tso(model))


def _is_miri(model):
    return str(model.meta.instrument.name or "").strip().upper() == "MIRI"


class CleanFlickerNoiseStep(Step):
    """Fit and remove the 1/f (flicker) noise of a ramp between jump and ramp fitting."""

    class_alias = "clean_flicker_noise"
    cal_step_name = "clean_flicker_noise"
    # PASTASOSS: the NIRISS SOSS traces, looked up only for mask_science_regions or
    # median_image on NIS_SOSS; BKG and WAVELENGTHRANGE only for median_image on NIS_SOSS (jwst
    # asks CRDS for them from the stage-2 steps it runs; here they may be given as overrides too)
    reference_file_types = ("flat", "pastasoss", "bkg", "wavelengthrange")

    @property
    def prefetch_types(self):
        """The FLAT is found and checked before any step runs only when it will be used."""
        return ("flat",) if self.apply_flat_field else ()
    spec = """
        autoparam = boolean(default=False)  # Automatically select fit and background parameters
        fit_method = option('fft', 'median', default='median')  # Noise fitting algorithm
        fit_by_channel = boolean(default=False)  # Fit noise separately by amplifier (NIR only)
        background_method = option('median', 'model', 'median_image', None, default='median')  # Background fit
        background_box_size = int_list(default=None)  # Background box size
        mask_science_regions = boolean(default=False)  # Mask known science regions
        apply_flat_field = boolean(default=False)  # Apply a flat correction before fitting
        n_sigma = float(default=2.0)  # Clipping level for non-background signal
        fit_histogram = boolean(default=False)  # Fit a value histogram to derive sigma
        single_mask = boolean(default=True)  # Make a single mask for all integrations
        user_mask = string(default=None)  # Path to user-supplied mask
        save_mask = boolean(default=False)  # Save the created mask
        save_background = boolean(default=False)  # Save the fit background
        save_noise = boolean(default=False)  # Save the fit noise
        skip = boolean(default=True)  # By default, skip the step
    """

    # -- setting up -------------------------------------------------------------------------------
    def wanted_references(self, model):
        self._refuse(model)   # before any step runs
        if self._median_image and _exp_type(model) == "NIS_SOSS":
            for reftype in ("bkg", "wavelengthrange"):
                self.resolve_reference(model, reftype)   # none anywhere: one line, now
        return super().wanted_references(model)

    def _refuse(self, model):
        """One-line errors for what ramp2slope does not implement on this exposure."""
        exp_type = _exp_type(model)
        if exp_type.startswith("NRS") and self.mask_science_regions:
            raise Ramp2SlopeError(f"{self.name}: mask_science_regions for NIRSpec needs its WCS "
                                  f"(assign_wcs, msaflagopen), which ramp2slope does not compute")
        if self.background_method == "median_image":
            needs = MEDIAN_IMAGE_STAGE2.get(exp_type)
            if needs is not None:
                raise Ramp2SlopeError(
                    f"{self.name}: background_method='median_image' on {exp_type} scales the "
                    f"median by a light curve from {needs}, stage-2 steps ramp2slope does not "
                    f"have; use 'median', 'model' or None")
            if _is_tso_imaging(model) and model.meta.exposure.integration_time is None:
                raise Ramp2SlopeError(
                    f"{model._path or 'input'}: no EFFINTTM keyword; {self.name}'s median_image "
                    f"on a time series is scaled by photometry in electrons per integration")
            if exp_type == "NIS_SOSS":
                self._refuse_soss_median(model)

    def _refuse_soss_median(self, model):
        where = model._path or "input"
        subarray = str(model.meta.subarray.name or "").upper()
        if subarray in SOSS_STRIPE_SUBARRAYS:
            raise Ramp2SlopeError(f"{self.name}: background_method='median_image' on the SOSS "
                                  f"stripe subarray {subarray} is not implemented; use 'median', "
                                  f"'model' or None")
        if model.meta.instrument.pupil_position is None:
            raise Ramp2SlopeError(f"{where}: no PWCPOS keyword; {self.name}'s median_image on "
                                  f"NIS_SOSS needs the pupil wheel position to place the traces")
        exposure = model.meta.exposure
        if exposure.frame_time is None or exposure.nframes is None:
            raise Ramp2SlopeError(f"{where}: no TFRAME or NFRAMES keyword; {self.name}'s "
                                  f"median_image on NIS_SOSS needs each group's time")

    def _usable(self, model):
        """None if the step can run on ``model``; else the reason jwst would give up."""
        self._refuse(model)
        exp_type = _exp_type(model)
        if exp_type.startswith("MIR") and exp_type != "MIR_IMAGE" and self.fit_method != "fft":
            # jwst cleans MIRI imaging only (spectra and coronagraphs are skipped)
            return f"EXP_TYPE {exp_type} is not supported"
        if self.fit_method == "fft" and exp_type not in NSCLEAN_EXP_TYPES:
            # jwst fits in frequency space for NIRSpec spectroscopy only
            return f"Fit method 'fft' cannot be applied to exp_type {exp_type}"
        if self._median_image and exp_type == "NIS_SOSS":
            subarray = str(model.meta.subarray.name or "").upper()
            if subarray not in SOSS_MEDIAN_SUBARRAYS:
                return f"median_image processing is not available for SOSS subarray {subarray}"
            if self.reference_or_skip(model, "pastasoss") is None:
                log.warning("%s: No PASTASOSS reference file found", self.name)
                return "median_image processing is not available for SOSS without a pastasoss file"
        return None

    def _auto_parameters(self, model, make_drafts):
        """``autoparam``: set background_method, fit_by_channel and apply_flat_field from the
        exposure (NRC_IMAGE and NIS_IMAGE, as jwst). Returns the draft (rate, rateints) it made,
        for the scene mask to reuse, or None."""
        from . import autoparam

        exp_type = _exp_type(model)
        if exp_type not in autoparam.AUTOPARAM_EXP_TYPES:
            log.warning("%s: Auto parameters are not available for exposure type %s", self.name,
                        exp_type)
            log.info("%s: Using input parameters as provided; no overrides applied.", self.name)
            return None
        drafts = make_drafts()
        try:
            path = self.reference_or_skip(model, "flat")
        except Ramp2SlopeError as exc:
            log.warning("%s: %s; autoparam decides without a flat", self.name, exc)
            path = None
        # through the module's public functions, as jwst's step calls them
        choose = (autoparam.niriss_image_parameters if exp_type == "NIS_IMAGE"
                  else autoparam.nircam_image_parameters)
        chosen = choose(model, path, drafts[0].data)
        if chosen is None:
            log.warning("%s: Auto parameter setting failed.", self.name)
            log.info("%s: Using input parameters as provided; no overrides applied.", self.name)
            return drafts
        log.info("%s: Auto parameters set for %s:", self.name, exp_type)
        for name, value in chosen.items():
            log.info("%s:   %s: %s", self.name, name, value)
            setattr(self, name, value)
        return drafts

    def _options(self, model):
        miri = _is_miri(model)
        fit_by_channel = self.fit_by_channel
        if fit_by_channel and (str(model.meta.subarray.name or "").upper() != "FULL" or miri):
            log.warning("%s: fit_by_channel can only be used for full-frame NIR data; not used",
                        self.name)
            fit_by_channel = False
        if miri:
            # MIRI has no 1/f noise but a flicker constant along columns: jwst takes the
            # medians along y whatever SLOWAXIS says
            slow_axis_rows = False
        else:
            slowaxis = model.meta.subarray.slowaxis
            if slowaxis is None:
                raise Ramp2SlopeError(f"{model._path or 'input'}: no SLOWAXIS keyword; the "
                                      f"readout direction is needed to fit the 1/f stripes")
            slow_axis_rows = abs(int(slowaxis)) == 2
        return dict(background_method=self.background_method, n_sigma=self.n_sigma,
                    background_box_size=self.background_box_size,
                    slow_axis_rows=slow_axis_rows, fit_by_channel=fit_by_channel,
                    fit_method=self.fit_method,
                    detector=str(model.meta.instrument.detector or "").upper(),
                    subarray=model.meta.subarray.name)

    def _flat(self, model):
        if not self.apply_flat_field:
            return None
        path = self.reference_or_skip(model, "flat")
        if path is None:
            log.warning("%s: Flat correction is not available (no FLAT reference); the fit is "
                        "made without a flat", self.name)
            return None
        log.info("%s: Dividing by flat %s before the fit (restored after it)", self.name,
                 os.path.basename(path))
        return load_flat(path, model)

    def _user_mask(self, shape, nints):
        path = self.user_mask
        try:
            mask_model = datamodels.open(path)
            mask = np.asarray(mask_model.data).astype(bool)
        except Ramp2SlopeError:
            raise
        except Exception as exc:
            raise Ramp2SlopeError(f"{path}: cannot read the user mask ({exc})") from None
        if mask.shape[-2:] != tuple(shape) or (mask.ndim == 3 and mask.shape[0] != nints):
            return None
        return mask

    @property
    def _median_image(self):
        return str(self.background_method) == "median_image"

    def _single_mask(self):
        if self.single_mask and self._median_image:
            log.warning("%s: the median_image background method needs a mask per integration "
                        "(draft rateints). Setting single_mask to False.", self.name)
            return False
        return self.single_mask

    def _masks(self, model, rate, rateints):
        """The scene mask from the draft models, and the draft image it was made from."""
        draft = rate if self._single_mask() else rateints
        exp_type = _exp_type(model)
        pastasoss = None
        if self.mask_science_regions and exp_type == "MIR_IMAGE":
            # jwst runs a flat_field step on the draft for its DQ
            draft.dq = np.asarray(draft.dq, np.uint32) | self._flat_dq(
                model, "the non-science regions")
        if self.mask_science_regions and exp_type == "NIS_SOSS":
            pastasoss = self.reference_or_skip(model, "pastasoss")
            if pastasoss is None:
                raise Ramp2SlopeError(f"{self.name}: mask_science_regions on NIS_SOSS needs a "
                                      f"PASTASOSS reference (override_pastasoss)")
        mask = create_mask(draft, self.mask_science_regions, self.n_sigma, self.fit_histogram,
                           soss_refmodel=pastasoss)
        return mask, draft.data

    def _soss_traces(self, model, shape):
        """The pixels near a NIRISS SOSS exposure's spectral traces (bool, ``shape``), from the
        PASTASOSS reference at its pupil-wheel position (``mask_science_regions``, through
        :func:`.clean_flicker_noise.create_mask`)."""
        from .soss_traces import read_pastasoss, soss_traces, trace_pixels

        where = model._path or "input"
        pwcpos = model.meta.instrument.pupil_position
        if pwcpos is None:
            raise Ramp2SlopeError(f"{where}: no PWCPOS keyword; mask_science_regions on NIS_SOSS "
                                  f"needs the pupil wheel position to place the traces")
        path = self.reference_or_skip(model, "pastasoss")
        if path is None:
            raise Ramp2SlopeError(f"{self.name}: mask_science_regions on NIS_SOSS needs a "
                                  f"PASTASOSS reference (override_pastasoss)")
        reference = read_pastasoss(path)      # its errors name the reference file
        try:
            traces = soss_traces(reference, float(pwcpos),
                                 str(model.meta.subarray.name or "").upper())
        except Ramp2SlopeError as exc:
            raise type(exc)(f"{where}: {exc}") from None
        log.info("%s: masking the SOSS traces (PASTASOSS %s, PWCPOS %.3f)", self.name,
                 os.path.basename(path), float(pwcpos))
        return trace_pixels(traces, shape)

    # -- whole exposure ---------------------------------------------------------------------------
    def process(self, model):
        reason = self._usable(model)
        if reason is not None:
            return self._failed(model, reason)
        if model.data.ndim in (2, 3):
            return self._process_rates(model)
        nints, ngroups, ny, nx = model.shape

        def make_drafts():
            return ramp_drafts(self, model)
        drafts = self._auto_parameters(model, make_drafts) if self.autoparam else None
        options = self._options(model)
        flat = self._flat(model)
        prepared = self._prepare_masks(model, drafts, make_drafts, flat, (ny, nx), nints)
        if isinstance(prepared, str):
            return self._failed(model, prepared)
        mask, mask_source, scale, sky = prepared[:4]
        median = median_ramp(model.data, sky) if scale is not None else None
        background = np.zeros(model.data.shape, np.float32) if self.save_background else None
        original = model.data.copy() if self.save_noise or self._may_fail else None
        data, groupdq = model.data, model.groupdq
        try:
            for i in range(nints):
                self._clean_one(i, data[i], groupdq[i], mask, median, scale, flat, options,
                                None if background is None else background[i], sky)
        except CleaningFailed as exc:
            data[...] = original
            return self._cleaning_failed(model, i, exc)
        self._save_intermediates(model, mask, mask_source, background,
                                 original if self.save_noise else None)
        return self.complete(model)

    @property
    def _may_fail(self):
        """NSClean (fit_method='fft') can fail on any image of the exposure; jwst then gives
        the whole exposure back as it was, so its data before cleaning are kept."""
        return self.fit_method == "fft"

    def _cleaning_failed(self, model, i, exc):
        log.error("%s: Cleaning failed for integration %d, group %d (%s): the data are left "
                  "as they were", self.name, i + 1, exc.group, exc)
        self.record_status(model, "FAILED")
        return model

    def _process_rates(self, model):
        """The step on a rate image or a rateints cube (stage 2, as jwst runs it there): each
        image is cleaned itself, its scene mask made from the rates themselves."""
        data = model.data
        cube = data.ndim == 3
        nints = data.shape[0] if cube else 1
        source = (datamodels.CubeModel if cube else datamodels.ImageModel)(data=data.copy(),
                                                                            dq=model.dq.copy())
        source.update(model)

        def make_drafts():
            # autoparam looks at the mean of the integrations' rates
            if not cube:
                return source, source
            mean = datamodels.ImageModel(data=np.nanmean(data, axis=0))
            mean.update(model)
            return mean, source
        if self.autoparam:
            self._auto_parameters(model, make_drafts)
        options = self._options(model)
        flat = self._flat(model)
        prepared = self._prepare_masks(model, (source, source), None, flat, data.shape[-2:],
                                       nints)
        if isinstance(prepared, str):
            return self._failed(model, prepared)
        mask, mask_source, scale, sky, median_source = prepared
        # (median_image keeps a mask per integration; _masks has said so already)
        if mask.ndim == 3 and self.single_mask and not self._median_image:
            mask = np.all(mask, axis=0)     # one mask: background in every integration
        background = np.zeros(data.shape, np.float32) if self.save_background else None
        original = data.copy() if self.save_noise or self._may_fail else None
        planes = data if cube else data[np.newaxis]
        levels = None if background is None else (background if cube else background[np.newaxis])
        try:
            self._clean_rates(planes, levels, mask, scale, median_source, flat, options, sky)
        except CleaningFailed as exc:
            data[...] = original
            return self._cleaning_failed(model, exc.integration, exc)
        self._save_intermediates(model, mask, mask_source, background,
                                 original if self.save_noise else None)
        return self.complete(model)

    def _clean_rates(self, planes, levels, mask, scale, median_source, flat, options, sky):
        """Clean the (nints, ny, nx) rate planes in place; a CleaningFailed says in
        ``integration`` (0-based) which one failed."""
        if scale is not None:
            # the median of the (flat-divided, on SOSS background-subtracted) draft, as jwst
            median = median_ramp(median_source[:, np.newaxis])
        for i in range(planes.shape[0]):
            try:
                if scale is not None:
                    self._clean_one(i, planes[i:i + 1], None, mask, median, scale, flat, options,
                                    None if levels is None else levels[i:i + 1], sky)
                    continue
                plane_mask = (mask[i] if mask.ndim == 3 else mask).copy()
                cleaned, level = clean_image(planes[i].copy(), plane_mask, flat=flat, **options)
            except CleaningFailed as exc:
                exc.integration = i
                raise
            if cleaned is None:
                log.warning("%s: integration %d has no background pixels; left as it was",
                            self.name, i + 1)
                continue
            planes[i] = cleaned
            if levels is not None:
                levels[i] = level

    def _prepare_masks(self, model, drafts, make_drafts, flat, shape, nints):
        """(mask, the draft model it came from or None, per-integration scale of the median
        image or None, the SOSS background rates and group times or None, on rate inputs the
        cube whose median over integrations is the median image or None), or the reason jwst
        gives for leaving the exposure as it is."""
        user_mask = self.user_mask is not None and str(self.user_mask).lower() != "none"
        rate = rateints = None
        if not user_mask or self._median_image:
            rate, rateints = drafts if drafts is not None else make_drafts()
            if flat is not None:
                rate.data = rate.data / flat
                if rateints is not rate:
                    rateints.data = rateints.data / flat
        mask_source = None
        if user_mask:
            mask = self._user_mask(shape, nints)
            if mask is None:
                return "Mask does not match data shape"
        else:
            mask, image = self._masks(model, rate, rateints)
            mask_source = rate if image is rate.data else rateints
        scale = sky = None
        rates_input = model.data.ndim < 4
        median_source = rateints.data if self._median_image and rates_input else None
        if self._median_image:
            if nints <= 1:
                return f"The median_image background method cannot be used with nints={nints}"
            try:
                scale, sky, subtracted = self.median_image_scale(model, rateints)
            except ValueError as exc:
                return f"A median image could not be created ({exc})"
            if rates_input and subtracted is not None:
                median_source = subtracted
            log.info("%s: making a scaled median image", self.name)
        return mask, mask_source, scale, sky, median_source

    def median_image_scale(self, model, rateints):
        """What scales the median image of ``model`` (a ramp or rateints) in each integration,
        from its draft ``rateints``: (relative flux per integration, the SOSS background (rates
        per integration, each group's time) or None, the background-subtracted rateints or
        None). The flux is aperture photometry on imaging time series, a white-light curve on
        NIRISS SOSS, else the median rate. ValueError where jwst gives up on the median image."""
        sky = subtracted = None
        needs = MEDIAN_IMAGE_STAGE2.get(_exp_type(model))
        if needs is not None:
            raise Ramp2SlopeError(f"{self.name}: the median image of {_exp_type(model)} is scaled "
                                  f"by a light curve from {needs}, stage-2 steps ramp2slope "
                                  f"does not have")
        if _is_tso_imaging(model):
            flux = self._light_curve(model, rateints)
        elif _exp_type(model) == "NIS_SOSS":
            flux, rates, subtracted = self._soss_light_curve(model, rateints)
            sky = (rates, self._group_times(model))
        else:
            flux = None
        scale, invalid = (median_image_scale(rateints.data) if flux is None
                          else relative_scale(flux))
        if invalid:
            log.warning("%s: %d integration(s) out of %d had no finite median rate and are "
                        "scaled by the median instead", self.name, invalid, len(scale))
        return scale, sky, subtracted

    @staticmethod
    def _group_times(model):
        """Seconds from the reset to each group's read; a rate is its own one-second ramp."""
        from .soss_light_curve import group_times

        if model.data.ndim < 4:
            return [1.0]
        exposure = model.meta.exposure
        return group_times(int(exposure.nframes), int(exposure.groupgap or 0),
                           float(exposure.frame_time), model.shape[1])

    def _soss_light_curve(self, model, rateints):
        """The white-light curve that scales the median image of a SOSS time series, the
        background rates (per integration) taken out of the ramps before their median and put
        back in the image subtracted, and the background-subtracted draft (see
        :mod:`.soss_light_curve`). ValueError where jwst's stage-2 steps fail."""
        from .soss_light_curve import (background_rates, read_background_templates,
                                       read_wavelength_range, soss_light_curve,
                                       subtract_template_background)
        from .soss_traces import read_pastasoss

        log.info("%s: scaling the median image by a white-light curve: SOSS background "
                 "templates, a box along order 1's trace", self.name)
        bkg = self._stage2_reference(model, "bkg")
        if bkg is None:
            log.warning("%s: no BKG reference; no background is subtracted", self.name)
            subtracted = rateints.data.copy()
        else:
            subtracted = subtract_template_background(
                rateints.data, rateints.dq, read_background_templates(bkg), os.path.basename(bkg))
        rates = background_rates(rateints.data, subtracted)
        wave_range = None
        ranges = self._stage2_reference(model, "wavelengthrange")
        if ranges is None:
            log.warning("%s: no WAVELENGTHRANGE reference; the white light sums every wavelength",
                        self.name)
        else:
            wave_range = read_wavelength_range(ranges, 1, model.meta.instrument.filter)
        pastasoss = read_pastasoss(self.reference_or_skip(model, "pastasoss"))
        curve = soss_light_curve(subtracted, pastasoss, float(model.meta.instrument.pupil_position),
                                 str(model.meta.subarray.name or "").upper(), wave_range)
        return curve, rates, subtracted

    def _stage2_reference(self, model, reftype):
        """A reference jwst's stage-2 steps look up (not recorded in the product, as there): its
        path, or None for N/A."""
        path = self.resolve_reference(model, reftype)
        if path == "N/A":
            return None
        log.info("%s: Using %s reference file %s", self.name, reftype.upper(),
                 os.path.basename(path))
        return path

    def _light_curve(self, model, rateints):
        """The aperture sums that scale the median image of an imaging time series (see
        :mod:`.tso_light_curve`); ValueError where the photometry cannot be made."""
        from ..stpipe.crds_pars import find_parameter_references
        from ..stpipe.parfiles import read_tree
        from .tso_light_curve import PhotometryParameters, light_curve

        # as the official step's call of TSOPhotometryStep: its CRDS parameters, if any
        found = find_parameter_references(model, ["pars-tsophotometrystep"])
        given = read_tree(found["pars-tsophotometrystep"])["parameters"] if found else {}
        params = PhotometryParameters.from_mapping(given)
        dq = rateints.dq
        if _exp_type(model) == "MIR_IMAGE":
            dq = dq | self._flat_dq(model, "the pixels the centroids skip")
        whole = (str(model.meta.instrument.pupil or "").upper() == "WLP8"
                 and str(model.meta.subarray.name or "").upper() == "SUB64P")
        log.info("%s: scaling the median image by aperture photometry of each integration, as "
                 "tso_photometry measures it", self.name)
        wcsinfo = model.meta.wcsinfo
        return light_curve(rateints.data, dq, draft_gain(self, model),
                           model.meta.exposure.integration_time,
                           wcsinfo.siaf_xref_sci, wcsinfo.siaf_yref_sci, params,
                           whole_image=whole)

    def _flat_dq(self, model, purpose):
        """The FLAT's DQ for ``purpose`` (jwst runs flat_field on the draft rate for it); 0
        without a FLAT (the draft rate's own DQ is then used alone)."""
        try:
            path = self.reference_or_skip(model, "flat")
        except Ramp2SlopeError as exc:
            log.warning("%s: %s; %s come from the draft rate's DQ only", self.name, exc, purpose)
            return np.uint32(0)
        if path is None:
            return np.uint32(0)
        log.info("%s: %s from the FLAT's DQ too", self.name, purpose)
        return load_flat_dq(path, model)

    def _clean_one(self, i, data, groupdq, mask, median, scale, flat, options, background,
                   sky=None):
        """Clean integration ``i`` in place: its group differences, or with a median image,
        its groups against the scaled median (plus, on SOSS, the background ramp ``sky``)."""
        plane_mask = mask[i] if mask.ndim == 3 else mask
        if median is None:
            skipped = clean_integration(data, groupdq, plane_mask, flat=flat,
                                        background=background, **options)
            what = "group difference(s)"
        else:
            offset = None if sky is None else (sky[0][i], sky[1])
            skipped = clean_integration_against(data, median, scale[i], plane_mask, flat=flat,
                                                background=background, offset=offset, **options)
            what = "group(s)"
        if skipped:
            log.warning("%s: integration %d: %d %s without background pixels left as they were",
                        self.name, i + 1, skipped, what)

    # -- one integration at a time (pipeline/streaming.py) -------------------------------------
    def process_store(self, shell, store, products):
        """The step on an exposure held by a ScratchStore, one integration at a time: the draft
        rate by the ramp fit's two passes, then each integration cleaned and written back.
        ``shell`` holds the exposure's metadata; the products go through ``products``."""
        from ..datamodels.models import placeholder

        reason = self._usable(shell)
        if reason is not None:
            return self._failed(shell, reason)
        nints, ngroups, ny, nx = store.shape
        data = np.empty((ngroups, ny, nx), dtype=np.float32)
        groupdq = np.empty((ngroups, ny, nx), dtype=np.uint8)
        zeroframe = np.empty((ny, nx), dtype=np.float32) if store.has_zeroframe else None

        def read(i):
            store.read_integration(i, data, groupdq, zeroframe)
            return data, groupdq, zeroframe

        def make_drafts():
            return draft_rates(self, shell, nints, store.has_zeroframe, read)
        drafts = self._auto_parameters(shell, make_drafts) if self.autoparam else None
        options = self._options(shell)
        flat = self._flat(shell)
        prepared = self._prepare_masks(shell, drafts, make_drafts, flat, (ny, nx), nints)
        if isinstance(prepared, str):
            return self._failed(shell, prepared)
        mask, mask_source, scale, sky = prepared[:4]
        median = _stored_median_ramp(store, sky) if scale is not None else None
        writers = {}
        ramp_shape = {"data": store.shape}
        for wanted, suffix in ((self.save_background, "flicker_bkg"), (self.save_noise, "flicker_noise")):
            if wanted:
                out = datamodels.RampModel(data=placeholder(store.shape, np.float32))
                out.update(shell)
                writers[suffix] = products.start(out, self.intermediate_path(shell, suffix), ramp_shape)
        background = np.zeros_like(data) if self.save_background else None
        original = np.empty_like(data) if self.save_noise else None
        # the integrations cleaned so far are written back as they go: where a later one fails,
        # they are restored from this copy (freed when the step ends); the last one needs none,
        # as a failing integration is never written back
        undo = store.extra("clean_flicker_noise_undo.f32", store.shape, np.float32) \
            if self._may_fail and nints > 1 else None
        try:
            for i in range(nints):
                store.read_integration(i, data, groupdq)
                if undo is not None and i < nints - 1:
                    undo.write(undo.offset(i), data)
                if original is not None:
                    original[...] = data
                if background is not None:
                    background[...] = 0
                try:
                    self._clean_one(i, data, groupdq, mask, median, scale, flat, options,
                                    background, sky)
                except CleaningFailed as exc:
                    for done in range(i):
                        undo.read(undo.offset(done), data)
                        store.write_integration(done, data=data)
                    for writer in writers.values():
                        products.discard(writer)
                    return self._cleaning_failed(shell, i, exc)
                self._write_one(store, writers, i, data, background, original)
        finally:
            if undo is not None:
                store.release(undo)
        for writer in writers.values():
            products.finish(writer, self)
        self._save_intermediates(shell, mask, mask_source, None, None)
        return self.complete(shell)

    @staticmethod
    def _write_one(store, writers, i, data, background, original):
        store.write_integration(i, data=data)
        if background is not None:
            writers["flicker_bkg"].write("data", i, background)
        if original is not None:
            np.subtract(data, original, out=original)
            writers["flicker_noise"].write("data", i, original)

    def _failed(self, model, reason):
        log.warning("%s: %s; step skipped", self.name, reason)
        self.record_status(model, "FAILED")
        return model

    # -- intermediate products --------------------------------------------------------------------
    def _save_intermediates(self, model, mask, mask_source, background, original):
        if self.save_mask and mask is not None:
            cls = datamodels.CubeModel if mask.ndim == 3 else datamodels.ImageModel
            out = cls(data=mask.astype(np.float32))
            out.update(mask_source if mask_source is not None else model)
            self.save_intermediate(out, model, "mask")
        if background is not None:
            self.save_intermediate(make_intermediate_model(model, background), model, "flicker_bkg")
        if original is not None:
            self.save_intermediate(make_intermediate_model(model, model.data - original), model,
                                   "flicker_noise")
