"""jwst gain_scale/tests/test_gain_scale.py, ported."""
from ._port import CRDS, port

XFAIL = {}
SKIP = {
    'test_step_from_reference': CRDS,
}

globals().update(port("gain_scale/tests/test_gain_scale.py", XFAIL, SKIP))
