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
