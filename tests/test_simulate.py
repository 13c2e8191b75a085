"""Tests of the exposure simulator (ramp2slope.simulate)."""
import warnings

import numpy as np
import pytest
from astropy.io import fits

from ramp2slope.errors import Ramp2SlopeError
from ramp2slope.simulate import (REFTYPES, frame_time, geometry, load_truth, simulate_exposure)
from ramp2slope.simulate.cli import main as cli_main
from ramp2slope.simulate.detector import READ_PATTERNS

DNU = 1


@pytest.fixture(scope="module")
def rapid(tmp_path_factory):
    """SUB160P on NRCBLONG (a corner subarray with reference pixels), 2 integrations x 6 groups."""
    outdir = tmp_path_factory.mktemp("sim_rapid")
    return simulate_exposure(outdir, subarray="SUB160P", ngroups=6, nints=2, seed=11,
                             cr_rate=150.0)


@pytest.fixture(scope="module")
def averaged(tmp_path_factory):
    """SHALLOW4 (4 frames averaged, 1 skipped) on SUB64P: exercises frame averaging."""
    outdir = tmp_path_factory.mktemp("sim_shallow4")
    return simulate_exposure(outdir, subarray="SUB64P", ngroups=8, nints=1, readpatt="SHALLOW4",
                             seed=5, cr_rate=300.0)


def _open_all(result):
    return fits.open(result.uncal), {k: fits.open(p) for k, p in result.refs.items()}


def _linearized(result):
    """(uncal - bias - pattern) through the LINEARITY polynomial, minus the per-group dark."""
    truth = load_truth(result.truth)
    with fits.open(result.uncal) as hdul:
        sci = hdul["SCI"].data.astype(np.float64)
        head = hdul[0].header
    x0, y0 = head["SUBSTRT1"] - 1, head["SUBSTRT2"] - 1
    ny, nx = sci.shape[-2:]
    cut = (slice(y0, y0 + ny), slice(x0, x0 + nx))
    bias = fits.getdata(result.refs["superbias"], "SCI")[cut].astype(np.float64)
    coeffs = fits.getdata(result.refs["linearity"], "COEFFS")[(slice(None),) + cut].astype(np.float64)
    dark = fits.getdata(result.refs["dark"], "SCI").astype(np.float64)
    nframes, gap = head["NFRAMES"], head["GROUPGAP"]
    out = np.empty_like(sci)
    for i in range(sci.shape[0]):
        for g in range(sci.shape[1]):
            m = sci[i, g] - bias - truth.pattern(i, g)
            q = np.zeros_like(m)
            for c in coeffs[::-1]:
                q = q * m + c
            start = g * (nframes + gap)
            out[i, g] = q - dark[start:start + nframes].mean(axis=0)
    return out, truth, head


def _clean(truth):
    clean = (truth.badpix == 0) & (truth.satgroup.max(axis=0) < 0)
    if len(truth.cosmic_rays):
        clean[truth.cosmic_rays.y, truth.cosmic_rays.x] = False
    return clean


# ------------------------------------------------------------------------------------------
# geometry and timing
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, nx, ny, nout, tframe", [
    ("FULL", 2048, 2048, 4, 10.73677), ("SUBGRISM256", 2048, 256, 4, 1.34669),
    ("SUBGRISM64", 2048, 64, 4, 0.34061), ("SUB640", 640, 640, 1, 4.18584),
    ("SUB320", 320, 320, 1, 1.06904), ("SUB160", 160, 160, 1, 0.27864),
    ("SUB400P", 400, 400, 1, 1.65624), ("SUB160P", 160, 160, 1, 0.27864),
    ("SUB64P", 64, 64, 1, 0.05016),
])
def test_subarray_sizes_and_frame_times(name, nx, ny, nout, tframe):
    geom = geometry("NRCBLONG", subarray=name)
    assert (geom.nx, geom.ny, geom.noutputs) == (nx, ny, nout)
    assert geom.frame_time == pytest.approx(tframe, abs=1e-5)
    assert 1 <= geom.xstart <= 2049 - nx and 1 <= geom.ystart <= 2049 - ny


