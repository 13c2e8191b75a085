"""jwst ramp_fitting/tests/test_ramp_fit_step.py, ported."""
from ._port import CRDS, port

# test_subarray_5groups saves its GAIN override with REFTYPE=FILLER: a named override is used
# with a warning, as jwst uses it.
XFAIL = {}
SKIP = {
    'test_uneven_sampling': CRDS,
}

globals().update(port("ramp_fitting/tests/test_ramp_fit_step.py", XFAIL, SKIP))
