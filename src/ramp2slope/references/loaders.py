"""Loading reference files as plain arrays, DQ-translated and cut out to the science subarray.

Every loader checks that the file is of the expected type and for the exposure's instrument and
detector, and gives a one-line error naming the file otherwise. Image data are read straight
from the file into native arrays, only the rows and planes that are used (a subarray exposure
reads its window of a full-frame reference, not the whole array); the dark is read plane by
plane when the step needs it.
"""
import logging
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits

from ..errors import ReferenceFileError
from .dq_def import translate_dq
from ..datamodels.raw_image import ImageLayout
from ..datamodels.irs2_layout import science_shape
from .subarray import FULL_SIZE, cutout_slices, science_box, subarray_box

_GENERIC = {None, "", "ANY", "GENERIC", "N/A"}

log = logging.getLogger("ramp2slope")

# (path, mtime, cause) of every suspicious-values warning already given: once per file version,
# however many steps and integrations load the reference.
_WARNED = set()

# Files the user named as a step's override_<reftype>. jwst uses such a file whatever its header
# says, and its own unit tests rely on that (NIRCam gains handed to a MIRI ramp, a gain saved with
# REFTYPE=FILLER). For these, another instrument or a type no detector1 step asks for is a
# warning. Another detector, or the type of another detector1 reference, stays an error as for
# any file: those are the usual slips (a neighbouring detector's file, the wrong file in the
# argument) and would give wrong numbers with no other sign.
_CHOSEN_BY_USER = set()
_DETECTOR1_REFTYPES = {"MASK", "SATURATION", "SUPERBIAS", "REFPIX", "SIRSKERNEL", "LINEARITY",
                       "DARK", "GAIN", "READNOISE", "IPC", "PERSAT", "TRAPDENSITY", "TRAPPARS",
                       "FLAT", "PICTUREFRAME", "EMICORR", "RESET", "RSCD"}


def chosen_by_user(path):
    """Record that ``path`` was named explicitly by the user (an ``override_<reftype>``)."""
    _CHOSEN_BY_USER.add(os.path.abspath(path))


def warn_values(path, cause, count, consequence):
    """Warn once that ``count`` pixels of a reference have values that cannot be right.

    The values are used as the official pipeline uses them (the products keep its numbers);
    the warning says how many pixels are affected and what becomes of them.
    """
    if count:
        _warn_once(path, cause, f"{count} pixel(s) with {cause}; {consequence}")


def _warn_once(path, cause, message):
    try:
        key = (path, os.path.getmtime(path), cause)
    except OSError:
        key = (path, None, cause)
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning("%s: %s", path, message)


