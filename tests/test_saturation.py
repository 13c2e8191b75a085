"""saturation: hand-computed edge cases and comparison with stcal/jwst."""
import numpy as np
import pytest

from ramp2slope.datamodels import dqflags
from ramp2slope.saturation import flag_saturation, grow_flags, make_read_pattern, prepare_thresholds

DNU = dqflags.group["DO_NOT_USE"]
SAT = dqflags.group["SATURATED"]
ADF = dqflags.group["AD_FLOOR"]
NSC = dqflags.pixel["NO_SAT_CHECK"]


def _ramp(values, ny=5, nx=6, fill=10.0):
    """One integration; ``values`` maps (y, x) to the per-group values of that pixel."""
    ngroups = len(next(iter(values.values())))
    data = np.full((1, ngroups, ny, nx), fill, np.float32)
    for (y, x), ramp in values.items():
        data[0, :, y, x] = ramp
    return data, np.zeros(data.shape, np.uint8), np.zeros((ny, nx), np.uint32)


def test_prepare_thresholds():
    thresh = np.array([[100.0, np.nan], [200.0, 300.0]], np.float32)
    dq = np.array([[0, 0], [NSC | 4, 1024]], np.uint32)
    t, d, nocheck = prepare_thresholds(thresh, dq)
    np.testing.assert_array_equal(t, [[100.0, 65536.0], [65536.0, 300.0]])
    np.testing.assert_array_equal(d, [[0, NSC], [NSC | 4, 1024]])
    np.testing.assert_array_equal(nocheck, [[False, True], [True, False]])
    assert np.isnan(thresh[0, 1]) and dq[0, 1] == 0  # inputs untouched


def test_sticky_saturation_ad_floor_and_nan_threshold():
    data, gdq, pdq = _ramp({(1, 1): [10, 60, 40, 70],     # over 50 from group 1 on, even when it drops
                            (3, 4): [10, 0, -3, 20],      # A/D floor only in the groups <= 0
                            (0, 5): [65535, 65535, 65535, 65535],  # NaN threshold: never SAT
                            (4, 0): [65535, 65535, 65535, 65535]})  # NO_SAT_CHECK in the reference
    thresh = np.full((5, 6), 50.0, np.float32)
    thresh[:, 5] = 1000.0
    thresh[0, 5] = np.nan
    thresh[4, :] = 1000.0
    sat_dq = np.zeros((5, 6), np.uint32)
    sat_dq[4, 0] = NSC
    sat_dq[2, 2] = 1024
    n_sat, n_floor = flag_saturation(data, gdq, pdq, thresh, sat_dq, n_pix_grow_sat=0)
    assert (n_sat, n_floor) == (1, 1)
    np.testing.assert_array_equal(gdq[0, :, 1, 1], [0, SAT, SAT, SAT])
    np.testing.assert_array_equal(gdq[0, :, 3, 4], [0, ADF | DNU, ADF | DNU, 0])
    assert not gdq[0, :, 0, 5].any() and not gdq[0, :, 4, 0].any()
    assert pdq[0, 5] == NSC and pdq[4, 0] == NSC and pdq[2, 2] == 1024
    assert np.count_nonzero(pdq) == 3


def test_prepared_thresholds_reused_between_integrations():
    """The streamed pipeline prepares the thresholds once and flags each integration with
    them: the flags are those of an unprepared call, and the prepared arrays are not changed."""
    rng = np.random.default_rng(7)
    data = rng.uniform(-5, 120, (1, 4, 5, 6)).astype(np.float32)
    thresh = np.full((5, 6), 100.0, np.float32)
    thresh[0, 0] = np.nan
    sat_dq = np.zeros((5, 6), np.uint32)
    sat_dq[1, 1] = NSC
    expected_gdq = np.zeros(data.shape, np.uint8)
    expected_pdq = np.zeros((5, 6), np.uint32)
    expected = flag_saturation(data, expected_gdq, expected_pdq, thresh, sat_dq)
    prepared = prepare_thresholds(thresh, sat_dq)
    kept = [a.copy() for a in prepared]
    for _ in range(2):
        gdq = np.zeros(data.shape, np.uint8)
        pdq = np.zeros((5, 6), np.uint32)
        assert flag_saturation(data, gdq, pdq, None, None, prepared=prepared) == expected
        np.testing.assert_array_equal(gdq, expected_gdq)
        np.testing.assert_array_equal(pdq, expected_pdq)
    for array, copy in zip(prepared, kept):
        np.testing.assert_array_equal(array, copy)
    assert expected_gdq.any() and expected_pdq[0, 0] == NSC