def test_subarray_positions_follow_detector_orientation():
    # NRCA1 flips x (FASTAXIS=-1): its SUB160 in the detector corner x=1..160 is at DMS 1889.
    a1 = geometry("NRCA1", subarray="SUB160")
    assert (a1.fastaxis, a1.slowaxis, a1.xstart, a1.ystart) == (-1, 2, 1889, 1889)
    # NRCB1 flips y: its SUB640 (detector rows 1409..2048) starts at DMS row 1.
    b1 = geometry("NRCB1", subarray="SUB640")
    assert (b1.fastaxis, b1.slowaxis, b1.xstart, b1.ystart) == (1, -2, 1, 1)
    # Time-series grism stripes start on the first detector rows.
    assert geometry("NRCALONG", subarray="SUBGRISM256").ystart == 1
    assert geometry("NRCBLONG", subarray="SUBGRISM256").ystart == 2049 - 256
    sub64p = geometry("NRCBLONG", subarray="SUB64P")
    assert (sub64p.xstart, sub64p.ystart) == (1985, 1985)


def test_geometry_errors_and_generic_sizes():
    with pytest.raises(Ramp2SlopeError):
        geometry("NRCA1", subarray="SUB64P")          # not defined on NRCA1
    with pytest.raises(Ramp2SlopeError):
        geometry("NRCA9")
    with pytest.raises(Ramp2SlopeError):
        geometry("NRCA1", subarray="SUB160", size=(160, 160))
    assert geometry("NRCA1", size=(2048, 2048)).subarray == "FULL"
    stripe = geometry("NRCA1", size=(64, 2048))
    assert (stripe.subarray, stripe.noutputs, stripe.xstart, stripe.ystart) == ("GENERIC", 4, 1, 1)
    assert geometry("NRCA1", size=(100, 120)).noutputs == 1
    assert frame_time(2048, 2048, 4) == pytest.approx(10.73677)


@pytest.mark.parametrize("name, rows, ystart, tframe", [("SUBSTRIP256", 256, 1793, 5.494),
                                                       ("SUBSTRIP96", 96, 1803, 2.214)])
def test_niriss_soss_stripes(tmp_path, name, rows, ystart, tframe):
    # modelled untransposed (the stored rows run along the fast direction), one output, at the
    # published frame times; stored, the stripe spans every column of the top stored rows
    geom = geometry("NIS", subarray=name)
    assert (geom.subarray, geom.nx, geom.ny, geom.noutputs) == (name, rows, 2048, 1)
    assert geom.frame_time == pytest.approx(tframe, abs=1e-5)
    sim = simulate_exposure(tmp_path, detector="NIS", subarray=name, readpatt="NISRAPID",
                            ngroups=2, nints=1, cr_rate=0.0)
    header = fits.getheader(sim.uncal)
    assert {k: header[k] for k in ("SUBARRAY", "SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2",
                                   "NOUTPUTS", "EXP_TYPE", "FILTER", "PUPIL", "APERNAME")} == {
        "SUBARRAY": name, "SUBSTRT1": 1, "SUBSTRT2": ystart, "SUBSIZE1": 2048,
        "SUBSIZE2": rows, "NOUTPUTS": 1, "EXP_TYPE": "NIS_SOSS", "FILTER": "CLEAR",
        "PUPIL": "GR700XD", "APERNAME": f"NIS_{name}"}
    assert header["PWCPOS"] == pytest.approx(245.79)
    assert header["TFRAME"] == pytest.approx(tframe, abs=1e-5)
    assert fits.getdata(sim.uncal, "SCI").shape == (1, 2, rows, 2048)
    with pytest.raises(Ramp2SlopeError, match="SUBSTRIP96"):
        geometry("NIS", subarray="SUB160")
    with pytest.raises(Ramp2SlopeError):
        geometry("NRS1", subarray=name)
    with pytest.raises(Ramp2SlopeError):
        geometry("NIS", subarray=name, size=(rows, 2048))


