"""IPC correction: border counts, hand-computed convolutions and oracle comparisons."""
import warnings

import numpy as np
import pytest

from ramp2slope.errors import Ramp2SlopeError
from ramp2slope.ipc import ipc_correct, ipc_kernel_for_data, ipc_reference_border


@pytest.mark.parametrize("xstart,ystart,xsize,ysize,expected", [
    (1, 1, 2048, 2048, (4, 4, 4, 4)),          # full frame
    (1, 1, 160, 160, (4, 0, 4, 0)),            # lower-left corner
    (1889, 1889, 160, 160, (0, 4, 0, 4)),      # upper-right corner
    (3, 2, 100, 100, (3, 0, 2, 0)),            # starts inside the border
    (1, 1793, 2048, 256, (0, 4, 4, 4)),        # a full-width stripe at the top
    (500, 600, 64, 64, (0, 0, 0, 0)),          # no reference pixels
    (1, 1, 2046, 2045, (4, 1, 4, 2)),          # ends inside the top/right border
])
def test_reference_border(xstart, ystart, xsize, ysize, expected):
    assert ipc_reference_border(xstart, ystart, xsize, ysize) == expected


def test_single_tap_kernels_shift_the_interior():
    """A 3x3 kernel with one non-zero tap moves the interior by the tap's offset."""
    ny, nx = 10, 12
    base = np.arange(ny * nx, dtype=np.float32).reshape(ny, nx) + 1
    # subarray at the lower-left corner: 4 reference rows at the bottom, 4 columns at the left
    for (j, i) in [(0, 0), (2, 1), (1, 2)]:
        kernel = np.zeros((3, 3), np.float32)
        kernel[j, i] = 1.0
        data = np.broadcast_to(base, (1, 2, ny, nx)).copy()
        border = ipc_correct(data, kernel, xstart=1, ystart=1)
        assert border == (4, 0, 4, 0)
        interior = base[4:, 4:]
        expected = np.zeros_like(interior)
        dy, dx = 1 - j, 1 - i  # output (y, x) takes input (y + dy, x + dx): a true convolution
        iy, ix = interior.shape
        expected[max(0, -dy):iy - max(0, dy), max(0, -dx):ix - max(0, dx)] = \
            interior[max(0, dy):iy - max(0, -dy), max(0, dx):ix - max(0, -dx)]
        for g in range(2):
            assert np.array_equal(data[0, g, 4:, 4:], expected)
            # the reference border is untouched
            assert np.array_equal(data[0, g, :4], base[:4])
            assert np.array_equal(data[0, g, :, :4], base[:, :4])


def test_matches_scipy_convolution_and_4d_equivalent():
    from scipy.signal import convolve2d

    rng = np.random.default_rng(1)
    ny, nx = 40, 50
    data = rng.normal(100.0, 20.0, (2, 2, ny, nx)).astype(np.float32)
    kernel = rng.normal(0.0, 0.01, (3, 3)).astype(np.float32)
    kernel[1, 1] = 0.96
    two_d = data.copy()
    ipc_correct(two_d, kernel, xstart=500, ystart=500)  # no reference pixels
    for i in range(2):
        for g in range(2):
            expected = convolve2d(data[i, g].astype(np.float64), kernel.astype(np.float64),
                                  mode="same", boundary="fill")
            assert np.allclose(two_d[i, g], expected, rtol=0, atol=1e-3)
    # a 4-D kernel that is the same everywhere gives the same result, bit for bit
    four_d = np.ascontiguousarray(np.broadcast_to(kernel[:, :, None, None], (3, 3, ny, nx)))
    result = data.copy()
    ipc_correct(result, four_d, xstart=500, ystart=500)
    assert np.array_equal(result, two_d)


def test_full_frame_4d_kernel_is_cut_out():
    full = np.zeros((1, 2, 2048, 2048), np.float32)
    full[0, 1] = np.arange(2048, dtype=np.float32)[None, :]  # varies with x
    cut = ipc_kernel_for_data(full, (16, 32), xstart=101, ystart=201)
    assert cut.shape == (1, 2, 16, 32)
    assert np.array_equal(cut[0, 1, 0], np.arange(100, 132, dtype=np.float32))
    with pytest.raises(Ramp2SlopeError):
        ipc_kernel_for_data(full, (16, 32), xstart=2040, ystart=1)
    with pytest.raises(Ramp2SlopeError):
        ipc_kernel_for_data(np.zeros((3, 3, 3)), (16, 32))
    with pytest.raises(Ramp2SlopeError):
        ipc_correct(np.zeros((1, 1, 3200, 2048), np.float32), np.ones((3, 3), np.float32))


def _jwst_ipc(data, kernel, xstart, ystart):
    from jwst.ipc import ipc_corr
    from stdatamodels.jwst.datamodels import IPCModel, RampModel

    model = RampModel(data=data.copy())
    model.meta.instrument.name = "NIRCAM"
    model.meta.instrument.detector = "NRCA1"
    model.meta.subarray.xstart = xstart
    model.meta.subarray.ystart = ystart
    model.meta.subarray.xsize = data.shape[-1]
    model.meta.subarray.ysize = data.shape[-2]
    model.meta.exposure.nframes = 1
    model.meta.exposure.groupgap = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ipc_corr.do_correction(model, IPCModel(data=kernel))
    return model.data


@pytest.mark.oracle
@pytest.mark.parametrize("shape,xstart,ystart,kshape", [
    ((64, 80), 1, 1, (3, 3)),
    ((64, 80), 1970, 1985, (3, 3)),
    ((64, 80), 3, 2, (5, 5)),
    ((64, 80), 1, 1, (4, 4)),       # even-sized kernels: the central tap is not shifted
    ((64, 80), 1, 1, (2, 3)),
    ((64, 80), 1, 1, (3, 3, 64, 80)),
    ((64, 80), 1, 1, (4, 2, 64, 80)),
    ((2048, 2048), 1, 1, (3, 3)),
])
def test_matches_jwst(shape, xstart, ystart, kshape):
    pytest.importorskip("jwst")
    rng = np.random.default_rng(sum(shape) + len(kshape))
    data = rng.normal(1000.0, 300.0, (1, 2) + shape).astype(np.float32)
    kernel = rng.normal(0.0, 0.01, kshape).astype(np.float32)
    kernel[kshape[0] // 2, kshape[1] // 2] += 0.97
    expected = _jwst_ipc(data, kernel, xstart, ystart)
    ours = data.copy()
    ipc_correct(ours, kernel, xstart, ystart)
    assert np.array_equal(ours, expected)
    assert not np.array_equal(ours, data)
