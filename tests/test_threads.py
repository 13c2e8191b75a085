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
