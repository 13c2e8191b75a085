"""dark_current: resampling rules with hand-computed values, and comparison with stcal."""
import numpy as np
import pytest

from ramp2slope.dark_current import average_dark_current_array, dark_used, plan_dark, subtract_dark
from ramp2slope.datamodels import dqflags

WARM = dqflags.pixel["WARM"]


def _dark(values, ny=2, nx=3):
    """A dark whose plane p is ``values[p]`` everywhere."""
    return np.array([np.full((ny, nx), v, np.float32) for v in values])


def test_plan_extension_skip_and_direct():
    plan = plan_dark(10, 1, 0, 6, 1, 0)
    assert (plan.skip, plan.n_extend, plan.direct, plan.starts) == (False, 4, True, tuple(range(10)))
    # NFRAMES=4, GROUPGAP=1, 3 groups need 14 frames: a 10-plane single-frame dark gets 4 more
    plan = plan_dark(3, 4, 1, 10, 1, 0)
    assert (plan.skip, plan.n_extend, plan.direct, plan.starts) == (False, 4, False, (0, 5, 10))
    # a dark with NFRAMES=4/GROUPGAP=1: 5 groups need 24 frames, a 3-plane dark has 14 -> +3 planes
    assert plan_dark(5, 4, 1, 3, 4, 1).n_extend == 3
    assert plan_dark(5, 2, 0, 30, 4, 0).skip          # dark NFRAMES > science NFRAMES
    assert plan_dark(5, 1, 0, 30, 1, 1).skip          # dark GROUPGAP > science GROUPGAP
    assert not plan_dark(5, 1, 1, 30, 1, 1).skip


def test_direct_subtraction_with_extension_and_nan():
    data = np.full((2, 5, 2, 3), 100.0, np.float32)
    pdq = np.zeros((2, 3), np.uint32)
    dark = _dark([1.0, 2.0, 4.0])
    dark[1, 0, 0] = np.nan                       # NaN -> 0
    dark[0, 0, 1] = np.nan
    dark_dq = np.zeros((2, 3), np.uint32)
    dark_dq[1, 2] = WARM
    status, plan = subtract_dark(data, pdq, dark, dark_dq, 1, 0, 1, 0)
    assert status == "COMPLETE" and plan.n_extend == 2
    # extension: last plane + k * (last - second to last) = 6, 8
    np.testing.assert_array_equal(data[1, :, 1, 1], [99.0, 98.0, 96.0, 94.0, 92.0])
    # the extension is built before NaNs are replaced: a NaN in the second-to-last plane makes
    # the extension planes NaN, hence 0
    np.testing.assert_array_equal(data[0, :, 0, 0], [99.0, 100.0, 96.0, 100.0, 100.0])
    np.testing.assert_array_equal(data[0, :, 0, 1], [100.0, 98.0, 96.0, 94.0, 92.0])
    np.testing.assert_array_equal(pdq, [[0, 0, 0], [0, 0, WARM]])
    assert np.isnan(dark[1, 0, 0])  # the reference is not modified


def test_averaging_nframes4_groupgap1():
    # dark plane p has value p; group g averages planes 5g..5g+3 -> 5g + 1.5
    data = np.full((1, 3, 2, 3), 100.0, np.float32)
    pdq = np.zeros((2, 3), np.uint32)
    dark = _dark(np.arange(14.0))
    dark[2, 0, 1] = np.nan  # counts as 0 in the first average: (0+1+0+3)/4 = 1
    status, plan = subtract_dark(data, pdq, dark, np.zeros((2, 3), np.uint32), 4, 1, 1, 0)
    assert status == "COMPLETE" and not plan.direct and plan.n_extend == 0
    np.testing.assert_array_equal(data[0, :, 1, 1], [98.5, 93.5, 88.5])
    np.testing.assert_array_equal(data[0, :, 0, 1], [99.0, 93.5, 88.5])
    used, nframes, ngroups, groupgap = dark_used(dark, 3, 4, 1, 1, 0)
    assert (nframes, ngroups, groupgap) == (4, 3, 1)
    np.testing.assert_array_equal(used[:, 1, 1], [1.5, 6.5, 11.5])


def test_groupgap_with_single_frames_copies_planes():
    data = np.zeros((1, 3, 2, 3), np.float32)
    dark = _dark(np.arange(10.0))
    subtract_dark(data, np.zeros((2, 3), np.uint32), dark, np.zeros((2, 3), np.uint32), 1, 2, 1, 0)
    np.testing.assert_array_equal(data[0, :, 0, 0], [-0.0, -3.0, -6.0])


def test_skip_leaves_everything_unchanged():
    data = np.full((1, 2, 2, 3), 100.0, np.float32)
    pdq = np.zeros((2, 3), np.uint32)
    dark = _dark([1.0, 2.0, 3.0, 4.0])
    status, plan = subtract_dark(data, pdq, dark, np.full((2, 3), WARM, np.uint32), 1, 0, 2, 0)
    assert status == "SKIPPED" and plan.skip
    assert np.all(data == 100.0) and not pdq.any()
    assert dark_used(dark, 2, 1, 0, 2, 0) is None


def test_dark_used_direct_case_is_the_reference():
    dark = _dark([1.0, np.nan, 3.0])
    used, nframes, ngroups, groupgap = dark_used(dark, 2, 1, 0, 1, 0, dark_ngroups=3)
    assert used is dark and (nframes, ngroups, groupgap) == (1, 3, 0)
    assert np.all(dark[1] == 0.0)
    used, nframes, ngroups, groupgap = dark_used(_dark([1.0, 2.0, 4.0]), 5, 1, 0, 1, 0, dark_ngroups=3)
    assert ngroups == 5 and used.shape == (5, 2, 3)
    np.testing.assert_array_equal(used[:, 0, 0], [1.0, 2.0, 4.0, 6.0, 8.0])


