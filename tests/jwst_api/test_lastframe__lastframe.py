"""jwst lastframe/tests/test_lastframe.py, ported."""
from ._port import port

XFAIL = {}
SKIP = {}

globals().update(port("lastframe/tests/test_lastframe.py", XFAIL, SKIP))
