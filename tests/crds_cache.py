"""A real CRDS cache, made inside the tests (see shared docs: a CRDS cache with no network).

``build_cache(root, entries)`` writes the cache's server configuration, one pipeline mapping,
one instrument mapping per instrument and one reference mapping per (instrument, reftype), and
copies the reference files in. Each entry is
``Entry(instrument, reftype, match, useafter, path)``: ``match`` maps data-model parameter names
(``"META.INSTRUMENT.DETECTOR"``) to a value or a pattern (``"NRCA1|NRCB1"``, ``"N/A"``), and
every entry of one (instrument, reftype) must name the same parameters. Every reference type
the official pipeline asks for that has no entry is mapped to N/A, as a real context does for
types that do not apply.

``crds_environment(monkeypatch, root, server_port)`` points CRDS at the cache with a server URL
on a closed local port, so that every look-up is answered from the cache and a missing file
fails at once, and forgets what crds kept in memory from another cache.
"""
import os
import shutil
from dataclasses import dataclass

CONTEXT = "jwst_0001.pmap"

#: Types the official Detector1Pipeline and ramp2slope ask for, mapped to N/A unless given.
KNOWN_TYPES = ("mask", "saturation", "superbias", "linearity", "dark", "gain", "readnoise", "ipc",
               "refpix", "sirskernel", "trapdensity", "trappars", "persat", "pictureframe",
               "flat", "area", "rscd", "reset", "emicorr", "distortion", "filteroffset",
               "specwcs", "regions", "wavelengthrange", "camera", "collimator", "disperser",
               "fore", "fpa", "ifufore", "ifupost", "ifuslicer", "msa", "ote", "wavecorr",
               "pastasoss", "nrm", "bkg", "psfmask")


@dataclass
class Entry:
    instrument: str
    reftype: str
    match: dict
    useafter: str
    path: str


def _header(name, mapping, **extra):
    header = {"derived_from": "ramp2slope tests", "mapping": mapping, "name": name,
              "observatory": "JWST", "sha1sum": "0" * 40}
    header.update(extra)
    return "header = " + repr(header) + "\n\n"


def _value(text):
    """A selector value as CRDS writes it: ``A|B`` patterns and N/A as they are."""
    return str(text)


def build_cache(root, entries, context=CONTEXT, extra_types=()):
    """Write a CRDS cache under ``root`` holding ``entries``; returns ``root``."""
    root = os.fspath(root)
    serial = context.split("_")[1].split(".")[0]
    for sub in ("config/jwst", "mappings/jwst"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    with open(os.path.join(root, "config", "jwst", "server_config"), "w") as handle:
        handle.write(repr({
            "observatory": "jwst", "operational_context": context, "latest_context": context,
            "edit_context": context, "last_synced": "never", "bad_files_list": [],
            "bad_files": "", "mappings": [], "force_remote_mode": False,
            "crds_version": {"str": "offline"}}))
    by_kind = {}
    for entry in entries:
        by_kind.setdefault((entry.instrument.upper(), entry.reftype.lower()), []).append(entry)
    instruments = {}
    for (instrument, reftype), kind_entries in sorted(by_kind.items()):
        folder = os.path.join(root, "references", "jwst", instrument.lower())
        os.makedirs(folder, exist_ok=True)
        parkeys = tuple(kind_entries[0].match)
        matches = {}
        for entry in kind_entries:
            if tuple(entry.match) != parkeys:
                raise ValueError(f"{instrument} {reftype}: every entry must match on {parkeys}")
            name = os.path.basename(entry.path)
            shutil.copy(entry.path, os.path.join(folder, name))
            key = tuple(_value(entry.match[p]) for p in parkeys)
            matches.setdefault(key, {})[entry.useafter] = name
        rmap = f"jwst_{instrument.lower()}_{reftype}_{serial}.rmap"
        lines = ["selector = Match({"]
        for key, versions in matches.items():
            lines.append(f"    {key!r} : UseAfter({{")
            lines.extend(f"        {date!r} : {name!r}," for date, name in sorted(versions.items()))
            lines.append("    }),")
        lines.append("})\n")
        text = _header(rmap, "REFERENCE", instrument=instrument, filekind=reftype.upper(),
                       parkey=(parkeys, ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME")),
                       classes=("Match", "UseAfter")) + "\n".join(lines)
        with open(os.path.join(root, "mappings", "jwst", rmap), "w") as handle:
            handle.write(text)
        instruments.setdefault(instrument, {})[reftype] = rmap
    selector = {}
    for instrument, rmaps in sorted(instruments.items()):
        types = {t: "N/A" for t in KNOWN_TYPES + tuple(extra_types)}
        types.update(rmaps)
        imap = f"jwst_{instrument.lower()}_{serial}.imap"
        with open(os.path.join(root, "mappings", "jwst", imap), "w") as handle:
            handle.write(_header(imap, "INSTRUMENT", instrument=instrument, parkey=("REFTYPE",))
                         + "selector = " + repr(types) + "\n")
        selector[instrument] = imap
    with open(os.path.join(root, "mappings", "jwst", context), "w") as handle:
        handle.write(_header(context, "PIPELINE", parkey=("META.INSTRUMENT.NAME",))
                     + "selector = " + repr(selector) + "\n")
    return root


def closed_port_url():
    """An https URL on a local port nothing listens on: CRDS fails at once instead of hanging."""
    return "https://127.0.0.1:9"


def forget_crds_state():
    """Drop what crds and ramp2slope keep in memory of a cache, so that another one is read."""
    from crds.core import utils

    from ramp2slope.references import crds_client

    utils.clear_function_caches()
    crds_client._ANSWERS.clear()


def crds_environment(monkeypatch, root, context=None):
    """Point CRDS (and so ramp2slope and jwst) at the cache under ``root`` for one test."""
    monkeypatch.setenv("CRDS_PATH", os.fspath(root))
    monkeypatch.setenv("CRDS_SERVER_URL", closed_port_url())
    monkeypatch.setenv("CRDS_IGNORE_MAPPING_CHECKSUM", "1")
    monkeypatch.setenv("CRDS_OBSERVATORY", "jwst")
    if context:
        monkeypatch.setenv("CRDS_CONTEXT", context)
    else:
        monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    monkeypatch.delenv("CRDS_READONLY_CACHE", raising=False)
    forget_crds_state()