def test_average_dark_current_priority():
    shape = (2, 3)
    arr, src = average_dark_current_array(shape, param=0.5, ref_array=np.ones(shape), ref_scalar=2.0)
    assert src == "parameter" and arr.dtype == np.float32 and np.all(arr == 0.5)
    ref = np.full(shape, 0.25, np.float32)
    arr, src = average_dark_current_array(shape, ref_array=ref, ref_scalar=2.0, current_shape=shape)
    assert src == "reference array" and np.all(arr == 0.25)
    # the official step compares with the model's current array: none yet -> nothing assigned
    arr, src = average_dark_current_array(shape, ref_array=ref, ref_scalar=2.0, current_shape=None)
    assert arr is None and src == "shape mismatch"
    arr, src = average_dark_current_array(shape, ref_array=np.zeros(shape), ref_scalar=2.0)
    assert src == "reference keyword" and np.all(arr == 2.0)
    arr, src = average_dark_current_array(shape, ref_array=None, ref_scalar=None)
    assert src == "default" and np.all(arr == 0.0) and arr.shape == shape


# ---------------------------------------------------------------------------- oracle

@pytest.mark.oracle
@pytest.mark.parametrize("nframes, groupgap, dark_nframes, dark_groupgap, nplanes", [
    (1, 0, 1, 0, 10),   # direct
    (1, 0, 1, 0, 3),    # direct, extended (float64 extension planes)
    (4, 1, 1, 0, 40),   # averaged
    (4, 1, 1, 0, 10),   # averaged, extended
    (1, 2, 1, 0, 5),    # single frames with a gap, extended
    (4, 1, 4, 1, 3),    # direct with NFRAMES=4, extended
    (4, 0, 2, 0, 8),    # dark planes of 2 frames: partial and empty averages (NaN)
    (2, 0, 4, 0, 30),   # skipped
])
def test_matches_stcal(nframes, groupgap, dark_nframes, dark_groupgap, nplanes):
    pytest.importorskip("stcal")
    from stcal.dark_current import dark_class, dark_sub

    rng = np.random.default_rng(nplanes + 7 * nframes)
    nints, ngroups, ny, nx = 2, 5, 50, 60
    data = rng.normal(1000, 50, (nints, ngroups, ny, nx)).astype(np.float32)
    dark = (np.cumsum(rng.normal(0.3, 0.2, (nplanes, ny, nx)), axis=0) * 7.123).astype(np.float32)
    dark[:, 1, 1] = np.nan
    dark[-1, 2, 2] = np.nan
    dark[0, 3, 3] = np.nan
    dark_dq = np.zeros((ny, nx), np.uint32)
    dark_dq[3, 3] = WARM
    pdq = np.zeros((ny, nx), np.uint32)
    pdq[4, 4] = 4

    sci = dark_class.ScienceData()
    sci.data, sci.groupdq, sci.pixeldq = data.copy(), np.zeros(data.shape, np.uint8), pdq.copy()
    sci.exp_nframes, sci.exp_groupgap, sci.exp_intstart = nframes, groupgap, 1
    ref = dark_class.DarkData()
    ref.data, ref.groupdq = dark.copy(), dark_dq.copy()
    ref.exp_nframes, ref.exp_ngroups, ref.exp_groupgap = dark_nframes, nplanes, dark_groupgap
    out, averaged = dark_sub.do_correction_data(sci, ref, dark_output="dark_used.fits")

    status, _ = subtract_dark(data, pdq, dark, dark_dq, nframes, groupgap, dark_nframes, dark_groupgap)
    assert status == out.cal_step
    np.testing.assert_array_equal(data, out.data)
    np.testing.assert_array_equal(pdq, out.pixeldq)
    used = dark_used(dark, ngroups, nframes, groupgap, dark_nframes, dark_groupgap, dark_ngroups=nplanes)
    if averaged is None:
        assert used is None
    else:
        np.testing.assert_array_equal(used[0], averaged.data.astype(np.float32))
        assert used[1:] == (averaged.exp_nframes, averaged.exp_ngroups, averaged.exp_groupgap)


def test_group_darks_are_kept_only_for_integrations_run_one_at_a_time(tmp_path):
    """With a run-wide reference cache, the group darks are kept with the loaded dark for
    the next integration; a model holding the whole exposure gets no copy of them. The
    result is the same either way."""
    from ramp2slope.dark_current import DarkCurrentStep
    from ramp2slope.datamodels import RampModel
    from ramp2slope.datamodels.lazy import RampSource
    from ramp2slope.simulate import simulate_exposure
    from ramp2slope.stpipe import ReferenceCache

    sim = simulate_exposure(tmp_path / "sim", size=(32, 32), ngroups=4, nints=3, seed=3)

    def run(model):
        step = DarkCurrentStep(override_dark=str(sim.refs["dark"]))
        step._reference_cache = cache = ReferenceCache()
        result = step.process(model)   # as the pipeline calls it, on the model itself
        darks = [ref for ref in cache._values.values() if hasattr(ref, "derived")]
        return result, darks[0].derived

    whole, kept = run(RampModel(str(sim.uncal)))
    assert not any(key[0] == "group darks" for key in kept)
    with RampSource(str(sim.uncal)) as source:
        part = source.integration_model(1)
    part._integration_offset = 1
    one, kept = run(part)
    assert any(key[0] == "group darks" for key in kept)
    np.testing.assert_array_equal(one.data[0], whole.data[1])