# ------------------------------------------------------------------------------------------
# files, shapes, headers
# ------------------------------------------------------------------------------------------
def test_files_exist(rapid):
    assert rapid.uncal.name == "jw01234001001_01101_00001_nrcblong_uncal.fits"
    assert rapid.truth.name == "jw01234001001_01101_00001_nrcblong_truth.fits"
    assert set(rapid.refs) == set(REFTYPES)
    for path in [rapid.uncal, rapid.truth, *rapid.refs.values()]:
        assert path.is_file()
        assert path.parent.name in ("refs", rapid.uncal.parent.name)


def test_uncal_layout(rapid):
    with fits.open(rapid.uncal) as hdul:
        assert hdul[0].data is None
        sci = hdul["SCI"]
        assert sci.data.dtype == np.uint16 and sci.data.shape == (2, 6, 160, 160)
        assert sci.header["BITPIX"] == 16 and sci.header["BZERO"] == 32768
        assert hdul["ZEROFRAME"].data.dtype == np.uint16
        assert hdul["ZEROFRAME"].data.shape == (2, 160, 160)
        group = hdul["GROUP"].data
        assert len(group) == 12
        assert list(group.columns.names) == [
            "integration_number", "group_number", "end_day", "end_milliseconds",
            "end_submilliseconds", "group_end_time", "number_of_columns", "number_of_rows",
            "number_of_gaps", "completion_code_number", "completion_code_text",
            "bary_end_time", "helio_end_time"]
        assert group["group_number"].tolist() == list(range(1, 7)) * 2
        times = hdul["INT_TIMES"].data
        assert times["integration_number"].tolist() == [1, 2]
        assert np.all(np.diff(times["int_start_MJD_UTC"]) > 0)
        assert hdul["ASDF"].columns.names == ["ASDF_METADATA"]
        assert 0 < sci.data.min() and sci.data.max() <= 65535


def test_uncal_header(rapid):
    head = fits.getheader(rapid.uncal)
    expected = {
        "TELESCOP": "JWST", "INSTRUME": "NIRCAM", "DETECTOR": "NRCBLONG", "MODULE": "B",
        "CHANNEL": "LONG", "FILTER": "F444W", "PUPIL": "CLEAR", "EXP_TYPE": "NRC_IMAGE",
        "READPATT": "RAPID", "NINTS": 2, "NGROUPS": 6, "NFRAMES": 1, "GROUPGAP": 0,
        "FRMDIVSR": 1, "DRPFRMS1": 0, "DRPFRMS3": 0, "NOUTPUTS": 1, "SUBARRAY": "SUB160P",
        "SUBSTRT1": 1889, "SUBSTRT2": 1889, "SUBSIZE1": 160, "SUBSIZE2": 160,
        "FASTAXIS": 1, "SLOWAXIS": -2, "ZEROFRAM": True, "DATAMODL": "Level1bModel",
        "PROGRAM": "01234", "OBSERVTN": "001", "VISIT": "001",
    }
    for key, value in expected.items():
        assert head[key] == value, key
    assert head["TFRAME"] == pytest.approx(0.27864)
    assert head["TGROUP"] == pytest.approx((head["NFRAMES"] + head["GROUPGAP"]) * head["TFRAME"])
    assert head["EFFINTTM"] == pytest.approx(5 * head["TGROUP"])
    assert head["EXPSTART"] < head["EXPMID"] < head["EXPEND"]
    for key in ("DATE-OBS", "TIME-OBS", "EFFEXPTM", "DURATION", "FILENAME"):
        assert key in head


