"""linearity: hand-computed edge cases, a physical check of the read-level path, and
comparison with stcal/jwst."""
import numpy as np
import pytest

from ramp2slope.datamodels import dqflags
from ramp2slope.linearity import correct_linearity, prepare_coefficients, use_read_level

SAT = dqflags.group["SATURATED"]
NLC = dqflags.pixel["NO_LIN_CORR"]


def _coeffs(ny, nx, *values):
    return np.array([np.full((ny, nx), v, np.float32) for v in values])


def test_polynomial_and_saturated_groups_kept():
    data = np.full((1, 3, 2, 2), 2.0, np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 2, 1, 1] = SAT
    pdq = np.zeros((2, 2), np.uint32)
    coeffs = _coeffs(2, 2, 1.0, 2.0, 0.5)  # 1 + 2x + 0.5x^2 at x=2 -> 7
    correct_linearity(data, gdq, pdq, coeffs, np.zeros((2, 2), np.uint32))
    expected = np.full(data.shape, 7.0, np.float32)
    expected[0, 2, 1, 1] = 2.0
    np.testing.assert_array_equal(data, expected)
    assert not pdq.any()


def test_bad_coefficients_give_identity_and_no_lin_corr():
    ny, nx = 2, 3
    coeffs = _coeffs(ny, nx, 1.0, 2.0, 0.5)
    coeffs[2, 0, 0] = np.nan       # NaN -> identity + NO_LIN_CORR
    coeffs[1, 0, 1] = 0.0          # c1 == 0 -> identity + NO_LIN_CORR
    lin_dq = np.zeros((ny, nx), np.uint32)
    lin_dq[0, 2] = NLC             # flagged in the reference -> identity (flag from lin_dq)
    lin_dq[1, 0] = dqflags.pixel["HOT"]  # other bits are just OR-ed
    pdq = np.zeros((ny, nx), np.uint32)
    pdq[1, 2] = 4
    data = np.full((1, 2, ny, nx), 3.0, np.float32)
    correct_linearity(data, np.zeros(data.shape, np.uint8), pdq, coeffs, lin_dq)
    np.testing.assert_array_equal(data[0, 1], [[3.0, 3.0, 3.0], [11.5, 11.5, 11.5]])
    np.testing.assert_array_equal(pdq, [[NLC, NLC, NLC], [dqflags.pixel["HOT"], 0, 4]])
    assert np.isnan(coeffs[2, 0, 0]) and coeffs[1, 0, 1] == 0  # reference not modified


def test_prepare_coefficients_returns_identity_mask():
    coeffs = _coeffs(1, 3, 0.0, 1.0, 0.1)
    coeffs[0, 0, 1] = np.nan
    pdq = np.zeros((1, 3), np.uint32)
    benign = prepare_coefficients(coeffs, np.array([[0, 0, NLC]], np.uint32), pdq)
    np.testing.assert_array_equal(benign, [[0, 1, 1]])
    np.testing.assert_array_equal(pdq, [[0, NLC, NLC]])


def test_cache_gives_the_same_correction_and_flags_every_call():
    """The prepared coefficients kept between integrations (the streamed pipeline's cache):
    each call corrects as an uncached call does and ORs the same PIXELDQ flags in, read-level
    path included."""
    rng = np.random.default_rng(4)
    ny, nx = 3, 4
    coeffs = _coeffs(ny, nx, 0.0, 1.0, 1e-5)
    coeffs[2, 0, 0] = np.nan
    inv = _coeffs(ny, nx, 0.0, 1.0, -1e-5)
    lin_dq = np.zeros((ny, nx), np.uint32)
    lin_dq[1, 1] = dqflags.pixel["HOT"]
    raw = rng.uniform(100, 3000, (1, 4, ny, nx)).astype(np.float32)
    for inv_coeffs, nframes in ((None, 1), (inv, 4)):
        cache = {}
        expected_data = raw.copy()
        expected_pdq = np.zeros((ny, nx), np.uint32)
        correct_linearity(expected_data, np.zeros(raw.shape, np.uint8), expected_pdq, coeffs,
                          lin_dq, inv_coeffs=inv_coeffs, nframes=nframes)
        for _ in range(2):
            data = raw.copy()
            pdq = np.zeros((ny, nx), np.uint32)
            correct_linearity(data, np.zeros(raw.shape, np.uint8), pdq, coeffs, lin_dq,
                              inv_coeffs=inv_coeffs, nframes=nframes, cache=cache)
            np.testing.assert_array_equal(data, expected_data)
            np.testing.assert_array_equal(pdq, expected_pdq)
        assert sorted(cache) == (["forward"] if inv_coeffs is None else ["forward", "inverse"])
        assert expected_pdq[0, 0] == NLC and expected_pdq[1, 1] == dqflags.pixel["HOT"]


