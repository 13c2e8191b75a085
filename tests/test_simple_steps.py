"""group_scale, dq_init, superbias and gain_scale array algorithms: hand-computed unit tests
and comparisons with the official jwst functions."""
import numpy as np
import pytest

from ramp2slope.datamodels import dqflags
from ramp2slope.dq_init import apply_mask, combine_user_dq, ensure_dq_arrays
from ramp2slope.errors import BadInputError
from ramp2slope.gain_scale import gain_factor_to_use, scale_by_gain
from ramp2slope.group_scale import group_scale_decision, scale_groups
from ramp2slope.superbias import subtract_superbias

DNU = dqflags.pixel["DO_NOT_USE"]
HOT = dqflags.pixel["HOT"]
DEAD = dqflags.pixel["DEAD"]
REF = dqflags.pixel["REFERENCE_PIXEL"]


def _full_subarray(model, ny, nx):
    model.meta.subarray.xstart = 1
    model.meta.subarray.ystart = 1
    model.meta.subarray.xsize = nx
    model.meta.subarray.ysize = ny


# ---------------------------------------------------------------------------- group_scale

@pytest.mark.parametrize("nframes, divisor, apply, factor", [
    (None, 4, False, None),   # NFRAMES missing
    (4, None, False, None),   # power of two, no divisor
    (1, None, False, None),   # 1 is a power of two
    (3, None, False, None),   # not a power of two, but no divisor: not enough information
    (4, 4, False, None),      # equal
    (3, 4, True, 4 / 3),
    (5, 8, True, 1.6),
    (8, 4, True, 0.5),
])
def test_group_scale_decision_table(nframes, divisor, apply, factor):
    decision = group_scale_decision(nframes, divisor)
    assert decision.apply is apply
    assert decision.factor == factor
    assert decision.reason


def test_scale_groups_float32_product():
    data = np.array([1.0, 3.0, 1000.7, -2.5, 65535.0, 7.1], np.float32).reshape(2, 1, 1, 3)
    expected = data * np.float32(4 / 3)
    scale_groups(data, 4 / 3)
    assert data.dtype == np.float32
    np.testing.assert_array_equal(data, expected)
    assert data[0, 0, 0, 1] == np.float32(4.0)


@pytest.mark.oracle
@pytest.mark.parametrize("nframes, divisor", [(3, 4), (5, 8), (4, 4), (4, None), (3, None), (None, 2)])
def test_group_scale_matches_jwst(nframes, divisor):
    pytest.importorskip("jwst")
    from stdatamodels.jwst import datamodels as dm
    from jwst.group_scale import GroupScaleStep

    rng = np.random.default_rng(11)
    data = rng.uniform(-100, 60000, (2, 3, 5, 6)).astype(np.float32)
    model = dm.RampModel(data=data.copy())
    model.meta.exposure.nframes = nframes
    model.meta.exposure.frame_divisor = divisor
    result = GroupScaleStep.call(model)

    ours = data.copy()
    decision = group_scale_decision(nframes, divisor)
    if decision.apply:
        scale_groups(ours, decision.factor)
    assert result.meta.cal_step.group_scale == ("COMPLETE" if decision.apply else "SKIPPED")
    np.testing.assert_array_equal(result.data, ours)


# ---------------------------------------------------------------------------- dq_init

def test_apply_mask_propagates_dnu_only():
    pixeldq = np.array([[0, 4], [0, 0]], np.uint32)
    groupdq = np.zeros((2, 3, 2, 2), np.uint8)
    groupdq[1, 2, 1, 1] = dqflags.group["JUMP_DET"]
    mask = np.array([[DNU | DEAD, HOT], [REF, DNU]], np.uint32)
    apply_mask(pixeldq, groupdq, mask)
    np.testing.assert_array_equal(pixeldq, [[DNU | DEAD, HOT | 4], [REF, DNU]])
    expected = np.zeros_like(groupdq)
    expected[:, :, 0, 0] = DNU
    expected[:, :, 1, 1] = DNU
    expected[1, 2, 1, 1] |= dqflags.group["JUMP_DET"]
    np.testing.assert_array_equal(groupdq, expected)


