"""jwst dark_current/tests/test_dark_sub.py, ported."""
from ._port import not_implemented, port

XFAIL = {
    'test_sub_by_frame': (not_implemented('MIRI darks (DarkMIRIModel)'), 'unported'),
    'test_nan': (not_implemented('MIRI darks (DarkMIRIModel)'), 'unported'),
    'test_dq_combine': (not_implemented('MIRI darks (DarkMIRIModel)'), 'unported'),
    'test_2_int': (not_implemented('MIRI darks (DarkMIRIModel)'), 'unported'),
    'test_frame_avg': (not_implemented('MIRI darks (DarkMIRIModel)'), 'unported'),
    'test_basic_step': (not_implemented('MIRI darks (DarkMIRIModel)'), 'unported'),
    'test_average_dark_current': (not_implemented('MIRI darks (DarkMIRIModel)'), 'unported'),
}
SKIP = {
}

globals().update(port("dark_current/tests/test_dark_sub.py", XFAIL, SKIP))
