"""jwst lib/tests/test_stripe_utils.py, ported: collate_superstripes, stripe_read_times, the
stripe row ranges, references cut to stripes and stripe_read on ramp2slope's models."""
from ._port import port

XFAIL = {}

globals().update(port("lib/tests/test_stripe_utils.py", XFAIL))
