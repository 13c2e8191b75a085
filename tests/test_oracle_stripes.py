"""Superstripe / multistripe geometry against jwst 3.0.0's ``jwst.lib.stripe_utils``: the row
ranges, reference cut-outs into stripes, and the collation of a superstripe ramp into an
ordinary ramp with its INT_TIMES tables."""
import numpy as np
import pytest

from ramp2slope.references.stripes import (
    StripeLayout, collate_superstripes, stripe_int_times, stripe_reference, substripe_ranges,
    superstripe_ranges)

pytestmark = [pytest.mark.oracle]

stripe_utils = pytest.importorskip("jwst.lib.stripe_utils")
helpers = pytest.importorskip("jwst.lib.tests.helpers")


def _layout(model):
    sub = model.meta.subarray
    return StripeLayout(str(sub.name), sub.xstart, sub.ystart, sub.xsize, sub.ysize, sub.fastaxis,
                        sub.slowaxis, sub.multistripe_reads1 or 0, sub.multistripe_skips1 or 0,
                        sub.multistripe_reads2 or 0, sub.multistripe_skips2 or 0,
                        sub.repeat_stripe or 0, sub.interleave_reads1 or 0,
                        sub.superstripe_step or 0, sub.num_superstripe or 0)


def _soss(nstripe=10, reads1=4, reads2=204, step=204, repeat=1, interleave=1, ysize=256,
          xsize=208, name="SUB204STRIPE_SOSS", skips1=0, skips2=0):
    model = helpers.make_superstripe_model(add_inttimes=True)
    sub = model.meta.subarray
    sub.num_superstripe, sub.multistripe_reads1, sub.multistripe_reads2 = nstripe, reads1, reads2
    sub.superstripe_step, sub.repeat_stripe, sub.interleave_reads1 = step, repeat, interleave
    sub.multistripe_skips1, sub.multistripe_skips2 = skips1, skips2
    sub.name, sub.xsize, sub.ysize = name, xsize, ysize
    return model


LAYOUTS = {
    "soss204": {},
    "other_name": {"name": "SUBXSTRIPE"},
    "no_interleave": {"interleave": 0, "skips1": 3},
    "no_repeat": {"repeat": 0, "reads1": 4, "reads2": 51, "xsize": 208, "skips2": 10, "step": 60,
                  "nstripe": 3},
}


def _as_lists(ranges):
    return {k: [tuple(int(v) for v in r) for r in ranges[k]] for k in ranges}


@pytest.mark.parametrize("case", LAYOUTS)
def test_superstripe_ranges_match_jwst(case):
    model = _soss(**LAYOUTS[case])
    ours = superstripe_ranges(_layout(model))
    theirs = stripe_utils.generate_superstripe_ranges(model)
    for key, idx in (("full", 0), ("subarray", 1), ("reference_full", 2), ("reference_subarray", 3)):
        assert _as_lists(theirs[key]) == {s: [tuple(r) for r in ours[s][idx]] for s in range(len(ours))}


def _nircam(substripe=False):
    model = helpers.make_sub64p_multistripe_model(add_inttimes=True)
    if substripe:
        model.meta.subarray.num_superstripe = 0
        model.meta.subarray.superstripe_step = 0
    return model


def _fast_cut(ref, model):
    # what jwst's stripe_read does to a full-frame reference before cutting stripes
    sub = model.meta.subarray
    if abs(sub.fastaxis) == 1:
        return ref[..., sub.xstart - 1:sub.xstart - 1 + sub.xsize]
    return ref[..., sub.ystart - 1:sub.ystart - 1 + sub.ysize, :]


def test_nircam_superstripe_matches_jwst():
    # SUB64P_SUPSTP002: reversed slow axis, 64 one-row stripes, one reference row re-read
    model = _nircam()
    layout = _layout(model)
    ours = superstripe_ranges(layout)
    theirs = stripe_utils.generate_superstripe_ranges(model)
    assert _as_lists(theirs["full"]) == {s: [tuple(r) for r in ours[s][0]] for s in range(64)}
    assert _as_lists(theirs["reference_full"]) == {s: [tuple(r) for r in ours[s][2]] for s in range(64)}
    ref = np.random.default_rng(3).normal(size=(2048, 2048)).astype(np.float32)
    np.testing.assert_array_equal(stripe_reference(ref, layout, ref_fast_start=1),
                                  stripe_utils.generate_stripe_reference(_fast_cut(ref, model), model))


def test_substripe_matches_jwst():
    model = _nircam(substripe=True)
    layout = _layout(model)
    theirs = stripe_utils.generate_substripe_ranges(model)
    expected = [(tuple(theirs["full"][k]), tuple(theirs["subarray"][k])) for k in theirs["full"]]
    expected += [(tuple(theirs["reference_full"][k]), tuple(theirs["reference_subarray"][k]))
                 for k in theirs["reference_full"]]
    assert substripe_ranges(layout) == expected
    ref = np.random.default_rng(4).normal(size=(3, 2048, 2048)).astype(np.float32)
    np.testing.assert_array_equal(stripe_reference(ref, layout, ref_fast_start=1),
                                  stripe_utils.generate_stripe_reference(_fast_cut(ref, model), model))


