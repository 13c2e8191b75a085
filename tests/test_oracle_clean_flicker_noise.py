"""clean_flicker_noise against jwst 3.0.0's step on simulated NIRCam ramps (with 1/f noise):
a 2-integration SUB160 exposure under several option sets, a full frame fitted by channel, a
flat, the saved mask/background/noise products; plus the pipeline streamed vs whole."""
import os

import numpy as np
import pytest
from astropy.io import fits

import jwst_oracle
from ramp2slope import datamodels
from ramp2slope.clean_flicker_noise import CleanFlickerNoiseStep, median_clean, sigma_clipped_stats
from ramp2slope.clean_flicker_noise.clipped_stats import exact_median
from ramp2slope.errors import Ramp2SlopeError


def _ramp(base, **kwargs):
    """A simulated exposure taken through jump (our pipeline: bit-identical to jwst's there)."""
    from ramp2slope.pipeline import Detector1Pipeline
    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(base / "sim", **kwargs)
    refs = {k: str(v) for k, v in sim.refs.items()}
    pipe = Detector1Pipeline(steps=jwst_oracle.reference_overrides(refs), output_dir=str(base),
                             save_calibrated_ramp=True)
    pipe._streaming = False
    pipe.run(str(sim.uncal))
    return str(base / f"{sim.root}_ramp.fits"), refs, sim


@pytest.fixture(scope="module")
def sub160(tmp_path_factory):
    return _ramp(tmp_path_factory.mktemp("flicker_sub"), subarray="SUB160", ngroups=4, nints=2,
                 seed=5)


def _theirs(ramp, refs, monkeypatch, **options):
    """jwst's step, its draft-rate RampFitStep given the references CRDS would have given."""
    jwst_oracle.require_jwst()
    jwst_oracle.configure_offline_crds()
    import jwst.clean_flicker_noise.clean_flicker_noise as official
    from jwst.clean_flicker_noise import CleanFlickerNoiseStep as Theirs
    from jwst.ramp_fitting import RampFitStep

    monkeypatch.setattr(official, "RampFitStep", lambda: RampFitStep(
        override_gain=refs["gain"], override_readnoise=refs["readnoise"]))
    return Theirs.call(ramp, skip=False, **options)


def _ours(ramp, refs, **options):
    return CleanFlickerNoiseStep(skip=False, refdir=os.path.dirname(refs["gain"]),
                                 **options).run(ramp)


def _write_flat(gain_path, path, holes=False):
    """A smooth full-frame FLAT with the header of the simulated GAIN; ``holes``: zero and NaN
    values scattered over it (filled by a photutils model of the flat)."""
    with fits.open(gain_path) as gain:
        primary = gain[0].header.copy()
    primary["REFTYPE"] = primary["FILETYPE"] = "FLAT"
    primary["DATAMODL"] = "FlatModel"
    primary["FILTER"], primary["PUPIL"] = "F444W", "CLEAR"
    y, x = np.mgrid[:2048, :2048] / 2048.0
    flat = (0.8 + 0.3 * x + 0.1 * np.sin(6 * y)).astype(np.float32)
    if holes:
        flat.flat[::997] = 0.0
        flat.flat[5::1409] = np.nan
    fits.HDUList([fits.PrimaryHDU(header=primary), fits.ImageHDU(flat, name="SCI"),
                  fits.ImageHDU(np.zeros_like(flat), name="ERR"),
                  fits.ImageHDU(np.zeros(flat.shape, np.uint32), name="DQ")]).writeto(path)
    return str(path)


@pytest.mark.oracle
@pytest.mark.parametrize("options", [
    {},
    {"single_mask": False},
    {"background_method": None},
    {"n_sigma": 0.0},
    {"n_sigma": 3.5, "fit_by_channel": True},   # fit_by_channel is dropped for a subarray
    {"fit_histogram": True, "single_mask": False},
], ids=["default", "mask_per_integration", "no_background", "no_clip", "clip3.5", "histogram"])
def test_subarray_matches_jwst(sub160, monkeypatch, options):
    ramp, refs, _ = sub160
    theirs = _theirs(ramp, refs, monkeypatch, **options)
    ours = _ours(ramp, refs, **options)
    before = datamodels.open(ramp)
    assert ours.meta.cal_step.clean_flicker_noise == theirs.meta.cal_step.clean_flicker_noise \
        == "COMPLETE"
    np.testing.assert_array_equal(ours.data, theirs.data)
    np.testing.assert_array_equal(ours.groupdq, theirs.groupdq)
    # the stripes were there to remove: every group after the first changed, the first did not
    change = np.abs(ours.data - before.data)
    assert change[:, 0].max() == 0
    assert change[:, 1:].max(axis=(2, 3)).min() > 0.5
    if options.get("fit_histogram"):
        # the histogram's center and width give another scene mask, so other stripes
        plain = _ours(ramp, refs, **{k: v for k, v in options.items() if k != "fit_histogram"})
        assert np.abs(plain.data - ours.data).max() > 0


