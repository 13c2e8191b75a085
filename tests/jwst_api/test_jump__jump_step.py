"""jwst jump/tests/test_jump_step.py, ported."""
from ._port import CRDS, port

# test_nircam and the snowball tests give NIRCam GAIN/READNOISE files to a MIRI ramp as
# override_<reftype>: a named override is used with a warning, as jwst uses it.
XFAIL = {}
SKIP = {
    'test_uneven_sampling': CRDS,
}

globals().update(port("jump/tests/test_jump_step.py", XFAIL, SKIP))
