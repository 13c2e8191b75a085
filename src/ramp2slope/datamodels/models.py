"""Data models for the files detector1 reads and writes.

Each class lists its arrays (attribute, EXTNAME, dtype) and tables; the FITS layout matches the
official JWST data models so that ``stdatamodels`` opens our products as the right class.
"""
import copy as _copy
import datetime
import os

import numpy as np
from astropy.io import fits

from .. import __version__
from ..errors import BadInputError
from .meta import MetaNode, MetaStore


def fits_text(text):
    """``text`` as a legal FITS string value: printable ASCII only. A file name may hold any
    character the file system allows (accents, a newline); FILENAME gets a '?' for each one the
    FITS standard refuses, rather than a product that cannot be written."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)


class ArraySpec:
    """One image extension of a model: attribute name, EXTNAME, dtype, and how many dimensions."""

    def __init__(self, attr, extname, dtype, ndim, write=True, default=None):
        self.attr = attr
        self.extname = extname
        self.dtype = np.dtype(dtype)
        self.ndim = ndim
        self.write = write
        # default(model) builds a zero array on first access, as the official models do for
        # arrays that every step expects (PIXELDQ, GROUPDQ); None means "absent until set".
        self.default = default


def placeholder(shape, dtype=np.float32):
    """A read-only array of ``shape`` (every element 0) that takes no memory.

    It stands in for data kept elsewhere (on disk, one integration at a time), so that a model
    that only carries metadata still reports the exposure's ``shape``.
    """
    return np.broadcast_to(np.zeros((), dtype=dtype), tuple(shape))


def _plain_tree(value):
    """A value for the YAML tree: numpy arrays and scalars as plain lists and numbers."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain_tree(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _zeros_like_data_2d(dtype):
    return lambda model: np.zeros(model.data.shape[-2:], dtype=dtype)


def _zeros_like_data(dtype):
    return lambda model: np.zeros(model.data.shape, dtype=dtype)


def _in_store(name, doc):
    """A model attribute that is its :class:`MetaStore`'s ``name`` (read and assigned there)."""
    return property(lambda model: getattr(model._store, name),
                    lambda model, value: setattr(model._store, name, value), doc=doc)


