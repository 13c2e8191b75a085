"""jwst lib/tests/test_reffile_utils.py, ported: get_subarray_model and
get_multistripe_subarray_model, ref_matches_sci, the science/detector frame transforms and
find_row on ramp2slope's models."""
from ._port import port

SKIP = {
    # their fixture builds a WfssBkgModel, a stage-2 WFSS reference model ramp2slope has not
    "test_get_subarray_model": "needs WfssBkgModel (stage 2), not in ramp2slope",
    "test_get_subarray_model_typeerror": "needs WfssBkgModel (stage 2), not in ramp2slope",
}

globals().update(port("lib/tests/test_reffile_utils.py", {}, SKIP))
