"""jwst reset/tests/test_reset_sub.py, ported."""
from ._port import port

XFAIL = {}
SKIP = {}

globals().update(port("reset/tests/test_reset_sub.py", XFAIL, SKIP))
