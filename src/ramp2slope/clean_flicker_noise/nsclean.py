"""NSClean: NIRSpec's 1/f noise fitted in frequency space (Rauscher 2023), for full frames.

jwst 3.0.0's clean_flicker_noise uses it with ``fit_method='fft'`` on NIRSpec spectroscopy. In
the detector frame (the stored image transposed, and for NRS2 flipped), each line's background
pixels are fitted with the lowest Fourier frequencies of the line, weighted by the inverse of
the local density of background pixels (sparse regions must not be outweighed); the fit is
rolled off by a cosine low-pass filter, smoothed slightly along the dispersion direction, and
subtracted. The arithmetic follows jwst's NumPy operations and dtypes one by one, so the result
is the same to the last bit on the same machine.
"""
import numpy as np

__all__ = ["lowpass_filter", "nsclean_full_frame"]

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