@pytest.mark.oracle
@pytest.mark.parametrize("detector,readpatt", [("NRS1", "NRSRAPID"), ("NIS", "NISRAPID")])
def test_transposed_detectors_match_jwst(tmp_path, monkeypatch, detector, readpatt):
    # |SLOWAXIS| = 1: the stripes run along the stored columns, and are fitted there
    ramp, refs, _ = _ramp(tmp_path, detector=detector, readpatt=readpatt, size=(2048, 64),
                          ngroups=4, nints=2, seed=7)
    theirs = _theirs(ramp, refs, monkeypatch)
    ours = _ours(ramp, refs)
    assert ours.meta.cal_step.clean_flicker_noise == theirs.meta.cal_step.clean_flicker_noise \
        == "COMPLETE"
    np.testing.assert_array_equal(ours.data, theirs.data)
    change = np.abs(ours.data - datamodels.open(ramp).data)
    assert change[:, 1:].max(axis=(2, 3)).min() > 0.5


@pytest.mark.oracle
def test_saved_products_match_jwst(sub160, monkeypatch, tmp_path):
    ramp, refs, _ = sub160
    options = dict(save_mask=True, save_background=True, save_noise=True, single_mask=False)
    (tmp_path / "theirs").mkdir()
    (tmp_path / "ours").mkdir()
    _theirs(ramp, refs, monkeypatch, output_dir=str(tmp_path / "theirs"), **options)
    _ours(ramp, refs, output_dir=str(tmp_path / "ours"), **options)
    root = os.path.basename(ramp)[:-len("_ramp.fits")]
    for suffix, kind in (("mask", "CubeModel"), ("flicker_bkg", "RampModel"),
                         ("flicker_noise", "RampModel")):
        name = f"{root}_{suffix}.fits"
        with fits.open(tmp_path / "theirs" / name) as a, fits.open(tmp_path / "ours" / name) as b:
            assert b[0].header["DATAMODL"] == kind
            np.testing.assert_array_equal(b["SCI"].data, a["SCI"].data)
            assert np.any(b["SCI"].data != 0)


@pytest.mark.oracle
def test_flat_and_user_mask_match_jwst(sub160, monkeypatch, tmp_path):
    ramp, refs, sim = sub160
    # a smooth FLAT (full frame, cut out to SUB160 by both pipelines)
    flat_path = _write_flat(refs["gain"], tmp_path / "flat.fits")
    theirs = _theirs(ramp, refs, monkeypatch, apply_flat_field=True, override_flat=flat_path)
    ours = _ours(ramp, refs, apply_flat_field=True, override_flat=flat_path)
    np.testing.assert_array_equal(ours.data, theirs.data)

    # a user mask: background everywhere but a block
    ny, nx = datamodels.open(ramp).data.shape[-2:]
    mask = np.ones((ny, nx), np.float32)
    mask[40:90, 50:120] = 0
    mask_path = str(tmp_path / "user_mask.fits")
    datamodels.ImageModel(data=mask).save(mask_path)
    theirs = _theirs(ramp, refs, monkeypatch, user_mask=mask_path)
    ours = _ours(ramp, refs, user_mask=mask_path)
    np.testing.assert_array_equal(ours.data, theirs.data)


@pytest.mark.oracle
def test_full_frame_by_channel_matches_jwst(tmp_path, monkeypatch):
    ramp, refs, _ = _ramp(tmp_path, ngroups=2, nints=1, seed=6)
    theirs = _theirs(ramp, refs, monkeypatch, fit_by_channel=True)
    ours = _ours(ramp, refs, fit_by_channel=True)
    np.testing.assert_array_equal(ours.data, theirs.data)
    # by channel is a different fit: the stripes of one channel are not those of the row
    before = datamodels.open(ramp).data[0]
    diff = before[1] - before[0]
    mask = np.isfinite(diff)
    whole_row = median_clean(np.nan_to_num(diff), mask, 2)
    assert np.abs((diff - whole_row) - (ours.data[0, 1] - ours.data[0, 0]))[mask].max() > 0.1


@pytest.mark.oracle
@pytest.mark.parametrize("options", [
    {"background_method": "model"},
    {"background_method": "model", "background_box_size": [40, 16], "single_mask": False},
], ids=["default_box", "box_40x16"])
def test_model_background_matches_jwst(sub160, monkeypatch, tmp_path, options):
    """photutils' Background2D, called as jwst calls it: the cleaned ramp and the saved
    background are jwst's, bit for bit."""
    ramp, refs, _ = sub160
    (tmp_path / "theirs").mkdir()
    (tmp_path / "ours").mkdir()
    theirs = _theirs(ramp, refs, monkeypatch, output_dir=str(tmp_path / "theirs"),
                     save_background=True, **options)
    ours = _ours(ramp, refs, output_dir=str(tmp_path / "ours"), save_background=True, **options)
    assert ours.meta.cal_step.clean_flicker_noise == "COMPLETE"
    np.testing.assert_array_equal(ours.data, theirs.data)
    name = os.path.basename(ramp).replace("_ramp.fits", "_flicker_bkg.fits")
    with fits.open(tmp_path / "theirs" / name) as a, fits.open(tmp_path / "ours" / name) as b:
        np.testing.assert_array_equal(b["SCI"].data, a["SCI"].data)
        # a model, not one level per group difference
        assert np.ptp(b["SCI"].data[0, 1]) > 0
    median = _ours(ramp, refs)
    assert np.abs(median.data - ours.data).max() > 0


@pytest.mark.oracle
def test_flat_with_holes_matches_jwst(sub160, monkeypatch, tmp_path):
    """Zero and NaN FLAT values are filled with photutils' model of the flat, as in jwst."""
    ramp, refs, _ = sub160
    flat_path = _write_flat(refs["gain"], tmp_path / "flat.fits", holes=True)
    theirs = _theirs(ramp, refs, monkeypatch, apply_flat_field=True, override_flat=flat_path)
    ours = _ours(ramp, refs, apply_flat_field=True, override_flat=flat_path)
    np.testing.assert_array_equal(ours.data, theirs.data)


