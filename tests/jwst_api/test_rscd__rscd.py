"""jwst rscd/tests/test_rscd.py, ported."""
from ._port import port

XFAIL = {}
SKIP = {}

globals().update(port("rscd/tests/test_rscd.py", XFAIL, SKIP))
