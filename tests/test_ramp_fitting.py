"""Tests of the OLS_C ramp fit (spec §4.13): hand-computed cases, then the stcal oracle."""
import numba
import numpy as np
import pytest

from ramp2slope.datamodels import dqflags
from ramp2slope.errors import Ramp2SlopeError
from ramp2slope.ramp_fitting import _ols_kernels
from ramp2slope.ramp_fitting.ols_fit import (
    SEGMENT_FIELDS,
    ImageProduct,
    IntegrationOptional,
    OLSRampFitter,
    fit_ramps,
    group_range,
)

DNU = dqflags.group["DO_NOT_USE"]
SAT = dqflags.group["SATURATED"]
JUMP = dqflags.group["JUMP_DET"]
PERS = dqflags.group["PERSISTENCE"]
CLOSS = dqflags.group["CHARGELOSS"]
NO_GAIN = dqflags.pixel["NO_GAIN_VALUE"]


# ------------------------------------------------------------------------------------------------
# Helpers for hand-computed expectations (spec formulas, written independently of the kernels)
# ------------------------------------------------------------------------------------------------
def one_pixel(ramps, gdq=None, gain=2.0, rn=10.0, pixeldq=0):
    """Arrays for a single pixel: ramps is (nints, ngroups)."""
    data = np.asarray(ramps, np.float32)[:, :, None, None]
    if gdq is None:
        gdq = np.zeros(data.shape, np.uint8)
    else:
        gdq = np.asarray(gdq, np.uint8).reshape(data.shape)
    return (data, gdq, np.full((1, 1), pixeldq, np.uint32), np.full((1, 1), gain, np.float32),
            np.full((1, 1), rn, np.float32))


def fixsen_power(snr):
    for bound, power in ((5, 0.0), (10, 0.4), (20, 1.0), (50, 3.0), (100, 6.0)):
        if snr < bound:
            return power
    return 10.0


def expected_segment(d, start, gain, rn_cds, nframes, tgroup, mrate, dark=0.0):
    """Slope, var_p, var_r of one segment of >= 3 groups from the spec §4.13.4 formulas."""
    d = np.asarray(d, np.float64)
    n = d.size
    r_e = rn_cds * gain / np.sqrt(2.0 * nframes)
    s = (d[-1] - d[0]) * gain
    power = fixsen_power(max(s / np.sqrt(r_e**2 + s), 0.0))
    k = np.arange(n)
    m = (n - 1) / 2.0
    w = np.abs((k - m) / m) ** power / r_e**2
    # np.polyfit minimises sum((w_fit * residual)**2), so pass sqrt of the statistical weights.
    b = np.polyfit(start + k, d, 1, w=np.sqrt(w))[0]
    var_p = (mrate + dark) / (tgroup * gain * (n - 1))
    var_r = 12.0 * r_e**2 / ((n**3 - n) * tgroup**2 * gain**2)
    return b / tgroup, var_p, var_r, power


def median_rate(d, tgroup):
    return float(np.median(np.diff(np.asarray(d, np.float64) / tgroup)))


# §7 numbers: NIRCam-like, 6 groups, NFRAMES 1, TGROUP 0.05016 s, gain 2, RN_cds 10 DN.
S7_TGROUP = 0.05016
S7_RAMP1 = [100.30, 196.04, 291.49, 403.83, 496.01, 611.49]
# Second integration, built so that the mean median rate reproduces the published
# VAR_POISSON = 1965.04: its median first difference is 102.02364 DN.
S7_RAMP2 = np.cumsum([100.0, 101.0, 102.02364, 103.5, 99.0, 104.0])


def s7_fit(**kw):
    data, gdq, pdq, gain, rn = one_pixel([S7_RAMP1, S7_RAMP2])
    return fit_ramps(data, gdq, pdq, gain, rn, nframes=1, group_time=S7_TGROUP,
                     frame_time=S7_TGROUP, **kw)


# ------------------------------------------------------------------------------------------------
# Unit tests
# ------------------------------------------------------------------------------------------------
def test_section7_verified_numbers():
    res = s7_fit(save_opt=True)
    tg = float(np.float32(S7_TGROUP))
    m = (median_rate(np.float32(S7_RAMP1), tg) + median_rate(np.float32(S7_RAMP2), tg)) / 2
    slope1, var_p, var_r, power = expected_segment(np.float32(S7_RAMP1), 0, 2.0, 10.0, 1, tg, m)
    slope2 = expected_segment(np.float32(S7_RAMP2), 0, 2.0, 10.0, 1, tg, m)[0]
    assert power == 3.0  # SNR 29.24
    ints = res.rateints
    np.testing.assert_allclose(ints.data[:, 0, 0], [slope1, slope2], rtol=1e-6)
    # The published slope came from the unrounded ramp; the ramp above is rounded to 0.01 DN,
    # which moves the slope by 0.028 DN/s.
    assert abs(ints.data[0, 0, 0] - 2035.0927) < 0.03
    np.testing.assert_allclose(var_r, 1135.578, rtol=1e-6)
    np.testing.assert_allclose(ints.var_rnoise[:, 0, 0], 1135.578, rtol=1e-6)
    np.testing.assert_allclose(ints.var_poisson[:, 0, 0], 3930.08, rtol=1e-6)
    np.testing.assert_allclose(ints.err[:, 0, 0], 71.173, rtol=1e-5)
    np.testing.assert_allclose(ints.err[:, 0, 0], np.sqrt(var_p + var_r), rtol=1e-6)
    rate = res.rate
    np.testing.assert_allclose(rate.var_rnoise[0, 0], 567.789, rtol=1e-6)
    np.testing.assert_allclose(rate.var_poisson[0, 0], 1965.04, rtol=1e-6)
    np.testing.assert_allclose(rate.err[0, 0], 50.327, rtol=1e-5)
    # Equal read-noise variances: the rate is the plain mean of the two integration slopes.
    np.testing.assert_allclose(rate.data[0, 0], (slope1 + slope2) / 2, rtol=1e-6)
    assert rate.dq[0, 0] == 0 and np.all(ints.dq == 0)
    opt = res.optional
    assert res.nseg_max == 1 and res.ncr_max == 0 and opt.crmag.shape == (2, 0, 1, 1)
    np.testing.assert_allclose(opt.weights[:, 0, 0, 0], 1 / 1135.578, rtol=1e-6)
    np.testing.assert_allclose(opt.pedestal[0, 0, 0], S7_RAMP1[0] - ints.data[0, 0, 0], rtol=1e-5)


@pytest.mark.parametrize("ngroups", [1, 2, 3])
def test_section7_short_ramps(ngroups):
    # NFRAMES 2, TFRAME 10 s, TGROUP 20 s, 5 DN/s, gain 2, RN_cds 10 DN → R = 10 e-.
    ramp = 75.0 + 100.0 * np.arange(ngroups)
    data, gdq, pdq, gain, rn = one_pixel([ramp])
    res = fit_ramps(data, gdq, pdq, gain, rn, nframes=2, group_time=20.0, frame_time=10.0)
    rate = res.rate
    np.testing.assert_allclose(rate.data[0, 0], 5.0, rtol=1e-6)
    expected = {
        1: (5.0 / (15.0 * 2), 12 * 100 / (6 * 15.0**2 * 4)),  # 0th group only: d0 / 15 s
        2: (0.125, 0.125),
        3: (0.0625, 0.03125),
    }[ngroups]
    np.testing.assert_allclose([rate.var_poisson[0, 0], rate.var_rnoise[0, 0]], expected,
                               rtol=1e-6)
    np.testing.assert_allclose(rate.err[0, 0], np.sqrt(sum(expected)), rtol=1e-6)


