"""clean_flicker_noise: fit and remove 1/f (flicker) noise stripes from the group differences."""
from .background_level import background_level, clip_to_background
from .clean_flicker_noise import clean_image, clean_integration, median_clean, row_medians, scene_mask
from .clipped_stats import sigma_clipped_stats

__all__ = ["background_level", "clean_image", "clean_integration", "clip_to_background",
           "median_clean", "row_medians", "scene_mask", "sigma_clipped_stats"]
from .clean_flicker_noise_step import CleanFlickerNoiseStep  # noqa: E402
__all__ += ["CleanFlickerNoiseStep"]
