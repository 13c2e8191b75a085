"""ChargeMigrationStep: flag groups above a signal level where charge spills to neighbours."""
import logging

from ..stpipe import Step
from .charge_migration import flag_charge_migration

__all__ = ["ChargeMigrationStep"]

log = logging.getLogger("ramp2slope")


class ChargeMigrationStep(Step):
    """OR CHARGELOSS|DO_NOT_USE into groups above signal_threshold and their 4 neighbours."""

    class_alias = "charge_migration"
    ramp_input = True
    cal_step_name = "charge_migration"
    spec = """
        signal_threshold = float(default=25000)  # DN above which charge migration is flagged
        skip = boolean(default=True)  # By default, skip the step
    """

    def process(self, model):
        if model.shape[1] < 3:
            return self.skipped(model, "fewer than 3 groups")
        count = flag_charge_migration(model.data, model.groupdq, self.signal_threshold)
        log.info("%s: %d pixel-integrations above %.1f DN", self.name, count, self.signal_threshold)
        return self.complete(model)