def test_averaged_header_and_dark(averaged):
    nframes, gap = READ_PATTERNS["SHALLOW4"]
    head = fits.getheader(averaged.uncal)
    assert (head["NFRAMES"], head["GROUPGAP"], head["FRMDIVSR"]) == (nframes, gap, nframes)
    assert head["TGROUP"] == pytest.approx(5 * 0.05016)
    dark_head = fits.getheader(averaged.refs["dark"])
    total_frames = 8 * nframes + 7 * gap
    assert (dark_head["NFRAMES"], dark_head["GROUPGAP"]) == (1, 0)
    assert dark_head["NGROUPS"] == total_frames
    assert (dark_head["SUBARRAY"], dark_head["SUBSTRT1"], dark_head["SUBSIZE1"]) == ("SUB64P", 1985, 64)
    assert fits.getdata(averaged.refs["dark"], "SCI").shape == (total_frames, 64, 64)


def test_reference_files(rapid):
    expected_shapes = {"mask": ("DQ", (2048, 2048)), "saturation": ("SCI", (2048, 2048)),
                       "superbias": ("SCI", (2048, 2048)), "linearity": ("COEFFS", (5, 2048, 2048)),
                       "gain": ("SCI", (2048, 2048)), "readnoise": ("SCI", (2048, 2048)),
                       "dark": ("SCI", (6, 160, 160))}
    for reftype, path in rapid.refs.items():
        with fits.open(path) as hdul:
            head = hdul[0].header
            assert hdul[0].data is None
            assert "ASDF" not in hdul
            assert head["REFTYPE"] == reftype.upper()
            assert head["INSTRUME"] == "NIRCAM" and head["DETECTOR"] == "NRCBLONG"
            assert head["READPATT"] == "ANY"
            for key in ("USEAFTER", "PEDIGREE", "DESCRIP", "AUTHOR", "DATAMODL", "FASTAXIS", "SLOWAXIS"):
                assert key in head
            extname, shape = expected_shapes[reftype]
            assert hdul[extname].data.shape == shape
            if reftype != "dark":
                assert (head["SUBARRAY"], head["SUBSTRT1"], head["SUBSTRT2"],
                        head["SUBSIZE1"], head["SUBSIZE2"]) == ("FULL", 1, 1, 2048, 2048)
            else:
                assert (head["SUBARRAY"], head["SUBSTRT1"], head["SUBSTRT2"]) == ("SUB160P", 1889, 1889)
                assert (head["NFRAMES"], head["GROUPGAP"], head["NGROUPS"]) == (1, 0, 6)
            if reftype in ("mask", "saturation", "superbias", "linearity", "dark"):
                assert hdul["DQ"].data.dtype == np.uint32
                assert "DQ_DEF" in hdul

    mask = fits.getdata(rapid.refs["mask"], "DQ")
    ref_flag = np.uint32(1 << 31)
    border = np.zeros((2048, 2048), bool)
    border[:4] = border[-4:] = True
    border[:, :4] = border[:, -4:] = True
    assert np.all(mask[border] == ref_flag)                      # REFERENCE_PIXEL, never DNU
    assert not np.any(mask[~border] & ref_flag)
    dead = np.uint32(1024 | DNU)
    assert np.count_nonzero((mask & dead) == dead) > 100
    assert np.count_nonzero(mask & np.uint32(2048)) > 100        # HOT

    sat = fits.getdata(rapid.refs["saturation"], "SCI")
    bias = fits.getdata(rapid.refs["superbias"], "SCI")
    assert 0 < np.count_nonzero(np.isnan(sat)) < 1000
    assert 12000 <= np.nanmin(bias) and np.nanmax(bias) <= 18000
    assert np.nanmin(sat - bias) > 30000 and np.nanmax(sat) < 65535
    gain = fits.getdata(rapid.refs["gain"], "SCI")
    assert np.count_nonzero(~np.isfinite(gain) | (gain <= 0)) > 0
    assert 1.5 < np.nanmedian(gain) < 2.5
    coeffs = fits.getdata(rapid.refs["linearity"], "COEFFS")
    inv = fits.getdata(rapid.refs["linearity"], "INV_COEFFS")
    assert np.count_nonzero(np.isnan(coeffs[1])) > 0
    # INV_COEFFS invert COEFFS to better than a DN over the useful range
    y, x = 1000, 1000
    m = np.linspace(0, 40000, 50)
    q = np.polynomial.polynomial.polyval(m, coeffs[:, y, x].astype(np.float64))
    back = np.polynomial.polynomial.polyval(q, inv[:, y, x].astype(np.float64))
    assert np.max(np.abs(back - m)) < 1.0


