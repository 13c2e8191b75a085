"""jwst refpix/tests/test_clobber_ref.py, ported."""
from ._port import internal, port

XFAIL = {
    'test_clobber_ref': internal('jwst.refpix.irs2_subtract_reference.clobber_ref'),
    'test_decode_mask': internal('jwst.refpix.irs2_subtract_reference.decode_mask'),
}
SKIP = {
}

globals().update(port("refpix/tests/test_clobber_ref.py", XFAIL, SKIP))