@pytest.mark.parametrize("case", ["soss204", "no_interleave"])
def test_stripe_reference_matches_jwst(case):
    model = _soss(**LAYOUTS[case])
    ref = np.random.default_rng(1).normal(size=(2048, 2048)).astype(np.float32)
    ours = stripe_reference(ref, _layout(model), ref_fast_start=1)
    theirs = stripe_utils.generate_stripe_reference(_fast_cut(ref, model), model)
    assert ours.shape == theirs.shape == (model.meta.subarray.num_superstripe, 256, 208)
    np.testing.assert_array_equal(ours, theirs)
    dq = np.random.default_rng(2).integers(0, 2**31, size=(2048, 2048)).astype(np.uint32)
    np.testing.assert_array_equal(stripe_reference(dq, _layout(model), ref_fast_start=1),
                                  stripe_utils.generate_stripe_reference(_fast_cut(dq, model), model))


@pytest.mark.parametrize("case", ["soss204", "other_name", "nircam"])
def test_collate_matches_jwst(case):
    model = _nircam() if case == "nircam" else _soss(**LAYOUTS[case])
    rng = np.random.default_rng(5)
    model.data = rng.normal(size=model.data.shape).astype(np.float32)
    model.groupdq = rng.integers(0, 4, size=model.data.shape).astype(np.uint8)
    nstripe = model.meta.subarray.num_superstripe
    model.pixeldq = rng.integers(0, 8, size=(nstripe,) + model.data.shape[-2:]).astype(np.uint32)
    model.meta.exposure.zero_frame = True
    model.zeroframe = rng.normal(size=(model.data.shape[0],) + model.data.shape[-2:]).astype(np.float32)
    layout = _layout(model)
    data, gdq, pdq, zf, start, nrepeat = collate_superstripes(
        layout, model.data.copy(), model.groupdq.copy(), model.pixeldq.copy(), model.zeroframe.copy())
    parent, per_stripe = stripe_int_times(model.int_times, nstripe, model.meta.exposure.integration_start)
    theirs = stripe_utils.collate_superstripes(model)
    np.testing.assert_array_equal(data, theirs.data)
    np.testing.assert_array_equal(gdq, theirs.groupdq)
    np.testing.assert_array_equal(pdq, theirs.pixeldq)
    np.testing.assert_array_equal(zf, theirs.zeroframe)
    assert nrepeat == theirs.data.shape[1] // model.data.shape[1]
    assert start == (theirs.meta.subarray.xstart if abs(layout.slowaxis) == 1 else theirs.meta.subarray.ystart)
    for ours_rows, table in ((parent, theirs.int_times), (per_stripe, theirs.int_times_stripe)):
        assert len(ours_rows) == len(table)
        for mine, row in zip(ours_rows, table):
            assert tuple(mine) == tuple(row)


def test_layout_from_ramp2slope_model_and_file(tmp_path):
    # the stripe keywords round-trip through a ramp2slope model and its FITS file
    from ramp2slope import datamodels

    theirs = _nircam()
    model = datamodels.RampModel(np.zeros((2, 1, 8, 64), dtype=np.float32))
    for name in ("name", "xstart", "ystart", "xsize", "ysize", "fastaxis", "slowaxis",
                 "multistripe_reads1", "multistripe_skips1", "multistripe_reads2",
                 "multistripe_skips2", "repeat_stripe", "interleave_reads1", "superstripe_step",
                 "num_superstripe"):
        setattr(model.meta.subarray, name, getattr(theirs.meta.subarray, name))
    model.save(tmp_path / "x_ramp.fits")
    with datamodels.open(tmp_path / "x_ramp.fits") as back:
        assert StripeLayout.from_model(back) == _layout(theirs)
    assert StripeLayout.from_model(back).slow_start_index() == 2048 - 2046


# -- the steps, on a NIRISS SOSS superstripe exposure with full-frame references ------------------

def _full_frame_refs(base, rng, instrument="NIRISS", detector="NIS"):
    from stdatamodels.jwst import datamodels as sdm

    def meta(model, reftype):
        model.meta.instrument.name, model.meta.instrument.detector = instrument, detector
        model.meta.reftype, model.meta.description, model.meta.author = reftype, "test", "test"
        model.meta.pedigree, model.meta.useafter = "GROUND", "2020-01-01T00:00:00"
        model.meta.subarray.name = "FULL"
        model.meta.subarray.xstart = model.meta.subarray.ystart = 1
        model.meta.subarray.xsize = model.meta.subarray.ysize = 2048
        path = str(base / f"{reftype}.fits")
        model.save(path)
        return path

    dq = np.zeros((2048, 2048), np.uint32)
    ref = np.zeros((2048, 2048), bool)
    ref[:4], ref[-4:], ref[:, :4], ref[:, -4:] = True, True, True, True
    dq[ref] = 2**31   # REFERENCE_PIXEL
    bad = rng.random((2048, 2048)) < 0.01
    dq[bad] |= rng.choice(np.array([1, 1024, 2048, 1 | 2**13], np.uint32), bad.sum())
    mask = meta(sdm.MaskModel(dq=dq), "MASK")
    thresh = rng.uniform(3.0e4, 4.0e4, (2048, 2048)).astype(np.float32)
    thresh[rng.random((2048, 2048)) < 0.001] = np.nan
    sdq = np.where(rng.random((2048, 2048)) < 0.002, np.uint32(2**21), np.uint32(0))   # NO_SAT_CHECK
    sat = meta(sdm.SaturationModel(data=thresh, dq=sdq), "SATURATION")
    bias = rng.normal(1.2e4, 300.0, (2048, 2048)).astype(np.float32)
    bdq = np.where(rng.random((2048, 2048)) < 0.002, np.uint32(1), np.uint32(0))
    superbias = meta(sdm.SuperBiasModel(data=bias, dq=bdq, err=np.zeros_like(bias)), "SUPERBIAS")
    gain = meta(sdm.GainModel(data=rng.uniform(1.5, 1.7, (2048, 2048)).astype(np.float32)), "GAIN")
    noise = meta(sdm.ReadnoiseModel(data=rng.uniform(9.0, 12.0, (2048, 2048)).astype(np.float32)),
                 "READNOISE")
    return {"mask": mask, "saturation": sat, "superbias": superbias, "gain": gain, "readnoise": noise,
            "linearity": "N/A", "dark": "N/A"}


