"""Simple Improved Reference Subtraction (SIRS): side-pixel 1/f correction by convolution.

With ``refpix_algorithm='sirs'`` and a SIRSKERNEL reference file (full-frame NIR data only), the
running median of the side reference pixels is replaced by a per-amplifier template: the row
means of the left and right reference columns, with outliers masked, convolved with kernels that
are built from per-detector Fourier coefficients (``gamma`` for the left side, ``zeta`` for the
right side, one row of coefficients per amplifier).

All arithmetic is float64 numpy, one detector column of 2048 values at a time.
"""
import numpy as np

from ..errors import Ramp2SlopeError

#: Ratio of the median absolute deviation to the standard deviation used by the official code.
MAD_TO_SIGMA = 1.48


def sirs_coefficients(tree, detector):
    """``(gamma, zeta)`` for ``detector`` from a SIRSKERNEL tree, or ``(None, None)``.

    ``tree`` maps lower-case detector names (``nrca1``, ``nis``, ...) to ``{'gamma', 'zeta'}``;
    the detector name is matched case-insensitively.
    """
    wanted = str(detector).lower()
    for key, entry in tree.items():
        if str(key).lower() != wanted or not hasattr(entry, "get"):
            continue
        gamma = entry.get("gamma")
        zeta = entry.get("zeta")
        if gamma is not None and zeta is not None:
            return np.array(gamma), np.array(zeta)
    return None, None


def load_sirs_coefficients(path, detector):
    """Read ``(gamma, zeta)`` for ``detector`` from a SIRSKERNEL ASDF file (needs ``asdf``)."""
    try:
        import asdf
    except ImportError:  # pragma: no cover - asdf comes with the oracle packages
        raise Ramp2SlopeError(
            "reading a SIRSKERNEL reference file needs the 'asdf' package") from None
    try:
        with asdf.open(path, lazy_load=False, memmap=False) as handle:
            return sirs_coefficients(handle.tree, detector)
    except (OSError, ValueError) as exc:
        raise Ramp2SlopeError(f"cannot read SIRSKERNEL file {path}: {exc}") from None


def make_sirs_kernels(gamma, zeta, gaussmooth=1.0, halfwidth=30):
    """Real-space kernels ``(left, right)``, lists with one 1-D kernel per amplifier.

    Each coefficient row is turned into a kernel by an inverse real FFT, centred, cut to
    ``2*halfwidth + 1`` taps around the centre, and smoothed with a normalised Gaussian of width
    ``gaussmooth`` (a low-pass filter).
    """
    gamma = np.asarray(gamma)
    zeta = np.asarray(zeta)
    if gamma.ndim != 2 or zeta.shape != gamma.shape:
        raise Ramp2SlopeError(
            f"SIRS coefficients must be two arrays of the same 2-D shape, got "
            f"{gamma.shape} and {zeta.shape}")
    halfwidth = int(halfwidth)
    offsets = np.arange(-halfwidth, halfwidth + 1)
    taper = np.exp(-(offsets ** 2) / (2 * gaussmooth ** 2))
    taper /= np.sum(taper)

    def build(coefficients):
        centre = len(coefficients) - 1
        full = np.fft.fftshift(np.fft.irfft(coefficients))
        cut = full[centre - halfwidth: centre + halfwidth + 1]
        return np.convolve(cut, taper, mode="same")

    left = [build(gamma[amp]) for amp in range(gamma.shape[0])]
    right = [build(zeta[amp]) for amp in range(zeta.shape[0])]
    return left, right


def _masked_row_means(strip, sigreject):
    """Row sums / 4 of the strip with outliers (by a MAD estimate) set to zero, and good counts."""
    centre = np.median(strip)
    spread = MAD_TO_SIGMA * np.median(np.abs(strip - centre))
    good = 1 * (np.abs(strip - centre) <= sigreject * spread)
    ngood = np.sum(good, axis=1)
    means = np.sum(strip * good, axis=1) / 4
    return means, ngood


def sirs_templates(left_strip, right_strip, kernels, sigreject=4.0, namps=4):
    """Per-amplifier row templates to subtract, float64 of shape (nrows, namps).

    ``left_strip``/``right_strip`` are the (nrows, 4) side reference columns in the detector frame
    (after the top/bottom correction), ``kernels`` is the pair from :func:`make_sirs_kernels`.
    Amplifiers without a kernel get a zero template.
    """
    left_strip = np.asarray(left_strip, dtype=np.float64)
    right_strip = np.asarray(right_strip, dtype=np.float64)
    left_means, left_good = _masked_row_means(left_strip, sigreject)
    right_means, right_good = _masked_row_means(right_strip, sigreject)
    ones = np.ones(left_good.shape)
    left_kernels, right_kernels = kernels
    templates = np.zeros((left_strip.shape[0], namps), dtype=np.float64)
    for amp in range(min(len(left_kernels), namps)):
        kern_l = left_kernels[amp]
        kern_r = right_kernels[amp]
        # Normalisations stand in for replacing the masked pixels.
        norm_l = np.convolve(ones, kern_l, mode="same")
        norm_l /= np.convolve(left_good / 4, kern_l, mode="same")
        norm_r = np.convolve(ones, kern_r, mode="same")
        norm_r /= np.convolve(right_good / 4, kern_r, mode="same")
        template = np.convolve(left_means, kern_l, mode="same") * norm_l
        template += np.convolve(right_means, kern_r, mode="same") * norm_r
        templates[:, amp] = template
    return templates