class DataModel:
    """Common behaviour: headers, ``meta``, arrays, tables, save, copy, info."""

    model_type = "DataModel"
    arrays = ()
    tables = ()  # attribute names of binary tables, EXTNAME = attribute upper-cased
    table_extnames = {}  # except where this says otherwise
    primary_array = "data"
    primary_fill = 0  # what a model built from a shape holds (the official schema's default)
    default_bunit = None

    def __init__(self, init=None, **arrays):
        self._own_metadata(MetaStore())
        object.__setattr__(self, "_arrays", {})
        object.__setattr__(self, "_tables", {})
        object.__setattr__(self, "_extra_hdus", [])
        self._path = None
        if isinstance(init, DataModel):
            self.update(init)
            for spec in self.arrays:
                value = init._arrays.get(spec.attr)
                if value is not None and value.ndim == spec.ndim:
                    self._arrays[spec.attr] = value
            for name in self.tables:
                if name in init._tables:
                    self._tables[name] = init._tables[name]
        elif isinstance(init, (str, os.PathLike)):
            from .fits_io import read_into

            read_into(self, os.fspath(init))
        elif isinstance(init, fits.HDUList):
            from .fits_io import read_hdulist_into

            read_hdulist_into(self, init)
        elif isinstance(init, tuple):
            primary = self._spec(self.primary_array)
            self._arrays[primary.attr] = np.full(init, self.primary_fill, dtype=primary.dtype)
        elif isinstance(init, np.ndarray):
            arrays.setdefault(self.primary_array, init)
        elif init is not None:
            raise TypeError(f"cannot build a {type(self).__name__} from {type(init).__name__}")
        for name, value in arrays.items():
            setattr(self, name, value)
        self.meta.model_type = self.model_type

    # -- arrays -------------------------------------------------------------------------------
    @classmethod
    def _spec(cls, attr):
        for spec in cls.arrays:
            if spec.attr == attr:
                return spec
        return None

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        spec = self._spec(name)
        if spec is not None:
            value = self._arrays.get(name)
            if value is None and spec.default is not None and self._arrays.get(self.primary_array) is not None:
                value = spec.default(self)
                self._arrays[name] = value
            return value
        if name in self.tables:
            return self._tables.get(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name, value):
        spec = self._spec(name)
        if spec is not None:
            if value is None:
                self._arrays.pop(name, None)
            else:
                value = np.asarray(value)
                if value.dtype != spec.dtype:
                    value = value.astype(spec.dtype)
                self._arrays[name] = value
        elif name in self.tables:
            if value is None:
                self._tables.pop(name, None)
            else:
                self._tables[name] = value
        else:
            object.__setattr__(self, name, value)

    @classmethod
    def table_extname(cls, name):
        return cls.table_extnames.get(name, name.upper())

    @property
    def override_handle(self):
        """What a step records as the reference file name when given this model in memory."""
        return "override://" + type(self).__name__

    #: numpy dtypes of the tables, as the official schemas define them
    table_dtypes = {
        "dq_def": np.dtype([("BIT", "<i4"), ("VALUE", "<u4"), ("NAME", "S40"), ("DESCRIPTION", "S80")]),
        "int_times_stripe": np.dtype([("integration_number", "<i4"), ("stripe_number", "<i4")] + [
            (f"int_{when}_{scale}", "<f8") for scale in ("MJD_UTC", "BJD_TDB")
            for when in ("start", "mid", "end")]),
        "trappars_table": np.dtype([("capture0", "<f8"), ("capture1", "<f8"), ("capture2", "<f8"),
                                    ("decay_param", "<f8")]),
    }

    def get_dtype(self, name):
        """The numpy dtype of an array or table of this model (as the official models'
        ``get_dtype``): e.g. ``MaskModel().get_dtype("dq_def")`` to build a DQ_DEF table."""
        spec = self._spec(name)
        if spec is not None:
            return spec.dtype
        if name in self.tables and name in self.table_dtypes:
            return self.table_dtypes[name]
        raise AttributeError(f"{type(self).__name__} has no array or table {name!r}")

    def get_default(self, name):
        """A new default array for ``name`` (zeros of the shape the data call for), as the
        official models' ``get_default``; the model itself is not changed."""
        spec = self._spec(name)
        primary = self._arrays.get(self.primary_array)
        if spec is None or primary is None:
            raise AttributeError(f"{type(self).__name__} has no default for {name!r}")
        if spec.default is None:
            # an array with no default of its own (the variances): zeros of the data's shape,
            # as the official schemas' default of 0
            if spec.ndim != primary.ndim:
                raise AttributeError(f"{type(self).__name__} has no default for {name!r}")
            return np.zeros(primary.shape, dtype=spec.dtype)
        return spec.default(self)

    def hasattr(self, name):
        """True when the array, table or top-level metadata ``name`` is set (the official
        models' ``hasattr``, which stcal uses to look for optional arrays)."""
        if self._spec(name) is not None or name in self.tables:
            return self.has(name)
        return hasattr(self, name)

    def has(self, name):
        """True when the array or table is present (without creating a default one)."""
        return self._arrays.get(name) is not None or self._tables.get(name) is not None

    @property
    def shape(self):
        primary = self._arrays.get(self.primary_array)
        return None if primary is None else primary.shape

    def _update_from_official(self, other):
        from .keywords import KEYWORDS, TREE_ONLY

        def assign(path, value):
            *parents, leaf = path.split(".")
            node = self.meta
            for part in parents:
                node = getattr(node, part)
            setattr(node, leaf, value)

        for key, value in other.to_flat_dict().items():
            path = key[len("meta."):] if key.startswith("meta.") else None
            if path in KEYWORDS:
                assign(path, value.tolist() if hasattr(value, "tolist") else value)
        for path in TREE_ONLY:     # lists, which the flat dict spreads over numbered keys
            value = other.meta
            for part in path.split("."):
                value = getattr(value, part, None)
            value = getattr(value, "instance", value)     # stdatamodels' ListNode
            if value:
                assign(path, _copy.deepcopy(list(value)))
        self.meta.model_type = self.model_type
        return self

    # -- headers ------------------------------------------------------------------------------
    # The headers and trees live in the MetaStore that ``meta`` reads (see :mod:`.meta`); these
    # are the model's names for them.
    def _own_metadata(self, store):
        """Give the model ``store`` as its metadata, and a ``meta`` over it."""
        object.__setattr__(self, "_store", store)
        object.__setattr__(self, "meta", MetaNode(store))

    _headers = _in_store("headers", "The headers by HDU name (``PRIMARY``, ``SCI``, ...).")
    _asdf_meta = _in_store("asdf_meta", "The input's ASDF metadata tree (see :mod:`.asdf_tree`), "
                                        "carried into products.")
    _tree = _in_store("tree", "Values set on tree-only attributes (keywords.TREE_ONLY), over the "
                              "input's tree.")

    def _header(self, hdu):
        return self._store.header(hdu)

    @property
    def primary_header(self):
        return self._headers["PRIMARY"]

    def update(self, other, only=None):
        """Copy the metadata of another model (not its arrays): the primary header, the SCI
        header's keywords (WCS, pointing, times, ephemeris: the official models keep these in
        the SCI extension of every product) and the input's ASDF metadata tree.

        ``other`` may also be an official (stdatamodels) model: its metadata that have a FITS
        keyword or a tree-only attribute here are copied."""
        if not hasattr(other, "_headers") and hasattr(other, "to_flat_dict"):
            return self._update_from_official(other)
        header = other._headers["PRIMARY"].copy()
        header.remove("DATAMODL", ignore_missing=True)
        self._headers["PRIMARY"] = header
        sci = other._headers.get("SCI")
        if sci is not None and self._spec_by_extname("SCI") is not None:
            self._headers["SCI"] = sci.copy()
        self._asdf_meta = getattr(other, "_asdf_meta", None)
        self._tree = _copy.deepcopy(getattr(other, "_tree", {}))
        self.meta.model_type = self.model_type
        return self

    def tree_meta(self):
        """The metadata tree this model's ASDF extension holds: the input's, with the tree-only
        attributes set on this model written over it, and without what was set to None here
        (a keyword removed from the headers must not come back from the tree)."""
        meta = self._asdf_meta.meta() if self._asdf_meta is not None else None
        if not self._tree:
            return meta
        meta = _copy.deepcopy(meta) if meta else {}
        for path, value in self._tree.items():
            *parents, leaf = path.split(".")
            node = meta
            for part in parents:
                if not isinstance(node.get(part), dict):
                    if value is None:
                        break
                    node[part] = {}
                node = node[part]
            else:
                if value is None:
                    node.pop(leaf, None)
                else:
                    node[leaf] = _plain_tree(value)
        return meta

    @classmethod
    def _spec_by_extname(cls, extname):
        return next((spec for spec in cls.arrays if spec.extname == extname), None)

    # -- life cycle ---------------------------------------------------------------------------
    def copy(self):
        new = type(self).__new__(type(self))
        # the input's ASDF tree is read-only once read: shared, not copied
        new._own_metadata(MetaStore({k: h.copy() for k, h in self._headers.items()},
                                    _copy.deepcopy(self._tree), self._asdf_meta))
        object.__setattr__(new, "_arrays", {k: v.copy() for k, v in self._arrays.items()})
        object.__setattr__(new, "_tables", {k: v.copy() for k, v in self._tables.items()})
        object.__setattr__(new, "_extra_hdus", [h.copy() for h in self._extra_hdus])
        new._path = self._path
        for name, value in self.meta._extra.items():
            if not isinstance(value, MetaNode):
                new.meta._extra[name] = _copy.deepcopy(value)
        return new

    def with_own_headers(self):
        """A model sharing this one's arrays and tables but with copies of its headers, so that
        saving it (which stamps FILENAME and DATE) leaves this model as it was."""
        new = _copy.copy(self)
        new._own_metadata(MetaStore({k: h.copy() for k, h in self._headers.items()},
                                    dict(self._tree), self._asdf_meta))
        object.__setattr__(new, "_arrays", dict(self._arrays))
        object.__setattr__(new, "_tables", dict(self._tables))
        new.meta._extra.update({k: v for k, v in self.meta._extra.items() if not isinstance(v, MetaNode)})
        return new

    def close(self):
        """Release the arrays (files are read fully into memory, so there is no handle)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        shape = self.shape
        name = os.path.basename(self._path) if self._path else ""
        return f"<{type(self).__name__}{shape if shape is not None else ''} from {name}>" if name else \
            f"<{type(self).__name__}{shape if shape is not None else ''}>"

    # -- output -------------------------------------------------------------------------------
    def save(self, path, dir_path=None, overwrite=True):
        """Write the model as a FITS file; the file appears complete or not at all."""
        from .fits_io import write_model

        if dir_path:
            path = os.path.join(dir_path, path)
        self.stamp_for_save(path)
        write_model(self, path, overwrite=overwrite)
        return path

    def stamp_for_save(self, path):
        """Record the file name, date and software in the header, as saving to ``path`` does.

        ``save()`` calls it; so does :class:`~ramp2slope.datamodels.IncrementalWriter`, so that a
        product written piece by piece gets exactly the header ``save()`` would give it.
        """
        self.meta.filename = fits_text(os.path.basename(os.fspath(path)))
        self.meta.date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        self.meta.calibration_software_version = __version__
        self.meta.calibration_software_revision = "ramp2slope"

    def info(self, *args, **kwargs):
        """Print a summary of the model: file, class, and each array's shape and dtype."""
        print(self.info_text())

    def info_text(self):
        lines = [f"root (model: {type(self).__name__})"]
        if self._path:
            lines[0] += f"  file: {os.path.basename(self._path)}"
        meta = self.meta.to_flat_dict()
        lines.append(f"├─meta ({len(meta)} keywords)")
        for spec in self.arrays:
            value = self._arrays.get(spec.attr)
            if value is not None:
                lines.append(f"├─{spec.attr} ({spec.extname}) {value.dtype.name} {value.shape}")
        for name in self.tables:
            value = self._tables.get(name)
            if value is not None:
                lines.append(f"├─{name} ({self.table_extname(name)}) table, {len(value)} rows")
        lines[-1] = "└" + lines[-1][1:]
        return "\n".join(lines)

    def items(self):
        """(meta path, value) pairs for every keyword-backed attribute that is set."""
        return list(self.meta.to_flat_dict().items())


