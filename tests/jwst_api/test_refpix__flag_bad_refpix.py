"""jwst refpix/tests/test_flag_bad_refpix.py, ported."""
from ._port import port

XFAIL = {
}
SKIP = {
}

globals().update(port("refpix/tests/test_flag_bad_refpix.py", XFAIL, SKIP))