def test_growth_at_edges_is_clipped_and_does_not_cascade():
    # corner pixel saturates in group 1 and stays saturated; n=1 grows a 2x2 block at the corner
    data, gdq, pdq = _ramp({(0, 0): [10, 60, 70, 80], (3, 3): [-1, 10, 10, 10]})
    thresh = np.full((5, 6), 50.0, np.float32)
    flag_saturation(data, gdq, pdq, thresh, np.zeros((5, 6), np.uint32), n_pix_grow_sat=1)
    assert not (gdq[0, 0] & SAT).any()
    for g in (1, 2, 3):
        expected = np.zeros((5, 6), bool)
        expected[:2, :2] = True          # never more than the 3x3 box (clipped): no cascading
        np.testing.assert_array_equal((gdq[0, g] & SAT) != 0, expected)
    # the A/D floor flag is not grown
    assert gdq[0, 0, 3, 3] == ADF | DNU and np.count_nonzero(gdq[0, 0]) == 1


def test_growth_of_two_pixels_and_preexisting_sat():
    data, gdq, pdq = _ramp({(2, 3): [10, 60]}, ny=7, nx=8)
    gdq[0, 0, 6, 7] = SAT  # an existing SAT bit in this group is grown as well
    thresh = np.full((7, 8), 50.0, np.float32)
    flag_saturation(data, gdq, pdq, thresh, np.zeros((7, 8), np.uint32), n_pix_grow_sat=2,
                    use_readpatt=False)
    g0 = np.zeros((7, 8), bool)
    g0[4:, 5:] = True
    np.testing.assert_array_equal(gdq[0, 0] == SAT, g0)
    g1 = np.zeros((7, 8), bool)
    g1[0:5, 1:6] = True
    np.testing.assert_array_equal(gdq[0, 1] == SAT, g1)


def test_grow_flags_helper():
    plane = np.zeros((4, 4), np.uint8)
    plane[0, 3] = 5  # bit 4 set, and DNU
    target = np.zeros((4, 4), np.uint8)
    grow_flags(plane, 4, 2, 1, target=target)
    np.testing.assert_array_equal(target[:2, 2:], [[2, 2], [2, 2]])
    assert np.count_nonzero(target) == 4


def test_read_pattern():
    assert make_read_pattern(3, 1) == [[1], [2], [3]]
    assert make_read_pattern(2, 4) == [[1, 2, 3, 4], [5, 6, 7, 8]]


def test_readpattern_backward_pass_sets_dnu_not_sat():
    # NFRAMES=4: group 0 averages frames 1..4, dilution mean/last = 2.5/4 = 0.625.
    # threshold 100: group 0 at 70 >= 62.5 with group 1 saturated -> DNU on group 0 (+ neighbours)
    data, gdq, pdq = _ramp({(2, 2): [70, 120, 130], (2, 5): [60, 120, 130]}, fill=10.0)
    thresh = np.full((5, 6), 100.0, np.float32)
    zero = np.zeros((5, 6), np.uint32)
    flag_saturation(data, gdq, pdq, thresh, zero, n_pix_grow_sat=1, nframes=4)
    expected0 = np.zeros((5, 6), np.uint8)
    expected0[1:4, 1:4] = DNU            # (2, 5) has 60 < 62.5: not flagged
    np.testing.assert_array_equal(gdq[0, 0], expected0)
    assert gdq[0, 1, 2, 2] == SAT and gdq[0, 1, 1, 1] == SAT  # grown SAT in group 1
    # with NFRAMES=1 the dilution is 1 and nothing is flagged in group 0
    data1, gdq1, pdq1 = _ramp({(2, 2): [70, 120, 130]}, fill=10.0)
    flag_saturation(data1, gdq1, pdq1, thresh, zero, n_pix_grow_sat=1, nframes=1)
    assert not gdq1[0, 0].any()
    # nor without the read pattern
    data2, gdq2, pdq2 = _ramp({(2, 2): [70, 120, 130]}, fill=10.0)
    flag_saturation(data2, gdq2, pdq2, thresh, zero, n_pix_grow_sat=1, nframes=4, use_readpatt=False)
    assert not gdq2[0, 0].any()


