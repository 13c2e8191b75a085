"""Detector1Pipeline: ramps to slopes (official step order).

Near-infrared detectors: group_scale → dq_init → saturation → ipc → superbias → refpix →
linearity → dark_current; MIRI: group_scale → dq_init → emicorr → saturation → ipc →
firstframe → lastframe → reset → linearity → rscd → dark_current → refpix. Then, for both:
charge_migration → jump → picture_frame → clean_flicker_noise → persistence → [save _ramp] →
ramp_fit → gain_scale (rate) → gain_scale (rateints) → save _rateints and _rate.

Given a file with more than one integration, the pipeline processes it one integration at a
time (:mod:`ramp2slope.pipeline.streaming`), so that its memory does not grow with NINTS; the
products are identical to those of the whole-exposure processing (``process``), which is used
for a single integration and for a model handed in by the caller.
"""
import logging
import os
import time

import numpy as np

from .. import datamodels
from ..runtime import cache_loading, compile_notice, jit_warmup, kernel_clock
from ..datamodels.lazy import open_ramp_source
from ..datamodels.irs2_layout import is_irs2_shape, layout_of
from ..datamodels.models import is_guide_star_exposure
from ..charge_migration import ChargeMigrationStep
from ..clean_flicker_noise import CleanFlickerNoiseStep
from ..dark_current import DarkCurrentStep
from ..dq_init import DQInitStep
from ..emicorr import EmiCorrStep
from ..errors import BadInputError, Ramp2SlopeError
from ..firstframe import FirstFrameStep
from ..gain_scale import GainScaleStep
from ..group_scale import GroupScaleStep
from ..ipc import IPCStep
from ..jump import JumpStep
from ..lastframe import LastFrameStep
from ..linearity import LinearityStep
from ..persistence import PersistenceStep
from ..ramp_fitting import RampFitStep
from ..references import NOT_APPLICABLE, check_reference, crds_client
from ..refpix import RefPixStep
from ..reset import ResetStep
from ..rscd import RscdStep
from ..saturation import SaturationStep
from ..stpipe import Pipeline, ReferenceCache
from ..stpipe.naming import check_product_path, withdrawn_on_failure
from .scratch import remove_stale_scratch
from ..picture_frame import PictureFrameStep
from ..superbias import SuperBiasStep
from .streaming import run_streamed

__all__ = ["Detector1Pipeline"]

log = logging.getLogger("ramp2slope")


def _refuse_guide_star_data(model, where):
    raise BadInputError(f"{where}: raw guide-star data ({model.meta.exposure.type}) are processed by "
                        f"calwebb_guider, not calwebb_detector1")