@pytest.fixture(scope="module")
def soss_exposure(tmp_path_factory):
    base = tmp_path_factory.mktemp("stripes")
    rng = np.random.default_rng(11)
    refs = _full_frame_refs(base, rng)
    model = helpers.make_superstripe_model(add_inttimes=True, add_zeroframe=True)
    model.meta.exposure.type = "NIS_SOSS"
    model.meta.exposure.readpatt = "NISRAPID"
    model.meta.exposure.group_time = model.meta.exposure.frame_time
    nints, ngroups, ny, nx = model.data.shape
    slope = rng.uniform(10.0, 8000.0, (1, 1, ny, nx))
    ramp = 1.2e4 + slope * np.arange(1, ngroups + 1)[None, :, None, None]
    model.data = (ramp + rng.normal(0, 10.0, (nints, ngroups, ny, nx))).astype(np.float32)
    model.zeroframe = model.data[:, 0].copy()
    path = str(base / "soss_uncal.fits")
    model.save(path)
    return path, refs


def test_steps_to_superbias_match_jwst(soss_exposure):
    import jwst_oracle

    jwst_oracle.configure_offline_crds()
    from jwst.dq_init import DQInitStep as TheirDQ
    from jwst.saturation import SaturationStep as TheirSat
    from jwst.superbias import SuperBiasStep as TheirBias

    from ramp2slope import datamodels
    from ramp2slope.dq_init import DQInitStep
    from ramp2slope.saturation import SaturationStep
    from ramp2slope.superbias import SuperBiasStep

    path, refs = soss_exposure
    theirs = TheirDQ.call(path, override_mask=refs["mask"])
    ours = DQInitStep(override_mask=refs["mask"]).run(datamodels.open(path))
    assert type(ours).__name__ == type(theirs).__name__ == "SuperstripeRampModel"
    for name, their_step, our_step, kw in (
            ("dq_init", None, None, {}),
            ("saturation", TheirSat, SaturationStep, {"override_saturation": refs["saturation"],
                                                      "override_superbias": refs["superbias"]}),
            ("superbias", TheirBias, SuperBiasStep, {"override_superbias": refs["superbias"]})):
        if their_step is not None:
            theirs = their_step.call(theirs, **kw)
            ours = our_step(**kw).run(ours)
        assert getattr(ours.meta.cal_step, name) == getattr(theirs.meta.cal_step, name) == "COMPLETE"
        np.testing.assert_array_equal(ours.pixeldq, theirs.pixeldq, err_msg=name)
        np.testing.assert_array_equal(ours.groupdq, theirs.groupdq, err_msg=name)
        np.testing.assert_array_equal(ours.data, theirs.data, err_msg=name)
        np.testing.assert_array_equal(ours.zeroframe, theirs.zeroframe, err_msg=name)
    # the exposure exercised the flags: saturation in some groups, DO_NOT_USE from the mask
    assert (ours.groupdq & 2).any() and (ours.groupdq & 1).any()
    superbias_products.update(ours=ours, theirs=theirs)


superbias_products = {}


