"""jwst reset/tests/test_reset_step.py, ported."""
from ._port import CRDS, port

XFAIL = {}
SKIP = {
    'test_step_complete': CRDS,
}

globals().update(port("reset/tests/test_reset_step.py", XFAIL, SKIP))