def validate_ramp(model, where, source=None):
    """One-line errors for inputs no step could process.

    With ``source`` (the model's :class:`~ramp2slope.datamodels.lazy.RampSource`), the ramp is
    read from it one integration at a time for the checks on its values.
    """
    data = model._arrays.get("data")
    if data is None:
        raise BadInputError(f"{where}: no SCI extension")
    if data.ndim != 4:
        raise BadInputError(f"{where}: SCI must be 4-D (nints, ngroups, ny, nx), got shape {data.shape}")
    if 0 in data.shape:
        raise BadInputError(f"{where}: SCI holds no data (shape {data.shape})")
    _validate_cards(model.primary_header, where)
    if model.meta.exposure.ngroups is None:
        raise BadInputError(f"{where}: the primary header has no NGROUPS keyword")
    if model.meta.instrument.name is None or model.meta.instrument.detector is None:
        raise BadInputError(f"{where}: the primary header has no INSTRUME or DETECTOR keyword")
    if is_miri(model):
        _validate_miri(model, data.shape, where, source)
    if is_guide_star_exposure(model):
        _refuse_guide_star_data(model, where)
    if is_irs2_shape(data.shape):
        _validate_irs2(model, data.shape, where)
    validate_timing(model, where)
    _validate_companions(model, where, source)
    fast, slow = (model.primary_header.get(k) for k in ("FASTAXIS", "SLOWAXIS"))
    if fast is not None and slow is not None:
        from ..refpix.orientation import check_axes

        try:
            check_axes(fast, slow)
        except Ramp2SlopeError as exc:
            raise BadInputError(f"{where}: {exc}") from None
    for keyword, axis, what in (("NGROUPS", 1, "groups"), ("NINTS", 0, "integrations")):
        value = _number(model, keyword, where, required=keyword == "NGROUPS")
        if value is not None and value != data.shape[axis]:
            log.warning("%s: %s=%s but SCI has %d %s; the array shape is used", where, keyword,
                        value, data.shape[axis], what)
    if source is None:
        first = data[:, 0]
        bad = int(np.count_nonzero(~np.isfinite(first)))
        negative = int(np.count_nonzero(first < 0))
    else:
        bad = negative = 0
        # a raw ramp stored unsigned (the usual uint16) can have neither: the first groups
        # are not read for nothing (a 3 x 5 full frame: 30 ms)
        for integration in range(0 if source.stores_unsigned else source.nints):
            first = source.read("data", integration, group=0)
            bad += int(np.count_nonzero(~np.isfinite(first)))
            negative += int(np.count_nonzero(first < 0))
    # a ramp already calibrated by some step (an intermediate product) is negative by nature
    calibrated = any(str(value) == "COMPLETE" for key, value in model.primary_header.items()
                     if key.startswith("S_"))
    if negative and not calibrated:
        log.warning("%s: SCI holds %d negative counts in the first group (raw counts are "
                    "unsigned: a missing BZERO?); used as they are, as jwst uses them", where,
                    negative)
    if bad:
        raise BadInputError(f"{where}: SCI contains non-finite values (NaN or inf) in the first group "
                            f"of {bad} pixels; raw ramps must be finite")


#: The MIRI detectors: 1024 rows of 1032 columns (4 reference columns on each side).
MIRI_DETECTORS = ("MIRIMAGE", "MIRIFULONG", "MIRIFUSHORT")
MIRI_FULL_SHAPE = (1024, 1032)


def is_miri(model):
    return str(model.meta.instrument.name or "").upper() == "MIRI"


def _validate_miri(model, shape, where, source=None):
    """A MIRI exposure: one of its three detectors, no larger than the detector, and not a
    read-out of frames the pipeline cannot take (SLOW and FAST patterns read one frame per
    group)."""
    detector = str(model.meta.instrument.detector).upper()
    if detector not in MIRI_DETECTORS:
        raise BadInputError(f"{where}: INSTRUME=MIRI but DETECTOR={detector}, not one of "
                            f"{', '.join(MIRI_DETECTORS)}")
    ny, nx = shape[-2:]
    if ny > MIRI_FULL_SHAPE[0] or nx > MIRI_FULL_SHAPE[1]:
        raise BadInputError(f"{where}: SCI is {ny}x{nx}, larger than a MIRI detector "
                            f"({MIRI_FULL_SHAPE[0]}x{MIRI_FULL_SHAPE[1]})")
    if source is not None and source.has("refout"):
        refout = source.shape_of("refout")
    else:
        refout = model._arrays.get("refout")
        refout = None if refout is None else refout.shape
    if refout is not None and (len(refout) != 4 or refout[:2] != tuple(shape[:2])
                               or refout[-1] != nx):
        raise BadInputError(f"{where}: REFOUT has shape {tuple(refout)}, which does not follow "
                            f"SCI {tuple(shape)} (integrations, groups, rows/4, columns)")


def _validate_irs2(model, shape, where):
    """An array longer than a detector is an IRS2 readout: it must be NIRSpec's, in the layout
    its NRS_NORM and NRS_REF describe, with the fast axis along the rows (DMS frame)."""
    detector = str(model.meta.instrument.detector).upper()
    if detector not in ("NRS1", "NRS2"):
        raise BadInputError(f"{where}: SCI is {shape[-2]}x{shape[-1]}, longer than a detector; only "
                            f"NIRSpec NRS1/NRS2 IRS2 readouts are, not {detector}")
    layout = layout_of(model)
    if layout.n <= 0 or layout.r < 0 or (shape[-2], shape[-1]) != (layout.length, 2048):
        raise BadInputError(
            f"{where}: SCI is {shape[-2]}x{shape[-1]}, but an IRS2 full frame with NRS_NORM="
            f"{layout.n} and NRS_REF={layout.r} is {layout.length}x2048")


