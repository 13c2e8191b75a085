"""Many exposures as one job (ramp2slope.batch): identical products, failure isolation, memory
admission, a killed worker, an interrupted run resumed, association files."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

distributed = pytest.importorskip("distributed")

from ramp2slope import cli  # noqa: E402
from ramp2slope.batch import expand_inputs, run_many  # noqa: E402
from ramp2slope.batch.manifest import MANIFEST_NAME  # noqa: E402
from ramp2slope.errors import Ramp2SlopeError  # noqa: E402
from test_streaming import _assert_same_products  # noqa: E402


@pytest.fixture(scope="module")
def exposures(tmp_path_factory):
    """Three small exposures (one with more integrations, slower: the one a worker is killed
    under), the references of the first, and each one's products from a single run."""
    from ramp2slope.simulate import simulate_exposure

    base = tmp_path_factory.mktemp("batch")
    shapes = [dict(ngroups=4, nints=1), dict(ngroups=5, nints=2), dict(ngroups=10, nints=12)]
    sims = [simulate_exposure(base / f"sim{i}", subarray="SUB160", seed=i, detector="NRCA1",
                              full_frame_refs=False, exposure=i + 1, **shape)
            for i, shape in enumerate(shapes)]
    inputs = base / "inputs"
    inputs.mkdir()
    uncals = []
    for sim in sims:
        uncals.append(str(inputs / os.path.basename(sim.uncal)))
        shutil.copy(sim.uncal, uncals[-1])
    refdir = os.path.dirname(sims[0].refs["mask"])
    singles = {}
    for uncal in uncals:
        out = base / ("single_" + os.path.basename(uncal))
        cli.run_pipeline(uncal, refdir=refdir, output_dir=str(out), threads=1)
        singles[uncal] = out
    return {"uncals": uncals, "refdir": refdir, "singles": singles, "folder": inputs}


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        yield c


def _assert_as_single_runs(out, uncals, singles):
    for uncal in uncals:
        root = os.path.basename(uncal)[: -len("_uncal.fits")]
        mine = out.parent / f"only_{root}"
        mine.mkdir(exist_ok=True)
        for name in os.listdir(out):
            if name.startswith(root + "_"):
                shutil.copy(out / name, mine / name)
        _assert_same_products(str(mine), str(singles[uncal]))


def _no_leftovers(folder):
    hidden = [n for n in os.listdir(folder) if n.startswith(".")]
    assert hidden == [], f"temporary files left: {hidden}"


def _manifest(out):
    with open(out / MANIFEST_NAME) as handle:
        return {os.path.basename(e["input"]): e for e in json.load(handle)["exposures"]}


def test_cluster_products_as_single_runs_and_a_corrupt_input_fails_alone(exposures, client,
                                                                          tmp_path, capsys):
    bad = tmp_path / "jw01234001001_01101_00009_nrca1_uncal.fits"
    shutil.copy(exposures["uncals"][0], bad)
    with open(bad, "r+b") as handle:
        handle.truncate(os.path.getsize(bad) // 2)
    out = tmp_path / "out"
    inputs = exposures["uncals"][:2] + [str(bad)]
    result = run_many(inputs, out, refdir=exposures["refdir"], client=client)
    assert result.exit_code == 1
    records = _manifest(out)
    assert [records[os.path.basename(p)]["status"] for p in inputs] == ["done", "done", "failed"]
    failure = records[bad.name]
    assert "\n" not in failure["error"] and failure["products"] == []
    assert os.path.exists(failure["log"])
    for path in inputs[:2]:
        record = records[os.path.basename(path)]
        assert record["seconds"] > 0 and record["peak_memory"] > 0
        assert {os.path.basename(p["path"]) for p in record["products"]} == set(
            os.listdir(exposures["singles"][path]))
    _assert_as_single_runs(out, inputs[:2], exposures["singles"])
    _no_leftovers(out)
    table = capsys.readouterr().out
    assert "2 done, 1 failed" in table and bad.name in table


def test_memory_limit_admits_one_exposure_at_a_time(exposures, client, tmp_path):
    from ramp2slope.batch import memory

    inputs = exposures["uncals"][:2]
    largest = max(memory.predict_peak_bytes(memory.shape_of(p)) for p in inputs)
    out = tmp_path / "out"
    result = run_many(inputs, out, refdir=exposures["refdir"], client=client,
                      memory_limit=int(largest * 1.5), progress=False)
    assert result.exit_code == 0
    first, second = sorted((r["started"], r["finished"]) for r in result.records)
    assert second[0] >= first[1]
    # with room for both, the two workers run them at once
    result = run_many(inputs, tmp_path / "both", refdir=exposures["refdir"], client=client,
                      memory_limit=largest * 4, progress=False)
    first, second = sorted((r["started"], r["finished"]) for r in result.records)
    assert second[0] < first[1]


def test_killed_worker_retried_elsewhere_without_partial_products(exposures, client, tmp_path):
    import threading

    slow = exposures["uncals"][2]
    out = tmp_path / "out"
    log = out / "logs" / (os.path.basename(slow)[: -len("_uncal.fits")] + ".log")
    killed = []

    def kill_when_started():
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            if log.exists():
                for address, keys in client.processing().items():
                    if any("00003" in str(key) for key in keys):
                        pid = client.run(os.getpid, workers=[address])[address]
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                        return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_started)
    killer.start()
    result = run_many([slow], out, refdir=exposures["refdir"], client=client, progress=False)
    killer.join()
    assert killed, "the worker was not found running the exposure"
    record = result.records[0]
    assert record["status"] == "done" and record["pid"] != killed[0]
    _assert_as_single_runs(out, [slow], exposures["singles"])
    _no_leftovers(out)