def test_zeroframe_zeros_stay_zero():
    data = np.zeros((1, 1, 1, 3), np.float32)
    zeroframe = np.array([[[0.0, 2.0, -0.0]]], np.float32)
    correct_linearity(data, np.zeros(data.shape, np.uint8), np.zeros((1, 3), np.uint32),
                      _coeffs(1, 3, 1.0, 2.0, 0.5), np.zeros((1, 3), np.uint32), zeroframe=zeroframe)
    np.testing.assert_array_equal(zeroframe, [[[0.0, 7.0, 0.0]]])
    assert not np.signbit(zeroframe).any()


@pytest.mark.parametrize("inv, nframes, read_times, expected", [
    (True, 4, False, True), (True, 1, False, False), (False, 4, False, False),
    (True, 4, True, False), (True, None, False, False),
])
def test_use_read_level(inv, nframes, read_times, expected):
    assert use_read_level(inv, nframes, read_times) is expected


def test_read_level_linear_polynomials_equal_group_level():
    # forward 2x and inverse x/2: rebuilding the reads changes nothing, result is 2*d
    rng = np.random.default_rng(0)
    data = np.sort(rng.uniform(0, 1000, (1, 4, 3, 3)).astype(np.float32), axis=1)
    ours = data.copy()
    used = correct_linearity(ours, np.zeros(data.shape, np.uint8), np.zeros((3, 3), np.uint32),
                             _coeffs(3, 3, 0.0, 2.0), np.zeros((3, 3), np.uint32),
                             inv_coeffs=_coeffs(3, 3, 0.0, 0.5), nframes=4)
    assert used
    np.testing.assert_allclose(ours, 2 * data, rtol=1e-6)


def test_read_level_recovers_linear_signal_in_averaged_groups():
    # True signal: s_k = R*k at read k. The detector reads y = s - b*s^2; groups average 8 reads.
    # The forward polynomial is the series inverse of that quadratic, the inverse is the quadratic.
    # The read-level path recovers mean(s) of each group; the plain polynomial is biased by
    # about b*var(s within a group) ~ 3 DN.
    b, rate, nframes, ngroups = 1e-6, 800.0, 8, 3
    reads = rate * np.arange(1, nframes * ngroups + 1)
    measured = reads - b * reads ** 2
    groups = measured.reshape(ngroups, nframes).mean(axis=1)
    truth = reads.reshape(ngroups, nframes).mean(axis=1)
    data = np.broadcast_to(groups[None, :, None, None], (1, ngroups, 1, 2)).astype(np.float32)
    forward = _coeffs(1, 2, 0.0, 1.0, b, 2 * b ** 2, 5 * b ** 3, 14 * b ** 4, 42 * b ** 5)
    inverse = _coeffs(1, 2, 0.0, 1.0, -b)
    zeros2 = np.zeros((1, 2), np.uint32)
    read_level = data.copy()
    correct_linearity(read_level, np.zeros(data.shape, np.uint8), zeros2.copy(), forward, zeros2,
                      inv_coeffs=inverse, nframes=nframes)
    group_level = data.copy()
    correct_linearity(group_level, np.zeros(data.shape, np.uint8), zeros2.copy(), forward, zeros2,
                      nframes=nframes)
    assert np.abs(read_level[0, :, 0, 0] - truth).max() < 0.1
    assert np.abs(group_level[0, 1:, 0, 0] - truth[1:]).min() > 1.0


