"""Finding the reference file of a given type for a science exposure.

Sources, first hit wins: an explicit path (a step's ``override_<reftype>`` parameter, or "N/A"
to skip the step), then a reference directory (the ``refdir`` parameter, CLI ``--refdir``), then
the directory named by the environment variable ``RAMP2SLOPE_REFDIR``. In a directory, files are
matched on their primary-header REFTYPE, INSTRUME and DETECTOR; among those, an exact SUBARRAY
and READPATT match beats a generic one.
"""
import glob
import os
import warnings

from astropy.io import fits

from ..errors import ReferenceFileError

ENV_REFDIR = "RAMP2SLOPE_REFDIR"
NOT_APPLICABLE = "N/A"
_GENERIC = {None, "", "ANY", "GENERIC", "N/A"}

# path -> (mtime, header fields); the directory scan reads only primary headers, once per file.
_HEADER_CACHE = {}


def _primary_fields(path):
    mtime = os.path.getmtime(path)
    cached = _HEADER_CACHE.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = fits.getheader(path, 0)
    except Exception:  # an unreadable file in the folder is simply not a candidate
        fields = None
    else:
        fields = {k: (str(header.get(k)).strip().upper() if header.get(k) is not None else None)
                  for k in ("REFTYPE", "INSTRUME", "DETECTOR", "SUBARRAY", "READPATT", "EXP_TYPE")}
    _HEADER_CACHE[path] = (mtime, fields)
    return fields


def _score(value, wanted):
    """2 for an exact match, 1 for a generic entry, None for a mismatch."""
    if value in _GENERIC:
        return 1
    if wanted is not None and value == str(wanted).upper():
        return 2
    return None


def find_in_directory(reftype, model, directory):
    """The best-matching file of ``reftype`` in ``directory``, or None when there is none."""
    reftype = reftype.upper()
    instrument = (model.meta.instrument.name or "").upper()
    detector = (model.meta.instrument.detector or "").upper()
    subarray = model.meta.subarray.name
    readpatt = model.meta.exposure.readpatt
    candidates = []
    for path in sorted(glob.glob(os.path.join(directory, "*.fits"))):
        fields = _primary_fields(path)
        if not fields or fields["REFTYPE"] != reftype:
            continue
        if fields["INSTRUME"] not in _GENERIC and instrument and fields["INSTRUME"] != instrument:
            continue
        det = _score(fields["DETECTOR"], detector)
        sub = _score(fields["SUBARRAY"], subarray)
        if fields["SUBARRAY"] == "FULL" and sub is None:
            sub = 1  # a full-frame reference can be cut out for any subarray
        pat = _score(fields["READPATT"], readpatt)
        if det is None or sub is None or pat is None:
            continue
        candidates.append(((det, sub, pat), path))
    if not candidates:
        return None
    candidates.sort(key=lambda item: item[0], reverse=True)
    best = [path for score, path in candidates if score == candidates[0][0]]
    if len(best) > 1:
        names = ", ".join(os.path.basename(p) for p in best)
        raise ReferenceFileError(
            f"{reftype} reference is ambiguous in {directory}: {names} match "
            f"{instrument}/{detector}/{subarray}/{readpatt} equally well")
    return best[0]


def find_reference(reftype, model, override=None, refdir=None):
    """Resolve the reference file of ``reftype``: a path, or "N/A" when the step must be skipped.

    Raises ReferenceFileError naming the reftype and the places searched when nothing is found.
    """
    if override:
        override = os.fspath(override)
        if override.strip().upper() == NOT_APPLICABLE:
            return NOT_APPLICABLE
        if not os.path.isfile(override):
            raise ReferenceFileError(f"override_{reftype}: {override}: no such file")
        return os.path.abspath(override)
    searched = []
    for directory in (refdir, os.environ.get(ENV_REFDIR)):
        if not directory:
            continue
        if not os.path.isdir(directory):
            raise ReferenceFileError(f"reference directory {directory} does not exist")
        searched.append(directory)
        found = find_in_directory(reftype, model, directory)
        if found:
            return os.path.abspath(found)
    where = ", ".join(searched) if searched else (
        f"nowhere: give --refdir DIR, set {ENV_REFDIR}, or override_{reftype}=PATH")
    raise ReferenceFileError(
        f"no {reftype.upper()} reference file for {model.meta.instrument.name}/"
        f"{model.meta.instrument.detector} (subarray {model.meta.subarray.name}, readpatt "
        f"{model.meta.exposure.readpatt}); searched {where}")
