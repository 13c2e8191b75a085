"""jwst clean_flicker_noise/tests/test_autoparam.py, ported: the public autoparam functions
(niriss_image_parameters, nircam_image_parameters) on rate, rateints and ramp models."""
from ._port import SYNTHETIC_CRDS, port

XFAIL = {}
SKIP = {}
CRDS_CACHE = {
    # the ramp's draft rate needs the GAIN and READNOISE (MIRI's here) from CRDS
    "test_image_non_rate_models[ramp]": SYNTHETIC_CRDS,
}

globals().update(port("clean_flicker_noise/tests/test_autoparam.py", XFAIL, SKIP, CRDS_CACHE))
