"""Loading reference files as plain arrays, DQ-translated and cut out to the science subarray.

Every loader checks that the file is of the expected type and for the exposure's instrument and
detector, and gives a one-line error naming the file otherwise. Large arrays (the dark) are
memory-mapped and never copied whole.
"""
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits

from ..errors import ReferenceFileError
from .dq_def import translate_dq
from .subarray import cutout, cutout_slices, science_box, subarray_box

_GENERIC = {None, "", "ANY", "GENERIC", "N/A"}


class _RefFile:
    """An open reference file, with its checked primary header and subarray box."""

    def __init__(self, path, reftype, model, memmap=True):
        self.path = path
        self.memmap = memmap
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.hdulist = fits.open(path, memmap=memmap)
                self.header = self.hdulist[0].header
        except Exception as exc:
            raise ReferenceFileError(f"{path}: not a readable FITS file ({str(exc).splitlines()[0]})") from None
        self._check(reftype, model)
        self.index = {}
        for hdu in self.hdulist[1:]:
            self.index.setdefault((hdu.name or "").upper(), hdu)

    def _check(self, reftype, model):
        got = str(self.header.get("REFTYPE", "")).strip().upper()
        if got and got != reftype.upper():
            raise ReferenceFileError(f"{self.path}: is a {got} reference, not {reftype.upper()}")
        for keyword, wanted in (("INSTRUME", model.meta.instrument.name),
                                ("DETECTOR", model.meta.instrument.detector)):
            value = self.header.get(keyword)
            value = str(value).strip().upper() if value is not None else None
            if value not in _GENERIC and wanted and value != str(wanted).upper():
                raise ReferenceFileError(
                    f"{self.path}: {reftype.upper()} reference is for {keyword}={value}, "
                    f"but the exposure has {keyword}={str(wanted).upper()}")

    def hdu(self, name, required=True):
        hdu = self.index.get(name)
        if hdu is None or not hdu.shape:
            if required:
                raise ReferenceFileError(f"{self.path}: no {name} extension")
            return None
        return hdu

    def array(self, name, dtype=np.float32, required=True):
        hdu = self.hdu(name, required)
        if hdu is None:
            return None
        try:
            if self.memmap and ("BZERO" in hdu.header or "BSCALE" in hdu.header):
                # Scaled (unsigned) images cannot be memory-mapped; they are small (DQ).
                with fits.open(self.path, memmap=False) as hdulist:
                    return np.asarray(hdulist[name].data, dtype=dtype)
            return np.asarray(hdu.data, dtype=dtype)
        except Exception as exc:
            raise ReferenceFileError(f"{self.path}: extension {name} cannot be read "
                                     f"({str(exc).splitlines()[0]})") from None

    def table(self, name):
        hdu = self.index.get(name)
        return None if hdu is None else hdu.data

    def dq(self):
        """The DQ array translated to standard flags (None when the file has no DQ)."""
        dq = self.array("DQ", np.uint32, required=False)
        return translate_dq(dq, self.table("DQ_DEF"), self.path)

    def box(self, shape):
        return subarray_box(self.header, shape, self.path)

    def close(self):
        self.hdulist.close()


def _cut(ref, model, *arrays):
    """Cut each array out to the science subarray, using the reference's own box."""
    sci = science_box(model)
    out = []
    for array in arrays:
        if array is None:
            out.append(None)
            continue
        box = ref.box(array.shape)
        out.append(np.ascontiguousarray(cutout(array, box, sci, ref.path)))
    return out


def _require_shape(ref, array, model, what):
    if array is not None and array.shape[-2:] != model.shape[-2:]:
        raise ReferenceFileError(f"{ref.path}: {what} is {array.shape[-2]}x{array.shape[-1]}, "
                                 f"the science data are {model.shape[-2]}x{model.shape[-1]}")


@dataclass
class MaskRef:
    path: str
    dq: np.ndarray


def load_mask(path, model):
    ref = _RefFile(path, "MASK", model)
    try:
        (dq,) = _cut(ref, model, ref.dq())
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
        data = ref.array("SCI")
        dq = ref.dq()
        data, dq = _cut(ref, model, data, dq)
        _require_shape(ref, data, model, "SCI")
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
        data, dq = _cut(ref, model, ref.array("SCI"), ref.dq())
        _require_shape(ref, data, model, "SCI")
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
        coeffs = ref.array("COEFFS")
        if coeffs.ndim != 3:
            raise ReferenceFileError(f"{path}: COEFFS must be 3-D (ncoeffs, ny, nx), got {coeffs.shape}")
        inv = ref.array("INV_COEFFS", required=False)
        coeffs, inv, dq = _cut(ref, model, coeffs, inv, ref.dq())
        _require_shape(ref, coeffs, model, "COEFFS")
        if dq is None:
            dq = np.zeros(coeffs.shape[-2:], np.uint32)
        return LinearityRef(path, coeffs, inv, dq)
    finally:
        ref.close()


