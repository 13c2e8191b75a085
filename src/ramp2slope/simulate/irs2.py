"""A NIRSpec IRS2 exposure (READPATT NRSIRS2RAPID): a full frame with interleaved reference samples.

The simulator makes it from a traditional NRS1/NRS2 full-frame exposure read at IRS2's frame
time (14.5889 s): its 2048 science rows (the fast axis of NIRSpec is the stored row axis) are
spread out into the 3200-row IRS2 layout (:mod:`ramp2slope.datamodels.irs2_layout`), and the
other rows are filled with reference samples: the reference output and, after every 16 science
samples of an amplifier, 4 interleaved reference samples. These carry a bias of their own, read
noise and the readout pattern of the science pixels read at the same time (their output's
offsets and the 1/f noise, which refpix's IRS2 correction removes), but no light.

The MASK and SUPERBIAS references are rewritten in the IRS2 layout (the superbias holds the
reference samples' bias, a few interleaved samples are flagged BAD_REF_PIXEL in the MASK), the
other references keep the 2048 science rows, and a REFPIX reference (the IRS2 table of Fourier
weights and its DQ table of bad reference columns) is added. The truth is the traditional
exposure's: refpix removes the reference samples, and every later step sees 2048 x 2048.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from ..datamodels import dqflags
from ..datamodels.irs2_layout import IRS2Layout, rows_mask
from .exposure import SimulationResult, simulate_exposure
from .references import dq_def_entries

__all__ = ["IRS2_FRAME_TIME", "simulate_irs2_exposure", "write_irs2_refpix"]

#: seconds per IRS2 full frame (712 clocks of 10 us per line, 2048 lines, plus the frame overhead)
IRS2_FRAME_TIME = 14.58889
#: elements of each alpha/beta column of a REFPIX reference: the time-ordered frame, complex
_REFPIX_ROWS = 2 * 712 * 2048
_REFERENCE_BIAS = 11000.0
_REFERENCE_NOISE = 6.0


def _expand(normal, rows, fill):
    """(..., 2048, nx) science rows -> (..., len(rows), nx), the other rows from ``fill``."""
    out = np.array(np.broadcast_to(fill, normal.shape[:-2] + (rows.size, normal.shape[-1])),
                   dtype=normal.dtype)
    out[..., rows, :] = normal
    return out


def _reference_samples(rng, base, pattern_row, pattern_col, rows, sector):
    """Raw values of the reference rows of one group: their bias ``base``, the readout pattern
    they share with the science pixels read at the same time, and read noise.

    The pattern of the stored frame is a per-row part (amplifier and parity offsets: NIRSpec's
    amplifiers are bands of stored rows) and a per-column part (the 1/f noise, one value per
    detector row, common to all outputs). A reference sample gets the 1/f value of its column and
    the mean offset of the science rows of its output (the reference output: of all of them).
    """
    by_row = np.zeros(rows.size, np.float32)
    by_row[rows] = pattern_row
    offsets = np.full(rows.size, np.float32(pattern_row.mean()))
    for s in range(1, 5):
        in_sector = sector == s
        offsets[in_sector] = by_row[in_sector & rows].mean()
    samples = rng.normal(0.0, _REFERENCE_NOISE, base.shape).astype(np.float32)
    samples += base
    samples += offsets[~rows, np.newaxis]
    samples += pattern_col[np.newaxis, :]
    return np.clip(np.rint(samples), 0, 65535).astype(np.uint16)


def _rewrite_uncal(path, truth_path, rows, layout, detector, seed):
    from .truth import load_truth

    truth = load_truth(truth_path)
    rng = np.random.default_rng([seed, 2])
    read_order = np.arange(rows.size)
    if str(detector).upper() == "NRS2":
        read_order = read_order[::-1]
    sector = read_order // layout.output_length
    with fits.open(path) as hdul:
        primary = hdul[0].header.copy()
        primary["READPATT"] = "NRSIRS2RAPID"
        primary["NRS_NORM"] = (layout.n, "normal pixels read between references")
        primary["NRS_REF"] = (layout.r, "reference pixels read between normals")
        hdus = [fits.PrimaryHDU(header=primary)]
        for hdu in hdul[1:]:
            if hdu.name == "SCI":
                data = hdu.data
                nints, ngroups = data.shape[:2]
                shape = (nints, ngroups, rows.size, data.shape[-1])
                base = _reference_base(rows.size, data.shape[-1], seed)[~rows]
                irs2 = np.empty(shape, np.uint16)
                for i in range(nints):
                    irs2[i][:, rows] = data[i]
                    for g in range(ngroups):
                        irs2[i, g][~rows] = _reference_samples(
                            rng, base, truth.pattern_row[i, g], truth.pattern_col[i, g], rows,
                            sector)
                hdus.append(fits.ImageHDU(irs2, header=hdu.header, name="SCI"))
            else:
                hdus.append(hdu.copy())
        fits.HDUList(hdus).writeto(path, overwrite=True)


def _reference_base(nrows, nx, seed):
    """The reference samples' bias: a level per IRS2 row (column of the detector's fast read)."""
    rng = np.random.default_rng([seed, 3])
    level = _REFERENCE_BIAS + rng.normal(0.0, 40.0, (nrows, 1))
    return np.broadcast_to(level, (nrows, nx)).astype(np.float32)


def _rewrite_reference(path, rows, seed, bad_columns):
    with fits.open(path) as hdul:
        reftype = hdul[0].header["REFTYPE"].upper()
        hdus = [fits.PrimaryHDU(header=hdul[0].header.copy())]
        for hdu in hdul[1:]:
            if hdu.is_image and hdu.data is not None and hdu.data.ndim == 2:
                if hdu.name == "SCI" and reftype == "SUPERBIAS":
                    fill = _reference_base(rows.size, hdu.data.shape[-1], seed)
                else:
                    fill = np.zeros((rows.size, hdu.data.shape[-1]), hdu.data.dtype)
                data = _expand(hdu.data, rows, fill)
                if hdu.name == "DQ" and reftype == "MASK":
                    data[bad_columns, :] |= np.uint32(dqflags.pixel["BAD_REF_PIXEL"])
                hdus.append(fits.ImageHDU(data, header=hdu.header, name=hdu.name))
            elif hdu.name == "DQ_DEF" and reftype == "MASK":
                names = [str(name).strip() for name in hdu.data["NAME"]]
                hdus.append(fits.BinTableHDU(dq_def_entries(*names, "BAD_REF_PIXEL"), name="DQ_DEF"))
            else:
                hdus.append(hdu.copy())
        fits.HDUList(hdus).writeto(path, overwrite=True)


def write_irs2_refpix(path, template_header, seed):
    """A REFPIX reference: per-output complex Fourier weights of the reference output (alpha)
    and of the output's own interleaved reference samples (beta), stored as float32 (real,
    imag) pairs, and a DQ table marking a few interleaved reference columns bad.

    The weights pass the slow part of the read sequence (up to a few cycles per detector line,
    where the offsets and the 1/f noise are) and stop the rest: weighting white read noise of
    the reference samples would add it to every science pixel. The reference output, read at
    the same moments as the pixels, carries the weight (alpha near 1 removes a signal common to
    all outputs exactly); the interleaved samples a little; both get a small random ripple.
    """
    rng = np.random.default_rng([seed, 4])
    n = _REFPIX_ROWS // 2
    k = np.arange(n)
    cycles = np.minimum(k, n - k)                 # |frequency| in cycles per frame
    passband = np.exp(-(cycles / (4.0 * 2048)) ** 2)
    columns = []
    for kind, gain in (("alpha", 1.0), ("beta", 0.1)):
        for amp in range(4):
            weight = gain * passband * (1.0 + rng.normal(0.0, 0.01, n) + 1j * rng.normal(0.0, 0.01, n))
            pairs = np.empty(2 * n, np.float32)
            pairs[0::2] = weight.real
            pairs[1::2] = weight.imag
            columns.append(fits.Column(name=f"{kind}_{amp}", format="E", array=pairs))
    dq = fits.BinTableHDU.from_columns([
        fits.Column(name="output", format="I", array=np.array([1, 1, 2, 2, 3, 3, 4, 4], np.int16)),
        fits.Column(name="odd_even", format="I", array=np.array([1, 2] * 4, np.int16)),
        fits.Column(name="mask", format="J", array=np.array(
            [2**3, 0, 0, 2**17 + 2**18, 0, 0, 2**30, 0], np.uint32).astype(np.int64).astype(np.int32)),
    ], name="DQ")
    header = template_header.copy()
    header["REFTYPE"] = "REFPIX"
    header["DATAMODL"] = "IRS2Model"
    header["FILETYPE"] = "REFPIX"
    header["DESCRIP"] = "IRS2 Fourier weights (simulated)"
    header["READPATT"] = "ANY"
    fits.HDUList([fits.PrimaryHDU(header=header),
                  fits.BinTableHDU.from_columns(columns, name="IRS2"), dq]).writeto(path, overwrite=True)


def simulate_irs2_exposure(outdir, *, detector="NRS1", ngroups=5, nints=1, seed=0,
                           layout=IRS2Layout()):
    """Simulate an IRS2 full-frame exposure of NRS1 or NRS2 with its references and truth."""
    outdir = Path(outdir)
    result = simulate_exposure(outdir, detector=detector, readpatt="NRSRAPID", ngroups=ngroups,
                               nints=nints, seed=seed, zeroframe=False,
                               frame_time=IRS2_FRAME_TIME)
    rows = rows_mask(detector, layout.length, layout)
    _rewrite_uncal(result.uncal, result.truth, rows, layout, detector, seed)
    # a few interleaved reference samples known bad: BAD_REF_PIXEL in the MASK
    reference_rows = np.flatnonzero(~rows[layout.output_length:]) + layout.output_length
    bad_columns = reference_rows[[5, 6, 301, 302]]
    for reftype in ("mask", "superbias"):
        _rewrite_reference(result.refs[reftype], rows, seed, bad_columns)
    refs = dict(result.refs)
    refs["refpix"] = Path(result.refs["mask"]).with_name(f"{result.root}_refpix.fits")
    with fits.open(result.refs["mask"]) as mask:
        write_irs2_refpix(refs["refpix"], mask[0].header, seed)
    shape = (nints, ngroups, layout.length, 2048)
    return SimulationResult(uncal=result.uncal, refs=refs, truth=result.truth, root=result.root,
                            shape=shape)
