"""Sigma-clipped mean of reference pixels, with the exact semantics the official step uses.

The official step clips with ``scipy.stats.sigmaclip`` and averages what survives. The arithmetic
happens in the dtype of the values: for float32 input the mean and the standard deviation are
float32 numpy reductions (pairwise summation), the clip limits are float32, and the result is a
float32 scalar. Matching that bit for bit matters because a value sitting exactly on a clip limit
changes the mean, so this module uses the same numpy reductions rather than a compiled kernel.
The lists are short (at most a few thousand reference pixels per call).
"""
import numpy as np


def sigma_clip_values(values, low, high):
    """Iterative sigma clipping with ``scipy.stats.sigmaclip`` semantics.

    Repeatedly keep ``mean - low*std <= v <= mean + high*std`` (population std, both computed in
    the dtype of ``values``) until nothing more is removed. Returns ``(kept, lower, upper)``.
    """
    kept = np.ravel(np.asarray(values))
    low = float(low)
    high = float(high)
    removed = 1
    with np.errstate(invalid="ignore", divide="ignore"):
        while removed:
            if kept.size == 0:
                # Everything was rejected (only possible with NaN or infinite values); the
                # official loop then stops with NaN limits.
                lower = upper = kept.dtype.type(np.nan)
                break
            spread = kept.std()
            centre = kept.mean()
            before = kept.size
            lower = centre - spread * low
            upper = centre + spread * high
            kept = kept[(kept >= lower) & (kept <= upper)]
            removed = before - kept.size
    return kept, lower, upper


def sigma_clipped_mean(values, siglimit):
    """Clipped mean of the usable reference pixels ``values`` (1-D, in reading order).

    Returns None when ``values`` is empty. When the values have zero spread the plain mean is
    returned (as float64, which is what the official code does); otherwise the mean of the values
    that survive :func:`sigma_clip_values`, in the dtype of ``values``.
    """
    values = np.asarray(values)
    if values.size == 0:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        if np.std(values, dtype=np.float64) != 0.0:
            kept, _, _ = sigma_clip_values(values, siglimit, siglimit)
            if kept.size == 0:
                return kept.dtype.type(np.nan)
            return kept.mean()
        return values.mean(dtype=np.float64)


def average_or_single(a, b):
    """Average of two clipped means; the one that exists if the other is None; else None.

    Done with numpy scalar arithmetic, so the result keeps the precision of the inputs
    (float32 when both are float32), as in the official code.
    """
    if a is None:
        return b
    if b is None:
        return a
    return 0.5 * (a + b)