def test_fft_on_nircam_fails_as_jwst_and_leaves_the_data(sub160):
    ramp, refs, _ = sub160
    before = datamodels.open(ramp)
    out = _ours(ramp, refs, fit_method="fft")
    assert out.meta.cal_step.clean_flicker_noise == "FAILED"
    np.testing.assert_array_equal(out.data, before.data)


@pytest.mark.oracle
@pytest.mark.slow
@pytest.mark.parametrize("detector,size,ngroups,nints", [
    # a full frame is cleaned line by line: NRS2 (transposed and flipped) covers that path; an
    # NRS1 full frame (85 s in the suite, nearly all in jwst) adds only the plain transpose,
    # which the NRS1 window has. jwst cleans each group of a full frame in about 15 s: 2 groups
    ("NRS2", None, 2, 1),
    ("NRS1", (64, 2048), 3, 2), ("NRS2", (2048, 64), 3, 2),   # subarrays: blocks of lines
], ids=["NRS2-full", "NRS1-window", "NRS2-window"])
def test_nsclean_matches_jwst(tmp_path, monkeypatch, detector, size, ngroups, nints):
    # fit_method='fft': NSClean in the detector frame
    ramp, refs, _ = _ramp(tmp_path, detector=detector, readpatt="NRSRAPID", size=size,
                          ngroups=ngroups, nints=nints, seed=8)
    theirs = _theirs(ramp, refs, monkeypatch, fit_method="fft")
    ours = _ours(ramp, refs, fit_method="fft")
    assert ours.meta.cal_step.clean_flicker_noise == theirs.meta.cal_step.clean_flicker_noise \
        == "COMPLETE"
    np.testing.assert_array_equal(ours.data, theirs.data)
    change = np.abs(ours.data - datamodels.open(ramp).data)
    assert change[:, 0].max() == 0 and change[:, 1:].max(axis=(2, 3)).min() > 0.5


@pytest.mark.parametrize("streaming,failing", [(True, 2), (False, 2), (True, 3)],
                         ids=["streamed", "whole", "streamed-last"])
def test_nsclean_failing_in_a_later_integration_leaves_the_exposure_as_it_was(
        tmp_path, monkeypatch, caplog, streaming, failing):
    """Where NSClean cannot fit an image, jwst marks the step FAILED and gives the whole
    exposure back as it was (and no mask, background or noise product): so here, the
    integrations already cleaned and stored (streamed) put back as they were."""
    from test_streaming import _run
    from ramp2slope.clean_flicker_noise import clean_flicker_noise as cfn
    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(tmp_path / "sim", detector="NRS1", readpatt="NRSRAPID",
                            size=(64, 2048), ngroups=3, nints=3, seed=8)
    refdir = os.path.dirname(sim.refs["mask"])
    real, calls = cfn.fft_clean_subarray, []

    def failing_in_an_integration(*args, **kwargs):
        calls.append(True)    # two group differences per integration: the 2nd of ``failing``
        return None if len(calls) == 2 * failing else real(*args, **kwargs)

    monkeypatch.setattr(cfn, "fft_clean_subarray", failing_in_an_integration)
    saved = {"jump": {"save_results": True}, "ramp_fit": {"save_results": True}}
    steps = dict(saved, clean_flicker_noise=dict(
        skip=False, fit_method="fft", save_results=True, save_mask=True, save_background=True,
        save_noise=True))
    with caplog.at_level("ERROR", logger="ramp2slope"):
        _run(sim.uncal, refdir, tmp_path / "failed", steps, streaming)
    assert len(calls) == 2 * failing
    assert f"Cleaning failed for integration {failing}, group 2" in caplog.text
    _run(sim.uncal, refdir, tmp_path / "skipped", saved, streaming)
    failed = sorted(os.listdir(tmp_path / "failed"))
    assert [n for n in failed if "flicker" in n] == [f"{sim.root}_clean_flicker_noise.fits"]
    assert not [n for n in failed if n.startswith(".")]     # no scratch, no partial product
    for name in ("clean_flicker_noise", "jump"):
        with fits.open(tmp_path / "failed" / f"{sim.root}_{name}.fits") as ours, \
                fits.open(tmp_path / "skipped" / f"{sim.root}_jump.fits") as unchanged:
            np.testing.assert_array_equal(ours["SCI"].data, unchanged["SCI"].data)
    for suffix in ("rate", "rateints"):
        ours = datamodels.open(str(tmp_path / "failed" / f"{sim.root}_{suffix}.fits"))
        reference = datamodels.open(str(tmp_path / "skipped" / f"{sim.root}_{suffix}.fits"))
        assert ours.meta.cal_step.clean_flicker_noise == "FAILED"
        for array in ("data", "err", "dq"):
            np.testing.assert_array_equal(getattr(ours, array), getattr(reference, array))