class RampModel(DataModel):
    """A ramp (nints, ngroups, ny, nx) with its pixel and group data-quality arrays."""

    model_type = "RampModel"
    arrays = (
        ArraySpec("data", "SCI", np.float32, 4),
        ArraySpec("pixeldq", "PIXELDQ", np.uint32, 2, default=_zeros_like_data_2d(np.uint32)),
        ArraySpec("groupdq", "GROUPDQ", np.uint8, 4, default=_zeros_like_data(np.uint8)),
        ArraySpec("zeroframe", "ZEROFRAME", np.float32, 3),
        # MIRI's reference output (a fifth output that reads no pixels): carried unchanged
        ArraySpec("refout", "REFOUT", np.float32, 4),
        ArraySpec("average_dark_current", "AVDRKCUR", np.float32, 2),
        # stdatamodels 6 has no ERR in a RampModel: accepted when reading old files, not written.
        ArraySpec("err", "ERR", np.float32, 4, write=False),
    )
    tables = ("group", "int_times", "int_times_stripe")


def _stripe_planes(model):
    # one PIXELDQ plane per superstripe (SSTR_NST), as the official SuperstripeRampModel
    ny, nx = model._arrays["data"].shape[-2:]
    return np.zeros((max(int(model.meta.subarray.num_superstripe or 0), 1), ny, nx), np.uint32)


