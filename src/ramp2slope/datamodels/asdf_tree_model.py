"""Reference models kept as ASDF trees rather than FITS files (EMICORR, SIRSKERNEL).

The other models of this package are views onto FITS headers and extensions; these references
are a tree (mappings, lists, arrays and a ``meta`` mapping), so a model simply holds that tree
and reads and writes it with the ``asdf`` package, the way the official models of the same
names are built, filled, saved and reopened. Mappings of the tree read as attribute nodes
(``model.frequencies.Hz10``) and as mappings (``model.frequencies["Hz10"]``); a name the tree
lacks raises AttributeError as the official nodes do, except below ``meta``, where an unset leaf
reads as None.
"""
import copy
import datetime
import os

import numpy as np

from ..errors import ReferenceFileError

__all__ = ["AsdfTreeModel"]

# The keys asdf adds to every file: not part of the model's content.
_ASDF_KEYS = ("asdf_library", "history")

# Names below ``meta`` that are objects (so ``meta.instrument.name = ...`` works on a new model).
_META_OBJECTS = frozenset({"instrument", "exposure", "subarray", "observation", "program",
                           "visit", "ref_file", "cal_step"})


def _plain(node):
    """A copy of an asdf tree as dicts, lists, scalars and numpy arrays (no file behind them)."""
    if isinstance(node, _Node):
        node = node._data
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    if isinstance(node, np.ndarray):
        return np.array(node)
    if isinstance(node, np.generic):
        return node.item()
    return node


