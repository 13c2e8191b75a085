"""jwst charge_migration/tests/test_charge_migration.py, ported."""
from ._port import port

globals().update(port("charge_migration/tests/test_charge_migration.py"))