class SuperstripeRampModel(RampModel):
    """A superstripe ramp (SSTR_NST > 0): each integration of the file is one stripe, stripes
    cycling through ``num_superstripe``; PIXELDQ holds one plane per stripe. refpix collates it
    into an ordinary :class:`RampModel`."""

    model_type = "SuperstripeRampModel"
    arrays = (
        ArraySpec("data", "SCI", np.float32, 4),
        ArraySpec("pixeldq", "PIXELDQ", np.uint32, 3, default=_stripe_planes),
        ArraySpec("groupdq", "GROUPDQ", np.uint8, 4, default=_zeros_like_data(np.uint8)),
        ArraySpec("zeroframe", "ZEROFRAME", np.float32, 3),
    )
    tables = ("group", "int_times", "int_times_stripe")


#: EXP_TYPEs of the guide-star functions (ID, ACQ, TRACK, FINEGUIDE): their raw files are
#: GuiderRawModels, which the official calwebb_guider processes, not detector1
FGS_GUIDE_EXP_TYPES = ("FGS_ACQ1", "FGS_ACQ2", "FGS_FINEGUIDE", "FGS_ID-IMAGE", "FGS_ID-STACK",
                       "FGS_TRACK")


def is_guide_star_exposure(model):
    """True for raw guide-star data (a GuiderRawModel, or an EXP_TYPE of a guide-star function)."""
    return isinstance(model, GuiderRawModel) or \
        str(model.meta.exposure.type or "").upper() in FGS_GUIDE_EXP_TYPES


