"""Step and Pipeline base classes with the official (stpipe) behaviour.

The names are imported on first use: ``stpipe.naming`` alone (output names, which a batch's
client process needs) must not load the steps' machinery (astropy, the references, numba:
half a second before a batch can start its workers).
"""
from .._exports import lazy_exports

__all__ = ["Step", "Pipeline", "ReferenceCache", "Parameter", "parse_spec", "make_output_path",
           "split_root"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "Step": "step", "ReferenceCache": "step", "Pipeline": "pipeline",
    "Parameter": "spec", "parse_spec": "spec",
    "make_output_path": "naming", "split_root": "naming"}, globals())
