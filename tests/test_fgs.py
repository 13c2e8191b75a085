"""FGS raw guide-star data (GuiderRawModel), of which detector1 runs only dq_init, and the
simulator's FGS layout. FGS science exposures through the pipeline: test_transposed_detectors."""
import numpy as np
import pytest
from astropy.io import fits

import jwst_oracle


def test_simulated_fgs_layout(tmp_path):
    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(tmp_path, detector="GUIDER1", readpatt="FGSRAPID", size=(2048, 64),
                            ngroups=4, nints=2, seed=21)
    header = fits.getheader(sim.uncal)
    assert (header["INSTRUME"], header["DETECTOR"], header["EXP_TYPE"]) == ("FGS", "GUIDER1", "FGS_IMAGE")
    assert (header["FASTAXIS"], header["SLOWAXIS"]) == (-2, -1)
    assert (header["SUBSIZE1"], header["SUBSIZE2"]) == (64, 2048)
    assert "FILTER" not in header and "PUPIL" not in header
    assert fits.getdata(sim.uncal, "SCI").shape == sim.shape == (2, 4, 2048, 64)
    for path in sim.refs.values():
        ref = fits.getheader(path)
        assert (ref["INSTRUME"], ref["FASTAXIS"], ref["SLOWAXIS"]) == ("FGS", -2, -1)
    with pytest.raises(Exception, match="FGSRAPID"):
        simulate_exposure(tmp_path / "bad", detector="GUIDER1", readpatt="RAPID", size=(64, 64))


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