def test_full_frame_refs_can_be_cut(tmp_path):
    result = simulate_exposure(tmp_path, subarray="SUB64P", ngroups=3, seed=2, full_frame_refs=False)
    for path in result.refs.values():
        head = fits.getheader(path)
        assert (head["SUBARRAY"], head["SUBSTRT1"]) == ("SUB64P", 1985)
        assert (head["SUBSIZE1"], head["SUBSIZE2"]) == (64, 64)
    assert fits.getdata(result.refs["linearity"], "COEFFS").shape == (5, 64, 64)


# ------------------------------------------------------------------------------------------
# determinism
# ------------------------------------------------------------------------------------------
def test_deterministic_for_a_seed(rapid, tmp_path):
    again = simulate_exposure(tmp_path / "again", subarray="SUB160P", ngroups=6, nints=2,
                              seed=11, cr_rate=150.0, full_frame_refs=False)
    other = simulate_exposure(tmp_path / "other", subarray="SUB160P", ngroups=6, nints=2,
                              seed=12, cr_rate=150.0, full_frame_refs=False)
    with fits.open(rapid.uncal) as a, fits.open(again.uncal) as b, fits.open(other.uncal) as c:
        assert a["SCI"].data.tobytes() == b["SCI"].data.tobytes()
        assert a["ZEROFRAME"].data.tobytes() == b["ZEROFRAME"].data.tobytes()
        assert a["SCI"].data.tobytes() != c["SCI"].data.tobytes()
    first, second = load_truth(rapid.truth), load_truth(again.truth)
    assert np.array_equal(first.rate, second.rate)
    assert np.array_equal(first.cosmic_rays, second.cosmic_rays)
    dark_a = fits.getdata(rapid.refs["dark"], "SCI")
    dark_b = fits.getdata(again.refs["dark"], "SCI")
    assert np.array_equal(dark_a, dark_b)


# ------------------------------------------------------------------------------------------
# physics against the truth
# ------------------------------------------------------------------------------------------
def test_truth_contents(rapid):
    truth = load_truth(rapid.truth)
    assert truth.rate.shape == (160, 160) and truth.satgroup.shape == (2, 160, 160)
    assert truth.pattern_row.shape == (2, 6, 160) and truth.pattern_col.shape == (2, 6, 160)
    assert truth.params["seed"] == 11 and truth.params["subarray"] == "SUB160P"
    assert len(truth.cosmic_rays) > 0 and set(truth.cosmic_rays.integration) <= {0, 1}
    assert np.all((truth.cosmic_rays.group >= 0) & (truth.cosmic_rays.group < 6))
    assert np.any(truth.cosmic_rays.amplitude > 1000)
    assert np.any(truth.satgroup >= 0)                     # a few sources saturate ...
    assert np.all(truth.satgroup.max(axis=0)[truth.rate < 100] < 0)   # ... faint pixels never
    assert truth.sources["saturating"].sum() >= 1
    # reference pixels (top rows and right columns of this corner subarray) see no light
    assert np.all(truth.rate[-4:, :] == 0) and np.all(truth.rate[:, -4:] == 0)
    assert np.all(truth.badpix[-4:, :] & np.uint32(1 << 31))


