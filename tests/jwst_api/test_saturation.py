"""jwst saturation/tests/test_saturation.py, ported."""
from ._port import CRDS, not_implemented, port

XFAIL = {
    'test_nirspec_irs2_saturation_flagging': (not_implemented('NIRSpec IRS2 readouts (jwst.saturation.saturation.irs2_flag_saturation)'), 'unported'),
    'test_nirspec_irs2_readpatt': (not_implemented('NIRSpec IRS2 readouts (jwst.saturation.saturation.irs2_flag_saturation)'), 'unported'),
    'test_nirspec_irs2_group2_sat_bias': (not_implemented('NIRSpec IRS2 readouts (jwst.saturation.saturation.irs2_flag_saturation)'), 'unported'),
    'test_nirspec_nrs_readpatt': (not_implemented('NIRSpec IRS2 readouts (jwst.saturation.saturation.irs2_flag_saturation)'), 'unported'),
    'test_irs2_zero_frame': (not_implemented('NIRSpec IRS2 readouts (jwst.saturation.saturation.irs2_flag_saturation)'), 'unported'),
    'test_superstripe[True]': not_implemented('flag_saturation(model, ..., bias_model) on a SuperstripeRampModel'),
}
SKIP = {
    'test_full_step': CRDS,
    'test_full_step_irs2': CRDS,
}

globals().update(port("saturation/tests/test_saturation.py", XFAIL, SKIP))
