"""NIRSpec IRS2 readouts: the layout, the simulator, and the pipeline against jwst step by step.

An IRS2 full frame stores 3200 rows (2048 science rows, interleaved reference samples and the
reference output); dq_init, saturation and superbias work on that layout, refpix removes the
reference samples, and every later step sees 2048 x 2048.
"""

import numpy as np
import pytest
from astropy.io import fits

import jwst_oracle

STEPS = ("dq_init", "saturation", "superbias", "refpix", "linearity", "dark_current", "jump")

CASES = {
    "nrs1_2ints": dict(detector="NRS1", ngroups=3, nints=2, seed=41),
    "nrs2": dict(detector="NRS2", ngroups=3, nints=1, seed=42),
}
#: NRS2's run stops after dark_current: what is IRS2's (the 3200-row layout, its flip on NRS2)
#: ends with refpix, and the later steps see an ordinary 2048 x 2048 ramp, which NRS1's run
#: takes through jump and ramp_fit (about 10 s of jwst's time saved)
LAST_STEP = {"nrs1_2ints": "ramp_fit", "nrs2": "dark_current"}
CASE_STEPS = [(case, step) for case in sorted(CASES) for step in STEPS
              if LAST_STEP[case] == "ramp_fit" or STEPS.index(step) <= STEPS.index(LAST_STEP[case])]


def test_layout_matches_jwst_masks():
    jwst_oracle.require_jwst()
    from jwst.refpix.irs2_subtract_reference import make_irs2_mask
    from jwst.saturation import x_irs2

    from ramp2slope.datamodels.irs2_layout import IRS2Layout, normal_mask, rows_mask

    for n, r in ((16, 4), (8, 2), (32, 8), (16, 8)):
        layout = IRS2Layout(n, r)
        mask = normal_mask(layout.length, layout)
        assert mask.sum() == 2048
        np.testing.assert_array_equal(mask, make_irs2_mask(2048, layout.length, n, r))
        np.testing.assert_array_equal(
            mask, x_irs2.make_mask(np.zeros((1, layout.length, 2048)), n=n, r=r))
    np.testing.assert_array_equal(rows_mask("NRS2", 3200), normal_mask(3200)[::-1])
    with pytest.raises(ValueError, match="NRS1 and NRS2"):
        rows_mask("NRCA1", 3200)


@pytest.fixture(scope="module")
def nrs1_sim(tmp_path_factory):
    from ramp2slope.simulate.irs2 import simulate_irs2_exposure

    return simulate_irs2_exposure(tmp_path_factory.mktemp("irs2sim"), **CASES["nrs1_2ints"])


def test_simulated_layout(nrs1_sim):
    from ramp2slope.datamodels.irs2_layout import rows_mask

    sim = nrs1_sim
    with fits.open(sim.uncal) as hdul:
        header, sci = hdul[0].header, hdul["SCI"].data
        assert sci.shape == (2, 3, 3200, 2048) and sci.dtype == np.uint16
        assert header["READPATT"] == "NRSIRS2RAPID" and header["SUBSIZE2"] == 2048
        assert (header["NRS_NORM"], header["NRS_REF"]) == (16, 4)
        assert "ZEROFRAME" not in hdul
    rows = rows_mask("NRS1", 3200)
    reference = sci[0, 0][~rows].astype(float)
    # the reference samples hold their own bias (about 11000 DN) and no light
    assert abs(np.median(reference) - 11000) < 200 and reference.std() < 100
    with fits.open(sim.refs["mask"]) as mask, fits.open(sim.refs["superbias"]) as bias:
        assert mask["DQ"].data.shape == (3200, 2048) and bias["SCI"].data.shape == (3200, 2048)
        assert "BAD_REF_PIXEL" in [name.strip() for name in mask["DQ_DEF"].data["NAME"]]
    with fits.open(sim.refs["saturation"]) as sat, fits.open(sim.refs["refpix"]) as refpix:
        assert sat["SCI"].data.shape == (2048, 2048)
        assert len(refpix["IRS2"].data) == 2 * 712 * 2048 and len(refpix["DQ"].data) == 8


def _steps(sim):
    return {"refpix": {"override_refpix": str(sim.refs["refpix"])}}


