"""Many exposures as one job on dask.distributed: ``ramp2slope run A B C``, a folder, a glob or a
jwst association; :func:`run_many` in Python. See docs/batch.md.

The names below are imported from their modules on first use: the command line asks
:func:`is_batch` of every ``run``, and a single exposure should not pay for importing the
engine (multiprocessing, hashlib and the rest: 6-20 ms of a run's start).
"""
from .._exports import lazy_exports

__all__ = ["BatchResult", "expand_inputs", "is_batch", "predict_peak_bytes", "run_many"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "BatchResult": "engine", "run_many": "engine", "expand_inputs": "inputs",
    "is_batch": "inputs", "predict_peak_bytes": "memory"}, globals())
