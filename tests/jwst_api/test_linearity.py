"""jwst linearity/tests/test_linearity.py, ported."""
from ._port import CRDS, internal, not_implemented, port  # noqa: F401

XFAIL = {
    'test_coeff_dq': internal('jwst.linearity.linearity.do_correction'),
    'test_nolincorr': internal('jwst.linearity.linearity.do_correction'),
    'test_pixeldqprop': internal('jwst.linearity.linearity.do_correction'),
    'test_lin_subarray': internal('jwst.linearity.linearity.do_correction'),
}
SKIP = {
    'test_saturation': CRDS,
    'test_output_is_not_input': CRDS,
}

globals().update(port("linearity/tests/test_linearity.py", XFAIL, SKIP))
