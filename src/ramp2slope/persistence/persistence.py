"""Persistence flagging (the jwst 3.0 behaviour: flags only, no reference files).

Every pixel carries a "window end" epoch P (seconds since 1970, 0 = no open window). Groups are
visited in time order; group g of an integration starting at t0 sits at ``t = t0 + (g+1)*TGROUP``
(the time is advanced *before* the group is processed). For each group:

1. windows that ended before ``t`` are closed (P = 0);
2. the SATURATED groups of the pixel in this integration are counted; while the count is exactly 1
   the window is (re)opened to end at ``t + persistence_time``;
3. with ``dn_threshold``, a pixel without an open window whose value exceeds the threshold opens
   one too;
4. a window that ends after ``t + persistence_time`` (it would have started in the future) is
   closed;
5. the group gets PERSISTENCE (and DO_NOT_USE with ``persistence_dnu``) where a window is open.

P carries over from one integration (and, through the ASDF persistence-array file, from one
exposure) to the next; the saturation count restarts at every integration.
"""
import logging
from pathlib import Path

import numba
import numpy as np

from ..datamodels import dqflags
from ..errors import Ramp2SlopeError

log = logging.getLogger("ramp2slope")

SATURATED = dqflags.group["SATURATED"]
PERSISTENCE = dqflags.group["PERSISTENCE"]
DNU = dqflags.group["DO_NOT_USE"]

#: MJD of the Unix epoch (1970-01-01T00:00:00 UTC).
MJD_UNIX_EPOCH = 40587.0
SECONDS_PER_DAY = 86400.0


def mjd_to_epoch(mjd):
    """Unix epoch seconds of an MJD (UTC)."""
    return (mjd - MJD_UNIX_EPOCH) * SECONDS_PER_DAY


def integration_start_epochs(nints, int_start_mjd=None, exposure_start_mjd=None,
                             integration_time=None):
    """Start time (epoch seconds) of each integration.

    ``int_start_mjd`` is the INT_TIMES ``int_start_MJD_UTC`` column (row i for integration i);
    integrations beyond its length (or all, without INT_TIMES) use
    ``EXPSTART + i * EFFINTTM`` instead.
    """
    rows = 0 if int_start_mjd is None else len(int_start_mjd)
    starts = []
    for integration in range(nints):
        if integration < rows:
            starts.append(mjd_to_epoch(float(int_start_mjd[integration])))
            continue
        if exposure_start_mjd is None or integration_time is None:
            raise Ramp2SlopeError(
                "persistence needs INT_TIMES or EXPSTART and EFFINTTM for the integration times")
        starts.append(mjd_to_epoch(float(exposure_start_mjd))
                      + integration * float(integration_time))
    return starts


@numba.njit(parallel=True, cache=True)
def _flag_group(gdq, data, window_end_time, sat_count, now, window_end, use_threshold,
                threshold, sat_flag, flag):
    ny, nx = gdq.shape
    resets = 0
    for y in numba.prange(ny):
        for x in range(nx):
            p = window_end_time[y, x]
            if p < now:
                p = 0.0
            if gdq[y, x] & sat_flag:
                sat_count[y, x] += 1
            if sat_count[y, x] == 1:
                p = window_end
            if use_threshold and data[y, x] > threshold and not p > 0.0:
                p = window_end
            if p != 0.0 and p - window_end > 0.0:
                p = 0.0
                resets += 1
            if p > 0.0:
                gdq[y, x] |= flag
            window_end_time[y, x] = p
    return resets


