"""FITS image data straight between files and native arrays.

astropy hands back big-endian arrays (memory-mapped, or scaled copies of them), so turning a raw
uint16 ramp into float32 through it costs a byte swap, an unscaling pass and a conversion pass,
each with a full-size temporary, for the whole extension even when a subarray is wanted; writing
swaps every array in place and back. Here the data offset comes from the parsed header and only
the rows of the planes that are needed are read: a chunk of rows at a time is mapped from the
page cache, converted (byte swap, and sign flip for pseudo-unsigned integers) into the output
and unmapped at once, so the file's pages never accumulate in the resident set.

:class:`ImageLayout` reads the layouts the pipeline meets (floats, pseudo-unsigned 16/32/64-bit
integers, unscaled integers); anything else scaled reports ``fast = False`` and the caller goes
through astropy. A file that ends inside the data raises the layout's ``error`` class (a
:class:`~ramp2slope.errors.Ramp2SlopeError`) naming the file and the extension.
:func:`encode` gives the stored bytes of a native array.
"""
import logging
import math
import mmap
import numbers
import os
import sys

import numpy as np
from astropy.io import fits

from ..errors import BadInputError

_BIG_ENDIAN = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_WARNED_BSCALE = set()   # (path, extension) already warned of a zero BSCALE
_CHUNK_BYTES = 32 << 20  # bytes mapped at a time
# Reads this large are decoded in threads (as many as the numba kernels use).
_PARALLEL_BYTES = 16 << 20
# Populating the mapping in one call is much cheaper than one page fault per 4 kB page.
_MAP_FLAGS = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)


def _decode_threads():
    """The pipeline's thread count (numba's, which ``--threads`` sets) once numba is loaded;
    1 for the data models used on their own."""
    numba = sys.modules.get("numba")
    if numba is None:
        return 1
    try:
        return int(numba.get_num_threads())
    except (AttributeError, RuntimeError, ValueError):
        return 1


