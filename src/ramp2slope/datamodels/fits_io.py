"""Reading and writing models as FITS files in the official JWST layout.

Reading converts to the model's dtypes one integration at a time, so that a uint16 raw ramp
becomes float32 without a second full-size temporary. Writing goes to a temporary name in the
destination folder and is renamed into place, so a failed run never leaves a half-written file.
"""
import builtins
import logging
import os
import tempfile
import warnings

import numpy as np
from astropy.io import fits

from .. import __version__
from ..errors import BadInputError
from ..runtime import termination
from ..runtime.owners import owner_tag
from .raw_image import ImageLayout
from .asdf_tree import EXTNAME as ASDF_EXTNAME, AsdfMeta, asdf_records
from .models import (FGS_GUIDE_EXP_TYPES, MODEL_CLASSES, CubeModel, DataModel, GuiderRawModel, ImageModel,
                     RampModel, SuperstripeRampModel)

builtins_open = builtins.open
_IMAGES = (fits.ImageHDU, fits.PrimaryHDU, fits.CompImageHDU)
log = logging.getLogger("ramp2slope")

# Keywords that describe the HDU's own structure; astropy writes them, we never carry them.
_STRUCTURAL = ("XTENSION", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "EXTNAME", "EXTVER", "BZERO",
               "BSCALE", "SIMPLE", "EXTEND", "TFIELDS", "CHECKSUM", "DATASUM")


def _clean_header(header):
    out = fits.Header()
    for card in header.cards:
        key = card.keyword
        if key in _STRUCTURAL or key.startswith("NAXIS") or key[:5] in ("TTYPE", "TFORM", "TUNIT", "TDIM"):
            continue
        if key in ("COMMENT", "HISTORY", ""):
            out.add_comment(card.value) if key == "COMMENT" else (
                out.add_history(card.value) if key == "HISTORY" else None)
            continue
        out.append(card)
    return out


def _open_hdulist(path):
    if not os.path.exists(path):
        raise BadInputError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hdulist = fits.open(path, memmap=False)
            # Touching every header makes astropy notice a truncated or corrupt file now.
            for hdu in hdulist:
                _ = hdu.header
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise BadInputError(f"{path}: not a readable FITS file ({str(exc).splitlines()[0]})") from None
    try:
        _check_complete(path, hdulist)
    except BaseException:
        hdulist.close()
        raise
    return hdulist


def _check_complete(path, hdulist):
    """A one-line error for a file cut short: astropy silently stops at a header cut in the
    middle and reads a table cut short as if it were complete."""
    if getattr(hdulist._file, "compression", None):
        return   # offsets are in the uncompressed stream
    size = os.path.getsize(path)
    last = hdulist[-1].fileinfo()
    end = last["datLoc"] + last["datSpan"]
    if size < end:
        raise BadInputError(f"{path}: the file is truncated ({size} bytes, extension "
                            f"{hdulist[-1].name or len(hdulist) - 1} ends at byte {end})")
    if size > end:
        with builtins_open(path, "rb") as handle:
            handle.seek(end)
            rest = handle.read(min(size - end, 2880))
        if rest.strip(b"\0 "):
            raise BadInputError(f"{path}: the file is truncated (an incomplete extension "
                                f"starts at byte {end})")