class GuiderRawModel(DataModel):
    """Raw FGS guide-star data (``*_gs-*_uncal.fits``) with a 2-D DQ array, as the official
    model. Of detector1's steps only dq_init applies to it (the rest is calwebb_guider's)."""

    model_type = "GuiderRawModel"
    arrays = (
        ArraySpec("data", "SCI", np.float32, 4),
        ArraySpec("err", "ERR", np.float32, 4, default=_zeros_like_data(np.float32)),
        ArraySpec("dq", "DQ", np.uint32, 2, default=_zeros_like_data_2d(np.uint32)),
    )
    tables = ("planned_star_table", "flight_star_table", "pointing_table", "centroid_table",
              "track_sub_table")
    table_extnames = {
        "planned_star_table": "PLANNED REFERENCE STARS",
        "flight_star_table": "FLIGHT REFERENCE STARS",
        "pointing_table": "POINTING",
        "centroid_table": "FGS CENTROID PACKET",
        "track_sub_table": "TRACK SUBARRAY TABLE",
    }


class Level1bModel(DataModel):
    """A raw exposure as stored in ``*_uncal.fits`` (uint16 SCI). ``open()`` gives a RampModel."""

    model_type = "Level1bModel"
    arrays = (
        ArraySpec("data", "SCI", np.uint16, 4),
        ArraySpec("zeroframe", "ZEROFRAME", np.uint16, 3),
        ArraySpec("refout", "REFOUT", np.uint16, 4),
    )
    tables = ("group", "int_times")


class ImageModel(DataModel):
    """A 2-D slope image (``_rate``)."""

    model_type = "ImageModel"
    default_bunit = "DN/s"
    arrays = (
        ArraySpec("data", "SCI", np.float32, 2),
        ArraySpec("dq", "DQ", np.uint32, 2, default=_zeros_like_data(np.uint32)),
        ArraySpec("err", "ERR", np.float32, 2, default=_zeros_like_data(np.float32)),
        ArraySpec("var_poisson", "VAR_POISSON", np.float32, 2),
        ArraySpec("var_rnoise", "VAR_RNOISE", np.float32, 2),
        # the flat's variance (stage 2's flat_field adds it): absent from detector1's products
        ArraySpec("var_flat", "VAR_FLAT", np.float32, 2),
    )


class IFUImageModel(ImageModel):
    """The rate of an IFU exposure (NIRSpec NRS_IFU, and IFU lamp exposures), as the official
    ramp fit gives it: an ImageModel's arrays under the IFU model's name, which stage 2 expects."""

    model_type = "IFUImageModel"


#: EXP_TYPEs whose rate is an IFUImageModel, and those for which it is when LAMPMODE is IFU
IFU_EXP_TYPES = ("NRS_IFU", "MIR_MRS")
IFU_LAMP_EXP_TYPES = ("NRS_AUTOWAVE", "NRS_LAMP")