@dataclass
class DarkRef:
    """A dark, memory-mapped: ``data`` planes are read from disk only when used."""
    path: str
    data: np.ndarray
    dq: np.ndarray
    nframes: int
    groupgap: int
    ngroups: int
    average_dark_current: np.ndarray = None
    average_dark_current_keyword: float = None
    _ref: object = field(default=None, repr=False)

    def close(self):
        if self._ref is not None:
            self._ref.close()
            self._ref = None


def load_dark(path, model):
    ref = _RefFile(path, "DARK", model, memmap=True)
    hdu = ref.hdu("SCI")
    if len(hdu.shape) != 3:
        ref.close()
        raise ReferenceFileError(f"{path}: SCI must be 3-D (ngroups, ny, nx), got {hdu.shape}")
    if hdu.shape[-2:] != model.shape[-2:]:
        ref.close()
        raise ReferenceFileError(
            f"{path}: dark is {hdu.shape[-2]}x{hdu.shape[-1]} but the science data are "
            f"{model.shape[-2]}x{model.shape[-1]} (darks are not cut out: use a dark for this subarray)")
    data = hdu.data  # memory-mapped, big-endian float32; planes are converted when used
    dq = ref.dq()
    if dq is None:
        dq = np.zeros(hdu.shape[-2:], np.uint32)
    elif dq.ndim == 3:
        dq = dq[0]
    avg = ref.array("AVDRKCUR", required=False)
    header = ref.header
    keyword = header.get("AVDRKCUR")
    return DarkRef(
        path=path, data=data, dq=np.ascontiguousarray(dq),
        nframes=int(header.get("NFRAMES", 1)), groupgap=int(header.get("GROUPGAP", 0)),
        ngroups=int(header.get("NGROUPS", hdu.shape[0])),
        average_dark_current=avg,
        average_dark_current_keyword=None if keyword is None else float(keyword),
        _ref=ref)


def load_dark_resident(path, model):
    """:func:`load_dark` with the SCI planes read into memory (native float32) and the file
    closed, for a dark that is used many times (once per integration)."""
    dark = load_dark(path, model)
    try:
        dark.data = np.ascontiguousarray(dark.data, dtype=np.float32)
    finally:
        dark.close()
    return dark


@dataclass
class GainRef:
    path: str
    data: np.ndarray
    gain_factor: float = None


def load_gain(path, model):
    ref = _RefFile(path, "GAIN", model)
    try:
        (data,) = _cut(ref, model, ref.array("SCI"))
        _require_shape(ref, data, model, "SCI")
        factor = ref.header.get("GAINFACT")
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
        (data,) = _cut(ref, model, ref.array("SCI"))
        _require_shape(ref, data, model, "SCI")
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
        kernel = ref.array("SCI")
        if kernel.ndim == 4 and model.shape[-2:] != kernel.shape[-2:]:
            (kernel,) = _cut(ref, model, kernel)
        elif kernel.ndim not in (2, 4):
            raise ReferenceFileError(f"{path}: IPC kernel must be 2-D or 4-D, got {kernel.shape}")
        return IPCRef(path, np.ascontiguousarray(kernel))
    finally:
        ref.close()


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
    ref = _RefFile(path, reftype, model, memmap=True)
    try:
        hdu = ref.hdu(_PRIMARY_EXTENSION.get(reftype.lower(), "SCI"))
        shape = hdu.shape
        if reftype.lower() == "ipc":
            return
        if reftype.lower() == "dark":
            if tuple(shape[-2:]) != tuple(model.shape[-2:]):
                raise ReferenceFileError(
                    f"{path}: dark is {shape[-2]}x{shape[-1]} but the science data are "
                    f"{model.shape[-2]}x{model.shape[-1]} (darks are not cut out: use a dark for "
                    f"this subarray)")
            return
        cutout_slices(shape, ref.box(shape), science_box(model), path)
    finally:
        ref.close()