@pytest.mark.parametrize("odd_even", [True, False])
def test_refpix_and_collation_match_jwst(soss_exposure, odd_even):
    if not superbias_products:
        pytest.skip("needs test_steps_to_superbias_match_jwst")
    from jwst.refpix import RefPixStep as TheirRefPix

    from ramp2slope.refpix import RefPixStep

    before = superbias_products["ours"].copy()
    uncorrected = collate_superstripes(_layout(superbias_products["theirs"]), before.data.copy())[0]
    theirs = TheirRefPix.call(superbias_products["theirs"], odd_even_columns=odd_even,
                              override_refpix="N/A", override_sirskernel="N/A")
    ours = RefPixStep(odd_even_columns=odd_even).run(before)
    assert type(ours).__name__ == type(theirs).__name__ == "RampModel"
    assert ours.meta.cal_step.refpix == theirs.meta.cal_step.refpix == "COMPLETE"
    assert ours.data.shape == theirs.data.shape == (3, 5, 256, 2048)
    np.testing.assert_array_equal(ours.data, theirs.data)
    np.testing.assert_array_equal(ours.zeroframe, theirs.zeroframe)
    # the correction did something: every science pixel moved by its amplifier's offset
    moved = np.abs(ours.data - uncorrected)
    assert np.nanmin(moved) > 0 and np.isnan(ours.data).sum() == np.isnan(uncorrected).sum()
    np.testing.assert_array_equal(ours.pixeldq, theirs.pixeldq)
    np.testing.assert_array_equal(ours.groupdq, theirs.groupdq)
    for table in ("int_times", "int_times_stripe"):
        assert [tuple(r) for r in getattr(ours, table)] == [tuple(r) for r in getattr(theirs, table)]
    for path in ("exposure.nints", "exposure.ngroups", "exposure.integration_start",
                 "exposure.integration_end", "subarray.xstart", "subarray.ystart",
                 "subarray.xsize", "subarray.ysize", "subarray.num_superstripe",
                 "subarray.multistripe_reads1"):
        a, b = ours.meta, theirs.meta
        for part in path.split("."):
            a, b = getattr(a, part), getattr(b, part)
        assert a == b, path


def test_pipeline_rate_matches_jwst(soss_exposure, tmp_path):
    # the whole detector1 on the file: stripes collated at refpix, later steps on the ordinary ramp
    # (linearity and dark skipped: no NIRISS references are simulated)
    import jwst_oracle

    from stdatamodels.jwst import datamodels as sdm

    path, refs = soss_exposure
    with sdm.open(path) as model:
        # ZEROFRAME left out: fully saturated pixels go another way through ramp_fit
        model.meta.exposure.zero_frame = False
        del model.zeroframe
        path = str(tmp_path / "soss_nozf_uncal.fits")
        model.save(path)
    skip = {name: {"skip": True} for name in ("linearity", "dark_current", "persistence",
                                              "charge_migration", "clean_flicker_noise")}
    theirs = jwst_oracle.run_official_detector1(path, refs, tmp_path / "theirs", steps=skip, save_steps=())
    ours = jwst_oracle.run_ours_detector1(path, refs, tmp_path / "ours", steps=skip, save_steps=())
    theirs = theirs[0] if isinstance(theirs, (list, tuple)) else theirs
    ours = ours[0] if isinstance(ours, (list, tuple)) else ours
    assert ours.data.shape == theirs.data.shape == (256, 2048)
    np.testing.assert_array_equal(ours.dq, theirs.dq)
    np.testing.assert_allclose(ours.data, theirs.data, rtol=1e-5, atol=1e-4, equal_nan=True)
    from astropy.io import fits

    for name in ("rateints",):
        with fits.open(next((tmp_path / "ours").glob(f"*_{name}.fits"))) as a, \
                fits.open(next((tmp_path / "theirs").glob(f"*_{name}.fits"))) as b:
            for ext in ("INT_TIMES", "INT_TIMES_STRIPE"):
                assert ext in a and ext in b, ext
                assert [tuple(r) for r in a[ext].data] == [tuple(r) for r in b[ext].data], ext


@pytest.fixture(scope="module")
def simulated_soss(tmp_path_factory):
    """The simulator's own SOSS superstripe exposure (2 collated integrations, 20 in the file),
    through both pipelines with the full reference set."""
    import jwst_oracle

    from ramp2slope.simulate.superstripe import simulate_superstripe_exposure

    base = tmp_path_factory.mktemp("sim_stripes")
    sim = simulate_superstripe_exposure(base / "sim", nints=2, ngroups=4, seed=17)
    theirs, ours = jwst_oracle.run_both(
        sim, base, save_steps=("dq_init", "saturation", "superbias", "refpix", "jump"))
    return sim, theirs, ours


@pytest.mark.slow
@pytest.mark.parametrize("step", ["dq_init", "saturation", "superbias", "refpix", "jump"])
def test_simulated_superstripe_steps_match_jwst(simulated_soss, step):
    import jwst_oracle

    sim, theirs, ours = simulated_soss
    jwst_oracle.assert_step_products_match(theirs, ours, sim.root, step)
    with jwst_oracle.open_product(ours, sim.root, step) as product:
        # stripes until refpix collates them into the window: 2 integrations of 256 x 2048
        expected = (20, 4, 256, 208) if step in ("dq_init", "saturation", "superbias") else (2, 4, 256, 2048)
        assert product["SCI"].data.shape == expected


@pytest.mark.slow
def test_simulated_superstripe_rate_matches_jwst_and_the_truth(simulated_soss):
    import jwst_oracle

    from ramp2slope.simulate.truth import load_truth

    sim, theirs, ours = simulated_soss
    for suffix in ("rate", "rateints"):
        jwst_oracle.assert_slope_products_match(theirs, ours, sim.root, suffix)
    truth = load_truth(sim.truth)
    with jwst_oracle.open_product(ours, sim.root, "rate") as rate:
        assert rate["SCI"].data.shape == truth.rate.shape == (256, 2048)
        good = (rate["DQ"].data == 0) & (truth.badpix == 0) & (truth.rate > 50)
        assert good.sum() > 50
        assert abs(np.median(rate["SCI"].data[good] / truth.rate[good]) - 1) < 0.01