def _validate_companions(model, where, source):
    """The arrays that travel with SCI, checked as jwst meets them.

    jwst replaces a PIXELDQ of the wrong shape by zeros with a warning (as here, also for
    GROUPDQ), and stops with a Python error on a ZEROFRAME of the wrong shape, on ZEROFRAM = T
    without a ZEROFRAME extension and on SUBSIZE1/2 that disagree with the array (one-line
    errors here).
    """
    nints, ngroups, ny, nx = model._arrays["data"].shape
    header = model.primary_header
    for axis, keyword, size in ((1, "SUBSIZE1", nx), (2, "SUBSIZE2", ny)):
        value = _number(model, keyword, where)
        if axis == 2 and is_irs2_shape((ny, nx)):
            size = 2048   # the IRS2 rows hold 2048 detector rows and their reference samples
        if value is not None and value != size:
            raise BadInputError(f"{where}: {keyword}={value} but SCI has {size} "
                                f"{'columns' if axis == 1 else 'rows'}")

    def shape_of(attr):
        if source is not None and source.has(attr):
            return tuple(int(n) for n in source._hdus[attr].shape)
        array = model._arrays.get(attr)
        return None if array is None else array.shape

    for attr, extname, expected in (("pixeldq", "PIXELDQ", (ny, nx)),
                                    ("groupdq", "GROUPDQ", (nints, ngroups, ny, nx))):
        shape = shape_of(attr)
        if shape is not None and shape != expected:
            log.warning("%s: %s has shape %s, not %s; replaced by zeros (as jwst does)", where,
                        extname, shape, expected)
            if source is not None:
                source.forget(attr)
            model._arrays.pop(attr, None)
    zeroframe = shape_of("zeroframe")
    if zeroframe is not None and zeroframe != (nints, ny, nx):
        raise BadInputError(f"{where}: ZEROFRAME has shape {zeroframe}, not {(nints, ny, nx)} "
                            f"(integrations, rows, columns of SCI)")
    if zeroframe is None and header.get("ZEROFRAM") is True:
        raise BadInputError(f"{where}: ZEROFRAM = T but there is no ZEROFRAME extension (the "
                            f"file may be cut short)")


def _validate_cards(header, where):
    """Cards that astropy cannot parse, or whose values the FITS standard refuses (control
    characters): the products, which carry them, could not be written."""
    for index in range(len(header)):
        card = header.cards[index]
        try:
            value = card.value
        except Exception:   # VerifyError: an unparsable card
            raise BadInputError(f"{where}: the {card.keyword} card of the primary header cannot "
                                f"be read") from None
        if isinstance(value, str) and any(not " " <= char <= "~" for char in value):
            raise BadInputError(f"{where}: {card.keyword} holds characters a FITS header may "
                                f"not hold (control or non-ASCII characters): {value!r}")


def _number(model, keyword, where, required=False):
    """A primary-header number (None when absent and not required); one-line errors for a
    value that is not a number or a card that cannot be read."""
    try:
        value = model.primary_header.get(keyword)
    except Exception:   # a card astropy cannot parse (VerifyError)
        raise BadInputError(f"{where}: the {keyword} card of the primary header cannot be read") from None
    if value is None or type(value).__name__ == "Undefined":
        if required:
            raise BadInputError(f"{where}: the primary header has no {keyword} keyword")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise BadInputError(f"{where}: {keyword}={value!r} is not a number")
    return value


#: More frames dropped between groups than any JWST read pattern drops (DEEP8 drops 12,
#: NIRSpec's longest patterns some tens): such a value is a corrupt header, and the dark step
#: would need that many dark frames per group.
MAX_GROUPGAP = 1000