def test_backward_pass_skips_groups_already_dnu():
    data, gdq, pdq = _ramp({(2, 2): [70, 120, 130]}, fill=10.0)
    gdq[0, 0, 2, 2] = DNU | dqflags.group["JUMP_DET"]
    thresh = np.full((5, 6), 100.0, np.float32)
    flag_saturation(data, gdq, pdq, thresh, np.zeros((5, 6), np.uint32), n_pix_grow_sat=1, nframes=4)
    assert gdq[0, 0, 2, 2] == DNU | dqflags.group["JUMP_DET"]
    assert not gdq[0, 0, 1, 1]  # no new flag, so nothing grown


def test_group2_test_with_bias():
    # NFRAMES=4, bias 20, threshold 100. Pixel (2, 2): group 0 = 25 predicts
    # (25-20)/2.5*12 + 20 = 44 < 100 by group 2; the jump 25 -> 55 is 30 > (100-25)/4 = 18.75;
    # group 2 saturated and group 1 (55 < 0.8125*100) not even caught by the backward pass.
    data, gdq, pdq = _ramp({(2, 2): [25, 55, 120, 130]}, fill=10.0)
    thresh = np.full((5, 6), 100.0, np.float32)
    bias = np.full((5, 6), 20.0, np.float32)
    flag_saturation(data, gdq, pdq, thresh, np.zeros((5, 6), np.uint32), n_pix_grow_sat=1,
                    nframes=4, bias=bias)
    assert gdq[0, 1, 2, 2] == DNU
    assert np.count_nonzero(gdq[0, 1] & DNU) == 1  # not grown
    # with a high bias, group 0 predicts saturation by group 2: no flag
    data, gdq, pdq = _ramp({(2, 2): [25, 55, 120, 130]}, fill=10.0)
    flag_saturation(data, gdq, pdq, thresh, np.zeros((5, 6), np.uint32), n_pix_grow_sat=1,
                    nframes=4, bias=np.full((5, 6), -60.0, np.float32))
    # (25+60)/2.5*12 - 60 = 348 >= 100
    assert gdq[0, 1, 2, 2] == 0


def test_zeroframe_flagged_values_become_zero():
    data, gdq, pdq = _ramp({(0, 0): [10, 20]})
    thresh = np.full((5, 6), 100.0, np.float32)
    zeroframe = np.full((1, 5, 6), 30.0, np.float32)
    zeroframe[0, 2, 2] = 150.0   # saturated: it and its 8 neighbours become 0
    zeroframe[0, 4, 5] = -2.0    # A/D floor: only itself
    zeroframe[0, 0, 5] = np.nan  # neither
    flag_saturation(data, gdq, pdq, thresh, np.zeros((5, 6), np.uint32), zeroframe=zeroframe)
    expected = np.full((5, 6), 30.0, np.float32)
    expected[1:4, 1:4] = 0.0
    expected[4, 5] = 0.0
    expected[0, 5] = np.nan
    np.testing.assert_array_equal(zeroframe[0], expected)
    assert not gdq.any()


# ---------------------------------------------------------------------------- oracle

