"""jwst reset/tests/test_reset_step.py, ported."""
from ._port import SYNTHETIC_CRDS, port

XFAIL = {}
SKIP = {}
CRDS_CACHE = {
    'test_step_complete': SYNTHETIC_CRDS,
}

globals().update(port("reset/tests/test_reset_step.py", XFAIL, SKIP, CRDS_CACHE))
