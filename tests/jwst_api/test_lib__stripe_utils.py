"""jwst lib/tests/test_stripe_utils.py, ported: collate_superstripes and stripe_read_times on
ramp2slope's models. The range, reference and read helpers jwst keeps there (its internal
building blocks of collate_superstripes and get_subarray_model) have no equivalent of that
name: ramp2slope computes the same stripes with its own ``references.stripes`` functions."""
from ._port import not_implemented, port

_INTERNAL = not_implemented("jwst.lib.stripe_utils' internal stripe-range helpers (ramp2slope's "
                            "are ramp2slope.references.stripes')"), AttributeError

XFAIL = {name: _INTERNAL for name in (
    "test_generate_substripe_ranges", "test_generate_substripe_ranges_swap_slow",
    "test_generate_substripe_ranges_invalid_input", "test_generate_substripe_ranges_wrong_size",
    "test_generate_superstripe_ranges", "test_generate_superstripe_ranges_science_frame",
    "test_generate_superstripe_ranges_pure_superstripe",
    "test_generate_superstripe_ranges_wrong_size", "test_generate_superstripe_ranges_dhs",
    "test_generate_stripe_reference_substripe",
    "test_generate_stripe_reference_substripe_repeat_stripe_zero",
    "test_generate_stripe_reference_superstripe",
    "test_generate_stripe_reference_superstripe_repeat_stripe_zero",
    "test_generate_stripe_reference_super_sub_stripe",
    "test_generate_stripe_reference_super_sub_stripe_repeat_0",
    "test_generate_stripe_reference_invalid_shape", "test_stripe_read_substripe",
    "test_stripe_read_superstripe")}

globals().update(port("lib/tests/test_stripe_utils.py", XFAIL))
