"""jwst's ``reset_sub.do_correction`` on ramp2slope models (the official function's name and
arguments, for code and tests written against jwst)."""
import numpy as np

from .reset import subtract_reset
from .reset_step import first_integration_of

__all__ = ["do_correction"]


def do_correction(output_model, reset_model):
    """Subtract ``reset_model`` (a :class:`~ramp2slope.datamodels.ResetModel`; its NINTS and
    NGROUPS say how many planes apply) from ``output_model`` in place; returns it."""
    nints = reset_model.meta.exposure.nints
    ngroups = reset_model.meta.exposure.ngroups
    data = np.nan_to_num(np.asarray(reset_model.data, dtype=np.float32), nan=0.0)
    nints = data.shape[0] if nints is None else int(nints)
    ngroups = data.shape[1] if ngroups is None else int(ngroups)
    exp = output_model.meta.exposure
    end = exp.integration_end if exp.integration_end is not None else exp.nints
    subtract_reset(output_model.data, output_model.pixeldq, data[:nints, :ngroups],
                   np.asarray(reset_model.dq, dtype=np.uint32),
                   first_integration=first_integration_of(output_model),
                   integration_end=None if end is None else int(end))
    return output_model
