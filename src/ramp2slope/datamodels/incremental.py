"""Writing a product piece by piece: :class:`IncrementalWriter`.

A product whose arrays are too large to hold at once (the ramp of a long exposure, its
``rateints`` cube, the ``fitopt`` arrays) is laid out on disk first and filled integration by
integration. The file is byte for byte what ``model.save()`` writes for the same model and
arrays: the headers come from astropy (written for stand-in arrays of the same type, then given
the real NAXISn), the data are big-endian with BZERO applied to unsigned integers, every HDU is
padded to 2880 bytes, and the binary tables and the ASDF stub follow the images. Until
:meth:`IncrementalWriter.close` the file has a temporary name in the destination folder, so a
failed run never leaves a half-written product under the final name.

Usage::

    writer = IncrementalWriter(model, path, {"data": (nints, ngroups, ny, nx),
                                             "groupdq": (nints, ngroups, ny, nx)})
    for i in range(nints):
        writer.write("data", i, data_i)          # (ngroups, ny, nx)
        writer.write("groupdq", i, groupdq_i)
    writer.close()                               # renames into place; abort() discards

``model`` provides the headers, the tables and every array not named in ``shapes`` (written as it
is, e.g. PIXELDQ); it is stamped with the file name and date as ``save()`` stamps it.
"""
import io
import math
import os
import warnings

import numpy as np
from astropy.io import fits

from ..errors import BadInputError, Ramp2SlopeError
from .raw_image import encode
from .fits_io import (_image_hdu, image_extensions, primary_hdu, publish, temporary_path,
                      trailing_hdus, write_error)

__all__ = ["IncrementalWriter"]

BLOCK = 2880

#: Bytes encoded and written per call by write_all.
_CHUNK_BYTES = 8 << 20

# BITPIX -> on-disk dtype
_DISK_DTYPES = {8: np.dtype("u1"), 16: np.dtype(">i2"), 32: np.dtype(">i4"), 64: np.dtype(">i8"),
                -32: np.dtype(">f4"), -64: np.dtype(">f8")}


class _Extension:
    """Where one deferred image's data go and how its values are encoded."""

    def __init__(self, name, shape, offset, dtype, header):
        self.name = name
        self.shape = shape
        self.offset = offset
        self.dtype = dtype
        bitpix = int(header["BITPIX"])
        bzero = header.get("BZERO", 0)
        bscale = header.get("BSCALE", 1)
        self.disk = _DISK_DTYPES[bitpix]
        self.sign_bit = None
        if bzero or bscale != 1:
            if dtype.kind == "u" and bitpix > 8 and bscale == 1 and bzero == 2 ** (bitpix - 1):
                # unsigned integers are stored signed with BZERO = 2**(bits-1): flipping the
                # top bit gives the same bytes
                self.disk = np.dtype(f">u{bitpix // 8}")
                self.sign_bit = dtype.type(2 ** (bitpix - 1))
            else:
                raise Ramp2SlopeError(f"{name}: cannot write scaled data (BZERO={bzero}, "
                                      f"BSCALE={bscale}) incrementally")
        self.itemsize = self.disk.itemsize
        self.plane_bytes = math.prod(shape[1:]) * self.itemsize
        # what has been written: each [index], and each row of it for 3-D arrays (which may be
        # filled a block of rows at a time)
        self.written = np.zeros(shape[:2] if len(shape) >= 3 else shape[:1], dtype=bool)

    def encode(self, array, scratch):
        """The stored bytes of ``array``, in ``scratch`` (a one-item list holding the writer's
        buffer, enlarged when too small): one buffer for every extension of a writer, which
        writes one piece at a time."""
        array = np.asarray(array, dtype=self.dtype)
        nbytes = array.size * self.itemsize
        if scratch[0] is None or scratch[0].size < nbytes:
            scratch[0] = None
            scratch[0] = np.empty(nbytes, dtype=np.uint8)
        return encode(array, self.disk, self.sign_bit, scratch[0])


