"""jwst rscd/tests/test_rscd_step.py, ported."""
from ._port import CRDS, port

XFAIL = {}
SKIP = {
    'test_step_complete': CRDS,
    'test_skip_empty_param': CRDS,
}

globals().update(port("rscd/tests/test_rscd_step.py", XFAIL, SKIP))
