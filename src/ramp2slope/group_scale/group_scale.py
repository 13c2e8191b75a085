"""group_scale: undo the power-of-two divisor of on-board frame averaging (spec §4.1).

When the flight software averages NFRAMES frames into a group it divides the sum by FRMDIVSR,
which is a power of two. If NFRAMES is not a power of two, the groups are off by the factor
FRMDIVSR/NFRAMES, and this step multiplies every group by it. ZEROFRAME is not touched.
"""
import logging
from typing import NamedTuple, Optional

import numba
import numpy as np

log = logging.getLogger("ramp2slope")

__all__ = ["GroupScaleDecision", "do_correction", "group_scale_decision", "scale_groups"]


class GroupScaleDecision(NamedTuple):
    """What group_scale should do for a given NFRAMES/FRMDIVSR pair.

    ``apply`` is True when the data must be rescaled by ``factor`` (FRMDIVSR/NFRAMES as a Python
    float); otherwise ``factor`` is None and the step is recorded as SKIPPED. ``reason`` is a
    short sentence for the log.
    """

    apply: bool
    factor: Optional[float]
    reason: str


def group_scale_decision(nframes, frame_divisor):
    """Decide whether group_scale applies, following the official step's decision table.

    * NFRAMES unknown (None): skip, there is nothing to compare.
    * FRMDIVSR unknown and NFRAMES a power of two: skip, no correction is needed.
    * FRMDIVSR unknown and NFRAMES not a power of two: skip, not enough information (the
      official step reaches its correction routine and that routine gives up).
    * NFRAMES == FRMDIVSR: skip.
    * otherwise: apply ``factor = float(FRMDIVSR) / NFRAMES``.
    """
    if nframes is None:
        return GroupScaleDecision(False, None, "NFRAMES value not found")
    nframes = int(nframes)
    if frame_divisor is None:
        if nframes & (nframes - 1) == 0:
            return GroupScaleDecision(
                False, None, f"NFRAMES={nframes} is a power of 2; correction not needed")
        return GroupScaleDecision(
            False, None,
            "FRMDIVSR not found and NFRAMES is not a power of 2; not enough information")
    if nframes == frame_divisor:
        return GroupScaleDecision(
            False, None, "NFRAMES and FRMDIVSR are equal; correction not needed")
    factor = float(frame_divisor) / nframes
    return GroupScaleDecision(
        True, factor, f"NFRAMES={nframes}, FRMDIVSR={frame_divisor}: rescaling by {factor}")


@numba.njit(parallel=True, cache=True)
def _scale_cube(cube, factor):
    ngroups, ny, nx = cube.shape
    for row in numba.prange(ngroups * ny):
        g = row // ny
        y = row - g * ny
        for x in range(nx):
            cube[g, y, x] = cube[g, y, x] * factor


def scale_groups(data, factor):
    """Multiply the ramp ``data`` (nints, ngroups, ny, nx) float32 by ``factor``, in place.

    The product is formed in float32 with the factor rounded to float32 first, exactly as
    ``float32_array *= python_float`` does in NumPy 2 (the official step's arithmetic).
    """
    f32 = np.float32(factor)
    for integ in range(data.shape[0]):
        _scale_cube(data[integ], f32)


def do_correction(model):
    """The official module-level interface: multiply every group of the RampModel ``model`` by
    FRMDIVSR/NFRAMES in place (even when they are equal, unlike the step, which then skips);
    SKIPPED when either keyword is missing. Returns None, as officially."""
    exposure = model.meta.exposure
    if exposure.nframes is None or exposure.frame_divisor is None:
        log.warning("Necessary meta data not found; group_scale skipped")
        model.meta.cal_step.group_scale = "SKIPPED"
        return
    scale_groups(model.data, float(exposure.frame_divisor) / exposure.nframes)
    model.meta.cal_step.group_scale = "COMPLETE"
