"""jwst dq_init/tests/test_dq_init.py, ported."""
from ._port import CRDS, port

XFAIL = {}
SKIP = {
    'test_fullstep_default': CRDS,
    'test_output_is_not_input': CRDS,
}

globals().update(port("dq_init/tests/test_dq_init.py", XFAIL, SKIP))
