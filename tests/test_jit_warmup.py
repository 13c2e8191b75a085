"""The first-run helper process compiles exactly what a pipeline run then uses."""
import os

import pytest

from ramp2slope import jit_warmup
from ramp2slope.ramp_fitting import _ols_kernels as K
from ramp2slope.ramp_fitting.ols_fit import warm_up

_KERNELS = ("fit_integration_kernel", "median_rate_kernel", "finish_rate_kernel")


def _signatures():
    return {name: set(getattr(K, name).signatures) for name in _KERNELS
            if hasattr(K, name)}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from ramp2slope.simulate import simulate_exposure

    return {nints: simulate_exposure(tmp_path_factory.mktemp(f"warm{nints}") / "sim",
                                     subarray="SUB160", ngroups=4, nints=nints, seed=3)
            for nints in (1, 2)}


@pytest.mark.parametrize("nints", [1, 2])
def test_warm_up_compiles_the_types_the_pipeline_uses(small, tmp_path, nints, monkeypatch):
    from ramp2slope.pipeline import Detector1Pipeline

    monkeypatch.setenv("RAMP2SLOPE_JIT_WARMUP", "0")
    sim = small[nints]
    Detector1Pipeline(refdir=os.path.dirname(sim.refs["mask"]), output_dir=str(tmp_path)).run(
        str(sim.uncal))
    used = _signatures()
    assert used["fit_integration_kernel"]
    warm_up(nints)
    # the warm-up added no signature: the helper process compiles what a run of that kind needs
    assert _signatures() == used


def test_helper_process_runs_and_is_waited_for(monkeypatch):
    monkeypatch.setattr(jit_warmup, "_cache_is_empty", lambda: True)
    monkeypatch.delenv("RAMP2SLOPE_JIT_WARMUP", raising=False)
    jit_warmup.start(2)
    process = jit_warmup._process
    assert process is not None
    jit_warmup.wait()
    assert process.returncode == 0 and jit_warmup._process is None
    jit_warmup.start(1)
    jit_warmup.cancel()
    assert jit_warmup._process is None


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setattr(jit_warmup, "_cache_is_empty", lambda: True)
    monkeypatch.setenv("RAMP2SLOPE_JIT_WARMUP", "0")
    jit_warmup.start(1)
    assert jit_warmup._process is None


def test_cache_probe_answers():
    # in a test session the kernels have been compiled and cached
    warm_up(1)
    assert jit_warmup._cache_is_empty() is False
