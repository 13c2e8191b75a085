"""run_many: every exposure one task on dask.distributed, admitted by predicted memory."""
import logging
import os
import sys
import time
from dataclasses import dataclass, field

from ..errors import Ramp2SlopeError
from ..runtime import malloc
from ..stpipe.naming import split_root
from . import manifest as manifest_io
from . import memory
from .inputs import expand_inputs
from .progress import Progress, summary_table
from .task import process_exposure

log = logging.getLogger("ramp2slope")

DEFAULT_MEMORY_SHARE = 0.8
INSTALL_HINT = 'processing many exposures needs dask.distributed: pip install "ramp2slope[dask]"'


@dataclass
class BatchResult:
    """What a batch did: one record per exposure (as in the manifest) and where the manifest is."""
    records: list
    manifest: str
    seconds: float = 0.0
    workers: int = 0
    counts: dict = field(default_factory=dict)

    @property
    def failed(self):
        return [r for r in self.records if r["status"] not in ("done", "skipped")]

    @property
    def exit_code(self):
        """0 when every exposure has its products, 1 when some failed."""
        return 1 if self.failed else 0


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise Ramp2SlopeError(INSTALL_HINT) from None
    return distributed


def _local_cluster(distributed, workers, memory_limit):
    """A LocalCluster of single-threaded worker processes, each a nanny's child.

    A nanny restarts a worker that dies, and the scheduler gives its task to another worker:
    what concurrent.futures' process pool cannot do (one dead worker breaks the whole pool and
    every exposure waiting in it)."""
    import dask

    # set in each worker process before it starts (see ramp2slope.runtime.malloc); the nanny
    # sets them in this process's environment to spawn the workers: put back as they were
    environment = malloc.one_arena_environment()
    saved = {name: os.environ.get(name) for name in environment}
    try:
        with dask.config.set({f"distributed.nanny.pre-spawn-environ.{name}": value
                              for name, value in environment.items()}):
            return distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                memory_limit=memory_limit,        # the nanny restarts a worker beyond the whole budget
                dashboard_address=":0", silence_logs=logging.ERROR)   # no fixed port to collide on
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _worker_slots(client):
    """Tasks the cluster runs at once (its worker threads), and the sum of its workers'
    memory limits (0 where they have none)."""
    info = client.scheduler_info(n_workers=-1) if _accepts_n_workers(client) else client.scheduler_info()
    workers = info.get("workers", {}).values()
    slots = sum(w.get("nthreads", 1) for w in workers)
    limits = [w.get("memory_limit") or 0 for w in workers]
    return slots, (sum(limits) if limits and all(limits) else 0)


def _accepts_n_workers(client):
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


def _params(refdir, output_dir, steps, threads, save_steps, save_calibrated_ramp, config_file,
            disable_crds_steppars, extra_pipeline_params):
    def absolute(path):
        return os.path.abspath(path) if path else path

    return {"refdir": absolute(refdir), "output_dir": output_dir, "steps": steps or {},
            "threads": threads, "save_steps": bool(save_steps),
            "save_calibrated_ramp": bool(save_calibrated_ramp), "config_file": absolute(config_file),
            "disable_crds_steppars": disable_crds_steppars,
            "extra_pipeline_params": dict(extra_pipeline_params or {})}


