"""jwst gain_scale/tests/test_gain_scale.py, ported."""
from ._port import CRDS, internal, not_implemented, port  # noqa: F401

XFAIL = {
    'test_correction': internal('jwst.gain_scale.gain_scale.do_correction'),
}
SKIP = {
    'test_step_from_reference': CRDS,
}

globals().update(port("gain_scale/tests/test_gain_scale.py", XFAIL, SKIP))
