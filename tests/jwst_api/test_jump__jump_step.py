"""jwst jump/tests/test_jump_step.py, ported."""
from ._port import SYNTHETIC_CRDS, port

# test_nircam and the snowball tests give NIRCam GAIN/READNOISE files to a MIRI ramp as
# override_<reftype>: a named override is used with a warning, as jwst uses it.
XFAIL = {}
SKIP = {}
# a superstripe ramp's GAIN and READNOISE (NIRCam NRCB1) from the synthetic CRDS cache
CRDS_CACHE = {'test_uneven_sampling': SYNTHETIC_CRDS}

globals().update(port("jump/tests/test_jump_step.py", XFAIL, SKIP, CRDS_CACHE))