def _random_exposure(seed, nints=2, ngroups=6, ny=50, nx=60):
    rng = np.random.default_rng(seed)
    bias = rng.normal(12000, 500, (ny, nx)).astype(np.float32)
    bias[rng.random((ny, nx)) < 0.01] = np.nan
    rate = rng.exponential(1500, (ny, nx)).astype(np.float32)
    rate[rng.random((ny, nx)) < 0.05] *= 20
    rate[17:25, 26:45] = 100.0  # quiet surroundings for the two pixels below
    t = np.arange(1, ngroups + 1, dtype=np.float32)[:, None, None]
    data = np.empty((nints, ngroups, ny, nx), np.float32)
    for i in range(nints):
        data[i] = np.nan_to_num(bias, nan=12000) + rate * t + rng.normal(0, 10, (ngroups, ny, nx))
    np.clip(data, None, 65535, out=data)
    data[:, :, 3, 4] = 0.0
    data[0, 2, 7, 8] = -5.0
    # a pixel hit by something bright during group 2 (index 1): group-2 test territory
    data[:, :, 20, 30] = [15000, 35000, 65535, 65535, 65535, 65535][:ngroups]
    data[:, :, 21, 40] = [15000, 45000, 65535, 65535, 65535, 65535][:ngroups]
    thresh = rng.normal(50000, 3000, (ny, nx)).astype(np.float32)
    thresh[rng.random((ny, nx)) < 0.03] = np.nan
    sat_dq = np.zeros((ny, nx), np.uint32)
    sat_dq[rng.random((ny, nx)) < 0.03] = NSC
    sat_dq[0, 0] |= dqflags.pixel["DEAD"]
    thresh[20, 30] = thresh[21, 40] = 50000.0
    sat_dq[20, 30] = sat_dq[21, 40] = 0
    bias[20, 30] = bias[21, 40] = 12000.0
    gdq = np.zeros(data.shape, np.uint8)
    gdq[:, :, 10, 10] = DNU
    gdq[0, 3, 20, 21] = SAT
    pdq = np.zeros((ny, nx), np.uint32)
    pdq[5, 5] = 4
    zeroframe = data[:, 0] * np.float32(0.5)
    zeroframe[0, 5, 5] = 0.0
    zeroframe[-1, 6, 6] = 60000.0
    return data, gdq, pdq, thresh, sat_dq, bias, zeroframe


@pytest.mark.oracle
@pytest.mark.parametrize("nframes", [1, 4])
@pytest.mark.parametrize("grow", [0, 1, 2])
def test_matches_stcal(nframes, grow):
    pytest.importorskip("stcal")
    from stcal.saturation.saturation import flag_saturated_pixels

    data, gdq, pdq, thresh, sat_dq, bias, zf = _random_exposure(10 * nframes + grow)
    pattern = make_read_pattern(data.shape[1], nframes)
    ref_gdq, ref_pdq, ref_zf = flag_saturated_pixels(
        data.copy(), gdq.copy(), pdq.copy(), thresh.copy(), sat_dq.copy(), 65535.0,
        dqflags.pixel, n_pix_grow_sat=grow, zframe=zf.copy(), read_pattern=pattern,
        bias=bias.copy())

    ours_data = data.copy()
    flag_saturation(ours_data, gdq, pdq, thresh, sat_dq, n_pix_grow_sat=grow, nframes=nframes,
                    bias=bias, zeroframe=zf)
    np.testing.assert_array_equal(ours_data, data)
    np.testing.assert_array_equal(gdq, ref_gdq)
    np.testing.assert_array_equal(pdq, ref_pdq)
    np.testing.assert_array_equal(zf, ref_zf)
    if nframes == 4:
        # the frame-averaging passes did flag something here: the backward pass (with growth)
        # and the group-2 test
        assert gdq[0, 1, 21, 40] == DNU
        assert gdq[0, 1, 22, 41] == (DNU if grow else 0)
        assert gdq[0, 1, 20, 30] == DNU and gdq[0, 1, 21, 31] == 0


@pytest.mark.oracle
def test_matches_jwst_flag_saturation():
    pytest.importorskip("jwst")
    from stdatamodels.jwst import datamodels as dm
    from jwst.saturation.saturation import flag_saturation as jwst_flag_saturation

    data, gdq, pdq, thresh, sat_dq, bias, zf = _random_exposure(99, nints=1, ngroups=5)
    ny, nx = data.shape[-2:]

    def full(model):
        model.meta.subarray.xstart = model.meta.subarray.ystart = 1
        model.meta.subarray.xsize, model.meta.subarray.ysize = nx, ny
        return model

    model = full(dm.RampModel(data=data.copy(), groupdq=gdq.copy(), pixeldq=pdq.copy(),
                              zeroframe=zf.copy()))
    model.meta.exposure.nframes = 4
    model.meta.exposure.ngroups = data.shape[1]
    model.meta.exposure.zero_frame = True
    ref = full(dm.SaturationModel(data=thresh.copy(), dq=sat_dq.copy()))
    bias_model = full(dm.SuperBiasModel(data=bias.copy()))
    result = jwst_flag_saturation(model, ref, 1, True, bias_model=bias_model)

    flag_saturation(data, gdq, pdq, thresh, sat_dq, n_pix_grow_sat=1, use_readpatt=True,
                    nframes=4, bias=bias, zeroframe=zf)
    np.testing.assert_array_equal(result.groupdq, gdq)
    np.testing.assert_array_equal(result.pixeldq, pdq)
    np.testing.assert_array_equal(result.zeroframe, zf)


