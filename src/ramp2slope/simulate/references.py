"""Reference files matching a simulated exposure (MASK, SATURATION, SUPERBIAS, LINEARITY, DARK,
GAIN, READNOISE).

Every file has an empty primary HDU carrying the CRDS-style keywords and no ASDF extension. They
are full frame (SUBARRAY='FULL', SUBSTRT=1,1, SUBSIZE=2048,2048) unless ``full_frame=False``,
except the DARK, which is always specific to the exposure's subarray because the pipeline does
not cut darks out. Large arrays are written plane by plane.
"""
from __future__ import annotations

import datetime as _dt

import numpy as np

from ..datamodels import dqflags
from . import fitsio
from .detector import INSTRUMENT, INSTRUMENT_MODES, NPIX

REFTYPES = ("mask", "saturation", "superbias", "linearity", "dark", "gain", "readnoise")

_DATAMODL = {
    "mask": "MaskModel", "saturation": "SaturationModel", "superbias": "SuperBiasModel",
    "linearity": "LinearityModel", "dark": "DarkModel", "gain": "GainModel",
    "readnoise": "ReadnoiseModel",
}

_DESCRIPTIONS = {
    "mask": "Simulated bad-pixel mask",
    "saturation": "Simulated saturation thresholds in raw DN",
    "superbias": "Simulated superbias",
    "linearity": "Simulated classical non-linearity coefficients",
    "dark": "Simulated dark current per frame",
    "gain": "Simulated gain",
    "readnoise": "Simulated CDS read noise",
}

P = dqflags.pixel


def dq_def_entries(*names):
    text = {
        "DO_NOT_USE": "Bad pixel. Do not use.",
        "DEAD": "Dead pixel",
        "HOT": "Hot pixel",
        "WARM": "Warm pixel",
        "LOW_QE": "Low quantum efficiency",
        "OTHER_BAD_PIXEL": "Noisy or otherwise unusable pixel",
        "REFERENCE_PIXEL": "Reference pixel",
        "NO_SAT_CHECK": "Saturation check not possible",
        "UNRELIABLE_BIAS": "Bias variance large",
        "NO_LIN_CORR": "Linearity correction not available",
        "UNRELIABLE_DARK": "Dark variance large",
        "BAD_REF_PIXEL": "All references pixels bad",
    }
    return fitsio.dq_def_table([(P[name], name, text[name]) for name in names])


class RefWindow:
    """Where the reference arrays sit on the detector (full frame or the exposure's subarray)."""

    def __init__(self, geom, full_frame):
        if full_frame:
            self.name, self.xstart, self.ystart, self.nx, self.ny = "FULL", 1, 1, NPIX, NPIX
            self.slices = (slice(0, NPIX), slice(0, NPIX))
        else:
            self.name, self.xstart, self.ystart = geom.subarray, geom.xstart, geom.ystart
            self.nx, self.ny = geom.nx, geom.ny
            self.slices = geom.slices

    def cut(self, full):
        return np.ascontiguousarray(full[self.slices])


def _primary(reftype, static, window, seed, extra=()):
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    cards = [
        ("DATE", now, "UTC date file created"),
        ("ORIGIN", "ramp2slope", "organization responsible for creating file"),
        ("TELESCOP", "JWST", "telescope used to acquire the data"),
        ("INSTRUME", INSTRUMENT[static.detector], "instrument used to acquire the data"),
        ("DETECTOR", static.detector, "name of detector used to acquire the data"),
        ("REFTYPE", reftype.upper(), "type of reference file"),
        ("DATAMODL", "DarkNirspecModel" if reftype == "dark" and INSTRUMENT[static.detector] == "NIRSPEC"
         else _DATAMODL[reftype], "type of data model"),
        ("FILETYPE", reftype.upper(), "type of data in the file"),
        ("DESCRIP", _DESCRIPTIONS[reftype], "description of the reference file"),
        ("AUTHOR", "ramp2slope.simulate", "author of the reference file"),
        ("PEDIGREE", "SIMULATION", "pedigree of the reference file"),
        ("USEAFTER", "2022-01-01T00:00:00", "use after date of the reference file"),
        ("READPATT", "ANY", "readout pattern"),
        ("SUBARRAY", window.name, "subarray used"),
        ("SUBSTRT1", window.xstart, "starting pixel in axis 1 direction"),
        ("SUBSTRT2", window.ystart, "starting pixel in axis 2 direction"),
        ("SUBSIZE1", window.nx, "number of pixels in axis 1 direction"),
        ("SUBSIZE2", window.ny, "number of pixels in axis 2 direction"),
        ("FASTAXIS", static.fastaxis, "fast readout axis direction"),
        ("SLOWAXIS", static.slowaxis, "slow readout axis direction"),
    ]
    cards.extend(extra)
    cards.append(("HISTORY", f"Simulated by ramp2slope.simulate with seed {seed}."))
    return fitsio.primary_header(cards)