def test_jump_splits_ramp_into_two_segments():
    tg, rate_true = 10.0, 3.0
    ramp = 20.0 + rate_true * tg * np.arange(10)
    ramp[5:] += 1000.0
    flags = np.zeros(10, np.uint8)
    flags[5] = JUMP
    data, gdq, pdq, gain, rn = one_pixel([ramp], [flags], rn=4.0)
    res = fit_ramps(data, gdq, pdq, gain, rn, nframes=1, group_time=tg, frame_time=tg,
                    save_opt=True)
    m = rate_true  # jump difference excluded from the median
    # Two 5-group segments: groups 0–4, then 5–9 (the JUMP group starts the second one).
    s1, vp1, vr1, _ = expected_segment(ramp[:5], 0, 2.0, 4.0, 1, tg, m)
    s2, vp2, vr2, _ = expected_segment(ramp[5:], 5, 2.0, 4.0, 1, tg, m)
    np.testing.assert_allclose([s1, s2], rate_true, rtol=1e-6)
    np.testing.assert_allclose(res.rate.data[0, 0], rate_true, rtol=1e-6)
    np.testing.assert_allclose(res.rate.var_rnoise[0, 0], 1 / (1 / vr1 + 1 / vr2), rtol=1e-6)
    np.testing.assert_allclose(res.rate.var_poisson[0, 0], 1 / (1 / vp1 + 1 / vp2), rtol=1e-6)
    np.testing.assert_allclose(res.rateints.err[0, 0, 0],
                               np.sqrt(1 / (1 / (vp1 + vr1) + 1 / (vp2 + vr2))), rtol=1e-6)
    assert res.rate.dq[0, 0] == JUMP and res.rateints.dq[0, 0, 0] == JUMP
    opt = res.optional
    assert res.nseg_max == 2 and res.ncr_max == 1
    np.testing.assert_allclose(opt.slope[0, :, 0, 0], [s1, s2], rtol=1e-6)
    np.testing.assert_allclose(opt.var_rnoise[0, :, 0, 0], [vr1, vr2], rtol=1e-6)
    np.testing.assert_allclose(opt.yint[0, :, 0, 0], [20.0, 20.0 + 1000.0], rtol=1e-6)
    np.testing.assert_allclose(opt.crmag[0, 0, 0, 0], 1000.0 + rate_true * tg, rtol=1e-6)


def test_isolated_one_group_segments_are_pruned():
    # Good groups 0, 3, 4, 5: the lone group 0 is dropped, the 3-group segment 3–5 is fitted.
    ramp = 10.0 + 50.0 * np.arange(6)
    flags = [0, DNU, DNU, 0, 0, 0]
    data, gdq, pdq, gain, rn = one_pixel([ramp], [flags])
    res = fit_ramps(data, gdq, pdq, gain, rn, nframes=1, group_time=1.0, frame_time=1.0,
                    save_opt=True)
    assert res.nseg_max == 1
    np.testing.assert_allclose(res.rate.data[0, 0], 50.0, rtol=1e-6)
    np.testing.assert_allclose(res.optional.yint[0, 0, 0, 0], 10.0, rtol=1e-5)


def test_only_one_group_segments_keep_first_with_stcal_count():
    # Good groups 0 and 2 only: both segments have one group, the first is used (slope
    # d0/TGROUP). stcal still counts two segments, so fitopt gets two slots (the second empty).
    data, gdq, pdq, gain, rn = one_pixel([[10.0, 20.0, 30.0]], [[0, DNU, 0]])
    res = fit_ramps(data, gdq, pdq, gain, rn, nframes=1, group_time=1.0, frame_time=1.0,
                    save_opt=True)
    np.testing.assert_allclose(res.rate.data[0, 0], 10.0, rtol=1e-6)
    np.testing.assert_allclose(res.rate.var_rnoise[0, 0], 12 * 200 / (6 * 4), rtol=1e-6)
    assert res.nseg_max == 2
    np.testing.assert_array_equal(res.optional.slope[0, :, 0, 0], [10.0, 0.0])


def test_stcal_quirks_no_segment_and_large_variance():
    # Every group JUMP: no segment, but not all DNU/SAT, so stcal reports slope 0 (not NaN),
    # zero variances, and an empty fitopt segment axis.
    data, gdq, pdq, gain, rn = one_pixel([[10.0, 20.0, 30.0]], [[JUMP] * 3])
    res = fit_ramps(data, gdq, pdq, gain, rn, nframes=1, group_time=1.0, frame_time=1.0,
                    save_opt=True)
    assert res.rate.data[0, 0] == 0 and res.rate.err[0, 0] == 0 and res.rate.dq[0, 0] == JUMP
    assert res.rateints.data[0, 0, 0] == 0 and res.nseg_max == 0
    # A read-noise variance >= 1e6 (DN/s)^2 is zeroed before it scales the slope, so the slope
    # is reported as 0 while ERR keeps the Poisson part.
    data, gdq, pdq, gain, rn = one_pixel([[10.0, 20.0]], rn=20.0)
    res = fit_ramps(data, gdq, pdq, gain, rn, nframes=1, group_time=0.01, frame_time=0.01)
    assert res.rate.data[0, 0] == 0 and res.rate.var_rnoise[0, 0] == 0
    np.testing.assert_allclose(res.rate.var_poisson[0, 0], 1000.0 / (0.01 * 2), rtol=1e-6)
    np.testing.assert_allclose(res.rate.err[0, 0], np.sqrt(1000.0 / (0.01 * 2)), rtol=1e-6)


def test_saturated_from_group0_and_partial_saturation():
    ramp = 10.0 + 50.0 * np.arange(8)
    full = [SAT] * 8
    partial = [0] * 5 + [SAT] * 3
    data, gdq, pdq, gain, rn = one_pixel([ramp, ramp], [full, partial])
    res = fit_ramps(data, gdq, pdq, gain, rn, nframes=1, group_time=1.0, frame_time=1.0)
    ints = res.rateints
    assert np.isnan(ints.data[0, 0, 0]) and ints.dq[0, 0, 0] == DNU | SAT
    assert ints.var_poisson[0, 0, 0] == 0 and ints.var_rnoise[0, 0, 0] == 0
    assert ints.err[0, 0, 0] == 0
    # Partly saturated: a valid slope from the 5 good groups, flagged SAT.
    np.testing.assert_allclose(ints.data[1, 0, 0], 50.0, rtol=1e-6)
    assert ints.dq[1, 0, 0] == SAT
    np.testing.assert_allclose(res.rate.data[0, 0], 50.0, rtol=1e-6)
    assert res.rate.dq[0, 0] == SAT
    assert res.rate.err[0, 0] > 0


