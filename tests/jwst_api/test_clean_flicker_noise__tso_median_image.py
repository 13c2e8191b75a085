"""jwst clean_flicker_noise/tests/test_tso_median_image.py, ported: make_median_image (and the
background ramp behind it) on rateints and ramp models."""
from ._port import CRDS, SYNTHETIC_CRDS, not_implemented, port

XFAIL = {
    # no box-extraction function of that name: the SOSS white light is computed without a
    # TSOMultiSpecModel (tests/test_oracle_soss_median_image.py checks it against jwst)
    "test_soss_extract": (not_implemented("_soss_box_extract, a TSOMultiSpecModel of the box "
                                          "spectra"), AttributeError),
    "test_nrs_bots_extraction_fail": not_implemented("median_image on NRS_BRIGHTOBJ (extract_2d, "
                                                     "extract_1d, white_light)"),
    # mocks a failure of the model fill by replacing the name background_level inside the
    # module; ramp2slope fills the SOSS background where it computes it, not there
    "test_soss_background_replace_invalid[True]": (
        "mocks background_level inside tso_median_image, where ramp2slope does not look it up",
        AttributeError),
}
SKIP = {
    # jwst's own AssignWcsStep, which asks CRDS for the WCS references
    "test_nrs_bots_success": CRDS,
    "test_miri_image_tso": CRDS,
}
CRDS_CACHE = {
    # the SOSS background templates (BKG) come from CRDS
    "test_soss_background_all_invalid": SYNTHETIC_CRDS,
    "test_soss_background_replace_invalid": SYNTHETIC_CRDS,
}

globals().update(port("clean_flicker_noise/tests/test_tso_median_image.py", XFAIL, SKIP, CRDS_CACHE))
