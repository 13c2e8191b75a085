"""jwst linearity/tests/test_linearity.py, ported."""
from ._port import CRDS, port

XFAIL = {
}
SKIP = {
    'test_saturation': CRDS,
    'test_output_is_not_input': CRDS,
}

globals().update(port("linearity/tests/test_linearity.py", XFAIL, SKIP))
