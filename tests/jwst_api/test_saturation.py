"""jwst saturation/tests/test_saturation.py, ported."""
from ._port import CRDS, internal, not_implemented, port

# jwst's flag_saturation(model, ref_model) is internal; ramp2slope's function of that name takes arrays
FLAG_SATURATION = ("jwst-internal jwst.saturation.saturation.flag_saturation(model, ref_model): "
                   "ramp2slope's flag_saturation takes arrays")

XFAIL = {
    'test_basic_saturation_flagging': FLAG_SATURATION,
    'test_nirspec_irs2_saturation_flagging': internal('jwst.saturation.saturation.irs2_flag_saturation'),
    'test_nirspec_irs2_readpatt': internal('jwst.saturation.saturation.irs2_flag_saturation'),
    'test_nirspec_irs2_group2_sat_bias': internal('jwst.saturation.saturation.irs2_flag_saturation'),
    'test_nirspec_nrs_readpatt': internal('jwst.saturation.saturation.irs2_flag_saturation'),
    'test_irs2_zero_frame': internal('jwst.saturation.saturation.irs2_flag_saturation'),
    'test_ad_floor_flagging': FLAG_SATURATION,
    'test_ad_floor_and_saturation_flagging': FLAG_SATURATION,
    'test_signal_fluctuation_flagging': FLAG_SATURATION,
    'test_all_groups_saturated': FLAG_SATURATION,
    'test_subarray_extraction': FLAG_SATURATION,
    'test_dq_propagation': FLAG_SATURATION,
    'test_no_sat_check': FLAG_SATURATION,
    'test_nans_in_mask': FLAG_SATURATION,
    'test_superstripe': not_implemented('NIRISS superstripe ramps (SuperstripeRampModel)'),
}
SKIP = {
    'test_full_step': CRDS,
    'test_full_step_irs2': CRDS,
}

globals().update(port("saturation/tests/test_saturation.py", XFAIL, SKIP))