def flag_persistence(data, groupdq, window_end_time, persistence_time, group_time,
                     start_epochs, dn_threshold=None, persistence_dnu=False):
    """Flag groups inside persistence windows, in place.

    Parameters
    ----------
    data : float32 ndarray (nints, ngroups, ny, nx)
        Only read (for ``dn_threshold``).
    groupdq : uint8 ndarray, same shape
        PERSISTENCE (|DO_NOT_USE) is OR-ed in.
    window_end_time : float64 ndarray (ny, nx)
        The per-pixel window-end epochs P (zeros, or from :func:`read_persistence_array`);
        updated in place and holds the state to save at the end.
    persistence_time : number
        Window length in seconds (> 0).
    group_time : float
        TGROUP in seconds.
    start_epochs : sequence of float
        Integration start times from :func:`integration_start_epochs`.
    dn_threshold : float or None
        Also open a window where the value exceeds this (compared in float32).
    persistence_dnu : bool
        Add DO_NOT_USE to the PERSISTENCE flag.

    Returns
    -------
    int : how many windows were closed because they would have started in the future.
    """
    if persistence_time is None or not persistence_time > 0:
        raise Ramp2SlopeError(f"persistence_time must be > 0, got {persistence_time!r}")
    if data.ndim != 4 or groupdq.shape != data.shape:
        raise Ramp2SlopeError("persistence needs 4-D data and GROUPDQ of the same shape")
    if window_end_time.shape != data.shape[-2:] or window_end_time.dtype != np.float64:
        raise Ramp2SlopeError("persistence array must be float64 with the data's (ny, nx)")
    if len(start_epochs) < data.shape[0]:
        raise Ramp2SlopeError("persistence needs one start time per integration")
    if group_time is None:
        raise Ramp2SlopeError("persistence needs TGROUP")
    flag = PERSISTENCE | DNU if persistence_dnu else PERSISTENCE
    use_threshold = dn_threshold is not None
    threshold = np.float32(float(dn_threshold) if use_threshold else 0.0)
    sat_count = np.zeros(data.shape[-2:], dtype=np.uint32)
    resets = 0
    for integration in range(data.shape[0]):
        now = start_epochs[integration]
        sat_count[:] = 0
        for group in range(data.shape[1]):
            now = now + group_time
            window_end = now + persistence_time
            resets += _flag_group(groupdq[integration, group], data[integration, group],
                                  window_end_time, sat_count, float(now), float(window_end),
                                  use_threshold, threshold, np.uint8(SATURATED), np.uint8(flag))
    return resets


# --------------------------------------------------------------------------------------------
# The persistence-array file (ASDF): {DETECTOR: {filename, rows, cols, vals, pers_time}}
# --------------------------------------------------------------------------------------------
def _asdf():
    try:
        import asdf
    except ImportError:
        raise Ramp2SlopeError("reading or writing a persistence array file needs the 'asdf' "
                              "package (pip install asdf)") from None
    return asdf


def persistence_file_name(path):
    """``path`` with its suffix replaced by ``.asdf`` (unless it already is ``.asdf``)."""
    path = Path(path)
    if path.suffix == ".asdf":
        return str(path)
    return str(path.parent / f"{path.stem}.asdf")


def read_persistence_array(path, detector, shape, persistence_time):
    """The float64 window-end array stored for ``detector`` in an ASDF file.

    Zeros when the file does not exist, has no entry for the detector, or was written with a
    different ``persistence_time`` (the stored windows would not mean the same thing).
    """
    array = np.zeros(shape, dtype=np.float64)
    if path is None:
        return array
    if not Path(path).exists():
        # the official step's words, which users look for in the log
        log.info("Persistence array file does not exist: '%s'; creating a new persistence array", path)
        return array
    asdf = _asdf()
    try:
        tree = asdf.load(path)
    except (OSError, ValueError) as exc:
        raise Ramp2SlopeError(f"cannot read persistence array file {path}: {exc}") from None
    entry = tree.get(detector)
    if entry is None:
        log.info("Detector %s not in persistence array file; creating a new persistence array", detector)
        return array
    if entry["pers_time"] != persistence_time:
        log.info("%s does not equal persistence_time :%s; creating a new persistence array",
                 entry["pers_time"], persistence_time)
        return array
    rows = np.asarray(entry["rows"])
    cols = np.asarray(entry["cols"])
    if rows.size and (rows.max() >= shape[0] or cols.max() >= shape[1]):
        raise Ramp2SlopeError(f"persistence array file {path} does not fit data of shape "
                              f"{tuple(shape)}")
    array[rows, cols] = np.asarray(entry["vals"])
    return array


def write_persistence_array(path, detector, window_end_time, persistence_time, filename=None):
    """Store the non-zero window ends for ``detector`` in an ASDF file; return the path written.

    The suffix is forced to ``.asdf``. Entries of other detectors already in the file are kept.
    """
    asdf = _asdf()
    path = persistence_file_name(path)
    tree = asdf.load(path) if Path(path).exists() else {}
    rows, cols = np.nonzero(window_end_time)
    tree[detector] = {
        "filename": filename,
        "rows": rows,
        "cols": cols,
        "vals": window_end_time[rows, cols],
        "pers_time": persistence_time,
    }
    asdf.dump(tree, path)
    return path