def test_linearized_ramp_matches_truth(rapid):
    lin, truth, head = _linearized(rapid)
    clean = _clean(truth)
    tgroup, tframe = head["TGROUP"], head["TFRAME"]
    # group g of a RAPID ramp is read (g + 1) frame times after the reset
    times = (np.arange(head["NGROUPS"]) + 1) * tframe
    residual = lin[:, :, clean] - truth.rate[clean][None, None, :] * times[None, :, None]
    assert abs(residual.mean()) < 0.1
    rn = fits.getdata(rapid.refs["readnoise"])[1888:2048, 1888:2048][clean] / np.sqrt(2)
    assert residual.std() < 1.3 * np.sqrt(np.mean(rn ** 2) + 1.0)

    slope = np.diff(lin, axis=1).mean(axis=1) / tgroup        # mean group difference
    bright = clean & (truth.rate > 200)
    assert np.count_nonzero(bright) > 20
    rel = (slope[:, bright] - truth.rate[bright]) / truth.rate[bright]
    assert abs(np.median(rel)) < 0.01
    faint = clean & (truth.rate < 5)
    assert abs(np.mean(slope[:, faint] - truth.rate[faint])) < 0.5


def test_averaged_ramp_matches_truth(averaged):
    lin, truth, head = _linearized(averaged)
    clean = _clean(truth)
    nframes, gap, tframe = head["NFRAMES"], head["GROUPGAP"], head["TFRAME"]
    times = (np.arange(head["NGROUPS"]) * (nframes + gap) + (nframes + 1) / 2.0) * tframe
    faint = clean & (truth.rate < 1000)
    residual = lin[:, :, faint] - truth.rate[faint][None, None, :] * times[None, :, None]
    assert abs(residual.mean()) < 0.2
    slope = np.diff(lin, axis=1).mean(axis=1) / head["TGROUP"]
    bright = clean & (truth.rate > 200) & (truth.rate < 2000)
    assert np.count_nonzero(bright) > 5
    assert abs(np.median((slope[:, bright] - truth.rate[bright]) / truth.rate[bright])) < 0.01


def test_zeroframe_is_first_frame(rapid, averaged):
    with fits.open(rapid.uncal) as hdul:
        assert np.array_equal(hdul["ZEROFRAME"].data, hdul["SCI"].data[:, 0])    # NFRAMES = 1
    with fits.open(averaged.uncal) as hdul:
        zero = hdul["ZEROFRAME"].data.astype(float)
        first = hdul["SCI"].data[:, 0].astype(float)
    truth = load_truth(averaged.truth)
    clean = _clean(truth) & (truth.rate < 50)
    # the first frame is read 1.5 frame times before the mean time of group 0 (4 frames)
    pattern_step = (truth.pattern_row0[:, :, None] + truth.pattern_col0[:, None, :]
                    - truth.pattern(0, 0)[None])
    diff = (zero - first - pattern_step)[:, clean]
    assert abs(np.median(diff)) < 1.0


def test_saturation_truth_matches_data(rapid):
    truth = load_truth(rapid.truth)
    with fits.open(rapid.uncal) as hdul:
        sci = hdul["SCI"].data
    sat = fits.getdata(rapid.refs["saturation"], "SCI")[1888:2048, 1888:2048]
    over = sci >= sat[None, None]
    first = np.where(over.any(axis=1), over.argmax(axis=1), -1)
    assert np.array_equal(first, truth.satgroup)
    assert np.count_nonzero(truth.satgroup >= 2) > 0          # some saturate mid-ramp


