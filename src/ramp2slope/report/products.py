"""Finding a run's products and reading them lazily (memory-mapped, one plane at a time).

A full-frame ramp product is 2048 x 2048 x ngroups float32 plus a uint8 GROUPDQ of the same
shape; the report never holds one of them whole. :class:`FitsProduct` gives planes, row bands
and single-pixel ramps read straight from the memory-mapped file.
"""
from __future__ import annotations

import glob
import os
import warnings

import numpy as np
from astropy.io import fits

from ..errors import Ramp2SlopeError

#: Every product suffix the report reads, in pipeline order.
STEP_SUFFIXES = ("dq_init", "saturation", "superbias", "refpix", "linearity", "dark_current",
                 "jump")
FIT_SUFFIXES = ("0_ramp_fit", "1_ramp_fit", "fitopt", "rateints", "rate")
SUFFIXES = STEP_SUFFIXES + FIT_SUFFIXES
#: Products read when present, never reported missing: only some runs make them (LIKELY's
#: chi squared, with save_opt; picture_frame's correction and mask; clean_flicker_noise's fitted
#: noise, background and mask).
OPTIONAL_SUFFIXES = ("likely_chisq", "pctfrm_correction", "pctfrm_mask", "flicker_noise",
                     "flicker_bkg", "mask")
#: MIRI's own steps (read when present; the MIRI sections say what is missing)
MIRI_SUFFIXES = ("emicorr", "firstframe", "lastframe", "reset", "rscd")
# Longest first, so that "_0_ramp_fit" and "_rateints" are recognised before shorter suffixes.
_MATCH_ORDER = tuple(sorted(SUFFIXES + OPTIONAL_SUFFIXES + MIRI_SUFFIXES + ("uncal",), key=len,
                            reverse=True))