def test_every_integration_saturated_pixel():
    data, gdq, pdq, gain, rn = one_pixel([[1.0, 2.0, 3.0]] * 2, [[SAT] * 3] * 2)
    data = np.concatenate([data, data], axis=3)
    gdq = np.concatenate([gdq, np.zeros_like(gdq)], axis=3)
    pdq, gain, rn = (np.repeat(a, 2, axis=1) for a in (pdq, gain, rn))
    res = fit_ramps(data, gdq, pdq, gain, rn, nframes=1, group_time=1.0, frame_time=1.0)
    assert np.isnan(res.rate.data[0, 0]) and res.rate.dq[0, 0] == DNU | SAT
    assert res.rate.var_poisson[0, 0] == 0 and res.rate.err[0, 0] == 0
    np.testing.assert_allclose(res.rate.data[0, 1], 1.0, rtol=1e-6)


def test_all_saturated_exposure_returns_none():
    data, gdq, pdq, gain, rn = one_pixel([[1.0, 2.0, 3.0]] * 2, [[SAT, SAT, SAT]] * 2)
    assert fit_ramps(data, gdq, pdq, gain, rn, nframes=1, group_time=1.0, frame_time=1.0) is None
    # SAT in group 0 only counts, even where a ZEROFRAME could have rescued the ramp.
    zf = np.full((2, 1, 1), 5.0, np.float32)
    assert fit_ramps(data, gdq, pdq, gain, rn, nframes=1, group_time=1.0, frame_time=1.0,
                     zeroframe=zf, suppress_one_group=False) is None


@pytest.mark.parametrize("bad_gain", [0.0, -1.0, np.nan])
def test_bad_gain(bad_gain):
    data, gdq, pdq, gain, rn = one_pixel([[1.0, 2.0, 3.0, 4.0]], gain=bad_gain)
    res = fit_ramps(data, gdq, pdq, gain, rn, nframes=1, group_time=1.0, frame_time=1.0)
    assert np.isnan(res.rate.data[0, 0]) and np.isnan(res.rateints.data[0, 0, 0])
    assert res.rate.dq[0, 0] == DNU | NO_GAIN and res.rateints.dq[0, 0, 0] == DNU | NO_GAIN
    assert res.rate.err[0, 0] == 0 and res.rate.var_rnoise[0, 0] == 0


def test_pixeldq_do_not_use_gives_nan_and_keeps_flags():
    data, gdq, pdq, gain, rn = one_pixel([[1.0, 2.0, 3.0]], pixeldq=DNU | dqflags.pixel["HOT"])
    res = fit_ramps(data, gdq, pdq, gain, rn, nframes=1, group_time=1.0, frame_time=1.0)
    assert np.isnan(res.rate.data[0, 0])
    assert res.rate.dq[0, 0] == DNU | dqflags.pixel["HOT"]


def test_suppress_one_group_and_zeroframe():
    # Only group 0 is good; groups 1.. are saturated. NFRAMES 1, TFRAME = TGROUP = 2 s.
    ramp = [30.0, 1e5, 1e5, 1e5]
    data, gdq, pdq, gain, rn = one_pixel([ramp], [[0, SAT, SAT, SAT]])
    kw = dict(nframes=1, group_time=2.0, frame_time=2.0)
    on = fit_ramps(data, gdq, pdq, gain, rn, **kw)
    assert np.isnan(on.rate.data[0, 0]) and on.rate.dq[0, 0] == DNU | SAT
    off = fit_ramps(data, gdq, pdq, gain, rn, suppress_one_group=False, **kw)
    # 0th-group-only timing: (NFRAMES + 1)·TFRAME/2 = 2 s.
    np.testing.assert_allclose(off.rate.data[0, 0], 30.0 / 2.0, rtol=1e-6)
    assert off.rate.dq[0, 0] == SAT

    # Fully saturated ramp: the ZEROFRAME value over TFRAME, only with suppression off.
    data, gdq, pdq, gain, rn = one_pixel([ramp, ramp], [[SAT] * 4, [0] + [SAT] * 3])
    zf = np.array([12.0, 0.0], np.float32).reshape(2, 1, 1)
    off = fit_ramps(data, gdq, pdq, gain, rn, zeroframe=zf, suppress_one_group=False, **kw)
    np.testing.assert_allclose(off.rateints.data[0, 0, 0], 12.0 / 2.0, rtol=1e-6)
    assert off.rateints.dq[0, 0, 0] == SAT
    on = fit_ramps(data, gdq, pdq, gain, rn, zeroframe=zf, **kw)
    assert np.isnan(on.rateints.data[0, 0, 0]) and on.rateints.dq[0, 0, 0] == DNU | SAT


def test_firstgroup_lastgroup():
    tg = 5.0
    ramp = 7.0 + 4.0 * tg * np.arange(10)
    ramp[0] = -500.0
    ramp[9] = 9000.0
    data, gdq, pdq, gain, rn = one_pixel([ramp])
    res = fit_ramps(data, gdq, pdq, gain, rn, nframes=1, group_time=tg, frame_time=tg,
                    firstgroup=1, lastgroup=8)
    np.testing.assert_allclose(res.rate.data[0, 0], 4.0, rtol=1e-6)
    _, vp, vr, _ = expected_segment(ramp[1:9], 1, 2.0, 10.0, 1, tg, 4.0)
    np.testing.assert_allclose([res.rate.var_poisson[0, 0], res.rate.var_rnoise[0, 0]], [vp, vr],
                               rtol=1e-6)
    assert res.rate.dq[0, 0] == 0
    assert group_range(10, 1, 8) == (1, 8)
    assert group_range(10, -3, None) == (0, 9)
    assert group_range(10, 6, 2) == (0, 9)


def test_chargeloss_recomputes_read_noise_only():
    tg = 2.0
    ramp = 3.0 + 10.0 * tg * np.arange(10)
    flags = [0] * 6 + [CLOSS | DNU] * 4
    data, gdq, pdq, gain, rn = one_pixel([ramp], [flags])
    res = fit_ramps(data, gdq, pdq, gain, rn, nframes=1, group_time=tg, frame_time=tg)
    _, vp6, vr6, _ = expected_segment(ramp[:6], 0, 2.0, 10.0, 1, tg, 10.0)
    _, _, vr10, _ = expected_segment(ramp, 0, 2.0, 10.0, 1, tg, 10.0)
    np.testing.assert_allclose(res.rate.data[0, 0], 10.0, rtol=1e-6)
    np.testing.assert_allclose(res.rate.var_poisson[0, 0], vp6, rtol=1e-6)
    np.testing.assert_allclose(res.rate.var_rnoise[0, 0], vr10, rtol=1e-6)
    np.testing.assert_allclose(res.rateints.var_rnoise[0, 0, 0], vr10, rtol=1e-6)
    # ERR keeps the 6-group variances.
    np.testing.assert_allclose(res.rate.err[0, 0], np.sqrt(vp6 + vr6), rtol=1e-6)
    assert res.rate.dq[0, 0] == 0  # CHARGELOSS is not copied to the output DQ