def test_nsclean_failing_on_a_rateints_plane_leaves_the_cube_as_it_was(monkeypatch):
    from ramp2slope.clean_flicker_noise import clean_flicker_noise as cfn

    rng = np.random.default_rng(3)
    cube = datamodels.CubeModel(data=rng.normal(0, 1, (3, 64, 256)).astype(np.float32),
                                dq=np.zeros((3, 64, 256), np.uint32))
    cube.meta.exposure.type = "NRS_FIXEDSLIT"
    cube.meta.instrument.name, cube.meta.instrument.detector = "NIRSPEC", "NRS1"
    cube.meta.subarray.name, cube.meta.subarray.slowaxis = "SUBS200A1", 1
    before = cube.data.copy()
    cleaned, *_, status = cfn.do_correction(cube.copy(), fit_method="fft")
    assert status == "COMPLETE" and not np.array_equal(cleaned.data, before)
    real, calls = cfn.fft_clean_subarray, []

    def failing_on_the_second_plane(*args, **kwargs):
        calls.append(True)
        return None if len(calls) == 2 else real(*args, **kwargs)

    monkeypatch.setattr(cfn, "fft_clean_subarray", failing_on_the_second_plane)
    cleaned, mask, background, noise, status = cfn.do_correction(
        cube.copy(), fit_method="fft", save_mask=True, save_background=True, save_noise=True)
    assert status == "FAILED" and (mask, background, noise) == (None, None, None)
    np.testing.assert_array_equal(cleaned.data, before)


@pytest.mark.parametrize("option,message", [({"mask_science_regions": True}, "WCS")])
def test_nirspec_choices_not_implemented_are_refused(tmp_path, option, message):
    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(tmp_path, detector="NRS1", readpatt="NRSRAPID", size=(64, 64),
                            ngroups=3, seed=2)
    with pytest.raises(Ramp2SlopeError, match=message) as err:
        CleanFlickerNoiseStep(skip=False, **option).run(datamodels.open(sim.uncal))
    assert "\n" not in str(err.value)


def _both_complete_and_equal(ramp, refs, monkeypatch, tmp_path, **options):
    """Both steps on ``ramp``, saving into tmp_path/theirs and tmp_path/ours: COMPLETE and the
    same data; returns our model."""
    (tmp_path / "theirs").mkdir()
    (tmp_path / "ours").mkdir()
    theirs = _theirs(ramp, refs, monkeypatch, output_dir=str(tmp_path / "theirs"), **options)
    ours = _ours(ramp, refs, output_dir=str(tmp_path / "ours"), **options)
    assert ours.meta.cal_step.clean_flicker_noise == theirs.meta.cal_step.clean_flicker_noise \
        == "COMPLETE"
    np.testing.assert_array_equal(ours.data, theirs.data)
    return ours


def _without_assign_wcs(monkeypatch):
    """jwst assigns a WCS to its draft rate for median_image (the reference files it needs come
    from CRDS, absent offline); on imaging that only attaches the WCS, the data and DQ it leaves
    are the draft's own, so the draft is passed through here."""
    import jwst.clean_flicker_noise.clean_flicker_noise as official

    class PassThrough:
        input_dir = ""

        def run(self, model):
            return model
    monkeypatch.setattr(official, "AssignWcsStep", PassThrough)


@pytest.mark.oracle
@pytest.mark.parametrize("options", [
    {},
    {"single_mask": True, "n_sigma": 3.0},       # single_mask is dropped, as jwst drops it
    {"user_mask": "ones"},                       # the draft still scales the median
    {"apply_flat_field": True},
], ids=["default", "single_mask", "user_mask", "flat"])
def test_median_image_matches_jwst(sub160, monkeypatch, tmp_path, options):
    """background_method='median_image' on imaging: each group minus the median ramp over the
    integrations, scaled by each integration's median draft rate, cleaned with no further
    background, the scaled median added back; the first group cleaned too."""
    ramp, refs, _ = sub160
    options = dict(options, background_method="median_image", save_background=True,
                   save_noise=True)
    if options.get("user_mask") == "ones":
        path = tmp_path / "mask.fits"
        datamodels.ImageModel(data=np.ones((160, 160), np.float32)).save(path)
        options["user_mask"] = str(path)
    if options.get("apply_flat_field"):
        options["override_flat"] = _write_flat(refs["gain"], tmp_path / "flat.fits")
    _without_assign_wcs(monkeypatch)
    ours = _both_complete_and_equal(ramp, refs, monkeypatch, tmp_path, **options)
    before = datamodels.open(ramp)
    assert np.abs(ours.data - before.data)[:, 0].max() > 0.1   # group 0 is cleaned too
    root = os.path.basename(ramp)[:-len("_ramp.fits")]
    for suffix in ("flicker_bkg", "flicker_noise"):
        name = f"{root}_{suffix}.fits"
        with fits.open(tmp_path / "theirs" / name) as a, fits.open(tmp_path / "ours" / name) as b:
            np.testing.assert_array_equal(b["SCI"].data, a["SCI"].data)


def test_median_image_needs_two_integrations(tmp_path):
    ramp, refs, _ = _ramp(tmp_path, subarray="SUB160", ngroups=3, nints=1, seed=12)
    out = _ours(ramp, refs, background_method="median_image")
    assert out.meta.cal_step.clean_flicker_noise == "FAILED"
    np.testing.assert_array_equal(out.data, datamodels.open(ramp).data)


