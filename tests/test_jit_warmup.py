"""The first-run helper processes compile exactly what a pipeline run then uses."""
import os

import pytest

from ramp2slope.runtime import jit_warmup
from ramp2slope.jump import twopoint
from ramp2slope.ramp_fitting import _ols_kernels


def _signatures():
    kernels = {}
    for module in (twopoint, _ols_kernels):
        for name in dir(module):
            value = getattr(module, name)
            if hasattr(value, "signatures") and hasattr(value, "py_func"):
                kernels[f"{module.__name__}.{name}"] = set(value.signatures)
    return kernels


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from ramp2slope.simulate import simulate_exposure

    return {nints: simulate_exposure(tmp_path_factory.mktemp(f"warm{nints}") / "sim",
                                     subarray="SUB160", ngroups=5, nints=nints, seed=3)
            for nints in (1, 3)}


@pytest.mark.parametrize("nints", [1, 3])
def test_warm_up_compiles_the_types_the_pipeline_uses(small, tmp_path, nints, monkeypatch):
    from ramp2slope.pipeline import Detector1Pipeline

    monkeypatch.setenv("RAMP2SLOPE_JIT_WARMUP", "0")
    sim = small[nints]
    Detector1Pipeline(refdir=os.path.dirname(sim.refs["mask"]), output_dir=str(tmp_path)).run(
        str(sim.uncal))
    used = _signatures()
    assert used["ramp2slope.ramp_fitting._ols_kernels.fit_integrations_kernel"]
    assert used["ramp2slope.jump.twopoint._detect_chunk"]
    jit_warmup.warm_jump(nints, 5, streamed=nints > 1)
    jit_warmup.warm_ramp_fit(nints, 5)
    # nothing new was compiled: the helper processes compile what a run of that kind needs
    assert _signatures() == used


def test_helper_processes_run_and_are_waited_for(monkeypatch):
    from ramp2slope.runtime import threads

    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(jit_warmup, "_cache_is_empty", lambda kind: True)
    monkeypatch.delenv("RAMP2SLOPE_JIT_WARMUP", raising=False)
    jit_warmup.start((2, 4, 100, 100), streamed=True)
    processes = {kind: entry[0] for kind, entry in jit_warmup._processes.items()}
    assert sorted(processes) == ["jump", "ramp_fit"]
    for kind in jit_warmup.KINDS:
        jit_warmup.wait(kind)
        assert processes[kind].returncode == 0
    assert not jit_warmup._processes
    jit_warmup.start((1, 4, 100, 100), streamed=False, kinds=["ramp_fit"])
    assert list(jit_warmup._processes) == ["ramp_fit"]
    jit_warmup.cancel()
    assert not jit_warmup._processes


def test_not_started_on_one_core(monkeypatch):
    from ramp2slope.runtime import threads

    monkeypatch.setattr(threads, "available_cores", lambda: 1)
    monkeypatch.setattr(jit_warmup, "_cache_is_empty", lambda kind: True)
    jit_warmup.start((1, 4, 100, 100), streamed=False)
    assert not jit_warmup._processes


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setattr(jit_warmup, "_cache_is_empty", lambda kind: True)
    monkeypatch.setenv("RAMP2SLOPE_JIT_WARMUP", "0")
    jit_warmup.start((1, 4, 100, 100), streamed=False)
    assert not jit_warmup._processes


def test_cache_probe_answers():
    # in a test session the kernels have been compiled and cached
    jit_warmup.warm_ramp_fit(1, 4)
    jit_warmup.warm_jump(1, 4, streamed=False)
    assert jit_warmup._cache_is_empty("ramp_fit") is False
    assert jit_warmup._cache_is_empty("jump") is False
