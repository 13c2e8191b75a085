"""Products of detectors stored transposed (|FASTAXIS| = 2; the FGS guiders here).

The physics model works in a frame whose fast read runs along DMS x, as NIRCam's does. A
detector stored as the transpose of that frame is modelled there, and its files (raw exposure,
references, truth) are then rewritten as it stores them: the last two axes of every image
swapped, the window keywords exchanged (SUBSTRT1/2, SUBSIZE1/2), FASTAXIS/SLOWAXIS set, and in
the tables every x/y pair of columns exchanged. The readout-pattern truth follows: the row term
of the model frame is a column term of the stored image (PATROW and PATCOL exchange names,
their values stay as they are).
"""
from __future__ import annotations

import os

import numpy as np
from astropy.io import fits

__all__ = ["transpose_products"]

_KEYWORD_PAIRS = (("SUBSTRT1", "SUBSTRT2"), ("SUBSIZE1", "SUBSIZE2"))
_COLUMN_PAIRS = (("x", "y"), ("number_of_columns", "number_of_rows"))
_EXTNAME_SWAP = {"PATROW": "PATCOL", "PATCOL": "PATROW", "PATROW0": "PATCOL0", "PATCOL0": "PATROW0"}


def transpose_products(paths, axes):
    """Rewrite each FITS file of ``paths`` in the transposed layout; ``axes`` = (FASTAXIS,
    SLOWAXIS) of the stored frame."""
    for path in paths:
        _transpose_file(os.fspath(path), axes)


def _swap_keywords(header, axes):
    for first, second in _KEYWORD_PAIRS:
        if first in header and second in header:
            header[first], header[second] = header[second], header[first]
    if "FASTAXIS" in header:
        header["FASTAXIS"], header["SLOWAXIS"] = axes
    return header


def _swap_columns(data):
    names = {name.lower(): name for name in data.dtype.names}
    out = data.copy()
    for first, second in _COLUMN_PAIRS:
        if first in names and second in names:
            out[names[first]], out[names[second]] = data[names[second]], data[names[first]]
    return out


def _transpose_file(path, axes):
    hdus = []
    with fits.open(path) as hdul:
        for hdu in hdul:
            header = _swap_keywords(hdu.header.copy(), axes)
            if isinstance(hdu, fits.PrimaryHDU):
                hdus.append(fits.PrimaryHDU(data=hdu.data, header=header))
            elif isinstance(hdu, fits.ImageHDU):
                data = hdu.data
                name = _EXTNAME_SWAP.get(hdu.name)
                if name is None:   # an image: transposed
                    name = hdu.name
                    if data is not None and data.ndim >= 2:
                        data = np.ascontiguousarray(np.swapaxes(data, -1, -2))
                # else one readout-pattern value per row or column: the vector stays, renamed
                hdus.append(fits.ImageHDU(data=data, header=header, name=name))
            elif isinstance(hdu, fits.BinTableHDU) and hdu.data is not None:
                hdus.append(fits.BinTableHDU(data=_swap_columns(hdu.data), header=header, name=hdu.name))
            else:
                hdus.append(hdu.copy())
    temporary = path + ".transposing"
    fits.HDUList(hdus).writeto(temporary, overwrite=True)
    os.replace(temporary, path)
