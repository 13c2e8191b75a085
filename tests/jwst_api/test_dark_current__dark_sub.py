"""jwst dark_current/tests/test_dark_sub.py, ported."""
from ._port import not_implemented, port

XFAIL = {
}
SKIP = {
}

globals().update(port("dark_current/tests/test_dark_sub.py", XFAIL, SKIP))
