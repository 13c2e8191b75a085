"""Step and Pipeline base classes with the official (stpipe) behaviour.

The names are imported on first use: ``stpipe.naming`` alone (output names, which a batch's
client process needs) must not load the steps' machinery (astropy, the references, numba:
half a second before a batch can start its workers).
"""
import importlib

_SOURCES = {
    "Step": ".step", "ReferenceCache": ".step", "Pipeline": ".pipeline",
    "Parameter": ".spec", "parse_spec": ".spec",
    "make_output_path": ".naming", "split_root": ".naming",
}

__all__ = ["Step", "Pipeline", "ReferenceCache", "Parameter", "parse_spec", "make_output_path",
           "split_root"]


def __getattr__(name):
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
