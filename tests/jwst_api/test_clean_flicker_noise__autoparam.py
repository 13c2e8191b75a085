"""jwst clean_flicker_noise/tests/test_autoparam.py, ported: the public autoparam functions
(niriss_image_parameters, nircam_image_parameters) on rate, rateints and ramp models."""
from ._port import CRDS, port

XFAIL = {}
SKIP = {
    # the ramp's draft rate needs the GAIN and READNOISE from CRDS
    "test_image_non_rate_models[ramp]": CRDS,
}

globals().update(port("clean_flicker_noise/tests/test_autoparam.py", XFAIL, SKIP))