def test_user_dq_is_or_ed_into_mask():
    pixeldq = np.zeros((2, 2), np.uint32)
    groupdq = np.zeros((1, 2, 2, 2), np.uint8)
    mask = np.array([[0, HOT], [0, 0]], np.uint32)
    user = np.array([[DNU, 0], [DEAD, 0]], np.int64)
    apply_mask(pixeldq, groupdq, mask, user_dq=user)
    np.testing.assert_array_equal(pixeldq, [[DNU, HOT], [DEAD, 0]])
    assert np.all(groupdq[:, :, 0, 0] == DNU)
    assert np.count_nonzero(groupdq) == 2
    np.testing.assert_array_equal(mask, [[0, HOT], [0, 0]])  # the mask itself is not changed
    with pytest.raises(BadInputError):
        combine_user_dq(mask, np.zeros((3, 2), np.uint32))


def test_ensure_dq_arrays_replaces_missing_or_misshapen():
    shape = (2, 3, 4, 5)
    pdq, gdq, new_p, new_g = ensure_dq_arrays(shape, None, np.zeros((2, 3, 4, 4), np.uint8))
    assert new_p and new_g
    assert pdq.shape == (4, 5) and pdq.dtype == np.uint32 and not pdq.any()
    assert gdq.shape == shape and gdq.dtype == np.uint8
    good_p = np.ones((4, 5), np.uint32)
    good_g = np.ones(shape, np.uint8)
    pdq, gdq, new_p, new_g = ensure_dq_arrays(shape, good_p, good_g)
    assert pdq is good_p and gdq is good_g and not new_p and not new_g


@pytest.mark.oracle
def test_dq_init_matches_jwst():
    pytest.importorskip("jwst")
    from stdatamodels.jwst import datamodels as dm
    from jwst.dq_init.dq_initialization import do_dqinit

    rng = np.random.default_rng(5)
    ny, nx = 50, 60
    mask = rng.choice(np.array([0, DNU, HOT, DNU | DEAD, REF, 1 << 30], np.uint32), size=(ny, nx),
                      p=[0.8, 0.05, 0.05, 0.04, 0.04, 0.02]).astype(np.uint32)
    user = (rng.random((ny, nx)) < 0.02).astype(np.int16) * DNU
    pixeldq = (rng.random((ny, nx)) < 0.05).astype(np.uint32) * 4
    groupdq = (rng.random((2, 4, ny, nx)) < 0.05).astype(np.uint8) * 2
    data = np.zeros((2, 4, ny, nx), np.float32)

    model = dm.RampModel(data=data, pixeldq=pixeldq.copy(), groupdq=groupdq.copy())
    _full_subarray(model, ny, nx)
    mask_model = dm.MaskModel(dq=mask.copy())
    _full_subarray(mask_model, ny, nx)
    result = do_dqinit(model, mask_model, user_dq=user.copy())

    apply_mask(pixeldq, groupdq, mask, user_dq=user)
    np.testing.assert_array_equal(result.pixeldq, pixeldq)
    np.testing.assert_array_equal(result.groupdq, groupdq)


# ---------------------------------------------------------------------------- superbias

def test_superbias_nan_is_zero_and_zeroframe_zeros_stay():
    data = np.full((2, 2, 2, 2), 100.0, np.float32)
    pixeldq = np.array([[0, 4], [0, 0]], np.uint32)
    bias = np.array([[10.0, np.nan], [-5.0, 0.5]], np.float32)
    bias_dq = np.array([[0, 0], [HOT, 0]], np.uint32)
    zeroframe = np.array([[[0.0, 50.0], [20.0, -0.0]], [[30.0, 0.0], [0.0, 1.0]]], np.float32)
    subtract_superbias(data, pixeldq, bias, bias_dq, zeroframe=zeroframe)
    np.testing.assert_array_equal(data[1, 1], [[90.0, 100.0], [105.0, 99.5]])
    assert np.all(data == data[0, 0])
    np.testing.assert_array_equal(pixeldq, [[0, 4], [HOT, 0]])
    np.testing.assert_array_equal(zeroframe, [[[0.0, 50.0], [25.0, 0.0]], [[20.0, 0.0], [0.0, 0.5]]])
    assert not np.signbit(zeroframe).any()   # -0.0, bad data too, becomes 0.0
    assert np.isnan(bias[0, 1])  # the reference array is not modified


