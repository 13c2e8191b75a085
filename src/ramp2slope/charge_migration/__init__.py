"""Charge migration flagging (CHARGELOSS|DO_NOT_USE above a signal threshold)."""
from .charge_migration import flag_charge_migration

__all__ = ["flag_charge_migration"]
from .charge_migration_step import ChargeMigrationStep  # noqa: E402
__all__ += ["ChargeMigrationStep"]
