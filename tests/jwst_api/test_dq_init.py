"""jwst dq_init/tests/test_dq_init.py, ported."""
from ._port import SYNTHETIC_CRDS, port

XFAIL = {}
SKIP = {}
CRDS_CACHE = {
    'test_fullstep_default': SYNTHETIC_CRDS,
    'test_output_is_not_input': SYNTHETIC_CRDS,
}

globals().update(port("dq_init/tests/test_dq_init.py", XFAIL, SKIP, CRDS_CACHE))