# -- multistripe readouts without superstripes (NIRCam DHS) -------------------------------------
DHS = dict(reads1=1, skips1=400, reads2=40, skips2=300, repeat=1, ysize=82)


@pytest.fixture(scope="module")
def dhs_exposure(tmp_path_factory):
    """A NIRCam NRCA1 multistripe exposure (no superstripes) like SUB82STRIPE2_DHS: two stripes,
    each a reference row read again and 40 science rows, 2048 columns; 2 integrations of 5
    groups."""
    from stdatamodels.jwst import datamodels as sdm

    base = tmp_path_factory.mktemp("dhs")
    rng = np.random.default_rng(23)
    refs = _full_frame_refs(base, rng, "NIRCAM", "NRCA1")
    nints, ngroups, ny, nx = 2, 5, DHS["ysize"], 2048
    model = sdm.RampModel((nints, ngroups, ny, nx))
    meta = model.meta
    meta.instrument.name, meta.instrument.detector = "NIRCAM", "NRCA1"
    meta.instrument.filter, meta.instrument.pupil = "F150W2", "GDHS0"
    meta.exposure.type, meta.exposure.readpatt = "NRC_TSGRISM", "RAPID"
    meta.exposure.nints, meta.exposure.ngroups, meta.exposure.nframes = nints, ngroups, 1
    meta.exposure.groupgap, meta.exposure.frame_time = 0, 0.34
    meta.exposure.group_time, meta.exposure.noutputs = 0.34, 4
    meta.exposure.integration_start, meta.exposure.integration_end = 1, nints
    meta.observation.date, meta.observation.time = "2024-01-01", "00:00:00"
    sub = meta.subarray
    sub.name, sub.xstart, sub.ystart, sub.xsize, sub.ysize = "SUB82STRIPE2_DHS", 1, 1, nx, ny
    sub.fastaxis, sub.slowaxis = -1, 2
    sub.multistripe_reads1, sub.multistripe_skips1 = DHS["reads1"], DHS["skips1"]
    sub.multistripe_reads2, sub.multistripe_skips2 = DHS["reads2"], DHS["skips2"]
    sub.repeat_stripe, sub.interleave_reads1 = DHS["repeat"], 0
    sub.num_superstripe, sub.superstripe_step = 0, 0   # as DHS files carry them
    slope = rng.uniform(5.0, 3000.0, (1, 1, ny, nx))
    ramp = 1.2e4 + slope * np.arange(1, ngroups + 1)[None, :, None, None]
    model.data = (ramp + rng.normal(0, 10.0, (nints, ngroups, ny, nx))).astype(np.float32)
    path = str(base / "jw01234001001_01101_00001_nrca1_uncal.fits")
    model.save(path)
    return path, refs


def test_dhs_reference_cutouts_match_jwst(dhs_exposure):
    from stdatamodels.jwst import datamodels as sdm
    from jwst.lib import reffile_utils

    from ramp2slope import datamodels
    from ramp2slope.references import load_linearity, load_mask, load_saturation, load_superbias

    path, refs = dhs_exposure
    with sdm.open(path) as theirs, datamodels.open(path) as ours:
        for reftype, loader, attrs in (("mask", load_mask, ("dq",)),
                                       ("saturation", load_saturation, ("threshold", "dq")),
                                       ("superbias", load_superbias, ("data", "dq"))):
            with sdm.open(refs[reftype]) as ref:
                cut = reffile_utils.get_subarray_model(theirs, ref)
                loaded = loader(refs[reftype], ours)
                for attr in attrs:
                    theirs_attr = "data" if attr == "threshold" else attr
                    np.testing.assert_array_equal(getattr(loaded, attr), getattr(cut, theirs_attr),
                                                  err_msg=f"{reftype} {attr}")
        # each stripe starts with the detector's reference row, read again: REFERENCE_PIXEL
        # across the whole width on those rows only
        dq = load_mask(refs["mask"], ours).dq
        reference_rows = ((dq[:, 4:-4] & 2**31) != 0).all(axis=1)
        assert reference_rows.sum() == 2 and not ((dq[~reference_rows, 4:-4] & 2**31) != 0).any()
    assert load_linearity  # (the DHS test exposure has no linearity reference)


@pytest.mark.slow
def test_dhs_pipeline_matches_jwst(dhs_exposure, tmp_path):
    # every step's product and the rates of a multistripe exposure (streamed here: 2
    # integrations; linearity and dark have no references in this test)
    import jwst_oracle

    path, refs = dhs_exposure
    skip = {name: {"skip": True} for name in ("linearity", "dark_current")}
    saved = ("dq_init", "saturation", "superbias", "refpix", "jump")
    jwst_oracle.run_official_detector1(path, refs, tmp_path / "theirs", steps=skip, save_steps=saved)
    jwst_oracle.run_ours_detector1(path, refs, tmp_path / "ours", steps=skip, save_steps=saved)
    root = "jw01234001001_01101_00001_nrca1"
    for step in saved:
        jwst_oracle.assert_step_products_match(tmp_path / "theirs", tmp_path / "ours", root, step)
    for suffix in ("rate", "rateints"):
        jwst_oracle.assert_slope_products_match(tmp_path / "theirs", tmp_path / "ours", root, suffix)
    with jwst_oracle.open_product(tmp_path / "ours", root, "refpix") as product:
        assert product[0].header["S_REFPIX"] == "COMPLETE"
        assert product["SCI"].data.shape == (2, 5, DHS["ysize"], 2048)


