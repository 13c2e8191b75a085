"""jwst superbias/tests/test_bias_sub.py, ported."""
from ._port import CRDS, internal, not_implemented, port  # noqa: F401

XFAIL = {
    'test_basic_superbias_subtraction': internal('jwst.superbias.bias_sub.do_correction'),
    'test_subarray_correction': internal('jwst.superbias.bias_sub.do_correction'),
    'test_dq_propagation': internal('jwst.superbias.bias_sub.do_correction'),
    'test_nans_in_superbias': internal('jwst.superbias.bias_sub.do_correction'),
    'test_zeroframe': internal('jwst.superbias.bias_sub.do_correction'),
    'test_superstripe_correction': not_implemented('NIRISS superstripe ramps (SuperstripeRampModel)'),
}
SKIP = {
}

globals().update(port("superbias/tests/test_bias_sub.py", XFAIL, SKIP))
