"""Many exposures as one job on dask.distributed: ``ramp2slope run A B C``, a folder, a glob or a
jwst association; :func:`run_many` in Python. See docs/batch.md."""
from .engine import BatchResult, run_many
from .inputs import expand_inputs, is_batch
from .memory import predict_peak_bytes

__all__ = ["BatchResult", "expand_inputs", "is_batch", "predict_peak_bytes", "run_many"]
