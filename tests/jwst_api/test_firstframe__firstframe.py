"""jwst firstframe/tests/test_firstframe.py, ported."""
from ._port import port

XFAIL = {}
SKIP = {}

globals().update(port("firstframe/tests/test_firstframe.py", XFAIL, SKIP))
