"""Scratch storage for an exposure processed one integration at a time.

:class:`ScratchStore` keeps the float32 ramp, the uint8 GROUPDQ and (when there is one) the
float32 ZEROFRAME of every integration, and reads them back in pieces: one integration, or a
block of rows spanning every integration (for jump detection). All transfers are explicit
copies between the store and arrays the caller owns.

Each of the three arrays lives in a file of a private temporary folder, read and written with
``os.preadv``/``os.pwrite`` (blocks of rows of small frames through mappings of the file, a
few integrations at a time: :meth:`_ArrayFile.copy_rows`; large transfers shared out between
the kernels' threads), or in memory when it fits in what is left of a budget
(``memory_budget`` bytes, see :func:`default_memory_budget`; GROUPDQ first, it is the smallest
and is rewritten by jump). The default budget is 0: the resident memory of a run is then that
of one integration, whatever the number of integrations. A budget trades memory for the file
traffic, which is not free where fresh file pages are slow to come by (200-300 MB/s on the
test machine): 256x2048 with 20 integrations of 10 groups took 3.3 s with the 0.55 GB of
scratch in memory and 4.0 s in files (peak memory 0.87 and 0.31 GB).
``close()`` frees the memory and removes the folder.
"""
import contextlib
import ctypes
import logging
import mmap
import os
import shutil
import sys
import tempfile

import numba
import numpy as np

from ..errors import Ramp2SlopeError
from ..runtime import owners
from ..runtime.threads import map_in_threads

__all__ = ["ScratchStore", "remove_stale_scratch"]

log = logging.getLogger("ramp2slope")


def _hole_puncher():
    """``punch(fd, offset, length)``: free a file's pages in that range (Linux's
    ``fallocate(FALLOC_FL_PUNCH_HOLE)``); True when done, False where the system or the file
    system cannot."""
    if not sys.platform.startswith("linux"):
        return lambda fd, offset, length: False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fallocate = libc.fallocate
    except (OSError, AttributeError):
        return lambda fd, offset, length: False
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    keep_size_punch_hole = 0x01 | 0x02

    def punch(fd, offset, length):
        return fallocate(fd, keep_size_punch_hole, offset, length) == 0

    return punch


_punch_hole = _hole_puncher()


if hasattr(os, "preadv") and hasattr(os, "pwrite"):
    def _pread_into(fd, view, offset):
        return os.preadv(fd, [view], offset)

    def _pwrite(fd, view, offset):
        return os.pwrite(fd, view, offset)
else:  # platforms without positional I/O
    def _pread_into(fd, view, offset):
        os.lseek(fd, offset, os.SEEK_SET)
        return os.readv(fd, [view])

    def _pwrite(fd, view, offset):
        os.lseek(fd, offset, os.SEEK_SET)
        return os.write(fd, view)


class _StoredArray:
    """A C-ordered array of fixed shape and dtype, read and written by pieces at byte offsets."""

    def __init__(self, shape, dtype):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        # bytes per step along each axis
        self.strides = tuple(int(np.prod(self.shape[k + 1:], dtype=np.int64)) * self.dtype.itemsize
                             for k in range(len(self.shape)))

    def offset(self, *index):
        return sum(i * s for i, s in zip(index, self.strides))

    def _check_out(self, out):
        if out.dtype != self.dtype or not out.flags.c_contiguous:
            raise Ramp2SlopeError("scratch read needs a contiguous buffer of the stored dtype")


#: Pieces of a block of rows smaller than this are copied through a file mapping, larger ones
#: with a system call each (see :meth:`_ArrayFile.copy_rows`).
MAP_BELOW_BYTES = 64 << 10
#: Bytes of the file mapped at a time for those small pieces: the integrations of a time series
#: of small frames are mapped several at a time (MIRI's SLITLESSPRISM with 200 integrations:
#: one mapping per integration was 12,000 mappings and 0.58 s of its jump step).
MAP_RUN_BYTES = 8 << 20

#: Transfers of at least this many bytes are split between threads (the kernels' number): a
#: copy between the page cache and memory runs on one core per system call, and the steps
#: around it run on all of them.
PARALLEL_BYTES = 4 << 20


