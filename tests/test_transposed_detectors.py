"""NIRSpec (traditional readout), NIRISS and FGS science exposures: detectors stored transposed
(|FASTAXIS| = 2). The simulator's layout is checked against the header's axes, and the pipeline
against jwst's, step by step, as for NIRCam in test_oracle_pipeline."""
import numpy as np
import pytest
from astropy.io import fits

import jwst_oracle

STEPS = ("dq_init", "saturation", "superbias", "refpix", "linearity", "dark_current", "jump")
STATUS = {"dq_init": "S_DQINIT", "saturation": "S_SATURA", "superbias": "S_SUPERB", "refpix": "S_REFPIX",
          "linearity": "S_LINEAR", "dark_current": "S_DARK", "jump": "S_JUMP"}

CASES = {
    # full frames, and windows 64 columns wide read through all four amplifiers (with
    # |FASTAXIS| = 2 the amplifiers are horizontal bands of the stored image)
    "nrs1_full": dict(detector="NRS1", ngroups=3, nints=1, seed=31),
    # an IFU exposure: jwst's ramp fit makes its rate an IFUImageModel
    "nrs2_window": dict(detector="NRS2", size=(2048, 64), ngroups=5, nints=1, seed=32,
                        exp_type="NRS_IFU"),
    "nis_window": dict(detector="NIS", size=(2048, 64), ngroups=4, nints=2, seed=33),
    # a SOSS time series in its 96-row stripe at the top of the stored frame (one output, the
    # reference rows of that edge only)
    "nis_soss": dict(detector="NIS", subarray="SUBSTRIP96", ngroups=4, nints=2, seed=34),
    "guider1_window": dict(detector="GUIDER1", size=(2048, 64), ngroups=4, nints=2, seed=21),
    "guider2_full": dict(detector="GUIDER2", ngroups=3, nints=1, seed=22),
}
#: The full frames' runs stop after dark_current: what a full frame adds (the reference rows
#: and columns of all four sides, four amplifiers across the transposed axis) ends with refpix;
#: jump and ramp_fit work pixel by pixel, and the windows take them (and the rates) through
#: on the same detectors, about 20 s of jwst's time saved
FULL_FRAME_LAST_STEP = "dark_current"
CASE_STEPS = [(case, step) for case in sorted(CASES) for step in STEPS
              if not case.endswith("_full") or STEPS.index(step) <= STEPS.index(FULL_FRAME_LAST_STEP)]
WITH_RATES = [case for case in sorted(CASES) if not case.endswith("_full")]


def _simulate(folder, detector, **kw):
    from ramp2slope.simulate import simulate_exposure
    from ramp2slope.simulate.detector import INSTRUMENT, INSTRUMENT_MODES

    return simulate_exposure(folder, detector=detector,
                             readpatt=INSTRUMENT_MODES[INSTRUMENT[detector]].readpatt, **kw)


@pytest.mark.parametrize("detector", ["NRS1", "NRS2", "NIS", "GUIDER1", "GUIDER2"])
def test_amplifier_pattern_follows_the_header_axes(tmp_path, detector):
    # The simulated amplifier and odd/even offsets are constant over each amplifier's detector
    # columns; with |FASTAXIS| = 2 those run down the stored rows. Grouping the stored rows by
    # the amplifier and parity the header implies must leave a single value per group: data not
    # transposed (the row term is then 1/f noise) would fail. Over the full 2048 rows the sign
    # of FASTAXIS only relabels the groups, for this check as for refpix.
    from ramp2slope.simulate.truth import load_truth

    sim = _simulate(tmp_path, detector, size=(2048, 8), ngroups=2, seed=3)
    header = fits.getheader(sim.uncal)
    fast = header["FASTAXIS"]
    assert abs(fast) == 2 and abs(header["SLOWAXIS"]) == 1
    truth = load_truth(sim.truth)
    rows = np.arange(2048)
    detector_column = rows if fast > 0 else 2047 - rows
    group = (detector_column // 512) * 2 + detector_column % 2
    term = truth.pattern(0, 1)[:, 0] - truth.pattern(0, 1)[0, 0]   # the per-row part
    spreads = [np.ptp(term[group == g]) for g in range(8)]
    assert max(spreads) < 1e-4, spreads
    assert np.ptp([term[group == g][0] for g in range(8)]) > 1.0   # the offsets do differ


@pytest.fixture(scope="module")
def oracle_runs(tmp_path_factory):
    """Both pipelines on a case, run once per module: case name -> (sim, jwst's folder, ours)."""
    def prepare(name, base):
        case = dict(CASES[name])
        exp_type = case.pop("exp_type", None)
        sim = _simulate(base / "sim", **case)
        if exp_type:
            with fits.open(sim.uncal, mode="update") as hdul:
                hdul[0].header["EXP_TYPE"] = exp_type
        options = {}
        if name.endswith("_full"):
            last = STEPS.index(FULL_FRAME_LAST_STEP)
            options = dict(steps={later: {"skip": True} for later in ("jump", "ramp_fit")},
                           save_steps=STEPS[:last + 1])
        return sim, options
    return jwst_oracle.runs_once(tmp_path_factory, prepare)


@pytest.mark.oracle
@pytest.mark.slow
@pytest.mark.parametrize("case,step", CASE_STEPS)
def test_step_products_match_jwst(oracle_runs, case, step):
    sim, theirs, ours = oracle_runs(case)
    jwst_oracle.assert_step_products_match(theirs, ours, sim.root, step)
    with jwst_oracle.open_product(ours, sim.root, step) as product:
        assert product[0].header[STATUS[step]] == "COMPLETE"


@pytest.mark.oracle
@pytest.mark.slow
@pytest.mark.parametrize("case", WITH_RATES)
@pytest.mark.parametrize("suffix", ["rate", "rateints"])
def test_slopes_match_jwst(oracle_runs, case, suffix):
    sim, theirs, ours = oracle_runs(case)
    jwst_oracle.assert_slope_products_match(theirs, ours, sim.root, suffix)


@pytest.mark.oracle
@pytest.mark.slow
@pytest.mark.parametrize("case", WITH_RATES)
def test_rate_recovers_the_injected_truth(oracle_runs, case):
    sim, _, ours = oracle_runs(case)
    jwst_oracle.assert_rate_recovers_truth(sim, ours)


@pytest.mark.oracle
@pytest.mark.parametrize("case", WITH_RATES)
def test_rate_models_are_jwsts(oracle_runs, case):
    # the official ramp fit makes the rate of an NRS_IFU exposure an IFUImageModel (stage 2's
    # IFU pipeline expects one), other rates ImageModels; a rateints is always a CubeModel
    sim, theirs, ours = oracle_runs(case)
    exp_type = fits.getheader(sim.uncal)["EXP_TYPE"]
    expected = {"rate": "IFUImageModel" if exp_type == "NRS_IFU" else "ImageModel",
                "rateints": "CubeModel"}
    for suffix, kind in expected.items():
        with jwst_oracle.open_product(theirs, sim.root, suffix) as a, \
                jwst_oracle.open_product(ours, sim.root, suffix) as b:
            assert a[0].header["DATAMODL"] == b[0].header["DATAMODL"] == kind
    stdatamodels = pytest.importorskip("stdatamodels.jwst.datamodels")
    with stdatamodels.open(str(ours / f"{sim.root}_rate.fits")) as rate:
        assert type(rate).__name__ == expected["rate"]
