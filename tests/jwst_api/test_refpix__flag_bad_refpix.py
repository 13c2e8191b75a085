"""jwst refpix/tests/test_flag_bad_refpix.py, ported."""
from ._port import internal, port

XFAIL = {
    'test_flag_bad_refpix': internal('jwst.refpix.irs2_subtract_reference.flag_bad_refpix'),
}
SKIP = {
}

globals().update(port("refpix/tests/test_flag_bad_refpix.py", XFAIL, SKIP))