def _oracle_options(name, sim):
    steps = _steps(sim)
    if LAST_STEP[name] == "ramp_fit":
        return dict(steps=steps)
    for later in ("jump", "ramp_fit"):
        steps[later] = {"skip": True}
    return dict(steps=steps, save_steps=STEPS[:STEPS.index(LAST_STEP[name]) + 1])


@pytest.fixture(scope="module")
def oracle_runs(tmp_path_factory, nrs1_sim):
    """Both pipelines on a case, run once per module: case name -> (sim, jwst's folder, ours).
    Ours is streamed (the pipeline's default for a file), every step's product saved."""
    def prepare(name, base):
        from ramp2slope.simulate.irs2 import simulate_irs2_exposure

        sim = nrs1_sim if name == "nrs1_2ints" else \
            simulate_irs2_exposure(base / "sim", **CASES[name])
        return sim, _oracle_options(name, sim)
    return jwst_oracle.runs_once(tmp_path_factory, prepare)


@pytest.mark.oracle
@pytest.mark.slow
@pytest.mark.parametrize("case,step", CASE_STEPS)
def test_step_products_match_jwst(oracle_runs, case, step):
    sim, theirs, ours = oracle_runs(case)
    jwst_oracle.assert_step_products_match(theirs, ours, sim.root, step)
    with jwst_oracle.open_product(ours, sim.root, step) as product:
        rows = 3200 if step in ("dq_init", "saturation", "superbias") else 2048
        assert product["SCI"].data.shape[-2:] == (rows, 2048)


@pytest.mark.oracle
@pytest.mark.slow
@pytest.mark.parametrize("suffix", ["rate", "rateints"])
def test_slopes_match_jwst(oracle_runs, suffix):
    sim, theirs, ours = oracle_runs("nrs1_2ints")
    jwst_oracle.assert_slope_products_match(theirs, ours, sim.root, suffix)


@pytest.mark.oracle
@pytest.mark.slow
def test_rate_recovers_the_injected_rate(oracle_runs):
    sim, _, ours = oracle_runs("nrs1_2ints")
    jwst_oracle.assert_rate_recovers_truth(sim, ours)


@pytest.mark.oracle
@pytest.mark.slow
def test_report_checks_pass_on_irs2(oracle_runs, tmp_path):
    # the report sees the science rows of the products before refpix, and its refpix section
    # checks the IRS2 correction (not the traditional one's odd/even and side-pixel checks).
    # NRS1 with 2 integrations: the report reads the same products on NRS2
    import json
    import re

    from ramp2slope.report import write_report

    sim, _, ours = oracle_runs("nrs1_2ints")
    out = write_report(str(ours), uncal=sim.uncal, truth=sim.truth, out=str(tmp_path / "report.html"))
    text = open(out, encoding="utf-8").read()
    checks = json.loads(re.search(r'<script type="application/json" id="report-checks">(.*?)'
                                  r'</script>', text, re.S).group(1))
    status = {c["name"]: c["status"] for c in checks}
    # the oracle runs save the step products, not ramp_fit's optional ones
    failed = [(c["name"], c["measured"]) for c in checks if c["status"] == "fail"
              and c["name"] != "Every step's product was saved"]
    assert not failed, failed
    for name in ("SCI unchanged by dq_init", "PIXELDQ is the MASK reference",
                 "Superbias difference equals the reference",
                 "Reference samples removed", "Amplifier drifts removed", "1/f row noise reduced",
                 "ERR describes the slope scatter", "Saturation-group accuracy"):
        assert status[name] == "pass", name
    assert "Odd/even column offsets reduced" not in status


@pytest.mark.oracle
@pytest.mark.slow
def test_streamed_equals_whole(oracle_runs, tmp_path):
    # 2 integrations are streamed one at a time: the bad reference samples are found from both
    # beforehand, the scratch store holds the 2048 rows refpix leaves. The streamed run is the
    # oracle's; the same run on the whole exposure must give the same bytes
    from test_streaming import _assert_same_products

    sim, _, streamed = oracle_runs("nrs1_2ints")
    refs = {k: str(v) for k, v in sim.refs.items()}
    pipeline = jwst_oracle.ours_detector1(refs, tmp_path, steps=_steps(sim))
    pipeline._streaming = False
    pipeline.run(str(sim.uncal))
    _assert_same_products(streamed, tmp_path)


