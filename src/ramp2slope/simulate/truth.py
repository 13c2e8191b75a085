"""The injected truth of a simulated exposure: ``<root>_truth.fits``.

Layout (all arrays in the exposure's DMS orientation and subarray coordinates, 0-based):

======== ============================ =====================================================
HDU      type, shape                  content
======== ============================ =====================================================
PRIMARY  header                       the simulation parameters (see ``Truth.params``)
RATE     f4 (ny, nx)                  light rate in linear DN/s (before non-linearity; dark
                                      excluded; 0 on reference and dead pixels)
DARKRATE f4 (ny, nx)                  dark current in linear DN/s (what the DARK holds per
                                      second)
SATGROUP i2 (nints, ny, nx)           first group whose raw DN reached the SATURATION
                                      threshold, -1 if never (no neighbour growth)
BADPIX   u4 (ny, nx)                  injected defects as JWST flag bits: REFERENCE_PIXEL,
                                      DEAD|DO_NOT_USE, HOT, WARM, LOW_QE,
                                      OTHER_BAD_PIXEL|DO_NOT_USE (noisy), NO_SAT_CHECK
                                      (NaN threshold), NO_LIN_CORR (NaN coefficients),
                                      NO_GAIN_VALUE (gain 0/NaN), UNRELIABLE_BIAS
PATROW   f4 (nints, ngroups, ny)      readout pattern per group: row term (1/f noise)
PATCOL   f4 (nints, ngroups, nx)      readout pattern per group: column term (amplifier and
                                      odd/even offsets); pattern = PATROW[..., :, None] +
                                      PATCOL[..., None, :]
PATROW0  f4 (nints, ny)               same for the first frame (ZEROFRAME)
PATCOL0  f4 (nints, nx)
CRS      table                        one row per pixel hit by a cosmic ray: integration,
                                      group (first group showing the charge), frame (0-based
                                      frame of arrival), y, x, amplitude (linear DN deposited;
                                      with NFRAMES > 1 a hit inside a group's frames shows
                                      partly in that group and fully from the next), event
SOURCES  table                        x, y (0-based full-frame DMS), sigma (pixels),
                                      peak_rate (DN/s before the pixel response),
                                      saturating (1 for the bright sources placed to
                                      saturate mid-ramp)
======== ============================ =====================================================

The raw data follow ``raw = bias + PATROW + PATCOL + invlin(Q) + read noise`` with ``Q`` the
accumulated linear DN: ``(RATE + DARKRATE) * t`` plus Poisson noise and cosmic rays. The bias is
the SUPERBIAS reference (except UNRELIABLE_BIAS pixels) and ``invlin`` the exact inverse of the
LINEARITY COEFFS polynomial.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.io import fits

from . import fitsio


@dataclass
class Truth:
    rate: np.ndarray
    dark_rate: np.ndarray
    satgroup: np.ndarray
    badpix: np.ndarray
    pattern_row: np.ndarray
    pattern_col: np.ndarray
    pattern_row0: np.ndarray
    pattern_col0: np.ndarray
    cosmic_rays: np.ndarray
    sources: np.ndarray
    params: dict

    def pattern(self, integration, group):
        """The (ny, nx) readout pattern added to one group."""
        return (self.pattern_row[integration, group][:, None]
                + self.pattern_col[integration, group][None, :])


# keyword -> (params key, comment)
PARAM_KEYWORDS = {
    "SEED": ("seed", "random seed"),
    "DETECTOR": ("detector", "detector"),
    "SUBARRAY": ("subarray", "subarray name"),
    "SUBSTRT1": ("xstart", "1-based DMS start column"),
    "SUBSTRT2": ("ystart", "1-based DMS start row"),
    "SUBSIZE1": ("nx", "columns"),
    "SUBSIZE2": ("ny", "rows"),
    "NOUTPUTS": ("noutputs", "outputs used"),
    "FASTAXIS": ("fastaxis", "fast readout axis"),
    "SLOWAXIS": ("slowaxis", "slow readout axis"),
    "READPATT": ("readpatt", "read pattern"),
    "NINTS": ("nints", "integrations"),
    "NGROUPS": ("ngroups", "groups per integration"),
    "NFRAMES": ("nframes", "frames averaged per group"),
    "GROUPGAP": ("groupgap", "frames skipped between groups"),
    "TFRAME": ("tframe", "[s] frame time"),
    "TGROUP": ("tgroup", "[s] group time"),
    "SKY": ("sky", "[DN/s] sky level before pixel response"),
    "CRRATE": ("cr_rate", "[1/cm2/s] cosmic-ray event rate"),
    "NCREVTS": ("n_cr_events", "cosmic-ray events injected"),
    "NCRHITS": ("n_cr_hits", "pixels hit by cosmic rays"),
    "NSOURCES": ("n_sources", "sources touching the exposure"),
    "DRKPLNS": ("dark_nplanes", "planes in the DARK reference"),
    "ZEROFRAM": ("zeroframe", "ZEROFRAME written"),
    "NLCOEF0": ("nl_coeff0", "reference polynomial A0"),
    "NLCOEF1": ("nl_coeff1", "reference polynomial A1"),
    "NLCOEF2": ("nl_coeff2", "reference polynomial A2"),
    "NLCOEF3": ("nl_coeff3", "reference polynomial A3"),
    "NLCOEF4": ("nl_coeff4", "reference polynomial A4"),
}


def write_truth(path, *, rate, dark_rate, satgroup, badpix, pattern, cosmic_rays, sources, params):
    cards = [("TRUTHVER", 1, "truth file layout version")]
    for keyword, (key, comment) in PARAM_KEYWORDS.items():
        if key in params:
            value = params[key]
            if isinstance(value, np.generic):
                value = value.item()
            cards.append((keyword, value, comment))
    with open(path, "wb") as handle:
        fitsio.write_header(handle, fitsio.primary_header(cards))
        fitsio.write_image(handle, rate.astype(np.float32, copy=False), "RATE", [("BUNIT", "DN/s")])
        fitsio.write_image(handle, dark_rate.astype(np.float32, copy=False), "DARKRATE", [("BUNIT", "DN/s")])
        fitsio.write_image(handle, satgroup.astype(np.int16, copy=False), "SATGROUP")
        fitsio.write_image(handle, badpix.astype(np.uint32, copy=False), "BADPIX")
        fitsio.write_image(handle, pattern.row, "PATROW", [("BUNIT", "DN")])
        fitsio.write_image(handle, pattern.col, "PATCOL", [("BUNIT", "DN")])
        fitsio.write_image(handle, pattern.row0, "PATROW0", [("BUNIT", "DN")])
        fitsio.write_image(handle, pattern.col0, "PATCOL0", [("BUNIT", "DN")])
        fitsio.write_table(handle, cosmic_rays, "CRS")
        fitsio.write_table(handle, sources, "SOURCES")


def load_truth(path):
    """Read a truth file back into a :class:`Truth`."""
    with fits.open(path, memmap=False) as hdul:
        header = hdul[0].header
        params = {key: header[keyword] for keyword, (key, _) in PARAM_KEYWORDS.items()
                  if keyword in header}

        def table(name):
            data = hdul[name].data
            if data is None:
                return np.zeros(0, dtype=[(c.name, c.dtype) for c in hdul[name].columns])
            return np.array(data).view(np.recarray)

        return Truth(
            rate=hdul["RATE"].data.astype(np.float32),
            dark_rate=hdul["DARKRATE"].data.astype(np.float32),
            satgroup=hdul["SATGROUP"].data.astype(np.int16),
            badpix=hdul["BADPIX"].data.astype(np.uint32),
            pattern_row=hdul["PATROW"].data.astype(np.float32),
            pattern_col=hdul["PATCOL"].data.astype(np.float32),
            pattern_row0=hdul["PATROW0"].data.astype(np.float32),
            pattern_col0=hdul["PATCOL0"].data.astype(np.float32),
            cosmic_rays=table("CRS"),
            sources=table("SOURCES"),
            params=params,
        )
