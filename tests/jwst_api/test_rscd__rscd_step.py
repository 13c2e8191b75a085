"""jwst rscd/tests/test_rscd_step.py, ported."""
from ._port import SYNTHETIC_CRDS, port

XFAIL = {}
SKIP = {}
CRDS_CACHE = {
    'test_step_complete': SYNTHETIC_CRDS,
    'test_skip_empty_param': SYNTHETIC_CRDS,
}

globals().update(port("rscd/tests/test_rscd_step.py", XFAIL, SKIP, CRDS_CACHE))