class FitsProduct:
    """One FITS product; arrays are read only where asked (``hdu.section``), never whole."""

    def __init__(self, path):
        self.path = os.fspath(path)
        #: for a NIRSpec IRS2 product (3200 stored rows), the mask of its 2048 science rows: the
        #: report then sees only those, as every product after refpix holds them
        self.science_rows = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.hdulist = fits.open(self.path, memmap=False, lazy_load_hdus=False)
        except Exception as exc:  # astropy raises several types on bad files
            raise Ramp2SlopeError(f"{self.path}: not a readable FITS file "
                                  f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        self.header = self.hdulist[0].header
        self._index = {}
        for hdu in self.hdulist[1:]:
            self._index.setdefault((hdu.name or "").upper(), hdu)

    @property
    def name(self):
        return os.path.basename(self.path)

    def has(self, ext):
        hdu = self._index.get(ext)
        return hdu is not None and bool(hdu.shape)

    def hdu(self, ext):
        hdu = self._index.get(ext)
        if hdu is None or not hdu.shape:
            raise Ramp2SlopeError(f"{self.name}: no {ext} extension")
        return hdu

    def ext_header(self, ext):
        hdu = self._index.get(ext)
        return None if hdu is None else hdu.header

    def _in_layout(self, ext):
        shape = self.hdu(ext).shape
        return (self.science_rows is not None and len(shape) >= 2
                and shape[-2] == self.science_rows.size)

    def shape(self, ext="SCI"):
        shape = tuple(self.hdu(ext).shape)
        if self._in_layout(ext):
            shape = shape[:-2] + (int(np.count_nonzero(self.science_rows)), shape[-1])
        return shape

    def read(self, ext, index=(), dtype=None):
        """``ext[index]`` as a native-endian array (a copy), scaled like astropy does.

        Arrays of 3 or more dimensions are read through ``hdu.section``, so only the requested
        part of the file is touched (and BZERO is applied to that part only). In an IRS2 product
        the row index counts science rows only.
        """
        if not self._in_layout(ext):
            return self._read(ext, index, dtype)
        ndim = len(self.hdu(ext).shape)
        index = list(index if isinstance(index, tuple) else (index,))
        index += [slice(None)] * (ndim - len(index))
        stored = np.flatnonzero(self.science_rows)[index[ndim - 2]]
        if np.ndim(stored) == 0:
            index[ndim - 2] = int(stored)
            return self._read(ext, tuple(index), dtype)
        first = int(stored.min()) if stored.size else 0
        index[ndim - 2] = slice(first, int(stored.max()) + 1 if stored.size else 0)
        out = self._read(ext, tuple(index), dtype)
        axis = (ndim - 2) - sum(isinstance(i, (int, np.integer)) for i in index[:ndim - 2])
        return np.take(out, stored - first, axis=axis)

    def _read(self, ext, index=(), dtype=None):
        hdu = self.hdu(ext)
        if len(hdu.shape) >= 3:
            out = hdu.section[index if index != () else Ellipsis]
        else:
            out = hdu.data[index] if index != () else hdu.data
        out = np.array(out, copy=True)
        if dtype is None and hdu.header.get("BITPIX") == -32 and out.dtype != np.float32:
            dtype = np.float32  # astropy returns some float32 sections as float64
        if out.dtype.byteorder not in ("=", "|"):
            out = out.astype(out.dtype.newbyteorder("="))
        if dtype is not None and out.dtype != dtype:
            out = out.astype(dtype)
        return out

    def plane(self, ext, *index, dtype=None):
        """One 2-D plane, e.g. ``plane('SCI', integration, group)``."""
        return self.read(ext, tuple(index), dtype)

    def pixel(self, ext, integration, y, x, dtype=None):
        """One pixel's values up the ramp (a 4-D extension) or across planes (3-D)."""
        if len(self.shape(ext)) == 4:
            return self.read(ext, (integration, slice(None), y, x), dtype)
        return self.read(ext, (slice(None), y, x), dtype)

    def close(self):
        self.hdulist.close()


def _irs2_science_rows(product):
    """The science rows of a product stored in the IRS2 layout, else None."""
    from ..datamodels.irs2_layout import IRS2Layout, is_irs2_shape, rows_mask

    if not product.has("SCI") or not is_irs2_shape(product.hdu("SCI").shape):
        return None
    header = product.header
    layout = IRS2Layout(int(header.get("NRS_NORM") or 16), int(header.get("NRS_REF") or 4))
    try:
        return rows_mask(header.get("DETECTOR"), product.hdu("SCI").shape[-2], layout)
    except ValueError as exc:
        raise Ramp2SlopeError(f"{product.name}: {exc}") from None


def _split_root(path):
    """(root, suffix) when ``path`` names a product file, else (None, None)."""
    base = os.path.basename(path)
    if not base.endswith(".fits"):
        return None, None
    stem = base[:-5]
    for suffix in _MATCH_ORDER:
        if stem.endswith("_" + suffix):
            return os.path.join(os.path.dirname(path), stem[: -len(suffix) - 1]), suffix
    return None, None


class ProductSet:
    """The products of one run: ``<root>_<suffix>.fits`` for every suffix that exists."""

    def __init__(self, root, uncal=None):
        self.root = root
        self.folder = os.path.dirname(root) or "."
        self.rootname = os.path.basename(root)
        self.paths = {s: f"{root}_{s}.fits" for s in SUFFIXES + OPTIONAL_SUFFIXES + MIRI_SUFFIXES
                      if os.path.isfile(f"{root}_{s}.fits")}
        self.uncal = self._find_uncal(uncal)
        self._open = {}

    def _find_uncal(self, uncal):
        if uncal:
            uncal = os.fspath(uncal)
            if not os.path.isfile(uncal):
                raise Ramp2SlopeError(f"{uncal}: no such file (the raw exposure given with uncal=)")
            return uncal
        for folder in (self.folder, os.path.dirname(os.path.abspath(self.folder))):
            candidate = os.path.join(folder, f"{self.rootname}_uncal.fits")
            if os.path.isfile(candidate):
                return candidate
        return None

    def has(self, suffix):
        return suffix in self.paths

    def get(self, suffix):
        """The opened product, or None when the run did not save it."""
        if suffix not in self.paths:
            return None
        if suffix not in self._open:
            product = FitsProduct(self.paths[suffix])
            product.science_rows = _irs2_science_rows(product)
            self._open[suffix] = product
        return self._open[suffix]

    def open_uncal(self):
        if not self.uncal:
            return None
        if "uncal" not in self._open:
            product = FitsProduct(self.uncal)
            product.science_rows = _irs2_science_rows(product)
            self._open["uncal"] = product
        return self._open["uncal"]

    def missing(self):
        # a LIKELY fit (its chi squared saved) has no optional fit product, in jwst either
        likely = "likely_chisq" in self.paths
        return [s for s in SUFFIXES if s not in self.paths and not (likely and s == "fitopt")]

    def close(self):
        for product in self._open.values():
            product.close()
        self._open.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def locate(products, uncal=None):
    """The :class:`ProductSet` for a folder, a root-name prefix, or one product file."""
    products = os.fspath(products)
    if os.path.isdir(products):
        roots = {}
        for path in glob.glob(os.path.join(products, "*.fits")):
            root, suffix = _split_root(path)
            if root is not None and suffix != "uncal":
                roots.setdefault(root, set()).add(suffix)
        if not roots:
            raise Ramp2SlopeError(
                f"{products}: no pipeline products (*_rate.fits, *_jump.fits, ...) in this folder; "
                f"run the pipeline with --save-steps to save every step's product")
        if uncal:
            # the products of the raw exposure given, when the folder holds several exposures
            wanted, _ = _split_root(os.path.join(products, os.path.basename(os.fspath(uncal))))
            if wanted in roots:
                return ProductSet(wanted, uncal)
        best = max(len(s) for s in roots.values())
        winners = sorted(r for r, s in roots.items() if len(s) == best)
        if len(winners) > 1:
            names = ", ".join(os.path.basename(r) for r in winners)
            raise Ramp2SlopeError(f"{products}: products of several exposures ({names}); give the "
                                  f"root name, e.g. {os.path.join(products, os.path.basename(winners[0]))}")
        return ProductSet(winners[0], uncal)
    root, suffix = _split_root(products)
    if root is None:
        root = products[:-5] if products.endswith(".fits") else products
    product_set = ProductSet(root, uncal)
    if not product_set.paths:
        raise Ramp2SlopeError(f"{products}: no products named {os.path.basename(root)}_<step>.fits "
                              f"(e.g. _rate.fits, _jump.fits) found")
    return product_set
