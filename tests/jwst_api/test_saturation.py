"""jwst saturation/tests/test_saturation.py, ported."""
from ._port import CRDS, not_implemented, port

XFAIL = {
    'test_superstripe[True]': not_implemented('flag_saturation(model, ..., bias_model) on a SuperstripeRampModel'),
}
SKIP = {
    'test_full_step': CRDS,
    'test_full_step_irs2': CRDS,
}

globals().update(port("saturation/tests/test_saturation.py", XFAIL, SKIP))