@pytest.mark.parametrize("exp_type,tsovisit", [("NRC_TSGRISM", True), ("NRS_BRIGHTOBJ", False)])
def test_median_image_needing_stage2_light_curves_is_refused(tmp_path, exp_type, tsovisit):
    """Where jwst scales the median by a light curve from stage-2 spectral extraction, one line
    before any step runs (imaging time series: test_oracle_tso_median_image.py)."""
    from ramp2slope.pipeline import Detector1Pipeline
    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(tmp_path / "sim", subarray="SUB160", ngroups=3, nints=2, seed=13)
    with fits.open(sim.uncal, mode="update") as hdul:
        hdul[0].header["EXP_TYPE"] = exp_type
        hdul[0].header["TSOVISIT"] = tsovisit
    pipe = Detector1Pipeline(refdir=os.path.dirname(sim.refs["mask"]),
                             output_dir=str(tmp_path / "out"),
                             steps={"clean_flicker_noise": {"skip": False,
                                                            "background_method": "median_image"}})
    with pytest.raises(Ramp2SlopeError, match="median_image.*stage-2") as err:
        pipe.run(str(sim.uncal))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def _run_steps(ramp, refs, monkeypatch, **options):
    """(jwst's step, ours) after running each on ``ramp`` (the steps keep what autoparam set)."""
    jwst_oracle.require_jwst()
    jwst_oracle.configure_offline_crds()
    import jwst.clean_flicker_noise.clean_flicker_noise as official
    from jwst.clean_flicker_noise import CleanFlickerNoiseStep as Theirs
    from jwst.ramp_fitting import RampFitStep

    fitter = lambda: RampFitStep(override_gain=refs["gain"], override_readnoise=refs["readnoise"])  # noqa: E731
    monkeypatch.setattr(official, "RampFitStep", fitter)
    theirs = Theirs(skip=False, **options)
    their_model = theirs.run(ramp)
    ours = CleanFlickerNoiseStep(skip=False, refdir=os.path.dirname(refs["gain"]), **options)
    our_model = ours.run(ramp)
    return (theirs, their_model), (ours, our_model)


AUTO = ("apply_flat_field", "background_method", "fit_by_channel")


@pytest.mark.oracle
@pytest.mark.parametrize("case", ["sub160_flat", "sub160_no_flat", "full_frame_flat"])
def test_autoparam_matches_jwst(sub160, monkeypatch, tmp_path, case):
    """autoparam chooses jwst's parameters and gives jwst's products (NRC_IMAGE)."""
    if case.startswith("full"):
        ramp, refs, _ = _ramp(tmp_path, ngroups=2, nints=1, seed=6)
    else:
        ramp, refs, _ = sub160
    flat = _write_flat(refs["gain"], tmp_path / "flat.fits") if case.endswith("_flat") else "N/A"
    (theirs, their_model), (ours, our_model) = _run_steps(ramp, refs, monkeypatch, autoparam=True,
                                                          override_flat=flat)
    assert {k: getattr(ours, k) for k in AUTO} == {k: getattr(theirs, k) for k in AUTO}
    assert ours.apply_flat_field == (flat != "N/A")
    assert our_model.meta.cal_step.clean_flicker_noise == "COMPLETE"
    np.testing.assert_array_equal(our_model.data, their_model.data)


def test_autoparam_decision_tree_is_jwsts():
    jwst_oracle.require_jwst()
    from jwst.clean_flicker_noise import autoparam as official

    from ramp2slope.clean_flicker_noise.autoparam import _LIMITS, _decide

    rng = np.random.default_rng(3)
    for exp_type, limits in _LIMITS.items():
        for _ in range(400):
            stats = dict(mask_frac=rng.uniform(0, 0.2), max_offset=rng.choice([0.0, rng.uniform(0, 0.14)]),
                         max_slope=10 ** rng.uniform(-6.5, -3.5), slope_ratio=rng.uniform(1, 8),
                         channel_sigma=rng.uniform(0, 0.04))
            params = {"background_method": "median", "fit_by_channel": False}
            official._image_decision_tree(params, dict(limits, max_offset_low_mask=0.02),
                                          stats["mask_frac"], stats["max_offset"],
                                          stats["max_slope"], stats["slope_ratio"],
                                          stats["channel_sigma"])
            method, by_channel = _decide(limits, **stats)
            assert (method, by_channel) == (params["background_method"], params["fit_by_channel"]), stats


def test_autoparam_elsewhere_keeps_the_given_parameters(tmp_path, caplog):
    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(tmp_path, detector="NRS1", readpatt="NRSRAPID", size=(64, 64),
                            ngroups=3, seed=2)
    step = CleanFlickerNoiseStep(skip=False, autoparam=True, background_method="model",
                                 refdir=os.path.dirname(sim.refs["mask"]))
    with caplog.at_level("INFO", logger="ramp2slope"):
        step.run(datamodels.open(sim.uncal))
    assert step.background_method == "model"
    assert "Auto parameters are not available for exposure type NRS_MSASPEC" in caplog.text


