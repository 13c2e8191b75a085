"""jwst persistence/tests/test_persistence_step.py, ported."""
from ._port import internal, port

XFAIL = {
    'test_step_persistence_fails': 'jwst-internal class jwst.persistence.persistence.DataSet (monkeypatched)',
}
SKIP = {
}

globals().update(port("persistence/tests/test_persistence_step.py", XFAIL, SKIP))
