"""One exposure, as one task on a worker: the pipeline, its log file and its record."""
import gc
import logging
import multiprocessing
import os
import socket
import time
import traceback

from ..errors import Ramp2SlopeError
from ..runtime.malloc import release_free_memory
from ..stpipe.naming import split_root
from . import memory


def _products_of(uncal, written):
    """The products of this exposure among the files written to a shared output folder."""
    root = split_root(uncal)
    return [path for path in written if split_root(path) == root
            or os.path.basename(path).startswith(root + "_")]


def _threads_for_this_worker(requested):
    """The pipeline's threads: as asked, or this machine's cores shared among the tasks that
    can run at once on this worker's process, so that a cluster worker started with N threads
    runs N exposures of cores/N threads each."""
    if requested:
        return int(requested)
    try:
        from distributed import get_worker

        slots = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        slots = 1
    return max(1, memory.available_cores() // max(1, slots))


_frozen = []


def _freeze_once():
    """After the worker's first exposure, move what is alive then (the imported libraries:
    dask, astropy, numba, the pipeline's modules) out of the garbage collector's view: a full
    collection of a worker's heap took 50-80 ms after each exposure, 1-13 ms with this.
    Only in a worker process of its own (a nanny's child), never in a process the task shares
    with its caller."""
    if not _frozen and multiprocessing.parent_process() is not None:
        gc.freeze()
        _frozen.append(True)


def process_exposure(uncal, params, log_path):
    """Run the pipeline on ``uncal`` with ``params`` (``run_pipeline``'s keywords); returns a
    record: status, seconds, peak memory, products, error. A bad exposure does not raise: its
    error is in the record and the traceback in its log, so that the batch goes on."""
    from ..cli import run_pipeline

    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    handler = logging.FileHandler(log_path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("ramp2slope")
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False      # the worker's own log does not repeat every exposure's
    params = dict(params)
    params["threads"] = _threads_for_this_worker(params.get("threads"))
    record = {"status": "failed", "error": None, "products": [], "host": socket.gethostname(),
              "pid": os.getpid(), "threads": params["threads"]}
    exact_peak = memory.reset_peak()
    record["started"] = time.time()     # wall clock: comparable between workers and hosts
    start = time.perf_counter()
    logger.info("processing %s with %d thread(s) on %s (pid %d)", uncal, params["threads"],
                record["host"], record["pid"])
    try:
        written = run_pipeline(uncal, **params)
        record["products"] = sorted(_products_of(uncal, written))
        if not record["products"]:
            raise Ramp2SlopeError("the pipeline wrote no product")
        record["status"] = "done"
    except Ramp2SlopeError as exc:
        record["error"] = str(exc)
        logger.error("error: %s", exc)
    except Exception as exc:   # noqa: BLE001 -- one bad exposure must not stop the others
        record["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        logger.error("unexpected failure:\n%s", traceback.format_exc())
    finally:
        record["seconds"] = round(time.perf_counter() - start, 3)
        record["finished"] = time.time()
        record["peak_memory"] = memory.peak_since_reset() if exact_peak else None
        logger.info("%s in %.1f s", record["status"], record["seconds"])
        # the next exposure on this worker starts from what the pipeline freed, not from this
        # one's high-water mark: the admission counts each exposure's own peak only
        gc.collect()
        _freeze_once()
        release_free_memory()
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
    return record
