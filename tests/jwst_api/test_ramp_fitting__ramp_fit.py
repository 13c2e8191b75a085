"""jwst ramp_fitting/tests/test_ramp_fit.py, ported."""
from ._port import port

XFAIL = {}
SKIP = {}

globals().update(port("ramp_fitting/tests/test_ramp_fit.py", XFAIL, SKIP))
