"""jwst refpix/tests/test_clobber_ref.py, ported."""
from ._port import not_implemented, port

XFAIL = {
    'test_clobber_ref': (not_implemented('NIRSpec IRS2 readouts (jwst.refpix.irs2_subtract_reference.clobber_ref)'), 'unported'),
    'test_decode_mask': (not_implemented('NIRSpec IRS2 readouts (jwst.refpix.irs2_subtract_reference.decode_mask)'), 'unported'),
}
SKIP = {
}

globals().update(port("refpix/tests/test_clobber_ref.py", XFAIL, SKIP))
