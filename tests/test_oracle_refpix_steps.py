"""Oracle for the reference-pixel step on simulated exposures: full frame and a 1-output
subarray, each with the side-pixel correction on and off, run through both Step classes."""
import numpy as np
import pytest

import jwst_oracle

pytestmark = [pytest.mark.oracle, pytest.mark.slow]


@pytest.fixture(scope="module", params=["FULL", "SUB160"])
def superbias_product(request, tmp_path_factory):
    jwst_oracle.require_jwst()
    from ramp2slope.dq_init import DQInitStep
    from ramp2slope.saturation import SaturationStep
    from ramp2slope.simulate import simulate_exposure
    from ramp2slope.superbias import SuperBiasStep

    base = tmp_path_factory.mktemp(f"refpix_{request.param}")
    kwargs = dict(ngroups=3, nints=1, seed=21) if request.param == "FULL" else \
        dict(subarray=request.param, ngroups=3, nints=2, seed=22, detector="NRCA1")
    sim = simulate_exposure(base / "sim", **kwargs)
    model = DQInitStep(override_mask=str(sim.refs["mask"])).run(str(sim.uncal))
    model = SaturationStep(override_saturation=str(sim.refs["saturation"]),
                           override_superbias=str(sim.refs["superbias"])).run(model)
    model = SuperBiasStep(override_superbias=str(sim.refs["superbias"])).run(model)
    path = str(base / f"{sim.root}_superbias.fits")
    model.save(path)
    return path


@pytest.mark.parametrize("side", [True, False])
def test_refpix_step_matches_jwst(superbias_product, side):
    jwst_oracle.configure_offline_crds()
    from jwst.refpix import RefPixStep as TheirRefPix

    from ramp2slope import datamodels
    from ramp2slope.refpix import RefPixStep

    theirs = TheirRefPix.call(superbias_product, use_side_ref_pixels=side,
                              override_refpix="N/A", override_sirskernel="N/A")
    before = datamodels.open(superbias_product)
    ours = RefPixStep(use_side_ref_pixels=side).run(before)
    assert ours.meta.cal_step.refpix == theirs.meta.cal_step.refpix == "COMPLETE"
    np.testing.assert_allclose(ours.data, theirs.data, rtol=0, atol=1e-3)
    np.testing.assert_array_equal(ours.pixeldq, theirs.pixeldq)
    np.testing.assert_array_equal(ours.groupdq, theirs.groupdq)
    # The step did something: the data changed by the amplifier/bias offsets.
    assert np.abs(ours.data - before.data).max() > 1.0