@pytest.fixture(scope="module")
def simulated_dhs(tmp_path_factory):
    """The simulator's own DHS exposure (SUB82STRIPE2_DHS, 2 integrations), through both
    pipelines with the full reference set (the DARK cut by the stripes, the others full frame)."""
    import jwst_oracle

    from ramp2slope.simulate.dhs import simulate_dhs_exposure

    base = tmp_path_factory.mktemp("sim_dhs")
    sim = simulate_dhs_exposure(base / "sim", nints=2, ngroups=4, seed=19)
    theirs, ours = jwst_oracle.run_both(sim, base)
    return sim, theirs, ours


@pytest.mark.slow
@pytest.mark.parametrize("step", ["dq_init", "saturation", "superbias", "refpix", "linearity",
                                  "dark_current", "jump"])
def test_simulated_dhs_steps_match_jwst(simulated_dhs, step):
    import jwst_oracle

    sim, theirs, ours = simulated_dhs
    jwst_oracle.assert_step_products_match(theirs, ours, sim.root, step)
    with jwst_oracle.open_product(ours, sim.root, step) as product:
        assert product["SCI"].data.shape == (2, 4, 82, 2048)


@pytest.mark.slow
def test_simulated_dhs_rate_matches_jwst_and_the_truth(simulated_dhs):
    import jwst_oracle

    from ramp2slope.references.stripes import stripe_reference
    from ramp2slope.simulate.dhs import DHS_STRIPES
    from ramp2slope.simulate.truth import load_truth

    sim, theirs, ours = simulated_dhs
    for suffix in ("rate", "rateints"):
        jwst_oracle.assert_slope_products_match(theirs, ours, sim.root, suffix)
    truth = load_truth(sim.truth)
    rate_truth = stripe_reference(truth.rate, DHS_STRIPES, 1)
    badpix = stripe_reference(truth.badpix, DHS_STRIPES, 1)
    with jwst_oracle.open_product(ours, sim.root, "rate") as rate:
        # 82 rows hold few sources: the well-exposed pixels start lower than on a full frame
        good = (rate["DQ"].data == 0) & (badpix == 0) & (rate_truth > 10)
        assert good.sum() > 100
        ratio = np.median(rate["SCI"].data[good] / rate_truth[good])
    assert abs(ratio - 1) < 0.01, ratio


# -- superstripes whose stripes repeat within a frame ------------------------------------------
# The collated ramp has NGROUPS x nrepeat groups read at uneven times: jwst records them in
# meta.exposure.read_times (ASDF tree), linearity then skips its read-level form and ramp_fit is
# forced to LIKELY with those times.

@pytest.mark.parametrize("case", ["repeat4", "repeat2", "soss204", "no_repeat"])
@pytest.mark.parametrize("nframes, groupgap, noutputs", [(1, 0, 1), (2, 1, 4), (3, 2, 1)])
def test_stripe_read_times_match_jwst(case, nframes, groupgap, noutputs):
    from ramp2slope.references.stripes import stripe_read_times

    layouts = dict(LAYOUTS, repeat4={"repeat": 1, "reads1": 4, "reads2": 48, "skips2": 10,
                                     "step": 60, "nstripe": 3},
                   repeat2={"repeat": 1, "reads1": 4, "reads2": 100, "step": 100, "nstripe": 2})
    model = _soss(**layouts[case])
    exp = model.meta.exposure
    exp.nframes, exp.groupgap, exp.noutputs = nframes, groupgap, noutputs
    ours = stripe_read_times(_layout(model), nframes, groupgap, exp.ngroups, noutputs)
    assert ours == stripe_utils.stripe_read_times(model)


REPEATED = dict(nstripe=2, reads1=4, reads2=100, step=100, ngroups=4, nparent=2)


