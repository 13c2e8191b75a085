"""Reading FITS image data directly from the file gives what astropy gives."""
import numpy as np
import pytest
from astropy.io import fits

from ramp2slope.datamodels.raw_image import ImageLayout
from ramp2slope.errors import BadInputError

RNG = np.random.default_rng(3)

CASES = [
    ("uint16 raw ramp", RNG.integers(0, 65536, (2, 3, 5, 7)).astype(np.uint16), np.float32),
    ("uint16 kept", RNG.integers(0, 65536, (3, 5, 7)).astype(np.uint16), np.uint16),
    ("uint32 DQ", RNG.integers(0, 2**32, (5, 7), dtype=np.uint64).astype(np.uint32), np.uint32),
    ("uint8 GROUPDQ", RNG.integers(0, 256, (2, 3, 5, 7)).astype(np.uint8), np.uint8),
    ("float32", RNG.normal(size=(3, 5, 7)).astype(np.float32), np.float32),
    ("float64 to float32", RNG.normal(size=(5, 7)), np.float32),
    ("int16 signed", RNG.integers(-32768, 32768, (5, 7)).astype(np.int16), np.float32),
    ("int32 signed", RNG.integers(-2**31, 2**31, (5, 7)).astype(np.int32), np.int64),
    # the ends and the middle of the unsigned range, to float32 and float64
    ("uint16 extremes", np.array([[0, 1, 32767, 32768, 32769, 65534, 65535]], np.uint16),
     np.float32),
    ("uint16 to float64", np.array([[0, 1, 32767, 32768, 65535]], np.uint16), np.float64),
    # values float32 cannot hold: one rounding of the unsigned value, as astropy's
    ("uint32 to float32", np.array([[2**31 - 1, 2**31 + 1, 4188588893, 2734110354, 2**32 - 1,
                                     16777217]], np.uint32), np.float32),
]


def _write(tmp_path, data, **header):
    path = tmp_path / "image.fits"
    hdu = fits.ImageHDU(data, name="SCI")
    for key, value in header.items():
        hdu.header[key] = value
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
    return str(path)


@pytest.mark.parametrize("label, data, dtype", CASES, ids=[c[0] for c in CASES])
def test_same_as_astropy(tmp_path, label, data, dtype):
    path = _write(tmp_path, data)
    with fits.open(path) as hdul:
        expected = np.asarray(hdul["SCI"].data, dtype=dtype)
        got = ImageLayout(path, hdul["SCI"]).read(dtype)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, expected)
    if data.ndim >= 3:
        with fits.open(path) as hdul:
            layout = ImageLayout(path, hdul["SCI"])
            np.testing.assert_array_equal(layout.read(dtype, (1,)), expected[1])
            if data.ndim == 4:
                np.testing.assert_array_equal(layout.read(dtype, (1, 2)), expected[1, 2])
            np.testing.assert_array_equal(layout.read(dtype, 1), expected[1])


def test_scaled_data_is_left_to_astropy(tmp_path):
    from ramp2slope.datamodels import ImageModel

    path = tmp_path / "scaled.fits"
    hdu = fits.ImageHDU(np.arange(35, dtype=np.float32).reshape(5, 7), name="SCI")
    hdu.scale("int16", bscale=0.5, bzero=10.0)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    with fits.open(path) as hdul:
        expected = np.asarray(hdul["SCI"].data, dtype=np.float32)
        assert not ImageLayout(str(path), hdul["SCI"]).fast
    np.testing.assert_array_equal(ImageModel(str(path)).data, expected)


def test_chunked_reads(tmp_path, monkeypatch):
    from ramp2slope.datamodels import raw_image

    monkeypatch.setattr(raw_image, "_CHUNK_BYTES", 64)  # a few rows at a time
    data = RNG.integers(0, 65536, (3, 11, 13)).astype(np.uint16)
    path = _write(tmp_path, data)
    with fits.open(path) as hdul:
        got = ImageLayout(path, hdul["SCI"]).read(np.float32)
    np.testing.assert_array_equal(got, data.astype(np.float32))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_reads_in_threads_give_the_same_values(tmp_path, monkeypatch, threads):
    # with numba loaded, large reads are decoded by as many threads as the kernels use
    import numba

    from ramp2slope.datamodels import raw_image

    monkeypatch.setattr(raw_image, "_CHUNK_BYTES", 640)   # several pieces per plane
    monkeypatch.setattr(raw_image, "_PARALLEL_BYTES", 0)
    monkeypatch.setattr(numba, "get_num_threads", lambda: threads)
    assert raw_image._decode_threads() == threads
    data = RNG.integers(0, 65536, (3, 4, 37, 29)).astype(np.uint16)
    path = _write(tmp_path, data)
    with fits.open(path) as hdul:
        layout = ImageLayout(path, hdul["SCI"])
        np.testing.assert_array_equal(layout.read(np.float32), data.astype(np.float32))
        np.testing.assert_array_equal(layout.read(np.float32, (2,), rows=slice(3, 30),
                                                  cols=slice(5, 21)),
                                      data[2, :, 3:30, 5:21].astype(np.float32))


def test_truncated_file(tmp_path):
    path = _write(tmp_path, RNG.integers(0, 65536, (4, 50, 60)).astype(np.uint16))
    with fits.open(path) as hdul:
        layout = ImageLayout(path, hdul["SCI"])
    with open(path, "r+b") as handle:
        handle.truncate(layout.offset + 1000)
    with pytest.raises(BadInputError, match="image.fits: extension SCI cannot be read, the file is truncated"):
        layout.read(np.float32)
