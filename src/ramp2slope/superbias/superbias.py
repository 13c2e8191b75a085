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
def _subtract_integration(cube, bias, zplane, pixeldq, bias_dq):
    """One integration in one pass over the rows: the bias (NaN counting as 0) from every group
    of ``cube`` (ngroups, ny, nx) and from the zero frame ``zplane`` (ny, nx) where it is not
    0.0 (0.0 marks bad data and stays, -0.0 becoming 0.0 as the official masked assignment
    makes it), and ``pixeldq |= bias_dq``. ``zplane`` and ``pixeldq`` may be (0, 0) arrays:
    that part is not done. (The zero frame and PIXELDQ had been numpy expressions after the
    kernel: 17 ms of serial work per full-frame integration, against a few ms here.)"""
    ngroups, ny, nx = cube.shape
    with_zero = zplane.shape[0] == ny
    with_dq = pixeldq.shape[0] == ny
    for y in numba.prange(ny):
        brow = bias[y]
        for g in range(ngroups):
            row = cube[g, y]
            for x in range(nx):
                b = brow[x]
                if np.isnan(b):
                    b = np.float32(0.0)
                row[x] = row[x] - b
        if with_zero:
            zrow = zplane[y]
            for x in range(nx):
                b = brow[x]
                if np.isnan(b):
                    b = np.float32(0.0)
                z = zrow[x]
                zrow[x] = np.float32(0.0) if z == 0.0 else z - b
        if with_dq:
            drow, brow_dq = pixeldq[y], bias_dq[y]
            for x in range(nx):
                drow[x] |= brow_dq[x]


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
    bias_dq = np.asarray(bias_dq, dtype=np.uint32)
    nothing = np.zeros((0, 0), dtype=np.uint32)
    # PIXELDQ in the kernel (with the first integration) when it is a plain (ny, nx) array
    dq_in_kernel = (data.shape[0] > 0 and isinstance(pixeldq, np.ndarray)
                    and pixeldq.dtype == np.uint32 and pixeldq.shape == (ny, nx)
                    and pixeldq.flags.c_contiguous and pixeldq.flags.writeable
                    and bias_dq.shape == (ny, nx) and bias_dq.flags.c_contiguous)
    if not dq_in_kernel:
        pixeldq |= bias_dq
    no_zero = np.zeros((0, 0), dtype=np.float32)
    for integ in range(data.shape[0]):
        _subtract_integration(data[integ], bias,
                              no_zero if zeroframe is None else zeroframe[integ],
                              pixeldq if dq_in_kernel and integ == 0 else nothing, bias_dq)
