"""The iterative two-point jump rule in plain float64 numpy, as a reference for the tests."""
import warnings

import numpy as np


def reference_iterative(delta, rn2, thr=4.0):
    """Spec §4.12 step 5 on ``delta`` (ndiffs, npix) electrons with read-noise variance ``rn2``
    (e-^2, a scalar or one value per pixel): the flags an ideal implementation raises."""
    absd = np.abs(delta)
    rn2 = np.broadcast_to(np.asarray(rn2, dtype=np.float64), absd.shape[1:])
    flags = np.zeros(absd.shape, bool)
    active = np.arange(absd.shape[1])
    while active.size:
        sub = absd[:, active]
        clipped = np.where(sub == np.nanmax(sub, axis=0), np.nan, sub)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # all-NaN pixels
            centre = np.nanmedian(clipped, axis=0)
            ratio = np.abs(sub - centre) / np.sqrt(np.abs(centre) + rn2[active])
            rmax = np.nanmax(ratio, axis=0)
        hit = rmax > thr
        rows, cols = np.nonzero((ratio == rmax) & hit)
        flags[rows, active[cols]] = True
        absd[rows, active[cols]] = np.nan
        active = active[hit]
    return flags
