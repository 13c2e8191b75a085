"""End-to-end oracle for MIRI: our Detector1Pipeline against jwst's, step by step, on simulated
MIRI exposures (the MIRI branch: emicorr, firstframe, lastframe, reset, rscd, the 4-D dark and
the reference-column refpix).

Both pipelines run on the same raw file with the same explicit reference files and save every
step's product: GROUPDQ and PIXELDQ identical, SCI within float32 rounding (1e-3 DN), the same
step statuses, REFOUT carried unchanged, and the slope products within the ramp-fitting
tolerances.
"""
import numpy as np
import pytest

import jwst_oracle

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

CASES = {
    # the LRS slitless time series: 50 integrations (reset and dark planes per integration,
    # RSCD's integration-2 rule, a jump statistics mode of its own), streamed one integration at
    # a time by ramp2slope
    "slitlessprism_50ints": dict(subarray="SLITLESSPRISM", ngroups=8, nints=50, seed=21),
    # the imager full frame, 1 x 14 groups: refpix's reference columns, amplifiers and odd/even
    # rows; firstframe and shower flagging on
    "full_1int": dict(subarray="FULL", ngroups=14, nints=1, seed=22, n_showers=4),
    # the EMI correction on (joint algorithm, fitted over the integrations in a first pass)
    "sub256_emicorr": dict(subarray="SUB256", ngroups=10, nints=3, seed=23),
    # step parameters users change: after-jump flagging in both of its bands, firstframe on
    "sub128_parameters": dict(subarray="SUB128", ngroups=12, nints=3, seed=41, cr_rate=30.0),
}
EXTRA_STEPS = {
    "full_1int": {"firstframe": {"skip": False, "save_results": True},
                  "jump": {"find_showers": True}},
    "sub128_parameters": {"firstframe": {"skip": False, "save_results": True},
                          "jump": {"after_jump_flag_dn1": 500.0, "after_jump_flag_time1": 15.0,
                                   "after_jump_flag_dn2": 1000.0, "after_jump_flag_time2": 100.0}},
    "sub256_emicorr": {"emicorr": {"save_results": True}},
}


@pytest.fixture(scope="module", params=sorted(CASES))
def runs(request, tmp_path_factory):
    jwst_oracle.require_jwst()
    from ramp2slope.simulate.miri import simulate_miri_exposure

    base = tmp_path_factory.mktemp(request.param)
    sim = simulate_miri_exposure(base / "sim", **CASES[request.param])
    theirs, ours = jwst_oracle.run_both_miri(sim, base, steps=EXTRA_STEPS.get(request.param),
                                             emicorr="emicorr" in request.param)
    return request.param, sim, theirs, ours


@pytest.mark.parametrize("step", jwst_oracle.MIRI_SAVED_STEPS + ("firstframe", "emicorr"))
def test_step_products_match(runs, step):
    case, sim, theirs, ours = runs
    if step in ("firstframe", "emicorr") and step not in EXTRA_STEPS.get(case, {}):
        pytest.skip(f"{step} is off (its default) in this case")
    jwst_oracle.assert_step_products_match(theirs, ours, sim.root, step,
                                           keywords=jwst_oracle.MIRI_STATUS_KEYWORDS,
                                           extensions=("PIXELDQ", "GROUPDQ", "REFOUT"))


@pytest.mark.parametrize("suffix", ["rate", "rateints"])
def test_slope_products_match(runs, suffix):
    case, sim, theirs, ours = runs
    jwst_oracle.assert_slope_products_match(theirs, ours, sim.root, suffix)
    with jwst_oracle.open_product(theirs, sim.root, suffix) as a, \
            jwst_oracle.open_product(ours, sim.root, suffix) as b:
        for key in jwst_oracle.MIRI_STATUS_KEYWORDS + ("S_RAMP", "S_GANSCL"):
            assert b[0].header.get(key) == a[0].header.get(key), key
        assert sorted(hdu.name for hdu in b) == sorted(hdu.name for hdu in a)


def test_showers_were_flagged(runs):
    case, sim, theirs, ours = runs
    if case != "full_1int":
        pytest.skip("find_showers is off in this case")
    with jwst_oracle.open_product(theirs, sim.root, "jump") as a, \
            jwst_oracle.open_product(ours, sim.root, "jump") as b:
        assert b[0].header["EXTNCRS"] == a[0].header["EXTNCRS"] > 0


def test_rate_recovers_truth(runs):
    case, sim, theirs, ours = runs
    jwst_oracle.assert_rate_recovers_truth(sim, ours, tolerance=0.02)


def test_emi_correction_removes_the_injected_wave(runs):
    case, sim, theirs, ours = runs
    if "emicorr" not in case:
        pytest.skip("emicorr is off in this case")
    from ramp2slope.simulate.miri import EMI_HZ, _emi_ticks, miri_geometry

    with jwst_oracle.open_product(ours, sim.root, "dq_init") as before, \
            jwst_oracle.open_product(ours, sim.root, "emicorr") as after:
        correction = before["SCI"].data - after["SCI"].data
    nints, ngroups = correction.shape[:2]
    start, within, _, _ = _emi_ticks(miri_geometry(CASES[case]["subarray"]), nints, ngroups, "FAST")
    phase = float(np.random.default_rng([CASES[case]["seed"], 606]).uniform(0, 1))
    for i, g in ((0, 3), (nints - 1, ngroups - 2)):
        wave = 3.0 * np.sin(2 * np.pi * (EMI_HZ * (start[i, g] + within) * 1e-5 + phase))
        residual = correction[i, g] - np.repeat(wave, 4, axis=1)
        assert residual.std() < 0.05 * wave.std(), (i, g, residual.std())
