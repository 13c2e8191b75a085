"""The time spent loading numba kernels, told apart from a step's own work (runtime/kernel_clock,
the steps' closing lines, and the benchmark's start-up and thread-scaling figures)."""
import importlib.util
import logging
import pathlib
import threading

import numba
import numpy as np
import pytest

from ramp2slope import datamodels
from ramp2slope.runtime import kernel_clock
from ramp2slope.stpipe import Step


def _fresh_kernel(seed):
    """A kernel compiled in this test (never in numba's cache), its work a few microseconds."""
    def kernel(values):
        total = 0.0
        for i in range(values.size):
            total += np.sin(values[i] + seed) * np.cos(values[i]) ** 2
        return total
    return numba.njit(kernel)


def test_the_clock_counts_a_first_call_and_not_the_next_ones():
    kernel = _fresh_kernel(1.0)
    values = np.linspace(0.0, 1.0, 5)
    before = kernel_clock.seconds()
    kernel(values)
    first = kernel_clock.seconds() - before
    assert first > 0.005          # compiling a kernel takes tens of milliseconds at least
    before = kernel_clock.seconds()
    for _ in range(50):
        kernel(values)            # compiled: numba's compiler lock is not taken again
    assert kernel_clock.seconds() - before == 0.0


def test_each_thread_has_its_own_clock():
    kernel = _fresh_kernel(2.0)
    before = kernel_clock.seconds()
    seen = {}

    def other():
        start = kernel_clock.seconds()
        kernel(np.ones(3))
        seen["other"] = kernel_clock.seconds() - start
    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen["other"] > 0.005
    assert kernel_clock.seconds() == before   # this thread loaded nothing


def test_pool_threads_working_for_a_step_add_to_its_clock():
    """A kernel first called on map_in_threads' pool (jump's detection) is loaded while the
    caller waits: the caller's clock has it, a plain thread's clock does not."""
    from ramp2slope.runtime.threads import map_in_threads

    import time

    kernel = _fresh_kernel(3.0)
    before, started = kernel_clock.seconds(), time.perf_counter()
    map_in_threads(lambda values: kernel(values), [np.ones(3)] * 4, threads=2)
    wall = time.perf_counter() - started
    counted = kernel_clock.seconds() - before
    # one thread compiles while the other waits for the lock: wall time, counted once
    assert 0.005 < counted <= wall
    before = kernel_clock.seconds()
    map_in_threads(lambda values: kernel(values), [np.ones(3)] * 4, threads=2)
    assert kernel_clock.seconds() - before < 0.005    # loaded: nothing more to count


class _KernelStep(Step):
    class_alias = "kernel_step"
    spec = ""
    kernel = None

    def process(self, model):
        if self.kernel is not None:
            self.kernel(np.ones(4))
        return model


@pytest.fixture()
def info_lines():
    lines = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())
    handler = Collect(logging.INFO)
    logger = logging.getLogger("ramp2slope")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_steps_line_says_how_much_of_its_time_went_to_loading_kernels(info_lines):
    model = datamodels.RampModel(np.zeros((1, 2, 4, 4), dtype=np.float32))
    step = _KernelStep()
    step.kernel = _fresh_kernel(3.0)
    step.run(model)
    done = [line for line in info_lines if line.startswith("kernel_step done in")]
    assert len(done) == 1 and "kernels loaded in" in done[0], info_lines
    info_lines.clear()
    step.run(model)               # the kernel is loaded now: nothing to say
    done = [line for line in info_lines if line.startswith("kernel_step done in")]
    assert len(done) == 1 and "kernels loaded" not in done[0], info_lines


def _bench():
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"
    spec = importlib.util.spec_from_file_location("bench_for_kernel_test", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_the_benchmark_counts_kernel_loading_as_start_up(tmp_path):
    bench = _bench()
    log = tmp_path / "run.log"
    log.write_text(
        "[   0.50 s] calwebb_detector1: x.fits, 1 integration(s) x 10 groups x 2048x2048\n"
        "[   0.50 s] dq_init running\n"
        "[   0.80 s] dq_init done in 0.300 s (complete; kernels loaded in 0.250 s)\n"
        "[   1.00 s] jump done in 0.203 s (complete; kernels loaded in 0.047 s)\n"
        "[   1.30 s] ramp_fit done in 0.300 s (complete)\n"
        "[   1.40 s] calwebb_detector1 done in 0.900 s (kernels loaded in 0.320 s)\n")
    run = bench.parse_r2s_log(log, wall=1.6)
    assert run["kernels"] == {"dq_init": 0.25, "jump": 0.047}
    assert run["kernels_s"] == pytest.approx(0.32)      # the run's own total, steps and between
    assert run["startup_s"] == pytest.approx(0.70)      # 0.5 s before the run, 0.2 s after it
    assert run["startup_all_s"] == pytest.approx(1.02)
    assert bench.step_work(run, "jump") == pytest.approx(0.156)   # to the millisecond
    assert bench.step_work(run, "ramp_fit") == pytest.approx(0.30)
    assert bench.step_work(run, "refpix") is None


def test_the_benchmark_judges_scaling_on_the_work_and_start_up_on_the_rest():
    bench = _bench()

    def run(jump, jump_kernels, startup_all):
        return {"ok": True, "wall_s": 2.0, "rss": 1e9, "steps": {"jump": jump, "ramp_fit": 0.4},
                "kernels": {"jump": jump_kernels}, "startup_all_s": startup_all,
                "startup_s": startup_all - 0.3, "kernels_s": 0.3}
    res = {"key": "a", "shape": [1, 10, 2048, 2048],
           "r2s": [run(0.14, 0.05, 0.80)] * 3,
           "r2s_t1": [run(0.23, 0.05, 0.80)] * 3,
           "jwst": [{"ok": True, "wall_s": 20.0, "rss": 3e9}],
           "floor": [{"ok": True, "wall_s": 1.0, "rss": 5e8, "import_s": 0.45}]}

    class Args:
        threads = 2
    verdicts = {v["target"]: v for v in bench.targets([res], Args())}
    jump = verdicts["[a] jump on 2 threads >= 1.7x faster than on 1"]
    assert jump["status"] == "PASS"                       # (0.23 - 0.05) / (0.14 - 0.05) = 2.0
    assert "with it, 0.230 s / 0.140 s" in jump["line"]     # the whole step's times are shown too
    start = verdicts["[a] start-up <= the floor's imports + 0.3 s"]
    assert start["status"] == "MISS" and "+0.350 s" in start["line"]
    res["r2s"] = [run(0.14, 0.05, 0.70)] * 3
    verdicts = {v["target"]: v for v in bench.targets([res], Args())}
    assert verdicts["[a] start-up <= the floor's imports + 0.3 s"]["status"] == "PASS"