def test_scheduler_from_dask_configuration(exposures, client, tmp_path):
    import dask.config

    # a worker killed by an earlier test is replaced by its nanny: the cluster's processes are
    # asked for once it is whole again, and after the run as well
    client.wait_for_workers(2, timeout=60)
    workers = set(client.run(os.getpid).values())
    with dask.config.set({"scheduler-address": client.scheduler.address}):
        result = run_many(exposures["uncals"][:1], tmp_path / "out", refdir=exposures["refdir"],
                          progress=False)
    workers |= set(client.run(os.getpid).values())
    assert result.exit_code == 0
    assert result.records[0]["pid"] in workers and result.records[0]["pid"] != os.getpid()


def test_association_local_pool_resume_and_parameters(exposures, tmp_path, capsys):
    asn = tmp_path / "asn.json"
    members = [{"expname": os.path.relpath(p, tmp_path), "exptype": "science"}
               for p in exposures["uncals"][:2]]
    members.append({"expname": "background_uncal.fits", "exptype": "background"})
    asn.write_text(json.dumps({"asn_type": "image2", "products": [
        {"name": "one", "members": members[:1]}, {"name": "two", "members": members[1:]}]}))
    assert expand_inputs([asn]) == exposures["uncals"][:2]
    out = tmp_path / "out"
    result = run_many([asn], out, refdir=exposures["refdir"], workers=2, threads=1)
    assert result.exit_code == 0 and result.counts["done"] == 2
    _assert_as_single_runs(out, exposures["uncals"][:2], exposures["singles"])
    # a rerun skips complete exposures; a changed input or changed parameters run again
    again = run_many([asn], out, refdir=exposures["refdir"], workers=2, progress=False)
    assert again.counts["skipped"] == 2
    os.utime(exposures["uncals"][0])
    changed = run_many([asn], out, refdir=exposures["refdir"], workers=1, progress=False)
    assert [r.get("skipped") for r in changed.records] == [False, True]
    other = run_many([asn], out, refdir=exposures["refdir"], workers=1, progress=False,
                     steps={"jump": {"rejection_threshold": "5"}})
    assert other.counts["skipped"] == 0


def test_interrupted_run_resumes(exposures, tmp_path):
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "ramp2slope.cli", "run", str(exposures["folder"]),
            "--refdir", exposures["refdir"], "--output-dir", str(out), "--workers", "1"]
    # a shell's background job ignores SIGINT, and Python then keeps ignoring it: the child must
    # take Ctrl-C whatever the test itself was started from
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline:
        records = _manifest(out) if (out / MANIFEST_NAME).exists() else {}
        if any(r["status"] == "done" for r in records.values()):
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    statuses = [r["status"] for r in _manifest(out).values()]
    assert "done" in statuses and "interrupted" in statuses
    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "skipped" in rerun.stdout
    _assert_as_single_runs(out, exposures["uncals"], exposures["singles"])
    _no_leftovers(out)


@pytest.mark.parametrize("argv, message", [
    (["run", "{missing}*_uncal.fits"], "no file matches this pattern"),
    (["run", "{asn}"], "the association has no science members"),
    (["run", "{folder}", "--memory-limit", "lots"], "--memory-limit 'lots'"),
    (["run", "{folder}", "--report"], "--report works on one exposure"),
])
def test_batch_usage_errors_are_one_line(exposures, tmp_path, capsys, argv, message):
    asn = tmp_path / "asn.json"
    asn.write_text(json.dumps({"products": [{"members": [
        {"expname": "x_uncal.fits", "exptype": "background"}]}]}))
    names = {"missing": str(tmp_path / "none"), "asn": str(asn), "folder": str(exposures["folder"])}
    code = cli.main([a.format(**names) for a in argv] + ["--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("ramp2slope: error:") \
        and message in err[0]


def test_same_root_twice_is_refused(exposures, tmp_path):
    copy = tmp_path / os.path.basename(exposures["uncals"][0])
    shutil.copy(exposures["uncals"][0], copy)
    with pytest.raises(Ramp2SlopeError, match="same root name"):
        expand_inputs([exposures["uncals"][0], copy])


def test_client_process_does_not_load_the_steps():
    """A batch's own process needs output names only: importing the batch engine must not
    load astropy or numba (half a second before the workers can start)."""
    code = ("import sys, ramp2slope.batch.engine; "
            "print(sorted(m for m in ('astropy', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    from ramp2slope.stpipe import Step, split_root    # the names still resolve on first use
    assert Step.__name__ == "Step" and split_root("a_uncal.fits") == "a"


def _freeze_count_in_child():
    import gc

    from ramp2slope.batch import task

    task._freeze_once()
    task._freeze_once()
    return gc.get_freeze_count() > 0


def test_worker_heap_frozen_in_worker_processes_only():
    import gc
    import multiprocessing

    from ramp2slope.batch import task

    before = gc.get_freeze_count()
    task._freeze_once()       # this process is not a worker of its own: nothing frozen
    assert gc.get_freeze_count() == before and not task._frozen
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_freeze_count_in_child)
