"""PersistenceStep: flag groups inside the persistence window after saturation (jwst 3.0)."""
import logging

import numpy as np

from ..stpipe import Step
from .persistence import (
    flag_persistence,
    integration_start_epochs,
    read_persistence_array,
    write_persistence_array,
)

__all__ = ["PersistenceStep"]

log = logging.getLogger("ramp2slope")


class PersistenceStep(Step):
    """Flag PERSISTENCE on groups that follow a saturation within persistence_time seconds."""

    class_alias = "persistence"
    ramp_input = True
    cal_step_name = "persistence"
    spec = """
        save_persistence = string(default=None)  # Name of ASDF output file to save the persistence array
        persistence_time = integer(default=None)  # Time, in seconds, to use for persistence window
        dn_threshold = float(default=None)  # A threshold above which to flag persistence.
        persistence_array_file = string(default=None)  # A path to an ASDF file containing a 2-D array of persistence times per pixel
        persistence_dnu = boolean(default=False)  # If True the set the DO_NOT_USE flag with PERSISTENCE
        skip = boolean(default=True)  # By default, skip the step.
    """

    def process(self, model):
        state = self.begin(model)
        if state is None:
            return model
        self.flag_integrations(state, 0, model.data, model.groupdq)
        return self.finish(model, state)

    # The three parts of process(), for a caller that has the exposure one integration at a time:
    # begin(model) once (model may hold metadata only, with the exposure's shape), then
    # flag_integrations(state, i, data_i, groupdq_i) for every integration in order, then
    # finish(model, state).
    def begin(self, model):
        """Check the parameters and set up the per-pixel windows; None when the step FAILED."""
        if self.persistence_time is None or self.persistence_time <= 0:
            log.warning("%s: persistence_time must be a positive number of seconds; step FAILED",
                        self.name)
            # as jwst: an unusable window is forgotten, so the step reads back as unset
            self.persistence_time = None
            log.info("Persistence step failed due to invalid persistence_time.")
            self.record_status(model, "FAILED")
            return None
        detector = model.meta.instrument.detector
        window_end = np.zeros(model.shape[-2:], np.float64)
        if self.persistence_array_file:
            window_end = read_persistence_array(self.persistence_array_file, detector,
                                                model.shape[-2:], self.persistence_time)
        int_times = model.int_times
        starts_mjd = None
        if int_times is not None and len(int_times) and "int_start_MJD_UTC" in int_times.dtype.names:
            starts_mjd = np.asarray(int_times["int_start_MJD_UTC"], dtype=np.float64)
        exposure = model.meta.exposure
        starts = integration_start_epochs(model.shape[0], int_start_mjd=starts_mjd,
                                          exposure_start_mjd=exposure.start_time,
                                          integration_time=exposure.integration_time)
        return {"window_end": window_end, "starts": starts, "group_time": exposure.group_time,
                "filename": model.meta.filename}

    def flag_integrations(self, state, first, data, groupdq):
        """Flag integrations ``first, first+1, ...`` (``data``/``groupdq`` hold them), in order."""
        resets = flag_persistence(data, groupdq, state["window_end"], self.persistence_time,
                                  state["group_time"], state["starts"][first:first + data.shape[0]],
                                  dn_threshold=self.dn_threshold, persistence_dnu=self.persistence_dnu)
        if resets:
            log.info("Backwards flagging found. Resetting the window for those pixels "
                     "(%d pixel-group(s))", resets)

    def finish(self, model, state):
        """Save the persistence array when asked to, and mark the step COMPLETE."""
        if self.save_persistence:
            path = write_persistence_array(self.save_persistence, model.meta.instrument.detector,
                                           state["window_end"], self.persistence_time,
                                           filename=state["filename"])
            log.info("%s: saved the persistence array to %s", self.name, path)
        return self.complete(model)