def _pieces(view, offset):
    """(view, offset) pieces of a transfer: one, or a few per thread when it is large."""
    if len(view) < PARALLEL_BYTES:
        return [(view, offset)]
    size = -(-len(view) // (2 * numba.get_num_threads()))
    size += -size % mmap.PAGESIZE   # pieces start on page boundaries of the buffer
    return [(view[k:k + size], offset + k) for k in range(0, len(view), size)]


class _ArrayFile(_StoredArray):
    """The array in a file."""

    def __init__(self, path, shape, dtype):
        super().__init__(shape, dtype)
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(self.fd, self.nbytes)

    def read(self, offset, out):
        """Fill the contiguous array ``out`` from the bytes at ``offset``."""
        self._check_out(out)
        view = memoryview(out).cast("B")
        map_in_threads(lambda piece: self._read_bytes(piece[0], piece[1]),
                       _pieces(view, offset))

    def _read_bytes(self, view, offset):
        while len(view):
            got = _pread_into(self.fd, view, offset)
            if got <= 0:
                raise Ramp2SlopeError("scratch file is shorter than expected")
            view = view[got:]
            offset += got

    def write(self, offset, array):
        """Store ``array`` (converted to the stored dtype) at ``offset``."""
        array = np.ascontiguousarray(array, dtype=self.dtype)
        view = memoryview(array).cast("B")
        map_in_threads(lambda piece: self._write_bytes(piece[0], piece[1]),
                       _pieces(view, offset))

    def _write_bytes(self, view, offset):
        try:
            while len(view):
                done = _pwrite(self.fd, view, offset)
                view = view[done:]
                offset += done
        except OSError as exc:  # typically a full disk
            raise Ramp2SlopeError(f"cannot write the scratch files: {exc.strerror or exc}") from None

    def discard(self, offset, nbytes):
        """The bytes at ``offset`` will not be read again: their pages are freed now (best
        effort; the content there is undefined afterwards)."""
        _punch_hole(self.fd, offset, nbytes)

    def copy_rows(self, y0, out=None, source=None):
        """Rows ``y0 .. y0 + rows - 1`` of every plane of a 4-D array: into ``out`` (nints,
        ngroups, rows, nx), or from ``source`` of that shape into the file.

        A block of rows is one strided piece of each of the nints x ngroups planes. Pieces of
        at least :data:`MAP_BELOW_BYTES` are read or written with one system call each; smaller
        ones (a time series of small frames has hundreds of thousands of them) through a
        mapping of a run of integrations' part of the file (:data:`MAP_RUN_BYTES`, at least
        one integration), unmapped after the copy, so that the process holds no more of the
        file than that many bytes at a time (the page cache keeps them; the kernel maps up to
        64 KB around each page touched, which for large pieces would add a block's worth to
        the resident memory). Blocks of :data:`PARALLEL_BYTES` or more copied with system
        calls are shared out between the threads. The pieces written were all written before
        (stage A stores every integration whole), so the mapping never has to allocate disk
        blocks: a full disk cannot strike here.
        """
        block = out if out is not None else source
        rows = block.shape[2]
        if block.size == 0:
            return
        if rows * self.strides[2] >= MAP_BELOW_BYTES:
            planes = [(i, g) for i in range(self.shape[0]) for g in range(self.shape[1])]
            if out is not None:
                def copy(plane):
                    self._read_bytes(memoryview(out[plane]).cast("B"), self.offset(*plane, y0))
            else:
                def copy(plane):
                    piece = np.ascontiguousarray(source[plane], dtype=self.dtype)
                    self._write_bytes(memoryview(piece).cast("B"), self.offset(*plane, y0))
            map_in_threads(copy, planes, None if block.nbytes >= PARALLEL_BYTES else 1)
            return
        access = mmap.ACCESS_READ if out is not None else mmap.ACCESS_WRITE
        per_int = self.strides[0]
        nints = self.shape[0]
        run = max(1, min(nints, MAP_RUN_BYTES // per_int))

        def copy(i0):
            i1 = min(i0 + run, nints)
            start = i0 * per_int
            base = start - start % mmap.ALLOCATIONGRANULARITY   # mappings start on a page
            with mmap.mmap(self.fd, start + (i1 - i0) * per_int - base, access=access,
                           offset=base) as mapped:
                planes = np.frombuffer(mapped, dtype=self.dtype, offset=start - base,
                                       count=(i1 - i0) * per_int // self.dtype.itemsize)
                planes = planes.reshape((i1 - i0,) + self.shape[1:])
                try:
                    if out is not None:
                        out[i0:i1] = planes[:, :, y0:y0 + rows]
                    else:
                        planes[:, :, y0:y0 + rows] = source[i0:i1]
                finally:
                    del planes   # the mapping can close only once no array refers to it

        # on one thread: page faults in mappings of two threads wait for each other (the
        # process's memory map is locked for each), which made a 256x2048 series' copies slower
        for i0 in range(0, nints, run):
            copy(i0)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _ArrayMemory(_StoredArray):
    """The array in memory."""

    def __init__(self, shape, dtype):
        super().__init__(shape, dtype)
        self.buffer = np.empty(self.nbytes, dtype=np.uint8)

    def read(self, offset, out):
        self._check_out(out)
        flat = out.reshape(-1).view(np.uint8)
        flat[...] = self.buffer[offset:offset + flat.size]

    def write(self, offset, array):
        array = np.asarray(array)
        target = self.buffer[offset:offset + array.size * self.dtype.itemsize].view(self.dtype)
        target.reshape(array.shape)[...] = array

    def discard(self, offset, nbytes):
        """Memory is given back only as a whole, by ``close()``."""

    def array(self):
        """The stored array itself (a view of the buffer)."""
        return self.buffer.view(self.dtype).reshape(self.shape)

    def close(self):
        self.buffer = None


#: Default memory budget of a ScratchStore (0: everything in files). The environment variable
#: RAMP2SLOPE_SCRATCH_MEMORY (bytes, or with a K/M/G suffix) sets another; any budget is
#: capped at 1/8 of the memory available.
DEFAULT_MEMORY_BUDGET = 0


def default_memory_budget():
    text = os.environ.get("RAMP2SLOPE_SCRATCH_MEMORY", "").strip()
    budget = DEFAULT_MEMORY_BUDGET
    if text:
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
        try:
            budget = int(float(text[:-1] if scale > 1 else text) * scale)
        except ValueError:
            raise Ramp2SlopeError(f"RAMP2SLOPE_SCRATCH_MEMORY={text!r}: give bytes, e.g. 1.5G") from None
    if budget <= 0:
        return 0
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        budget = min(budget, available // 8)
    except (ValueError, OSError, AttributeError):
        pass
    return budget


_PREFIX = ".ramp2slope-scratch-"


def _owner_prefix():
    """The name prefix of this process's scratch folders: ``.ramp2slope-scratch-<host>-<pid>-``."""
    return f"{_PREFIX}{owners.owner_tag()}-"


def _temporary(name):
    """A scratch folder, or a product being written (``.<name>.<tag>-<random>.part``)."""
    return name.startswith(_PREFIX) or (name.startswith(".") and name.endswith(".part"))


def remove_stale_scratch(parent):
    """Remove what runs of this host that are no longer running (killed, or stopped by a power
    cut) left in ``parent``: scratch folders, which can hold gigabytes, and the products they
    were writing. Those of live runs and of other hosts are left alone. Returns the paths
    removed."""
    return owners.remove_left_by_dead_runs(parent, _temporary, log)


class ScratchStore:
    """The exposure between steps; see the module docstring.

    ``shape`` is (nints, ngroups, ny, nx); ``zeroframe`` says whether a ZEROFRAME
    (nints, ny, nx) is kept too. The folder is created inside ``parent``. ``memory_budget``:
    bytes that may be held in memory (None: :func:`default_memory_budget`).
    """

    def __init__(self, parent, shape, zeroframe=False, memory_budget=None):
        self.shape = tuple(int(n) for n in shape)
        nints, ngroups, ny, nx = self.shape
        self._budget = default_memory_budget() if memory_budget is None else int(memory_budget)
        try:
            remove_stale_scratch(parent)
            self.folder = tempfile.mkdtemp(prefix=_owner_prefix(), dir=parent)
        except OSError as exc:
            raise Ramp2SlopeError(f"cannot create scratch files in {parent}: "
                                  f"{exc.strerror or exc}") from None
        self._files = []
        try:
            self._gdq = self._file("groupdq.u8", self.shape, np.uint8)
            self._zf = self._file("zeroframe.f32", (nints, ny, nx), np.float32) if zeroframe else None
            self._data = self._file("sci.f32", self.shape, np.float32)
        except OSError as exc:
            self.close()
            raise Ramp2SlopeError(f"cannot create scratch files in {parent}: "
                                  f"{exc.strerror or exc}") from None
        except BaseException:
            self.close()
            raise

    def _file(self, name, shape, dtype):
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if nbytes <= self._budget:
            self._budget -= nbytes
            array_file = _ArrayMemory(shape, dtype)
        else:
            array_file = _ArrayFile(os.path.join(self.folder, name), shape, dtype)
        self._files.append(array_file)
        return array_file

    def extra(self, name, shape, dtype):
        """One more array kept for the run (the LIKELY fit's per-integration planes), in memory
        within what is left of the budget, else in a file of the folder; freed by ``close()``.
        It has ``offset(*index)``, ``write(offset, array)`` and ``read(offset, out)``."""
        try:
            return self._file(name, shape, dtype)
        except OSError as exc:
            raise Ramp2SlopeError(f"cannot create scratch files in {self.folder}: "
                                  f"{exc.strerror or exc}") from None

    def release(self, array_file):
        """Free an :meth:`extra` array before the run ends: its file is removed, or its memory
        returned to the budget."""
        self._files.remove(array_file)
        array_file.close()
        if isinstance(array_file, _ArrayMemory):
            self._budget += array_file.nbytes
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(array_file.path)

    @property
    def in_memory(self):
        """Which arrays are held in memory: {'data': bool, 'groupdq': bool, 'zeroframe': bool}."""
        return {name: isinstance(store, _ArrayMemory)
                for name, store in (("data", self._data), ("groupdq", self._gdq), ("zeroframe", self._zf))
                if store is not None}

    @property
    def has_zeroframe(self):
        return self._zf is not None

    # -- whole integrations ---------------------------------------------------------------------
    def write_integration(self, i, data=None, groupdq=None, zeroframe=None):
        """Store the (ngroups, ny, nx) ramp, GROUPDQ and (ny, nx) ZEROFRAME of integration i
        (each one only when given)."""
        if data is not None:
            self._data.write(self._data.offset(i), data)
        if groupdq is not None:
            self._gdq.write(self._gdq.offset(i), groupdq)
        if zeroframe is not None:
            self._zf.write(self._zf.offset(i), zeroframe)

    def read_integration(self, i, data=None, groupdq=None, zeroframe=None):
        """Fill the given buffers with integration i."""
        if data is not None:
            self._data.read(self._data.offset(i), data)
        if groupdq is not None:
            self._gdq.read(self._gdq.offset(i), groupdq)
        if zeroframe is not None:
            self._zf.read(self._zf.offset(i), zeroframe)

    def discard_integration(self, i):
        """Integration i will not be read again: the file pages holding it are freed at once,
        so that the products written next take those pages rather than new ones (new pages
        are slow to come by where the host backs the memory of a virtual machine)."""
        for store in (self._data, self._gdq, self._zf):
            if store is not None:
                store.discard(store.offset(i), store.strides[0])

    def read_gdq(self, i, out):
        self._gdq.read(self._gdq.offset(i), out)

    def write_gdq(self, i, groupdq):
        self._gdq.write(self._gdq.offset(i), groupdq)

    # -- blocks of rows across every integration ---------------------------------------------------
    def read_rows(self, y0, y1, data, groupdq):
        """Fill (nints, ngroups, y1 - y0, nx) buffers with rows y0..y1-1 (``data`` may be None)."""
        rows = groupdq.shape[2]
        for store, out in ((self._data, data), (self._gdq, groupdq)):
            if out is None:
                continue
            if isinstance(store, _ArrayMemory):
                out[...] = store.array()[:, :, y0:y0 + rows]
            else:
                store.copy_rows(y0, out=out)

    def write_gdq_rows(self, y0, groupdq):
        """Store GROUPDQ rows y0, y0+1, ... from a (nints, ngroups, rows, nx) array or view."""
        if isinstance(self._gdq, _ArrayMemory):
            self._gdq.array()[:, :, y0:y0 + groupdq.shape[2]] = groupdq
            return
        self._gdq.copy_rows(y0, source=groupdq)

    def close(self):
        """Close the files and remove the folder."""
        for array_file in self._files:
            array_file.close()
        self._files = []
        shutil.rmtree(self.folder, ignore_errors=True)
