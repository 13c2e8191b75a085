"""superbias: subtract the SUPERBIAS image from every group (spec §4.5).

The bias (already DQ_DEF-translated and cut out) is subtracted from every group of every
integration, reference pixels included; NaN bias values count as 0. The bias DQ is OR-ed into
PIXELDQ. In ZEROFRAME, 0.0 marks bad data, so those values stay 0.0.
"""
import numba
import numpy as np

from ramp2slope.errors import ReferenceFileError

__all__ = ["subtract_superbias"]


@numba.njit(parallel=True, cache=True)
def _subtract_cube(cube, bias):
    ngroups, ny, nx = cube.shape
    for y in numba.prange(ny):
        for g in range(ngroups):
            for x in range(nx):
                b = bias[y, x]
                if np.isnan(b):
                    b = np.float32(0.0)
                cube[g, y, x] = cube[g, y, x] - b


def _subtract_zero_frame(zplane, clean_bias):
    # 2-D, once per integration: numpy is fast enough and spares compiling a kernel.
    bad = zplane == 0.0
    np.subtract(zplane, clean_bias, out=zplane, where=~bad)
    zplane[bad] = 0.0


def subtract_superbias(data, pixeldq, bias, bias_dq, zeroframe=None):
    """Subtract the superbias in place; returns None.

    data: float32 (nints, ngroups, ny, nx); pixeldq: uint32 (ny, nx), ``|= bias_dq``;
    bias: float32 (ny, nx), not modified (NaN is treated as 0); bias_dq: uint32 (ny, nx);
    zeroframe: float32 (nints, ny, nx) or None; values exactly 0 stay 0.
    """
    bias = np.ascontiguousarray(bias, dtype=np.float32)
    ny, nx = data.shape[-2:]
    if bias.shape != (ny, nx):
        raise ReferenceFileError(f"superbias shape {bias.shape} != science pixels {(ny, nx)}")
    pixeldq |= np.asarray(bias_dq, dtype=np.uint32)
    clean_bias = np.where(np.isnan(bias), np.float32(0.0), bias) if zeroframe is not None else None
    for integ in range(data.shape[0]):
        _subtract_cube(data[integ], bias)
        if zeroframe is not None:
            _subtract_zero_frame(zeroframe[integ], clean_bias)