def run_many(inputs, output_dir=None, *, refdir=None, steps=None, threads=None, save_steps=False,
             save_calibrated_ramp=False, config_file=None, disable_crds_steppars=None,
             extra_pipeline_params=None, workers=None, memory_limit=None, scheduler=None,
             client=None, manifest=None, logs_dir=None, overwrite=False, progress=True,
             stream=None):
    """Run Detector1Pipeline on many exposures; returns a :class:`BatchResult`.

    ``inputs``: paths, glob patterns, folders (their ``*_uncal.fits``) or jwst association files.
    Each exposure is one task on ``dask.distributed``: on ``client`` if given, else on the
    scheduler at ``scheduler`` (or the one Dask's configuration names), else on a LocalCluster
    of ``workers`` processes started here and closed at the end. A new exposure starts only
    while the predicted peaks of those running, with its own, fit ``memory_limit`` (bytes or a
    text such as ``"16GB"``/``"50%"``; default 80 % of RAM locally, the workers' memory limits
    on a cluster).

    ``threads``: the pipeline's threads per exposure (default: the cores shared among the
    exposures running at once). Products do not depend on it.

    A record per exposure goes to ``manifest`` (default ``<output_dir>/ramp2slope_manifest.json``)
    and each exposure's log to ``logs_dir`` (default ``<output_dir>/logs``). An exposure whose
    products from an earlier run are complete and were made from the same input and
    parameters is skipped unless ``overwrite``.
    """
    started = time.perf_counter()
    stream = stream or sys.stderr
    output_dir = os.path.abspath(output_dir or os.getcwd())
    paths = expand_inputs(inputs)
    os.makedirs(output_dir, exist_ok=True)
    manifest_path = os.path.abspath(manifest or os.path.join(output_dir, manifest_io.MANIFEST_NAME))
    logs_dir = os.path.abspath(logs_dir or os.path.join(output_dir, "logs"))
    limit = memory.parse_bytes(memory_limit) if isinstance(memory_limit, str) else memory_limit
    if workers is not None and int(workers) < 1:
        raise Ramp2SlopeError(f"--workers {workers}: give at least 1")
    params = _params(refdir, output_dir, steps, threads, save_steps, save_calibrated_ramp,
                     config_file, disable_crds_steppars, extra_pipeline_params)
    params_hash = manifest_io.parameters_fingerprint(params)

    previous = manifest_io.load(manifest_path)
    records, todo = {}, []
    for path in paths:
        fingerprint = manifest_io.input_fingerprint(path)
        old = previous.get(path)
        if not overwrite and manifest_io.is_complete(old, fingerprint, params_hash):
            records[path] = dict(old, skipped=True)
            continue
        shape = memory.shape_of(path)
        records[path] = {"input": path, "skipped": False, "status": "pending", "fingerprint": fingerprint,
                         "parameters": params_hash, "shape": list(shape) if shape else None,
                         "predicted_memory": memory.predict_peak_bytes(shape),
                         "log": os.path.join(logs_dir, split_root(path) + ".log")}
        todo.append(path)
    def write_manifest():
        counts = _counts(records.values())
        manifest_io.save(manifest_path, [records[p] for p in paths],
                         summary=dict(counts, seconds=round(time.perf_counter() - started, 3)))

    result = BatchResult(records=[], manifest=manifest_path)
    if not todo:
        write_manifest()
        result.records = [records[p] for p in paths]
        result.counts = _counts(result.records)
        result.seconds = time.perf_counter() - started
        if progress:
            print(f"ramp2slope: all {len(paths)} exposures already have their products "
                  f"(--overwrite runs them again)", file=stream)
        return result

    distributed = _import_distributed()
    own_cluster = None
    if client is None:
        if scheduler is None:
            import dask.config

            scheduler = dask.config.get("scheduler-address", None)   # DASK_SCHEDULER_ADDRESS too
        if scheduler:
            try:
                client = distributed.Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise Ramp2SlopeError(f"cannot reach the Dask scheduler at {scheduler}: "
                                      f"{str(exc).splitlines()[0]}") from None
        else:
            limit = limit or int(DEFAULT_MEMORY_SHARE * memory.total_memory())
            largest = max(records[p]["predicted_memory"] for p in todo)
            cores = memory.available_cores()
            count = int(workers) if workers else max(1, min(cores, len(todo),
                                                            int(limit // max(largest, 1))))
            if threads is None:
                params["threads"] = max(1, cores // count)
            own_cluster = _local_cluster(distributed, count, limit)
            client = distributed.Client(own_cluster)
    close_client = own_cluster is not None or scheduler is not None
    try:
        slots, cluster_memory = _worker_slots(client)
        limit = limit or cluster_memory or int(DEFAULT_MEMORY_SHARE * memory.total_memory())
        result.workers = slots
        log.info("batch: %d exposure(s) to process, %d skipped; %d task slot(s), memory limit "
                 "%.1f GB", len(todo), len(paths) - len(todo), slots, limit / 1e9)
        write_manifest()
        _schedule(distributed, client, todo, records, params, limit, slots, write_manifest,
                  Progress(len(paths), len(paths) - len(todo), enabled=progress, stream=stream))
    except KeyboardInterrupt:
        for record in records.values():
            if record["status"] in ("pending", "running"):
                record["status"] = "interrupted"
        write_manifest()
        raise
    finally:
        if close_client:
            client.close()
        if own_cluster is not None:
            own_cluster.close()
    result.records = [records[p] for p in paths]
    result.counts = _counts(result.records)
    result.seconds = time.perf_counter() - started
    write_manifest()
    if progress:
        print(summary_table(result.records, result.seconds), flush=True)
        print(f"manifest: {manifest_path}", flush=True)
    return result


def _counts(records):
    counts = {"total": 0, "done": 0, "skipped": 0, "failed": 0, "interrupted": 0, "pending": 0}
    for record in records:
        counts["total"] += 1
        if record.get("skipped"):
            counts["skipped"] += 1
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    return counts


def _schedule(distributed, client, todo, records, params, limit, slots, write_manifest, bar):
    """Submit while the running exposures' predicted peaks leave room, and at most one per
    worker slot; record each result as it arrives. Placement, retries of tasks whose worker
    died and data movement are the scheduler's."""
    pending = list(todo)
    running = {}
    while pending or running:
        in_use = sum(records[p]["predicted_memory"] for p in running.values())
        while pending and len(running) < slots:
            fits = [p for p in pending if in_use + records[p]["predicted_memory"] <= limit]
            if not fits:
                if running:
                    break
                # alone it does not fit either: run it by itself rather than never
                fits = pending[:1]
                log.warning("%s: predicted peak %.2f GB exceeds the memory limit %.2f GB; "
                            "running it alone", fits[0], records[fits[0]]["predicted_memory"] / 1e9,
                            limit / 1e9)
            path = fits[0]
            pending.remove(path)
            record = records[path]
            future = client.submit(process_exposure, path, params, record["log"], pure=False,
                                   key=f"ramp2slope-{split_root(path)}-{os.urandom(4).hex()}")
            running[future] = path
            record["status"] = "running"
            in_use += record["predicted_memory"]
        bar.update(running=len(running))
        try:
            done, _ = distributed.wait(list(running), timeout=2, return_when="FIRST_COMPLETED")
        except TimeoutError:
            done = ()      # nothing finished: redraw the progress line and look again
        for future in done:
            path = running.pop(future)
            record = records[path]
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 -- e.g. KilledWorker after every retry
                outcome = {"status": "failed", "error": f"{type(exc).__name__}: "
                                                        f"{str(exc).splitlines()[0] if str(exc) else ''}",
                           "products": []}
            record.update(outcome)
            if record["status"] == "done":
                record["products"] = [manifest_io.product_record(p) for p in record["products"]]
            bar.finished(ok=record["status"] == "done", running=len(running))
            write_manifest()
    bar.close()
