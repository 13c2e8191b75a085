"""jwst linearity/tests/test_linearity.py, ported."""
from ._port import SYNTHETIC_CRDS, port

XFAIL = {
}
SKIP = {}
CRDS_CACHE = {
    'test_saturation': SYNTHETIC_CRDS,
    'test_output_is_not_input': SYNTHETIC_CRDS,
}

globals().update(port("linearity/tests/test_linearity.py", XFAIL, SKIP, CRDS_CACHE))
