"""NSClean: NIRSpec's 1/f noise fitted in frequency space (Rauscher 2023).

jwst 3.0.0's clean_flicker_noise uses it with ``fit_method='fft'`` on NIRSpec spectroscopy. In
the detector frame (the stored image transposed, and for NRS2 flipped), each line's background
pixels are fitted with the lowest Fourier frequencies of the line, weighted by the inverse of
the local density of background pixels (sparse regions must not be outweighed); the fit is
rolled off by a cosine low-pass filter, smoothed slightly along the dispersion direction, and
subtracted. The arithmetic follows jwst's NumPy operations and dtypes one by one, so the result
is the same to the last bit on the same machine.
"""
import logging

import numpy as np

__all__ = ["lowpass_filter", "nsclean_full_frame", "nsclean_subarray", "NSClean", "NSCleanSubarray"]

log = logging.getLogger("ramp2slope")

#: jwst's defaults: half-power frequency of the low-pass filter and its cosine roll-off width
#: (1/pixel), the outlier threshold for the line fits, the width of the density kernel and of
#: the smoothing along the dispersion
HALF_POWER = 1 / (2 * 2048 / 16)
ROLL_OFF = HALF_POWER / 4
OUTLIER_SIGMA = 3.0
DENSITY_SIGMA = 32
SMOOTH_SIGMA = 1.5


def lowpass_filter(half_power, width, n):
    """Gain per rfft frequency of ``n`` samples: 1 below ``half_power - width/2``, a half cosine
    down to 0 at ``half_power + width/2``, 0 above."""
    freq = np.fft.rfftfreq(n, d=1.0)
    roll = (1 + np.cos(np.pi * (freq - half_power) / width + np.pi / 2)) / 2
    gain = np.where(freq <= half_power - width / 2, 1, roll)
    return np.where(freq <= half_power + width / 2, gain, 0)


def _to_detector(image, detector):
    return image.transpose() if detector == "NRS1" else image.transpose()[::-1]


def _from_detector(image, detector):
    return image.transpose() if detector == "NRS1" else image[::-1].transpose()


def _gaussian(offsets, sigma):
    return np.exp(-(offsets ** 2) / sigma ** 2 / 2) / sigma / np.sqrt(2 * np.pi)