def test_thresholds_prepared_in_place_are_the_same_as_copies():
    thresh = np.array([[100.0, np.nan], [200.0, 300.0]], np.float32)
    dq = np.array([[0, 0], [2, 0]], np.uint32)   # 2: NO_SAT_CHECK
    copies = prepare_thresholds(thresh, dq)
    assert np.isnan(thresh[0, 1]) and dq[0, 1] == 0           # the inputs are left alone
    own_thresh, own_dq = thresh.copy(), dq.copy()
    prepared = prepare_thresholds(own_thresh, own_dq, in_place=True)
    assert prepared[0] is own_thresh and prepared[1] is own_dq
    for a, b in zip(copies, prepared):
        np.testing.assert_array_equal(a, b)
    read_only = thresh.copy()
    read_only.flags.writeable = False
    assert prepare_thresholds(read_only, dq, in_place=True)[0] is not read_only


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (7, 1), (3, 4), (41, 57)])
@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_growth_kernels_equal_scipy_filters(shape, n):
    """The kernels behind the growth (the dilation of ``grow_flags``, the window minimum of the first
    saturated group and the SAT spread from it) against scipy's filters, for windows wider than
    the array too: a box clipped at the edges."""
    from scipy import ndimage

    from ramp2slope.saturation import saturation as kernels

    rng = np.random.default_rng(sum(shape) + n)
    box = np.ones((2 * n + 1, 2 * n + 1), bool)
    plane = (rng.random(shape) < 0.08).astype(np.uint8) * SAT | rng.integers(0, 2, shape, np.uint8)
    grown = plane.copy()
    kernels._dilate_or(plane, np.uint8(SAT), n, np.empty(shape, np.uint8), grown, np.uint8(DNU))
    expected = ndimage.binary_dilation(plane & SAT != 0, box, border_value=0)
    np.testing.assert_array_equal(grown & DNU != 0, expected | (plane & DNU != 0))
    np.testing.assert_array_equal(grown & ~np.uint8(DNU), plane & ~np.uint8(DNU))

    ngroups = 5
    first = rng.integers(0, ngroups + 1, shape).astype(np.uint16)
    hmin = np.empty_like(first)
    kernels._row_min(first, n, hmin)
    np.testing.assert_array_equal(hmin, ndimage.minimum_filter(first, size=(1, 2 * n + 1),
                                                               mode="nearest"))
    gdq = np.zeros((ngroups,) + shape, np.uint8)
    no_zero = np.zeros((0, 0), np.float32)
    kernels._or_sat_from(gdq, hmin, n, np.uint8(SAT), no_zero, np.zeros((0, 0), np.uint8))
    earliest = ndimage.minimum_filter(first, size=2 * n + 1, mode="nearest")
    for g in range(ngroups):
        np.testing.assert_array_equal(gdq[g] == SAT, earliest <= g, err_msg=f"group {g}")


def _irs2_flags_by_numpy(data, rows, thresh, bias, nframes, use_readpatt, grow):
    """The IRS2 rules as numpy expressions on whole planes, in jwst's types (the reference for
    the kernels): float32 tests and rise, the group-2 prediction in float64."""
    from ramp2slope.saturation.saturation import grow_flags, make_read_pattern

    nints, ngroups = data.shape[:2]
    pattern = make_read_pattern(ngroups, nframes) if use_readpatt else None
    groupdq = np.zeros(data.shape, np.uint8)
    low_flags = np.uint8(dqflags.group["AD_FLOOR"] | dqflags.group["DO_NOT_USE"])
    for i in range(nints):
        sticky = np.zeros(thresh.shape, np.uint8)
        for g in range(ngroups):
            science = data[i, g, rows]
            flag = np.where(science >= thresh, np.uint8(SAT), np.uint8(0))
            low = np.where(science <= 0, low_flags, np.uint8(0))
            if g == 2 and pattern is not None:
                d0, d1 = data[i, 0, rows], data[i, 1, rows]
                b = np.float32(0.0) if bias is None else bias[rows]
                predicted = ((d0 - b) / np.mean(pattern[0])) * pattern[2][-1] + b
                room = (thresh - d0) / np.float32(len(pattern[1]))
                early = ((predicted < thresh) & ((d1 - d0) > room) & (science >= thresh))
                early = early.astype(np.uint8) * np.uint8(SAT)
                grow_flags(early, SAT, SAT, grow)
                groupdq[i, 1, rows] |= early
            grow_flags(flag, SAT, SAT, grow)
            sticky |= flag
            groupdq[i, g, rows] |= sticky | low
    return groupdq