def validate_timing(model, where):
    """The readout timing the steps divide by, checked as the official pipeline would need it.

    jwst stops with a Python error on a missing or zero TGROUP, NFRAMES 0 and an absurd
    GROUPGAP (it tries to allocate the dark frames), so they are one-line errors here; values
    it runs with (a negative TGROUP, FRMDIVSR 0) give its numbers, with a warning that says
    what they mean.
    """
    tgroup = _number(model, "TGROUP", where, required=True)
    if tgroup == 0:
        raise BadInputError(f"{where}: TGROUP=0: the group time is zero, so no rate can be computed")
    if tgroup < 0:
        log.warning("%s: TGROUP=%s is negative: the rates come out with the opposite sign "
                    "(as jwst's do)", where, tgroup)
    for keyword in ("TFRAME", "FRMDIVSR"):
        _number(model, keyword, where)
    nframes = _number(model, "NFRAMES", where)
    if nframes is not None and nframes <= 0:
        raise BadInputError(f"{where}: NFRAMES={nframes}: a group averages at least one frame")
    groupgap = _number(model, "GROUPGAP", where)
    if groupgap is not None and not 0 <= groupgap <= MAX_GROUPGAP:
        raise BadInputError(f"{where}: GROUPGAP={groupgap} is not a plausible number of frames "
                            f"dropped between groups (0 to {MAX_GROUPGAP})")
    if model.primary_header.get("FRMDIVSR") == 0:
        log.warning("%s: FRMDIVSR=0: every rate is NaN and flagged DO_NOT_USE (as jwst's are)", where)


