"""ramp2slope.lib: the jwst.lib functions detector1 users call, on ramp2slope's models, against
jwst's own on stdatamodels' models (the same arrays, the same files); and the superstripe forms
of the module-level dq_init interface they go with."""
import numpy as np
import pytest

from ramp2slope import datamodels
from ramp2slope.errors import ReferenceFileError
from ramp2slope.lib.reffile_utils import get_subarray_model
from ramp2slope.lib.stripe_utils import collate_superstripes

pytestmark = [pytest.mark.oracle]
sdm = pytest.importorskip("stdatamodels.jwst.datamodels")
reffile_utils = pytest.importorskip("jwst.lib.reffile_utils")
stripe_utils = pytest.importorskip("jwst.lib.stripe_utils")
helpers = pytest.importorskip("jwst.lib.tests.helpers")


def _full_superbias(path, rng, xstart=1, ystart=1, xsize=2048, ysize=2048):
    model = sdm.SuperBiasModel(data=rng.normal(1.2e4, 300.0, (ysize, xsize)).astype(np.float32),
                               dq=rng.integers(0, 4, (ysize, xsize)).astype(np.uint32),
                               err=rng.random((ysize, xsize)).astype(np.float32))
    sub = model.meta.subarray
    sub.xstart, sub.ystart, sub.xsize, sub.ysize = xstart, ystart, xsize, ysize
    model.meta.instrument.name, model.meta.instrument.detector = "NIRISS", "NIS"
    model.save(str(path))
    return str(path)


def _both(sci_path, ref_path):
    theirs = reffile_utils.get_subarray_model(sdm.open(sci_path), sdm.SuperBiasModel(ref_path))
    ours = get_subarray_model(datamodels.open(sci_path), datamodels.open(ref_path))
    # the reference's own type; jwst gives a plain ReferenceFileModel for superstripes (its
    # schemas have no plane per stripe), ramp2slope keeps the type, which its steps read back
    assert type(ours).__name__ == "SuperBiasModel"
    assert type(theirs).__name__ in ("SuperBiasModel", "ReferenceFileModel")
    for name in ("data", "dq", "err"):
        np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name), err_msg=name)
    return ours, theirs


@pytest.mark.parametrize("kind", ["subarray", "soss_superstripe", "nircam_superstripe", "dhs"])
def test_get_subarray_model_matches_jwst(tmp_path, kind):
    rng = np.random.default_rng(4)
    ref = _full_superbias(tmp_path / "superbias.fits", rng)
    if kind == "subarray":
        sci = sdm.RampModel(data=np.zeros((1, 2, 64, 96), np.float32))
        sub = sci.meta.subarray
        sub.xstart, sub.ystart, sub.xsize, sub.ysize = 1001, 37, 96, 64
    elif kind == "soss_superstripe":
        sci = helpers.make_superstripe_model()
    elif kind == "nircam_superstripe":
        sci = helpers.make_sub64p_multistripe_model()
    else:
        # a multistripe readout without superstripes (SUB82STRIPE2_DHS-like): stripes of one
        # re-read reference row and 40 science rows
        sci = sdm.RampModel(data=np.zeros((1, 2, 82, 2048), np.float32))
        sub = sci.meta.subarray
        sub.name, sub.xstart, sub.ystart, sub.xsize, sub.ysize = "SUB82STRIPE2_DHS", 1, 1, 2048, 82
        sub.fastaxis, sub.slowaxis = -1, 2
        sub.multistripe_reads1, sub.multistripe_skips1 = 1, 400
        sub.multistripe_reads2, sub.multistripe_skips2 = 40, 300
        sub.repeat_stripe, sub.interleave_reads1 = 1, 0
        sub.num_superstripe, sub.superstripe_step = 0, 0
    sci.meta.instrument.name = "NIRISS"
    path = str(tmp_path / "sci_uncal.fits")
    sci.save(path)
    ours, _ = _both(path, ref)
    if kind.endswith("superstripe"):
        assert ours.data.shape == (sci.meta.subarray.num_superstripe,) + sci.data.shape[-2:]


