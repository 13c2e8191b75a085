"""Scratch storage for an exposure processed one integration at a time.

:class:`ScratchStore` keeps the float32 ramp, the uint8 GROUPDQ and (when there is one) the
float32 ZEROFRAME of every integration, and reads them back in pieces: one integration, or a
block of rows spanning every integration (for jump detection and the ramp fit). Writes are
explicit copies from arrays the caller owns; reads too, except that a block of rows of the
files (some of its integrations) can also be mapped (``map_rows``): the kernels then read the
pages of the system's file cache in place, which saved a third of the ramp fit's second pass
on a 256x2048 series of 50 integrations (1.64-1.81 -> 1.41-1.45 s). The maps are
copy-on-write, so nothing written to them reaches the files. One difference from a copy: a
page the system cannot read back (a failing disk) stops the process with SIGBUS rather than
an error; the pages read were all written moments before and are normally still in memory.

Each of the three arrays lives in a file of a private temporary folder, read and written with
vectored positional system calls (``os.preadv``/``os.pwritev``; large transfers shared out
between the kernels' threads), the ramp and GROUPDQ laid out block of rows by block of rows so
that both a block of every integration and one integration are a few runs of the file
(:class:`_RampFileInRowBlocks`), or in memory when it fits in what is left of a budget
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
import threading

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


def _iov_max():
    try:
        value = os.sysconf("SC_IOV_MAX")
    except (ValueError, OSError, AttributeError):
        value = -1
    return value if value > 0 else 16


#: The most buffers one vectored system call takes (Linux: 1024; POSIX guarantees 16).
IOV_MAX = _iov_max()

if hasattr(os, "preadv") and hasattr(os, "pwritev"):
    _preadv, _pwritev = os.preadv, os.pwritev
else:  # platforms without positional I/O: one buffer per call, the file position shared
    _seek_lock = threading.Lock()

    def _preadv(fd, views, offset):
        with _seek_lock:
            os.lseek(fd, offset, os.SEEK_SET)
            return os.readv(fd, views[:1])

    def _pwritev(fd, views, offset):
        with _seek_lock:
            os.lseek(fd, offset, os.SEEK_SET)
            return os.write(fd, views[0])


def _transfer(fd, buffers, offset, write):
    """Read the bytes of the file from ``offset`` on into ``buffers`` (C-contiguous arrays or
    memoryviews, filled in order), or write them there from ``buffers``: vectored system calls
    of up to IOV_MAX buffers each, resumed where one stops short.

    The buffers go to the system calls as they are: a run of small frames has thousands, and
    a byte view of each cost more than the calls (a MIRI series of 200 integrations: 44 ms of
    its scratch writes' 150 ms went to views). Only a buffer a call stopped inside is viewed
    as bytes, for its rest."""
    views = [b for b in buffers if b.nbytes]
    k = 0
    try:
        while k < len(views):
            done = (_pwritev if write else _preadv)(fd, views[k:k + IOV_MAX], offset)
            if done <= 0:
                raise Ramp2SlopeError("scratch file is shorter than expected")
            offset += done
            while k < len(views) and done >= views[k].nbytes:
                done -= views[k].nbytes
                k += 1
            if done:
                views[k] = memoryview(views[k]).cast("B")[done:]
    except OSError as exc:  # typically a full disk
        raise Ramp2SlopeError(f"cannot {'write' if write else 'read'} the scratch files: "
                              f"{exc.strerror or exc}") from None


class _StoredArray:
    """A C-ordered array of fixed shape and dtype, read and written by pieces at byte offsets;
    the first axis is the integration."""

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

    def read_integration(self, i, out):
        """Integration i into ``out``, or i, i + 1, ... into the planes of its first axis."""
        self.read(self.offset(i), out)

    def write_integration(self, i, array):
        self.write(self.offset(i), array)

    def discard_integration(self, i):
        self.discard(self.offset(i), self.strides[0])

    def discard_integrations(self, i, stop):
        self.discard(self.offset(i), (stop - i) * self.strides[0])


#: Transfers of at least this many bytes are split between threads (the kernels' number): a
#: copy between the page cache and memory runs on one core per system call, and the steps
#: around it run on all of them.
PARALLEL_BYTES = 4 << 20


class _ArrayFile(_StoredArray):
    """The array in a file, in C order."""

    def __init__(self, path, shape, dtype):
        super().__init__(shape, dtype)
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(self.fd, self.nbytes)

    def read(self, offset, out):
        """Fill the contiguous array ``out`` from the bytes at ``offset``."""
        self._check_out(out)
        self._run([(offset, [out])], out.nbytes, write=False)

    def write(self, offset, array):
        """Store ``array`` (converted to the stored dtype) at ``offset``."""
        array = np.ascontiguousarray(array, dtype=self.dtype)
        self._run([(offset, [array])], array.nbytes, write=True)

    def _run(self, runs, nbytes, write):
        """Transfer ``runs``, a list of (file offset, [buffers of consecutive bytes there]); a
        large transfer is shared out between the threads, a few equal shares each."""
        shares = [runs]
        if nbytes >= PARALLEL_BYTES:
            shares = _share_out(runs, 2 * numba.get_num_threads())

        def move(share):
            for offset, buffers in share:
                _transfer(self.fd, buffers, offset, write)
        map_in_threads(move, shares, None if len(shares) > 1 else 1)

    def discard(self, offset, nbytes):
        """The bytes at ``offset`` will not be read again: their pages are freed now (best
        effort; the content there is undefined afterwards)."""
        _punch_hole(self.fd, offset, nbytes)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _share_out(runs, parts):
    """``runs`` (see :meth:`_ArrayFile._run`) as ``parts`` lists of runs of equal
    bytes, in order, cut where a share ends, within a buffer if need be (that buffer only is
    viewed as bytes). (Few shares of many runs each: a task per run cost more than the copies
    of small frames.)"""
    share = max(1, -(-sum(b.nbytes for _, buffers in runs for b in buffers) // parts))
    shares, current, room = [], [], share
    for offset, buffers in runs:
        piece, piece_bytes = [], 0
        for buffer in buffers:
            size = buffer.nbytes
            if size < room:
                if size:
                    piece.append(buffer)
                    piece_bytes += size
                    room -= size
                continue
            view = memoryview(buffer).cast("B")
            while len(view) >= room:     # this buffer ends the share
                piece.append(view[:room])
                current.append((offset, piece))
                shares.append(current)
                offset += piece_bytes + room
                view, piece, piece_bytes, current, room = view[room:], [], 0, [], share
            if len(view):
                piece.append(view)
                piece_bytes += len(view)
                room -= len(view)
        if piece:
            current.append((offset, piece))
    if current:
        shares.append(current)
    return shares


#: Whether blocks of the scratch files may be read through memory maps (``map_rows``) rather
#: than copied: the switch lets the tests compare both ways.
MAP_FILES = hasattr(mmap, "ACCESS_COPY")

#: The most bytes (ramp and GROUPDQ) a reader should map at once (``ScratchStore.map_run``).
#: The pages of a mapped file count in the process's resident memory while mapped, whereas a
#: copy goes to memory that a run keeps for reuse (``runtime.malloc``) and often costs no new
#: memory: on a full frame of 3 integrations, mapping jump's blocks of 105 MB raised the peak
#: by 87 MB. Jump's copy would take a block's size anyway; a reader that copies less at a
#: time (the ramp fit) maps less too.
MAP_WINDOW_BYTES = 64 << 20


class _RampFileInRowBlocks(_ArrayFile):
    """A ramp (nints, ngroups, ny, nx) in a file, block of rows after block of rows: block b
    holds rows ``b * block_rows`` ... of every integration and group, in (nints, ngroups, rows,
    nx) order.

    Jump detection reads every block and writes its GROUPDQ back. In C order a block is
    nints x ngroups strided pieces of a few rows each: thousands of small system calls or page
    faults per block (0.8 s of a 256x2048 series' 50 x 10 GROUPDQ written back). Here a block
    is one run of the file, and an integration one run per block. Blocks of rows that are
    not whole blocks of the layout still work, a plane at a time.
    """

    def __init__(self, path, shape, dtype, block_rows):
        super().__init__(path, shape, dtype)
        nints, ngroups, ny, nx = self.shape
        self.block_rows = max(1, min(int(block_rows), ny))
        self._row_bytes = nx * self.dtype.itemsize
        # (first row, end row, byte offset) of each block
        self._blocks = [(y0, min(ny, y0 + self.block_rows), y0 * nints * ngroups * self._row_bytes)
                        for y0 in range(0, ny, self.block_rows)]

    def _plane_offset(self, block, i, g, y):
        """Where row y of plane (i, g) is in the file, ``block`` holding that row."""
        b0, b1, start = block
        return start + ((i * self.shape[1] + g) * (b1 - b0) + y - b0) * self._row_bytes

    def _rows_view(self, array):
        """``array`` as rows the system calls can take: each row contiguous, rows next to each
        other within a plane (a view of rows of a contiguous array qualifies as it is)."""
        array = np.asarray(array)
        if (array.dtype != self.dtype or array.strides[-1] != self.dtype.itemsize
                or array.strides[-2] != self._row_bytes):
            array = np.ascontiguousarray(array, dtype=self.dtype)
        return array

    def _integration_runs(self, i, array):
        """The runs of integrations i, i + 1, ...: ``array`` holds one (ngroups, ny, nx) or
        several (k, ngroups, ny, nx); within a block, consecutive integrations are one run."""
        planes = [plane for ramp in array.reshape((-1,) + array.shape[-3:]) for plane in ramp]
        return [(self._plane_offset(block, i, 0, block[0]),
                 [plane[block[0]:block[1]] for plane in planes])
                for block in self._blocks]

    def read_integration(self, i, out):
        self._check_out(out)
        self._run(self._integration_runs(i, out), out.nbytes, write=False)

    def write_integration(self, i, array):
        array = self._rows_view(array)
        self._run(self._integration_runs(i, array), array.nbytes, write=True)

    def discard_integration(self, i):
        self.discard_integrations(i, i + 1)

    def discard_integrations(self, i, stop):
        for block in self._blocks:
            _punch_hole(self.fd, self._plane_offset(block, i, 0, block[0]),
                        (stop - i) * self.shape[1] * (block[1] - block[0]) * self._row_bytes)

    def _block_run(self, y0, y1, start, stop):
        """``(offset, nbytes)`` of integrations ``start .. stop - 1`` of the block of rows ``y0 ..
        y1 - 1`` in the file (one run of it), or None when the rows are not a block of the
        layout or the integrations are out of range."""
        index = y0 // self.block_rows
        if not (0 <= index < len(self._blocks) and self._blocks[index][:2] == (y0, y1)
                and 0 <= start < stop <= self.shape[0]):
            return None
        return (self._plane_offset(self._blocks[index], start, 0, y0),
                (stop - start) * self.shape[1] * (y1 - y0) * self._row_bytes)

    def discard_block(self, y0, y1, start, stop):
        """Free the pages of what ``map_block(y0, y1, start, stop)`` maps."""
        run = self._block_run(y0, y1, start, stop)
        if run is not None:
            _punch_hole(self.fd, *run)

    def map_block(self, y0, y1, start, stop):
        """Integrations ``start .. stop - 1`` of the block of rows ``y0 .. y1 - 1`` (a block of
        the layout) as a (stop - start, ngroups, y1 - y0, nx) array mapped from the file
        copy-on-write; None when the rows are not a block of the layout or the system cannot
        map the file. Nothing is copied: the kernels read the pages of the file's cache where
        they are, and what is written to the array stays in this process (the file is not
        changed). The mapping goes when the array and its views do."""
        run = self._block_run(y0, y1, start, stop)
        if not MAP_FILES or self.fd is None or run is None:
            return None
        offset, nbytes = run
        aligned = offset - offset % mmap.ALLOCATIONGRANULARITY
        try:
            mapping = mmap.mmap(self.fd, offset - aligned + nbytes, access=mmap.ACCESS_COPY,
                                offset=aligned)
        except (OSError, ValueError):   # no address space left, a file system without maps:
            # the caller copies instead
            return None
        return np.frombuffer(mapping, self.dtype, nbytes // self.dtype.itemsize,
                             offset - aligned).reshape(stop - start, self.shape[1], y1 - y0,
                                                       self.shape[3])

    def read_block(self, y0, y1, start, out):
        """Copy what :meth:`map_block` maps into ``out`` (k, ngroups, y1 - y0, nx) (for the
        integrations from ``start`` on): one run of the file."""
        run = self._block_run(y0, y1, start, start + out.shape[0])
        if run is None or out.shape[1:] != (self.shape[1], y1 - y0, self.shape[3]):
            raise Ramp2SlopeError(f"scratch read of rows {y0}..{y1 - 1}: not a block of the "
                                  f"layout, or a buffer of shape {out.shape}")
        self._check_out(out)
        self._run([(run[0], [out])], out.nbytes, write=False)

    def copy_rows(self, y0, out=None, source=None):
        """Rows ``y0 .. y0 + rows - 1`` of every plane: into ``out`` (nints, ngroups, rows, nx),
        or from ``source`` of that shape (or a view of rows of such an array) into the file."""
        write = out is None
        array = self._rows_view(source) if write else out
        if not write:
            self._check_out(out)
        nints, ngroups = self.shape[:2]
        y1 = y0 + array.shape[2]
        runs = []
        for block in self._blocks:
            lo, hi = max(y0, block[0]), min(y1, block[1])
            if lo >= hi:
                continue
            whole = array[:, :, lo - y0:hi - y0]
            if (lo, hi) == block[:2] and whole.flags.c_contiguous:   # the block's own buffer
                runs.append((block[2], [whole]))
                continue
            planes = [array[i, g, lo - y0:hi - y0] for i in range(nints) for g in range(ngroups)]
            if (lo, hi) == block[:2]:
                runs.append((block[2], planes))
            else:   # part of a block: each plane's rows are a run of their own
                runs.extend((self._plane_offset(block, i, g, lo), [planes[i * ngroups + g]])
                            for i in range(nints) for g in range(ngroups))
        self._run(runs, array.shape[2] * nints * ngroups * self._row_bytes, write)


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

    def copy_rows(self, y0, out=None, source=None):
        """As :meth:`_RampFileInRowBlocks.copy_rows`."""
        rows = (out if out is not None else source).shape[2]
        if out is not None:
            out[...] = self.array()[:, :, y0:y0 + rows]
        else:
            self.array()[:, :, y0:y0 + rows] = source

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
    bytes that may be held in memory (None: :func:`default_memory_budget`). ``block_rows``: the
    rows of the blocks that :meth:`read_rows` and :meth:`write_gdq_rows` will move, for which
    the files are laid out (None: the whole frame is one block).
    """

    def __init__(self, parent, shape, zeroframe=False, memory_budget=None, block_rows=None):
        self.shape = tuple(int(n) for n in shape)
        nints, ngroups, ny, nx = self.shape
        self.block_rows = max(1, min(ny, int(block_rows or ny)))
        self._budget = default_memory_budget() if memory_budget is None else int(memory_budget)
        try:
            remove_stale_scratch(parent)
            self.folder = tempfile.mkdtemp(prefix=_owner_prefix(), dir=parent)
        except OSError as exc:
            raise Ramp2SlopeError(f"cannot create scratch files in {parent}: "
                                  f"{exc.strerror or exc}") from None
        self._files = []
        try:
            self._gdq = self._file("groupdq.u8", self.shape, np.uint8, self.block_rows)
            self._zf = self._file("zeroframe.f32", (nints, ny, nx), np.float32) if zeroframe else None
            self._data = self._file("sci.f32", self.shape, np.float32, self.block_rows)
        except OSError as exc:
            self.close()
            raise Ramp2SlopeError(f"cannot create scratch files in {parent}: "
                                  f"{exc.strerror or exc}") from None
        except BaseException:
            self.close()
            raise

    def _file(self, name, shape, dtype, block_rows=None):
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if nbytes <= self._budget:
            self._budget -= nbytes
            array_file = _ArrayMemory(shape, dtype)
        elif block_rows is not None:
            array_file = _RampFileInRowBlocks(os.path.join(self.folder, name), shape, dtype,
                                              block_rows)
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
        for store, array in ((self._data, data), (self._gdq, groupdq), (self._zf, zeroframe)):
            if array is not None:
                store.write_integration(i, array)

    def write_integrations(self, start, data=None, groupdq=None, zeroframe=None):
        """Store integrations start, start + 1, ... from (k, ngroups, ny, nx) and (k, ny, nx)
        arrays (each one only when given): as write_integration, in fewer, larger transfers."""
        for store, array in ((self._data, data), (self._gdq, groupdq), (self._zf, zeroframe)):
            if array is not None:
                if array.ndim != len(store.shape) or array.shape[1:] != store.shape[1:] \
                        or not 0 <= start <= store.shape[0] - array.shape[0]:
                    raise Ramp2SlopeError(f"scratch write of integrations {start}.. needs arrays "
                                          f"of shape (k,) + {store.shape[1:]}, got {array.shape}")
                store.write_integration(start, array)

    def read_integration(self, i, data=None, groupdq=None, zeroframe=None):
        """Fill the given buffers with integration i."""
        for store, out in ((self._data, data), (self._gdq, groupdq), (self._zf, zeroframe)):
            if out is not None:
                store.read_integration(i, out)

    def read_integrations(self, start, stop, data=None, groupdq=None, zeroframe=None):
        """Fill the given buffers, of shapes (stop - start, ngroups, ny, nx) and (stop - start,
        ny, nx), with integrations start .. stop - 1 (fewer, larger transfers than one by one)."""
        for store, out in ((self._data, data), (self._gdq, groupdq), (self._zf, zeroframe)):
            if out is not None:
                if out.shape != (stop - start,) + store.shape[1:]:
                    raise Ramp2SlopeError(f"scratch read of integrations {start}..{stop - 1} "
                                          f"needs a buffer of shape {(stop - start,) + store.shape[1:]}, "
                                          f"got {out.shape}")
                store.read_integration(start, out)

    def discard_integration(self, i):
        """Integration i will not be read again: the file pages holding it are freed at once,
        so that the products written next take those pages rather than new ones (new pages
        are slow to come by where the host backs the memory of a virtual machine)."""
        self.discard_integrations(i, i + 1)

    def discard_integrations(self, start, stop):
        """As discard_integration, for integrations start .. stop - 1."""
        for store in (self._data, self._gdq, self._zf):
            if store is not None:
                store.discard_integrations(start, stop)

    def read_gdq(self, i, out):
        self._gdq.read_integration(i, out)

    def write_gdq(self, i, groupdq):
        self._gdq.write_integration(i, groupdq)

    # -- blocks of rows across every integration ---------------------------------------------------
    def read_rows(self, y0, y1, data, groupdq):
        """Fill (nints, ngroups, y1 - y0, nx) buffers with rows y0..y1-1 (``data`` may be None).
        Fastest for whole blocks of ``block_rows`` rows."""
        for store, out in ((self._data, data), (self._gdq, groupdq)):
            if out is not None:
                store.copy_rows(y0, out=out)

    @property
    def maps_rows(self):
        """Whether :meth:`map_rows` can give the blocks of rows (files laid out in blocks, on a
        system that maps files)."""
        return MAP_FILES and all(isinstance(store, _RampFileInRowBlocks)
                                 for store in (self._data, self._gdq))

    def discard_rows(self, y0, y1, start=0, stop=None):
        """As :meth:`discard_integrations`, for rows y0 .. y1 - 1 (a block of ``block_rows``;
        other rows are left) of integrations ``start .. stop - 1`` (default: all)."""
        stop = self.shape[0] if stop is None else stop
        for store in (self._data, self._gdq):
            if isinstance(store, _RampFileInRowBlocks):
                store.discard_block(y0, y1, start, stop)

    def map_run(self, rows, max_bytes=None):
        """How many integrations of ``rows`` rows to map at once (at least one): as many as
        fit in ``max_bytes`` (default MAP_WINDOW_BYTES)."""
        nints, ngroups, ny, nx = self.shape
        limit = MAP_WINDOW_BYTES if max_bytes is None else int(max_bytes)
        return max(1, min(nints, limit // max(1, ngroups * rows * nx * 5)))

    def map_rows(self, y0, y1, start=0, stop=None):
        """``(data, groupdq)``: integrations ``start .. stop - 1`` (default: all) of rows ``y0 ..
        y1 - 1``, (stop - start, ngroups, y1 - y0, nx) arrays mapped from the scratch files
        without a copy, or None where the rows are not a block of ``block_rows`` (the last may be
        shorter), the arrays are held in memory, or the system cannot map them. Written to,
        they change in this process only: the store keeps what was stored."""
        stop = self.shape[0] if stop is None else stop
        views = []
        for store in (self._data, self._gdq):
            view = (store.map_block(y0, y1, start, stop)
                    if isinstance(store, _RampFileInRowBlocks) else None)
            if view is None:
                return None
            views.append(view)
        return tuple(views)

    def read_block(self, y0, y1, start, data, groupdq):
        """Fill (k, ngroups, y1 - y0, nx) buffers with integrations ``start .. start + k - 1``
        of the block of rows ``y0 .. y1 - 1``: a copy of what :meth:`map_rows` maps (files laid
        out in blocks only)."""
        for store, out in ((self._data, data), (self._gdq, groupdq)):
            store.read_block(y0, y1, start, out)

    def write_gdq_rows(self, y0, groupdq):
        """Store GROUPDQ rows y0, y0+1, ... from a (nints, ngroups, rows, nx) array or view."""
        self._gdq.copy_rows(y0, source=groupdq)

    def close(self):
        """Close the files and remove the folder."""
        for array_file in self._files:
            array_file.close()
        self._files = []
        shutil.rmtree(self.folder, ignore_errors=True)
