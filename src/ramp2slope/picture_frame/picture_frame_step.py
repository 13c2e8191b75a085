"""PictureFrameStep: NIRSpec full-frame thermal picture-frame correction, as jwst 3.0.0 with
``mask_science_regions=False``.

Masking the science regions takes NIRSpec's WCS (assign_wcs, msaflagopen: the slits, the IFU
slices, failed-open shutters), which is stage-2 work that ramp2slope does not do: asked for on
a NIRSpec full frame, it is a one-line error that names the fix, never a silent other mask.
"""
import logging

import numpy as np

from .. import datamodels
from ..clean_flicker_noise import scene_mask
from ..errors import Ramp2SlopeError
from ..ramp_fitting.draft_rate import draft_rates
from ..references.loaders import _RefFile
from ..stpipe import Step
from .picture_frame import correct_ramp_integration, correct_rate, reference_levels, region_masks

__all__ = ["PictureFrameStep"]

log = logging.getLogger("ramp2slope")


def load_pattern(path, model):
    """The PICTUREFRAME's SCI (a full-frame rate image), float32 as stored."""
    ref = _RefFile(path, "PICTUREFRAME", model)
    try:
        return np.asarray(ref.cut("SCI", model), dtype=np.float32)
    finally:
        ref.close()


class PictureFrameStep(Step):
    """Scale and subtract the thermal picture frame of NIRSpec full frames (ramps or rates)."""

    class_alias = "picture_frame"
    cal_step_name = "picture_frame"
    reference_file_types = ("pictureframe",)
    spec = """
        mask_science_regions = boolean(default=True)  # Mask known science regions (needs NIRSpec's WCS: not available here)
        n_sigma = float(default=2.0)  # Clipping level for non-background signal
        save_mask = boolean(default=False)  # Save the created background mask
        save_correction = boolean(default=False)  # Save the thermal correction data
        skip = boolean(default=True)  # By default, skip the step
    """

    # -- whether and with what it runs -------------------------------------------------------------
    @staticmethod
    def _applies(model):
        # jwst asks CRDS first, which has PICTUREFRAME files for NIRSpec only, then this
        return (str(model.meta.instrument.name or "").upper() == "NIRSPEC"
                and str(model.meta.subarray.name or "").upper() == "FULL")

    def wanted_references(self, model):
        # (the pipeline's ramp: a single group is skipped before any reference is needed)
        if not self._applies(model) or model.meta.exposure.ngroups == 1:
            return ()
        self._refuse_science_masking()
        return self.reference_file_types

    def _refuse_science_masking(self):
        if self.mask_science_regions:
            raise Ramp2SlopeError(
                f"{self.name}: mask_science_regions needs NIRSpec's WCS (assign_wcs and "
                f"msaflagopen), which ramp2slope does not compute; set "
                f"steps.picture_frame.mask_science_regions=False")

    def _pattern(self, model):
        """The reference pattern, or None when jwst would skip (saying why, as it does)."""
        if not self._applies(model):
            log.warning("%s: the picture frame correction is only applicable to NIRSpec full "
                        "frame exposures; step skipped", self.name)
            return None
        path = self.reference_or_skip(model, "pictureframe")
        if path is None:
            log.warning("%s: no PICTUREFRAME reference for exposure type %s; step skipped",
                        self.name, model.meta.exposure.type)
            return None
        self._refuse_science_masking()
        log.info("%s: Using PICTUREFRAME reference file %s", self.name, path)
        return load_pattern(path, model)

    def _regions(self, rate, pattern):
        """(center, edge, levels) from a draft rate image, or None when no background is left."""
        background = scene_mask(rate, self.n_sigma)
        center, edge = region_masks(background)
        if not center.any() or not edge.any():
            log.error("%s: no background pixels to scale the pattern with; step skipped", self.name)
            return None
        return background, center, edge, reference_levels(pattern, center, edge)

    # -- whole model ----------------------------------------------------------------------------------
    def process(self, model):
        ramp = isinstance(model, datamodels.RampModel)
        if ramp and model.data.shape[1] == 1 and self._applies(model):
            # (before the reference and the science-region masking, as jwst decides it)
            log.warning("%s: the correction cannot be performed for single-group data; step "
                        "skipped", self.name)
            return self.skipped(model, "single group")
        pattern = self._pattern(model)
        if pattern is None:
            return self.skipped(model, "not applicable")
        if not ramp and not isinstance(model, datamodels.ImageModel):
            raise Ramp2SlopeError(f"{self.name}: takes a ramp or a rate image, not a "
                                  f"{type(model).__name__}")
        if ramp:
            nints = model.data.shape[0]
            has_zf = model.has("zeroframe")
            rate, _ = draft_rates(self, model, nints, has_zf, lambda i: (
                model.data[i], model.groupdq[i], model.zeroframe[i] if has_zf else None))
        else:
            rate = model
        regions = self._regions(rate.data, pattern)
        if regions is None:
            return self.skipped(model, "no background")
        background, center, edge, levels = regions
        original = model.data.copy() if self.save_correction else None
        if ramp:
            for i in range(model.data.shape[0]):
                correct_ramp_integration(model.data[i], pattern, center, edge, levels)
        else:
            correct_rate(model.data, pattern, center, edge, levels)
        self._save_mask(model, rate, background)
        if original is not None:
            self._save_correction(model, model.data - original)
        return self.complete(model)

    # -- one integration at a time (pipeline/streaming.py) -------------------------------------------
    def process_store(self, shell, store, products):
        """The step on an exposure held by a ScratchStore: the draft rate by the ramp fit's two
        passes, then each integration corrected and written back."""
        from ..datamodels.models import placeholder

        nints, ngroups, ny, nx = store.shape
        if ngroups == 1 and self._applies(shell):
            log.warning("%s: the correction cannot be performed for single-group data; step "
                        "skipped", self.name)
            return self.skipped(shell, "single group")
        pattern = self._pattern(shell)
        if pattern is None:
            return self.skipped(shell, "not applicable")
        data = np.empty((ngroups, ny, nx), dtype=np.float32)
        groupdq = np.empty((ngroups, ny, nx), dtype=np.uint8)
        zeroframe = np.empty((ny, nx), dtype=np.float32) if store.has_zeroframe else None

        def read(i):
            store.read_integration(i, data, groupdq, zeroframe)
            return data, groupdq, zeroframe

        rate, _ = draft_rates(self, shell, nints, store.has_zeroframe, read)
        regions = self._regions(rate.data, pattern)
        if regions is None:
            return self.skipped(shell, "no background")
        background, center, edge, levels = regions
        writer = None
        if self.save_correction:
            out = datamodels.RampModel(data=placeholder(store.shape, np.float32))
            out.update(shell)
            writer = products.start(out, self.intermediate_path(shell, "pctfrm_correction"),
                                    {"data": store.shape})
        original = np.empty_like(data) if writer is not None else None
        for i in range(nints):
            store.read_integration(i, data, groupdq)
            if original is not None:
                original[...] = data
            correct_ramp_integration(data, pattern, center, edge, levels)
            store.write_integration(i, data=data)
            if writer is not None:
                np.subtract(data, original, out=original)
                writer.write("data", i, original)
        if writer is not None:
            products.finish(writer, self)
        self._save_mask(shell, rate, background)
        return self.complete(shell)

    # -- intermediate products ---------------------------------------------------------------------
    def _save_mask(self, model, rate, background):
        if self.save_mask:
            out = datamodels.ImageModel(data=background.astype(np.float32))
            out.update(rate)
            self.save_intermediate(out, model, "pctfrm_mask")

    def _save_correction(self, model, correction):
        out = type(model)(data=correction)
        out.update(model)
        self.save_intermediate(out, model, "pctfrm_correction")
