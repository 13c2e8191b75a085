"""jwst refpix/tests/test_optimized_convolution.py, ported."""
from ._port import port

XFAIL = {
}
SKIP = {
}

globals().update(port("refpix/tests/test_optimized_convolution.py", XFAIL, SKIP))
