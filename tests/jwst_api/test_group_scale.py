"""jwst group_scale/tests/test_group_scale.py, ported."""
from ._port import CRDS, internal, not_implemented, port  # noqa: F401

XFAIL = {
    'test_nframes_or_frame_divisor_is_none': internal('jwst.group_scale.group_scale.do_correction'),
}
SKIP = {
}

globals().update(port("group_scale/tests/test_group_scale.py", XFAIL, SKIP))