def _open(path, header):
    handle = open(path, "wb")
    fitsio.write_header(handle, header)
    return handle


def write_mask(path, static, window, seed):
    with _open(path, _primary("mask", static, window, seed)) as handle:
        fitsio.write_image(handle, window.cut(static.mask_dq), "DQ")
        fitsio.write_table(handle, dq_def_entries("DO_NOT_USE", "DEAD", "HOT", "WARM", "LOW_QE",
                                               "OTHER_BAD_PIXEL", "REFERENCE_PIXEL"), "DQ_DEF")


def write_saturation(path, static, window, seed):
    sat = window.cut(static.sat_ref)
    dq = np.where(np.isnan(sat), np.uint32(P["NO_SAT_CHECK"]), np.uint32(0)).astype(np.uint32)
    with _open(path, _primary("saturation", static, window, seed)) as handle:
        fitsio.write_image(handle, sat, "SCI", [("BUNIT", "DN")])
        fitsio.write_image(handle, dq, "DQ")
        fitsio.write_table(handle, dq_def_entries("DO_NOT_USE", "NO_SAT_CHECK"), "DQ_DEF")


def write_superbias(path, static, window, seed):
    bias = window.cut(static.bias_ref)
    err = window.cut(static.rn_cds) / np.float32(np.sqrt(2.0 * 50.0))   # mean of 50 frames
    dq = np.zeros(bias.shape, dtype=np.uint32)
    flat_index = static.defect_index["bias_unreliable"]
    fy, fx = np.unravel_index(flat_index, (NPIX, NPIX))
    ys, xs = window.slices
    inside = (fy >= ys.start) & (fy < ys.stop) & (fx >= xs.start) & (fx < xs.stop)
    dq[fy[inside] - ys.start, fx[inside] - xs.start] = P["UNRELIABLE_BIAS"]
    with _open(path, _primary("superbias", static, window, seed)) as handle:
        fitsio.write_image(handle, bias, "SCI", [("BUNIT", "DN")])
        fitsio.write_image(handle, err, "ERR", [("BUNIT", "DN")])
        fitsio.write_image(handle, dq, "DQ")
        fitsio.write_table(handle, dq_def_entries("DO_NOT_USE", "UNRELIABLE_BIAS"), "DQ_DEF")


def write_linearity(path, static, window, seed, nl):
    scale = window.cut(static.nl_scale)
    flags = window.cut(static.truth_flags)
    bad = (flags & np.uint32(P["NO_LIN_CORR"])) != 0
    dq = np.where(bad, np.uint32(P["NO_LIN_CORR"]), np.uint32(0)).astype(np.uint32)
    shape = (nl.ncoeffs,) + scale.shape
    with _open(path, _primary("linearity", static, window, seed)) as handle:
        for extname, base in (("COEFFS", nl.COEFFS), ("INV_COEFFS", nl.inv_coeffs)):
            writer = fitsio.ImageWriter(handle, shape, np.float32, extname)
            power = np.ones(scale.shape, dtype=np.float32)
            for k, coeff in enumerate(base):
                plane = np.full(scale.shape, np.float32(coeff)) if k == 0 else np.float32(coeff) * power
                if k >= 1:
                    power *= scale
                plane[bad] = np.nan
                writer.write(plane.astype(np.float32, copy=False))
            writer.close()
        fitsio.write_image(handle, dq, "DQ")
        fitsio.write_table(handle, dq_def_entries("DO_NOT_USE", "NO_LIN_CORR"), "DQ_DEF")


