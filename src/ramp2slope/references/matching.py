"""Choosing a reference file in a folder the way CRDS chooses one in a context.

A folder of reference files has no mapping files, so the rules CRDS applies to its rmaps are
applied to what the files say of themselves in their primary headers:

* **Selectors.** A file applies to the exposures whose DETECTOR, SUBARRAY, READPATT, FILTER,
  PUPIL (and, when the file names them with pattern keywords, EXP_TYPE, CHANNEL, MODULE) it
  lists. A ``P_<KEYWORD>`` pattern keyword (``P_READPA = 'RAPID | BRIGHT1 |'``) replaces the
  plain keyword, as it does when a file is delivered to CRDS; EXP_TYPE, CHANNEL and MODULE count
  only as patterns, since a reference's own EXP_TYPE is the type of the data it was made from
  (``NRC_DARK``), not the exposures it serves.
* **Wildcards.** GENERIC, ANY, N/A (or no keyword) match every value.
* **Cut-outs and frame-level darks.** A FULL reference serves every subarray (it is cut out),
  and a dark read frame by frame (NFRAMES 1, GROUPGAP 0) serves every read pattern of its
  detector (the dark step averages its frames into the exposure's groups).
* **Best match, then USEAFTER.** Among the files that match, those with the most exact (not
  wildcard) matches win; among those, the latest USEAFTER not after the exposure's start
  (DATE-OBS, TIME-OBS) wins, so a folder may hold every version of a reference. Two files left
  equal are ambiguous, as equal entries are in a CRDS mapping.
"""
import datetime
import glob
import logging
import os
import warnings

from astropy.io import fits

from ..errors import ReferenceFileError

log = logging.getLogger("ramp2slope")

WILDCARDS = frozenset({"", "ANY", "GENERIC", "N/A"})

#: (plain keyword, pattern keyword, meta path of the exposure's value, plain keyword selects)
SELECTORS = (
    ("DETECTOR", "P_DETECT", "instrument.detector", True),
    ("SUBARRAY", "P_SUBARR", "subarray.name", True),
    ("READPATT", "P_READPA", "exposure.readpatt", True),
    ("FILTER", "P_FILTER", "instrument.filter", True),
    ("PUPIL", "P_PUPIL", "instrument.pupil", True),
    ("EXP_TYPE", "P_EXP_TY", "exposure.type", False),
    ("CHANNEL", "P_CHANNE", "instrument.channel", False),
    ("MODULE", "P_MODULE", "instrument.module", False),
)

_HEADER_KEYS = ("REFTYPE", "INSTRUME", "USEAFTER", "NFRAMES", "GROUPGAP") + tuple(
    key for plain, pattern, _, _ in SELECTORS for key in (plain, pattern))

_USEAFTER_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f",
                     "%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%b %d %Y %H:%M:%S", "%b %d %Y")

# path -> (mtime, size, header fields); a folder scan reads only primary headers, once per file
# version.
_HEADER_CACHE = {}


def _text(value):
    if value is None or type(value).__name__ == "Undefined":
        return None
    return str(value).strip().upper()


def primary_fields(path):
    """The selecting keywords of a file's primary header (upper-cased text), or None when the
    file is not a readable FITS file (a dangling link, a junk file in the folder)."""
    try:
        stat = os.stat(path)
    except OSError:
        if path not in _HEADER_CACHE:
            _HEADER_CACHE[path] = (None, None, None)
            log.info("%s: skipped (a link to nothing, or unreadable)", path)
        return None
    cached = _HEADER_CACHE.get(path)
    if cached and cached[:2] == (stat.st_mtime, stat.st_size):
        return cached[2]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = fits.getheader(path, 0)
    except Exception:  # not a candidate; the folder may hold anything
        fields = None
        log.info("%s: skipped (not a readable FITS file)", path)
    else:
        fields = {key: _text(header.get(key)) for key in _HEADER_KEYS}
    _HEADER_CACHE[path] = (stat.st_mtime, stat.st_size, fields)
    return fields