@pytest.fixture(scope="module")
def repeated_exposure(tmp_path_factory):
    """NIS_SOSS superstripes, each read twice per frame (two 100-line blocks, each after its 4
    reference lines); stripe 1's first block is the lines of both stripes' second block, so
    those lines get a ramp of 2 x NGROUPS reads in the collated frame, the others half of one
    (NaN in the rest, as jwst collates them). The signal of every read is the pixel's rate
    times the read's time from jwst's timing, so the LIKELY slopes can be checked against it."""
    from ramp2slope.references.stripes import stripe_read_times
    from ramp2slope.refpix.orientation import detector_to_dms

    base = tmp_path_factory.mktemp("repeated_stripes")
    rng = np.random.default_rng(12)
    refs = _full_frame_refs(base, rng)
    nstripe, ngroups, nparent = REPEATED["nstripe"], REPEATED["ngroups"], REPEATED["nparent"]
    nints = nparent * nstripe
    model = helpers.make_rawramp("NIRISS", nints, ngroups, 256, 208, 1793, 2048,
                                 num_superstripe=nstripe)
    model.meta.instrument.detector = "NIS"
    sub, exp = model.meta.subarray, model.meta.exposure
    sub.name, sub.fastaxis, sub.slowaxis = "SUB204STRIPE_SOSS", -2, -1
    sub.multistripe_reads1, sub.multistripe_reads2 = REPEATED["reads1"], REPEATED["reads2"]
    sub.multistripe_skips1 = sub.multistripe_skips2 = 0
    sub.num_superstripe, sub.superstripe_step = nstripe, REPEATED["step"]
    sub.repeat_stripe = sub.interleave_reads1 = 1
    exp.integration_start, exp.integration_end, exp.nints = 1, nints, nints
    exp.frame_time = exp.group_time = 0.5628
    exp.type, exp.readpatt = "NIS_SOSS", "NISRAPID"
    exp.nframes, exp.groupgap, exp.noutputs = 1, 0, 1
    model.int_times = helpers.int_times_table(nints)
    layout = _layout(model)
    ranges = superstripe_ranges(layout)
    nrepeat = max(len(r[1]) for r in ranges)
    times = [t[0] for t in stripe_read_times(layout, 1, 0, ngroups, 1)]
    # detector orientation: (stripe integrations, groups, slow lines, fast pixels)
    rate = rng.uniform(20.0, 900.0, (max(f[1] for r in ranges for f in r[0]), 256))
    det = 1.2e4 + rng.normal(0.0, 8.0, (nints, ngroups, 208, 256))
    for p in range(nparent):
        for s, (full, sub_rows, _, _) in enumerate(ranges):
            for r, ((f0, f1), (s0, s1)) in enumerate(zip(full, sub_rows)):
                for g in range(ngroups):
                    det[p * nstripe + s, g, s0:s1] += rate[f0:f1] * times[g * nrepeat + r]
    # the four fast-axis reference pixels at the detector's edge see no light
    det[..., :4] = 1.2e4 + rng.normal(0.0, 8.0, det[..., :4].shape)
    model.data = detector_to_dms(det, -2, -1).astype(np.float32)
    path = str(base / "repeated_uncal.fits")
    model.save(path)

    import jwst_oracle

    skip = {name: {"skip": True} for name in ("linearity", "dark_current", "persistence",
                                              "charge_migration", "clean_flicker_noise")}
    folders = {who: base / who for who in ("theirs", "ours")}
    jwst_oracle.run_official_detector1(path, refs, folders["theirs"], steps=skip,
                                       save_steps=("refpix", "jump"))
    jwst_oracle.run_ours_detector1(path, refs, folders["ours"], steps=skip,
                                   save_steps=("superbias", "refpix", "jump"))
    return folders, rate, nrepeat, refs


def test_report_on_repeated_superstripes(repeated_exposure, tmp_path):
    # one group of the stripes is several groups of the collated ramp: the refpix section says
    # so instead of failing to build
    import json
    import re

    from ramp2slope.report import write_report

    folders = repeated_exposure[0]
    out = write_report(str(folders["ours"]), out=tmp_path / "report.html",
                       uncal=str(folders["ours"].parent / "repeated_uncal.fits"))
    text = open(out, encoding="utf-8").read()
    checks = json.loads(re.search(r'<script type="application/json" id="report-checks">(.*?)'
                                  r'</script>', text, re.S).group(1))
    assert not [c for c in checks if c["name"] == "Section built"]
    refpix = [c for c in checks if c["section"] == "refpix"]
    assert refpix and all(c["status"] == "not run" and "repeat within a frame" in c["measured"]
                          for c in refpix)


def test_repeated_superstripes_match_jwst(repeated_exposure):
    from stdatamodels.jwst import datamodels as sdm

    from ramp2slope.refpix.orientation import dms_to_detector

    folders, rate_truth, nrepeat, refs = repeated_exposure
    opened = {}
    for suffix in ("refpix", "jump", "rateints", "rate"):
        theirs = sdm.open(str(folders["theirs"] / f"repeated_{suffix}.fits"))
        ours = sdm.open(str(folders["ours"] / f"repeated_{suffix}.fits"))
        opened[suffix] = ours, theirs
        if suffix in ("refpix", "jump"):
            assert ours.data.shape == theirs.data.shape == (2, 4 * nrepeat, 256, 2048)
            for name in ("data", "groupdq", "pixeldq"):
                np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name),
                                              err_msg=f"{suffix} {name}")
            # the read times reach the saved ramps, where jwst's own steps find them
            assert len(theirs.meta.exposure.read_times) == 4 * nrepeat
            assert list(ours.meta.exposure.read_times) == list(theirs.meta.exposure.read_times)
            continue
        for name in ("data", "err", "var_poisson", "var_rnoise"):
            np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name),
                                          err_msg=f"{suffix} {name}")
        # jwst keeps no read times on slope products
        assert not ours.meta.exposure.read_times and not theirs.meta.exposure.read_times
        # DQ: the same, but for ramp2slope's documented DO_NOT_USE on every NaN rate (the lines
        # only one repeat covers: jwst leaves them unflagged)
        nan = np.isnan(theirs.data)
        assert 0 < np.count_nonzero(~nan) < nan.size
        np.testing.assert_array_equal(ours.dq[~nan], theirs.dq[~nan], err_msg=f"{suffix} dq")
        np.testing.assert_array_equal(ours.dq[nan], theirs.dq[nan] | 1, err_msg=f"{suffix} dq")
    # the LIKELY slopes follow the injected rates on the lines every read covers
    ours = opened["rate"][0]
    rate = dms_to_detector(ours.data, -2, -1)[:rate_truth.shape[0]]
    usable = np.isfinite(rate)
    usable[:, :4] = False
    assert usable.sum() > 20000
    error = np.abs(rate[usable] - rate_truth[usable]) / rate_truth[usable]
    assert np.median(error) < 0.02
    # jwst's ramp_fit finds the read times in ramp2slope's saved jump product
    from jwst.ramp_fitting import RampFitStep

    theirs, _ = RampFitStep.call(str(folders["ours"] / "repeated_jump.fits"),
                                 override_gain=refs["gain"], override_readnoise=refs["readnoise"])
    np.testing.assert_array_equal(theirs.data, ours.data)