def test_dark_current_added_to_poisson_variance():
    ramp = 10.0 * np.arange(5)
    data, gdq, pdq, gain, rn = one_pixel([ramp])
    dark = np.full((1, 1), 0.5, np.float32)
    res = fit_ramps(data, gdq, pdq, gain, rn, nframes=1, group_time=1.0, frame_time=1.0,
                    average_dark_current=dark)
    np.testing.assert_allclose(res.rate.var_poisson[0, 0], (10.0 + 0.5) / (1.0 * 2.0 * 4),
                               rtol=1e-6)


def test_persistence_flag_propagates_but_group_is_used():
    ramp = 10.0 * np.arange(5)
    data, gdq, pdq, gain, rn = one_pixel([ramp], [[0, 0, PERS, 0, 0]])
    res = fit_ramps(data, gdq, pdq, gain, rn, nframes=1, group_time=1.0, frame_time=1.0)
    _, vp, vr, _ = expected_segment(ramp, 0, 2.0, 10.0, 1, 1.0, 10.0)
    np.testing.assert_allclose(res.rate.var_rnoise[0, 0], vr, rtol=1e-6)
    assert res.rate.dq[0, 0] == PERS and res.rateints.dq[0, 0, 0] == PERS


# ------------------------------------------------------------------------------------------------
# Synthetic exposures shared by the consistency and oracle tests
# ------------------------------------------------------------------------------------------------
def make_exposure(seed, nints, ngroups, *, ny=40, nx=40, nframes=1, groupgap=0, tframe=10.737,
                  chargeloss=False, zeroframe=False, dense_flags=False):
    """Realistic ramps with jumps, saturation, DNU/persistence groups and bad pixels.

    dense_flags=True instead draws a random flag for a large fraction of groups, to stress the
    segment rules.
    """
    rng = np.random.default_rng(seed)
    tgroup = tframe * (nframes + groupgap)
    gain = rng.uniform(1.5, 2.5, (ny, nx)).astype(np.float32)
    gain[0, :3] = [0.0, np.nan, -1.0]
    rn = rng.uniform(5, 15, (ny, nx)).astype(np.float32)
    rate = np.clip(rng.lognormal(1, 1.5, (ny, nx)), 0, 3000)
    rate[rng.random((ny, nx)) < 0.05] *= -0.01
    data = np.empty((nints, ngroups, ny, nx), np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    for i in range(nints):
        lam = np.clip(rate * gain * tgroup, 0, None) * np.ones((ngroups, 1, 1))
        electrons = np.cumsum(lam + np.sqrt(lam) * rng.normal(size=lam.shape), axis=0)
        data[i] = (electrons / np.where(gain > 0, gain, 1.0)
                   + rng.normal(size=lam.shape) * rn / np.sqrt(2 * nframes))
        if dense_flags:
            choices = np.array([JUMP, DNU, SAT, PERS, JUMP | PERS, CLOSS | DNU, CLOSS,
                                dqflags.group["AD_FLOOR"], SAT | DNU], np.uint8)
            pick = choices[rng.integers(0, choices.size, (ngroups, ny, nx))]
            gdq[i] = np.where(rng.random((ngroups, ny, nx)) < 0.4, pick, 0)
            data[i][rng.random((ngroups, ny, nx)) < 0.002] = np.nan
            continue
        if ngroups > 1:
            ys, xs = rng.integers(0, ny, ny * nx // 8), rng.integers(0, nx, ny * nx // 8)
            ks = rng.integers(1, ngroups, ys.size)
            for y, x, k in zip(ys, xs, ks):
                data[i, k:, y, x] += rng.uniform(50, 3000)
                gdq[i, k, y, x] |= JUMP
        sat = np.cumsum(data[i] > 20000.0, axis=0) > 0
        ys, xs = rng.integers(0, ny, ny * nx // 20), rng.integers(0, nx, ny * nx // 20)
        for y, x, k in zip(ys, xs, rng.integers(0, ngroups, ys.size)):
            sat[k:, y, x] = True
        gdq[i][sat] |= SAT
        gdq[i][rng.random((ngroups, ny, nx)) < 0.03] |= DNU
        gdq[i][rng.random((ngroups, ny, nx)) < 0.01] |= PERS
        gdq[i][rng.random((ngroups, ny, nx)) < 0.005] |= dqflags.group["AD_FLOOR"] | DNU
        if chargeloss:
            gdq[i][rng.random((ngroups, ny, nx)) < 0.03] |= CLOSS | DNU
            gdq[i][rng.random((ngroups, ny, nx)) < 0.005] |= CLOSS
    gdq[:, :, 1, 1] |= SAT
    gdq[0, :, 1, 2] |= SAT
    gdq[:, :, 1, 3] |= DNU
    pdq = np.zeros((ny, nx), np.uint32)
    pdq[2, :4] = [dqflags.pixel["DO_NOT_USE"], dqflags.pixel["SATURATED"], dqflags.pixel["HOT"],
                  dqflags.pixel["NO_LIN_CORR"]]
    zf = None
    if zeroframe:
        zf = (data[:, 0] * 0.5).astype(np.float32)
        zf[:, ::7, ::5] = 0.0
    return dict(data=data, groupdq=gdq, pixeldq=pdq, gain=gain, readnoise=rn,
                average_dark_current=rng.uniform(0, 0.05, (ny, nx)).astype(np.float32),
                zeroframe=zf, nframes=nframes, group_time=tgroup, frame_time=tframe,
                groupgap=groupgap, drop_frames1=1)


def _assert_products_identical(a, b):
    for name in ("data", "err", "dq", "var_poisson", "var_rnoise"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_inputs_unchanged_and_thread_count_irrelevant():
    exp = make_exposure(5, 2, 6, ny=24, nx=24, chargeloss=True, dense_flags=True)
    before = {k: v.copy() for k, v in exp.items() if isinstance(v, np.ndarray)}
    saved = numba.get_num_threads()
    try:
        one = fit_ramps(**exp, save_opt=True, threads=1)
        two = fit_ramps(**exp, save_opt=True, threads=2)
    finally:
        numba.set_num_threads(saved)
    for k, v in before.items():
        np.testing.assert_array_equal(exp[k], v, err_msg=k)
    _assert_products_identical(one.rate, two.rate)
    _assert_products_identical(one.rateints, two.rateints)
    for name in SEGMENT_FIELDS + ("pedestal", "crmag"):
        np.testing.assert_array_equal(getattr(one.optional, name), getattr(two.optional, name))


@pytest.mark.parametrize("nints,ngroups,first_last,miri,lead", [
    (1, 3, None, False, 0), (1, 10, None, False, 0), (2, 6, None, False, 0),
    (1, 6, (1, 4), False, 0), (1, 8, None, True, 0), (3, 7, None, True, 0),
    (3, 7, None, False, 2), (4, 10, None, True, 3), (2, 5, None, False, 3),
    (1, 8, None, False, 2)])
@pytest.mark.parametrize("nx", [70, 2050])
def test_block_fit_of_clean_ramps_equals_the_per_pixel_fit(nints, ngroups, first_last, miri,
                                                           lead, nx):
    """Clean ramps are fitted across blocks of pixels at once, the others pixel by pixel; with
    ``save_opt`` every ramp takes the per-pixel path. The products must be the same bytes:
    rows of one block (70 columns) and of three, the last one shorter (2050 columns: 684, 684
    and 682), bad gains, DO_NOT_USE/SATURATED pixels, a dark
    current, jumps and saturation among the clean ramps; MIRI ramps whose first and last groups
    are DO_NOT_USE everywhere (stcal drops them: the clean ramps are those of the groups
    left); ``lead`` groups DO_NOT_USE at the start of every integration but the first (as
    jwst's RSCD step leaves MIRI's), except in the block's first pixels of a row and in a few
    others, with NaN in one of those groups (too few groups left after them with 5 groups)."""
    exp = make_exposure(21, nints, ngroups, ny=12, nx=nx)
    width = _ols_kernels._block_width(nx)
    assert (nx, width) in ((70, 70), (2050, 684))
    kw = {} if first_last is None else dict(firstgroup=first_last[0], lastgroup=first_last[1])
    kept = slice(None)
    if miri:
        exp["groupdq"][:, 0] |= DNU
        exp["groupdq"][:, -1] |= DNU
        kw["instrument"] = "MIRI"
        kept = slice(1, -1)
    clean = ~np.any(exp["groupdq"][:, kept], axis=(0, 1))
    if lead:
        later = slice(1 if nints > 1 else 0, None)
        exp["groupdq"][later, :lead] |= DNU
        exp["groupdq"][later, :lead, 3, :2] &= np.uint8(0xFF ^ DNU)   # first pixels of row 3
        exp["groupdq"][later, :lead, 4, width:width + 2] &= np.uint8(0xFF ^ DNU)   # of a block
        exp["groupdq"][later, :lead, 5, 30:33] &= np.uint8(0xFF ^ DNU)
        exp["data"][later, 0, 7, 40] = np.nan
    block = fit_ramps(**exp, **kw)
    per_pixel = fit_ramps(**exp, **kw, save_opt=True)
    assert clean.sum() > 100
    for a, b in ((block.rate, per_pixel.rate), (block.rateints, per_pixel.rateints)):
        for name in ("data", "err", "dq", "var_poisson", "var_rnoise"):
            np.testing.assert_array_equal(getattr(a, name).view(np.uint32),
                                          getattr(b, name).view(np.uint32), err_msg=name)


def test_streaming_api_matches_fit_ramps():
    exp = make_exposure(6, 3, 5, ny=16, nx=20, zeroframe=True)
    kw = dict(suppress_one_group=False, save_opt=True)
    whole = fit_ramps(**exp, **kw)
    data, gdq, zf = exp["data"], exp["groupdq"], exp["zeroframe"]
    fitter = OLSRampFitter(
        data.shape, exp["gain"], exp["readnoise"], exp["pixeldq"], nframes=exp["nframes"],
        group_time=exp["group_time"], frame_time=exp["frame_time"], groupgap=exp["groupgap"],
        drop_frames1=exp["drop_frames1"], average_dark_current=exp["average_dark_current"],
        has_zeroframe=True, **kw)
    for i in range(data.shape[0]):
        fitter.add_median_rate(data[i], gdq[i], zf[i])
    assert not fitter.all_saturated
    assert (fitter.nseg_max, fitter.ncr_max) == (whole.nseg_max, whole.ncr_max)
    for i in range(data.shape[0]):
        fit = fitter.fit_integration(data[i], gdq[i], zf[i])
        _assert_products_identical(fit.rateints, whole.rateints[i])
        assert isinstance(fit.optional, IntegrationOptional)
        for f, name in enumerate(SEGMENT_FIELDS):
            np.testing.assert_array_equal(fit.optional.segments[f],
                                          getattr(whole.optional, name)[i])
        np.testing.assert_array_equal(fit.optional.crmag, whole.optional.crmag[i])
    rate = fitter.finish()
    assert isinstance(rate, ImageProduct)
    _assert_products_identical(rate, whole.rate)


def _two_pass(exp, **kw):
    """The streaming (two-pass) fit of ``exp``: (rate, [rateints planes])."""
    data, gdq, zf = exp["data"], exp["groupdq"], exp["zeroframe"]
    fitter = OLSRampFitter(
        data.shape, exp["gain"], exp["readnoise"], exp["pixeldq"], nframes=exp["nframes"],
        group_time=exp["group_time"], frame_time=exp["frame_time"], groupgap=exp["groupgap"],
        drop_frames1=exp["drop_frames1"], average_dark_current=exp["average_dark_current"],
        has_zeroframe=zf is not None, **kw)
    for i in range(data.shape[0]):
        fitter.add_median_rate(data[i], gdq[i], None if zf is None else zf[i])
    planes = [fitter.fit_integration(data[i], gdq[i], None if zf is None else zf[i]).rateints
              for i in range(data.shape[0])]
    return fitter.finish(), planes


@pytest.mark.parametrize("ngroups, dense, kw", [
    (10, False, {}),
    (6, True, {}),
    (5, False, dict(suppress_one_group=False)),
    (7, False, dict(firstgroup=1, lastgroup=5)),
    (1, False, {}),
    (2, True, dict(suppress_one_group=False)),
])
def test_one_integration_single_pass_matches_two_passes(ngroups, dense, kw):
    # fit_ramps fits a one-integration exposure in a single kernel pass (median rate computed
    # across blocks of pixels, rate written directly); it must equal the two-pass fitter. Rows
    # wider than the block, mixing clean and flagged ramps, with NaN and CHARGELOSS.
    exp = make_exposure(11, 1, ngroups, ny=5, nx=150, chargeloss=True, dense_flags=dense,
                        zeroframe=True)
    exp["data"][0, :, 3, 7] = np.nan
    exp["data"][0, -1, 4, 70] = np.nan
    exp["groupdq"][0, :, 2, 64:128] = 0
    whole = fit_ramps(**exp, **kw)
    rate, planes = _two_pass(exp, **kw)
    _assert_products_identical(whole.rate, rate)
    _assert_products_identical(whole.rateints[0], planes[0])


# ------------------------------------------------------------------------------------------------
# Oracle: stcal's OLS_C fitter, driven the way jwst's RampFitStep drives it
# ------------------------------------------------------------------------------------------------
def stcal_fit(exp, *, suppress_one_group=True, firstgroup=None, lastgroup=None, save_opt=False):
    pytest.importorskip("stcal")
    pytest.importorskip("stdatamodels")
    from stcal.ramp_fitting import ramp_fit, ramp_fit_class
    from stdatamodels.jwst.datamodels import dqflags as jwst_dqflags

    data = exp["data"].copy()
    gdq = exp["groupdq"].copy()
    ngroups = data.shape[1]
    if firstgroup is not None or lastgroup is not None:
        step = pytest.importorskip("jwst.ramp_fitting.ramp_fit_step")
        step.set_groupdq(firstgroup, lastgroup, ngroups, gdq, jwst_dqflags.group)
    if ngroups == 1:
        suppress_one_group = False  # as stcal.ramp_fit.ramp_fit does
    rd = ramp_fit_class.RampData()
    orig_gdq = gdq.copy() if np.any(gdq & CLOSS) else None
    zf = exp["zeroframe"]
    rd.set_arrays(data, gdq, exp["pixeldq"].copy(), exp["average_dark_current"].copy(),
                  orig_gdq=orig_gdq, zeroframe=None if zf is None else zf.copy())
    rd.set_meta(name="NIRCAM", frame_time=exp["frame_time"], group_time=exp["group_time"],
                groupgap=exp["groupgap"], nframes=exp["nframes"],
                drop_frames1=exp["drop_frames1"])
    rd.algorithm = "OLS_C"
    rd.set_dqflags(jwst_dqflags.pixel)
    rd.start_row, rd.num_rows = 0, data.shape[2]
    rd.suppress_one_group_ramps = suppress_one_group
    return ramp_fit.ramp_fit_data(rd, save_opt, exp["readnoise"].copy(), exp["gain"].copy(),
                                  "OLS_C", "optimal", "1")


def _close(ours, ref, rtol, atol=0.0):
    """Elementwise agreement; equal values (including infinities) always agree."""
    ours = np.asarray(ours, np.float64)
    ref = np.asarray(ref, np.float64)
    with np.errstate(invalid="ignore"):
        return (ours == ref) | (np.abs(ours - ref) <= rtol * np.abs(ref) + atol)


def assert_matches(name, ours, ref, *, rtol, atol=0.0, frac=1.0):
    assert ours.shape == ref.shape, f"{name}: shape {ours.shape} != {ref.shape}"
    if ours.dtype.kind in "ui":
        np.testing.assert_array_equal(ours, ref, err_msg=name)
        return
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref), err_msg=f"{name}: NaN pattern")
    valid = ~np.isnan(ref)
    good = _close(ours[valid], ref[valid], rtol, atol)
    fraction = good.mean() if good.size else 1.0
    assert fraction >= frac, (
        f"{name}: {np.count_nonzero(~good)} of {good.size} values differ; worst "
        f"{np.max(np.abs(ours[valid][~good] - ref[valid][~good]))}")


def stcal_dq_with_nan_flagged(dq, slope):
    """stcal's DQ with the one deliberate difference of ours: DO_NOT_USE on every NaN rate
    (stcal leaves, e.g., a NaN rate whose pixel is SATURATED in PIXELDQ without it)."""
    return np.where(np.isnan(slope), dq | np.uint32(DNU), dq).astype(dq.dtype)


def compare_with_stcal(exp, **kw):
    ref_image, ref_ints, ref_opt = stcal_fit(exp, **kw)
    ours = fit_ramps(**exp, **kw)
    if ref_image is None:
        assert ours is None
        return None
    for product, ref in ((ours.rate, ref_image), (ours.rateints, ref_ints)):
        # SCI: 1e-5 relative or 1e-6 DN/s, for at least 99.99 % of the valid pixels.
        assert_matches("slope", product.data, ref["slope"], rtol=1e-5, atol=1e-6, frac=0.9999)
        assert_matches("dq", product.dq, stcal_dq_with_nan_flagged(ref["dq"], ref["slope"]), rtol=0)
        for name, key in (("err", "err"), ("var_poisson", "var_poisson"),
                          ("var_rnoise", "var_rnoise")):
            assert_matches(name, getattr(product, name), ref[key], rtol=1e-4)
    if kw.get("save_opt"):
        for name in SEGMENT_FIELDS + ("pedestal", "crmag"):
            tol = dict(rtol=1e-5, atol=1e-6, frac=0.9999) if name == "slope" else dict(rtol=1e-4)
            assert_matches("fitopt " + name, getattr(ours.optional, name), ref_opt[name], **tol)
    else:
        assert ref_opt is None and ours.optional is None
    return ours


@pytest.mark.oracle
@pytest.mark.parametrize("nints", [1, 3])
@pytest.mark.parametrize("ngroups", [2, 3, 5, 10])
def test_oracle_realistic(nints, ngroups):
    exp = make_exposure(100 * nints + ngroups, nints, ngroups)
    ours = compare_with_stcal(exp, save_opt=(ngroups % 2 == 1))
    # The cases must exercise the interesting paths.
    assert np.any(np.isnan(ours.rate.data)) and np.any(ours.rate.dq & SAT)
    assert np.any(ours.rate.dq & JUMP) and np.any(np.isfinite(ours.rate.data))


@pytest.mark.oracle
@pytest.mark.parametrize("save_opt", [False, True])
def test_oracle_nframes_groupgap(save_opt):
    exp = make_exposure(7, 2, 6, nframes=4, groupgap=2, tframe=0.2, chargeloss=True)
    compare_with_stcal(exp, save_opt=save_opt)


@pytest.mark.oracle
@pytest.mark.parametrize("ngroups", [1, 2, 5])
@pytest.mark.parametrize("suppress", [True, False])
def test_oracle_suppress_and_zeroframe(ngroups, suppress):
    exp = make_exposure(30 + ngroups, 3, ngroups, zeroframe=True)
    compare_with_stcal(exp, suppress_one_group=suppress, save_opt=True)


@pytest.mark.oracle
@pytest.mark.parametrize("ngroups", [3, 4, 7, 40])
@pytest.mark.parametrize("suppress", [True, False])
def test_oracle_dense_flags(ngroups, suppress):
    # Flags on ~40 % of the groups (CHARGELOSS included), NaN data, bad gains, ZEROFRAME.
    exp = make_exposure(50 + ngroups, 3, ngroups, ny=24, nx=24, zeroframe=True, dense_flags=True,
                        nframes=2, groupgap=1, tframe=0.1)
    compare_with_stcal(exp, suppress_one_group=suppress, save_opt=True)


@pytest.mark.oracle
@pytest.mark.parametrize("first_last", [(1, 6), (-1, 9), (4, 2), (None, 3)])
def test_oracle_firstgroup_lastgroup(first_last):
    first, last = first_last
    exp = make_exposure(60, 2, 8)
    compare_with_stcal(exp, firstgroup=first, lastgroup=last, save_opt=True)


@pytest.mark.oracle
def test_oracle_all_saturated_returns_none():
    exp = make_exposure(61, 2, 3, ny=8, nx=8)
    exp["groupdq"][:, 0] |= SAT
    assert compare_with_stcal(exp) is None


@pytest.mark.oracle
@pytest.mark.parametrize("nints", [1, 2])
def test_every_nan_rate_carries_do_not_use(nints):
    """Zero or NaN read noise (and NaN ramps) give NaN rates that stcal leaves without
    DO_NOT_USE; ours are the same numbers with DO_NOT_USE added."""
    exp = make_exposure(11, nints, 5, ny=24, nx=24)
    exp["readnoise"][3, :6] = 0.0
    exp["readnoise"][4, :6] = np.nan
    ours = compare_with_stcal(exp)
    for product in (ours.rate, ours.rateints):
        nan = np.isnan(product.data)
        assert nan[..., 3:5, :6].all()
        assert np.all(product.dq[nan] & DNU)


def _fitter(exp, **kw):
    data, zf = exp["data"], exp["zeroframe"]
    return OLSRampFitter(
        data.shape, exp["gain"], exp["readnoise"], exp["pixeldq"], nframes=exp["nframes"],
        group_time=exp["group_time"], frame_time=exp["frame_time"], groupgap=exp["groupgap"],
        drop_frames1=exp["drop_frames1"], average_dark_current=exp["average_dark_current"],
        has_zeroframe=zf is not None, **kw)


def _assert_bits_equal(a, b):
    for name in ("data", "err", "dq", "var_poisson", "var_rnoise"):
        np.testing.assert_array_equal(getattr(a, name).view(np.uint32),
                                      getattr(b, name).view(np.uint32), err_msg=name)


@pytest.mark.parametrize("run", [1, 2, 3, 7])
@pytest.mark.parametrize("case", ["dense", "zeroframe", "miri"])
def test_runs_of_integrations_match_one_at_a_time(case, run):
    # add_median_rates / fit_integrations on k integrations per call: the same bits as one
    # integration per call (the sums over integrations in the same order), runs not dividing
    # the number of integrations included
    kw = {}
    if case == "dense":
        exp = make_exposure(11, 7, 6, ny=20, nx=36, chargeloss=True, dense_flags=True)
    elif case == "zeroframe":
        exp = make_exposure(12, 7, 5, ny=20, nx=36, zeroframe=True)
        kw["suppress_one_group"] = False
    else:   # MIRI: the all-DO_NOT_USE first and last groups are cut off the fitted ramps
        exp = make_exposure(13, 7, 7, ny=20, nx=36)
        exp["groupdq"][:, 0] |= DNU
        exp["groupdq"][:, -1] |= DNU
        kw["instrument"] = "MIRI"
        kw["dnu_groups"] = np.array([True] + [False] * 5 + [True])
    rate_one, planes_one = _two_pass(exp, **kw)
    data, gdq, zf = exp["data"], exp["groupdq"], exp["zeroframe"]
    fitter = _fitter(exp, **kw)
    nints = data.shape[0]
    for i in range(0, nints, run):
        fitter.add_median_rates(data[i:i + run], gdq[i:i + run],
                                None if zf is None else zf[i:i + run])
    planes = []
    for i in range(0, nints, run):
        out = fitter.fit_integrations(data[i:i + run], gdq[i:i + run],
                                      None if zf is None else zf[i:i + run])
        assert out.data.shape == (min(run, nints - i),) + data.shape[2:]
        planes.extend(out[j] for j in range(out.data.shape[0]))
    rate = fitter.finish()
    _assert_bits_equal(rate, rate_one)
    for a, b in zip(planes, planes_one):
        _assert_bits_equal(a, b)
    # fit_ramps gives each kernel the whole exposure in one call
    whole = fit_ramps(**exp, **kw if case != "miri" else {"instrument": "MIRI"})
    _assert_bits_equal(whole.rate, rate_one)
    for i, b in enumerate(planes_one):
        _assert_bits_equal(whole.rateints[i], b)


def test_runs_of_integrations_are_checked():
    exp = make_exposure(14, 3, 4, ny=8, nx=8)
    fitter = _fitter(exp)
    data, gdq = exp["data"], exp["groupdq"]
    with pytest.raises(Ramp2SlopeError, match="run of integrations"):
        fitter.add_median_rates(data[0], gdq[0])          # 3-D: one integration, not a run
    with pytest.raises(Ramp2SlopeError, match="run of integrations"):
        fitter.add_median_rates(data[:2], gdq[:1])
    fitter.add_median_rates(data[:2], gdq[:2])
    with pytest.raises(Ramp2SlopeError, match="more often"):
        fitter.add_median_rates(data, gdq)                 # 2 + 3 > 3
    fitter.add_median_rates(data[2:], gdq[2:])
    with pytest.raises(Ramp2SlopeError, match="planes to fill"):
        fitter.fit_integrations(data[:2], gdq[:2], out=ImageProduct.empty((1, 8, 8)))
    with pytest.raises(Ramp2SlopeError, match="one by one"):
        _fitter(exp, save_opt=True).fit_integrations(data[:1], gdq[:1])


def _median_rates(exp, **kw):
    from ramp2slope.ramp_fitting.ols_fit import MedianRates

    return MedianRates(exp["data"].shape, nframes=exp["nframes"], group_time=exp["group_time"],
                       frame_time=exp["frame_time"], **kw)


@pytest.mark.parametrize("case", ["dense", "miri"])
def test_first_pass_from_blocks_of_rows(case):
    # MedianRates.add_rows: blocks of every integration's rows, in any order, from the first
    # rows of larger buffers, give the sums whole integrations give, and a fitter that takes
    # the pass over fits as one that made it itself
    kw = {}
    if case == "dense":
        exp = make_exposure(21, 4, 6, ny=23, nx=30, chargeloss=True, dense_flags=True)
    else:
        exp = make_exposure(22, 4, 7, ny=23, nx=30)
        exp["groupdq"][:, 0] |= DNU
        exp["groupdq"][:, -1] |= DNU
        kw = dict(instrument="MIRI", dnu_groups=np.array([True] + [False] * 5 + [True]))
    data, gdq = exp["data"], exp["groupdq"]
    whole = _median_rates(exp, **kw)
    whole.add(data, gdq)
    blocks = _median_rates(exp, **kw)
    assert blocks.takes_rows
    for y0, rows, room in ((10, 5, 8), (0, 4, 4), (15, 8, 8), (4, 1, 3), (5, 5, 6)):
        buf_d = np.full(data.shape[:2] + (room,) + data.shape[3:], np.nan, np.float32)
        buf_g = np.zeros(buf_d.shape, np.uint8)   # rows past the block: usable, unflagged
        buf_d[:, :, :rows] = data[:, :, y0:y0 + rows]
        buf_g[:, :, :rows] = gdq[:, :, y0:y0 + rows]
        assert not blocks.complete
        blocks.add_rows(y0, buf_d, buf_g, rows)
    assert blocks.complete
    np.testing.assert_array_equal(blocks.sums().view(np.uint64), whole.sums().view(np.uint64))
    assert blocks.any_unsat0 == whole.any_unsat0
    rate_one, planes_one = _two_pass(exp, **kw)
    fitter = _fitter(exp, median_rates=blocks, **kw)
    out = fitter.fit_integrations(data, gdq)
    _assert_bits_equal(fitter.finish(), rate_one)
    for i, b in enumerate(planes_one):
        _assert_bits_equal(out[i], b)


def test_first_pass_from_blocks_is_checked():
    exp = make_exposure(23, 2, 5, ny=10, nx=12)
    data, gdq = exp["data"], exp["groupdq"]
    median = _median_rates(exp)
    median.add_rows(0, data, gdq, 6)
    with pytest.raises(Ramp2SlopeError, match="row 5 given twice"):
        median.add_rows(5, data[:, :, 5:].copy(), gdq[:, :, 5:].copy(), 5)
    with pytest.raises(Ramp2SlopeError, match="blocks must have shape"):
        median.add_rows(8, data[:1, :, :4].copy(), gdq[:1, :, :4].copy(), 4)  # 1 integration
    with pytest.raises(Ramp2SlopeError, match="blocks must have shape"):
        median.add_rows(8, data[:, :, :4].copy(), gdq[:, :, :4].copy(), 4)    # past row 9
    with pytest.raises(Ramp2SlopeError, match="add_rows only"):
        median.add(data, gdq)
    with pytest.raises(Ramp2SlopeError, match="the median rate needs all 2"):
        median.sums()
    with pytest.raises(Ramp2SlopeError, match="other parameters"):
        _fitter(exp, median_rates=median, firstgroup=1)
    # a missing frame time (NaN in both) is the same parameter
    no_tframe = dict(exp, frame_time=None)
    _fitter(no_tframe, median_rates=_median_rates(no_tframe))
    # the pass needs whole integrations with fitopt counts or a ZEROFRAME the fit uses
    for kw in (dict(save_opt=True), dict(has_zeroframe=True, suppress_one_group=False)):
        other = _median_rates(exp, **kw)
        assert not other.takes_rows
        with pytest.raises(Ramp2SlopeError, match="needs whole integrations"):
            other.add_rows(0, data, gdq, 10)
    # MIRI: the groups cut off the ramps are checked on the blocks too
    exp["groupdq"][:, 0] |= DNU
    wrong = _median_rates(exp, instrument="MIRI", dnu_groups=np.zeros(5, bool))
    wrong.add_rows(0, data[:, :, :3].copy(), gdq[:, :, :3].copy(), 3)
    with pytest.raises(Ramp2SlopeError, match="groups to fit are"):
        wrong.add_rows(3, data[:, :, 3:].copy(), gdq[:, :, 3:].copy(), 7)


@pytest.mark.parametrize("case", ["dense", "miri", "dark"])
def test_second_pass_from_blocks_of_rows(case):
    # OLSRampFitter.fit_rows: blocks of rows in any order, each in runs of integrations (the
    # run lengths differing between blocks), give the bits whole integrations give, rateints
    # rows and rate alike
    kw = {}
    if case == "dense":
        exp = make_exposure(31, 5, 6, ny=23, nx=30, chargeloss=True, dense_flags=True)
    elif case == "miri":
        exp = make_exposure(32, 5, 7, ny=23, nx=30)
        exp["groupdq"][:, 0] |= DNU
        exp["groupdq"][:, -1] |= DNU
        kw = dict(instrument="MIRI", dnu_groups=np.array([True] + [False] * 5 + [True]))
    else:   # an average dark current, read row by row like gain and read noise
        exp = make_exposure(33, 5, 5, ny=23, nx=30)
        exp["average_dark_current"] = np.random.default_rng(3).uniform(
            0, 0.5, exp["data"].shape[2:]).astype(np.float32)
    rate_one, planes_one = _two_pass(exp, **kw)
    data, gdq = exp["data"], exp["groupdq"]
    fitter = _fitter(exp, **kw)
    fitter.add_median_rates(data, gdq)
    assert fitter.fits_rows
    planes = [ImageProduct.empty(data.shape[2:]) for _ in range(data.shape[0])]
    for y0, y1, run in ((10, 15, 2), (0, 4, 5), (15, 23, 1), (4, 10, 3)):
        for i in range(0, data.shape[0], run):
            k = min(run, data.shape[0] - i)
            out = fitter.fit_rows(y0, data[i:i + k, :, y0:y1].copy(),
                                  gdq[i:i + k, :, y0:y1].copy(),
                                  ImageProduct.empty((k, y1 - y0, data.shape[3])), start=i)
            for j in range(k):
                for name in ("data", "err", "dq", "var_poisson", "var_rnoise"):
                    getattr(planes[i + j], name)[y0:y1] = getattr(out, name)[j]
    _assert_bits_equal(fitter.finish(), rate_one)
    for a, b in zip(planes, planes_one):
        _assert_bits_equal(a, b)


def test_second_pass_from_blocks_is_checked():
    exp = make_exposure(34, 3, 5, ny=10, nx=12)
    data, gdq = exp["data"], exp["groupdq"]

    def fitter_after_pass_one(**kw):
        fitter = _fitter(exp, **kw)
        fitter.add_median_rates(data, gdq, exp["zeroframe"])
        return fitter

    def rows(y0, y1, start=0, stop=3):
        return (data[start:stop, :, y0:y1].copy(), gdq[start:stop, :, y0:y1].copy(),
                ImageProduct.empty((stop - start, y1 - y0, 12)))

    fitter = fitter_after_pass_one()
    fitter.fit_rows(0, *rows(0, 6, 0, 2), start=0)
    with pytest.raises(Ramp2SlopeError, match="row 0 of the fit: integration 0 given, 2 expected"):
        fitter.fit_rows(0, *rows(0, 6, 0, 1), start=0)    # again
    with pytest.raises(Ramp2SlopeError, match="row 6 of the fit: integration 2 given, 0 expected"):
        fitter.fit_rows(4, *rows(4, 8, 2, 3), start=2)    # rows 6, 7 skip integrations 0, 1
    with pytest.raises(Ramp2SlopeError, match="blocks must have shape"):
        fitter.fit_rows(8, *rows(0, 4), start=0)          # past row 9
    with pytest.raises(Ramp2SlopeError, match="blocks must have shape"):
        fitter.fit_rows(6, *rows(6, 10, 1, 3), start=2)   # past integration 2
    with pytest.raises(Ramp2SlopeError, match="rows to fill"):
        fitter.fit_rows(6, *rows(6, 10)[:2], ImageProduct.empty((3, 3, 12)))
    with pytest.raises(Ramp2SlopeError, match="row 0 has 2"):
        fitter.finish()
    with pytest.raises(Ramp2SlopeError, match="one kind of call"):
        fitter.fit_integrations(data, gdq)
    whole = fitter_after_pass_one()
    whole.fit_integrations(data[:1], gdq[:1])
    assert not whole.fits_rows
    with pytest.raises(Ramp2SlopeError, match="nor after fit_integration"):
        whole.fit_rows(0, *rows(0, 10, 1, 3), start=1)
    # fitopt arrays and a ZEROFRAME the fit uses come by whole integrations
    exp["zeroframe"] = data[:, 0].copy()
    for kw in (dict(save_opt=True), dict(suppress_one_group=False)):
        other = fitter_after_pass_one(**kw)
        assert not other.fits_rows
        with pytest.raises(Ramp2SlopeError, match="not with save_opt or a ZEROFRAME"):
            other.fit_rows(0, *rows(0, 10))


def test_sorting_network_sorts_every_column():
    # Every 0-1 column of up to 14 rows (the 0-1 principle: a comparator network that sorts
    # all of them sorts anything), then random columns with ties and +inf padding of up to
    # 200 rows; only the first nb columns are touched.
    for m in range(1, 15):
        columns = ((np.arange(2 ** m)[None, :] >> np.arange(m)[:, None]) & 1).astype(np.float64)
        vals = np.concatenate([columns, np.full((m, 3), -1.0)], axis=1)
        _ols_kernels._sort_columns(vals, 2 ** m)
        np.testing.assert_array_equal(vals[:, :2 ** m], np.sort(columns, axis=0))
        assert (vals[:, 2 ** m:] == -1.0).all()
    rng = np.random.default_rng(2)
    for m in (15, 19, 33, 64, 200):
        vals = np.round(rng.normal(0, 3, (m, 257)), 1)
        vals[m // 2:, :40] = np.inf
        expected = np.sort(vals, axis=0)
        _ols_kernels._sort_columns(vals, 257)
        np.testing.assert_array_equal(vals, expected)
