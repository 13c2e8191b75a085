"""jwst jump/tests/test_jump_step.py, ported."""
from ._port import CRDS, port

# a deliberate difference: ramp2slope refuses a reference made for another instrument
OTHER_INSTRUMENT = ("deliberate: ramp2slope refuses a reference made for another instrument (these "
                    "tests give NIRCam GAIN/READNOISE files to a MIRI ramp)")

XFAIL = {
    'test_nircam': OTHER_INSTRUMENT,
    'test_snowball_flagging_nosat': OTHER_INSTRUMENT,
    'test_snowball_flagging_sat': OTHER_INSTRUMENT,
}
SKIP = {
    'test_uneven_sampling': CRDS,
}

globals().update(port("jump/tests/test_jump_step.py", XFAIL, SKIP))