@pytest.mark.parametrize("single_mask", [True, False, "median_image", "tso_median_image"])
def test_pipeline_streamed_equals_whole(tmp_path, single_mask):
    from test_streaming import _assert_same_products, _run
    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(tmp_path / "sim", subarray="SUB160", ngroups=3, nints=3, seed=9)
    refdir = os.path.dirname(sim.refs["mask"])
    steps = {"clean_flicker_noise": dict(skip=False, save_results=True, save_mask=True,
                                         save_background=True, save_noise=True,
                                         single_mask=single_mask),
             "jump": dict(save_results=True)}   # the ramp before the cleaning, streamed as whole
    if single_mask == "tso_median_image":
        # an imaging time series: the median scaled by aperture photometry of the draft
        with fits.open(sim.uncal, mode="update") as hdul:
            hdul[0].header.update(EXP_TYPE="NRC_TSIMAGE", TSOVISIT=True)
            hdul["SCI"].header.update(XREF_SCI=80.5, YREF_SCI=75.0)
        single_mask = "median_image"
    if single_mask == "median_image":
        steps["clean_flicker_noise"].update(single_mask=True, background_method="median_image")
    elif not single_mask:
        # and autoparam, which finds the flat itself and chooses with it
        steps["clean_flicker_noise"].update(
            autoparam=True, override_flat=_write_flat(sim.refs["gain"], tmp_path / "flat.fits"))
    _run(sim.uncal, refdir, tmp_path / "whole", steps, streaming=False)
    _run(sim.uncal, refdir, tmp_path / "streamed", steps, streaming=True)
    names = os.listdir(tmp_path / "whole")
    assert any(n.endswith("_flicker_noise.fits") for n in names)
    assert any(n.endswith("_clean_flicker_noise.fits") for n in names)
    _assert_same_products(tmp_path / "streamed", tmp_path / "whole")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_median_is_numpy_median(dtype):
    """The selection median gives numpy's value and dtype: odd and even counts, quantized
    values (long runs of equal values), far outliers, all values equal but a few."""
    rng = np.random.default_rng(3)
    cases = [rng.normal(2, 5, 100_001), rng.normal(2, 5, 100_000),
             np.round(rng.normal(0, 3, 200_000)),
             np.concatenate([rng.normal(0, 1, 50_000), rng.normal(0, 1e30, 500)]),
             np.where(np.arange(60_000) < 20_000, 3.2500002, 3.25)]
    for values in cases:
        values = values.astype(dtype)
        expected = np.median(values)
        got = exact_median(values)
        assert type(got) is type(expected) and got == expected


def test_sigma_clipped_stats_as_astropy():
    """Median exact, mean and std to the last bits, with NaN/inf ignored and a tail clipped."""
    from astropy.stats import sigma_clipped_stats as astropy_stats

    rng = np.random.default_rng(4)
    for n in (7, 5_000, 300_001):
        values = np.concatenate([rng.normal(3, 5, n), rng.normal(100, 50, n // 20),
                                 [np.nan, np.inf, -np.inf]])
        expected = astropy_stats(values[np.isfinite(values)])
        mean, median, std = sigma_clipped_stats(values)
        assert median == expected[1]
        np.testing.assert_allclose([mean, std], [expected[0], expected[2]], rtol=1e-12)


@pytest.mark.parametrize("lower_half_only", [False, True])
def test_clip_to_background_as_astropy_on_the_mirrored_half(lower_half_only):
    """The sorted-slice clip (and the merged mirror of the lower half) against the plain
    computation with astropy: the same mask."""
    from astropy.stats import sigma_clipped_stats as astropy_stats
    from ramp2slope.clean_flicker_noise import clip_to_background

    rng = np.random.default_rng(5)
    image = rng.normal(10, 4, (300, 300)).astype(np.float32)
    image[rng.random(image.shape) < 0.05] += 200          # sources: a long upper tail
    image[0, :5] = np.nan
    mask = np.isfinite(image)
    mask[50:80, 50:80] = False
    expected = mask.copy()
    values = image.astype(np.float64)
    _, center, sigma = astropy_stats(values[expected])
    if lower_half_only:
        lower = values[expected & (values <= center)]
        _, center, sigma = astropy_stats(np.concatenate((lower - center, center - lower)) + center)
    expected[values < center - 3 * sigma] = False
    expected[values > center + 2.5 * sigma] = False
    clip_to_background(image, mask, 3.0, 2.5, lower_half_only=lower_half_only)
    assert mask.sum() < expected.size * 0.95
    np.testing.assert_array_equal(mask, expected)


def test_flat_is_checked_before_any_step_runs(tmp_path, caplog):
    """With apply_flat_field the FLAT is found and checked up front: a FLAT of the wrong
    type stops the run in one line, before dq_init, with nothing written."""
    from ramp2slope.pipeline import Detector1Pipeline
    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(tmp_path / "sim", size=(32, 32), ngroups=3, nints=1, seed=2)
    steps = {"clean_flicker_noise": dict(skip=False, apply_flat_field=True,
                                         override_flat=str(sim.refs["gain"]))}
    pipe = Detector1Pipeline(steps=steps, refdir=os.path.dirname(sim.refs["mask"]),
                             output_dir=str(tmp_path))
    with caplog.at_level("INFO", logger="ramp2slope"):
        with pytest.raises(Ramp2SlopeError) as err:
            pipe.run(str(sim.uncal))
    assert "\n" not in str(err.value) and os.path.basename(str(sim.refs["gain"])) in str(err.value)
    assert "dq_init running" not in caplog.text
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".fits")]


