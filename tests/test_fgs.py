"""FGS: science exposures through the pipeline (against jwst, step by step) and raw guide-star
data (GuiderRawModel), of which detector1 runs only dq_init."""
import os

import numpy as np
import pytest
from astropy.io import fits

import jwst_oracle

STEPS = ("dq_init", "saturation", "superbias", "refpix", "linearity", "dark_current", "jump")

CASES = {
    # the fast read runs down the stored columns (|FASTAXIS| = 2): the four amplifiers are
    # horizontal bands of the stored image, read here in a window 64 columns wide
    "guider1_window": dict(detector="GUIDER1", size=(2048, 64), ngroups=4, nints=2, seed=21),
    "guider2_full": dict(detector="GUIDER2", ngroups=3, nints=1, seed=22),
}


def _simulate(folder, case):
    from ramp2slope.simulate import simulate_exposure

    return simulate_exposure(folder, readpatt="FGSRAPID", **CASES[case])


@pytest.fixture(scope="module", params=sorted(CASES))
def runs(request, tmp_path_factory):
    jwst_oracle.require_jwst()
    base = tmp_path_factory.mktemp(request.param)
    sim = _simulate(base / "sim", request.param)
    refs = {k: str(v) for k, v in sim.refs.items()}
    theirs, ours = base / "jwst", base / "ours"
    jwst_oracle.run_official_detector1(sim.uncal, refs, theirs)
    jwst_oracle.run_ours_detector1(sim.uncal, refs, ours)
    return sim, theirs, ours


def _product(folder, root, suffix):
    path = os.path.join(folder, f"{root}_{suffix}.fits")
    assert os.path.exists(path), f"missing product {os.path.basename(path)} in {folder}"
    return fits.open(path)


def test_simulated_fgs_layout(tmp_path):
    sim = _simulate(tmp_path, "guider1_window")
    header = fits.getheader(sim.uncal)
    assert (header["INSTRUME"], header["DETECTOR"], header["EXP_TYPE"]) == ("FGS", "GUIDER1", "FGS_IMAGE")
    assert (header["FASTAXIS"], header["SLOWAXIS"]) == (-2, 1)
    assert (header["SUBSIZE1"], header["SUBSIZE2"]) == (64, 2048)
    assert "FILTER" not in header and "PUPIL" not in header
    assert fits.getdata(sim.uncal, "SCI").shape == sim.shape == (2, 4, 2048, 64)
    for path in sim.refs.values():
        ref = fits.getheader(path)
        assert (ref["INSTRUME"], ref["FASTAXIS"], ref["SLOWAXIS"]) == ("FGS", -2, 1)
    with pytest.raises(Exception, match="FGSRAPID"):
        from ramp2slope.simulate import simulate_exposure
        simulate_exposure(tmp_path / "bad", detector="GUIDER1", readpatt="RAPID", size=(64, 64))


@pytest.mark.oracle
@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS)
def test_step_products_match_jwst(runs, step):
    sim, theirs, ours = runs
    with _product(theirs, sim.root, step) as a, _product(ours, sim.root, step) as b:
        for ext in ("PIXELDQ", "GROUPDQ"):
            np.testing.assert_array_equal(b[ext].data, a[ext].data, err_msg=f"{step} {ext}")
        np.testing.assert_allclose(b["SCI"].data, a["SCI"].data, rtol=0, atol=1e-3,
                                   err_msg=f"{step} SCI")
        assert b[0].header["S_" + {"dq_init": "DQINIT", "saturation": "SATURA", "superbias": "SUPERB",
                                   "refpix": "REFPIX", "linearity": "LINEAR", "dark_current": "DARK",
                                   "jump": "JUMP"}[step]] == "COMPLETE"


@pytest.mark.oracle
@pytest.mark.slow
@pytest.mark.parametrize("suffix", ["rate", "rateints"])
def test_slopes_match_jwst(runs, suffix):
    sim, theirs, ours = runs
    with _product(theirs, sim.root, suffix) as a, _product(ours, sim.root, suffix) as b:
        assert b[0].header["INSTRUME"] == "FGS"
        np.testing.assert_array_equal(b["DQ"].data, a["DQ"].data)
        sa, sb = a["SCI"].data, b["SCI"].data
        np.testing.assert_array_equal(np.isnan(sb), np.isnan(sa))
        valid = np.isfinite(sa) & np.isfinite(sb)
        close = np.isclose(sb[valid], sa[valid], rtol=1e-5, atol=1e-6)
        assert close.mean() >= 0.9999, f"{suffix}: {np.count_nonzero(~close)} slopes differ"
        np.testing.assert_allclose(b["ERR"].data, a["ERR"].data, rtol=1e-4, atol=1e-10)