class _RefFile:
    """An open reference file, with its checked primary header and subarray box.

    astropy parses the headers; image data are read straight from the file (:mod:`ramp2slope.datamodels.raw_image`),
    only the part that is used, unless the layout needs astropy's unscaling.
    """

    def __init__(self, path, reftype, model, memmap=True):
        self.path = path
        self.memmap = memmap
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.hdulist = fits.open(path, memmap=memmap)
                self.header = self.hdulist[0].header
                self.index = {}
                for hdu in self.hdulist[1:]:
                    self.index.setdefault((hdu.name or "").upper(), hdu)
        except Exception as exc:
            raise ReferenceFileError(f"{path}: not a readable FITS file ({str(exc).splitlines()[0]})") from None
        self._check_complete()
        self._check(reftype, model)

    def _check_complete(self):
        """astropy silently stops at a header cut short by truncation: catch that here (data cut
        short are caught when read)."""
        try:
            last = len(self.hdulist) - 1
            # the HDU's own fileinfo: the list's would also turn every header into text to
            # tell whether the file was resized, which a file opened to read never is
            info = self.hdulist[last].fileinfo()
            end = info["datLoc"] + info["datSpan"]  # padded to 2880 bytes
            if isinstance(self.hdulist[last], fits.CompImageHDU):  # size: of the image
                data_end = end - 2879
            else:
                data_end = info["datLoc"] + int(self.hdulist[last].size)
            with open(self.path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(end)
                tail = handle.read(8)
        except Exception:
            return
        problem = None
        if tail == b"XTENSION":
            problem = f"it ends inside the header of extension {last + 1}"
        elif size < data_end:
            problem = f"it ends inside the data of extension {last} ({size} bytes of {data_end})"
        if problem:
            self.hdulist.close()
            raise ReferenceFileError(f"{self.path}: the file is truncated ({problem})")

    def _check(self, reftype, model):
        named = os.path.abspath(self.path) in _CHOSEN_BY_USER
        tolerated = []  # (problem) a named override may have
        got = str(self.header.get("REFTYPE", "")).strip().upper()
        if got and got != reftype.upper():
            problem = f"is a {got} reference, not {reftype.upper()}"
            if not named or got in _DETECTOR1_REFTYPES:
                raise ReferenceFileError(f"{self.path}: {problem}")
            tolerated.append(problem)
        for keyword, wanted in (("INSTRUME", model.meta.instrument.name),
                                ("DETECTOR", model.meta.instrument.detector)):
            value = self.header.get(keyword)
            value = str(value).strip().upper() if value is not None else None
            if value not in _GENERIC and wanted and value != str(wanted).upper():
                problem = (f"{reftype.upper()} reference is for {keyword}={value}, "
                           f"but the exposure has {keyword}={str(wanted).upper()}")
                if not named or keyword == "DETECTOR":
                    raise ReferenceFileError(f"{self.path}: {problem}")
                tolerated.append(problem)
        for problem in tolerated:
            _warn_once(self.path, problem,
                       f"{problem}; used as given, because it was named as override_{reftype.lower()}")

    def hdu(self, name, required=True):
        hdu = self.index.get(name)
        if hdu is None or not hdu.shape:
            if required:
                raise ReferenceFileError(f"{self.path}: no {name} extension")
            return None
        return hdu

    def image(self, name, required=True):
        """The :class:`~ramp2slope.datamodels.raw_image.ImageLayout` of extension ``name`` (None when absent and not required)."""
        hdu = self.hdu(name, required)
        return None if hdu is None else ImageLayout(self.path, hdu, error=ReferenceFileError)

    def _astropy_data(self, name):
        hdu = self.index[name]
        if "BZERO" in hdu.header or "BSCALE" in hdu.header:
            # Scaled images cannot be memory-mapped: read this extension alone, unscaled.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with fits.open(self.path, memmap=False) as hdulist:
                    for other in hdulist[1:]:
                        if (other.name or "").upper() == name:
                            return np.array(other.data)
        return hdu.data

    def read(self, name, dtype=np.float32, required=True, window=None, planes=None, out=None):
        """Extension ``name`` as a contiguous native ``dtype`` array, None when absent.

        ``window``: (rows, cols) slices of the last two axes, read alone; ``planes``: an int or a
        slice of the first axis (see :meth:`~ramp2slope.datamodels.raw_image.ImageLayout.read`).
        """
        image = self.image(name, required)
        if image is None:
            return None
        rows, cols = window if window is not None else (None, None)
        try:
            if image.fast:
                return image.read(dtype, planes=planes, rows=rows, cols=cols, out=out)
            data = self._astropy_data(name)
            if planes is not None:
                data = data[planes]
            data = data[..., rows or slice(None), cols or slice(None)]
            if out is not None:
                out[...] = data
                return out
            return np.ascontiguousarray(data, dtype=dtype)
        except ReferenceFileError:
            raise
        except Exception as exc:
            raise ReferenceFileError(f"{self.path}: extension {name} cannot be read "
                                     f"({str(exc).splitlines()[0]})") from None

    def array(self, name, dtype=np.float32, required=True):
        """The whole extension (see :meth:`read`)."""
        return self.read(name, dtype, required)

    def window(self, name, model, required=True):
        """The (rows, cols) slices of extension ``name`` that cover the science subarray (None:
        the whole array), from the headers only."""
        hdu = self.hdu(name, required)
        if hdu is None:
            return None
        shape = hdu.shape
        box = self.box(shape)
        sci = science_box(model)
        if tuple(box) == tuple(sci):
            return None
        return cutout_slices(shape, box, sci, self.path)

    def cut(self, name, model, dtype=np.float32, required=True):
        """Extension ``name`` cut out to the science subarray; only those rows are read."""
        hdu = self.hdu(name, required)
        if hdu is None:
            return None
        if _substriped(model) and tuple(self.box(hdu.shape)) != tuple(science_box(model)):
            return self._stripe_cut(self.read(name, dtype, required), model)
        return self.read(name, dtype, required, window=self.window(name, model))

    def _stripe_cut(self, array, model):
        """A full-height reference cut as a multistripe readout reads the detector (jwst's
        ``get_multistripe_subarray_model``): the rows of each stripe, the reference rows first."""
        from .stripes import StripeLayout, stripe_reference

        layout = StripeLayout.from_model(model)
        xstart, ystart, xsize, ysize = self.box(array.shape)
        slow = (ystart, ysize) if abs(layout.fastaxis) == 1 else (xstart, xsize)
        if slow != (1, FULL_SIZE):
            raise ReferenceFileError(f"{self.path}: a multistripe exposure needs a reference "
                                     f"covering the whole slow axis (start 1, size {FULL_SIZE}), "
                                     f"not {slow}")
        fast_start = xstart if abs(layout.fastaxis) == 1 else ystart
        try:
            return stripe_reference(array, layout, fast_start)
        except (ValueError, IndexError) as exc:
            raise ReferenceFileError(f"{self.path}: does not cover the multistripe subarray "
                                     f"({exc})") from None

    def table(self, name):
        hdu = self.index.get(name)
        if hdu is None:
            return None
        try:
            return hdu.data
        except Exception as exc:
            raise ReferenceFileError(f"{self.path}: extension {name} cannot be read "
                                     f"({str(exc).splitlines()[0]})") from None

    def dq(self, model=None, plane=None):
        """The DQ array translated to standard flags (None when the file has no DQ), cut out to
        the science subarray when ``model`` is given; ``plane`` selects one plane of a 3-D DQ."""
        hdu = self.hdu("DQ", required=False)
        if hdu is None:
            return None
        planes = plane if (plane is not None and len(hdu.shape) == 3) else None
        if (model is not None and _substriped(model)
                and tuple(self.box(hdu.shape)) != tuple(science_box(model))):
            dq = self._stripe_cut(self.read("DQ", np.uint32, planes=planes), model)
        else:
            window = self.window("DQ", model) if model is not None else None
            dq = self.read("DQ", np.uint32, window=window, planes=planes)
        return translate_dq(dq, self.table("DQ_DEF"), self.path, inplace=True)

    def box(self, shape):
        return subarray_box(self.header, shape, self.path)

    def close(self):
        self.hdulist.close()


def _substriped(model):
    """A multistripe readout without superstripes (NIRCam DHS): references are cut by stripes.
    (Superstripe exposures cut theirs into one plane per stripe: ``references/striped.py``.)"""
    sub = model.meta.subarray
    return sub.multistripe_reads1 is not None and not int(sub.num_superstripe or 0) > 0


def _require_shape(ref, array, model, what, expected=None):
    expected = tuple(model.shape[-2:]) if expected is None else tuple(expected)
    if array is not None and array.shape[-2:] != expected:
        raise ReferenceFileError(f"{ref.path}: {what} is {array.shape[-2]}x{array.shape[-1]}, "
                                 f"the science data are {expected[0]}x{expected[1]}")


@dataclass
class MaskRef:
    path: str
    dq: np.ndarray


def load_mask(path, model):
    ref = _RefFile(path, "MASK", model)
    try:
        dq = ref.dq(model)
        if dq is None:
            raise ReferenceFileError(f"{path}: no DQ extension")
        _require_shape(ref, dq, model, "DQ")
        return MaskRef(path, dq)
    finally:
        ref.close()


@dataclass
class SaturationRef:
    path: str
    threshold: np.ndarray
    dq: np.ndarray


def load_saturation(path, model):
    ref = _RefFile(path, "SATURATION", model)
    try:
        data = ref.cut("SCI", model)
        # an IRS2 threshold covers the science pixels only, not the interleaved reference samples
        _require_shape(ref, data, model, "SCI", science_shape(model))
        dq = ref.dq(model)
        if dq is None:
            dq = np.zeros(data.shape, np.uint32)
        return SaturationRef(path, data, dq)
    finally:
        ref.close()


@dataclass
class SuperbiasRef:
    path: str
    data: np.ndarray
    dq: np.ndarray


def load_superbias(path, model):
    ref = _RefFile(path, "SUPERBIAS", model)
    try:
        data = ref.cut("SCI", model)
        _require_shape(ref, data, model, "SCI")
        dq = ref.dq(model)
        if dq is None:
            dq = np.zeros(data.shape, np.uint32)
        return SuperbiasRef(path, data, dq)
    finally:
        ref.close()


@dataclass
class LinearityRef:
    path: str
    coeffs: np.ndarray
    inv_coeffs: np.ndarray
    dq: np.ndarray


def load_linearity(path, model):
    ref = _RefFile(path, "LINEARITY", model)
    try:
        shape = ref.hdu("COEFFS").shape
        if len(shape) != 3:
            raise ReferenceFileError(f"{path}: COEFFS must be 3-D (ncoeffs, ny, nx), got {shape}")
        coeffs = ref.cut("COEFFS", model)
        _require_shape(ref, coeffs, model, "COEFFS")
        # The inverse coefficients serve only the read-level path, for NFRAMES > 1; jwst's
        # multistripe cut-out does not carry them (its read-level path is then off)
        nframes = model.meta.exposure.nframes or 1
        striped = _substriped(model) and tuple(ref.box(shape)) != tuple(science_box(model))
        inv = (ref.cut("INV_COEFFS", model, required=False)
               if int(nframes) > 1 and not striped else None)
        dq = ref.dq(model)
        if dq is None:
            dq = np.zeros(coeffs.shape[-2:], np.uint32)
        warn_values(path, "non-finite linearity coefficients (inf or NaN)",
                    int(np.count_nonzero(~np.isfinite(coeffs).all(axis=0))),
                    "their corrected ramps are NaN, and so are their rates (flagged DO_NOT_USE)")
        return LinearityRef(path, coeffs, inv, dq)
    finally:
        ref.close()


#: No detector's dark current reaches this many DN within a ramp (the ADC's range is 65535).
DARK_PLAUSIBLE_DN = 1e6


class DarkPlanes:
    """The dark's SCI array, read plane by plane from the file (never held whole).

    Has ``shape``, ``ndim`` and ``dtype`` (float32) like an array; :meth:`read_plane` reads one
    plane into a native float32 buffer, ``np.asarray`` reads everything. A MIRI dark is 4-D
    (integration, group, y, x): a plane is then ``(integration, group)``, and
    :meth:`integration` gives one integration as a 3-D dark read the same way.
    """

    def __init__(self, ref, name="SCI"):
        self._ref = ref
        self._name = name
        self.path = ref.path
        self.shape = tuple(int(n) for n in ref.hdu(name).shape)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(np.float32)
        image = ref.image(name)
        self._image = image if image.fast else None

    def read_plane(self, p, out=None):
        """Plane ``p`` (an int, or ``(integration, group)`` for a 4-D dark) as a native float32
        (ny, nx) array (``out`` when given)."""
        if out is None:
            out = np.empty(self.shape[-2:], np.float32)
        p = tuple(int(i) for i in p) if isinstance(p, tuple) else int(p)
        if self._image is not None:
            self._image.read(np.float32, planes=p, out=out)
        else:
            # a scaled layout (not used by real darks): unscaled by astropy once, kept in memory
            if getattr(self, "_whole", None) is None:
                self._whole = self._ref.read(self._name, np.float32)
            out[...] = self._whole[p]
        # max and min make no temporary arrays (NaN propagates through both); pixels are
        # counted only in a plane that has such values
        if not -DARK_PLAUSIBLE_DN <= out.min() <= out.max() <= DARK_PLAUSIBLE_DN:
            warn_values(self.path, "dark values that are NaN or beyond 1e6 DN",
                        int(np.count_nonzero(~(np.abs(out) <= DARK_PLAUSIBLE_DN))),
                        f"(counted in plane {p}) subtracted as they are (as jwst does): "
                        f"their ramps and rates are NaN or meaningless")
        return out

    def read_all(self):
        if self._image is not None:
            return self._image.read(np.float32)
        return self._ref.read(self._name, np.float32)

    def integration(self, i):
        """Integration ``i`` of a 4-D dark, as a 3-D dark read plane by plane."""
        return _DarkIntegration(self, int(i))

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self.read_plane(index)
        return self.read_all()[index]

    def __array__(self, dtype=None, copy=None):
        data = self.read_all()
        return data if dtype is None else data.astype(dtype, copy=False)


class _DarkIntegration:
    """One integration of a 4-D :class:`DarkPlanes` (same interface, 3-D)."""

    def __init__(self, planes, i):
        self._planes = planes
        self._i = i
        self.path = planes.path
        self.shape = planes.shape[1:]
        self.ndim = 3
        self.dtype = planes.dtype

    def read_plane(self, p, out=None):
        return self._planes.read_plane((self._i, int(p)), out)

    def read_all(self):
        out = np.empty(self.shape, np.float32)
        for p in range(self.shape[0]):
            self.read_plane(p, out[p])
        return out

    def __len__(self):
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        data = self.read_all()
        return data if dtype is None else data.astype(dtype, copy=False)


@dataclass
class DarkRef:
    """A dark whose ``data`` (a :class:`DarkPlanes`) is read from the file plane by plane.

    ``derived`` keeps what the dark step computes from it (the dark of each science group), so
    that a dark shared for a run (one load, several integrations) is averaged only once.

    A MIRI dark (``nints`` not None) has a 4-D ``data``, one dark ramp per integration; ``dq``
    is then the OR of the DQ planes ``[i, 0]`` of its integrations (what stcal flags the
    science PIXELDQ with), and :meth:`full_dq` reads the whole 4-D DQ."""
    path: str
    data: object
    dq: np.ndarray
    nframes: int
    groupgap: int
    ngroups: int
    average_dark_current: np.ndarray = None
    average_dark_current_keyword: float = None
    nints: int = None
    derived: dict = field(default_factory=dict, repr=False)
    _ref: object = field(default=None, repr=False)

    def full_dq(self):
        """The reference DQ as stored (translated to standard flags); for a MIRI dark 4-D, zeros
        of the SCI shape when the file has none. Read from the file on each call."""
        if self.nints is None or self._ref is None:
            return self.dq
        dq = self._ref.dq()
        return np.zeros(self.data.shape, np.uint32) if dq is None else dq

    def close(self):
        self.derived.clear()
        if self._ref is not None:
            self._ref.close()
            self._ref = None


def _miri_dark_dq(ref, shape):
    """The OR over the dark's integrations of their DQ planes ``[i, 0]`` (stcal's collapse of a
    4-D dark DQ), translated plane by plane; zeros when the file has no DQ."""
    hdu = ref.hdu("DQ", required=False)
    nints = shape[0]
    if hdu is None:
        return np.zeros(shape[-2:], np.uint32)
    if len(hdu.shape) != 4 or hdu.shape[0] < nints or tuple(hdu.shape[-2:]) != tuple(shape[-2:]):
        raise ReferenceFileError(f"{ref.path}: DQ must be 4-D with at least {nints} integrations "
                                 f"of {shape[-2]}x{shape[-1]} pixels, got {hdu.shape}")
    table = ref.table("DQ_DEF")
    out = None
    for i in range(nints):
        plane = translate_dq(ref.read("DQ", np.uint32, planes=(i, 0)), table, ref.path,
                             inplace=True)
        out = plane if out is None else out | plane
    return np.ascontiguousarray(out, dtype=np.uint32)


def load_dark(path, model):
    ref = _RefFile(path, "DARK", model, memmap=True)
    try:
        hdu = ref.hdu("SCI")
        miri = str(model.meta.instrument.name or "").strip().upper() == "MIRI"
        if miri and len(hdu.shape) != 4:
            raise ReferenceFileError(f"{path}: a MIRI dark's SCI must be 4-D (nints, ngroups, ny, "
                                     f"nx), got {hdu.shape}")
        if not miri and len(hdu.shape) != 3:
            raise ReferenceFileError(f"{path}: SCI must be 3-D (ngroups, ny, nx), got {hdu.shape}")
        if miri and 0 in hdu.shape[:2]:
            raise ReferenceFileError(f"{path}: SCI has no planes (shape {hdu.shape})")
        if hdu.shape[-2:] != model.shape[-2:]:
            raise ReferenceFileError(
                f"{path}: dark is {hdu.shape[-2]}x{hdu.shape[-1]} but the science data are "
                f"{model.shape[-2]}x{model.shape[-1]} (darks are not cut out: use a dark for "
                f"this subarray)")
        image = ref.image("SCI")
        if image.fast:  # fail now, with the file named, rather than in the middle of the step
            size = os.path.getsize(path)
            if image.offset + image.nbytes > size:
                raise image._truncated(size)
        if miri:
            dq = _miri_dark_dq(ref, tuple(hdu.shape))
        else:
            dq = ref.dq(plane=0)
            if dq is None:
                dq = np.zeros(hdu.shape[-2:], np.uint32)
        avg = ref.read("AVDRKCUR", required=False)
        header = ref.header
        keyword = header.get("AVDRKCUR")
        return DarkRef(
            path=path, data=DarkPlanes(ref), dq=np.ascontiguousarray(dq),
            nframes=int(header.get("NFRAMES", 1)), groupgap=int(header.get("GROUPGAP", 0)),
            ngroups=int(header.get("NGROUPS", hdu.shape[-3])),
            average_dark_current=avg,
            average_dark_current_keyword=None if keyword is None else float(keyword),
            nints=int(hdu.shape[0]) if miri else None,
            _ref=ref)
    except BaseException:
        ref.close()
        raise


def load_dark_resident(path, model):
    """Kept for callers of the former API: the same as :func:`load_dark` (the dark is read
    plane by plane, and what is computed from it is kept in ``DarkRef.derived``)."""
    return load_dark(path, model)


@dataclass
class GainRef:
    path: str
    data: np.ndarray
    gain_factor: float = None


def load_gain(path, model):
    ref = _RefFile(path, "GAIN", model)
    try:
        data = ref.cut("SCI", model)
        _require_shape(ref, data, model, "SCI")
        factor = ref.header.get("GAINFACT")
        warn_values(path, "a gain that is zero, negative or NaN", int(np.count_nonzero(~(data > 0))),
                    "their rates are NaN, flagged DO_NOT_USE and NO_GAIN_VALUE")
        return GainRef(path, data, None if factor is None else float(factor))
    finally:
        ref.close()


@dataclass
class ReadnoiseRef:
    path: str
    data: np.ndarray


def load_readnoise(path, model):
    ref = _RefFile(path, "READNOISE", model)
    try:
        data = ref.cut("SCI", model)
        _require_shape(ref, data, model, "SCI")
        warn_values(path, "a read noise that is zero or NaN",
                    int(np.count_nonzero((data == 0) | np.isnan(data))),
                    "their ramps cannot be weighted: NaN rates, flagged DO_NOT_USE")
        return ReadnoiseRef(path, data)
    finally:
        ref.close()


@dataclass
class IPCRef:
    path: str
    kernel: np.ndarray


def load_ipc(path, model):
    ref = _RefFile(path, "IPC", model)
    try:
        shape = ref.hdu("SCI").shape
        if len(shape) == 4 and tuple(model.shape[-2:]) != tuple(shape[-2:]):
            kernel = ref.cut("SCI", model)
        elif len(shape) in (2, 4):
            kernel = ref.read("SCI")
        else:
            raise ReferenceFileError(f"{path}: IPC kernel must be 2-D or 4-D, got {shape}")
        return IPCRef(path, np.ascontiguousarray(kernel))
    finally:
        ref.close()


@dataclass
class IRS2RefpixRef:
    path: str
    irs2_table: object        # fields alpha_0..3, beta_0..3: float32 (real, imag) pairs,
                              # or what load_irs2_refpix's ``derive`` made of them
    dq_table: tuple = None    # the DQ table's (output, odd_even, mask) columns, or None


_IRS2_FIELDS = tuple(f"{kind}_{k}" for kind in ("alpha", "beta") for k in range(4))


def load_irs2_refpix(path, model, derive=None):
    """The REFPIX reference of an IRS2 exposure: its Fourier coefficient table and DQ table.

    ``derive``, when given, is called as ``derive(nrows, rows)`` while the file is open, where
    ``rows(start, stop)`` returns those rows of the IRS2 table (a record array with the checked
    columns), and its result is kept as ``irs2_table`` instead of a copy of the table: for a
    caller that keeps only something computed from it. The table is 93 MB; a table of plain
    float columns is then read from the file piece by piece rather than mapped whole.
    """
    ref = _RefFile(path, "REFPIX", model)
    try:
        table = ref.table("IRS2")
        names = {n.lower(): n for n in (table.columns.names if table is not None else ())}
        missing = [f for f in _IRS2_FIELDS if f not in names]
        if missing:
            raise ReferenceFileError(f"{path}: no IRS2 table with columns {', '.join(_IRS2_FIELDS)}"
                                     f" (missing {', '.join(missing)})")
        if derive is not None:
            rows = _table_row_reader(path, ref.index["IRS2"]) or \
                (lambda start, stop: table[start:stop])
            irs2 = derive(len(table), rows)
        else:
            irs2 = np.empty(len(table), dtype=[(f, np.float32) for f in _IRS2_FIELDS]).view(np.recarray)
            for f in _IRS2_FIELDS:    # one column at a time: no second copy of the table
                irs2[f] = table.field(names[f])
        dq = ref.table("DQ")
        dq_table = None
        if dq is not None and len(dq) > 0:
            try:
                dq_table = tuple(np.array(dq.field(name)) for name in ("output", "odd_even", "mask"))
            except KeyError as exc:
                raise ReferenceFileError(f"{path}: the DQ table has no column {exc}") from None
        return IRS2RefpixRef(path, irs2, dq_table)
    finally:
        ref.close()


def _table_row_reader(path, hdu):
    """``rows(start, stop)`` of a binary table whose columns are all unscaled float scalars,
    read from the file with ``os.pread`` (nothing stays mapped); None for any other table."""
    columns = hdu.columns
    native = columns.dtype
    if any(native[c.name].kind != "f" or native[c.name].shape != () or c.bscale not in (None, 1)
           or c.bzero not in (None, 0) for c in columns):
        return None
    stored = np.dtype([(c.name, native[c.name].newbyteorder(">")) for c in columns])
    if stored.itemsize != hdu.header.get("NAXIS1"):
        return None
    offset = int(hdu.fileinfo()["datLoc"])

    def rows(start, stop):
        out = np.empty(max(stop - start, 0), dtype=stored)
        buffer, got = out.view(np.uint8), 0
        with open(path, "rb") as handle:
            while got < buffer.size:
                n = os.preadv(handle.fileno(), [buffer[got:]], offset + start * stored.itemsize + got)
                if n == 0:
                    break
                got += n
        if got != out.nbytes:
            raise ReferenceFileError(f"{path}: the {hdu.name} table ends before row {stop} "
                                     f"(the file is truncated)")
        return out
    return rows


def describe(path):
    """The value recorded in the R_* keyword: the absolute path (or N/A)."""
    return path if path == "N/A" else os.path.abspath(path)


# The extension whose shape tells what a reference covers.
_PRIMARY_EXTENSION = {"mask": "DQ", "linearity": "COEFFS"}


def check_reference(path, reftype, model):
    """Check, from headers only, that a reference file can serve this exposure.

    Catches a file of the wrong type, instrument or detector, an unreadable file, and one that
    does not cover the science subarray, before any processing starts.
    """
    if reftype.lower() == "emicorr":
        return   # an ASDF file: checked when the EMI correction loads it
    ref = _RefFile(path, reftype, model, memmap=True)
    try:
        if reftype.lower() == "rscd":   # a table per subarray and read pattern
            if ref.table("RSCD_GROUP_SKIP") is None:
                raise ReferenceFileError(f"{path}: no RSCD_GROUP_SKIP table")
            return
        hdu = ref.hdu(_PRIMARY_EXTENSION.get(reftype.lower(), "SCI"))
        shape = hdu.shape
        if reftype.lower() == "ipc" or model.meta.subarray.multistripe_reads1 is not None:
            # striped references are cut by stripes (for superstripes, those after refpix serve
            # the collated ramp): checked when loaded
            return
        if reftype.lower() in ("dark", "reset"):
            # an IRS2 exposure reaches dark_current without its reference samples
            if tuple(shape[-2:]) != science_shape(model):
                raise ReferenceFileError(
                    f"{path}: {reftype.lower()} is {shape[-2]}x{shape[-1]} but the science data "
                    f"are {model.shape[-2]}x{model.shape[-1]} ({reftype.lower()} references are "
                    f"not cut out: use one for this subarray)")
            return
        cutout_slices(shape, ref.box(shape), science_box(model), path)
    finally:
        ref.close()
