"""End-to-end oracle: our Detector1Pipeline against jwst's, step by step, on simulated exposures.

Both pipelines run on the same raw file with the same explicit reference files and save every
step's product; each product is compared: GROUPDQ and PIXELDQ identical, SCI within float32
rounding (1e-3 DN), and the slope products within the ramp-fitting tolerances.
"""

import numpy as np
import pytest

import jwst_oracle

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

CASES = {
    # 4 outputs, full-frame amplifier layout (rows are short to keep the test quick)
    "subgrism64_rapid": dict(subarray="SUBGRISM64", ngroups=5, nints=2, readpatt="RAPID", seed=11),
    # 1 output subarray with frame averaging and a group gap (read-level linearity, dark averaging)
    "sub160_medium8": dict(subarray="SUB160", ngroups=4, nints=1, readpatt="MEDIUM8", seed=12),
    # NFRAMES=2 with a dark shorter than the exposure (the dark is extended)
    "sub160_bright2_short_dark": dict(subarray="SUB160", ngroups=6, nints=2, readpatt="BRIGHT2",
                                      seed=13, dark_nplanes=5),
    # 8 frames a group and a gap of 12 between groups, and many cosmic rays, with
    # step parameters users change: after-jump flagging, snowballs, a wider saturation growth
    # and a group range for the fit
    "sub400p_deep8_parameters": dict(subarray="SUB400P", ngroups=6, nints=2, readpatt="DEEP8",
                                     seed=21, cr_rate=10.0),
}

#: Step parameters of a case (besides ``save_opt``, which every case sets to compare fitopt)
CASE_STEPS = {
    "sub400p_deep8_parameters": {
        "saturation": {"n_pix_grow_sat": 2},
        "jump": {"after_jump_flag_dn1": 10.0, "after_jump_flag_time1": 300.0,
                 "expand_large_events": True, "min_jump_area": 3.0,
                 "sat_required_snowball": False},
        "ramp_fit": {"firstgroup": 1, "lastgroup": 4, "suppress_one_group": False},
    },
}

STEPS = ("dq_init", "saturation", "superbias", "refpix", "linearity", "dark_current", "jump")


@pytest.fixture(scope="module", params=sorted(CASES))
def runs(request, tmp_path_factory):
    jwst_oracle.require_jwst()
    from ramp2slope.simulate import simulate_exposure

    base = tmp_path_factory.mktemp(request.param)
    sim = simulate_exposure(base / "sim", **CASES[request.param])
    steps = {name: dict(params) for name, params in CASE_STEPS.get(request.param, {}).items()}
    steps.setdefault("ramp_fit", {})["save_opt"] = True
    theirs, ours = jwst_oracle.run_both(sim, base, steps=steps)
    return sim, theirs, ours


def _product(folder, root, suffix):
    return jwst_oracle.open_product(folder, root, suffix)


@pytest.mark.parametrize("step", STEPS)
def test_step_products_match(runs, step):
    sim, theirs, ours = runs
    jwst_oracle.assert_step_products_match(theirs, ours, sim.root, step)


@pytest.mark.parametrize("suffix", ["rate", "rateints"])
def test_slope_products_match(runs, suffix):
    sim, theirs, ours = runs
    jwst_oracle.assert_slope_products_match(theirs, ours, sim.root, suffix)


def test_fitopt_products_match(runs):
    sim, theirs, ours = runs
    with _product(theirs, sim.root, "fitopt") as a, _product(ours, sim.root, "fitopt") as b:
        assert b[0].header["DATAMODL"] == "RampFitOutputModel"
        for ext in ("SLOPE", "SIGSLOPE", "YINT", "SIGYINT", "PEDESTAL", "WEIGHTS", "CRMAG",
                    "VAR_POISSON", "VAR_RNOISE"):
            assert b[ext].data.shape == a[ext].data.shape, ext
            np.testing.assert_allclose(b[ext].data, a[ext].data, rtol=1e-4, atol=1e-6,
                                       equal_nan=True, err_msg=ext)


def test_ramp_fit_skipped_gives_the_calibrated_ramp(tmp_path):
    """With ramp_fit skipped, jwst returns the calibrated RampModel (after gain_scale) and saves
    it as ``_ramp``, with no rate products: so does ramp2slope, for a multi-integration
    exposure too (which then is not streamed: the result is the whole ramp)."""
    jwst_oracle.require_jwst()
    from ramp2slope.datamodels import RampModel
    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(tmp_path / "sim", subarray="SUB160", ngroups=4, nints=2, seed=3)
    refs = {k: str(v) for k, v in sim.refs.items()}
    steps = {"ramp_fit": {"skip": True}}
    jwst_oracle.run_official_detector1(sim.uncal, refs, tmp_path / "jwst", steps=steps, save_steps=())
    result = jwst_oracle.run_ours_detector1(sim.uncal, refs, tmp_path / "ours", steps=steps,
                                            save_steps=())
    assert isinstance(result, RampModel) and result.data.shape == (2, 4, 160, 160)
    for folder in ("jwst", "ours"):
        assert sorted(p.name for p in (tmp_path / folder).iterdir()) == [f"{sim.root}_ramp.fits"]
    with _product(tmp_path / "jwst", sim.root, "ramp") as a, \
            _product(tmp_path / "ours", sim.root, "ramp") as b:
        assert [h.name for h in b] == [h.name for h in a]
        for ext in ("PIXELDQ", "GROUPDQ", "ZEROFRAME"):
            np.testing.assert_array_equal(b[ext].data, a[ext].data, err_msg=ext)
        np.testing.assert_allclose(b["SCI"].data, a["SCI"].data, rtol=0, atol=1e-3)
        for key in ("S_RAMP", "S_GANSCL", "S_JUMP", "DATAMODL"):
            assert b[0].header[key] == a[0].header[key], key
        assert b[0].header["S_RAMP"] == "SKIPPED"
