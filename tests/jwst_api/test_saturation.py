"""jwst saturation/tests/test_saturation.py, ported."""
from ._port import SYNTHETIC_CRDS, port

XFAIL = {}
SKIP = {}
CRDS_CACHE = {
    'test_full_step': SYNTHETIC_CRDS,
    'test_full_step_irs2': SYNTHETIC_CRDS,
}

globals().update(port("saturation/tests/test_saturation.py", XFAIL, SKIP, CRDS_CACHE))
