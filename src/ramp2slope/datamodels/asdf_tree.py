"""The ``ASDF`` extension of a FITS product: the metadata tree.

The official data models write every product with an ``ASDF`` extension holding the model's
tree; readers (stdatamodels) take the tree first and then the FITS keywords over it, so the
tree carries what has no FITS keyword. A raw exposure from MAST has one (the science data
processing wrote it), and each of our products carries its ``meta`` on: what the input said
reaches the products as in the official pipeline's, and the keywords ramp2slope maps are in the
FITS headers, which readers take over the tree.

Parsing and writing go through PyYAML, the YAML library under ``asdf``: the tree is plain data
(mappings, lists, strings, numbers), and the ``asdf`` library spends over a second discovering
its installed extensions (gwcs, astropy, stdatamodels...) the first time it opens or writes a
file in a process, which would add that to every run. Tags on values (a software record, a time)
are read as their plain value; no array or FITS hash is copied (the product's arrays are its
own, and a stale hash would make readers ignore the FITS keywords).
"""
import numpy as np
import yaml

EXTNAME = "ASDF"
COLUMN = "ASDF_METADATA"


class _PlainLoader(yaml.SafeLoader):
    """Every ASDF tag read as the plain mapping, list or scalar it decorates."""


def _untagged(loader, suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_PlainLoader.add_multi_constructor("", _untagged)
_PlainLoader.add_multi_constructor("!", _untagged)


def _document(raw):
    """The YAML part of an ASDF file's bytes (binary blocks after ``...`` are left out)."""
    text = raw.decode("utf-8", errors="replace")
    start = text.find("\n---")
    if start < 0:
        return None
    end = text.find("\n...", start)
    return text[start + 1:end if end >= 0 else len(text)]


class AsdfMeta:
    """The ``meta`` mapping of an input's ASDF tree, parsed on first use (empty when the
    extension holds none or cannot be read: the FITS headers are then all there is)."""

    def __init__(self, raw):
        self._raw = raw
        self._meta = None

    @classmethod
    def from_hdulist(cls, hdulist):
        """The tree of ``hdulist``'s ASDF extension, or None when it has none."""
        try:
            hdu = hdulist[EXTNAME]
        except KeyError:
            return None
        try:
            raw = bytes(np.asarray(hdu.data[COLUMN][0], dtype=np.uint8).tobytes())
        except (KeyError, IndexError, TypeError, ValueError):
            return None
        return cls(raw)

    def meta(self):
        if self._meta is None:
            self._meta = {}
            document = _document(self._raw)
            if document:
                try:
                    tree = yaml.load(document, Loader=_PlainLoader)
                except yaml.YAMLError:
                    tree = None
                if isinstance(tree, dict) and isinstance(tree.get("meta"), dict):
                    self._meta = tree["meta"]
        return self._meta


def asdf_records(meta=None, software="ramp2slope", version="0.1.0"):
    """The one-row table (column ASDF_METADATA, uint8 bytes) of a product's ASDF extension."""
    text = (
        "#ASDF 1.0.0\n"
        "#ASDF_STANDARD 1.5.0\n"
        "%YAML 1.1\n"
        "%TAG ! tag:stsci.edu:asdf/\n"
        "--- !core/asdf-1.1.0\n"
        f"asdf_library: !core/software-1.0.0 {{name: {software}, version: {version}}}\n"
    )
    if meta:
        text += yaml.safe_dump({"meta": meta}, default_flow_style=False, sort_keys=False,
                               allow_unicode=False, width=100)
    text += "...\n"
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    records = np.zeros(1, dtype=[(COLUMN, np.uint8, (data.size,))])
    records[COLUMN][0] = data
    return records
