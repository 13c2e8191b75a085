"""jwst refpix/tests/test_flag_bad_refpix.py, ported."""
from ._port import not_implemented, port

XFAIL = {
    'test_flag_bad_refpix': (not_implemented('NIRSpec IRS2 readouts (jwst.refpix.irs2_subtract_reference.flag_bad_refpix)'), 'unported'),
}
SKIP = {
}

globals().update(port("refpix/tests/test_flag_bad_refpix.py", XFAIL, SKIP))
