"""MIRI full-frame reference-pixel correction (the reference columns, amplifiers interleaved by
column, odd/even rows), against jwst's own algorithm bit for bit, and its MIRI specifics: the
first group is subtracted and added back, group 0 is never corrected, a missing reference column
stops all correction, subarrays are skipped, integrations are independent."""
import warnings

import numpy as np
import pytest

from ramp2slope.datamodels import dqflags
from ramp2slope.refpix.miri import correct_miri_refpix

NY, NX = 1024, 1032
DNU = dqflags.pixel["DO_NOT_USE"]
REFERENCE_PIXEL = dqflags.pixel["REFERENCE_PIXEL"]
REF_COLUMNS = [0, 1, 2, 3, NX - 4, NX - 3, NX - 2, NX - 1]


def _miri_ramp(nints, ngroups, seed):
    """A bias level, a ramp, white noise, per-group offsets of each amplifier (columns c % 4) and
    of the odd rows, a few flagged and outlying reference pixels, a NaN in the science area."""
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 5.0, (nints, ngroups, NY, NX)).astype(np.float32)
    data += np.float32(9000.0) + rng.normal(0, 20, (NY, NX)).astype(np.float32)
    data += (40.0 * np.arange(ngroups, dtype=np.float32))[None, :, None, None]
    amp = rng.normal(0.0, 30.0, (nints, ngroups, 1, 4)).astype(np.float32)
    data += np.tile(amp, (1, 1, 1, NX // 4))
    data[:, :, 1::2, :] += rng.normal(0.0, 8.0, (nints, ngroups, 1, 1)).astype(np.float32)
    pixeldq = np.zeros((NY, NX), np.uint32)
    pixeldq[:, REF_COLUMNS] |= REFERENCE_PIXEL
    flagged = rng.integers(0, NY, 60), rng.choice(REF_COLUMNS, 60)
    pixeldq[flagged] |= DNU
    data[0, 2, 100, NX - 3] = 3e4          # outliers the clipping must reject
    data[-1, 1, 7, 2] = -2e4
    data[:, -1, flagged[0][0], flagged[1][0]] = np.nan   # ignored: flagged DO_NOT_USE
    data[0, -1, 500, 500] = np.nan
    return data, pixeldq


def _jwst_model(data, pixeldq, zeroframe=None):
    from stdatamodels.jwst.datamodels import RampModel

    model = RampModel(data=data.copy(), pixeldq=pixeldq.copy(),
                      groupdq=np.zeros(data.shape, np.uint8))
    model.meta.instrument.name, model.meta.instrument.detector = "MIRI", "MIRIMAGE"
    model.meta.subarray.name = "FULL" if data.shape[-1] == NX else "SUB64"
    model.meta.subarray.xstart = model.meta.subarray.ystart = 1
    model.meta.subarray.xsize, model.meta.subarray.ysize = data.shape[-1], data.shape[-2]
    model.meta.subarray.fastaxis, model.meta.subarray.slowaxis = 1, 2
    model.meta.exposure.noutputs = 4
    model.meta.exposure.readpatt, model.meta.exposure.type = "FASTR1", "MIR_IMAGE"
    model.meta.exposure.zero_frame = zeroframe is not None
    if zeroframe is not None:
        model.zeroframe = zeroframe.copy()
    return model


def _official(data, pixeldq, odd_even_rows, zeroframe=None):
    """jwst's correct_model (its NIR-only parameters are irrelevant for MIRI)."""
    from jwst.refpix import reference_pixels as official

    model = _jwst_model(data, pixeldq, zeroframe)
    params = {"refpix_algorithm": "median", "sirs_kernel_model": None, "sigreject": 4.0,
              "gaussmooth": 1.0, "halfwidth": 30}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = official.correct_model(model, True, True, 11, 1.0, odd_even_rows, params, 3.0)
    assert status == official.REFPIX_OK
    assert np.array_equal(model.pixeldq, pixeldq)
    return model


def _assert_identical(ours, theirs):
    assert ours.dtype == theirs.dtype == np.float32
    assert np.array_equal(ours, theirs, equal_nan=True)


# ------------------------------------------------------------------------------------------
# Without jwst
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("odd_even_rows", [True, False])
def test_exact_offsets_are_removed_and_group0_kept(odd_even_rows):
    """Offsets of each amplifier (and row parity), relative to the first group, are removed
    exactly when the reference columns see them alone; the first group is left as it was."""
    ngroups = 4
    first = np.random.default_rng(1).integers(0, 2000, (NY, NX)).astype(np.float32)
    ramp = first + (3.0 * np.arange(ngroups, dtype=np.float32))[:, None, None]
    offsets = np.zeros((ngroups, 2, 4), np.float32)
    offsets[1:] = np.arange(1, ngroups)[:, None, None] * np.array([[1, 2, 4, 8], [16, 32, 64, 128]])
    if not odd_even_rows:
        offsets[:, 1] = offsets[:, 0]
    signal = offsets[:, np.arange(NY) % 2][:, :, np.arange(NX) % 4]
    data = (ramp + signal)[None]
    # the reference columns hold the bias and the offsets only
    data[0][:, :, REF_COLUMNS] = first[:, REF_COLUMNS] + signal[:, :, REF_COLUMNS]
    expected = ramp.copy()
    expected[:, :, REF_COLUMNS] = first[:, REF_COLUMNS]
    assert correct_miri_refpix(data, np.zeros((NY, NX), np.uint32), odd_even_rows=odd_even_rows)
    assert np.array_equal(data[0], expected)


def test_one_integration_at_a_time_equals_the_whole_exposure():
    data, pixeldq = _miri_ramp(3, 4, seed=5)
    whole = data.copy()
    correct_miri_refpix(whole, pixeldq)
    for i in range(data.shape[0]):
        part = data[i:i + 1].copy()
        correct_miri_refpix(part, pixeldq)
        _assert_identical(part[0], whole[i])


# ------------------------------------------------------------------------------------------
# Oracle: jwst 3.0.0's MIRIDataset
# ------------------------------------------------------------------------------------------
@pytest.mark.oracle
@pytest.mark.parametrize("odd_even_rows", [True, False])
def test_matches_jwst_bit_for_bit(odd_even_rows):
    pytest.importorskip("jwst")
    data, pixeldq = _miri_ramp(2, 5, seed=11)
    theirs = _official(data, pixeldq, odd_even_rows)
    ours = data.copy()
    assert correct_miri_refpix(ours, pixeldq, odd_even_rows=odd_even_rows)
    _assert_identical(ours, theirs.data)
    # it did something: the amplifier offsets (tens of DN) are gone from the group differences
    diff = (ours[:, 1:] - ours[:, :1])[:, :, 10:-10:2, 8:-8]
    per_amp = np.nanmean(diff.reshape(2, 4, -1, (NX - 16) // 4, 4), axis=(2, 3))
    assert np.ptp(per_amp, axis=-1).max() < 1.0
    assert np.nanmax(np.abs(ours - data)) > 20


@pytest.mark.oracle
def test_edge_cases_match_jwst():
    """Reference columns with zero spread (the official mean is then float64), an unusable NaN
    reference pixel (its amplifier turns NaN in that group), an infinite first read, values
    the float32 round trip through the first group changes, and a ZEROFRAME."""
    pytest.importorskip("jwst")
    data, pixeldq = _miri_ramp(2, 4, seed=12)
    # column 2 (left, amplifier C) steps by exact amounts: the relative values are constant
    data[:, :, :, 2] = (1000.0 + 3.0 * np.arange(4, dtype=np.float32))[None, :, None]
    pixeldq[:, 2] &= ~np.uint32(DNU)
    data[1, 2, 33, NX - 1] = np.nan            # usable: amplifier D's odd rows go NaN
    data[0, 0, 200, 300] = np.inf              # infinite first group: NaN throughout
    data[1, 1, 201, 301] = 1e-6                # lost in (x - 9000) + 9000
    data[1, :, 202, 302] = [3e38, -3e38, 3e38, 1.0]
    zeroframe = data[:, 0].copy()
    zeroframe[0, :5, :5] = 0.0
    zeroframe[1, 10, 10] = -np.inf
    theirs = _official(data, pixeldq, True, zeroframe)
    ours, ours_zero = data.copy(), zeroframe.copy()
    correct_miri_refpix(ours, pixeldq, odd_even_rows=True, zeroframe=ours_zero)
    _assert_identical(ours, theirs.data)
    _assert_identical(ours_zero, theirs.zeroframe)
    assert np.isnan(ours[1, 2, 1::2, 3::4]).all() and not np.isnan(ours[1, 2, 0::2, 3::4]).any()
    assert ours[1, 1, 201, 301] != data[1, 1, 201, 301]
    assert np.isnan(ours[0, :, 200, 300]).all()


@pytest.mark.oracle
@pytest.mark.parametrize("odd_even_rows", [True, False])
def test_a_reference_column_without_usable_pixels(odd_even_rows):
    """Every odd row of column 1029 (right, amplifier B) unusable: with odd/even rows the
    official step then corrects nothing at all (only the round trip through the first group)
    and still reports COMPLETE; pooling all rows it corrects as usual."""
    pytest.importorskip("jwst")
    data, pixeldq = _miri_ramp(2, 3, seed=13)
    pixeldq[1::2, NX - 3] |= DNU
    theirs = _official(data, pixeldq, odd_even_rows)
    ours = data.copy()
    assert correct_miri_refpix(ours, pixeldq, odd_even_rows=odd_even_rows) == (not odd_even_rows)
    _assert_identical(ours, theirs.data)
    round_trip = (data - data[:, :1]) + data[:, :1]
    assert np.array_equal(ours, round_trip, equal_nan=True) == odd_even_rows


@pytest.mark.oracle
def test_steps_full_frame_corrected_and_subarray_skipped():
    pytest.importorskip("jwst")
    from jwst.refpix import RefPixStep as TheirStep

    from ramp2slope import datamodels
    from ramp2slope.refpix import RefPixStep

    full, pixeldq = _miri_ramp(1, 3, seed=14)
    sub = full[:, :, :64, :72].copy()
    for data, status in ((full, "COMPLETE"), (sub, "SKIPPED")):
        ours = datamodels.RampModel(data.copy())
        ours.pixeldq = pixeldq[:data.shape[-2], :data.shape[-1]].copy()
        ours.meta.instrument.name, ours.meta.instrument.detector = "MIRI", "MIRIMAGE"
        ours.meta.subarray.name = "FULL" if data.shape[-1] == NX else "SUB64"
        ours.meta.subarray.xstart = ours.meta.subarray.ystart = 1
        ours.meta.subarray.xsize, ours.meta.subarray.ysize = data.shape[-1], data.shape[-2]
        ours.meta.subarray.fastaxis, ours.meta.subarray.slowaxis = 1, 2
        ours.meta.exposure.noutputs = 4
        theirs = _jwst_model(data, ours.pixeldq)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            official = TheirStep.call(theirs, override_refpix="N/A", override_sirskernel="N/A",
                                      refpix_algorithm="sirs")
        result = RefPixStep(refpix_algorithm="sirs").run(ours)
        assert result.meta.cal_step.refpix == official.meta.cal_step.refpix == status
        _assert_identical(result.data, official.data)
        assert np.array_equal(result.pixeldq, official.pixeldq)
        assert np.array_equal(result.data, data) == (status == "SKIPPED")
