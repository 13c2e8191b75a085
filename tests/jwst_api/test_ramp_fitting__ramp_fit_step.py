"""jwst ramp_fitting/tests/test_ramp_fit_step.py, ported."""
from ._port import CRDS, not_implemented, port

XFAIL = {
    'test_subarray_5groups': 'deliberate: ramp2slope refuses a reference file whose REFTYPE is not the type asked for (the test saves its GAIN file with REFTYPE=FILLER)',
}
SKIP = {
    'test_uneven_sampling': CRDS,
}

globals().update(port("ramp_fitting/tests/test_ramp_fit_step.py", XFAIL, SKIP))
