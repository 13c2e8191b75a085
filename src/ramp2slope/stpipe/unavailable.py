"""Steps of the official pipeline that ramp2slope does not implement.

They are off by default in the official pipeline too. Turning one on is a clear error instead
of a silent no-op, so nobody believes a correction was applied when it was not.
"""
from ..errors import Ramp2SlopeError
from .step import Step


class _UnavailableStep(Step):
    reason = ""

    def run(self, *args):
        if self.skip and self.parent is not None:
            return super().run(*args)
        self.check_parameters()

    def check_parameters(self):
        """Refuse to be turned on (a pipeline asks this of every enabled step before it starts)."""
        raise Ramp2SlopeError(f"{self.name} is not available in ramp2slope ({self.reason}); "
                              f"leave it skipped")


class PictureFrameStep(_UnavailableStep):
    """NIRSpec full-frame thermal 'picture frame' correction (off by default officially)."""

    class_alias = "picture_frame"
    cal_step_name = "picture_frame"
    reference_file_types = ("pictureframe",)
    reason = "NIRSpec-only thermal correction, not implemented"
    spec = """
        mask_science_regions = boolean(default=True)  # Mask known science regions
        n_sigma = float(default=2.0)  # Clipping level for non-background signal
        save_mask = boolean(default=False)  # Save the created background mask
        save_correction = boolean(default=False)  # Save the thermal correction data
        skip = boolean(default=True)  # By default, skip the step
    """


class CleanFlickerNoiseStep(_UnavailableStep):
    """1/f 'flicker' noise cleaning (off by default officially)."""

    class_alias = "clean_flicker_noise"
    cal_step_name = "clean_flicker_noise"
    reason = "not implemented"
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
