"""A ramp file opened without reading its ramp: :class:`RampSource`.

``RampSource(path)`` reads the headers, the tables and the small (2-D) arrays of a RampModel
file (a raw ``_uncal`` or any saved ramp) and checks that every extension is complete, but leaves
the per-integration arrays (SCI, GROUPDQ, ZEROFRAME) on disk. ``read(attr, i)`` then gives one
integration of them, converted to the model's dtype (BZERO applied), and ``integration_model(i)``
a one-integration :class:`RampModel` with its own copy of the headers. ``template`` is a
RampModel with the metadata and a stand-in SCI array of the exposure's full shape, for the
checks that only need the metadata and the shape.

The problems ``datamodels.open`` reports (not a FITS file, no SCI, SCI with the wrong number of
dimensions, a truncated extension) are reported here with the same one-line messages, before
anything is processed.
"""
import os

import numpy as np

from ..errors import BadInputError
from .fits_io import (_clean_header, _hdu_index, _open_hdulist, _read_array, guess_model_class,
                      image_hdus, read_tables_and_extras)
from .asdf_tree import AsdfMeta
from .raw_image import ImageLayout
from .models import RampModel, placeholder

__all__ = ["RampSource", "open_ramp_source"]

#: Arrays stored per integration (the first axis is the integration).
PER_INTEGRATION = ("data", "groupdq", "zeroframe", "refout", "err")


def open_ramp_source(path):
    """A :class:`RampSource` for ``path``, or None when the file is not a ramp (a rate image, ...).

    Raises BadInputError for an unreadable or incomplete file.
    """
    path = os.fspath(path)
    if guess_model_class(path) is not RampModel:
        return None
    return RampSource(path)


class RampSource:
    """See the module docstring."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self._hdulist = _open_hdulist(self.path)
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    def _load(self):
        path = self.path
        size = os.path.getsize(path)
        index = _hdu_index(self._hdulist)
        template = RampModel()
        template._headers["PRIMARY"] = _clean_header(self._hdulist[0].header)
        self._hdus = {}
        self._layouts = {}
        known = {"ASDF"}
        for spec, hdu in image_hdus(template, index, path):
            known.add(spec.extname)
            end = hdu.fileinfo()["datLoc"] + hdu.size
            if end > size:
                raise BadInputError(
                    f"{path}: extension {hdu.name} cannot be read, the file may be truncated "
                    f"(the file has {size} bytes, the extension ends at byte {end})")
            if spec.attr in PER_INTEGRATION:
                self._hdus[spec.attr] = hdu
                self._layouts[spec.attr] = ImageLayout(path, hdu)
            else:
                template._arrays[spec.attr] = _read_array(path, hdu, spec.dtype)
            template._headers[spec.extname] = _clean_header(hdu.header)
        read_tables_and_extras(template, self._hdulist, index, known)
        template._asdf_meta = AsdfMeta.from_hdulist(self._hdulist)
        template._path = path
        template.meta.model_type = RampModel.model_type
        if "data" not in self._hdus:
            raise BadInputError(f"{path}: no SCI extension")
        self.shape = tuple(int(n) for n in self._hdus["data"].shape)
        template._arrays["data"] = placeholder(self.shape, np.float32)
        self.template = template

    def forget(self, attr):
        """Leave a per-integration array out (one that cannot be used): the model's default
        takes its place."""
        self._hdus.pop(attr, None)
        self._layouts.pop(attr, None)

    @property
    def nints(self):
        return self.shape[0]

    def shape_of(self, attr):
        """The whole shape of a per-integration array of the file."""
        return tuple(int(n) for n in self._hdus[attr].shape)

    def has(self, attr):
        """True when the file holds this per-integration array."""
        return attr in self._hdus

    @property
    def is_float(self):
        """True when SCI is stored as floating point (a raw ramp is integer, hence finite)."""
        return int(self._hdus["data"].header.get("BITPIX", 16)) < 0

    @property
    def stores_unsigned(self):
        """True when SCI is stored as unsigned integers (BZERO offset or BITPIX 8, no scaling):
        every value read is then finite and not negative, without reading it."""
        layout = self._layouts["data"]
        return layout.unsigned or (layout.bitpix == 8 and layout.bscale == 1
                                   and layout.bzero == 0)

    def read(self, attr, integration, out=None, group=None):
        """One integration of a per-integration array (optionally one group of SCI/GROUPDQ)."""
        spec = RampModel._spec(attr)
        key = (integration,) if group is None else (integration, group)
        layout = self._layouts[attr]
        if not layout.fast:
            values = self._hdus[attr].section[key]
            if out is None:
                return np.asarray(values, dtype=spec.dtype)
            out[...] = values
            return out
        return layout.read(spec.dtype, key, out=out)

    def integration_model(self, integration, stop=None):
        """A RampModel holding integration ``integration`` only (or integrations
        ``integration`` to ``stop - 1``), with its own headers."""
        stop = integration + 1 if stop is None else stop
        template = self.template
        model = RampModel()
        model._headers.clear()
        model._headers.update({name: header.copy() for name, header in template._headers.items()})
        model._tables.update(template._tables)
        model._extra_hdus[:] = template._extra_hdus
        model._asdf_meta = template._asdf_meta
        model._tree = dict(template._tree)
        for attr, value in template._arrays.items():
            if attr != "data":
                model._arrays[attr] = value.copy()
        for attr in self._hdus:
            spec = RampModel._spec(attr)
            shape = (stop - integration,) + tuple(self._hdus[attr].shape[1:])
            array = np.empty(shape, dtype=spec.dtype)
            if self._layouts[attr].fast:   # the run in one read (consecutive in the file)
                self._layouts[attr].read(spec.dtype, slice(integration, stop), out=array)
            else:
                for j in range(stop - integration):
                    self.read(attr, integration + j, out=array[j])
            model._arrays[attr] = array
        model._path = self.path
        return model

    def close(self):
        if self._hdulist is not None:
            self._hdulist.close()
            self._hdulist = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