def test_read_level_keeps_saturated_groups_and_flags_inverse_nans():
    data = np.array([100.0, 200.0, 300.0, 400.0], np.float32).reshape(1, 4, 1, 1).repeat(2, axis=3)
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 3] = SAT
    pdq = np.zeros((1, 2), np.uint32)
    inverse = _coeffs(1, 2, 0.0, 0.5)
    inverse[1, 0, 1] = np.nan   # inverse NaN: identity inverse, and NO_LIN_CORR
    correct_linearity(data, gdq, pdq, _coeffs(1, 2, 0.0, 2.0), np.zeros((1, 2), np.uint32),
                      inv_coeffs=inverse, nframes=2)
    assert np.all(data[0, 3] == 400.0)
    np.testing.assert_allclose(data[0, :3, 0, 0], [200.0, 400.0, 600.0], rtol=1e-6)
    np.testing.assert_array_equal(pdq, [[0, NLC]])


# ---------------------------------------------------------------------------- oracle

def _random_case(seed, nints=2, ngroups=7, ny=50, nx=60):
    rng = np.random.default_rng(seed)
    data = np.sort(rng.uniform(-50, 40000, (nints, ngroups, ny, nx)).astype(np.float32), axis=1)
    gdq = np.zeros(data.shape, np.uint8)
    gdq[data > 35000] = SAT
    gdq[0, :, 4, 4] = SAT
    gdq[-1, 2, 6, 6] = dqflags.group["JUMP_DET"]
    coeffs = np.zeros((5, ny, nx), np.float32)
    coeffs[0] = rng.normal(0, 5, (ny, nx))
    coeffs[1] = 1 + rng.normal(0, 0.01, (ny, nx))
    coeffs[2] = rng.normal(2e-6, 1e-7, (ny, nx))
    coeffs[3] = rng.normal(1e-11, 1e-12, (ny, nx))
    coeffs[4] = rng.normal(1e-16, 1e-17, (ny, nx))
    coeffs[2, 1, 1] = np.nan
    coeffs[1, 2, 2] = 0.0
    inv = np.zeros((4, ny, nx), np.float32)
    inv[1] = 1 / coeffs[1, 0, 0]
    inv[2] = -coeffs[2]
    inv[3] = 2e-12
    inv[1, 3, 3] = np.nan
    inv[1, 7, 7] = 0.0
    lin_dq = np.zeros((ny, nx), np.uint32)
    lin_dq[5, 5] = NLC
    lin_dq[6, 6] = dqflags.pixel["DEAD"]
    pdq = np.zeros((ny, nx), np.uint32)
    pdq[8, 8] = 4
    zeroframe = data[:, 0] * np.float32(0.5)
    zeroframe[0, 7, 7] = 0.0
    return data, gdq, pdq, coeffs, lin_dq, inv, zeroframe


@pytest.mark.oracle
@pytest.mark.parametrize("read_level", [False, True])
def test_matches_stcal(read_level):
    pytest.importorskip("stcal")
    from stcal.linearity.linearity import linearity_correction

    data, gdq, pdq, coeffs, lin_dq, inv, zf = _random_case(3 + read_level)
    nframes = 4
    pattern = [[x + 1 + g * nframes for x in range(nframes)] for g in range(data.shape[1])]
    ref_data, ref_pdq, ref_zf = linearity_correction(
        data.copy(), gdq.copy(), pdq.copy(), coeffs.copy(), lin_dq.copy(), dqflags.pixel,
        zframe=zf.copy(), ilin_coeffs=inv.copy() if read_level else None,
        read_pattern=pattern if read_level else None)

    gdq_before = gdq.copy()
    used = correct_linearity(data, gdq, pdq, coeffs, lin_dq, zeroframe=zf,
                             inv_coeffs=inv if read_level else None, nframes=nframes)
    assert used is read_level
    np.testing.assert_array_equal(gdq, gdq_before)
    np.testing.assert_array_equal(data, ref_data)
    np.testing.assert_array_equal(pdq, ref_pdq)
    np.testing.assert_array_equal(zf, ref_zf)


