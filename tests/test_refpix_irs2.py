"""The NIRSpec IRS2 reference correction (ramp2slope.refpix.irs2_subtract_reference) against jwst's
``irs2_subtract_reference``, function by function, on synthetic full frames (3200 x 2048).

The frames carry what the correction acts on: a bias per output, 1/f noise along the read
sequence (shared by the outputs), white noise, a ramp on the science samples, outlying reference
samples (high mean, high pair difference, high spread; one in the second integration only),
rows pre-flagged BAD_REF_PIXEL and a DQ table that declares reference samples bad. The DQ and the
flagging and replacement of reference samples must be bit-identical; the corrected data equal
within float32 rounding (the Fourier transforms differ in precision and kind).
"""
import numpy as np
import pytest

import jwst_oracle
from ramp2slope.datamodels import dqflags
from ramp2slope.runtime import malloc

pytestmark = pytest.mark.oracle

LINES = 2048          # detector lines (the slow axis)
LENGTH = 3200         # samples along the fast axis: 5 outputs of 640
SECTION = LENGTH // 5
ROW = 712             # time-series samples per line: 640 + 64 gaps + 8 overhead
BAD_REF = dqflags.pixel["BAD_REF_PIXEL"]


def _series_index():
    """(LINES, LENGTH): the position of every detector sample in its output's time series
    (reference groups of 4 after 8 science samples, then every 20; a gap on each side of
    a group; outputs 0, 2 and 4 stored in the opposite direction to their read order)."""
    read = np.arange(SECTION)
    started = np.where(read >= 8, (read - 8) // 20 + 1, 0)
    in_group = (read >= 8) & ((read - 8) % 20 < 4)
    column = read + 2 * started - in_group
    columns = np.concatenate([column if output % 2 else column[::-1] for output in range(5)])
    return np.arange(LINES)[:, None] * ROW + columns[None, :]


def _reference_rows():
    """Detector x of the interleaved reference samples (amplifier outputs only)."""
    read = np.arange(SECTION)
    group = (read >= 8) & ((read - 8) % 20 < 4)
    return np.flatnonzero(np.concatenate([np.zeros(SECTION, bool)] + [group] * 4))


def _detector_frames(rng, nints, ngroups):
    """(nints, ngroups, LINES, LENGTH) float32 in detector orientation."""
    index = _series_index()
    n = LINES * ROW
    frequency = np.fft.rfftfreq(n)
    amplitude = np.zeros_like(frequency)
    amplitude[1:] = frequency[1:] ** -0.5
    output = np.arange(LENGTH) // SECTION
    bias = np.array([9000.0, 11000.0, 10500.0, 12000.0, 9800.0], dtype=np.float32)[output]
    science = np.ones(LENGTH, dtype=bool)
    science[:SECTION] = False
    science[_reference_rows()] = False
    rate = rng.uniform(0.0, 20.0, size=(LINES, LENGTH)).astype(np.float32) * science
    frames = np.empty((nints, ngroups, LINES, LENGTH), dtype=np.float32)
    for i in range(nints):
        for g in range(ngroups):
            spectrum = amplitude * (rng.standard_normal(frequency.size)
                                    + 1j * rng.standard_normal(frequency.size))
            drift = np.fft.irfft(spectrum, n)
            drift *= 8.0 / drift.std()
            gain = 1.0 + 0.15 * output
            frame = rng.standard_normal((LINES, LENGTH), dtype=np.float32)
            frame *= 4.0
            frame += bias + (drift[index] * gain).astype(np.float32) + rate * (g + 1)
            frames[i, g] = frame
    return frames


def _to_dms(frames, detector):
    """Detector orientation to the stored (DMS) frame: NRS1 transposed, NRS2 also reversed."""
    if detector == "NRS2":
        frames = frames[..., ::-1, ::-1]
    return np.ascontiguousarray(np.swapaxes(frames, -1, -2))


def _dms_row(x, detector):
    return x if detector == "NRS1" else LENGTH - 1 - x


def _spoil_reference_rows(data, detector, rng):
    """Outlying reference samples (given as detector x) in DMS data (nints, ngroups, L, nx)."""
    nints, ngroups, _, nx = data.shape

    def row(x):
        return _dms_row(x, detector)

    data[:, :, row(648), :] += 60.0                                  # high mean
    data[:, :, row(989), ::2] += 35.0                                # high pair difference
    data[:, :, row(988), 1::2] -= 35.0
    data[:, :, row(2150), :] += rng.normal(0.0, 45.0, (nints, ngroups, nx))   # high spread
    data[:, :, row(3128), :] += 80.0                                 # both of a pair
    data[:, :, row(3129), :] += 80.0
    data[:, :, row(170), :] += 50.0                                  # reference output
    if nints > 1:
        data[1, :, row(1368), :] += 55.0                             # second integration only


def _preflagged_pixeldq(detector):
    pixeldq = np.zeros((LENGTH, 2048), dtype=np.uint32)
    for x in (670, 688, 2110, 1290, 1291, 2528):
        pixeldq[_dms_row(x, detector), 17] = BAD_REF
    # a science row flagged as a bad reference: jwst replaces it too
    pixeldq[_dms_row(1500, detector), 3] = BAD_REF
    return pixeldq


def _dq_table():
    """The REFPIX DQ table: first and last groups, a neighbour-less run, a pre-flagged pair."""
    table = np.zeros(8, dtype=[("output", np.uint16), ("odd_even", np.uint16),
                               ("mask", np.uint32)])
    table["output"] = [1, 1, 2, 2, 3, 3, 4, 4]
    table["odd_even"] = [1, 2, 1, 2, 1, 2, 1, 2]
    table["mask"] = [2**0 + 2**1, 2**1, 2**30 + 2**31, 2**5, 2**10 + 2**11 + 2**12,
                     2**10 + 2**11 + 2**12, 2**3, 2**20]
    return table


@pytest.fixture(scope="module")
def irs2_table():
    rng = np.random.default_rng(11)
    rows = 2 * 712 * 2048
    table = np.zeros(rows, dtype=[(f"{kind}_{k}", np.float32)
                                  for kind in ("alpha", "beta") for k in range(4)])
    for name in table.dtype.names:
        scale = 0.6 if name.startswith("alpha") else 0.4
        table[name] = rng.standard_normal(rows, dtype=np.float32) * scale
    return table


@pytest.fixture(scope="module")
def two_integrations():
    """DMS data (2, 3, 3200, 2048) for NRS1 with outlying reference samples."""
    rng = np.random.default_rng(12)
    data = _to_dms(_detector_frames(rng, 2, 3), "NRS1")
    _spoil_reference_rows(data, "NRS1", rng)
    return data


def _ramp_model(data, pixeldq, detector="NRS1", groupdq=None):
    from stdatamodels.jwst import datamodels

    model = datamodels.RampModel(data=data.copy(), pixeldq=pixeldq.copy())
    if groupdq is not None:
        model.groupdq = groupdq.copy()
    model.meta.instrument.detector = detector
    model.meta.exposure.nrs_normal = 16
    model.meta.exposure.nrs_reference = 4
    return model


def _assert_bitwise(ours, theirs):
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype == np.float32
    np.testing.assert_array_equal(ours.view(np.uint32), theirs.view(np.uint32))


def _assert_float32_rounding(ours, theirs):
    """The correction's transforms are single-precision real transforms, jwst's complex ones
    (its forward ones in double precision): equal within the float32 rounding of the frame,
    two units in the last place of its median sample (about 2e-3 for frames near 1e4)."""
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    tolerance = 2 * np.spacing(np.median(np.abs(theirs)))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=tolerance)


