"""jwst ramp_fitting/tests/test_ramp_fit_step.py, ported."""
from ._port import SYNTHETIC_CRDS, port

# test_subarray_5groups saves its GAIN override with REFTYPE=FILLER: a named override is used
# with a warning, as jwst uses it.
XFAIL = {}
SKIP = {}
# a superstripe ramp's GAIN and READNOISE (NIRCam NRCB1) from the synthetic CRDS cache
CRDS_CACHE = {'test_uneven_sampling': SYNTHETIC_CRDS}

globals().update(port("ramp_fitting/tests/test_ramp_fit_step.py", XFAIL, SKIP, CRDS_CACHE))