@pytest.mark.oracle
@pytest.mark.parametrize("nframes", [1, 4])
def test_matches_jwst_do_correction(nframes):
    pytest.importorskip("jwst")
    from stdatamodels.jwst import datamodels as dm
    from jwst.linearity.linearity import do_correction

    data, gdq, pdq, coeffs, lin_dq, inv, zf = _random_case(40 + nframes, nints=1, ngroups=5)
    ny, nx = data.shape[-2:]

    def full(model):
        model.meta.subarray.xstart = model.meta.subarray.ystart = 1
        model.meta.subarray.xsize, model.meta.subarray.ysize = nx, ny
        return model

    model = full(dm.RampModel(data=data.copy(), groupdq=gdq.copy(), pixeldq=pdq.copy(),
                              zeroframe=zf.copy()))
    model.meta.exposure.nframes = nframes
    model.meta.exposure.ngroups = data.shape[1]
    model.meta.exposure.zero_frame = True
    lin_model = full(dm.LinearityModel(coeffs=coeffs.copy(), dq=lin_dq.copy(), inv_coeffs=inv.copy()))
    result = do_correction(model, lin_model)

    used = correct_linearity(data, gdq, pdq, coeffs, lin_dq, zeroframe=zf, inv_coeffs=inv,
                             nframes=nframes)
    assert used is (nframes > 1)
    np.testing.assert_array_equal(result.data, data)
    np.testing.assert_array_equal(result.pixeldq, pdq)
    np.testing.assert_array_equal(result.zeroframe, zf)


@pytest.mark.oracle
def test_step_with_read_times_skips_the_read_level_form_as_jwst(tmp_path):
    # explicit read times (a collated superstripe ramp): the averaged-frames pattern no longer
    # applies, so the INV_COEFFS are not used, in jwst's step and in ours
    pytest.importorskip("jwst")
    import jwst_oracle

    jwst_oracle.configure_offline_crds()
    from stdatamodels.jwst import datamodels as dm
    from jwst.linearity import LinearityStep as TheirLinearity

    from ramp2slope import datamodels
    from ramp2slope.linearity import LinearityStep

    data, gdq, pdq, coeffs, lin_dq, inv, _ = _random_case(47, nints=1, ngroups=5)
    ny, nx = data.shape[-2:]

    def meta(model):
        model.meta.instrument.name, model.meta.instrument.detector = "NIRCAM", "NRCA1"
        model.meta.subarray.name = "FULL"
        model.meta.subarray.xstart = model.meta.subarray.ystart = 1
        model.meta.subarray.xsize, model.meta.subarray.ysize = nx, ny
        return model

    ramp = meta(dm.RampModel(data=data, groupdq=gdq, pixeldq=pdq))
    ramp.meta.exposure.nframes, ramp.meta.exposure.ngroups = 4, data.shape[1]
    ramp.meta.exposure.read_times = [[4.0 * g + k for k in range(1, 5)] for g in range(5)]
    ramp_path = str(tmp_path / "x_ramp.fits")
    ramp.save(ramp_path)
    lin = meta(dm.LinearityModel(coeffs=coeffs, dq=lin_dq, inv_coeffs=inv))
    lin.meta.reftype, lin.meta.author, lin.meta.pedigree = "LINEARITY", "test", "GROUND"
    lin.meta.description, lin.meta.useafter = "test", "2020-01-01T00:00:00"
    lin_path = str(tmp_path / "linearity.fits")
    lin.save(lin_path)

    theirs = TheirLinearity.call(ramp_path, override_linearity=lin_path)
    ours = LinearityStep(override_linearity=lin_path).run(datamodels.open(ramp_path))
    np.testing.assert_array_equal(ours.data, theirs.data)
    np.testing.assert_array_equal(ours.pixeldq, theirs.pixeldq)
    # and that is the group-level correction
    group_level = data.copy()
    correct_linearity(group_level, gdq.copy(), pdq.copy(), coeffs, lin_dq, nframes=4)
    np.testing.assert_array_equal(ours.data, group_level)
