"""jwst clean_flicker_noise/tests/test_tso_median_image.py, ported: make_median_image (and the
background ramp behind it) on rateints and ramp models."""
from ._port import CRDS, not_implemented, port

XFAIL = {
    # no box-extraction function of that name: the SOSS white light is computed without a
    # TSOMultiSpecModel (tests/test_oracle_soss_median_image.py checks it against jwst)
    "test_soss_extract": (not_implemented("_soss_box_extract, a TSOMultiSpecModel of the box "
                                          "spectra"), AttributeError),
    "test_nrs_bots_extraction_fail": not_implemented("median_image on NRS_BRIGHTOBJ (extract_2d, "
                                                     "extract_1d, white_light)"),
}
SKIP = {
    # the SOSS background templates (BKG) come from CRDS
    "test_soss_background_all_invalid": CRDS,
    "test_soss_background_replace_invalid": CRDS,
    # jwst's own AssignWcsStep, which asks CRDS for the WCS references
    "test_nrs_bots_success": CRDS,
    "test_miri_image_tso": CRDS,
}

globals().update(port("clean_flicker_noise/tests/test_tso_median_image.py", XFAIL, SKIP))
