"""jwst pipeline/tests/test_calwebb_detector1.py, ported."""
from ._port import CRDS, port

XFAIL = {
}
SKIP = {
    'test_detector1_miri': CRDS,
}

globals().update(port("pipeline/tests/test_calwebb_detector1.py", XFAIL, SKIP))
