"""A small streaming FITS writer.

Large image extensions are written plane by plane straight from the arrays the simulator
produces, so an exposure never needs a second in-memory copy of its ramp. Headers and binary
tables are serialized with astropy; the byte layout is plain FITS (2880-byte blocks, big-endian
data, unsigned integers stored with BZERO).
"""
from __future__ import annotations

import io

import numpy as np
from astropy.io import fits

from ..datamodels.asdf_tree import asdf_records

BLOCK = 2880

_BITPIX = {
    np.dtype(np.uint8): (8, None, ">u1", 0),
    np.dtype(np.int16): (16, None, ">i2", 0),
    np.dtype(np.uint16): (16, 32768, ">u2", 0x8000),
    np.dtype(np.int32): (32, None, ">i4", 0),
    np.dtype(np.uint32): (32, 2147483648, ">u4", 0x80000000),
    np.dtype(np.float32): (-32, None, ">f4", 0),
    np.dtype(np.float64): (-64, None, ">f8", 0),
}


def _pad(handle, nbytes):
    extra = (-nbytes) % BLOCK
    if extra:
        handle.write(b"\0" * extra)


def _fit_card(card):
    """The card with its comment shortened to fit in 80 characters (values are never cut)."""
    card = tuple(card)
    if len(card) < 3 or card[0] in ("HISTORY", "COMMENT"):
        return card
    keyword, value, comment = card
    room = 80 - len(fits.Card(keyword, value).image.rstrip()) - 3
    return (keyword, value, comment[:max(room, 0)])


def primary_header(cards):
    """A data-less primary header followed by the given (keyword, value[, comment]) cards."""
    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = 8
    header["NAXIS"] = 0
    header["EXTEND"] = True
    for card in cards:
        header.append(_fit_card(card), end=True)
    return header


def write_header(handle, header):
    text = header.tostring(padding=True, endcard=True)
    handle.write(text.encode("ascii"))


def image_header(shape, dtype, extname, cards=()):
    """Header of an IMAGE extension of the given numpy shape and dtype."""
    bitpix, bzero, _, _ = _BITPIX[np.dtype(dtype)]
    header = fits.Header()
    header["XTENSION"] = "IMAGE"
    header["BITPIX"] = bitpix
    header["NAXIS"] = len(shape)
    for axis, length in enumerate(reversed(shape), start=1):
        header[f"NAXIS{axis}"] = int(length)
    header["PCOUNT"] = 0
    header["GCOUNT"] = 1
    if bzero is not None:
        header["BSCALE"] = 1
        header["BZERO"] = bzero
    header["EXTNAME"] = extname
    for card in cards:
        header.append(_fit_card(card), end=True)
    return header


class ImageWriter:
    """Writes one IMAGE extension whose data arrive in C-order chunks (e.g. one plane at a time)."""

    def __init__(self, handle, shape, dtype, extname, cards=()):
        self.handle = handle
        self.dtype = np.dtype(dtype)
        _, _, self.big, self.flip = _BITPIX[self.dtype]
        self.expected = int(np.prod(shape)) * self.dtype.itemsize
        self.written = 0
        write_header(handle, image_header(shape, self.dtype, extname, cards))

    def write(self, chunk):
        chunk = np.ascontiguousarray(chunk)
        if chunk.dtype != self.dtype:
            raise TypeError(f"chunk dtype {chunk.dtype} differs from the extension dtype {self.dtype}")
        if self.flip:
            # Unsigned integers are stored as signed values offset by BZERO: flipping the top bit
            # is that subtraction, done while converting to big-endian.
            out = np.empty(chunk.shape, dtype=self.big)
            np.bitwise_xor(chunk, chunk.dtype.type(self.flip), out=out)
        else:
            out = chunk.astype(self.big, copy=False)
        self.handle.write(memoryview(out).cast("B"))
        self.written += out.nbytes

    def close(self):
        if self.written != self.expected:
            raise ValueError(f"wrote {self.written} bytes, the header promised {self.expected}")
        _pad(self.handle, self.written)


def write_image(handle, array, extname, cards=()):
    """Write a whole array as an IMAGE extension, one leading-axis plane at a time."""
    array = np.asarray(array)
    writer = ImageWriter(handle, array.shape, array.dtype, extname, cards)
    if array.ndim <= 2:
        writer.write(array)
    else:
        for plane in array.reshape((-1,) + array.shape[-2:]):
            writer.write(plane)
    writer.close()


def write_table(handle, records, extname, cards=()):
    """Write a numpy structured array as a BINTABLE extension."""
    hdu = fits.BinTableHDU(records, name=extname)
    for card in cards:
        hdu.header.append(_fit_card(card), end=True)
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buffer)
    payload = buffer.getvalue()
    handle.write(payload[BLOCK:])   # drop the empty primary header block


def dq_def_table(entries):
    """DQ_DEF records from (value, name, description) triples, value being a power of two."""
    dtype = np.dtype([("BIT", ">i4"), ("VALUE", ">u4"), ("NAME", "S40"), ("DESCRIPTION", "S80")])
    records = np.zeros(len(entries), dtype=dtype)
    for row, (value, name, description) in enumerate(entries):
        records[row] = (int(value).bit_length() - 1, value, name, description)
    return records


def write_asdf_stub(handle, software="ramp2slope", version="0.1.0"):
    """Write an ``ASDF`` extension with no metadata tree (see ``ramp2slope.datamodels.asdf_tree``)."""
    write_table(handle, asdf_records(None, software, version), "ASDF")
