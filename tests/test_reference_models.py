"""Reference models in memory: built, saved, opened, and handed to a step as override_<reftype>."""
import numpy as np
import pytest

from ramp2slope import datamodels
from ramp2slope.errors import IncompatibleModelError, Ramp2SlopeError
from ramp2slope.superbias import SuperBiasStep

NY, NX = 6, 7


def _window(model):
    model.meta.instrument.name = "NIRCAM"
    model.meta.instrument.detector = "NRCA1"
    model.meta.subarray.name = "SUB7"
    model.meta.subarray.xstart, model.meta.subarray.ystart = 11, 21
    model.meta.subarray.xsize, model.meta.subarray.ysize = NX, NY
    return model


def _ramp():
    ramp = datamodels.RampModel(data=np.full((1, 3, NY, NX), 100.0, np.float32))
    ramp.meta.exposure.ngroups = 3
    ramp.meta.exposure.nints = 1
    return _window(ramp)


def _superbias(value=30.0):
    bias = datamodels.SuperBiasModel(data=np.full((NY, NX), value))
    bias.meta.filename = "mine.fits"
    return _window(bias)


def test_override_with_a_model_in_memory_matches_the_saved_file(tmp_path):
    bias = _superbias()
    bias.data[2, 3] = 50.0
    path = tmp_path / "bias.fits"
    bias.save(path)
    bias.meta.filename = "mine.fits"

    from_model = SuperBiasStep.call(_ramp(), override_superbias=bias)
    from_file = SuperBiasStep.call(_ramp(), override_superbias=str(path))

    np.testing.assert_array_equal(from_model.data, from_file.data)
    assert from_model.data[0, 0, 0, 0] == 70.0 and from_model.data[0, 1, 2, 3] == 50.0
    assert from_model.meta.cal_step.superbias == "COMPLETE"
    assert from_model.meta.ref_file.superbias.name == "override://SuperBiasModel"
    assert bias.meta.filename == "mine.fits"   # the caller's model is left as it was


def test_override_model_of_the_wrong_class_is_refused():
    gain = _window(datamodels.GainModel(data=np.ones((NY, NX))))
    with pytest.raises(Ramp2SlopeError, match="override_superbias: a GainModel was given, a SuperBiasModel"):
        SuperBiasStep.call(_ramp(), override_superbias=gain)


def test_reference_model_round_trip(tmp_path):
    mask = _window(datamodels.MaskModel(dq=np.zeros((NY, NX), np.uint32)))
    mask.dq[1, 2] = 1
    dq_def = np.array([(0, 1, "DO_NOT_USE", "Bad pixel")], dtype=mask.get_dtype("dq_def"))
    mask.dq_def = dq_def
    path = mask.save(tmp_path / "mask.fits")

    again = datamodels.open(path)
    assert type(again) is datamodels.MaskModel
    assert again.meta.reftype == "mask"
    np.testing.assert_array_equal(again.dq, mask.dq)
    assert again.dq_def["NAME"][0].strip() in ("DO_NOT_USE", b"DO_NOT_USE")

    pars = datamodels.TrapParsModel()
    pars.trappars_table = np.zeros(3, dtype=pars.get_dtype("trappars_table"))
    pars.trappars_table["capture0"] = [1.0, 2.0, 3.0]
    reread = datamodels.open(pars.save(tmp_path / "trappars.fits"))
    np.testing.assert_array_equal(reread.trappars_table["capture0"], [1.0, 2.0, 3.0])


def test_linearity_model_defaults_and_inverse_coefficients():
    lin = datamodels.LinearityModel((5, NY, NX))
    assert lin.coeffs.shape == (5, NY, NX) and lin.dq.shape == (NY, NX)
    lin.inv_coeffs = np.ones((5, NY, NX))
    assert lin.inv_coeffs.dtype == np.float32


def test_generic_model_is_converted_and_raw_model_refused():
    ramp = _ramp()
    generic = datamodels.JwstDataModel(ramp)
    assert isinstance(generic, datamodels.JwstDataModel) and not isinstance(generic, datamodels.RampModel)
    result = SuperBiasStep.call(generic, override_superbias=_superbias())
    assert isinstance(result, datamodels.RampModel)
    assert result.data[0, 0, 0, 0] == 70.0
    assert generic.data[0, 0, 0, 0] == 100.0   # the input is not modified

    raw = datamodels.Level1bModel(data=np.zeros((1, 3, NY, NX), np.uint16))
    raw.update(ramp)
    with pytest.raises(TypeError, match="should be opened as a RampModel") as info:
        SuperBiasStep.call(raw, override_superbias=_superbias())
    assert isinstance(info.value, IncompatibleModelError)