def _density_weights(mask):
    """1 / (background pixels near each pixel along its line, Gaussian-weighted); 0 off the mask."""
    ny, nx = mask.shape
    kernel = np.zeros((ny, nx), dtype=np.float32)
    kernel[ny // 2 + 1] = _gaussian(np.arange(nx) - (nx // 2 + 1), DENSITY_SIGMA)
    kernel_ft = np.fft.rfft2(np.fft.ifftshift(kernel))
    with np.errstate(divide="ignore"):
        weights = 1 / np.fft.irfft2(np.fft.rfft2(np.array(mask, dtype=np.float32)) * kernel_ft,
                                    (ny, nx))
    weights = np.where(mask, weights, 0.0)
    weights[~np.isfinite(weights)] = 0.0
    return weights


def _smoothing_kernel_ft(ny, nx):
    """rfft2 of a Gaussian of SMOOTH_SIGMA lines along axis 0 (the dispersion direction)."""
    centre = nx // 2 + 1
    profile = np.exp(-(((np.arange(ny) - centre) / SMOOTH_SIGMA) ** 2) / 2) / SMOOTH_SIGMA \
        / np.sqrt(2 * np.pi)
    kernel = np.zeros((ny, nx), dtype=np.float32)
    kernel[:, centre] = profile
    return np.array(np.fft.rfft2(np.fft.ifftshift(kernel)), dtype=np.complex64)


def _fit_lines(data, mask, weights, gain, nvec):
    """The background model, line by line (reference rows at both ends left at zero)."""
    ny, nx = data.shape
    model = np.zeros((ny, nx), dtype=np.float32)
    frequencies = np.arange(nvec).reshape((1, -1))
    for y in np.arange(ny)[4:-4]:
        use = mask[y]
        values = data[y][use]
        if len(values) == 0:
            continue
        w = weights[y][use]
        # outliers take the line's median: the fit is of the background, not of sources
        centre = np.median(values)
        spread = 1.4826 * np.median(np.abs(values - centre))
        inside = np.logical_and(centre - OUTLIER_SIGMA * spread <= values,
                                values <= centre + OUTLIER_SIGMA * spread)
        values = np.where(inside, values, centre)
        columns = np.arange(nx)[use].reshape((-1, 1))
        basis = np.array(np.exp(2 * np.pi * 1j * columns * frequencies / nx) / columns.shape[0],
                         dtype=np.complex64)
        # weighted least squares: (A^H A)^-1 A^H (w * values), with A = diag(w) basis
        design = basis * w[:, np.newaxis]
        adjoint = np.conjugate(design.transpose())
        solver = np.matmul(np.linalg.inv(np.matmul(adjoint, design)), adjoint)
        spectrum = np.zeros(nx // 2 + 1, dtype=np.complex64)
        spectrum[:nvec] = np.matmul(solver, w * values)
        spectrum *= nx / columns.shape[0]
        spectrum[:nvec] *= gain[:nvec]
        model[y] = np.fft.irfft(spectrum, nx)
    return model


def nsclean_full_frame(image, mask, detector):
    """Clean a 2048 x 2048 NIRSpec image (float32, stored orientation) in place and return it;
    ``mask`` marks the background pixels. ``detector`` is NRS1 or NRS2. Raises
    ``numpy.linalg.LinAlgError`` where a line's fit is singular (jwst then fails the step)."""
    det_mask = _to_detector(mask, detector)
    ny, nx = det_mask.shape
    gain = np.array(lowpass_filter(HALF_POWER, ROLL_OFF, nx))
    nvec = np.sum(gain > 0)
    weights = _density_weights(det_mask)
    data = _to_detector(image, detector)
    background = _fit_lines(data, det_mask, weights, gain, nvec)
    background = np.fft.irfft2(np.fft.rfft2(background) * _smoothing_kernel_ft(ny, nx),
                               s=background.shape)
    data -= background
    return _from_detector(data, detector)


# -- subarrays ------------------------------------------------------------------------------------
#: Frequency cut-offs (Hz) of the subarray fit: unity gain below the first, a cosine roll-off to
#: zero at the second, zero up to the third and a cosine roll-on to unity at the fourth; ALLSLITS
#: fits fewer high frequencies, as in jwst
SUBARRAY_CUTOFFS = (1061, 1211, 49943, 49957)
ALLSLITS_CUTOFFS = (150, 200, 49943, 49957)
LINE_OVERHEAD = np.int32(12)        # pixel times of the new-line overhead of each detector line
PIXEL_TIME = np.float32(10.0e-6)    # seconds per pixel
CHUNK_PIXELS = 512                  # background pixels per fitted block of lines
MIN_BACKGROUND_FRACTION = 0.05
SUBARRAY_OUTLIER_SIGMA = 4


def _cutoff_gain(freq, cutoffs):
    gain = np.zeros(len(freq), dtype=np.float32)
    gain[freq < cutoffs[0]] = 1.0
    here = np.logical_and(cutoffs[0] <= freq, freq < cutoffs[1])
    gain[here] = 0.5 * (np.cos((np.pi / (cutoffs[1] - cutoffs[0])) * (freq[here] - cutoffs[0])) + 1)
    here = np.logical_and(cutoffs[2] <= freq, freq < cutoffs[3])
    gain[here] = 0.5 * (np.cos((np.pi / (cutoffs[3] - cutoffs[2])) * (freq[here] - cutoffs[2])
                               + np.pi) + 1)
    gain[freq >= cutoffs[3]] = 1.0
    return gain


class NSClean:
    """The full-frame fit as an object, with the interface of jwst's class of this name: the
    detector (NRS1, NRS2) and background mask are set first, ``clean(image)`` returns the
    cleaned image (see :func:`nsclean_full_frame`)."""

    def __init__(self, detector, mask):
        self.detector = detector
        self.mask = mask

    def clean(self, image, buff=True):
        # ``buff`` (jwst: pad the lines before the fit) is always on there: accepted, no choice
        return nsclean_full_frame(np.array(image, dtype=np.float32), self.mask, self.detector)


class NSCleanSubarray:
    """The fit of one block of detector lines (see :func:`nsclean_subarray`), with the interface
    of jwst's class of this name: ``clean(return_model=True)`` gives the fitted noise,
    ``clean()`` the block minus it. ``fc`` are the frequency cut-offs."""

    def __init__(self, data, mask, fc=None, exclude_outliers=False):
        if exclude_outliers:
            raise ValueError("NSCleanSubarray: outliers are excluded over the whole image "
                             "before the blocks are fitted (nsclean_subarray)")
        self.data = data
        self.mask = mask
        self.fc = SUBARRAY_CUTOFFS if fc is None else fc

    def clean(self, return_model=False):
        model = _block_model(self.data, self.mask, self.fc)
        return model if return_model else self.data - model


def _block_model(data, mask, cutoffs):
    """The fitted noise of a block of detector lines, seen as one time series of pixel reads
    (each line followed by its overhead): its background pixels fitted with the series' Fourier
    frequencies the cut-offs keep, weighted by the inverse local density of background reads."""
    data = np.array(data, dtype=np.float32)
    mask = np.array(mask, dtype=np.bool_)
    ny, nx = np.int32(data.shape[0]), np.int32(data.shape[1])
    fc = np.array(cutoffs, dtype=np.float32)
    n = np.int32(ny * (nx + LINE_OVERHEAD))
    freq = np.array(np.fft.rfftfreq(n, PIXEL_TIME), dtype=np.float32)
    sigma = np.float32(1 / ((cutoffs[0] + cutoffs[1]) / 2) / PIXEL_TIME / 2 / 4)
    mask[np.isnan(data)] = False
    gain = _cutoff_gain(freq, fc)
    reads = (np.arange(ny).reshape((-1, 1)) * (nx + LINE_OVERHEAD)
             + np.arange(nx).reshape((1, -1)))[mask].reshape((-1, 1))
    kept = np.arange(len(freq))[gain > 0.0].reshape((1, -1))
    basis = np.array(np.exp(2 * np.pi * 1j * reads * kept / n) / reads.shape[0], dtype=np.complex64)
    times = np.arange(n, dtype=np.float32)
    kernel = np.exp(-((times - np.float32(n // 2 + 1)) ** 2) / sigma ** 2 / 2) / sigma / np.sqrt(2 * np.pi)
    series_mask = np.hstack((mask, np.zeros((ny, LINE_OVERHEAD), dtype=np.bool_))).flatten()
    with np.errstate(divide="ignore"):
        weights = 1 / np.fft.irfft(np.fft.rfft(np.array(series_mask, dtype=np.float32))
                                   * np.fft.rfft(np.fft.ifftshift(kernel)), n)
    weights = weights[series_mask]
    weights[~np.isfinite(weights)] = 0.0
    design = weights.reshape((-1, 1)) * basis
    adjoint = np.conjugate(design.transpose())
    solver = np.matmul(np.linalg.inv(np.matmul(adjoint, design)), adjoint)
    spectrum = np.zeros(len(freq), dtype=np.complex64)
    spectrum[gain > 0.0] = np.matmul(solver * weights.reshape((1, -1)), data[mask])
    spectrum *= n / reads.shape[0]
    return np.fft.irfft(spectrum * gain, n).reshape((ny, -1))[:, :nx]


def nsclean_subarray(image, mask, detector, cutoffs=SUBARRAY_CUTOFFS, npix_iter=CHUNK_PIXELS,
                     exclude_outliers=True, sigrej=SUBARRAY_OUTLIER_SIGMA,
                     minfrac=MIN_BACKGROUND_FRACTION):
    """Clean a NIRSpec subarray image (stored orientation): overlapping blocks of detector lines
    holding about ``npix_iter`` background pixels each are fitted (:class:`NSCleanSubarray`)
    and their models blended with triangular weights; a block whose background fraction is
    not above ``minfrac`` is left uncorrected. With ``exclude_outliers``, pixels more than
    ``sigrej`` robust sigmas from the background's median, and their four neighbours, are
    not background. Returns the cleaned image (a new float64 array as jwst's), or None when
    no line has a background pixel."""
    image = _to_detector(image, detector)
    mask = _to_detector(mask, detector)
    if exclude_outliers:
        centre = np.median(image[mask])
        spread = 1.4825 * np.median(np.abs((image - centre)[mask]))
        outlier = mask & (np.abs(image - centre) > sigrej * spread)
        mask = mask & (~outlier)
        mask[1:] = mask[1:] & (~outlier[:-1])
        mask[:-1] = mask[:-1] & (~outlier[1:])
        mask[:, 1:] = mask[:, 1:] & (~outlier[:, :-1])
        mask[:, :-1] = mask[:, :-1] & (~outlier[:, 1:])
    per_line = np.sum(mask, axis=1)
    cumulative = np.array([0] + list(np.cumsum(per_line)))
    lines = np.arange(mask.shape[0])[per_line > 0]
    if lines.size == 0:
        return None
    first, last = np.amin(lines), np.amax(lines)
    blocks = []
    while first <= last:
        stop = 0
        for stop in range(first + 1, last + 2):
            if cumulative[stop] - cumulative[first] > npix_iter \
                    and cumulative[-1] - cumulative[first] > 1.5 * npix_iter:
                break
        size = stop - first
        if np.mean(mask[first:first + size]) > minfrac:
            block = NSCleanSubarray(image[first:first + size], mask[first:first + size],
                                    fc=cutoffs).clean(return_model=True)
        else:
            log.warning("clean_flicker_noise: Insufficient reference pixels for NSClean around "
                        "detector line %d; no correction there", first)
            block = np.zeros(image[first:first + size].shape)
        blocks.append((first, size, block))
        if stop == last + 1:
            break
        first += max(int(np.round(size / 2)), 1)
    model = np.zeros(image.shape)
    total = np.zeros(image.shape)
    for first, size, block in blocks:
        taper = 1.001 - np.abs(np.linspace(-1, 1, size))[:, np.newaxis]
        model[first:first + size] += taper * block
        total[first:first + size] += taper
    total[model == 0] = 1
    model /= total
    return _from_detector(image - model, detector)
