"""gain_scale: rescale rates taken with a non-standard gain setting (spec §4.14).

SCI and ERR are multiplied by GAINFACT and the variance arrays by GAINFACT**2, in place. The
factor (a Python float in the official step) is rounded to float32 before the float32
multiplication, as ``float32_array *= python_float`` does in NumPy 2; the squared factor is
formed in float64 first and then rounded.
"""
import numba
import numpy as np

__all__ = ["do_correction", "gain_factor_to_use", "scale_by_gain"]


def gain_factor_to_use(model_gain_factor, reference_gain_factor):
    """GAINFACT to apply, or None when the step is to be SKIPPED: the science metadata value
    when set, else the GAIN reference's keyword (None when there is no reference or keyword)."""
    if model_gain_factor is not None:
        return model_gain_factor
    return reference_gain_factor


@numba.njit(parallel=True, cache=True)
def _scale_flat(values, factor):
    for i in numba.prange(values.size):
        values[i] = values[i] * factor


def _scale(array, factor32):
    if array is None or np.size(array) == 0:
        return
    if array.flags.c_contiguous and array.flags.writeable:
        _scale_flat(array.reshape(-1), factor32)
    else:
        np.multiply(array, factor32, out=array)


def scale_by_gain(gain_factor, data, err, var_poisson=None, var_rnoise=None):
    """Multiply ``data`` and ``err`` by ``gain_factor`` and the variances by its square, in
    place (float32 arrays of any shape; None or empty variance arrays are left alone).
    Returns None."""
    gain_factor = float(gain_factor)
    f = np.float32(gain_factor)
    f2 = np.float32(gain_factor ** 2)
    _scale(data, f)
    _scale(err, f)
    _scale(var_poisson, f2)
    _scale(var_rnoise, f2)


def do_correction(output_model, gain_factor):
    """The official module-level interface: multiply the slopes of ``output_model`` (an
    ImageModel or CubeModel) by ``gain_factor`` as ``GainScaleStep`` does, in place, and record
    it; returns the model."""
    from .gain_scale_step import GainScaleStep

    scale_by_gain(gain_factor, output_model.data, output_model.err,
                  output_model._arrays.get("var_poisson"), output_model._arrays.get("var_rnoise"))
    return GainScaleStep().scaled(output_model, gain_factor)
