"""A multistripe exposure without superstripes: NIRCam's DHS subarrays (``SUB82STRIPE2_DHS``).

Each frame reads the detector's reference row(s), skips ahead, reads a block of science rows,
and, with ``repeat_stripe``, returns to read the reference rows again before the next block
(``references/stripes.py``). The simulator makes it from an ordinary full-frame exposure of the
same detector: every image of the file (SCI, ZEROFRAME, and the DARK reference, which is never
cut by the pipeline) is cut by the stripes exactly as the pipeline cuts a full-frame reference,
while the other references stay full frame. The truth is the full frame's; cut it with
:func:`~ramp2slope.references.stripes.stripe_reference` to compare it with the rate. A re-read
row holds the same values at both reads here (the real reads are apart in time).
"""
from __future__ import annotations

from pathlib import Path

from astropy.io import fits

from ..references.stripes import StripeLayout, stripe_reference
from .exposure import SimulationResult, simulate_exposure
from .striped import stripe_group_table, stripe_primary

__all__ = ["DHS_STRIPES", "simulate_dhs_exposure"]

#: Two 40-row stripes, each after a re-read of the detector's first row (82 rows in all).
DHS_STRIPES = StripeLayout(
    name="SUB82STRIPE2_DHS", xstart=1, ystart=1, xsize=2048, ysize=82, fastaxis=-1, slowaxis=2,
    reads1=1, skips1=400, reads2=40, skips2=300, repeat_stripe=1, interleave_reads1=0)

def _rewrite(path, layout, primary_edits=None):
    """Cut every 2-D-or-more image of a FITS file by the stripes, in place."""
    with fits.open(path) as hdul:
        primary = stripe_primary(hdul[0].header, layout)
        for key, value in (primary_edits or {}).items():
            primary[key] = value
        hdus = [fits.PrimaryHDU(header=primary)]
        for hdu in hdul[1:]:
            if hdu.is_image and hdu.data is not None and hdu.data.ndim >= 2:
                hdus.append(fits.ImageHDU(stripe_reference(hdu.data, layout, 1),
                                          header=hdu.header, name=hdu.name))
            elif hdu.name == "GROUP":
                hdus.append(stripe_group_table(hdu, layout))
            else:
                hdus.append(hdu.copy())
        fits.HDUList(hdus).writeto(path, overwrite=True)


def simulate_dhs_exposure(outdir, *, detector="NRCA1", ngroups=5, nints=2, seed=0,
                          layout=DHS_STRIPES):
    """Simulate a DHS multistripe exposure with its references (DARK cut by the stripes, the
    others full frame) and the full frame's truth."""
    if layout.num_superstripe:
        raise ValueError("simulate_dhs_exposure makes multistripe exposures without superstripes; "
                         "see simulate.superstripe for superstripes")
    result = simulate_exposure(Path(outdir), detector=detector, ngroups=ngroups, nints=nints,
                               seed=seed, filter_name="F150W2", pupil="GDHS0")
    _rewrite(result.uncal, layout, {"EXP_TYPE": "NRC_TSGRISM", "TSOVISIT": True})
    _rewrite(result.refs["dark"], layout)
    shape = (nints, ngroups, layout.ysize, layout.xsize)
    return SimulationResult(uncal=result.uncal, refs=result.refs, truth=result.truth,
                            root=result.root, shape=shape)
