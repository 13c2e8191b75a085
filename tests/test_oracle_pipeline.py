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
}

STEPS = ("dq_init", "saturation", "superbias", "refpix", "linearity", "dark_current", "jump")


@pytest.fixture(scope="module", params=sorted(CASES))
def runs(request, tmp_path_factory):
    jwst_oracle.require_jwst()
    from ramp2slope.simulate import simulate_exposure

    base = tmp_path_factory.mktemp(request.param)
    sim = simulate_exposure(base / "sim", **CASES[request.param])
    theirs, ours = jwst_oracle.run_both(sim, base, steps={"ramp_fit": {"save_opt": True}})
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
