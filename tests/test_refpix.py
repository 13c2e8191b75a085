"""Reference-pixel correction: unit tests, oracle comparisons and the 1/f evidence test."""
import warnings

import numpy as np
import pytest

from ramp2slope.datamodels import dqflags
from ramp2slope.errors import Ramp2SlopeError
from ramp2slope.refpix import (
    combine_sides,
    correct_refpix,
    detector_to_dms,
    detector_to_dms_index,
    dms_to_detector,
    dms_to_detector_index,
    make_sirs_kernels,
    reflect_pad_rows,
    running_median,
    sigma_clip_values,
    sigma_clipped_mean,
    sirs_coefficients,
)

DNU = dqflags.pixel["DO_NOT_USE"]
REF = dqflags.pixel["REFERENCE_PIXEL"]
N = 2048
AXES = [(1, 2), (-1, 2), (1, -2), (-1, -2), (2, 1), (-2, 1), (2, -1), (-2, -1)]


# ------------------------------------------------------------------------------------------
# Sigma clipping
# ------------------------------------------------------------------------------------------
def test_sigma_clip_hand_computed():
    values = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    # pass 1: mean 22, std 39.0 -> limits 22 -+ 58.5 -> 100 goes
    # pass 2: mean 2.5, std 1.118 -> limits [0.823, 4.177] -> nothing goes
    kept, lower, upper = sigma_clip_values(values, 1.5, 1.5)
    assert kept.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert lower == pytest.approx(2.5 - 1.5 * np.sqrt(1.25))
    assert upper == pytest.approx(2.5 + 1.5 * np.sqrt(1.25))
    assert sigma_clipped_mean(values, 1.5) == pytest.approx(2.5)


