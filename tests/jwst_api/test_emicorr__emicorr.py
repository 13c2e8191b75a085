"""jwst emicorr/tests/test_emicorr.py, ported."""
import pytest

from ._port import SYNTHETIC_CRDS, port

XFAIL = {
    # the test's ramp has no NGROUPS keyword; ramp2slope's pipeline refuses such an input in
    # one line before any step (saturation builds its read pattern from NGROUPS), jwst runs
    # it when every step that reads it is skipped
    'test_run_in_pipeline': "the ramp has no NGROUPS: ramp2slope's pipeline refuses it",
}
SKIP = {}
# These run the step (or the pipeline) with no EMICORR override: jwst asks CRDS for the
# reference (and the pipeline for every step's); here they take them from the synthetic cache
CRDS_CACHE = {
    'test_run_in_pipeline': SYNTHETIC_CRDS,
    'test_emicorrstep_skip_for_failure': SYNTHETIC_CRDS,
    'test_emicorrstep_skip_for_small_groups': SYNTHETIC_CRDS,
    'test_emicorrstep_succeeds': SYNTHETIC_CRDS,
}


@pytest.fixture
def caplog(caplog):
    """pytest's caplog, where ``set_level(level, "jwst...")`` also sets ramp2slope's package
    logger: the tests turn on INFO records of jwst's loggers, and ramp2slope logs the same
    messages under ``ramp2slope`` (as the ``log_watcher`` fixture maps logger names)."""
    set_level = caplog.set_level

    def mapped(level, logger=None):
        set_level(level, logger)
        if logger is not None and logger.split(".")[0] == "jwst":
            set_level(level, "ramp2slope")

    caplog.set_level = mapped
    return caplog


globals().update(port("emicorr/tests/test_emicorr.py", XFAIL, SKIP, CRDS_CACHE))
