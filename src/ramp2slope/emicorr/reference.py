"""The EMICORR reference: an ASDF file (the EmiModel layout) read with the ``asdf`` package.

The tree holds ``frequencies`` ({name: {frequency, phase_amplitudes}}) and ``subarray_cases``
({subarray: {rowclocks, frameclocks, freqs: {FAST: [names], SLOW: {detector: [names]}}}}).
Everything is copied out of the file when it is loaded, so no file handle is kept.
"""
import os

import numpy as np

from ..errors import ReferenceFileError

__all__ = ["EmiReference", "load_emicorr", "write_emicorr"]


class EmiReference:
    """The content of an EMICORR file: frequencies by name, and the subarray cases."""

    def __init__(self, frequencies, subarray_cases, path="EMICORR reference"):
        self.frequencies = frequencies          # name -> (frequency in Hz, waveform ndarray)
        self.subarray_cases = subarray_cases    # plain dicts, as in the file
        self.path = path

    def case(self, subarray, readpatt, detector):
        """``(subname, rowclocks, frameclocks, frequency names)`` for this configuration.

        Like the official lookup, a value is None from the first level that is missing on: a
        subarray that is found with no frequency list for the read speed still gives its clocks
        (the caller then finds nothing to correct).
        """
        readpatt = readpatt.upper()
        speed = "SLOW" if "SLOW" in readpatt else "FAST" if "FAST" in readpatt else None
        if speed is None:
            return None, None, None, None
        subname = f"{subarray}_{speed}" if "FULL" in subarray else subarray
        case = self.subarray_cases.get(subname)
        if not isinstance(case, dict):
            return subname, None, None, None
        try:
            rowclocks, frameclocks = case["rowclocks"], case["frameclocks"]
        except KeyError:
            return subname, None, None, None
        freqs = case.get("freqs")
        names = freqs.get(speed) if isinstance(freqs, dict) else None
        if speed == "SLOW":
            names = names.get(detector) if isinstance(names, dict) else None
        if names is not None and (isinstance(names, str) or not all(isinstance(n, str) for n in names)):
            raise ReferenceFileError(f"{self.path}: subarray_cases.{subname}.freqs.{speed} is not a "
                                     f"list of frequency names")
        return subname, rowclocks, frameclocks, (list(names) if names is not None else None)

    def frequency(self, name):
        """``(frequency in Hz, waveform)`` of a frequency the subarray cases name."""
        if name not in self.frequencies:
            raise ReferenceFileError(f"{self.path}: frequency {name!r} is listed in subarray_cases "
                                     f"but missing from frequencies")
        return self.frequencies[name]


def open_asdf(path):
    """The ASDF file at ``path``, read in full; a one-line error names the file when asdf
    cannot read it."""
    import asdf

    try:
        return asdf.open(path, lazy_load=False, memmap=False)
    except Exception as exc:   # noqa: BLE001 - whatever asdf raises, the file is unusable
        raise ReferenceFileError(f"{path}: cannot be read as an EMICORR ASDF file "
                                 f"({type(exc).__name__}: {exc})") from None


def reference_from_tree(tree, name):
    """An :class:`EmiReference` from an EMICORR tree (``frequencies``, ``subarray_cases``),
    checked; ``name`` (the file or model) is what the one-line errors name."""
    raw_freqs, cases = tree.get("frequencies"), tree.get("subarray_cases")
    if not isinstance(raw_freqs, dict) or not isinstance(cases, dict):
        raise ReferenceFileError(f"{name}: not an EMICORR reference (no 'frequencies' and "
                                 f"'subarray_cases' mappings)")
    frequencies = {}
    for fname, entry in raw_freqs.items():
        try:
            freq = float(entry["frequency"])
            wave = np.array(entry["phase_amplitudes"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ReferenceFileError(f"{name}: frequency {fname!r} has no usable frequency and "
                                     f"phase_amplitudes ({exc})") from None
        if wave.ndim != 1:
            raise ReferenceFileError(f"{name}: frequency {fname!r}: phase_amplitudes is not 1-D")
        frequencies[str(fname)] = (freq, wave)
    return EmiReference(frequencies, _plain(cases), str(name))


def load_emicorr(path, model=None):
    """Read an EMICORR ASDF file; a one-line error names the file when it cannot serve."""
    with open_asdf(path) as handle:
        return reference_from_tree(handle.tree, os.fspath(path))


def _plain(node):
    """The tree as plain dicts, lists and scalars (asdf hands back its own node types)."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    if isinstance(node, np.generic):
        return node.item()
    return node


def write_emicorr(path, frequencies, subarray_cases, useafter):
    """Write an EMICORR file in the EmiModel layout (the reference made on the fly).

    ``frequencies``: {name: (frequency, phase amplitudes)}.
    """
    import asdf

    tree = {
        "frequencies": {name: {"frequency": float(freq), "phase_amplitudes": np.asarray(pa)}
                        for name, (freq, pa) in frequencies.items()},
        "subarray_cases": subarray_cases,
        "meta": {"reftype": "emicorr", "author": "JWST calibration pipeline",
                 "description": "EMI correction file", "pedigree": "GROUND",
                 "useafter": useafter, "model_type": "EmiModel", "telescope": "JWST",
                 "instrument": {"name": "MIRI"}},
    }
    asdf.AsdfFile(tree).write_to(path)