def rate_model_class(model):
    """ImageModel, or IFUImageModel for the exposures whose rate the official ramp fit makes one."""
    exp_type = str(model.meta.exposure.type or "").upper()
    lamp_ifu = exp_type in IFU_LAMP_EXP_TYPES and str(model.meta.instrument.lamp_mode or "").upper() == "IFU"
    return IFUImageModel if exp_type in IFU_EXP_TYPES or lamp_ifu else ImageModel


class CubeModel(DataModel):
    """Per-integration slope images (``_rateints``)."""

    model_type = "CubeModel"
    default_bunit = "DN/s"
    arrays = (
        ArraySpec("data", "SCI", np.float32, 3),
        ArraySpec("dq", "DQ", np.uint32, 3, default=_zeros_like_data(np.uint32)),
        ArraySpec("err", "ERR", np.float32, 3, default=_zeros_like_data(np.float32)),
        ArraySpec("var_poisson", "VAR_POISSON", np.float32, 3),
        ArraySpec("var_rnoise", "VAR_RNOISE", np.float32, 3),
        ArraySpec("var_flat", "VAR_FLAT", np.float32, 3),
    )
    tables = ("int_times", "int_times_stripe")


class RampFitOutputModel(DataModel):
    """Optional ramp-fitting output (``_fitopt``): per-segment fits, pedestal and jump sizes."""

    model_type = "RampFitOutputModel"
    primary_array = "slope"
    arrays = (
        ArraySpec("slope", "SLOPE", np.float32, 4),
        ArraySpec("sigslope", "SIGSLOPE", np.float32, 4),
        ArraySpec("var_poisson", "VAR_POISSON", np.float32, 4),
        ArraySpec("var_rnoise", "VAR_RNOISE", np.float32, 4),
        ArraySpec("yint", "YINT", np.float32, 4),
        ArraySpec("sigyint", "SIGYINT", np.float32, 4),
        ArraySpec("pedestal", "PEDESTAL", np.float32, 3),
        ArraySpec("weights", "WEIGHTS", np.float32, 4),
        ArraySpec("crmag", "CRMAG", np.float32, 4),
    )


class DarkModel(DataModel):
    """A dark reference as used by dark_current (written for ``dark_output``)."""

    model_type = "DarkModel"
    reftype = "dark"
    arrays = (
        ArraySpec("data", "SCI", np.float32, 3),
        ArraySpec("dq", "DQ", np.uint32, 2, default=_zeros_like_data_2d(np.uint32)),
        ArraySpec("err", "ERR", np.float32, 3),
        ArraySpec("average_dark_current", "AVDRKCUR", np.float32, 2),
    )
    tables = ("dq_def",)


class JwstDataModel(DataModel):
    """A generic model, as the official ``JwstDataModel``: ``JwstDataModel(model)`` keeps the
    metadata and the arrays of any model, and a step that needs a ramp converts it to a
    :class:`RampModel` (``RampModel(JwstDataModel(ramp))`` is the ramp again)."""

    model_type = "JwstDataModel"
    _layouts = {}

    def __new__(cls, init=None, **arrays):
        if cls is JwstDataModel and isinstance(init, DataModel) and type(init).arrays:
            # the arrays and tables of the wrapped model's class, under the generic name
            source = type(init)
            layout = JwstDataModel._layouts.get(source)
            if layout is None:
                layout = type("JwstDataModel", (JwstDataModel,), {
                    "arrays": source.arrays, "tables": source.tables,
                    "table_extnames": source.table_extnames, "primary_array": source.primary_array,
                    "__module__": __name__})
                JwstDataModel._layouts[source] = layout
            return DataModel.__new__(layout)
        return DataModel.__new__(cls)


MODEL_CLASSES = {
    cls.model_type: cls
    for cls in (RampModel, SuperstripeRampModel, GuiderRawModel, Level1bModel, ImageModel,
                IFUImageModel, CubeModel, RampFitOutputModel, DarkModel)
}


def check_is_valid_ramp(model, where):
    """Raise a one-line error unless ``model`` holds a usable 4-D ramp."""
    data = model._arrays.get("data")
    if data is None:
        raise BadInputError(f"{where}: no SCI data")
    if data.ndim != 4:
        raise BadInputError(f"{where}: SCI must be 4-D (nints, ngroups, ny, nx), got shape {data.shape}")