def write_dark(path, static, geom, readout, nplanes, seed, full_frame_exposure):
    """Dark signal (linear DN) at each frame, NFRAMES=1, GROUPGAP=0, for the exposure's window.

    Plane k holds ``dark_rate * (k + 1) * TFRAME``, the charge collected by frame k after the
    reset, so a dark shorter than the exposure is extended exactly by the pipeline's linear
    extrapolation.
    """
    window = RefWindow(geom, full_frame=full_frame_exposure)
    rate = window.cut(static.dark_rate)
    gain = window.cut(static.gain)
    flags = window.cut(static.mask_dq)
    dq = np.zeros(rate.shape, dtype=np.uint32)
    dq[(flags & np.uint32(P["HOT"])) != 0] |= np.uint32(P["HOT"])
    dq[(flags & np.uint32(P["WARM"])) != 0] |= np.uint32(P["WARM"])
    tframe = np.float32(readout.tframe)
    extra = [
        ("EXP_TYPE", _dark_exp_type(static.detector), "type of data in the exposure"),
        ("NOUTPUTS", geom.noutputs, "number of detector outputs used"),
        ("NINTS", 1, "number of integrations"),
        ("NGROUPS", int(nplanes), "number of groups (planes) in the dark"),
        ("NFRAMES", 1, "number of frames per group"),
        ("GROUPGAP", 0, "number of frames dropped between groups"),
        ("TFRAME", readout.tframe, "[s] time between frames"),
        ("TGROUP", readout.tframe, "[s] time between groups"),
    ]
    shape = (int(nplanes),) + rate.shape
    with _open(path, _primary("dark", static, window, seed, extra)) as handle:
        writer = fitsio.ImageWriter(handle, shape, np.float32, "SCI", [("BUNIT", "DN")])
        for k in range(int(nplanes)):
            writer.write(rate * (tframe * np.float32(k + 1)))
        writer.close()
        # Uncertainty of a dark averaged over 40 integrations: Poisson noise of the dark charge
        # plus the single-frame read noise.
        rn2 = (window.cut(static.rn_frame) ** 2)
        writer = fitsio.ImageWriter(handle, shape, np.float32, "ERR", [("BUNIT", "DN")])
        for k in range(int(nplanes)):
            var = rate * (tframe * np.float32(k + 1)) / gain + rn2
            writer.write(np.sqrt(var / np.float32(40.0)))
        writer.close()
        fitsio.write_image(handle, dq, "DQ")
        fitsio.write_image(handle, rate * gain, "AVDRKCUR", [("BUNIT", "electron / s")])
        fitsio.write_table(handle, dq_def_entries("DO_NOT_USE", "HOT", "WARM", "UNRELIABLE_DARK"), "DQ_DEF")


def write_gain(path, static, window, seed):
    with _open(path, _primary("gain", static, window, seed)) as handle:
        fitsio.write_image(handle, window.cut(static.gain_ref), "SCI", [("BUNIT", "ELECTRONS/DN")])


def write_readnoise(path, static, window, seed):
    with _open(path, _primary("readnoise", static, window, seed)) as handle:
        fitsio.write_image(handle, window.cut(static.rn_cds), "SCI", [("BUNIT", "DN")])


def write_references(refdir, root, static, geom, readout, nl, seed, dark_nplanes, full_frame=True):
    """Write the whole reference set; returns {reftype: path}."""
    refdir.mkdir(parents=True, exist_ok=True)
    window = RefWindow(geom, full_frame)
    paths = {reftype: refdir / f"{root}_{reftype}.fits" for reftype in REFTYPES}
    write_mask(paths["mask"], static, window, seed)
    write_saturation(paths["saturation"], static, window, seed)
    write_superbias(paths["superbias"], static, window, seed)
    write_linearity(paths["linearity"], static, window, seed, nl)
    write_dark(paths["dark"], static, geom, readout, dark_nplanes, seed, geom.is_full)
    write_gain(paths["gain"], static, window, seed)
    write_readnoise(paths["readnoise"], static, window, seed)
    return paths


def _dark_exp_type(detector):
    mode = INSTRUMENT_MODES.get(INSTRUMENT[detector])
    return mode.dark_exp_type if mode else "NRC_DARK"
