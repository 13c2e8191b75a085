"""jwst refpix/tests/test_refpix.py, ported."""
from ._port import SYNTHETIC_CRDS, internal, not_implemented, port

XFAIL = {
    'test_do_corrections_subarray_no_oddEven': internal('jwst.refpix.reference_pixels.create_dataset'),
    'test_do_corrections_subarray': internal('jwst.refpix.reference_pixels.create_dataset'),
    'test_do_corrections_subarray_4amp': internal('jwst.refpix.reference_pixels.create_dataset'),
    'test_get_restore_group_subarray': internal('jwst.refpix.reference_pixels.Dataset'),
    'test_do_top_bottom_correction': internal('jwst.refpix.reference_pixels.NIRDataset'),
    'test_do_top_bottom_correction_no_even_odd': internal('jwst.refpix.reference_pixels.NIRDataset'),
}
SKIP = {}
CRDS_CACHE = {
    'test_odd_even_amp_nirspec[NRS1-3200-True]': SYNTHETIC_CRDS,
    'test_odd_even_amp_nirspec[NRS1-3200-False]': SYNTHETIC_CRDS,
    'test_odd_even_amp_nirspec[NRS2-3200-True]': SYNTHETIC_CRDS,
    'test_odd_even_amp_nirspec[NRS2-3200-False]': SYNTHETIC_CRDS,
    'test_preserve_refpix[NRS1-True-True]': SYNTHETIC_CRDS,
    'test_preserve_refpix[NRS1-True-False]': SYNTHETIC_CRDS,
    'test_preserve_refpix[NRS2-True-True]': SYNTHETIC_CRDS,
    'test_preserve_refpix[NRS2-True-False]': SYNTHETIC_CRDS,
    'test_irs2_no_side_ref': SYNTHETIC_CRDS,
    'test_run_sirs': SYNTHETIC_CRDS,
}

globals().update(port("refpix/tests/test_refpix.py", XFAIL, SKIP, CRDS_CACHE))
