"""jwst refpix/tests/test_clobber_ref.py, ported."""
from ._port import port

XFAIL = {
}
SKIP = {
}

globals().update(port("refpix/tests/test_clobber_ref.py", XFAIL, SKIP))
