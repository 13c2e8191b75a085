"""The C heap during runs: freed large arrays are reused without page faults, and given back
to the system when the run ends (ramp2slope.runtime.malloc)."""
import os
import platform
import resource
import subprocess
import sys

import numpy as np
import pytest

from ramp2slope.runtime import malloc
from ramp2slope.runtime.hugepages import no_hugepage_advice

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC, reason="the heap settings are glibc's")

_MB = 1 << 20


def _faulted_mb(action):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    action()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) * resource.getpagesize() / _MB


def _fill_fresh_array():
    array = np.empty(80 * _MB // 4, np.float32)   # above every mmap threshold glibc may pick
    array[:] = 1.0
    del array


def _second_fill_faults():
    with no_hugepage_advice():       # huge pages would hide the 4 kB faults being counted
        _fill_fresh_array()
        return _faulted_mb(_fill_fresh_array)


@needs_glibc
def test_a_freed_array_serves_the_next_one_without_page_faults():
    with malloc.retained_heap():
        assert malloc.retaining()
        assert _second_fill_faults() < 8
        assert malloc.release_free_memory() is False   # kept for the next array
    assert not malloc.retaining()


# Outside a run glibc's usual behaviour is checked in a new process: in a long-lived one (a
# test worker) whose heap could not grow in one piece, glibc keeps the top of its heap resident
# after a run (its trimming only shrinks a contiguous heap), and the next large array comes from
# there without faults.
_OUTSIDE = """
import resource, sys
import numpy as np
from ramp2slope.runtime import malloc
from ramp2slope.runtime.hugepages import no_hugepage_advice

def fill():
    array = np.empty(20 << 20, np.float32)
    array[:] = 1.0

def second_fill_faults():
    with no_hugepage_advice():
        fill()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        fill()
        return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) * 4096 / 2**20

def resident_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20

with malloc.retained_heap():
    with malloc.retained_heap():          # nested runs count as one
        pass
    inside = malloc.retaining()
    with no_hugepage_advice():
        fill()
    held = resident_mb()
left = resident_mb()
print(inside, round(held - left), round(second_fill_faults()), malloc.release_free_memory())
"""


def _outside(setting):
    env = dict(os.environ, **{malloc.ENV_VARIABLE: setting})
    out = subprocess.run([sys.executable, "-c", _OUTSIDE], capture_output=True, text=True,
                         env=env, check=True).stdout.split()
    return out[0] == "True", int(out[1]), int(out[2]), out[3] == "True"


@needs_glibc
def test_after_a_run_memory_is_given_back_and_glibc_behaves_as_usual():
    inside, given_back, faults, released = _outside("1")
    assert inside
    assert given_back > 60      # the freed 80 MB array left the resident set with the run
    assert faults > 60          # outside the run a new array is a new mapping, faulted in
    assert released


@needs_glibc
def test_the_retention_can_be_turned_off():
    inside, _, faults, _ = _outside("0")
    assert not inside
    assert faults > 60


def test_a_pipeline_run_keeps_the_heap_in_every_step(tmp_path, monkeypatch):
    from ramp2slope.pipeline import Detector1Pipeline
    from ramp2slope.simulate import simulate_exposure
    from ramp2slope.stpipe import Step

    seen = []
    original = Step._run

    def recording(self, *args):
        seen.append((self.name, malloc.retaining()))
        return original(self, *args)

    monkeypatch.setattr(Step, "_run", recording)
    sim = simulate_exposure(tmp_path / "sim", size=(64, 64), ngroups=4, nints=1, seed=5)
    Detector1Pipeline(refdir=os.path.dirname(sim.refs["mask"]), output_dir=str(tmp_path / "out"),
                      steps={"ipc": {"skip": True}}).run(str(sim.uncal))
    assert {name for name, _ in seen} >= {"dq_init", "jump", "ramp_fit"}
    assert all(kept == GLIBC for _, kept in seen), seen
    assert not malloc.retaining()


_THREAD_ALLOCATION = """
import ctypes, sys, threading
from ramp2slope.runtime import malloc
took = malloc.use_one_arena()
libc = ctypes.CDLL(None)
libc.malloc.restype = libc.sbrk.restype = ctypes.c_void_p
libc.malloc.argtypes, libc.sbrk.argtypes = [ctypes.c_size_t], [ctypes.c_ssize_t]
held = []
def allocate():          # glibc gives each new thread an arena of its own, up to its limit
    held.append(libc.malloc(4000))
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
top = libc.sbrk(0)       # the main heap ends here; other arenas are mappings far above it
print(took, all(address < top for address in held))
"""


@needs_glibc
@pytest.mark.parametrize("setting, expected", [("1", "True True"), ("0", "False False")])
def test_one_arena_puts_every_thread_on_the_main_heap(setting, expected):
    env = dict(os.environ, **{malloc.ENV_VARIABLE: setting})
    out = subprocess.run([sys.executable, "-c", _THREAD_ALLOCATION], capture_output=True,
                         text=True, env=env, check=True).stdout.strip()
    assert out == expected


def test_the_command_asks_for_one_arena_before_it_starts(monkeypatch):
    from ramp2slope import cli

    calls = []
    monkeypatch.setattr(malloc, "use_one_arena", lambda: calls.append("arena"))
    monkeypatch.setattr(cli, "main", lambda: calls.append("main") or 0)
    monkeypatch.setattr("ramp2slope.runtime.process_exit.exit_process", lambda code: calls.append(code))
    cli.entry_point()
    assert calls == ["arena", "main", 0]


def _arena_setting():
    return os.environ.get("MALLOC_ARENA_MAX")


@needs_glibc
def test_local_batch_workers_start_with_one_arena():
    distributed = pytest.importorskip("distributed")
    from ramp2slope.batch.engine import _local_cluster

    before = os.environ.get("MALLOC_ARENA_MAX")
    with _local_cluster(distributed, 1, "2GB") as cluster, distributed.Client(cluster) as client:
        assert list(client.run(_arena_setting).values()) == ["1"]
    assert os.environ.get("MALLOC_ARENA_MAX") == before    # this process's own is left alone


def _resident_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / _MB


@needs_glibc
def test_released_pages_leave_memory_and_read_as_zero():
    array = np.ones(64 * _MB // 4, dtype=np.float32)
    before = _resident_mb()
    released = malloc.release_pages(array[: array.size // 2])
    assert 32 * _MB - 8192 <= released <= 32 * _MB
    assert before - _resident_mb() > 24
    assert not array[1024: array.size // 2 - 1024].any()
    assert array[array.size // 2:].all()
    array[:] = 2.0                       # the array stays usable
    assert (array == 2.0).all()


def test_pages_not_owned_by_numpy_are_left_alone(tmp_path):
    path = tmp_path / "mapped.bin"
    np.ones(4 * _MB // 4, dtype=np.float32).tofile(path)
    mapped = np.memmap(path, dtype=np.float32, mode="r+")
    foreign = np.frombuffer(bytearray(4 * _MB), dtype=np.float32)
    strided = np.ones(2 * _MB // 4, dtype=np.float32)[::2]
    for array in (mapped, mapped[1024:], foreign, strided, np.ones(0, np.float32)):
        assert malloc.release_pages(array) == 0
    assert mapped.all()
