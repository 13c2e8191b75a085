"""jwst clean_flicker_noise/tests/test_background_level.py, ported: clip_to_background and
background_level with jwst's signatures, on plain arrays."""
from ._port import port

globals().update(port("clean_flicker_noise/tests/test_background_level.py"))