class Detector1Pipeline(Pipeline):
    """Stage 1 processing: an ``_uncal`` ramp to ``_rate`` and ``_rateints`` slope images."""

    class_alias = "calwebb_detector1"
    spec = """
        save_calibrated_ramp = boolean(default=False)  # Save the ramp before ramp fitting (_ramp)
        threads = integer(default=None)  # Threads for the numba kernels (ramp2slope; default: all cores)
    """

    # in the official order (parameter files list the steps in it)
    step_defs = {
        "group_scale": GroupScaleStep,
        "dq_init": DQInitStep,
        "emicorr": EmiCorrStep,
        "saturation": SaturationStep,
        "ipc": IPCStep,
        "superbias": SuperBiasStep,
        "refpix": RefPixStep,
        "rscd": RscdStep,
        "firstframe": FirstFrameStep,
        "lastframe": LastFrameStep,
        "linearity": LinearityStep,
        "dark_current": DarkCurrentStep,
        "reset": ResetStep,
        "persistence": PersistenceStep,
        "charge_migration": ChargeMigrationStep,
        "jump": JumpStep,
        "picture_frame": PictureFrameStep,
        "clean_flicker_noise": CleanFlickerNoiseStep,
        "ramp_fit": RampFitStep,
        "gain_scale": GainScaleStep,
    }

    #: Operational defaults: off unless asked for.
    _OFF_BY_DEFAULT = ("ipc", "charge_migration", "picture_frame", "clean_flicker_noise", "persistence",
                       "emicorr", "firstframe")

    #: The steps before charge_migration, per detector family, in the official order.
    NIR_STEPS = ("group_scale", "dq_init", "saturation", "ipc", "superbias", "refpix", "linearity",
                 "dark_current")
    MIRI_STEPS = ("group_scale", "dq_init", "emicorr", "saturation", "ipc", "firstframe",
                  "lastframe", "reset", "linearity", "rscd", "dark_current", "refpix")
    #: The steps after them, for both.
    COMMON_STEPS = ("charge_migration", "jump", "picture_frame", "clean_flicker_noise", "persistence")

    def detector_steps(self, model):
        """The aliases of the steps before charge_migration that run on ``model``'s detector."""
        return self.MIRI_STEPS if is_miri(model) else self.NIR_STEPS

    #: Process files with several integrations one integration at a time (False: read the
    #: whole exposure and run ``process`` on it; the products are the same).
    _streaming = True
    #: Rows per jump block when streaming (None: about one integration's worth of data).
    _jump_block_rows = None
    #: Bytes of scratch storage that may be held in memory when streaming (None: the default of
    #: ``pipeline.scratch.default_memory_budget``; 0: files only).
    _scratch_memory = None
    #: Bytes of float32 ramp the per-integration steps take at a time when streaming (None:
    #: ``pipeline.streaming.CHUNK_BYTES``; 1: one integration at a time).
    _chunk_bytes = None

    def __init__(self, *args, steps=None, **kwargs):
        steps = {name: dict(values) for name, values in (steps or {}).items()}
        for name in self._OFF_BY_DEFAULT:
            steps.setdefault(name, {}).setdefault("skip", True)
        super().__init__(*args, steps=steps, **kwargs)

    def _open_input(self, step_input):
        if isinstance(step_input, datamodels.DataModel):
            model = step_input.copy()
            where = step_input._path or "input model"
        else:
            model = super()._open_input(step_input)
            where = str(step_input)
        if isinstance(model, datamodels.GuiderRawModel):
            _refuse_guide_star_data(model, where)
        if not isinstance(model, datamodels.RampModel):
            raise BadInputError(f"{where}: is a {type(model).__name__}, not a raw ramp")
        validate_ramp(model, where)
        return model

    def _open_source(self, step_input):
        """A RampSource for a file to process one integration at a time, else None."""
        if not self._streaming or not isinstance(step_input, (str, os.PathLike)):
            return None
        path = os.fspath(step_input)
        if self.input_dir and not os.path.isabs(path):
            path = os.path.join(self.input_dir, path)
        source = open_ramp_source(path)
        if source is None:
            return None   # not a ramp: _open_input gives the error
        if self.ramp_fit.skip:
            # the result is then the whole calibrated ramp, in memory as jwst returns it
            source.close()
            return None
        if source.nints < 2 or int(source.template.meta.subarray.num_superstripe or 0) > 0:
            # superstripes are collated across integrations at the end of refpix: whole exposure
            source.close()
            return None
        try:
            validate_ramp(source.template, path, source)
        except BaseException:
            source.close()
            raise
        return source

    def run(self, *args):
        step_input = args[0]
        start, kernels = time.perf_counter(), kernel_clock.seconds()
        compile_notice.install()
        cache_loading.install()
        from ..runtime.hugepages import no_hugepage_advice
        from ..runtime.malloc import retained_heap
        from ..runtime.threads import thread_limit

        try:
            with thread_limit(self.threads), no_hugepage_advice(), retained_heap():
                source = self._open_source(step_input)
                if source is None:
                    model = self._open_input(step_input)
                else:
                    model = source.template
                jit_warmup.start(model.shape, streamed=source is not None,
                                 kinds=[kind for kind in jit_warmup.KINDS
                                        if not getattr(self, kind).skip],
                                 likely=self.ramp_fit.likely(model))
                try:
                    input_name = self.input_name(step_input, model)
                    log.info("%s: %s, %d integration(s) x %d groups x %dx%d", self.name, input_name,
                             *model.shape)
                    self.check_parameters()
                    self.check_outputs(input_name)
                    self.check_references(model)
                    crds_client.record_context(model)
                    if source is None:
                        result = self.process(model, input_name)
                    else:
                        result = run_streamed(self, source, input_name, self._jump_block_rows)
                finally:
                    if source is not None:
                        source.close()
                # the ramp goes now, while the run's heap settings still give its memory back
                # to the system on leaving (retained_heap), rather than with this frame
                model = source = None
        finally:
            jit_warmup.cancel()  # only still running if the run failed before fitting
        kernels = kernel_clock.seconds() - kernels
        log.info("%s done in %.3f s%s", self.name, time.perf_counter() - start,
                 f" (kernels loaded in {kernels:.3f} s)" if kernels >= 0.0005 else "")
        return result

    def check_parameters(self):
        """Let every enabled step refuse settings it cannot honour before any step runs, so that
        a bad choice late in the pipeline does not cost the time of the steps before it."""
        for step in self.steps.values():
            check = getattr(step, "check_parameters", None)
            if not step.skip and check is not None:
                check()

    def check_outputs(self, input_name):
        """One-line errors, before any processing, for products that could not be written (an
        output folder that is a file or read-only, a product name taken by a folder)."""
        paths = []
        if self.save_results or self.output_file:
            paths += [self.output_path(input_name, suffix) for suffix in ("rateints", "rate")]
        if self.save_calibrated_ramp:
            paths.append(self.output_path(input_name, "ramp"))
        for alias, step in self.steps.items():
            if step.skip or not step.should_save():
                continue
            indices = (0, 1) if alias == "ramp_fit" else (None,)
            paths += [step.output_path(input_name, index=index) for index in indices]
        for path in paths:
            check_product_path(path)
        for folder in {os.path.dirname(os.path.abspath(path)) for path in paths}:
            remove_stale_scratch(folder)   # what killed runs left where we are about to write

    def check_references(self, model):
        """Find and check every reference file the enabled steps need, before any processing.

        A missing, unreadable or mismatched reference stops the run here, with nothing written.
        The types no override or folder supplies are asked of CRDS in one call.
        """
        used = set(self.detector_steps(model)) | set(self.COMMON_STEPS) | {"ramp_fit", "gain_scale"}
        wanted = [(step, reftype) for alias, step in self.steps.items()
                  if not step.skip and alias in used for reftype in step.wanted_references(model)]
        from_crds = sorted({reftype for step, reftype in wanted
                            if step.resolve_reference(model, reftype, use_crds=False) is None})
        if from_crds:
            try:
                crds_client.get_reference_paths(model, from_crds)
            except Ramp2SlopeError:
                pass   # each type is asked again below, and the error names the folders searched
        for step, reftype in wanted:
            path = step.resolve_reference(model, reftype)
            if path != NOT_APPLICABLE:
                check_reference(path, reftype, model)

    def process(self, model, input_name=None):
        # References shared by two steps (SUPERBIAS: saturation and superbias; GAIN and
        # READNOISE: jump and ramp_fit) are loaded once; each leaves memory after its last user.
        cache = ReferenceCache()
        self._reference_cache = cache
        try:
            return self._process(model, input_name, cache)
        finally:
            cache.clear()
            self._reference_cache = None

    def _process(self, model, input_name, cache):
        aliases = self.detector_steps(model) + self.COMMON_STEPS + ("ramp_fit",)
        for index, alias in enumerate(aliases[:-1]):
            if alias == "jump":
                jit_warmup.wait("jump")
            model = getattr(self, alias).run(model)
            cache.keep_only({reftype for later in aliases[index + 1:]
                             if not getattr(self, later).skip
                             for reftype in getattr(self, later).reference_file_types})
        if self.save_calibrated_ramp:
            self.save_model(model, input_name=input_name, suffix="ramp")

        if self.ramp_fit.skip:
            return self._calibrated_ramp(model, input_name)
        jit_warmup.wait("ramp_fit")
        result = self.ramp_fit.run(model)
        cache.clear()
        rate, rateints = result if result is not None else (None, None)
        if rate is None:
            log.warning("%s: ramp fitting produced no slopes (every pixel saturated in group 0); "
                        "no rate or rateints products", self.name)
            if self.save_results or self.output_file:
                self.save_model(model, input_name=input_name, suffix="ramp")
            return None
        rate = self.gain_scale.run(rate)
        rateints = self.gain_scale.run(rateints)
        if self.save_results or self.output_file:
            rateints_path = self.save_model(rateints, input_name=input_name, suffix="rateints")
            with withdrawn_on_failure(rateints_path):
                self.save_model(rate, input_name=input_name, suffix="rate")
        return rate

    def _calibrated_ramp(self, model, input_name):
        """The end of a run with ramp_fit skipped, as jwst ends it: the calibrated ramp goes
        through gain_scale and is the result, saved as the ``ramp`` product."""
        model = self.ramp_fit.run(model)
        model = self.gain_scale.run(model)
        if self.save_results or self.output_file:
            self.save_model(model, input_name=input_name, suffix="ramp")
        return model