@pytest.mark.oracle
@pytest.mark.slow
def test_rate_recovers_the_injected_truth(runs):
    # the transposed layout must keep the simulated physics consistent: the rate of clean,
    # well-exposed pixels is the injected one
    from ramp2slope.simulate.truth import load_truth

    sim, _, ours = runs
    truth = load_truth(sim.truth)
    with _product(ours, sim.root, "rate") as rate:
        good = (rate["DQ"].data == 0) & (truth.badpix == 0) & (truth.rate > 50)
        assert good.sum() > 50
        ratio = rate["SCI"].data[good] / truth.rate[good]
        assert abs(np.median(ratio) - 1) < 0.01


# -- raw guide-star data ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def guide_star_file(tmp_path_factory):
    """A raw FGS_ID-IMAGE file (GuiderRawModel) with the simulated guider's MASK reference."""
    base = tmp_path_factory.mktemp("guide")
    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(base / "sim", detector="GUIDER1", readpatt="FGSRAPID", size=(64, 64),
                            ngroups=2, nints=2, seed=5)
    path = base / "jw01234001001_gs-id_1_image-uncal.fits"
    with fits.open(sim.uncal) as hdul:
        hdul[0].header["EXP_TYPE"] = "FGS_ID-IMAGE"
        hdul[0].header["DATAMODL"] = "GuiderRawModel"
        fits.HDUList([hdul[0].copy(), hdul["SCI"].copy(), hdul["ASDF"].copy()]).writeto(path)
    with fits.open(sim.refs["mask"], mode="update") as mask:
        mask["DQ"].data[10, 20] |= 1 | 1024   # DO_NOT_USE | DEAD (in the window at 1,1)
    return path, str(sim.refs["mask"])


def test_guide_star_data_open_as_guider_raw_model(guide_star_file):
    from ramp2slope import datamodels

    path, _ = guide_star_file
    model = datamodels.open(path)
    assert isinstance(model, datamodels.GuiderRawModel)
    assert model.dq.shape == model.data.shape[-2:] and not model.dq.any()


def test_dq_init_on_guide_star_data(guide_star_file, tmp_path):
    from ramp2slope import datamodels
    from ramp2slope.dq_init import DQInitStep

    path, mask = guide_star_file
    result = DQInitStep.call(str(path), override_mask=mask)
    assert isinstance(result, datamodels.GuiderRawModel)
    assert result.meta.cal_step.dq_init == "COMPLETE"
    assert result.dq[10, 20] == datamodels.dqflags.pixel["DO_NOT_USE"] | datamodels.dqflags.pixel["DEAD"]
    saved = tmp_path / "guide_dq_init.fits"
    result.save(saved)
    stdatamodels = pytest.importorskip("stdatamodels.jwst.datamodels")
    with stdatamodels.open(saved) as official:
        assert type(official).__name__ == "GuiderRawModel"
        np.testing.assert_array_equal(official.dq, result.dq)


@pytest.mark.oracle
def test_dq_init_on_guide_star_data_matches_jwst(guide_star_file):
    jwst_oracle.require_jwst()
    jwst_oracle.configure_offline_crds()
    from jwst.dq_init import DQInitStep as TheirStep

    from ramp2slope.dq_init import DQInitStep

    path, mask = guide_star_file
    theirs = TheirStep.call(str(path), override_mask=mask)
    ours = DQInitStep.call(str(path), override_mask=mask)
    assert type(theirs).__name__ == type(ours).__name__ == "GuiderRawModel"
    np.testing.assert_array_equal(ours.dq, theirs.dq)
    assert ours.dq.any()


def test_detector1_refuses_guide_star_data(guide_star_file, tmp_path):
    from ramp2slope.errors import BadInputError
    from ramp2slope.pipeline import Detector1Pipeline
    from ramp2slope.saturation import SaturationStep

    path, _ = guide_star_file
    with pytest.raises(BadInputError, match="calwebb_guider") as info:
        Detector1Pipeline.call(str(path), output_dir=str(tmp_path))
    assert "\n" not in str(info.value)
    with pytest.raises(BadInputError, match="only dq_init"):
        SaturationStep.call(str(path))
    assert not list(tmp_path.iterdir())
