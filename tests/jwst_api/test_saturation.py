"""jwst saturation/tests/test_saturation.py, ported."""
from ._port import CRDS, port

XFAIL = {}
SKIP = {
    'test_full_step': CRDS,
    'test_full_step_irs2': CRDS,
}

globals().update(port("saturation/tests/test_saturation.py", XFAIL, SKIP))
