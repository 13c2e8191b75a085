"""Thread settings: the run's thread count, and one thread for light kernels on small frames."""
import numba
import numpy as np
import pytest

from ramp2slope.runtime.threads import SERIAL_BELOW_PIXELS, serial_if_small, thread_limit
from ramp2slope.saturation.saturation import flag_saturation


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_small_frames_run_light_kernels_on_one_thread():
    with thread_limit(2):
        with serial_if_small(SERIAL_BELOW_PIXELS - 1):
            assert numba.get_num_threads() == 1
        assert numba.get_num_threads() == 2
        with serial_if_small(SERIAL_BELOW_PIXELS):
            assert numba.get_num_threads() == 2
        with pytest.raises(RuntimeError):
            with serial_if_small(10):
                raise RuntimeError("the setting comes back on errors too")
        assert numba.get_num_threads() == 2


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_saturation_flags_the_same_on_small_and_large_frames_whatever_the_threads():
    rng = np.random.default_rng(4)
    for ny, nx in ((40, 72), (512, 512)):    # below and above SERIAL_BELOW_PIXELS
        data = rng.uniform(0, 70000, (3, 6, ny, nx)).astype(np.float32)
        thresh = np.full((ny, nx), 60000.0, np.float32)
        flags = []
        for threads in (1, 2):
            gdq = np.zeros(data.shape, np.uint8)
            pdq = np.zeros((ny, nx), np.uint32)
            with thread_limit(threads):
                flag_saturation(data, gdq, pdq, thresh, np.zeros((ny, nx), np.uint32),
                                n_pix_grow_sat=1, nframes=4)
            flags.append(gdq)
        np.testing.assert_array_equal(flags[0], flags[1])
        assert np.count_nonzero(flags[0])


# ------------------------------------------------------------------------------------------------
# map_in_threads: work outside the kernels on a kept pool of threads
# ------------------------------------------------------------------------------------------------
def test_map_in_threads_calls_everything_on_a_kept_pool():
    import threading
    import time

    from ramp2slope.runtime.threads import map_in_threads

    seen = []

    def work(item):
        time.sleep(0.001)
        seen.append((item, threading.current_thread()))

    for _ in range(5):
        map_in_threads(work, range(20), threads=2)
    assert sorted(item for item, _ in seen) == sorted(list(range(20)) * 5)
    workers = {thread for _, thread in seen}
    assert threading.current_thread() not in workers   # on the pool's threads
    assert len(workers) <= 2                            # the same 2 in every call, not new ones
    seen.clear()
    map_in_threads(work, range(5), threads=1)           # one thread: the caller's
    assert {thread for _, thread in seen} == {threading.current_thread()}


def test_map_in_threads_raises_the_first_error_once_no_call_is_running():
    import time

    from ramp2slope.runtime.threads import map_in_threads

    ended = []

    def work(item):
        time.sleep(0.002)
        ended.append(item)
        if item in (3, 7):
            raise ValueError(f"item {item}")

    with pytest.raises(ValueError, match="item 3"):
        map_in_threads(work, range(40), threads=2)
    count = len(ended)
    time.sleep(0.05)
    assert len(ended) == count        # nothing ran after the error was raised
    assert 3 in ended and count < 40  # the calls not started were dropped


def test_map_in_threads_inside_map_in_threads_does_not_wait_forever():
    from ramp2slope.runtime.threads import map_in_threads

    totals = []

    def outer(item):
        inner = []
        map_in_threads(inner.append, range(item * 10, item * 10 + 10), threads=2)
        totals.append(sum(inner))

    # both pool threads wait for inner calls; in a thread of its own, so that a deadlock
    # fails the test instead of hanging it
    import threading

    runner = threading.Thread(target=map_in_threads, args=(outer, range(4)),
                              kwargs={"threads": 2}, daemon=True)
    runner.start()
    runner.join(timeout=30)
    assert not runner.is_alive(), "nested map_in_threads never returned"
    assert sorted(totals) == [sum(range(k * 10, k * 10 + 10)) for k in range(4)]


def test_map_in_threads_interrupted_leaves_nothing_running(monkeypatch):
    """Ctrl-C while waiting: the calls not started are cancelled and the running ones end
    before the interruption goes on (the caller then closes the files they write to)."""
    import time

    from ramp2slope.runtime import threads

    ended, calls = [], []
    real_wait = threads.wait

    def interrupted_wait(futures, *args, **kwargs):
        calls.append(len(calls))
        if len(calls) == 1:
            time.sleep(0.01)
            raise KeyboardInterrupt
        return real_wait(futures, *args, **kwargs)

    monkeypatch.setattr(threads, "wait", interrupted_wait)

    def work(item):
        time.sleep(0.005)
        ended.append(item)

    with pytest.raises(KeyboardInterrupt):
        threads.map_in_threads(work, range(200), threads=2)
    count = len(ended)
    time.sleep(0.05)
    assert len(ended) == count        # nothing ran after the call gave up
    assert 0 < count < 200            # some ran, the rest were cancelled


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_map_in_threads_in_a_forked_child():
    import multiprocessing

    from ramp2slope.runtime.threads import map_in_threads

    map_in_threads(lambda item: None, range(4), threads=2)    # the parent's pool exists
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        # a child that used the parent's pool would wait forever for threads it does not have
        result = pool.apply_async(_squares_in_threads, (6,)).get(timeout=30)
        assert result == [k * k for k in range(6)]


def _squares_in_threads(n):
    from ramp2slope.runtime.threads import map_in_threads

    out = [None] * n

    def work(k):
        out[k] = k * k
    map_in_threads(work, range(n), threads=2)
    return out
