"""clean_flicker_noise: fit and remove 1/f (flicker) noise stripes from the group differences."""
from .clean_flicker_noise import (background_level, clean_image, clean_integration,
                                  clip_to_background, median_clean, row_medians, scene_mask,
                                  sigma_clipped_stats)

__all__ = ["background_level", "clean_image", "clean_integration", "clip_to_background",
           "median_clean", "row_medians", "scene_mask", "sigma_clipped_stats"]
from .clean_flicker_noise_step import CleanFlickerNoiseStep  # noqa: E402
__all__ += ["CleanFlickerNoiseStep"]