def write_pastasoss(path):
    """A PASTASOSS reference (written by stdatamodels, as CRDS's are) with two smooth orders
    crossing a 256 x 2048 SOSS window, valid for pupil-wheel positions 245.54-246.04."""
    from stdatamodels.jwst.datamodels import PastasossModel

    model = PastasossModel()
    meta = model.meta
    meta.pwcpos_bounds, meta.pwcpos_cmd = [245.54, 246.04], 245.76
    meta.soss_xdim, meta.soss_ydim, meta.subarray_ymin = 2048, 300, 1792
    meta.wavemap_nwl, meta.wavemap_wlmin, meta.wavemap_wlmax = 5001, 0.5, 5.5
    meta.order2_separation_cutoff = [0.77, 0.95]
    x1 = np.linspace(4.0, 2043.0, 400)
    x2 = np.linspace(4.0, 1780.0, 300)
    model.traces = [
        {"cutoff": 2048, "pivot_x": 1000.0, "pivot_y": 80.0, "spectral_order": 1,
         "trace": np.array([x1, 80.0 + 0.02 * (x1 - 1000) + 1e-5 * (x1 - 1000) ** 2]).T},
        {"cutoff": 1783, "pivot_x": 900.0, "pivot_y": 170.0, "spectral_order": 2,
         "trace": np.array([x2, 170.0 + 0.03 * (x2 - 900)]).T},
    ]
    extents = [[0.0, -0.104], [2048.0, 0.163]]
    model.wavecal_models = [
        {"coefficients": [2.9, -2.0, 0.05] + [0.0] * 7, "polynomial_degree": 3,
         "scale_extents": extents},
        {"coefficients": [1.5, -1.0, 0.02] + [0.0] * 7, "polynomial_degree": 3,
         "scale_extents": extents},
    ]
    model.throughputs = [{"spectral_order": k, "wavelength": np.linspace(0.5, 5.5, 501),
                          "throughput": np.ones(501)} for k in (1, 2)]
    model.meta.instrument.name, model.meta.instrument.detector = "NIRISS", "NIS"
    model.meta.reftype, model.meta.author = "PASTASOSS", "test"
    model.meta.description, model.meta.pedigree = "mock", "GROUND"
    model.meta.useafter, model.meta.telescope = "2022-01-01T00:00:00", "JWST"
    model.save(path)
    return str(path)


@pytest.mark.oracle
@pytest.mark.parametrize("pwcpos,single_mask", [(245.79, True), (245.6, False)])
def test_soss_trace_mask_matches_jwst(tmp_path, monkeypatch, pwcpos, single_mask):
    """mask_science_regions on NIS_SOSS: the pixels within 16 rows of each order's trace (from
    the PASTASOSS reference at the exposure's pupil-wheel position) are not background."""
    ramp, refs, _ = _ramp(tmp_path, detector="NIS", readpatt="NISRAPID", size=(256, 2048),
                          ngroups=3, nints=2, seed=17)
    with fits.open(ramp, mode="update") as hdul:
        hdul[0].header["EXP_TYPE"] = "NIS_SOSS"
        hdul[0].header["PWCPOS"] = pwcpos
    pastasoss = write_pastasoss(tmp_path / "pastasoss.asdf")
    options = dict(mask_science_regions=True, override_pastasoss=pastasoss, save_mask=True,
                   single_mask=single_mask)
    ours = _both_complete_and_equal(ramp, refs, monkeypatch, tmp_path, **options)
    name = os.path.basename(ramp).replace("_ramp.fits", "_mask.fits")
    with fits.open(tmp_path / "theirs" / name) as a, fits.open(tmp_path / "ours" / name) as b:
        np.testing.assert_array_equal(b["SCI"].data, a["SCI"].data)
        mask = b["SCI"].data.astype(bool)
    # the traces are out: order 1 crosses row 80 near column 1000, order 2 row 170 near 900
    assert not mask[..., 70:90, 1000].any() and not mask[..., 160:180, 900].any()
    assert mask[..., 120:130, 1000].any()
    assert ours.meta.ref_file.pastasoss.name == pastasoss


def test_soss_trace_mask_outside_the_reference_is_one_line(tmp_path):
    ramp, refs, _ = _ramp(tmp_path, detector="NIS", readpatt="NISRAPID", size=(256, 2048),
                          ngroups=3, nints=1, seed=18)
    with fits.open(ramp, mode="update") as hdul:
        hdul[0].header["EXP_TYPE"] = "NIS_SOSS"
        hdul[0].header["PWCPOS"] = 250.0
    with pytest.raises(Ramp2SlopeError, match="pupil wheel position 250.0 is outside") as err:
        _ours(ramp, refs, mask_science_regions=True,
              override_pastasoss=write_pastasoss(tmp_path / "p.asdf"))
    assert "\n" not in str(err.value)


def _rates(ramp, refs):
    """The rate and rateints files of ``ramp`` (our ramp fit: equal to jwst's), made once."""
    from ramp2slope.ramp_fitting import RampFitStep

    folder = os.path.join(os.path.dirname(ramp), "rates")
    paths = {p: os.path.join(folder, os.path.basename(ramp).replace("_ramp", f"_{p}"))
             for p in ("rate", "rateints")}
    if not os.path.isdir(folder):
        os.makedirs(folder)
        rate, rateints = RampFitStep(override_gain=refs["gain"],
                                     override_readnoise=refs["readnoise"]).run(ramp)
        rate.save(paths["rate"])
        rateints.save(paths["rateints"])
    return paths


@pytest.mark.oracle
@pytest.mark.parametrize("product,options", [
    ("rate", {}),
    ("rate", {"background_method": "model", "n_sigma": 1.5}),
    ("rateints", {"single_mask": False}),
    ("rateints", {"single_mask": True, "background_method": None}),
    ("rate", {"apply_flat_field": True}),
    ("rateints", {"background_method": "median_image"}),
    ("rateints", {"background_method": "median_image", "apply_flat_field": True}),
], ids=["rate", "rate_model", "rateints_masks", "rateints_single", "rate_flat", "rateints_median",
        "rateints_median_flat"])
