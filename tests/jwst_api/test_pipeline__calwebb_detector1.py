"""jwst pipeline/tests/test_calwebb_detector1.py, ported."""
from ._port import SYNTHETIC_CRDS, port

XFAIL = {
}
SKIP = {}
CRDS_CACHE = {
    'test_detector1_miri': SYNTHETIC_CRDS,
}

globals().update(port("pipeline/tests/test_calwebb_detector1.py", XFAIL, SKIP, CRDS_CACHE))