def _pruned(node):
    """The tree without the empty mappings that reading ``meta`` nodes leaves behind."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            value = _pruned(value)
            if isinstance(value, dict) and not value:
                continue
            if value is None:
                continue
            out[key] = value
        return out
    if isinstance(node, list):
        return [_pruned(v) for v in node]
    return node


class _Node:
    """A mapping of the tree seen through attributes; changes go to the tree itself."""

    __slots__ = ("_data", "_lenient")

    def __init__(self, data, lenient=False):
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_lenient", lenient)

    def _wrap(self, value):
        return _Node(value, self._lenient) if isinstance(value, dict) else value

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._data:
            return self._wrap(self._data[name])
        if self._lenient:
            if name in _META_OBJECTS:
                return _Node(self._data.setdefault(name, {}), True)
            return None
        raise AttributeError(f"No attribute '{name}'")

    def __setattr__(self, name, value):
        if isinstance(value, _Node):
            value = value._data
        self._data[name] = value

    def __delattr__(self, name):
        self._data.pop(name, None)

    def __getitem__(self, key):
        return self._wrap(self._data[key])

    def __setitem__(self, key, value):
        self.__setattr__(key, value)

    def __contains__(self, key):
        return key in self._data

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)

    def __eq__(self, other):
        if isinstance(other, _Node):
            other = other._data
        return self._data == other

    __hash__ = None

    def get(self, key, default=None):
        return self._wrap(self._data[key]) if key in self._data else default

    def keys(self):
        return self._data.keys()

    def values(self):
        return [self._wrap(v) for v in self._data.values()]

    def items(self):
        return [(k, self._wrap(v)) for k, v in self._data.items()]

    def instance(self):
        """The underlying mapping (as the official nodes' ``instance``)."""
        return self._data

    def __repr__(self):
        return f"<node {self._data!r}>"


class AsdfTreeModel:
    """A reference model held as its ASDF tree.

    ``init``: None (an empty model), a path to an ASDF file, a dict (the tree), or another
    model of the same class (whose tree is shared, as the official models share their
    instance). Subclasses name their ``model_type``, ``reftype`` and the top-level names the
    schema defines (``schema_names``: they read as None until set).
    """

    model_type = "AsdfTreeModel"
    reftype = None
    schema_names = ()
    #: the instrument written on saving when the model has none (the reference's own)
    default_instrument = None

    def __init__(self, init=None, **kwargs):
        if init is None:
            tree = {}
        elif isinstance(init, type(self)):
            tree = init._tree
        elif isinstance(init, dict):
            tree = init
        elif isinstance(init, (str, os.PathLike)):
            tree = self._read(os.fspath(init))
        else:
            raise TypeError(f"{type(self).__name__}: cannot initialize from a {type(init).__name__}")
        object.__setattr__(self, "_tree", tree)
        tree.setdefault("meta", {})
        if isinstance(init, (str, os.PathLike)):
            tree["meta"]["filename"] = os.path.basename(os.fspath(init))
        for name, value in kwargs.items():
            setattr(self, name, value)

    @classmethod
    def _read(cls, path):
        import asdf

        try:
            with asdf.open(path, lazy_load=False, memmap=False) as handle:
                return {key: _plain(value) for key, value in handle.tree.items()
                        if key not in _ASDF_KEYS}
        except Exception as exc:   # noqa: BLE001 - whatever asdf raises, the file is unusable
            raise ReferenceFileError(f"{path}: cannot be read as an ASDF {cls.reftype or ''} file "
                                     f"({type(exc).__name__}: {exc})".replace("  ", " ")) from None

    # -- the tree ---------------------------------------------------------------------------------
    @property
    def meta(self):
        return _Node(self._tree.setdefault("meta", {}), lenient=True)

    @property
    def instance(self):
        """The tree itself (as the official models' ``instance``)."""
        return self._tree

    def to_flat_dict(self):
        """The tree's leaves under dotted names (``meta.reftype``, ``nrcb1.gamma``), as the
        official models give them."""
        flat = {}

        def walk(node, prefix):
            if isinstance(node, dict):
                for key, value in node.items():
                    walk(value, f"{prefix}{key}.")
            elif isinstance(node, (list, tuple)):
                for i, value in enumerate(node):
                    walk(value, f"{prefix}{i}.")
            else:
                flat[prefix[:-1]] = node

        walk(self._tree, "")
        return flat

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        tree = self.__dict__.get("_tree", {})
        if name in tree:
            value = tree[name]
            return _Node(value) if isinstance(value, dict) else value
        if name in self.schema_names:
            return None   # defined by the schema, not set yet
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name == "meta" and not isinstance(value, (dict, _Node)):
            raise TypeError(f"{type(self).__name__}.meta must be a mapping")
        if isinstance(value, _Node):
            value = value._data
        self._tree[name] = value

    def __delattr__(self, name):
        self._tree.pop(name, None)

    @property
    def override_handle(self):
        """What a step records as the reference file name when given this model in memory."""
        return "override://" + type(self).__name__

    # -- files ------------------------------------------------------------------------------------
    def save(self, path, dir_path=None):
        """Write the model as an ASDF file; returns the path written."""
        import asdf

        path = os.fspath(path)
        if dir_path:
            path = os.path.join(dir_path, os.path.basename(path))
        if not path.endswith(".asdf"):
            # the official model would write a FITS file with the tree in an ASDF extension,
            # which no reader of these references here (or in CRDS) expects
            raise ValueError(f"{type(self).__name__}: {path}: this reference is saved as .asdf")
        meta = self._tree.setdefault("meta", {})
        # what the official model fills in on saving
        meta["reftype"] = self.reftype
        meta["model_type"] = self.model_type
        meta["telescope"] = "JWST"
        if self.default_instrument:
            meta.setdefault("instrument", {})["name"] = self.default_instrument
        if not meta.get("date"):
            meta["date"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        tree = _pruned(_plain({k: v for k, v in self._tree.items() if k not in _ASDF_KEYS}))
        tree.get("meta", {}).pop("filename", None)
        asdf.AsdfFile(tree).write_to(path)
        meta["filename"] = os.path.basename(path)
        return path

    def validate(self):
        """Raise ValueError when the tree cannot serve as this reference (subclasses)."""

    def copy(self):
        return type(self)(copy.deepcopy(self._tree))

    def close(self):
        pass   # everything was read into memory: no file stays open

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        name = self._tree.get("meta", {}).get("filename") or ""
        return f"<{type(self).__name__} {name}>".replace(" >", ">")
