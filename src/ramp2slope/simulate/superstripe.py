"""A superstripe exposure: NIRISS SOSS ``SUB204STRIPE_SOSS`` (10 stripes of 204 rows).

Each integration of such a file reads 4 reference rows and one 204-row block of the detector's
slow axis, the block moving on by 204 rows from one integration to the next and the pattern
repeating every 10 integrations (see ``references/stripes.py``). The simulator makes it from an
ordinary exposure of the window the stripes tile (256 x 2048 at row 1793, read at the stripe's
frame time), one integration of that exposure per stripe integration: integration ``i`` of the
file holds the rows of stripe ``i % 10`` of integration ``i`` of the window. The window's
reference files and truth serve the striped file (the pipeline collates the stripes back into
that window at refpix).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from ..references.stripes import StripeLayout, superstripe_ranges
from ..refpix.orientation import dms_to_detector
from .exposure import SimulationResult, simulate_exposure
from .striped import stripe_group_table, stripe_primary

__all__ = ["SOSS_SUPERSTRIPE", "simulate_superstripe_exposure"]

#: The layout of jwst's own superstripe tests (``SUB204STRIPE_SOSS``); SUBSTRT1 = 2048 on the
#: reversed slow axis means detector row 0, as jwst reads it.
SOSS_SUPERSTRIPE = StripeLayout(
    name="SUB204STRIPE_SOSS", xstart=2048, ystart=1793, xsize=208, ysize=256, fastaxis=-2,
    slowaxis=-1, reads1=4, skips1=0, reads2=204, skips2=0, repeat_stripe=1, interleave_reads1=1,
    superstripe_step=204, num_superstripe=10)

def _stripe_frame_time(layout):
    # one output: (fast pixels + 12) clocks per row, two rows of overhead, 10 us per clock
    return round((layout.fast_size + 12) * (layout.slow_size + 2) * 1e-5, 5)


def _cut_stripes(window, layout, ranges):
    """(n, ..., ny_w, nx_w) DMS window -> (n, ..., ysize, xsize): integration i keeps the rows
    of stripe i % nstripe (detector-frame slow rows of the window, which spans the slow axis)."""
    fast, slow = layout.fastaxis, layout.slowaxis
    lead = window.shape[1:-2]
    out = np.empty((window.shape[0],) + lead + (layout.ysize, layout.xsize), window.dtype)
    for i in range(window.shape[0]):
        sci_full, sci_sub, ref_full, ref_sub = ranges[i % len(ranges)]
        source = dms_to_detector(window[i], fast, slow)
        target = dms_to_detector(out[i], fast, slow)   # a view: filled in place
        for (f0, f1), (s0, s1) in zip(sci_full + ref_full, sci_sub + ref_sub):
            target[..., s0:s1, :] = source[..., f0:f1, :]
    return out


def simulate_superstripe_exposure(outdir, *, nints=2, ngroups=5, seed=0, layout=SOSS_SUPERSTRIPE):
    """Simulate a superstripe exposure (``nints`` collated integrations, so ``nints`` times
    ``num_superstripe`` integrations in the file) with its reference files and truth.

    Only layouts whose stripes tile the whole slow axis of a window of a transposed detector
    (NIRISS SOSS) are simulated. The references are full frames, as superstripe processing needs;
    the DARK and the truth are those of the window the stripes collate into.
    """
    outdir = Path(outdir)
    nstripe = layout.num_superstripe
    ranges = superstripe_ranges(layout)
    window = simulate_exposure(
        outdir / "window", detector="NIS", readpatt="NISRAPID", size=(layout.fast_size, 2048),
        origin=(layout.ystart, 1), ngroups=ngroups, nints=nints * nstripe, seed=seed,
        frame_time=_stripe_frame_time(layout))
    path = outdir / window.uncal.name
    with fits.open(window.uncal) as hdul:
        primary = stripe_primary(hdul[0].header, layout)
        primary["EXP_TYPE"] = "NIS_SOSS"
        primary["FILTER"], primary["PUPIL"] = "CLEAR", "GR700XD"
        hdus = [fits.PrimaryHDU(header=primary)]
        for hdu in hdul[1:]:
            if hdu.name in ("SCI", "ZEROFRAME"):
                data = hdu.data if hdu.name == "SCI" else hdu.data[:, np.newaxis]
                cut = _cut_stripes(data, layout, ranges)
                hdus.append(fits.ImageHDU(cut if hdu.name == "SCI" else cut[:, 0], name=hdu.name,
                                          header=hdu.header))
            elif hdu.name == "GROUP":
                hdus.append(stripe_group_table(hdu, layout))
            else:
                hdus.append(hdu.copy())
        fits.HDUList(hdus).writeto(path, overwrite=True)
    window.uncal.unlink()   # the window's raw data are not needed once cut
    shape = (nints * nstripe, ngroups, layout.ysize, layout.xsize)
    return SimulationResult(uncal=path, refs=window.refs, truth=window.truth, root=window.root,
                            shape=shape)
