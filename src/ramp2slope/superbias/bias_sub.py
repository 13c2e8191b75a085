"""The official module-level superbias interface, on ramp2slope models.

``do_correction(model, bias_model)`` is what ``SuperBiasStep`` does to a RampModel with
``bias_model`` (a :class:`~ramp2slope.datamodels.SuperBiasModel`) as its reference, in place.
"""
from .superbias_step import SuperBiasStep

__all__ = ["do_correction"]


def do_correction(input_model, bias_model):
    """Subtract ``bias_model`` from every group of ``input_model`` (in place); return the model."""
    return SuperBiasStep(override_superbias=bias_model).process(input_model)