def test_rate_images_match_jwst(sub160, monkeypatch, tmp_path, product, options):
    """On stage-2 rate images and rateints cubes, each image is cleaned itself (no draft: the
    scene mask comes from the rates), with the saved mask, background and noise, as jwst."""
    ramp, refs, _ = sub160
    path = _rates(ramp, refs)[product]
    options = dict(options, save_mask=True, save_background=True, save_noise=True)
    if options.get("apply_flat_field"):
        options["override_flat"] = _write_flat(refs["gain"], tmp_path / "flat.fits")
    if options.get("background_method") == "median_image":
        _without_assign_wcs(monkeypatch)
    ours = _both_complete_and_equal(path, refs, monkeypatch, tmp_path, **options)
    before = datamodels.open(path)
    assert type(ours) is type(before)
    assert np.nanmax(np.abs(ours.data - before.data)) > 1e-3   # cleaned
    root = os.path.basename(path)[:-len(f"_{product}.fits")]   # the rate suffix goes
    for suffix in ("mask", "flicker_bkg", "flicker_noise"):
        name = f"{root}_{suffix}.fits"
        with fits.open(tmp_path / "theirs" / name) as a, fits.open(tmp_path / "ours" / name) as b:
            np.testing.assert_array_equal(b["SCI"].data, a["SCI"].data)
            assert b[0].header["DATAMODL"] == a[0].header["DATAMODL"]


def test_median_image_on_a_rate_image_fails_as_jwst(sub160):
    ramp, refs, _ = sub160
    path = _rates(ramp, refs)["rate"]
    out = _ours(path, refs, background_method="median_image")
    assert out.meta.cal_step.clean_flicker_noise == "FAILED"
    np.testing.assert_array_equal(out.data, datamodels.open(path).data)


@pytest.mark.parametrize("ramp", [True, False])
def test_make_median_image_as_jwst(ramp):
    """make_median_image (jwst's public function of the median_image method) on a ramp with its
    draft rateints, or on the rateints alone: the same array as jwst's, with an integration
    whose rates are all NaN (scaled by the others' median)."""
    jwst_oracle.require_jwst()
    jwst_oracle.configure_offline_crds()
    from jwst.clean_flicker_noise.tso_median_image import make_median_image as theirs
    from stdatamodels.jwst import datamodels as jwst_models

    from ramp2slope.clean_flicker_noise.tso_median_image import make_median_image

    rng = np.random.default_rng(11)
    rates = (rng.normal(5.0, 1.0, (4, 12, 14)) * np.array([1.0, 0.9, 1.1, 1.0])[:, None, None])
    rates = rates.astype(np.float32)
    rates[2] = np.nan
    data = (rates[:, None] * np.arange(1, 6, dtype=np.float32)[None, :, None, None]
            + rng.normal(0, 0.5, (4, 5, 12, 14))).astype(np.float32)

    def models(package):
        cube = package.CubeModel(data=rates.copy())
        source = package.RampModel(data=data.copy()) if ramp else cube
        for m in (cube, source):
            m.meta.exposure.type = "NRC_IMAGE"
            m.meta.instrument.name = "NIRCAM"
        return source, cube

    ours = make_median_image(*models(datamodels))
    expected = theirs(*models(jwst_models))
    assert ours.shape == (data if ramp else rates).shape and ours.dtype == expected.dtype
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("options", [
    {}, {"background_method": "model", "background_box_size": [16, 20], "single_mask": False},
    {"background_method": None, "n_sigma": 1.5, "fit_histogram": True}])
def test_do_correction_as_jwst_on_rateints(options):
    """do_correction (jwst's function-level entry) on a striped NIRCam rateints with sources:
    the cleaned data, the mask and the background models equal jwst's, and the status."""
    jwst_oracle.require_jwst()
    jwst_oracle.configure_offline_crds()
    from jwst.clean_flicker_noise import clean_flicker_noise as theirs
    from stdatamodels.jwst import datamodels as jwst_models

    from ramp2slope.clean_flicker_noise import clean_flicker_noise as ours

    rng = np.random.default_rng(21)
    rates = rng.normal(2.0, 0.3, (2, 64, 80)).astype(np.float32)
    rates += rng.normal(0, 0.2, (2, 64, 1)).astype(np.float32)       # stripes along rows
    rates[:, 20:26, 30:36] += 40.0                                     # a source
    rates[0, 5, 5] = np.nan

    def model(package):
        m = package.CubeModel(data=rates.copy(), dq=np.zeros(rates.shape, np.uint32))
        m.meta.exposure.type = "NRC_IMAGE"
        m.meta.instrument.name = "NIRCAM"
        m.meta.instrument.detector = "NRCA1"
        m.meta.subarray.name = "SUB64P"
        m.meta.subarray.slowaxis = 2
        m.meta.subarray.fastaxis = 1
        return m

    got = ours.do_correction(model(datamodels), save_mask=True, save_background=True, **options)
    expected = theirs.do_correction(model(jwst_models), save_mask=True, save_background=True,
                                    **options)
    assert got[4] == expected[4] == "COMPLETE"
    np.testing.assert_array_equal(got[0].data, expected[0].data)
    assert not np.array_equal(got[0].data, rates, equal_nan=True)
    np.testing.assert_array_equal(got[1].data, expected[1].data)
    np.testing.assert_array_equal(got[2].data, expected[2].data)
