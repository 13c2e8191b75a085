"""jwst superbias/tests/test_superbias_step.py, ported."""
from ._port import CRDS, port

XFAIL = {
}
SKIP = {
    'test_full_step': CRDS,
}

globals().update(port("superbias/tests/test_superbias_step.py", XFAIL, SKIP))