def test_sigma_clipped_mean_special_cases():
    assert sigma_clipped_mean(np.array([], dtype=np.float32), 3.0) is None
    # zero spread: plain float64 mean
    same = sigma_clipped_mean(np.full(7, 3.25, dtype=np.float32), 3.0)
    assert same == 3.25 and isinstance(same, np.float64)
    # otherwise the result keeps the float32 precision of the data
    assert isinstance(sigma_clipped_mean(np.array([1, 2, 4], dtype=np.float32), 3.0), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(sigma_clipped_mean(np.array([1.0, np.nan, 2.0], np.float32), 3.0))


@pytest.mark.parametrize("size", [5, 100, 1024, 3000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigma_clip_matches_scipy_bitwise(size, dtype):
    from scipy import stats

    rng = np.random.default_rng(size)
    for trial in range(20):
        values = rng.normal(1000.0, 7.0, size).astype(dtype)
        values[rng.random(size) < 0.03] += rng.normal(0, 60.0, 1).astype(dtype)
        limit = [2.0, 3.0, 1.3][trial % 3]
        ours = sigma_clip_values(values, limit, limit)
        ref = stats.sigmaclip(values, limit, limit)
        assert np.array_equal(ours[0], ref[0])
        assert ours[1] == ref[1] and ours[2] == ref[2]
        assert ours[0].dtype == ref[0].dtype


def _official_clipped_mean(values, siglimit):
    """What the official step computes: scipy's sigmaclip, then the mean of what is kept; the
    float64 mean when the float64 standard deviation is 0; None for no values."""
    from scipy import stats

    if values.size == 0:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        if np.std(values, dtype=np.float64) != 0.0:
            kept = stats.sigmaclip(values, siglimit, siglimit)[0]
            return kept.mean() if kept.size else values.dtype.type(np.nan)
        return values.mean(dtype=np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigma_clipped_mean_kernel_is_bitwise_the_official_arithmetic(dtype):
    """The compiled clipped mean against scipy's sigmaclip and numpy's mean, value and type:
    every length up to 300 (the pairwise summation's blocks of 8 and 128 and their splits),
    longer lists, outliers, many ties (values land exactly on a clip limit), special cases."""
    rng = np.random.default_rng(17)
    cases = []
    for n in list(range(1, 300)) + [511, 1024, 1031, 4096, 4100]:
        values = rng.normal(1000.0, 7.0, n).astype(dtype)
        cases.append((values, 3.0))
        outliers = values.copy()
        outliers[rng.random(n) < 0.05] += dtype(rng.normal(0, 80.0))
        cases.append((outliers, 2.0))
        cases.append((np.round(values).astype(dtype), 1.3))
    on_limit = 0
    for _ in range(3000):
        values = rng.integers(0, 6, rng.integers(3, 12)).astype(dtype)
        limit = float(rng.choice([1.0, 1.5, 2.0]))
        centre, spread = values.mean(), values.std()
        on_limit += bool(spread) and bool(np.any((values == centre - spread * limit)
                                                 | (values == centre + spread * limit)))
        cases.append((values, limit))
    assert on_limit > 20   # first passes with a value exactly on a limit (about 40 of 3000)
    for special in ([3.25] * 7, [0.1] * 3, [0.1] * 7, [1, np.nan, 2], [np.inf] * 3,
                    [1, np.inf, 2], [-0.0, 0.0], [5.0], [1, 2], [np.nan]):
        cases.append((np.array(special, dtype), 3.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for values, limit in cases:
            ours = sigma_clipped_mean(values, limit)
            official = _official_clipped_mean(values, limit)
            assert type(ours) is type(official), (values, limit)
            assert ours == official or (np.isnan(ours) and np.isnan(official)), (values, limit)
    assert sigma_clipped_mean(np.array([], dtype), 3.0) is None


# ------------------------------------------------------------------------------------------
# Running median of the side strips
# ------------------------------------------------------------------------------------------
def test_reflect_padding_does_not_repeat_end_rows():
    strip = np.arange(10)[:, None] * np.ones((1, 4))
    padded = reflect_pad_rows(strip, 5)
    assert padded[:, 0].tolist() == [2, 1] + list(range(10)) + [8, 7]
    # an even length is made odd: 4 -> 5
    assert np.array_equal(reflect_pad_rows(strip, 4), padded)
    assert reflect_pad_rows(strip, 11)[:, 0].tolist() == \
        [5, 4, 3, 2, 1] + list(range(10)) + [8, 7, 6, 5, 4]
    for bad in (-3, 0, 1):
        with pytest.raises(Ramp2SlopeError):
            reflect_pad_rows(strip, bad)


@pytest.mark.parametrize("length", [4, 5, 11])
@pytest.mark.parametrize("single", [True, False])
def test_running_median_matches_numpy(length, single):
    rng = np.random.default_rng(length)
    nrows = 60
    values = rng.normal(0.0, 5.0, (nrows, 4))
    values = values.astype(np.float32).astype(np.float64) if single else values
    good = rng.random((nrows, 4)) > 0.2
    good[20:35] = False  # a gap longer than the window: some rows have no usable pixel
    result = running_median(values, good, length, single_precision=single)
    pvals = reflect_pad_rows(values.astype(np.float32) if single else values, length)
    pgood = reflect_pad_rows(good, length)
    # The padding is that of an odd length (L+1 for even L) but every window has L rows:
    # for L = 4 the window of row r is rows r-2 .. r+1.
    for row in range(nrows):
        window = pvals[row:row + length][pgood[row:row + length]]
        if window.size == 0:
            assert np.isnan(result[row])
        else:
            assert result[row] == np.median(window)  # bit for bit, numpy's own median
    assert np.isnan(result).sum() > 0


def test_combine_sides():
    left = np.array([1.0, np.nan, 3.0, np.nan])
    right = np.array([2.0, 5.0, np.nan, np.nan])
    assert combine_sides(left, right).tolist() == [1.5, 5.0, 3.0, 0.0]


# ------------------------------------------------------------------------------------------
# Orientation
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fast,slow", AXES)
def test_orientation_round_trip_and_index_maps(fast, slow):
    size = 6
    dms = np.arange(size * size).reshape(size, size)
    det = dms_to_detector(dms, fast, slow)
    assert np.array_equal(detector_to_dms(det, fast, slow), dms)
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    y, x = detector_to_dms_index(rows, cols, fast, slow, size)
    assert np.array_equal(det, dms[y, x])
    r2, c2 = dms_to_detector_index(y, x, fast, slow, size)
    assert np.array_equal(r2, rows) and np.array_equal(c2, cols)
    # 4-D arrays transform on their last two axes
    ramp = np.broadcast_to(dms, (2, 3, size, size))
    assert np.array_equal(dms_to_detector(ramp, fast, slow)[1, 2], det)


def test_orientation_known_mapping():
    size = 5
    last = size - 1
    dms = np.arange(size * size).reshape(size, size)
    # NIRCam-like: fast along -x: detector (r, c) = DMS (r, last - c)
    det = dms_to_detector(dms, -1, 2)
    assert det[1, 0] == dms[1, last] and det[0, 3] == dms[0, last - 3]
    # NIRISS-like FASTAXIS=-2, SLOWAXIS=-1: detector (r, c) = DMS (last - c, last - r)
    det = dms_to_detector(dms, -2, -1)
    assert det[0, 0] == dms[last, last]
    assert det[1, 3] == dms[last - 3, last - 1]
    # FASTAXIS=2, SLOWAXIS=1: a plain transpose
    assert np.array_equal(dms_to_detector(dms, 2, 1), dms.T)
    for bad in [(1, 1), (2, 2), (0, 1), (3, 1), (None, 2)]:
        with pytest.raises(Ramp2SlopeError):
            dms_to_detector(dms, *bad)


# ------------------------------------------------------------------------------------------
# Hand-computed corrections
# ------------------------------------------------------------------------------------------
def _border_dq(ny=N, nx=N, y0=0, x0=0):
    """MASK-like PIXELDQ: REFERENCE_PIXEL on the detector's outer 4-pixel border, cut out."""
    full = np.zeros((N, N), np.uint32)
    full[:4] = full[-4:] = REF
    full[:, :4] = full[:, -4:] = REF
    return full[y0:y0 + ny, x0:x0 + nx].copy()


@pytest.mark.parametrize("xstart", [1889, 1888])
@pytest.mark.parametrize("fastaxis", [1, -1])
def test_noutputs1_parity_uses_full_frame_detector_columns(xstart, fastaxis):
    """A 160x160 subarray: parity of the *detector* column decides the offset."""
    ny = nx = 160
    y0, x0 = 0, xstart - 1
    slowaxis = 2
    xs = np.arange(nx) + x0
    det_col = xs if fastaxis > 0 else N - 1 - xs
    pattern = np.where(det_col % 2 == 0, 10.0, 17.0).astype(np.float32)
    data = np.broadcast_to(pattern, (1, 2, ny, nx)).copy()
    pixeldq = _border_dq(ny, nx, y0, x0)
    assert pixeldq[0, 0] == REF
    status = correct_refpix(data, pixeldq, fastaxis=fastaxis, slowaxis=slowaxis, xstart=xstart,
                            ystart=1, noutputs=1)
    assert status == "COMPLETE"
    assert np.array_equal(data, np.zeros_like(data))
    # without odd_even_columns the single (unclipped: two values only) mean of the reference
    # pixels is removed from every column
    refs = np.broadcast_to(pattern, (ny, nx))[pixeldq == REF]
    n_even = np.count_nonzero(refs == 10.0)
    n_odd = np.count_nonzero(refs == 17.0)
    assert n_even > 0 and n_odd > 0 and n_even + n_odd == refs.size
    mean = (10.0 * n_even + 17.0 * n_odd) / (n_even + n_odd)
    data = np.broadcast_to(pattern, (1, 1, ny, nx)).copy()
    correct_refpix(data, pixeldq, fastaxis=fastaxis, slowaxis=slowaxis, xstart=xstart,
                   ystart=1, noutputs=1, odd_even_columns=False)
    assert np.allclose(data[0, 0], pattern - mean, atol=1e-5)


def test_noutputs1_without_reference_pixels_changes_nothing():
    data = np.ones((1, 2, 64, 64), np.float32)
    before = data.copy()
    status = correct_refpix(data, np.zeros((64, 64), np.uint32), fastaxis=-1, slowaxis=2,
                            xstart=500, ystart=500, noutputs=1)
    assert status == "COMPLETE" and np.array_equal(data, before)


def test_full_frame_amplifier_and_parity_offsets_removed_exactly():
    """Offsets per amplifier and column parity (detector frame) are removed exactly."""
    fast, slow = -2, -1
    det = np.zeros((N, N), np.float32)
    for amp in range(4):
        det[:, amp * 512:(amp + 1) * 512:2] = 100 + 10 * amp
        det[:, amp * 512 + 1:(amp + 1) * 512:2] = 103 + 10 * amp
    data = np.broadcast_to(detector_to_dms(det, fast, slow), (1, 2, N, N)).copy()
    for side in (True, False):
        work = data.copy()
        correct_refpix(work, _border_dq(), fastaxis=fast, slowaxis=slow,
                       use_side_ref_pixels=side)
        assert np.array_equal(work, np.zeros_like(work))


def test_subarray_off_the_detector_is_skipped():
    data = np.ones((1, 1, 100, 100), np.float32)
    status = correct_refpix(data, np.zeros((100, 100), np.uint32), fastaxis=-1, slowaxis=2,
                            xstart=2000, ystart=1, noutputs=1)
    assert status == "SKIPPED" and np.all(data == 1)


def test_unsupported_modes_raise():
    with pytest.raises(Ramp2SlopeError, match="IRS2"):
        correct_refpix(np.zeros((1, 1, 3200, 2048), np.float32),
                       np.zeros((3200, 2048), np.uint32), fastaxis=2, slowaxis=1)
    kernels = make_sirs_kernels(np.ones((4, 5)), np.ones((4, 5)), 1.0, 3)
    with pytest.raises(Ramp2SlopeError, match="SIRS"):
        correct_refpix(np.zeros((1, 1, 64, 2048), np.float32), np.zeros((64, 2048), np.uint32),
                       fastaxis=-1, slowaxis=2, noutputs=4, sirs_kernels=kernels)
    with pytest.raises(Ramp2SlopeError):
        correct_refpix(np.zeros((1, 1, 64, 64)), np.zeros((64, 64), np.uint32), fastaxis=-1,
                       slowaxis=2, xstart=1, ystart=1)


def test_sirs_coefficients_and_kernels():
    gamma = np.ones((4, 65), complex)  # flat spectrum: a unit delta function at the centre
    zeta = gamma * 2
    tree = {"meta": {"author": "x"}, "nrcb1": {"gamma": gamma, "zeta": zeta}}
    found = sirs_coefficients(tree, "NRCB1")
    assert np.array_equal(found[0], gamma) and np.array_equal(found[1], zeta)
    assert sirs_coefficients(tree, "NRCA1") == (None, None)
    left, right = make_sirs_kernels(gamma, zeta, gaussmooth=1.0, halfwidth=5)
    assert len(left) == len(right) == 4
    assert left[0].shape == (11,)
    # the Gaussian taper (normalised to unit sum) spreads the delta but keeps its sum
    assert left[0].sum() == pytest.approx(1.0, rel=1e-6)
    assert right[0].sum() == pytest.approx(2.0, rel=1e-6)
    assert np.argmax(left[0]) == 5


# ------------------------------------------------------------------------------------------
# Synthetic exposures (built in the detector frame, stored in the DMS frame)
# ------------------------------------------------------------------------------------------
def _synthetic(nints, ngroups, fast, slow, seed, white=6.0, one_over_f=8.0, fmax=None):
    """Ramp with amplifier and odd/even offsets, 1/f row noise (readout order) and DNU refs.

    Returns (data_dms, pixeldq_dms, row_offsets[nints, ngroups, N]) in the full frame.
    """
    rng = np.random.default_rng(seed)
    amp_offsets = rng.normal(0.0, 40.0, (4, 2))
    col_offsets = np.empty(N)
    for amp in range(4):
        col_offsets[amp * 512:(amp + 1) * 512:2] = amp_offsets[amp, 0]
        col_offsets[amp * 512 + 1:(amp + 1) * 512:2] = amp_offsets[amp, 1]
    data = np.empty((nints, ngroups, N, N), np.float32)
    rows_truth = np.empty((nints, ngroups, N))
    for i in range(nints):
        for g in range(ngroups):
            rows_truth[i, g] = _one_over_f(rng, N, one_over_f, fmax)
            det = rng.normal(0.0, white, (N, N))
            det += col_offsets[None, :] + rows_truth[i, g][:, None] + 25.0 * g
            data[i, g] = detector_to_dms(det, fast, slow)
    det_dq = np.zeros((N, N), np.uint32)
    det_dq[:4] = det_dq[-4:] = REF
    det_dq[:, :4] = det_dq[:, -4:] = REF
    border = det_dq == REF
    bad = border & (rng.random((N, N)) < 0.02)
    det_dq[bad] |= DNU
    det_dq[rng.random((N, N)) < 0.002] |= DNU
    # A block of bad side pixels longer than the smoothing window on one side only
    det_dq[900:930, :4] |= DNU
    pixeldq = np.ascontiguousarray(detector_to_dms(det_dq, fast, slow))
    return data, pixeldq, rows_truth


def _one_over_f(rng, n, rms, fmax=None):
    """A 1/f (pink) noise sequence of length n with the given rms, optionally band-limited to
    frequencies below ``fmax`` (cycles per row)."""
    spectrum = rng.normal(size=n // 2 + 1) + 1j * rng.normal(size=n // 2 + 1)
    freq = np.fft.rfftfreq(n)
    freq[0] = freq[1]
    spectrum /= np.sqrt(freq)
    if fmax is not None:
        spectrum[freq > fmax] = 0.0
    series = np.fft.irfft(spectrum, n)
    return rms * (series - series.mean()) / series.std()


# ------------------------------------------------------------------------------------------
# Oracle comparisons with jwst's own algorithm
# ------------------------------------------------------------------------------------------
def _jwst_model(data, pixeldq, fast, slow, xstart=1, ystart=1, noutputs=4, zeroframe=None,
                detector="NRCA1", instrument="NIRCAM", name="FULL"):
    from stdatamodels.jwst.datamodels import RampModel

    model = RampModel(data=data.copy(), pixeldq=pixeldq.copy(),
                      groupdq=np.zeros(data.shape, np.uint8))
    model.meta.instrument.name = instrument
    model.meta.instrument.detector = detector
    model.meta.subarray.name = name
    model.meta.subarray.xstart = xstart
    model.meta.subarray.ystart = ystart
    model.meta.subarray.xsize = data.shape[-1]
    model.meta.subarray.ysize = data.shape[-2]
    model.meta.subarray.fastaxis = fast
    model.meta.subarray.slowaxis = slow
    model.meta.exposure.noutputs = noutputs
    model.meta.exposure.zero_frame = zeroframe is not None
    if zeroframe is not None:
        model.zeroframe = zeroframe.copy()
    return model


def _run_both(data, pixeldq, fast, slow, *, xstart=1, ystart=1, noutputs=4, zeroframe=None,
              odd_even_columns=True, use_side=True, length=11, gain=1.0, sirs=None, **meta):
    from jwst.refpix import reference_pixels as official

    model = _jwst_model(data, pixeldq, fast, slow, xstart, ystart, noutputs, zeroframe, **meta)
    params = {"refpix_algorithm": "median", "sirs_kernel_model": None, "sigreject": 4.0,
              "gaussmooth": 1.0, "halfwidth": 30}
    if sirs is not None:
        from stdatamodels.jwst.datamodels import SIRSKernelModel

        params.update(refpix_algorithm="sirs", sirs_kernel_model=SIRSKernelModel(
            {meta.get("detector", "NRCA1").lower(): {"gamma": sirs[0], "zeta": sirs[1]}}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = official.correct_model(model, odd_even_columns, use_side, length, gain, False,
                                        params, 3.0)
    ours = data.copy()
    ours_zero = None if zeroframe is None else zeroframe.copy()
    kernels = None if sirs is None else make_sirs_kernels(sirs[0], sirs[1], 1.0, 30)
    our_status = correct_refpix(ours, pixeldq, fastaxis=fast, slowaxis=slow, xstart=xstart,
                                ystart=ystart, noutputs=noutputs,
                                odd_even_columns=odd_even_columns, use_side_ref_pixels=use_side,
                                side_smoothing_length=length, side_gain=gain,
                                zeroframe=ours_zero, subarray_name=meta.get("name"),
                                sirs_kernels=kernels)
    assert (status == official.REFPIX_OK) == (our_status == "COMPLETE")
    assert np.abs(ours - model.data).max() <= 1e-3
    assert np.array_equal(model.pixeldq, pixeldq)
    assert np.array_equal(model.groupdq, np.zeros(data.shape, np.uint8))
    if zeroframe is not None:
        assert np.abs(ours_zero - model.zeroframe).max() <= 1e-3
        assert np.all(ours_zero[zeroframe == 0] == 0)
    return ours, model


FULL_FRAME_CASES = [
    # fast, slow, odd_even_columns, use_side, nints, ngroups, side_smoothing_length, side_gain
    (-1, 2, True, True, 2, 2, 11, 1.0),
    (-1, 2, True, False, 1, 2, 11, 1.0),
    (1, -2, False, True, 1, 2, 10, 0.7),
    (-2, -1, True, True, 1, 3, 11, 1.0),
    (2, 1, False, False, 1, 2, 11, 1.0),
]


@pytest.mark.oracle
@pytest.mark.parametrize("fast,slow,odd_even,side,nints,ngroups,length,gain", FULL_FRAME_CASES)
def test_full_frame_matches_jwst(fast, slow, odd_even, side, nints, ngroups, length, gain):
    pytest.importorskip("jwst")
    data, pixeldq, _ = _synthetic(nints, ngroups, fast, slow, seed=ngroups + 7 * nints)
    zeroframe = None
    if nints == 2:
        zeroframe = (data[:, 0] * 0.5).copy()
        zeroframe[:, 100:140, 200:260] = 0.0  # missing zero-frame values stay 0
    detector, instrument = ("NIS", "NIRISS") if abs(fast) == 2 else ("NRCA1", "NIRCAM")
    ours, _ = _run_both(data, pixeldq, fast, slow, odd_even_columns=odd_even, use_side=side,
                        length=length, gain=gain, zeroframe=zeroframe, detector=detector,
                        instrument=instrument)
    assert np.abs(ours - data).max() > 10.0  # the correction did something


@pytest.mark.oracle
@pytest.mark.parametrize("xstart,fast,slow,odd_even", [
    (1889, -1, 2, True), (1888, -1, 2, True), (1889, 1, 2, False), (1, -2, -1, True)])
def test_noutputs1_subarray_matches_jwst(xstart, fast, slow, odd_even):
    pytest.importorskip("jwst")
    data, pixeldq, _ = _synthetic(1, 2, fast, slow, seed=xstart)
    y0, x0 = 0, xstart - 1
    sub = np.ascontiguousarray(data[:, :, y0:y0 + 160, x0:x0 + 160])
    subdq = np.ascontiguousarray(pixeldq[y0:y0 + 160, x0:x0 + 160])
    zeroframe = np.ascontiguousarray(sub[:, 0] * 0.25)
    zeroframe[:, :5, :7] = 0.0
    detector, instrument = ("NIS", "NIRISS") if abs(fast) == 2 else ("NRCA1", "NIRCAM")
    name = "SUB80" if instrument == "NIRISS" else "SUB160"
    for side in (True, False):  # the side pixels are not used with one output
        ours, _ = _run_both(sub, subdq, fast, slow, xstart=xstart, ystart=1, noutputs=1,
                            odd_even_columns=odd_even, use_side=side, zeroframe=zeroframe,
                            detector=detector, instrument=instrument, name=name)
        assert np.abs(ours - sub).max() > 10.0


@pytest.mark.oracle
@pytest.mark.parametrize("odd_even,side", [(True, True), (False, True), (True, False)])
def test_four_output_subarray_matches_jwst(odd_even, side):
    pytest.importorskip("jwst")
    fast, slow = -1, 2
    data, pixeldq, _ = _synthetic(1, 3, fast, slow, seed=11)
    y0 = 1792
    sub = np.ascontiguousarray(data[:, :, y0:y0 + 256, :])
    subdq = np.ascontiguousarray(pixeldq[y0:y0 + 256, :])
    _run_both(sub, subdq, fast, slow, xstart=1, ystart=y0 + 1, noutputs=4,
              odd_even_columns=odd_even, use_side=side, name="SUBGRISM256")


@pytest.mark.oracle
def test_subarray_that_does_not_fit_matches_jwst():
    pytest.importorskip("jwst")
    sub = np.ones((1, 1, 160, 160), np.float32)
    _run_both(sub, np.zeros((160, 160), np.uint32), -1, 2, xstart=1950, ystart=1, noutputs=1,
              name="SUB160")
    assert np.all(sub == 1)


@pytest.mark.oracle
def test_sirs_matches_jwst():
    pytest.importorskip("jwst")
    rng = np.random.default_rng(3)
    nfreq = 1025
    gamma = (rng.normal(0.5, 0.1, (4, nfreq)) + 1j * rng.normal(0, 0.02, (4, nfreq)))
    zeta = (rng.normal(0.5, 0.1, (4, nfreq)) + 1j * rng.normal(0, 0.02, (4, nfreq)))
    gamma[:, 0] = gamma[:, 0].real
    zeta[:, 0] = zeta[:, 0].real
    data, pixeldq, _ = _synthetic(1, 2, -1, 2, seed=5)
    _run_both(data, pixeldq, -1, 2, sirs=(gamma, zeta))


@pytest.mark.oracle
def test_optimized_convolution_module_matches_jwst(tmp_path):
    """jwst's refpix.optimized_convolution functions, here on a SIRSKernelModel saved and
    reopened: the same coefficients, kernels and corrected frame, bit for bit."""
    pytest.importorskip("jwst")
    from jwst.refpix import optimized_convolution as theirs
    from stdatamodels.jwst.datamodels import SIRSKernelModel as OfficialModel

    from ramp2slope.datamodels import SIRSKernelModel
    from ramp2slope.refpix import optimized_convolution as ours

    rng = np.random.default_rng(11)
    gamma = rng.normal(0.5, 0.1, (4, 257)) + 1j * rng.normal(0, 0.02, (4, 257))
    zeta = rng.normal(0.5, 0.1, (4, 257)) + 1j * rng.normal(0, 0.02, (4, 257))
    tree = {"nrcb1": {"gamma": gamma, "zeta": zeta}}
    path = SIRSKernelModel({k: dict(v) for k, v in tree.items()}).save(tmp_path / "sirs.asdf")
    model = SIRSKernelModel(path)
    assert model.meta.reftype == "sirskernel" and model.meta.filename == "sirs.asdf"
    np.testing.assert_array_equal(model.nrcb1.gamma, gamma)
    official = OfficialModel(tree)
    for source in (model, path, model.instance):
        found = ours.get_conv_kernel_coeffs(source, "NRCB1")
        np.testing.assert_array_equal(found[0], gamma)
        np.testing.assert_array_equal(found[1], zeta)
    assert ours.make_kernels(model, "NRCA1", 1, 30) is None
    kernels = ours.make_kernels(model, "nrcb1", 1.5, 20)
    expected = theirs.make_kernels(official, "nrcb1", 1.5, 20)
    for side in (0, 1):
        for amp in range(4):
            np.testing.assert_array_equal(kernels[side][amp], expected[side][amp])
    frame = rng.normal(1000.0, 10.0, (512, 64)).astype(np.float32)
    frame[100:103, :4] += 500.0   # outliers the MAD rejection drops
    frame[7, -4:] -= 300.0
    got = ours.apply_conv_kernel(frame, kernels, sigreject=4.0)
    want = theirs.apply_conv_kernel(frame, expected, sigreject=4.0)
    assert got.dtype == want.dtype == np.float64
    np.testing.assert_array_equal(got, want)
    assert np.abs(got - frame).max() > 100   # the templates were subtracted


# ------------------------------------------------------------------------------------------
# Evidence: the 1/f row noise is removed as well as the estimator allows
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("band_limited", [True, False])
def test_one_over_f_row_noise_is_removed(band_limited):
    """Inject 1/f row offsets (per detector row, in readout order) plus odd/even and amplifier
    offsets and white noise; measure the row-to-row power of the science region before and
    after, and compare with what the injected truth says must be left.

    With ``band_limited`` the 1/f noise only has frequencies the 11-row window can follow, so
    what is left must be the estimator noise alone: the median of 8 side pixels x 11 rows.
    Otherwise the part above the window's reach stays, and the expectation includes it.
    """
    fast, slow = -1, 2
    white = 6.0
    length = 11
    fmax = 1.0 / (4 * length) if band_limited else None
    data, pixeldq, truth = _synthetic(1, 1, fast, slow, seed=21, white=white, one_over_f=8.0,
                                      fmax=fmax)
    pixeldq[:] = 0  # keep all side pixels: the estimator noise is then known exactly
    pixeldq[:4] = pixeldq[-4:] = REF
    pixeldq[:, :4] = pixeldq[:, -4:] = REF
    before = dms_to_detector(data[0, 0], fast, slow)[:, 4:-4].astype(np.float64)
    correct_refpix(data, pixeldq, fastaxis=fast, slowaxis=slow, side_smoothing_length=length)
    after = dms_to_detector(data[0, 0], fast, slow)[:, 4:-4].astype(np.float64)
    rows = slice(4, N - 4)
    row_before = before[rows].mean(axis=1)
    row_after = after[rows].mean(axis=1)
    injected = truth[0, 0]

    # What the truth says should be left: the part of the row offsets that a running average
    # over the window cannot follow, the noise of the median of the 8 side pixels per row over
    # the window (1.2533 sigma / sqrt(n) for the median of n Gaussian values), and the noise of
    # measuring each row mean from the science pixels.
    padded = reflect_pad_rows(injected[:, None], length)[:, 0]
    smooth = np.convolve(padded, np.ones(length) / length, mode="valid")
    unfollowable = np.std((injected - smooth)[rows])
    estimator = 1.2533 * white / np.sqrt(8 * length)
    measurement = white / np.sqrt(after.shape[1])
    expected_rms = np.sqrt(unfollowable ** 2 + estimator ** 2 + measurement ** 2)

    rms_before = np.std(row_before - row_before.mean())
    rms_after = np.std(row_after - row_after.mean())
    assert rms_before == pytest.approx(np.std(injected[rows]), rel=0.05)
    assert 0.85 * expected_rms < rms_after < 1.15 * expected_rms
    if band_limited:
        assert unfollowable < 0.3 * estimator
        assert rms_after < 1.15 * np.hypot(estimator, measurement)
        assert rms_after < rms_before / 5
    else:
        assert rms_after < 0.7 * rms_before
    # the odd/even and amplifier offsets are gone (to the noise of the clipped means)
    det_after = dms_to_detector(data[0, 0], fast, slow).astype(np.float64)
    for amp in range(4):
        for parity in (0, 1):
            cols = det_after[4:-4, amp * 512 + parity:(amp + 1) * 512:2]
            assert abs(cols.mean()) < 5 * white / np.sqrt(2048) + 5 * measurement


@pytest.mark.oracle
def test_miri_subarrays_are_skipped_never_corrected_as_nir():
    """jwst skips MIRI subarrays (its MIRI algorithm is for full frames: tests/test_refpix_miri.py)."""
    pytest.importorskip("jwst")
    from jwst.refpix import RefPixStep as TheirStep
    from stdatamodels.jwst import datamodels as jdm

    from ramp2slope import datamodels
    from ramp2slope.refpix import RefPixStep

    shape = (1, 2, 64, 72)
    data = np.random.default_rng(2).normal(1000, 5, shape).astype(np.float32)
    ours = datamodels.RampModel(data.copy())
    ours.meta.instrument.name, ours.meta.instrument.detector = "MIRI", "MIRIMAGE"
    ours.meta.subarray.name = "SUB64"
    ours.meta.subarray.fastaxis, ours.meta.subarray.slowaxis = 1, 2
    ours.meta.exposure.noutputs = 4
    theirs = jdm.RampModel(data=data.copy())
    theirs.meta.instrument.name, theirs.meta.instrument.detector = "MIRI", "MIRIMAGE"
    theirs.meta.subarray.name = "SUB64"
    theirs.meta.subarray.xstart, theirs.meta.subarray.ystart = 1, 1
    theirs.meta.subarray.xsize, theirs.meta.subarray.ysize = shape[-1], shape[-2]
    theirs.meta.exposure.readpatt, theirs.meta.exposure.type = "FASTR1", "MIR_IMAGE"
    official = TheirStep.call(theirs)
    result = RefPixStep().run(ours)
    assert result.meta.cal_step.refpix == official.meta.cal_step.refpix == "SKIPPED"
    assert np.array_equal(result.data, data)