def test_read_times_that_do_not_fit_the_collated_ramp_are_one_error(tmp_path):
    # without repeated reference rows the layout reads 4 blocks per frame, but jwst's timing
    # counts subframes of reads1 + reads2 lines (3): jwst fails inside its LIKELY fit
    import jwst_oracle

    from ramp2slope.errors import Ramp2SlopeError

    refs = _full_frame_refs(tmp_path, np.random.default_rng(3))
    model = _soss(**LAYOUTS["no_repeat"])
    keep = 6
    model.data = np.full((keep, 3, 256, 208), 1.2e4, np.float32)
    model.int_times = model.int_times[:keep]
    exp = model.meta.exposure
    exp.nints = exp.integration_end = keep
    exp.ngroups, exp.type, exp.readpatt = 3, "NIS_SOSS", "NISRAPID"
    exp.group_time = exp.frame_time
    path = str(tmp_path / "uneven_uncal.fits")
    model.save(path)
    skip = {name: {"skip": True} for name in ("linearity", "dark_current", "persistence",
                                              "charge_migration", "clean_flicker_noise")}
    with pytest.raises(Ramp2SlopeError, match=r"uneven_uncal.fits: ramp_fit: the exposure's read "
                                              r"times .* list 9 groups, the ramp has 12"):
        jwst_oracle.run_ours_detector1(path, refs, tmp_path / "ours", steps=skip, save_steps=())
    assert not list((tmp_path / "ours").glob("*.fits"))


@pytest.mark.slow
def test_report_on_a_superstripe_run(simulated_soss, tmp_path):
    # the sections of the steps saved in the stripe layout are checked there (dq_init,
    # saturation, superbias; refpix against the collated stripes of the superbias product; they
    # crashed on the stripe shapes before); the others check the collated ramp and the slopes,
    # against the injected truth too
    import json
    import re

    from ramp2slope.report import write_report

    sim, _, ours = simulated_soss
    out = write_report(str(ours), truth=sim.truth, out=tmp_path / "report.html",
                       uncal=str(sim.uncal))
    text = open(out, encoding="utf-8").read()
    checks = json.loads(re.search(r'<script type="application/json" id="report-checks">(.*?)'
                                  r'</script>', text, re.S).group(1))
    assert not [c for c in checks if c["name"] in ("Section built", "Section checks")]
    refpix = {c["name"]: c for c in checks if c["section"] == "refpix"}
    assert refpix["Odd/even column offsets reduced"]["status"] == "pass"
    # SOSS stripes have no side reference columns: the side correction changes nothing
    for name in ("Side correction is one value per detector row",
                 "Side reference pixels reduce the 1/f row noise"):
        assert refpix[name]["status"] == "not run"
        assert "changed nothing" in refpix[name]["measured"]
    # dq_init, saturation and superbias are checked in the stripe layout, against the
    # references cut into stripes (the cut itself is compared with jwst's above)
    by_section = {(c["section"], c["name"]): c["status"] for c in checks}
    for key in (("dq_init", "SCI unchanged by dq_init"),
                ("dq_init", "PIXELDQ is the MASK reference"),
                ("dq_init", "GROUPDQ carries the DO_NOT_USE pixels"),
                ("saturation", "Every SATURATED group is above the threshold"),
                ("saturation", "Every group above the threshold is flagged"),
                ("superbias", "Superbias difference equals the reference")):
        assert by_section[key] == "pass", key
    failed = {c["name"]: c["measured"] for c in checks if c["status"] == "fail"}
    # only the products this run did not save (linearity, dark_current, fitopt)
    assert set(failed) <= {"Every step's product was saved"}, failed
    passed = {c["name"] for c in checks if c["status"] == "pass"}
    # the truth of the window the stripes tile, taken as the collated ramp sees it
    assert {"ERR combines the two variances", "Slope bias", "ERR describes the slope scatter",
            "Cosmic-ray completeness", "Jump false-positive rate",
            "Saturation-group accuracy"} <= passed, [c for c in checks
                                                     if c["section"] == "accuracy"]
