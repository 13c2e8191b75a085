"""jwst dq_init/tests/test_dq_init.py, ported."""
from ._port import CRDS, internal, not_implemented, port  # noqa: F401

XFAIL = {
    'test_dq_im_default[GuiderRawModel-Stack]': not_implemented('FGS guider raw data (GuiderRawModel)'),
    'test_dq_im_default[GuiderRawModel-Image]': not_implemented('FGS guider raw data (GuiderRawModel)'),
    'test_dq_im_default[RampModel0]': internal('jwst.dq_init.dq_initialization.do_dqinit'),
    'test_dq_im_default[RampModel1]': internal('jwst.dq_init.dq_initialization.do_dqinit'),
    'test_dq_im_wrong_shape': internal('jwst.dq_init.dq_initialization.do_dqinit'),
    'test_groupdq': internal('jwst.dq_init.dq_initialization.do_dqinit'),
    'test_dq_subarray': internal('jwst.dq_init.dq_initialization.do_dqinit'),
    'test_dq_add1_groupdq': internal('jwst.dq_init.dq_initialization.do_dqinit'),
    'test_superstripe': not_implemented('NIRISS superstripe ramps (SuperstripeRampModel)'),
    'test_check_dimensions_good_input': internal('jwst.dq_init.dq_initialization.check_dimensions'),
    'test_check_dimensions_bad_input': internal('jwst.dq_init.dq_initialization.check_dimensions'),
}
SKIP = {
    'test_fullstep_default': CRDS,
    'test_output_is_not_input': CRDS,
}

globals().update(port("dq_init/tests/test_dq_init.py", XFAIL, SKIP))
