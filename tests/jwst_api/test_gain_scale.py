"""jwst gain_scale/tests/test_gain_scale.py, ported."""
from ._port import SYNTHETIC_CRDS, port

XFAIL = {}
SKIP = {}
CRDS_CACHE = {
    'test_step_from_reference': SYNTHETIC_CRDS,
}

globals().update(port("gain_scale/tests/test_gain_scale.py", XFAIL, SKIP, CRDS_CACHE))