def parse_date(text):
    """A USEAFTER or DATE-OBS(+TIME-OBS) text as a datetime, None when it cannot be read."""
    if not text:
        return None
    text = text.strip().replace("  ", " ")
    for fmt in _USEAFTER_FORMATS:
        try:
            return datetime.datetime.strptime(text.title() if fmt.startswith("%b") else text, fmt)
        except ValueError:
            continue
    return None


def exposure_start(model):
    """The exposure's start (DATE-OBS and TIME-OBS), or None when the header does not say."""
    date, time = model.meta.observation.date, model.meta.observation.time
    if not date:
        return None
    return parse_date(f"{date} {time}" if time else str(date)) or parse_date(str(date))


def _exposure_value(model, path):
    node = model.meta
    for part in path.split("."):
        node = getattr(node, part)
    return _text(node)


def _selector_score(fields, reftype, plain, pattern, wanted, plain_selects):
    """2 for an exact match, 1 for a wildcard, None for a mismatch."""
    if fields[pattern] is not None:
        values = {v.strip() for v in fields[pattern].split("|")}
        values.discard("")
        if not values or values & WILDCARDS:
            return 1
        return 2 if wanted in values else None
    if not plain_selects:
        return 1
    value = fields[plain]
    if value is None or value in WILDCARDS:
        return 1
    if value == wanted:
        return 2
    if plain == "SUBARRAY" and value == "FULL":
        return 1  # cut out to the science window when loaded
    if plain == "READPATT" and reftype == "DARK" and fields["NFRAMES"] == "1" and \
            fields["GROUPGAP"] in (None, "0"):
        return 1  # frame-level dark: the step averages its frames into any read pattern
    return None


def match_score(fields, reftype, wanted):
    """The number of exact matches of a file for the exposure values ``wanted``, None when
    the file does not apply to the exposure."""
    exact = 0
    for plain, pattern, path, plain_selects in SELECTORS:
        score = _selector_score(fields, reftype, plain, pattern, wanted[path], plain_selects)
        if score is None:
            return None
        exact += score == 2
    return exact


def choose_in_directory(reftype, model, directory):
    """The best file of ``reftype`` in ``directory`` for ``model`` (see the module's rules), or
    None when no file there applies."""
    reftype = reftype.upper()
    instrument = _exposure_value(model, "instrument.name")
    wanted = {path: _exposure_value(model, path) for _, _, path, _ in SELECTORS}
    start = exposure_start(model)
    candidates, too_new = [], []
    for path in sorted(glob.glob(os.path.join(directory, "*.fits"))):
        fields = primary_fields(path)
        if not fields or fields["REFTYPE"] != reftype:
            continue
        if fields["INSTRUME"] not in WILDCARDS and fields["INSTRUME"] is not None and instrument \
                and fields["INSTRUME"] != instrument:
            continue
        exact = match_score(fields, reftype, wanted)
        if exact is None:
            continue
        useafter = parse_date(fields["USEAFTER"]) or datetime.datetime.min
        if start is not None and useafter > start:
            too_new.append(path)
            continue
        candidates.append((exact, useafter, path))
    if not candidates:
        if too_new:
            names = ", ".join(os.path.basename(p) for p in too_new)
            raise ReferenceFileError(
                f"{reftype} reference: {names} in {directory} match the exposure but are to be "
                f"used only after its start ({start:%Y-%m-%d %H:%M:%S}, USEAFTER)")
        return None
    candidates.sort(key=lambda item: item[:2], reverse=True)
    best = [path for exact, useafter, path in candidates if (exact, useafter) == candidates[0][:2]]
    if len(best) > 1:
        names = ", ".join(os.path.basename(p) for p in best)
        raise ReferenceFileError(
            f"{reftype} reference is ambiguous in {directory}: {names} match "
            f"{instrument}/{wanted['instrument.detector']}/{wanted['subarray.name']}/"
            f"{wanted['exposure.readpatt']} equally well with the same USEAFTER")
    return best[0]