def _read_array(path, hdu, dtype):
    """Read an image HDU into a native-endian array of ``dtype`` (see :mod:`.raw_image`)."""
    try:
        if isinstance(hdu, _IMAGES):
            layout = ImageLayout(path, hdu)
            if layout.fast and len(layout.shape) >= 2:
                return layout.read(dtype)
        return np.asarray(hdu.data, dtype=dtype)
    except BadInputError:
        raise
    except Exception as exc:  # astropy raises a variety of errors on truncated data
        raise BadInputError(
            f"{path}: extension {hdu.name} cannot be read, the file may be truncated "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None


def _hdu_index(hdulist):
    index = {}
    for hdu in hdulist[1:]:
        name = (hdu.name or "").upper()
        if name and name not in index:
            index[name] = hdu
    return index


def image_hdus(model, index, path):
    """``(spec, hdu)`` for each of ``model``'s arrays present in the file (``index``: see
    :func:`_hdu_index`). An extension of the wrong rank is skipped, except the primary array's,
    which raises BadInputError."""
    for spec in model.arrays:
        hdu = index.get(spec.extname)
        if hdu is not None and not isinstance(hdu, _IMAGES):
            if spec.attr == model.primary_array:
                raise BadInputError(f"{path}: {spec.extname} is a {type(hdu).__name__}, "
                                    f"not an image")
            log.warning("%s: %s is a %s, not an image; ignored", path, spec.extname,
                        type(hdu).__name__)
            continue
        if hdu is None or not hdu.shape:
            continue
        if len(hdu.shape) != spec.ndim:
            if spec.attr == model.primary_array:
                raise BadInputError(
                    f"{path}: {spec.extname} must have {spec.ndim} dimensions for a "
                    f"{type(model).__name__}, found shape {hdu.shape}")
            log.warning("%s: %s has %d dimensions, not %d; ignored", path, spec.extname,
                        len(hdu.shape), spec.ndim)
            continue
        yield spec, hdu


def read_tables_and_extras(model, hdulist, index, known):
    """Fill ``model``'s tables, and keep the extensions it does not know (to write them back).

    ``known``: the names of the extensions already read (a set, updated)."""
    for name in model.tables:
        extname = model.table_extname(name)
        hdu = index.get(extname)
        if hdu is not None and isinstance(hdu, fits.BinTableHDU):
            known.add(extname)
            model._tables[name] = hdu.data.copy() if hdu.data is not None else None
    extnames = {spec.extname for spec in model.arrays}
    model._extra_hdus[:] = [hdu.copy() for hdu in hdulist[1:]
                            if (hdu.name or "").upper() not in known
                            and not isinstance(hdu, fits.BinTableHDU)
                            and (hdu.name or "").upper() not in extnames]


def read_into(model, path):
    """Fill ``model`` (an instance of any DataModel class) from a FITS file."""
    with _open_hdulist(path) as hdulist:
        index = _hdu_index(hdulist)
        model._headers["PRIMARY"] = _clean_header(hdulist[0].header)
        known = {"ASDF"}
        for spec, hdu in image_hdus(model, index, path):
            known.add(spec.extname)
            model._arrays[spec.attr] = _read_array(path, hdu, spec.dtype)
            model._headers[spec.extname] = _clean_header(hdu.header)
        read_tables_and_extras(model, hdulist, index, known)
        model._asdf_meta = AsdfMeta.from_hdulist(hdulist)
    model._path = path
    if model.primary_array is not None and model._arrays.get(model.primary_array) is None:
        primary = model._spec(model.primary_array)
        raise BadInputError(f"{path}: no {primary.extname} extension")


def read_hdulist_into(model, hdulist):
    """Fill ``model`` from an HDUList in memory (as the official models accept one): through a
    private temporary file, so that it is checked and read exactly as a file would be."""
    with tempfile.TemporaryDirectory(prefix="ramp2slope-hdulist-") as folder:
        path = os.path.join(folder, "model.fits")
        hdulist.writeto(path)
        read_into(model, path)
        for name, array in model._arrays.items():   # nothing may point into the file
            if isinstance(array, np.memmap) or getattr(array, "base", None) is not None:
                model._arrays[name] = np.array(array)
    model._path = None


def guess_model_class(path):
    """The model class for a file: from DATAMODL, else from the SCI shape (as stdatamodels does)."""
    with _open_hdulist(path) as hdulist:
        model_type = hdulist[0].header.get("DATAMODL")
        index = _hdu_index(hdulist)
        sci = index.get("SCI")
        if sci is not None and not isinstance(sci, _IMAGES):
            raise BadInputError(f"{path}: SCI is a {type(sci).__name__}, not an image")
        sci_ndim = len(sci.shape) if sci is not None else None
        has_dq = "DQ" in index
        nstripe = hdulist[0].header.get("SSTR_NST")
        exp_type = str(hdulist[0].header.get("EXP_TYPE", "")).upper()
    if exp_type in FGS_GUIDE_EXP_TYPES and sci_ndim == 4 and model_type in (
            None, "Level1bModel", "RampModel", "GuiderRawModel"):
        return GuiderRawModel   # as jwst opens raw guide-star data
    if model_type in ("Level1bModel", "RampModel", "SuperstripeRampModel") or (
            model_type is None and sci_ndim == 4 and not has_dq):
        # as jwst: an exposure with superstripes is a SuperstripeRampModel whatever DATAMODL says
        if isinstance(nstripe, int) and nstripe > 0:
            return SuperstripeRampModel
        return RampModel
    if model_type in MODEL_CLASSES:
        return MODEL_CLASSES[model_type]
    if sci_ndim is None:
        raise BadInputError(f"{path}: no SCI extension")
    if sci_ndim == 4 and not has_dq:
        return RampModel
    if sci_ndim == 3:
        return CubeModel
    if sci_ndim == 2:
        return ImageModel
    raise BadInputError(f"{path}: cannot tell what kind of product this is "
                        f"(DATAMODL={model_type!r}, SCI with {sci_ndim} dimensions)")


def open(init, **kwargs):  # noqa: A001  (same name as the official API)
    """Open a file (or pass a model through) as the right model class.

    Raw ``Level1bModel`` files open as a float32 RampModel with zero-filled PIXELDQ and GROUPDQ.
    """
    if isinstance(init, DataModel):
        return init
    if isinstance(init, (str, os.PathLike)):
        path = os.fspath(init)
        return guess_model_class(path)(path)
    raise BadInputError(f"cannot open {init!r}: give a file name or a data model")


def _image_hdu(model, spec, array):
    header = model._headers.get(spec.extname)
    header = header.copy() if header is not None else fits.Header()
    if spec.extname in ("SCI", "ERR") and model.default_bunit and "BUNIT" not in header:
        header["BUNIT"] = model.default_bunit
    if array.dtype.byteorder not in ("=", "|"):
        array = array.astype(array.dtype.newbyteorder("="))
    # EXTVER = 1 on every extension but the ASDF one, as the official models write them
    return fits.ImageHDU(data=array, header=header, name=spec.extname, ver=1)


def image_extensions(model, deferred=()):
    """``(spec, array)`` for every image extension a product of ``model`` has, in file order.

    Arrays with a default (PIXELDQ, GROUPDQ, DQ, ERR) are always written, as officially. For the
    attributes named in ``deferred`` the extension is listed with ``array=None`` whether or not
    the model holds that array (its data are supplied later, see ``IncrementalWriter``).
    """
    out = []
    for spec in model.arrays:
        if not spec.write:
            continue
        if spec.attr in deferred:
            out.append((spec, None))
            continue
        array = getattr(model, spec.attr) if spec.default is not None else model._arrays.get(spec.attr)
        if array is not None:
            out.append((spec, array))
    return out


def table_hdu(data, name, ver=None):
    """A binary table HDU of ``data`` (a record array or FITS_rec). The same bytes as
    ``fits.BinTableHDU(data=...)``, whose constructor imports astropy.table (0.2 s, most of a
    small run's start) only to ask whether ``data`` is a Table."""
    hdu = fits.BinTableHDU(name=name, ver=ver)
    hdu.data = data
    return hdu


def trailing_hdus(model):
    """The HDUs that follow the images: tables, unknown extensions kept from the input, ASDF."""
    hdus = []
    for name in model.tables:
        table = model._tables.get(name)
        if table is not None:
            hdus.append(table_hdu(table, model.table_extname(name), ver=1))
    hdus.extend(hdu.copy() for hdu in model._extra_hdus)
    meta = model.tree_meta()
    records = asdf_records(meta, version=__version__)
    column = records.dtype.names[0]
    # one variable-free byte column with no TDIM, as the official writer lays it out
    hdus.append(table_hdu(fits.FITS_rec.from_columns(
        [fits.Column(name=column, format=f"{records[column].shape[1]}B", array=records[column])]),
        ASDF_EXTNAME))
    return hdus


def primary_hdu(model):
    return fits.PrimaryHDU(header=model._headers["PRIMARY"].copy())


def temporary_path(path):
    """A new empty file next to ``path`` (same folder, hidden name) to write before renaming."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # the owner's tag lets a later run remove the file if this process is killed before it
    # finishes (pipeline.scratch.remove_stale_scratch)
    handle, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.{owner_tag()}-",
                                   suffix=".part", dir=folder)
    os.close(handle)
    return tmp


def write_error(path, exc):
    """The one-line error for a product that could not be written (full disk, size limit...)."""
    return BadInputError(f"{path}: cannot be written ({exc.strerror or exc}); nothing was left "
                         f"under that name")


def publish(tmp, path):
    """Give a finished temporary file ordinary permissions (mkstemp makes it 0600) and move
    it into place in one step."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def write_model(model, path, overwrite=True):
    """Write ``model`` to ``path`` atomically (temporary file in the same folder, then rename).

    The images' data are encoded by :mod:`.raw_image` and written straight to the file
    (through :class:`~ramp2slope.datamodels.IncrementalWriter`); the bytes are those astropy
    writes (:func:`write_model_astropy`, used for anything the fast path does not encode).
    """
    from .incremental import IncrementalWriter, can_defer

    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise BadInputError(f"{path}: exists and overwrite is off")
    arrays = {spec.attr: array for spec, array in image_extensions(model)
              if array.ndim >= 2 and array.size and can_defer(array.dtype)}
    if not arrays:
        return write_model_astropy(model, path)
    writer = None
    try:
        # SIGTERM waits until the temporary file is in hands that remove it on failure
        with termination.deferred():
            writer = IncrementalWriter(model, path, {attr: array.shape for attr, array in arrays.items()})
        for attr, array in arrays.items():
            writer.write_all(attr, array)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return writer.close()


def write_model_astropy(model, path):
    """Write ``model`` with astropy's writer (atomic, like :func:`write_model`)."""
    path = os.fspath(path)
    hdus = [primary_hdu(model)]
    hdus.extend(_image_hdu(model, spec, array) for spec, array in image_extensions(model))
    hdus.extend(trailing_hdus(model))
    tmp = None
    try:
        with termination.deferred():
            tmp = temporary_path(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            fits.HDUList(hdus).writeto(tmp, overwrite=True, output_verify="silentfix")
        publish(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from None
        raise
    return path
