"""Inter-pixel capacitance (IPC) correction: convolve every group with the IPC kernel.

The reference-pixel border of the data (from the subarray position) is left untouched; the rest
(the "interior") is replaced by its 2-D convolution with the kernel, where anything outside the
interior counts as zero. The kernel is either one small 2-D array (ky, kx) or a separate kernel
per pixel, 4-D (ky, kx, ny, nx).

Arithmetic follows the official step exactly: float32 products ``kernel * value`` accumulated
in float32 starting from zero, the kernel taps in row-major order with the central tap
(``ky//2, kx//2``) added last. For tap (j, i) the source pixel is offset by
``(ky - 1 - ky//2 - j, kx - 1 - kx//2 - i)`` from the output pixel, and by (0, 0) for the central
tap (the two agree for odd-sized kernels).
"""
import numba
import numpy as np

from ..errors import Ramp2SlopeError

#: Size of a NIR detector along each axis, and the width of its reference-pixel border.
NIR_SIZE = 2048
REF_WIDTH = 4


def ipc_reference_border(xstart, ystart, xsize, ysize):
    """Reference rows/columns inside the data: ``(bottom, top, left, right)``.

    ``xstart``/``ystart`` are SUBSTRT1/SUBSTRT2 (1-based, DMS frame), ``xsize``/``ysize`` the
    subarray size.
    """
    x0 = int(xstart) - 1
    y0 = int(ystart) - 1
    return (max(0, REF_WIDTH - y0), max(0, y0 + int(ysize) - (NIR_SIZE - REF_WIDTH)),
            max(0, REF_WIDTH - x0), max(0, x0 + int(xsize) - (NIR_SIZE - REF_WIDTH)))


@numba.njit(parallel=True, cache=True)
def _convolve(plane, interior, kernel, yoff, xoff):
    """Per-pixel kernel (ky, kx, ny, nx); a 2-D kernel comes in broadcast with zero strides."""
    ky, kx = kernel.shape[0], kernel.shape[1]
    ny, nx = interior.shape
    below = ky - 1 - ky // 2
    left = kx - 1 - kx // 2
    mid_j = ky // 2
    mid_i = kx // 2
    zero = np.float32(0.0)
    for y in numba.prange(ny):
        for x in range(nx):
            acc = np.float32(0.0)
            for j in range(ky):
                sy = y + below - j
                for i in range(kx):
                    if j == mid_j and i == mid_i:
                        continue
                    sx = x + left - i
                    if 0 <= sy < ny and 0 <= sx < nx:
                        value = interior[sy, sx]
                    else:
                        value = zero
                    acc = acc + kernel[j, i, yoff + y, xoff + x] * value
            acc = acc + kernel[mid_j, mid_i, yoff + y, xoff + x] * interior[y, x]
            plane[yoff + y, xoff + x] = acc


def ipc_kernel_for_data(kernel, shape, xstart=1, ystart=1):
    """The float32 kernel to use for data of ``shape`` (ny, nx).

    A 2-D kernel is used as it is. A 4-D kernel must either match the data already (cut out) or
    be full frame, in which case the data's region is cut out using SUBSTRT1/SUBSTRT2.
    """
    kernel = np.asarray(kernel)
    ny, nx = shape
    if kernel.ndim == 2:
        return np.ascontiguousarray(kernel, dtype=np.float32)
    if kernel.ndim != 4:
        raise Ramp2SlopeError(f"IPC kernel must be 2-D or 4-D, got shape {kernel.shape}")
    if kernel.shape[-2:] == (ny, nx):
        return np.asarray(kernel, dtype=np.float32)
    y0, x0 = int(ystart) - 1, int(xstart) - 1
    if kernel.shape[-2:] == (NIR_SIZE, NIR_SIZE) and y0 >= 0 and x0 >= 0 \
            and y0 + ny <= NIR_SIZE and x0 + nx <= NIR_SIZE:
        return np.asarray(kernel[:, :, y0:y0 + ny, x0:x0 + nx], dtype=np.float32)
    raise Ramp2SlopeError(
        f"4-D IPC kernel of shape {kernel.shape} does not cover data of shape {(ny, nx)} at "
        f"SUBSTRT1={xstart}, SUBSTRT2={ystart}")


def ipc_correct(data, kernel, xstart=1, ystart=1, xsize=None, ysize=None):
    """IPC-correct a ramp in place.

    Parameters
    ----------
    data : float32 ndarray (nints, ngroups, ny, nx)
        Modified in place, one group at a time (the reference-pixel border is not changed).
    kernel : ndarray
        2-D (ky, kx) kernel, or 4-D (ky, kx, ny, nx) per-pixel kernels (cut out to the data, or
        full frame).
    xstart, ystart, xsize, ysize : int
        SUBSTRT1, SUBSTRT2, SUBSIZE1, SUBSIZE2; the sizes default to the data shape.

    Returns
    -------
    (bottom, top, left, right) : the reference border that was left unchanged.
    """
    if not isinstance(data, np.ndarray) or data.ndim != 4 or data.dtype != np.float32:
        raise Ramp2SlopeError("ipc needs a float32 (nints, ngroups, ny, nx) ramp")
    ny, nx = data.shape[-2:]
    if max(ny, nx) > NIR_SIZE:
        raise Ramp2SlopeError("ipc: NIRSpec IRS2 data (an axis longer than 2048) are not "
                              "supported")
    xsize = nx if xsize is None else xsize
    ysize = ny if ysize is None else ysize
    kern = ipc_kernel_for_data(kernel, (ny, nx), xstart, ystart)
    bottom, top, left, right = ipc_reference_border(xstart, ystart, xsize, ysize)
    iny = ny - bottom - top
    inx = nx - left - right
    if iny <= 0 or inx <= 0:
        return bottom, top, left, right
    if kern.ndim == 2:
        # One code path for both kernel kinds: the same taps for every pixel, without a copy.
        kern = np.broadcast_to(kern[:, :, None, None], kern.shape + (ny, nx))
    interior = np.empty((iny, inx), dtype=np.float32)
    for integration in range(data.shape[0]):
        for group in range(data.shape[1]):
            plane = data[integration, group]
            interior[:] = plane[bottom:bottom + iny, left:left + inx]
            _convolve(plane, interior, kern, bottom, left)
    return bottom, top, left, right