def test_coefficients_from_table(irs2_table):
    jwst_oracle.require_jwst()
    from jwst.refpix.irs2_subtract_reference import float_to_complex

    from ramp2slope.refpix.irs2_subtract_reference import coefficients_from_table

    alpha, beta = coefficients_from_table(irs2_table)
    assert alpha.dtype == beta.dtype == np.complex64 and alpha.shape == (4, 712 * 2048)
    for k in range(4):
        for ours, name in ((alpha, "alpha"), (beta, "beta")):
            theirs = float_to_complex(irs2_table[f"{name}_{k}"])
            np.testing.assert_array_equal(ours[k].view(np.uint32), theirs.view(np.uint32))
    assert coefficients_from_table(irs2_table[:-2]) is None


def test_decode_mask_matches_jwst():
    jwst_oracle.require_jwst()
    from jwst.refpix.irs2_subtract_reference import decode_mask as theirs

    from ramp2slope.refpix.irs2_subtract_reference import decode_mask

    rng = np.random.default_rng(3)
    for value in [0, 1, 2**31, 2**32 - 1, *rng.integers(0, 2**32, 50, dtype=np.uint64)]:
        assert decode_mask(np.uint32(value)) == [int(b) for b in theirs(np.uint32(value))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clobber_ref_matches_jwst(dtype):
    jwst_oracle.require_jwst()
    from jwst.refpix.irs2_subtract_reference import clobber_ref as theirs

    from ramp2slope.refpix.irs2_subtract_reference import clobber_ref

    rng = np.random.default_rng(4)
    data = rng.normal(100.0, 10.0, (2, 3, 6, LENGTH)).astype(dtype)
    table = _dq_table()
    is_irs2 = np.zeros(LENGTH, dtype=bool)
    is_irs2[_reference_rows()] = True
    is_irs2[:SECTION] = is_irs2[2 * SECTION:3 * SECTION]
    flags = np.zeros(LENGTH, dtype=bool)
    flags[[669, 688, 689, 2528, 1308]] = True
    results = []
    for function in (clobber_ref, theirs):
        d, f = data.copy(), flags.copy()
        function(d, table["output"], table["odd_even"], table["mask"], f, is_irs2)
        results.append((d, f))
    (d1, f1), (d2, f2) = results
    np.testing.assert_array_equal(f1, f2)
    assert f1.sum() > flags.sum() + 20
    np.testing.assert_array_equal(d1, d2)
    assert (d1 != data).any(axis=(0, 1, 2)).sum() > 20
    assert (d1[..., f1 & ~flags] == 0).all(axis=(0, 1, 2)).any()   # a sample with no good source


@pytest.mark.parametrize("mode", [dict(flag_only=True), dict(replace_only=True), dict(),
                                  dict(n_sigma=2.5)], ids=["flag_only", "replace_only",
                                                           "flag_and_replace", "sigma2.5"])
def test_flag_bad_refpix_matches_jwst(two_integrations, mode):
    jwst_oracle.require_jwst()
    from jwst.refpix.irs2_subtract_reference import flag_bad_refpix as theirs

    from ramp2slope.datamodels.irs2_layout import IRS2Layout
    from ramp2slope.refpix.irs2_subtract_reference import flag_bad_reference_samples

    pixeldq = _preflagged_pixeldq("NRS1")
    model = _ramp_model(two_integrations, pixeldq)
    theirs(model, **mode)
    data = two_integrations.copy()
    ours_dq = pixeldq.copy()
    count = flag_bad_reference_samples(data, ours_dq, IRS2Layout(), **mode)
    np.testing.assert_array_equal(ours_dq, model.pixeldq)
    _assert_bitwise(data, model.data)
    flagged = np.flatnonzero((ours_dq & BAD_REF).any(axis=1))
    assert count == flagged.size
    if not mode.get("replace_only"):
        # every kind of outlier was found, the one of the second integration too
        assert {648, 649, 988, 989, 2150, 2151, 3128, 3129, 170, 171, 1368, 1369} <= set(flagged)
    if mode.get("flag_only"):
        _assert_bitwise(data, two_integrations)
    else:
        assert (data != two_integrations).any(axis=(0, 1, 3)).sum() >= 5


def test_flag_bad_refpix_datamodel_in_step_order(two_integrations):
    """jwst's step: flag only, then replace only (after the optional mean subtraction)."""
    jwst_oracle.require_jwst()
    from jwst.refpix.irs2_subtract_reference import flag_bad_refpix as theirs

    from ramp2slope.refpix.irs2_subtract_reference import flag_bad_refpix

    pixeldq = _preflagged_pixeldq("NRS1")
    data = two_integrations[:1]
    reference, ours = _ramp_model(data, pixeldq), _ramp_model(data, pixeldq)
    for function, model in ((theirs, reference), (flag_bad_refpix, ours)):
        function(model, n_sigma=3.0, flag_only=True)
        function(model, replace_only=True)
    np.testing.assert_array_equal(ours.pixeldq, reference.pixeldq)
    _assert_bitwise(ours.data, reference.data)


@pytest.mark.slow
@pytest.mark.parametrize("detector,preserve,ngroups", [("NRS1", False, 3), ("NRS2", True, 2)])
def test_correct_irs2_matches_jwst(irs2_table, detector, preserve, ngroups):
    jwst_oracle.require_jwst()
    from stdatamodels.jwst import datamodels
    from jwst.refpix.irs2_subtract_reference import correct_model

    from ramp2slope.datamodels.irs2_layout import IRS2Layout, rows_mask
    from ramp2slope.refpix.irs2_subtract_reference import coefficients_from_table, correct_irs2

    rng = np.random.default_rng(21 if detector == "NRS1" else 22)
    frames = _detector_frames(rng, 1, ngroups)
    # a constant reference-output sample (zero once the ramp mean is off), zeros on the edge
    # lines that the frame-edge fits must skip
    frames[0, :, 1000, 100] = 9000.0
    frames[0, :, 2, 700] = frames[0, 0, 2, 700]
    data = _to_dms(frames, detector)
    _spoil_reference_rows(data, detector, rng)
    pixeldq = _preflagged_pixeldq(detector)
    groupdq = np.zeros(data.shape, dtype=np.uint8)
    groupdq[0, -1, ::37, ::11] = 4
    table = _dq_table()

    model = _ramp_model(data, pixeldq, detector, groupdq)
    reference = datamodels.IRS2Model()
    reference.irs2_table = irs2_table
    reference.dq_table = table
    theirs = correct_model(model, reference, preserve_refpix=preserve)

    alpha, beta = coefficients_from_table(irs2_table)
    ours = correct_irs2(data.copy(), pixeldq.copy(), groupdq.copy(), detector, alpha, beta,
                        (table["output"], table["odd_even"], table["mask"]), IRS2Layout(),
                        preserve_refpix=preserve)
    assert ours[0].shape == (1, ngroups, LENGTH if preserve else 2048, 2048)
    _assert_float32_rounding(ours[0], np.asarray(theirs.data))
    np.testing.assert_array_equal(ours[1], theirs.pixeldq)
    np.testing.assert_array_equal(ours[2], theirs.groupdq)
    # the correction did something: the drift around the ramp mean came off
    rows = rows_mask(detector, LENGTH)
    moved = ours[0][..., rows, :] if preserve else ours[0]
    assert np.isfinite(moved).all() and np.abs(moved - data[..., rows, :]).mean() > 2.0


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("detector", ["NRS1", "NRS2", "NRCA1"])
def test_stripped_dq_is_contiguous(detector, in_place):
    # the later steps' kernels are compiled for C-contiguous group DQ: a strided one (what
    # [..., mask, :] gives for several integrations) would be compiled once more; in place,
    # the kept samples are moved to the start of the array itself
    from ramp2slope.datamodels.irs2_layout import normal_mask
    from ramp2slope.refpix.irs2_subtract_reference import _strip

    mask = normal_mask(3200)
    rows = detector != "NRCA1"
    shape = (2, 3, 3200, 8) if rows else (2, 3, 8, 3200)
    dq = np.random.default_rng(1).integers(0, 255, shape, dtype=np.uint8)
    kept = {"NRS1": mask, "NRS2": mask[::-1], "NRCA1": mask}[detector]
    expected = dq[..., kept, :] if rows else dq[..., kept]
    stripped = _strip(dq, detector, mask, in_place=in_place)
    np.testing.assert_array_equal(stripped, expected)
    assert stripped.flags.c_contiguous
    assert np.shares_memory(stripped, dq) == in_place


def test_coefficients_of_another_layout_are_refused():
    # the REFPIX coefficients are one per sample of the full-frame n=16, r=4 time series; the
    # series of another layout or frame size has another length, and the half-spectrum kernels
    # must not read past the coefficients
    from ramp2slope.datamodels.irs2_layout import IRS2Layout
    from ramp2slope.refpix.irs2_subtract_reference import correct_irs2

    data = np.zeros((1, 2, 3200, 64), dtype=np.float32)
    coefficients = np.ones((4, 712 * 2048), dtype=np.complex64)
    with pytest.raises(ValueError, match="1458176 values per output"):
        correct_irs2(data, None, None, "NRS1", coefficients, coefficients, None,
                     IRS2Layout(n=8, r=2))


@pytest.mark.slow
@pytest.mark.parametrize("detector,nints,ngroups,threads", [
    ("NRS1", 2, 3, 2),     # groups in parallel, planes staged and written in place
    ("NRS2", 2, 1, 2),     # one group: its amplifiers in parallel
    ("NRCA1", 1, 3, 1),    # no reorientation (columns stripped); one thread, in order
])
def test_correction_over_its_input_equals_a_separate_output(irs2_table, detector, nints, ngroups,
                                                            threads):
    # release_input writes the 2048-row result over the 3200-row input, each plane once the
    # input planes under it have been read, and gives back the memory beyond: the same numbers
    # as a separate output, without holding both
    import numba

    from ramp2slope.datamodels.irs2_layout import IRS2Layout
    from ramp2slope.refpix.irs2_subtract_reference import correct_irs2, folded_coefficients_from_table

    rng = np.random.default_rng(31)
    frames = _detector_frames(rng, nints, ngroups)
    data = _to_dms(frames, detector) if detector != "NRCA1" else frames
    groupdq = rng.integers(0, 3, data.shape, dtype=np.uint8)
    pixeldq = rng.integers(0, 2, data.shape[-2:], dtype=np.uint32)
    alpha, beta = folded_coefficients_from_table(irs2_table)
    table = _dq_table()
    arguments = (detector, alpha, beta, (table["output"], table["odd_even"], table["mask"]),
                 IRS2Layout())
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        expected = correct_irs2(data.copy(), pixeldq.copy(), groupdq.copy(), *arguments)
        inputs = (data.copy(), pixeldq.copy(), groupdq.copy())
        ours = correct_irs2(*inputs, *arguments, release_input=True)
    finally:
        numba.set_num_threads(previous)
    for mine, theirs, given in zip(ours, expected, inputs):
        assert mine.shape == theirs.shape and mine.flags.c_contiguous
        np.testing.assert_array_equal(mine.view(np.uint8), theirs.view(np.uint8))
        assert np.shares_memory(mine, given)
    if malloc._libc is not None:
        # the pages past the result were given back: they read as zero now
        rest = inputs[0].reshape(-1)[ours[0].size:]
        inner = rest[1024:-1024]     # past the pages the rest shares with the result
        assert inner.size > 0 and not inner.any()


def _folded_by_hand(values):
    """(w[k] + conj(w[-k])) / 2 for k = 0 .. N // 2, in double precision, rounded."""
    n = values.shape[-1]
    k = np.arange(n // 2 + 1)
    front, mirror = values[:, k].astype(np.complex128), values[:, (n - k) % n].astype(np.complex128)
    return (front + np.conj(mirror)) / 2


@pytest.mark.parametrize("piece", [7, 1000, 1 << 17])
def test_folded_coefficients_read_in_pieces(irs2_table, tmp_path, monkeypatch, piece):
    from astropy.io import fits

    from ramp2slope.references import load_irs2_refpix
    from ramp2slope.refpix import irs2_subtract_reference as irs2

    alpha, beta = irs2.coefficients_from_table(irs2_table)
    expected = [np.ascontiguousarray(_folded_by_hand(w), dtype=np.complex64) for w in (alpha, beta)]
    path = tmp_path / "refpix.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(irs2_table, name="IRS2")]).writeto(path)
    monkeypatch.setattr(irs2, "_FOLD_PIECE", piece)
    from_table = irs2.folded_coefficients_from_table(irs2_table)
    from_file = load_irs2_refpix(str(path), _nirspec_model(),
                                 derive=irs2.folded_coefficients_from_rows).irs2_table
    for folded in (from_table, from_file, irs2.fold_coefficients(alpha, beta)):
        for mine, theirs in zip(folded, expected):
            assert mine.dtype == np.complex64 and mine.flags.c_contiguous
            np.testing.assert_array_equal(mine.view(np.uint32), theirs.view(np.uint32))
    assert irs2.folded_coefficients_from_table(irs2_table[:-2]) is None


def _nirspec_model():
    from ramp2slope.datamodels import RampModel

    model = RampModel()
    model.meta.instrument.name, model.meta.instrument.detector = "NIRSPEC", "NRS1"
    return model


def test_refpix_table_cut_short_while_read_is_named(irs2_table, tmp_path):
    # a file cut short before it is opened is refused on opening; one cut while its table is
    # read piece by piece is named by the reader
    from astropy.io import fits

    from ramp2slope.errors import ReferenceFileError
    from ramp2slope.references import load_irs2_refpix

    path = tmp_path / "refpix.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(irs2_table[:1000], name="IRS2")]).writeto(path)

    def cut_then_read(nrows, rows):
        first = rows(0, 10)
        with open(path, "r+b") as handle:
            handle.truncate(path.stat().st_size - 2880)
        return first, rows(0, nrows)

    with pytest.raises(ReferenceFileError, match="refpix.fits: the IRS2 table ends before row 1000"):
        load_irs2_refpix(str(path), _nirspec_model(), derive=cut_then_read)


def test_output_planes_go_over_input_planes_only_once_read():
    from ramp2slope.refpix.irs2_subtract_reference import _OutputOverInput

    data = np.arange(4 * 5 * 4, dtype=np.float32).reshape(1, 4, 5, 4)   # input planes of 20
    original = data.reshape(-1).copy()
    flat = data.reshape(-1)
    over = _OutputOverInput(data, (1, 4, 3, 4))                          # output planes of 12
    # output plane 0 lies on input plane 0, plane 1 on input planes 0 and 1: both unread
    first, second = over.plane(0), over.plane(1)
    assert not np.shares_memory(first, data) and not np.shares_memory(second, data)
    assert over.plane(1) is second
    first[:], second[:] = -1, -2
    over.consumed(1)     # input plane 0 read and output plane 0 done; plane 1's group is not
    np.testing.assert_array_equal(flat[:12], -1)
    np.testing.assert_array_equal(flat[12:], original[12:])
    assert over.plane(1) is second
    third = over.plane(2)        # on input plane 1 (elements 20-39), still unread
    assert not np.shares_memory(third, data)
    third[:] = -3
    over.consumed(2)
    np.testing.assert_array_equal(flat[:24], [-1] * 12 + [-2] * 12)
    np.testing.assert_array_equal(flat[24:], original[24:])
    over.consumed(3)
    fourth = over.plane(3)       # on input plane 2 only (elements 36-47), read by now
    assert np.shares_memory(fourth, data)
    fourth[:] = -4
    result = over.finish()
    np.testing.assert_array_equal(result.reshape(-1), np.repeat([-1, -2, -3, -4], 12))
    assert np.shares_memory(result, data)
