"""Persistence flagging (jwst 3.0 behaviour) and the ASDF persistence-array file."""
from .persistence import (
    flag_persistence,
    integration_start_epochs,
    mjd_to_epoch,
    persistence_file_name,
    read_persistence_array,
    write_persistence_array,
)

__all__ = [
    "flag_persistence", "integration_start_epochs", "mjd_to_epoch", "persistence_file_name",
    "read_persistence_array", "write_persistence_array",
]
from .persistence_step import PersistenceStep  # noqa: E402
__all__ += ["PersistenceStep"]
