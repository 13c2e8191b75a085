"""Many exposures as one job on dask.distributed: ``ramp2slope run A B C``, a folder, a glob or a
jwst association; :func:`run_many` in Python. See docs/batch.md.

The names below are imported from their modules on first use: the command line asks
:func:`is_batch` of every ``run``, and a single exposure should not pay for importing the
engine (multiprocessing, hashlib and the rest: 6-20 ms of a run's start).
"""
import importlib

__all__ = ["BatchResult", "expand_inputs", "is_batch", "predict_peak_bytes", "run_many"]

_MODULE_OF = {"BatchResult": "engine", "run_many": "engine", "expand_inputs": "inputs",
              "is_batch": "inputs", "predict_peak_bytes": "memory"}


def __getattr__(name):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