def test_get_subarray_model_refuses_what_it_cannot_cut(tmp_path):
    rng = np.random.default_rng(5)
    ref = _full_superbias(tmp_path / "small.fits", rng, xstart=1, ystart=1, xsize=64, ysize=64)
    sci = datamodels.RampModel(np.zeros((1, 2, 32, 32), np.float32))
    sub = sci.meta.subarray
    sub.xstart, sub.ystart, sub.xsize, sub.ysize = 50, 50, 32, 32
    with pytest.raises(ReferenceFileError, match="do not contain the science subarray"):
        get_subarray_model(sci, datamodels.open(ref))
    with pytest.raises(TypeError, match="Science model must be a ramp2slope data model"):
        get_subarray_model(sdm.RampModel(), datamodels.open(ref))


def test_collate_superstripes_matches_jwst(tmp_path):
    model = helpers.make_superstripe_model(add_inttimes=True)
    rng = np.random.default_rng(6)
    model.data = rng.normal(size=model.data.shape).astype(np.float32)
    path = str(tmp_path / "ss_ramp.fits")
    model.save(path)
    theirs = stripe_utils.collate_superstripes(sdm.open(path))
    ours = collate_superstripes(datamodels.open(path))
    assert type(ours).__name__ == "RampModel"
    for name in ("data", "groupdq", "pixeldq"):
        np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name), err_msg=name)
    assert ours.meta.exposure.nints == theirs.meta.exposure.nints
    assert not ours.meta.subarray.num_superstripe and not theirs.meta.subarray.num_superstripe


@pytest.mark.parametrize("how", ["step", "do_dqinit"])
def test_superstripe_user_dq_as_jwst(tmp_path, how):
    # a user-supplied DQ of one plane per stripe (the shape jwst cuts the MASK to) is OR-ed in
    import jwst_oracle

    jwst_oracle.configure_offline_crds()
    from jwst.dq_init import DQInitStep as TheirDQInit
    from jwst.dq_init.dq_initialization import do_dqinit as their_do_dqinit

    from ramp2slope.dq_init import DQInitStep
    from ramp2slope.dq_init.dq_initialization import do_dqinit

    model = helpers.make_superstripe_model()
    nstripe = model.meta.subarray.num_superstripe
    sci_path = str(tmp_path / "ss_uncal.fits")
    model.save(sci_path)
    mask_path = str(tmp_path / "mask.fits")
    helpers.make_superstripe_mask_model().save(mask_path)
    rng = np.random.default_rng(8)
    user = (rng.random((nstripe,) + model.data.shape[-2:]) < 0.01).astype(np.uint32)
    user[user > 0] = np.array([1, 4], np.uint32)[rng.integers(0, 2, int(user.sum()))]
    user_path = str(tmp_path / "user_dq.fits")
    from astropy.io import fits

    fits.PrimaryHDU(user).writeto(user_path)
    if how == "step":
        theirs = TheirDQInit.call(sci_path, override_mask=mask_path, user_supplied_dq=user_path)
        ours = DQInitStep(override_mask=mask_path, user_supplied_dq=user_path).run(
            datamodels.open(sci_path))
    else:
        theirs = their_do_dqinit(sdm.open(sci_path), sdm.MaskModel(mask_path), user_dq=user)
        ours = do_dqinit(datamodels.open(sci_path), datamodels.open(mask_path), user_dq=user)
    np.testing.assert_array_equal(ours.pixeldq, theirs.pixeldq)
    np.testing.assert_array_equal(ours.groupdq, theirs.groupdq)
    assert (ours.pixeldq & 4).any() and (ours.groupdq & 1).any()
    # another shape: one line, naming the file (the step) or a ValueError (do_dqinit), as jwst
    wrong = str(tmp_path / "wrong_dq.fits")
    fits.PrimaryHDU(user[0]).writeto(wrong)
    if how == "step":
        from ramp2slope.errors import BadInputError

        with pytest.raises(BadInputError, match="wrong_dq.fits: user-supplied DQ of shape"):
            DQInitStep(override_mask=mask_path, user_supplied_dq=wrong).run(
                datamodels.open(sci_path))
    else:
        with pytest.raises(ValueError, match="one plane per stripe"):
            do_dqinit(datamodels.open(sci_path), datamodels.open(mask_path), user_dq=user[0])