def test_cosmic_ray_jumps(rapid):
    lin, truth, head = _linearized(rapid)
    crs = truth.cosmic_rays
    key = crs.integration * 10**6 + crs.y * 1000 + crs.x
    values, counts = np.unique(key, return_counts=True)
    single = np.isin(key, values[counts == 1])
    checked = 0
    for hit in crs[single & (crs.amplitude > 300) & (crs.group > 0)]:
        i, g, y, x = hit.integration, hit.group, hit.y, hit.x
        if truth.satgroup[i, y, x] >= 0 or truth.badpix[y, x]:
            continue
        diffs = np.diff(lin[i, :, y, x])
        expected_step = truth.rate[y, x] * head["TGROUP"]
        assert diffs[g - 1] - expected_step == pytest.approx(float(hit.amplitude), abs=40 + 0.02 * float(hit.amplitude))
        checked += 1
    assert checked > 3


def test_reference_pixels_carry_pattern_not_light(rapid):
    truth = load_truth(rapid.truth)
    with fits.open(rapid.uncal) as hdul:
        sci = hdul["SCI"].data.astype(np.float64)
    bias = fits.getdata(rapid.refs["superbias"], "SCI")[1888:2048, 1888:2048]
    refs = truth.badpix & np.uint32(1 << 31) != 0
    for i in range(2):
        for g in range(6):
            resid = (sci[i, g] - bias - truth.pattern(i, g))[refs]
            assert abs(resid.mean()) < 1.0                     # only read noise is left
            assert resid.std() < 10.0


