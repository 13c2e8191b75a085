"""jwst charge_migration/tests/test_charge_migration.py, ported."""
from ._port import internal, port

XFAIL = {
    'test_pix_0': internal('jwst.charge_migration.charge_migration.charge_migration'),
    'test_pix_1': internal('jwst.charge_migration.charge_migration.charge_migration'),
    'test_pix_2': internal('jwst.charge_migration.charge_migration.charge_migration'),
    'test_nearest_neighbor_1': internal('jwst.charge_migration.charge_migration.charge_migration'),
    'test_nearest_neighbor_2': internal('jwst.charge_migration.charge_migration.charge_migration'),
    'test_nearest_neighbor_3': internal('jwst.charge_migration.charge_migration.charge_migration'),
}
SKIP = {
}

globals().update(port("charge_migration/tests/test_charge_migration.py", XFAIL, SKIP))
