"""Peak memory of one exposure, predicted from its shape, and the machine's memory.

The pipeline streams one integration at a time, so the peak grows with the pixels of one
integration's ramp and with the pixel count, not with the number of integrations beyond the
few whose per-integration products are buffered. The coefficients are set so that the
prediction is at or above every peak ``benchmarks/bench.py`` measures (see docs/batch.md for
the measured figures against the prediction): a prediction that is too low would let two
exposures start that together do not fit.
"""
import os

GB = 1e9

BASE_BYTES = 0.35 * GB          # a worker process: interpreter, numpy/numba/astropy, distributed, kernels
RAMP_BYTES_PER_SAMPLE = 12      # per pixel and group of one integration (data, DQ, working copies)
PIXEL_BYTES_PER_INT = 40        # per pixel and integration held, up to BUFFERED_INTS
BUFFERED_INTS = 3


def shape_of(path):
    """(nints, ngroups, ny, nx) of a raw exposure's SCI extension from its header, or None."""
    from astropy.io import fits

    try:
        header = fits.getheader(path, "SCI")
    except Exception:   # noqa: BLE001 -- an unreadable input fails later, as its own error
        return None
    try:
        return tuple(int(header[f"NAXIS{axis}"]) for axis in (4, 3, 2, 1))
    except (KeyError, ValueError, TypeError):
        return None


def predict_peak_bytes(shape):
    """Predicted peak resident memory of the pipeline on an exposure of ``shape``."""
    if shape is None:
        return int(BASE_BYTES)
    nints, ngroups, ny, nx = shape
    pixels = ny * nx
    return int(BASE_BYTES + RAMP_BYTES_PER_SAMPLE * ngroups * pixels
               + PIXEL_BYTES_PER_INT * min(nints, BUFFERED_INTS) * pixels)


def total_memory():
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        import psutil

        return psutil.virtual_memory().total


def available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def parse_bytes(text):
    """``--memory-limit``: bytes, ``16GB``, ``500M``, or a share of RAM such as ``50%``."""
    from ..errors import Ramp2SlopeError

    original = text
    text = str(text).strip().upper().replace(" ", "")
    try:
        if text.endswith("%"):
            share = float(text[:-1]) / 100
            if not 0 < share <= 1:
                raise ValueError
            return int(share * total_memory())
        for suffix, scale in (("GIB", 1 << 30), ("MIB", 1 << 20), ("GB", 1e9), ("MB", 1e6),
                              ("G", 1e9), ("M", 1e6), ("B", 1)):
            if text.endswith(suffix):
                value = float(text[: -len(suffix)]) * scale
                break
        else:
            value = float(text)
        if value <= 0:
            raise ValueError
        return int(value)
    except ValueError:
        raise Ramp2SlopeError(f"--memory-limit {original!r}: give e.g. 16GB, 500MB or 80%") from None


def reset_peak():
    """Start a new resident-set high-water mark for this process (Linux: clear_refs 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_since_reset():
    """The resident-set high-water mark (VmHWM) in bytes, or None where /proc has none."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