# ------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------
def test_cli(tmp_path, capsys):
    status = cli_main(["--outdir", str(tmp_path), "--subarray", "sub64p", "--ngroups", "3",
                       "--readpatt", "bright2", "--seed", "4", "--subarray-refs", "--dark-planes", "3"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "uncal:" in printed and "truth:" in printed
    uncal = next(tmp_path.glob("*_uncal.fits"))
    head = fits.getheader(uncal)
    assert (head["SUBARRAY"], head["READPATT"]) == ("SUB64P", "BRIGHT2")
    assert (head["NFRAMES"], head["NGROUPS"]) == (2, 3)
    dark = next((tmp_path / "refs").glob("*_dark.fits"))
    assert fits.getheader(dark)["NGROUPS"] == 3          # shorter than the 6 frames: extended
    assert cli_main(["--outdir", str(tmp_path / "bad"), "--subarray", "SUB64P",
                     "--detector", "NRCA1"]) == 2


def test_cli_size(tmp_path):
    assert cli_main(["--outdir", str(tmp_path), "--size", "64x2048", "--ngroups", "2",
                     "--subarray-refs", "--detector", "NRCA1"]) == 0
    head = fits.getheader(next(tmp_path.glob("*_uncal.fits")))
    assert head["SUBARRAY"] == "GENERIC" and head["NOUTPUTS"] == 4
    assert (head["SUBSIZE2"], head["SUBSIZE1"]) == (64, 2048)


def test_cli_instrument_read_pattern_by_default(tmp_path):
    # a NIRISS SOSS stripe without --readpatt: NISRAPID, NIRISS's one simulated pattern
    assert cli_main(["--outdir", str(tmp_path), "--detector", "NIS", "--subarray", "substrip96",
                     "--ngroups", "2", "--subarray-refs"]) == 0
    head = fits.getheader(next(tmp_path.glob("*_uncal.fits")))
    assert (head["READPATT"], head["SUBARRAY"], head["EXP_TYPE"]) == ("NISRAPID", "SUBSTRIP96",
                                                                      "NIS_SOSS")


# ------------------------------------------------------------------------------------------
# interoperability with the official data models
# ------------------------------------------------------------------------------------------
def test_stdatamodels_open_without_warnings(rapid):
    pytest.importorskip("stdatamodels")
    from stdatamodels.jwst import datamodels
    from stdatamodels.validate import ValidationWarning

    expected = {"mask": "MaskModel", "saturation": "SaturationModel",
                "superbias": "SuperBiasModel", "linearity": "LinearityModel",
                "dark": "DarkModel", "gain": "GainModel", "readnoise": "ReadnoiseModel"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ValidationWarning)
        with datamodels.open(rapid.uncal) as model:
            assert type(model).__name__ == "Level1bModel"
            assert model.data.shape == (2, 6, 160, 160) and model.data.dtype == np.uint16
            assert model.zeroframe.shape == (2, 160, 160)
            assert len(model.group) == 12 and len(model.int_times) == 2
            meta = model.meta
            assert meta.instrument.detector == "NRCBLONG" and meta.exposure.type == "NRC_IMAGE"
            assert meta.exposure.readpatt == "RAPID" and meta.exposure.nframes == 1
            assert meta.exposure.frame_time == pytest.approx(0.27864)
            assert meta.exposure.zero_frame is True
            assert meta.subarray.name == "SUB160P" and meta.subarray.xstart == 1889
            assert meta.subarray.fastaxis == 1 and meta.subarray.slowaxis == -2
            assert meta.observation.date == "2024-03-31"
        for reftype, path in rapid.refs.items():
            with datamodels.open(path) as model:
                assert type(model).__name__ == expected[reftype], reftype
                assert model.meta.reftype == reftype.upper()
                assert model.meta.instrument.detector == "NRCBLONG"
                if reftype == "mask":
                    assert model.dq.shape == (2048, 2048) and model.dq_def is not None
                elif reftype == "linearity":
                    assert model.coeffs.shape == (5, 2048, 2048)
                    assert model.inv_coeffs.shape == (5, 2048, 2048)
                elif reftype == "dark":
                    assert model.data.shape == (6, 160, 160) and model.dq.shape == (160, 160)
                    assert model.err.shape == (6, 160, 160)
                    assert model.meta.exposure.nframes == 1 and model.meta.exposure.ngroups == 6
                    assert model.meta.subarray.name == "SUB160P"
                else:
                    assert model.data.shape == (2048, 2048)


def test_ramp_model_conversion(rapid):
    pytest.importorskip("stdatamodels")
    from stdatamodels.jwst.datamodels import RampModel

    with RampModel(str(rapid.uncal)) as ramp:
        assert ramp.data.shape == (2, 6, 160, 160)
        assert ramp.meta.exposure.nframes == 1


@pytest.mark.slow
def test_full_frame_smoke(tmp_path):
    result = simulate_exposure(tmp_path, ngroups=3, seed=1)
    with fits.open(result.uncal) as hdul:
        assert hdul["SCI"].data.shape == (1, 3, 2048, 2048)
        assert hdul[0].header["SUBARRAY"] == "FULL" and hdul[0].header["NOUTPUTS"] == 4
    assert fits.getdata(result.refs["dark"], "SCI").shape == (3, 2048, 2048)
    truth = load_truth(result.truth)
    assert truth.rate.shape == (2048, 2048) and len(truth.cosmic_rays) > 100


@pytest.mark.oracle
@pytest.mark.slow
def test_official_pipeline_recovers_truth(rapid, tmp_path):
    """The official calwebb_detector1 turns the simulation back into the injected rates."""
    import jwst_oracle

    jwst_oracle.require_jwst()
    refs = {k: str(v) for k, v in rapid.refs.items()}
    rate_model = jwst_oracle.run_official_detector1(rapid.uncal, refs, tmp_path, save_steps=())
    truth = load_truth(rapid.truth)
    good = _clean(truth) & np.isfinite(rate_model.data) & (rate_model.err > 0)
    pull = (rate_model.data - truth.rate)[good] / rate_model.err[good]
    assert np.count_nonzero(good) > 20000
    assert 0.85 < pull.std() < 1.2
    assert abs(np.median(pull)) < 0.4
    saturated = truth.satgroup.max(axis=0) >= 0
    assert np.all(rate_model.dq[saturated] & 2)
    big = truth.cosmic_rays[(truth.cosmic_rays.amplitude > 200) & (truth.cosmic_rays.group > 0)]
    assert np.mean((rate_model.dq[big.y, big.x] & 4) != 0) > 0.9
