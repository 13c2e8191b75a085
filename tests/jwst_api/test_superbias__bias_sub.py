"""jwst superbias/tests/test_bias_sub.py, ported."""
from ._port import not_implemented, port

XFAIL = {
}
SKIP = {
}

globals().update(port("superbias/tests/test_bias_sub.py", XFAIL, SKIP))
