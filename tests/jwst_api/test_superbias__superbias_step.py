"""jwst superbias/tests/test_superbias_step.py, ported."""
from ._port import SYNTHETIC_CRDS, port

XFAIL = {
}
SKIP = {}
CRDS_CACHE = {
    'test_full_step': SYNTHETIC_CRDS,
}

globals().update(port("superbias/tests/test_superbias_step.py", XFAIL, SKIP, CRDS_CACHE))