class ImageLayout:
    """Where an image extension's data are in its file and how they are stored."""

    def __init__(self, path, hdu, error=BadInputError):
        header = hdu.header
        self.path = path
        self.name = hdu.name
        self.error = error
        self.shape = tuple(int(n) for n in hdu.shape)
        # Once astropy has scaled the data it rewrites BITPIX/BZERO/BSCALE in the header; the
        # values as stored in the file are kept in its _orig_* attributes.
        self.bitpix = int(getattr(hdu, "_orig_bitpix", None) or header["BITPIX"])
        self.bzero = getattr(hdu, "_orig_bzero", header.get("BZERO", 0))
        self.bscale = getattr(hdu, "_orig_bscale", header.get("BSCALE", 1))
        for keyword, value in (("BZERO", self.bzero), ("BSCALE", self.bscale)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise error(f"{path}: extension {self.name}: {keyword}={value!r} is not a number")
        if self.bscale == 0 and (path, self.name) not in _WARNED_BSCALE:
            _WARNED_BSCALE.add((path, self.name))
            logging.getLogger("ramp2slope").warning(
                "%s: extension %s has BSCALE = 0: every value reads as BZERO=%s (as jwst reads "
                "it)", path, self.name, self.bzero)
        self.offset = int(hdu.fileinfo()["datLoc"])
        self.unsigned = (self.bscale == 1 and self.bitpix in (16, 32, 64)
                         and self.bzero == 2 ** (self.bitpix - 1))
        plain = self.bscale == 1 and self.bzero == 0
        # tile-compressed images (a binary table on disk) go through astropy
        compressed = isinstance(hdu, fits.CompImageHDU)
        self.fast = self.bitpix in _BIG_ENDIAN and (plain or self.unsigned) and not compressed
        self.raw_dtype = np.dtype(_BIG_ENDIAN.get(self.bitpix, ">u1"))
        # what astropy would give: the stored type, or its unsigned twin with the BZERO offset
        self.native_dtype = (np.dtype(f"u{self.raw_dtype.itemsize}") if self.unsigned
                             else self.raw_dtype.newbyteorder("="))

    @property
    def nbytes(self):
        return math.prod(self.shape) * self.raw_dtype.itemsize

    def _truncated(self, size):
        return self.error(
            f"{self.path}: extension {self.name} cannot be read, the file is truncated "
            f"({size} bytes, the data end at byte {self.offset + self.nbytes})")

    def read(self, dtype, planes=None, rows=None, cols=None, out=None):
        """``data[planes, rows, cols]`` as a C-contiguous native ``dtype`` array.

        ``planes``: None (every leading index; the result keeps the leading axes), an int or a
        tuple of ints (leading indices, e.g. ``(integration,)`` or ``(integration, group)``;
        those axes are dropped) or a slice of the first axis. ``rows`` and ``cols`` are slices
        with step 1 of the last two axes (None: all).
        """
        if not self.fast:
            raise ValueError(f"{self.path}: {self.name} needs astropy to be unscaled")
        if len(self.shape) < 2:
            raise self.error(f"{self.path}: extension {self.name} is not an image")
        ny, nx = self.shape[-2:]
        lead = self.shape[:-2]
        nlead = math.prod(lead)
        y0, y1, _ = (rows or slice(None)).indices(ny)
        x0, x1, _ = (cols or slice(None)).indices(nx)
        if planes is None:
            indices = range(nlead)
            out_lead = lead
        elif isinstance(planes, slice):
            indices = range(*planes.indices(self.shape[0]))
            out_lead = (len(indices),) + lead[1:]
            step = nlead // self.shape[0] if self.shape[0] else 0
            indices = [k for i in indices for k in range(i * step, (i + 1) * step)]
        else:
            index = tuple(int(i) for i in (planes if isinstance(planes, tuple) else (planes,)))
            if len(index) > len(lead) or any(not 0 <= i < n for i, n in zip(index, lead)):
                raise IndexError(f"planes {planes} out of range for shape {self.shape}")
            rest = lead[len(index):]
            first = 0
            for i, n in zip(index, lead):
                first = first * n + i
            count = math.prod(rest)
            indices = range(first * count, (first + 1) * count)
            out_lead = rest
        nrows, ncols = max(y1 - y0, 0), max(x1 - x0, 0)
        shape = tuple(out_lead) + (nrows, ncols)
        if out is None:
            out = np.empty(shape, dtype=dtype)
        elif out.shape != shape or out.dtype != np.dtype(dtype) or not out.flags.c_contiguous:
            raise ValueError(f"out must be a contiguous {np.dtype(dtype)} array of shape {shape}")
        if out.size == 0:
            return out
        planes_out = out.reshape(-1, nrows, ncols)
        itemsize = self.raw_dtype.itemsize
        row_bytes = nx * itemsize
        chunk_rows = max(1, min(nrows, _CHUNK_BYTES // row_bytes))
        threads = _decode_threads() if out.nbytes >= _PARALLEL_BYTES else 1
        indices = list(indices)
        if nrows == ny and len(indices) > 1 and indices[-1] - indices[0] == len(indices) - 1:
            # whole planes that follow each other in the file: one run of rows, mapped in a few
            # large pieces rather than plane by plane (a small plane costs a mapping each)
            total = len(indices) * ny
            chunk = max(1, min(total, _CHUNK_BYTES // row_bytes, -(-total // (4 * threads))
                               if threads > 1 else total))
            flat = planes_out.reshape(-1, ncols)
            base = self.offset + indices[0] * ny * row_bytes
            pieces = [(base + r * row_bytes, min(chunk, total - r), flat[r:r + chunk])
                      for r in range(0, total, chunk)]
        else:
            pieces = [(self.offset + (k * ny + y0 + r) * row_bytes, min(chunk_rows, nrows - r),
                       planes_out[j, r:r + min(chunk_rows, nrows - r)])
                      for j, k in enumerate(indices) for r in range(0, nrows, chunk_rows)]
        with open(self.path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if self.offset + self.nbytes > size:
                raise self._truncated(size)

            def decode(piece):
                start, n, target = piece
                self._read_rows(handle, start, n, row_bytes, x0, target)

            workers = min(threads, len(pieces))
            if workers > 1:
                # mapping the pages, decoding and first touching the output release the GIL
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(max_workers=workers) as pool:
                    for _ in pool.map(decode, pieces):
                        pass
            else:
                for piece in pieces:
                    decode(piece)
        return out

    def _read_rows(self, handle, start, nrows, row_bytes, x0, out):
        """Decode ``nrows`` full stored rows starting at byte ``start`` into ``out``.

        The rows are mapped from the page cache (no copy into a buffer) and unmapped at once,
        so that the pages do not stay in the resident set."""
        aligned = start - start % mmap.ALLOCATIONGRANULARITY
        length = start - aligned + nrows * row_bytes
        mapped = mmap.mmap(handle.fileno(), length, flags=_MAP_FLAGS, prot=mmap.PROT_READ,
                           offset=aligned)
        raw = None
        try:
            raw = np.frombuffer(mapped, dtype=np.uint8, count=nrows * row_bytes,
                                offset=start - aligned).reshape(nrows, row_bytes)
            self._convert(raw, x0, out)
        finally:
            raw = None
            try:
                mapped.close()
            except BufferError:
                # interrupted while decoding (Ctrl-C, SIGTERM): a view of the rows lives on in
                # the traceback; the mapping is released with it instead of now
                pass

    def _convert(self, raw, x0, out):
        """Decode ``raw`` (n full rows of stored bytes) columns ``x0:x0+ncols`` into ``out``."""
        values = raw.view(self.raw_dtype)[:, x0:x0 + out.shape[1]]
        if self.unsigned:
            signed = np.dtype(f"i{self.raw_dtype.itemsize}")
            if out.dtype == self.native_dtype:
                # the stored signed value with its top bit flipped is the unsigned value
                np.copyto(out.view(signed), values)
                out ^= self.native_dtype.type(1 << (self.bitpix - 1))
                return
            if self.bitpix == 16 and out.dtype in (np.float32, np.float64):
                # the signed value converted, then the offset added: both exact in floating
                # point for 16 bits, and one pass fewer than flipping the bit first (a raw
                # full-frame integration of 5 groups: 12 ms against 19 ms)
                np.copyto(out, values, casting="unsafe")
                out += out.dtype.type(1 << 15)
                return
            unsigned = np.dtype(f">u{self.raw_dtype.itemsize}")
            values = values.view(unsigned) ^ unsigned.type(1 << (self.bitpix - 1))
        np.copyto(out, values, casting="unsafe")


def encode(array, disk_dtype, sign_bit=None, buffer=None):
    """The bytes of ``array`` as stored in a FITS file: ``disk_dtype`` (big-endian), with the top
    bit flipped first when ``sign_bit`` is given (unsigned integers stored with BZERO).

    ``buffer`` (a uint8 array, optional) is reused for the result when it is large enough:
    filling memory already mapped is several times faster than allocating it afresh.
    """
    array = np.asarray(array)
    disk_dtype = np.dtype(disk_dtype)
    nbytes = array.size * disk_dtype.itemsize
    if buffer is not None and buffer.size >= nbytes:
        out = buffer[:nbytes].view(disk_dtype).reshape(array.shape)
    else:
        out = np.empty(array.shape, dtype=disk_dtype)
    np.copyto(out, array, casting="unsafe")
    if sign_bit is not None:
        # the stored value is the unsigned value minus BZERO: its top bit flipped
        out ^= out.dtype.type(sign_bit)
    return out