@pytest.mark.parametrize("with_bias, use_readpatt, grow", [
    (True, True, 1), (False, True, 2), (True, False, 0), (True, True, 0)])
def test_irs2_kernels_follow_the_numpy_rules(with_bias, use_readpatt, grow):
    # the IRS2 variant's compiled tests against the same rules written as numpy expressions on
    # whole planes: science rows interleaved with rows never flagged, the group-2 test deciding
    # for many pixels, the A/D floor, NaN and NO_SAT_CHECK thresholds, two integrations
    from ramp2slope.saturation import irs2

    rng = np.random.default_rng(5)
    length, nx, ngroups, nframes = 45, 16, 4, 3
    rows = np.ones(length, dtype=bool)
    rows[::4] = False
    science = int(rows.sum())
    thresh = rng.uniform(900.0, 1100.0, (science, nx)).astype(np.float32)
    thresh[3, 4] = np.nan
    sat_dq = np.zeros((science, nx), dtype=np.uint32)
    sat_dq[5, 6] = 2                                            # NO_SAT_CHECK
    bias = rng.uniform(-20.0, 20.0, (length, nx)).astype(np.float32) if with_bias else None
    start = rng.uniform(-50.0, 300.0, (2, 1, length, nx)).astype(np.float32)
    rise = rng.uniform(0.0, 700.0, (2, 1, length, nx)).astype(np.float32)
    data = start + rise * np.arange(ngroups, dtype=np.float32)[None, :, None, None]
    jumped = rng.random((2, length, nx)) < 0.3                  # group 1 jumps: the group-2 test
    data[:, 1][jumped] += rng.uniform(0.0, 600.0, int(jumped.sum())).astype(np.float32)
    data[0, 0, 7, 3] = 0.0                                      # A/D floor
    # group 1's rise exactly the room left ((1000 - 100) / 3): not a candidate (a strict test)
    r = np.flatnonzero(rows)[10]
    thresh[10, 8] = 1000.0
    data[0, :, r, 8] = (100.0, 400.0, 1000.0, 1100.0)
    if bias is not None:
        bias[r, 8] = 0.0
    before = data.copy()

    groupdq = np.zeros(data.shape, dtype=np.uint8)
    pixeldq = np.zeros((length, nx), dtype=np.uint32)
    counts = irs2.flag_saturation_irs2(data, groupdq, pixeldq, thresh, sat_dq, rows,
                                       n_pix_grow_sat=grow, nframes=nframes, bias=bias,
                                       use_readpatt=use_readpatt)
    prepared_thresh = irs2.prepare_thresholds(thresh, sat_dq)[0]
    expected = _irs2_flags_by_numpy(data, rows, prepared_thresh, bias, nframes, use_readpatt, grow)
    np.testing.assert_array_equal(groupdq, expected)
    np.testing.assert_array_equal(data, before)
    assert not groupdq[:, :, ~rows].any()
    ad_floor = dqflags.group["AD_FLOOR"]
    assert counts == (np.count_nonzero((expected & SAT).any(axis=(0, 1))),
                      np.count_nonzero((expected & ad_floor).any(axis=(0, 1))))
    assert counts[0] > 0 and counts[1] > 0
    if use_readpatt:
        # the group-2 test flagged group 1 where the plain test did not
        plain = _irs2_flags_by_numpy(data, rows, prepared_thresh, bias, nframes, False, grow)
        assert (expected[:, 1] != plain[:, 1]).any()