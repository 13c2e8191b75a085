"""jwst group_scale/tests/test_group_scale.py, ported."""
from ._port import port

globals().update(port("group_scale/tests/test_group_scale.py"))