def _irs2_header_variant(src, dst, **cards):
    with fits.open(src) as hdul:
        for key, value in cards.items():
            hdul[0].header[key] = value
        hdul.writeto(dst)


def test_bad_irs2_inputs_fail_in_one_line(nrs1_sim, tmp_path):
    from ramp2slope.errors import BadInputError
    from ramp2slope.pipeline import Detector1Pipeline

    refs = {k: str(v) for k, v in nrs1_sim.refs.items()}
    steps = jwst_oracle.reference_overrides(refs)
    steps["refpix"]["override_refpix"] = refs["refpix"]
    for cards, message in (({"NRS_NORM": 8}, "IRS2 full frame with NRS_NORM=8"),
                           ({"DETECTOR": "NRCA1", "INSTRUME": "NIRCAM"}, "only NIRSpec")):
        bad = tmp_path / f"bad_{len(message)}_uncal.fits"
        _irs2_header_variant(nrs1_sim.uncal, bad, **cards)
        with pytest.raises(BadInputError, match=message):
            Detector1Pipeline.call(str(bad), steps=steps, output_dir=str(tmp_path))
    assert not list(tmp_path.glob("*_rate*.fits"))


@pytest.mark.oracle
@pytest.mark.parametrize("detector,odd_even", [("NRS1", True), ("NRS2", False)])
def test_mean_subtraction_equals_jwst(detector, odd_even):
    # refpix's irs2_mean_subtraction=True: jwst's traditional top/bottom correction on the
    # IRS2 layout (five sectors, the interleaved samples' own parity), bit for bit
    jwst_oracle.require_jwst()
    from jwst.refpix import reference_pixels
    from stdatamodels.jwst.datamodels import RampModel, dqflags

    from ramp2slope.datamodels.irs2_layout import IRS2Layout
    from ramp2slope.refpix.irs2_mean import subtract_irs2_means

    rng = np.random.default_rng(5)
    model = RampModel((1, 2, 3200, 2048))
    model.meta.instrument.name, model.meta.instrument.detector = "NIRSPEC", detector
    axes = (2, 1) if detector == "NRS1" else (-2, -1)
    model.meta.subarray.fastaxis, model.meta.subarray.slowaxis = axes
    model.meta.subarray.name = "FULL"
    model.meta.subarray.xstart = model.meta.subarray.ystart = 1
    model.meta.subarray.xsize = model.meta.subarray.ysize = 2048
    model.meta.exposure.nrs_normal, model.meta.exposure.nrs_reference = 16, 4
    # a level per sector and parity that the correction must take out, plus noise
    model.data[:] = rng.normal(1000, 30, model.data.shape).astype(np.float32)
    model.data += (np.arange(3200) // 640 * 10.0 + np.arange(3200) % 2)[:, None].astype(np.float32)
    model.pixeldq[:, :4] = model.pixeldq[:, -4:] = dqflags.pixel["REFERENCE_PIXEL"]
    model.pixeldq[700:704, :] |= dqflags.pixel["DO_NOT_USE"]
    data, pixeldq = model.data.copy(), model.pixeldq.copy()
    reference_pixels.correct_model(
        model, odd_even, False, 11, 1.0, False,
        {"refpix_algorithm": "median", "sirs_kernel_model": None, "sigreject": 4.0,
         "gaussmooth": 1.0, "halfwidth": 30}, 3.0)
    subtract_irs2_means(data, pixeldq, detector, IRS2Layout(), odd_even, 3.0)
    np.testing.assert_array_equal(data, model.data)
    assert abs(np.median(data)) < 5   # the levels are gone


def test_refpix_table_with_wrong_row_count_skips_the_step(nrs1_sim, tmp_path):
    # as in jwst: the count is logged as an error and refpix is SKIPPED, the ramp keeps its
    # 3200 rows and no science sample is corrected (the bad reference samples, flagged and
    # replaced before the reference is read, stay replaced, as in jwst)
    from ramp2slope import datamodels
    from ramp2slope.datamodels.irs2_layout import rows_mask
    from ramp2slope.refpix import RefPixStep

    bad = tmp_path / "refpix_short.fits"
    with fits.open(nrs1_sim.refs["refpix"]) as hdul:
        hdul["IRS2"] = fits.BinTableHDU(hdul["IRS2"].data[:-2], header=hdul["IRS2"].header,
                                        name="IRS2")
        hdul.writeto(bad)
    with datamodels.open(nrs1_sim.uncal) as model:
        before = model.data.copy()
        result = RefPixStep.call(model, override_refpix=str(bad))
    assert result.meta.cal_step.refpix == "SKIPPED"
    assert result.data.shape == before.shape == (2, 3, 3200, 2048)
    science = rows_mask("NRS1", 3200)
    np.testing.assert_array_equal(result.data[:, :, science], before[:, :, science])


@pytest.mark.oracle
@pytest.mark.parametrize("detector", ["NRS1", "NRS2"])
def test_irs2_saturation_matches_jwst_where_the_group2_test_decides(detector):
    # pixels whose group 1 jumped and whose group 2 reached the threshold: the group-2 test
    # flags group 1 where group 0 predicted no saturation by group 2; the simulated exposures
    # seldom have them
    jwst_oracle.require_jwst()
    from stdatamodels.jwst import datamodels
    from jwst.saturation.saturation import irs2_flag_saturation

    from ramp2slope.datamodels.irs2_layout import rows_mask
    from ramp2slope.saturation.irs2 import flag_saturation_irs2

    rng = np.random.default_rng(8)
    ngroups, nframes = 4, 5
    rows = rows_mask(detector, 3200)
    thresh = rng.uniform(30000.0, 40000.0, (2048, 2048)).astype(np.float32)
    bias = rng.uniform(9000.0, 12000.0, (3200, 2048)).astype(np.float32)
    rate = rng.uniform(0.0, 12000.0, (3200, 2048)).astype(np.float32)
    data = (bias + rate * np.arange(1, ngroups + 1, dtype=np.float32)[:, None, None])[None]
    jumped = rng.random((3200, 2048)) < 0.2
    data[0, 1][jumped] += rng.uniform(0.0, 30000.0, int(jumped.sum())).astype(np.float32)
    # group 2 at the threshold by the jump's end or by a saturating last frame
    last_frame = rng.uniform(30000.0, 45000.0, (3200, 2048)).astype(np.float32)
    data[0, 2][jumped] = np.maximum(data[0, 1] + rate, last_frame)[jumped]
    data[0, 0, ::97, ::89] = 0.0                                   # A/D floor
    sat_dq = np.zeros((2048, 2048), dtype=np.uint32)
    sat_dq[::50, ::60] = 2                                         # NO_SAT_CHECK

    model = datamodels.RampModel(data=data.copy(), groupdq=np.zeros(data.shape, np.uint8),
                                 pixeldq=np.zeros((3200, 2048), np.uint32))
    model.meta.instrument.name, model.meta.instrument.detector = "NIRSPEC", detector
    model.meta.exposure.nframes, model.meta.exposure.zero_frame = nframes, False
    model.meta.exposure.nrs_normal, model.meta.exposure.nrs_reference = 16, 4
    reference = datamodels.SaturationModel(data=thresh.copy(), dq=sat_dq.copy())
    superbias = datamodels.SuperBiasModel(data=bias.copy())
    for m in (model, reference, superbias):     # the full frame (SUBSIZE2 counts science rows)
        m.meta.subarray.xstart, m.meta.subarray.ystart = 1, 1
        m.meta.subarray.xsize, m.meta.subarray.ysize = 2048, 2048
    theirs = irs2_flag_saturation(model, reference, 1, True, bias_model=superbias).groupdq

    groupdq = np.zeros(data.shape, np.uint8)
    pixeldq = np.zeros((3200, 2048), np.uint32)
    flag_saturation_irs2(data, groupdq, pixeldq, thresh, sat_dq, rows, n_pix_grow_sat=1,
                         nframes=nframes, bias=bias)
    without_group2_test = np.zeros(data.shape, np.uint8)
    flag_saturation_irs2(data, without_group2_test, pixeldq.copy(), thresh, sat_dq, rows,
                         n_pix_grow_sat=1, use_readpatt=False, nframes=nframes, bias=bias)
    assert (groupdq[0, 1] != without_group2_test[0, 1]).sum() > 100
    np.testing.assert_array_equal(groupdq, theirs)
