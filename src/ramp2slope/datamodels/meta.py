"""The ``model.meta`` attribute tree: a view onto the FITS headers.

The headers are the single source of truth: ``meta.exposure.ngroups`` reads NGROUPS from the
primary header and assigning it writes the keyword back, so what is saved is always what the
code saw. The few official attributes with no FITS keyword (``TREE_ONLY``) are kept by the model
and written to, and read from, the ASDF extension's tree. Other attributes with no FITS keyword
can still be set (they live on the node for the life of the model, as in the official models,
but are not written to files).

The nodes hold the model's :class:`MetaStore` (its headers and trees), never the model itself:
a node that pointed back at its model would put every model in a reference cycle, and its
arrays (hundreds of megabytes for a full-frame ramp) would then outlive the last reference
until Python's cyclic garbage collector happened to run.
"""
from astropy.io import fits

from .keywords import KEYWORDS, PREFIXES, TREE_ONLY

#: tree-only attributes whose official default is an empty list
LIST_DEFAULTS = {"exposure.read_times"}


def _plain(value):
    """Header values come back as numpy/astropy scalars or undefined cards; give plain Python."""
    if value is None or type(value).__name__ == "Undefined":
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


class MetaStore:
    """What ``meta`` reads and writes, shared by a model and its ``meta`` nodes: the headers by
    HDU name, the tree-only attributes set on the model (``tree``, over the input's ASDF tree
    ``asdf_meta``)."""

    __slots__ = ("headers", "tree", "asdf_meta")

    def __init__(self, headers=None, tree=None, asdf_meta=None):
        self.headers = {"PRIMARY": fits.Header()} if headers is None else headers
        self.tree = {} if tree is None else tree
        self.asdf_meta = asdf_meta

    def header(self, hdu):
        """The header of ``hdu``, created empty if the model has none yet."""
        header = self.headers.get(hdu)
        if header is None:
            header = fits.Header()
            self.headers[hdu] = header
        return header

    def tree_value(self, path):
        """A tree-only attribute (keywords.TREE_ONLY): as set on the model, else as the input's
        ASDF tree has it, else None."""
        if path in self.tree:
            return self.tree[path]
        node = self.asdf_meta.meta() if self.asdf_meta is not None else None
        for part in path.split("."):
            if not isinstance(node, dict):
                return None
            node = node.get(part)
        return node


class MetaNode:
    """One level of the ``meta`` tree (``meta``, ``meta.exposure``, ...) over a :class:`MetaStore`."""

    __slots__ = ("_store", "_path", "_extra")

    def __init__(self, store, path=""):
        object.__setattr__(self, "_store", store)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_extra", {})

    def _full(self, name):
        return f"{self._path}.{name}" if self._path else name

    def __getattr__(self, name):
        if name.startswith("_"):   # dunders, and the slots before they are set (copy.deepcopy)
            raise AttributeError(name)
        full = self._full(name)
        if full in KEYWORDS:
            hdu, keyword = KEYWORDS[full]
            header = self._store.headers.get(hdu)
            return None if header is None else _plain(header.get(keyword))
        if full in TREE_ONLY:
            value = self._store.tree_value(full)
            # an unset list reads as an empty one, as the official schema's default
            return [] if value is None and full in LIST_DEFAULTS else value
        if name in self._extra:
            return self._extra[name]
        if full in PREFIXES:
            node = MetaNode(self._store, full)
            self._extra[name] = node
            return node
        # Unknown leaves read as None, like schema attributes that were never set.
        return None

    def __setattr__(self, name, value):
        if name in MetaNode.__slots__:
            object.__setattr__(self, name, value)
            return
        full = self._full(name)
        if full in KEYWORDS:
            hdu, keyword = KEYWORDS[full]
            header = self._store.header(hdu)
            if value is None:
                header.remove(keyword, ignore_missing=True)
                # and from the ASDF tree the product carries on, which readers take first
                self._store.tree[full] = None
            else:
                header[keyword] = _plain(value)
                self._store.tree.pop(full, None)
        elif full in TREE_ONLY:
            self._store.tree[full] = value
        elif full in PREFIXES and isinstance(value, (dict, MetaNode)):
            self._replace_subtree(name, full, value)
        else:
            self._extra[name] = value

    def _replace_subtree(self, name, full, value):
        """``meta.wcsinfo = {...}`` (or another model's node): the subtree becomes the mapping's
        contents, as in the official models; what it does not name is unset."""
        if isinstance(value, MetaNode):
            leaves = [path[len(value._path) + 1:] for path in value
                      if path.startswith(value._path + ".")]
            copied = {leaf: getattr(value, leaf) for leaf in leaves if "." not in leaf}
            copied.update((key, item) for key, item in value._extra.items()
                          if not isinstance(item, MetaNode))
            value = {key: item for key, item in copied.items() if item is not None}
        node = getattr(self, name)
        for path in [p for p in KEYWORDS if p.startswith(full + ".")]:
            leaf = path[len(full) + 1:]
            if "." not in leaf and leaf not in value:
                setattr(node, leaf, None)
        node._extra.clear()
        for key, item in value.items():
            setattr(node, key, item)

    def __iter__(self):
        for path in sorted(KEYWORDS):
            if path.startswith(self._path):
                yield path

    def to_flat_dict(self):
        """Every mapped attribute that has a value, as {'meta.exposure.ngroups': 10, ...}."""
        out = {}
        for path, (hdu, keyword) in KEYWORDS.items():
            if self._path and not path.startswith(self._path + "."):
                continue
            header = self._store.headers.get(hdu)
            if header is not None and keyword in header:
                out[f"meta.{path}"] = _plain(header[keyword])
        return out

    def __repr__(self):
        return f"<meta{'.' + self._path if self._path else ''}: {len(self.to_flat_dict())} values>"
