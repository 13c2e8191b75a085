"""FITS image data straight between the file and native arrays.

astropy hands back big-endian arrays (or scaled copies of them), so turning a raw uint16 ramp
into float32 through it costs a byte swap, an unscaling pass and a conversion pass, all single
threaded and each with a full-size temporary; writing swaps every array in place and back.
Here a few planes at a time go through a small buffer, converted in one parallel pass. The common
layouts (16-bit pseudo-unsigned raw data, 32-bit pseudo-unsigned DQ, float32, bytes) have numba
kernels; anything else goes through numpy, with the same result.

:class:`ImageLayout` reads (a short read, i.e. a truncated file, raises
:class:`ramp2slope.errors.BadInputError` naming the file); :func:`encode` gives the on-disk bytes
of a native array.
"""
import math

import numba
import numpy as np

from ..errors import BadInputError

_BIG_ENDIAN = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}

#: Bytes read per chunk: large enough to amortise the read call, small enough to stay in cache.
_CHUNK_BYTES = 8 << 20


class ImageLayout:
    """Where an image HDU's data are in its file and how they are stored."""

    def __init__(self, path, hdu):
        header = hdu.header
        self.path = path
        self.name = hdu.name
        self.shape = tuple(int(n) for n in hdu.shape)
        # Once astropy has scaled the data it rewrites BITPIX/BZERO/BSCALE in the header; the
        # values as stored in the file are kept in its _orig_* attributes.
        self.bitpix = int(getattr(hdu, "_orig_bitpix", None) or header["BITPIX"])
        if self.bitpix not in _BIG_ENDIAN:
            raise BadInputError(f"{path}: extension {hdu.name} has BITPIX={self.bitpix}, "
                                f"which is not a FITS image type")
        self.raw_dtype = np.dtype(_BIG_ENDIAN[self.bitpix])
        self.bzero = getattr(hdu, "_orig_bzero", header.get("BZERO", 0))
        self.bscale = getattr(hdu, "_orig_bscale", header.get("BSCALE", 1))
        self.offset = int(hdu.fileinfo()["datLoc"])

    @property
    def unsigned_offset(self):
        """True when BZERO only shifts signed storage to unsigned values (uint16, uint32)."""
        return (self.bscale == 1 and self.bitpix in (16, 32, 64)
                and self.bzero == 2 ** (self.bitpix - 1))

    @property
    def plane_items(self):
        return math.prod(self.shape[1:]) if len(self.shape) > 1 else 1

    def read(self, dtype, index=(), out=None):
        """The data (or ``data[index]`` for a tuple of leading indices) as a native ``dtype`` array."""
        index = tuple(int(i) for i in index)
        sub_shape = self.shape[len(index):]
        items = math.prod(sub_shape)
        start = 0
        stride = items
        for axis, i in enumerate(index):
            if not 0 <= i < self.shape[axis]:
                raise IndexError(f"index {index} out of range for shape {self.shape}")
            start += i * math.prod(self.shape[axis + 1:])
        if out is None:
            out = np.empty(sub_shape, dtype=dtype)
        elif out.shape != sub_shape or not out.flags.c_contiguous:
            raise ValueError(f"out must be a contiguous array of shape {sub_shape}")
        flat = out.reshape(-1)
        itemsize = self.raw_dtype.itemsize
        chunk = max(1, min(stride, _CHUNK_BYTES // itemsize))
        buffer = np.empty(chunk * itemsize, dtype=np.uint8)
        with open(self.path, "rb") as handle:
            handle.seek(self.offset + start * itemsize)
            done = 0
            while done < items:
                n = min(chunk, items - done)
                view = memoryview(buffer)[: n * itemsize]
                got = handle.readinto(view)
                if got != n * itemsize:
                    raise BadInputError(
                        f"{self.path}: extension {self.name} cannot be read, the file is "
                        f"truncated (it ends inside the data)")
                self._convert(buffer[: n * itemsize], flat[done:done + n])
                done += n
        return out

    def _convert(self, raw, out):
        if self.bscale == 1 and self.bzero == 0 and self.bitpix == -32 and out.dtype == np.float32:
            _swap32_xor(raw.view(np.uint32), out.view(np.uint32), np.uint32(0))
            return
        if self.unsigned_offset and self.bitpix == 32 and out.dtype == np.uint32:
            _swap32_xor(raw.view(np.uint32), out, np.uint32(0x80000000))
            return
        if self.unsigned_offset and self.bitpix == 16 and out.dtype in (np.float32, np.uint16):
            _uint16_from_offset_i16(raw, out)
            return
        values = raw.view(self.raw_dtype)
        if self.unsigned_offset:
            unsigned = np.dtype(f">u{self.raw_dtype.itemsize}")
            values = (values.view(unsigned) ^ unsigned.type(1 << (self.bitpix - 1)))
        elif self.bscale != 1 or self.bzero != 0:
            values = values * np.float64(self.bscale) + np.float64(self.bzero)
        out[...] = values


def encode(array, disk_dtype, sign_bit=None):
    """The bytes of ``array`` as stored in a FITS file: ``disk_dtype`` (big-endian), with the top
    bit flipped first when ``sign_bit`` is given (unsigned integers stored with BZERO)."""
    array = np.ascontiguousarray(array)
    disk_dtype = np.dtype(disk_dtype)
    if disk_dtype.itemsize == 4 and array.dtype.itemsize == 4 and (
            (array.dtype == np.float32 and disk_dtype == np.dtype(">f4") and sign_bit is None)
            or (array.dtype == np.uint32 and sign_bit is not None)):
        out = np.empty(array.shape, dtype=np.uint32)
        # flipping the top bit of the value is flipping the top bit of the first stored byte
        mask = np.uint32(0x80 if sign_bit is not None else 0)
        _swap32_xor(array.reshape(-1).view(np.uint32), out.reshape(-1), mask)
        return out
    if sign_bit is not None:
        array = array ^ sign_bit
    return np.ascontiguousarray(array, dtype=disk_dtype)


@numba.njit(parallel=True, cache=True)
def _uint16_from_offset_i16(raw, out):
    # Big-endian int16 with BZERO=32768: flip the sign bit (top bit of the first byte) and swap.
    for k in numba.prange(out.shape[0]):
        out[k] = ((np.uint16(raw[2 * k]) ^ np.uint16(0x80)) << np.uint16(8)) | np.uint16(raw[2 * k + 1])


@numba.njit(parallel=True, cache=True)
def _swap32_xor(words, out, mask):
    # Reverse the bytes of each 32-bit word, then XOR: decoding and encoding are the same
    # operation, only the mask differs.
    for k in numba.prange(out.shape[0]):
        w = words[k]
        out[k] = ((w << np.uint32(24)) | ((w & np.uint32(0xFF00)) << np.uint32(8))
                  | ((w >> np.uint32(8)) & np.uint32(0xFF00)) | (w >> np.uint32(24))) ^ mask