def can_defer(dtype):
    """True for array dtypes the writer can encode (what the models hold: floats and unsigned
    or signed integers)."""
    return np.dtype(dtype).kind in "fui"


class IncrementalWriter:
    """A FITS product laid out on disk and filled along its first axis; see the module docs."""

    def __init__(self, model, path, shapes, overwrite=True):
        path = os.fspath(path)
        if os.path.exists(path) and not overwrite:
            raise BadInputError(f"{path}: exists and overwrite is off")
        self.path = path
        self._scratch = [None]   # the encoding buffer, shared by the extensions
        self.model = model
        model.stamp_for_save(path)
        shapes = {attr: tuple(int(n) for n in shape) for attr, shape in shapes.items()}
        hdus = [primary_hdu(model)]
        deferred = []          # index in hdus -> (attr, full shape, dtype)
        self._empty = set()    # deferred attributes with nothing to write (a zero-length axis)
        for spec, array in image_extensions(model, shapes):
            if array is None:
                shape = shapes[spec.attr]
                if not shape or 0 in shape:
                    # nothing to fill in later: written with the layout
                    array = np.zeros(shape, dtype=spec.dtype)
                    self._empty.add(spec.attr)
                else:
                    deferred.append((len(hdus), spec.attr, shape, spec.dtype))
                    array = np.zeros((1,) * len(shape), dtype=spec.dtype)
            hdus.append(_image_hdu(model, spec, array))
        hdus.extend(trailing_hdus(model))
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            fits.HDUList(hdus).writeto(buffer, output_verify="silentfix")
        raw = buffer.getvalue()
        pieces, self._extensions, self.size, primary_end = self._layout(raw, len(hdus), deferred)
        self._primary_text = raw[:primary_end]
        self._tmp = temporary_path(path)
        self._fd = os.open(self._tmp, os.O_WRONLY)
        try:
            for offset, chunk in pieces:
                self._pwrite(chunk, offset)
            os.ftruncate(self._fd, self.size)
        except BaseException:
            self.abort()
            raise

    @staticmethod
    def _layout(raw, nhdus, deferred):
        """Byte pieces to write (offset, bytes), the deferred extensions, the file size, and
        where the primary header ends."""
        by_index = {index: (attr, shape, dtype) for index, attr, shape, dtype in deferred}
        pieces, extensions = [], {}
        offset = 0
        with fits.open(io.BytesIO(raw), memmap=False, lazy_load_hdus=False) as written:
            if len(written) != nhdus:
                raise Ramp2SlopeError("incremental writer: astropy wrote an unexpected layout")
            primary_end = written[0].fileinfo()["datLoc"]
            for index in range(nhdus):
                # the HDU's fileinfo, not the list's (which turns every header into text)
                info = written[index].fileinfo()
                start, data_start, span = info["hdrLoc"], info["datLoc"], info["datSpan"]
                if index not in by_index:
                    chunk = raw[start:data_start + span]
                    pieces.append((offset, chunk))
                    offset += len(chunk)
                    continue
                attr, shape, dtype = by_index[index]
                header = written[index].header.copy()
                for axis, length in enumerate(reversed(shape), start=1):
                    header[f"NAXIS{axis}"] = length
                text = header.tostring(padding=True).encode("ascii")
                if len(text) != data_start - start:
                    raise Ramp2SlopeError(f"incremental writer: the {attr} header changed size")
                pieces.append((offset, text))
                offset += len(text)
                ext = _Extension(attr, shape, offset, dtype, header)
                extensions[attr] = ext
                offset += -(-ext.plane_bytes * shape[0] // BLOCK) * BLOCK
        return pieces, extensions, offset, primary_end

    def _pwrite(self, data, offset):
        """Write ``data`` (a C-contiguous buffer) at ``offset``. It goes to the system call as it
        is: a series of small frames writes thousands of pieces (200 integrations x 5 extensions
        x 10 blocks of rows), and a byte view of each cost more than the call; only a call that
        stops short makes one, for the rest."""
        size = getattr(data, "nbytes", None)
        if size is None:
            size = memoryview(data).nbytes
        try:
            done = self._write_at(data, offset)
            if done < size:
                view = memoryview(data).cast("B")[done:]
                offset += done
                while len(view):
                    done = self._write_at(view, offset)
                    view = view[done:]
                    offset += done
        except OSError as exc:   # a full disk (ENOSPC), a file-size limit (EFBIG), ...
            raise write_error(self.path, exc) from None

    def _write_at(self, data, offset):
        """One system call writing (some of) ``data`` at ``offset``; returns the bytes written."""
        if hasattr(os, "pwrite"):
            return os.pwrite(self._fd, data, offset)
        os.lseek(self._fd, offset, os.SEEK_SET)   # platforms without positional I/O
        return os.write(self._fd, data)

    # -- filling ---------------------------------------------------------------------------------
    @property
    def deferred(self):
        """The attributes still to be filled, with their full shapes."""
        return {name: ext.shape for name, ext in self._extensions.items()}

    def _extension(self, attr):
        """The deferred extension of ``attr``; None for one with nothing to write."""
        ext = self._extensions.get(attr)
        if ext is None and attr not in self._empty:
            raise Ramp2SlopeError(f"{self.path}: {attr} is not written incrementally")
        return ext

    def write(self, attr, index, array):
        """Write ``array`` as ``[index]`` of the extension of ``attr`` (shape ``shape[1:]``)."""
        ext = self._extension(attr)
        if ext is None:
            return
        array = np.asarray(array)
        if array.shape != ext.shape[1:]:
            raise Ramp2SlopeError(f"{self.path}: {attr}[{index}] must have shape {ext.shape[1:]}, "
                                  f"got {array.shape}")
        if not 0 <= index < ext.shape[0]:
            raise Ramp2SlopeError(f"{self.path}: {attr} index {index} outside 0..{ext.shape[0] - 1}")
        offset = ext.offset + index * ext.plane_bytes
        if array.ndim >= 3:
            # one plane at a time keeps the encoded copy small
            step = math.prod(array.shape[1:]) * ext.itemsize
            for k in range(array.shape[0]):
                self._pwrite(ext.encode(array[k], self._scratch), offset + k * step)
        else:
            self._pwrite(ext.encode(array, self._scratch), offset)
        ext.written[index] = True

    def write_planes(self, attr, index, planes):
        """Write ``planes`` (k, shape[1:]) as ``[index]`` ... ``[index + k - 1]`` of the extension
        of ``attr``: consecutive in the file, so a few MB go in one system call (the products of
        a series of small frames are written a few integrations at a time)."""
        ext = self._extension(attr)
        if ext is None:
            return
        planes = np.asarray(planes)
        count = planes.shape[0] if planes.ndim == len(ext.shape) else -1
        if count < 0 or planes.shape[1:] != ext.shape[1:]:
            raise Ramp2SlopeError(f"{self.path}: {attr}[{index}:] must have shape "
                                  f"(k,) + {ext.shape[1:]}, got {planes.shape}")
        if not (0 <= index and index + count <= ext.shape[0]):
            raise Ramp2SlopeError(f"{self.path}: {attr} indices {index}..{index + count - 1} "
                                  f"outside 0..{ext.shape[0] - 1}")
        step = max(1, _CHUNK_BYTES // max(ext.plane_bytes, 1))
        for k in range(0, count, step):
            self._pwrite(ext.encode(planes[k:k + step], self._scratch),
                         ext.offset + (index + k) * ext.plane_bytes)
        ext.written[index:index + count] = True

    def write_plane_rows(self, attr, index, y0, rows):
        """Write ``rows`` (k, R) + shape[2:] as rows ``y0 .. y0 + R - 1`` of ``[index]`` ...
        ``[index + k - 1]`` of the 3-D (or more) extension of ``attr``: the products of a fit
        made a block of rows of every integration at a time."""
        ext = self._extension(attr)
        if ext is None:
            return
        rows = np.asarray(rows)
        if len(ext.shape) < 3 or rows.ndim != len(ext.shape) or rows.shape[2:] != ext.shape[2:]:
            raise Ramp2SlopeError(f"{self.path}: rows of {attr}[{index}:] must have shape "
                                  f"(k, R) + {ext.shape[2:]}, got {rows.shape}")
        count, nrows = rows.shape[:2]
        if not (0 <= index and index + count <= ext.shape[0]
                and 0 <= y0 and y0 + nrows <= ext.shape[1]):
            raise Ramp2SlopeError(f"{self.path}: {attr}[{index}:{index + count}, "
                                  f"{y0}:{y0 + nrows}] outside {ext.shape[:2]}")
        row_bytes = ext.plane_bytes // ext.shape[1]
        encoded = ext.encode(rows, self._scratch)
        offset = ext.offset + index * ext.plane_bytes + y0 * row_bytes
        for k in range(count if rows.size else 0):
            self._pwrite(encoded[k], offset + k * ext.plane_bytes)
        ext.written[index:index + count, y0:y0 + nrows] = True

    def write_all(self, attr, array):
        """Write the whole extension of ``attr`` at once (in chunks of a few MB)."""
        ext = self._extensions.get(attr)
        if ext is None:
            raise Ramp2SlopeError(f"{self.path}: {attr} is not written incrementally")
        array = np.asarray(array)
        if array.shape != ext.shape:
            raise Ramp2SlopeError(f"{self.path}: {attr} must have shape {ext.shape}, got {array.shape}")
        rows = array.reshape(-1, array.shape[-1])
        row_bytes = array.shape[-1] * ext.itemsize
        step = max(1, _CHUNK_BYTES // max(row_bytes, 1))
        for start in range(0, rows.shape[0], step):
            self._pwrite(ext.encode(rows[start:start + step], self._scratch),
                        ext.offset + start * row_bytes)
        ext.written[:] = True

    def write_integrations(self, index, model, exclude=()):
        """Write ``[index]``, ``[index + 1]``, ... of every deferred extension (but those in
        ``exclude``) from the integrations ``model`` holds."""
        for attr in self._extensions:
            if attr not in exclude:
                planes = getattr(model, attr)
                for j in range(planes.shape[0]):
                    self.write(attr, index + j, planes[j])

    def update_primary_values(self, values):
        """Change the values of primary-header cards the product already has (``{keyword:
        value}``; others are ignored), in place: e.g. counts only known once every integration
        has been through a step. The header keeps its size (values of the same kind)."""
        header = fits.Header.fromstring(self._primary_text.decode("ascii"))
        changed = False
        for keyword, value in values.items():
            if keyword in header and header[keyword] != value:
                header[keyword] = value
                changed = True
        if not changed:
            return
        text = header.tostring(padding=True).encode("ascii")
        if len(text) != len(self._primary_text):
            raise Ramp2SlopeError(f"{self.path}: the primary header would change size")
        self._pwrite(text, 0)
        self._primary_text = text

    def write_rows(self, attr, array):
        """Write a whole deferred 2-D extension (e.g. a PIXELDQ known only at the end)."""
        for row in range(array.shape[0]):
            self.write(attr, row, array[row])

    # -- life cycle ------------------------------------------------------------------------------
    def close(self):
        """Finish the file and give it its final name; returns the path."""
        if self._fd is None:
            raise Ramp2SlopeError(f"{self.path}: writer already closed")
        self._scratch[0] = None
        missing = [f"{name}[{int(np.argmin(ext.written.all(axis=-1)))}]"
                   if ext.written.ndim > 1 else f"{name}[{int(np.argmin(ext.written))}]"
                   for name, ext in self._extensions.items() if not ext.written.all()]
        if missing:
            self.abort()
            raise Ramp2SlopeError(f"{self.path}: never written: {', '.join(missing)}")
        os.close(self._fd)
        self._fd = None
        try:
            publish(self._tmp, self.path)
        except OSError as exc:
            self.abort()
            raise write_error(self.path, exc) from None
        return self.path

    def abort(self):
        """Discard the temporary file (nothing appears under the final name)."""
        self._scratch[0] = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if os.path.exists(self._tmp):
            os.unlink(self._tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False
