"""jwst clean_flicker_noise/tests/test_clean_flicker_noise_step.py, ported.

Most of these tests clean a ramp, whose draft rate needs the GAIN and READNOISE (or a FLAT, a
PASTASOSS) from CRDS: offline, jwst itself cannot run them; here they take them from the
conftest's synthetic CRDS cache. Rate images are compared with jwst in
tests/test_oracle_clean_flicker_noise.py."""
from ._port import SYNTHETIC_CRDS, port

XFAIL = {}
SKIP = {}
CRDS_CACHE = {name: SYNTHETIC_CRDS for name in (
    # (the SOSS white light needs the PASTASOSS, BKG and WAVELENGTHRANGE references)
    "test_tso_median_image", "test_output_type", "test_run_in_pipeline", "test_save_mask", "test_save_background",
    "test_save_noise", "test_apply_flat", "test_apply_flat_not_available",
    "test_autoparam_niriss_image", "test_autoparam_nircam_image", "test_autoparam_not_available",
    "test_output_is_not_input")}

globals().update(port("clean_flicker_noise/tests/test_clean_flicker_noise_step.py", XFAIL, SKIP,
                      CRDS_CACHE))