@pytest.mark.oracle
def test_superbias_matches_jwst():
    pytest.importorskip("jwst")
    from stdatamodels.jwst import datamodels as dm
    from jwst.superbias.bias_sub import do_correction

    rng = np.random.default_rng(8)
    ny, nx = 50, 60
    data = rng.normal(15000, 2000, (2, 4, ny, nx)).astype(np.float32)
    bias = rng.normal(12000, 300, (ny, nx)).astype(np.float32)
    bias[rng.random((ny, nx)) < 0.03] = np.nan
    bias_dq = (rng.random((ny, nx)) < 0.05).astype(np.uint32) * dqflags.pixel["UNRELIABLE_BIAS"]
    zeroframe = rng.normal(13000, 500, (2, ny, nx)).astype(np.float32)
    zeroframe[rng.random((2, ny, nx)) < 0.05] = 0.0
    pixeldq = np.zeros((ny, nx), np.uint32)

    model = dm.RampModel(data=data.copy(), pixeldq=pixeldq.copy(), zeroframe=zeroframe.copy())
    model.meta.exposure.zero_frame = True
    _full_subarray(model, ny, nx)
    bias_model = dm.SuperBiasModel(data=bias.copy(), dq=bias_dq.copy())
    _full_subarray(bias_model, ny, nx)
    result = do_correction(model, bias_model)

    subtract_superbias(data, pixeldq, bias, bias_dq, zeroframe=zeroframe)
    np.testing.assert_array_equal(result.data, data)
    np.testing.assert_array_equal(result.pixeldq, pixeldq)
    np.testing.assert_array_equal(result.zeroframe, zeroframe)


# ---------------------------------------------------------------------------- gain_scale

def test_scale_by_gain():
    data = np.array([[1.0, 2.0], [np.nan, -4.0]], np.float32)
    err = np.array([[0.5, 1.0], [1.0, 2.0]], np.float32)
    vp = np.array([[0.25, 1.0], [1.0, 4.0]], np.float32)
    empty = np.zeros((0,), np.float32)
    scale_by_gain(2.0, data, err, var_poisson=vp, var_rnoise=empty)
    np.testing.assert_array_equal(data, [[2.0, 4.0], [np.nan, -8.0]])
    np.testing.assert_array_equal(err, [[1.0, 2.0], [2.0, 4.0]])
    np.testing.assert_array_equal(vp, [[1.0, 4.0], [4.0, 16.0]])
    cube = np.ones((3, 2, 2), np.float32)
    scale_by_gain(1.5, cube, cube[:, ::2, :], None, None)  # non-contiguous views work too
    assert cube[0, 0, 0] == np.float32(2.25) and cube[0, 1, 0] == np.float32(1.5)


def test_gain_factor_to_use():
    assert gain_factor_to_use(2.0, 3.0) == 2.0
    assert gain_factor_to_use(None, 3.0) == 3.0
    assert gain_factor_to_use(None, None) is None


@pytest.mark.oracle
def test_gain_scale_matches_jwst():
    pytest.importorskip("jwst")
    from stdatamodels.jwst import datamodels as dm
    from jwst.gain_scale.gain_scale import do_correction

    rng = np.random.default_rng(2)
    shape = (3, 20, 30)
    arrays = [rng.normal(10, 3, shape).astype(np.float32) for _ in range(4)]
    model = dm.CubeModel(data=arrays[0].copy(), err=arrays[1].copy(),
                         var_poisson=arrays[2].copy(), var_rnoise=arrays[3].copy())
    result = do_correction(model, 1.37)
    scale_by_gain(1.37, *arrays)
    for name, ours in zip(("data", "err", "var_poisson", "var_rnoise"), arrays):
        np.testing.assert_array_equal(getattr(result, name), ours, err_msg=name)
