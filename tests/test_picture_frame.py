"""picture_frame (NIRSpec full frames) against jwst 3.0.0's step: on a ramp with a thermal picture
frame added, on a rate image, the saved mask and correction; the pipeline streamed and whole;
what it refuses and when it is skipped."""
import os

import numpy as np
import pytest
from astropy.io import fits

import jwst_oracle
from ramp2slope.errors import Ramp2SlopeError
from ramp2slope.picture_frame import PictureFrameStep
from test_streaming import _assert_same_products, _run


def _pattern():
    """A picture frame: brighter towards the edges of the detector (DN/s)."""
    y, x = np.mgrid[:2048, :2048] / 2047.0 * 2 - 1
    return (0.02 + 0.3 * np.maximum(np.abs(x), np.abs(y)) ** 8).astype(np.float32)


def _write_reference(header_from, path):
    with fits.open(header_from) as ref:
        primary = ref[0].header.copy()
    primary["REFTYPE"] = primary["FILETYPE"] = "PICTUREFRAME"
    primary["DATAMODL"] = "PictureFrameModel"
    fits.HDUList([fits.PrimaryHDU(header=primary), fits.ImageHDU(_pattern(), name="SCI")]).writeto(path)
    return str(path)


@pytest.fixture(scope="module")
def nirspec(tmp_path_factory):
    """A NIRSpec NRS1 full frame (2 integrations x 3 groups) with the pattern added to its raw
    groups, its references (a PICTUREFRAME among them), and its ramp after jump."""
    from ramp2slope.pipeline import Detector1Pipeline
    from ramp2slope.simulate import simulate_exposure

    base = tmp_path_factory.mktemp("pctfrm")
    sim = simulate_exposure(base / "sim", detector="NRS1", readpatt="NRSRAPID", ngroups=3, nints=2,
                            seed=41)
    refs = {k: str(v) for k, v in sim.refs.items()}
    refs["pictureframe"] = _write_reference(refs["gain"], base / "sim" / "refs" / "pictureframe.fits")
    with fits.open(sim.uncal, mode="update") as hdul:
        sci = hdul["SCI"].data
        tgroup = hdul[0].header["TGROUP"]
        for g in range(sci.shape[1]):
            # below the rate noise at the edges, so that the scene mask keeps them as background
            sci[:, g] += np.round(_pattern() * 2 * tgroup * (g + 1)).astype(sci.dtype)
    pipe = Detector1Pipeline(steps=jwst_oracle.reference_overrides(refs), output_dir=str(base),
                             save_calibrated_ramp=True)
    pipe._streaming = False
    pipe.run(str(sim.uncal))
    return sim, refs, str(base / f"{sim.root}_ramp.fits"), base


def _theirs(data, refs, monkeypatch, **options):
    jwst_oracle.require_jwst()
    jwst_oracle.configure_offline_crds()
    import jwst.clean_flicker_noise.clean_flicker_noise as official
    from jwst.picture_frame import PictureFrameStep as Theirs
    from jwst.ramp_fitting import RampFitStep

    monkeypatch.setattr(official, "RampFitStep", lambda: RampFitStep(
        override_gain=refs["gain"], override_readnoise=refs["readnoise"]))
    return Theirs.call(data, skip=False, override_pictureframe=refs["pictureframe"],
                       mask_science_regions=False, **options)


def _ours(data, refs, **options):
    return PictureFrameStep(skip=False, refdir=os.path.dirname(refs["gain"]),
                            mask_science_regions=False, **options).run(data)


@pytest.mark.oracle
def test_ramp_matches_jwst_and_removes_the_frame(nirspec, monkeypatch, tmp_path):
    sim, refs, ramp, _ = nirspec
    theirs = _theirs(ramp, refs, monkeypatch, save_mask=True, save_correction=True,
                     output_dir=str(tmp_path / "jwst"))
    ours = _ours(ramp, refs, save_mask=True, save_correction=True, output_dir=str(tmp_path / "ours"))
    assert theirs.meta.cal_step.picture_frame == ours.meta.cal_step.picture_frame == "COMPLETE"
    np.testing.assert_array_equal(ours.data, theirs.data)
    for suffix in ("pctfrm_mask", "pctfrm_correction"):
        with fits.open(tmp_path / "jwst" / f"{sim.root}_{suffix}.fits") as a, \
                fits.open(tmp_path / "ours" / f"{sim.root}_{suffix}.fits") as b:
            np.testing.assert_array_equal(b["SCI"].data, a["SCI"].data, err_msg=suffix)
    # the frame was there (edges above the centre in the last group's signal) and is gone
    with fits.open(ramp) as before:
        raw = before["SCI"].data[0, -1] - before["SCI"].data[0, 0]
    after = ours.data[0, -1] - ours.data[0, 0]

    def contrast(image):
        return np.median(image[10:60, 500:1500]) - np.median(image[900:1100, 900:1100])

    assert contrast(raw) > 5
    assert abs(contrast(after)) < 0.3 * contrast(raw)   # measured: 9.6 DN before, 2.1 after


@pytest.mark.oracle
def test_rate_image_matches_jwst(nirspec, monkeypatch, tmp_path):
    sim, refs, ramp, base = nirspec
    from ramp2slope.ramp_fitting import RampFitStep

    rate, _ = RampFitStep(override_gain=refs["gain"], override_readnoise=refs["readnoise"]).run(ramp)
    path = tmp_path / f"{sim.root}_rate.fits"
    rate.save(path)
    theirs = _theirs(str(path), refs, monkeypatch)
    ours = _ours(str(path), refs)
    np.testing.assert_array_equal(ours.data, theirs.data)
    assert not np.array_equal(ours.data, rate.data)


def test_pipeline_streamed_equals_whole(nirspec, tmp_path):
    sim, refs, _, _ = nirspec
    # the jump product is the ramp before the correction, streamed as whole
    steps = {"picture_frame": {"skip": False, "mask_science_regions": False, "save_results": True},
             "jump": {"save_results": True}}
    refdir = os.path.dirname(refs["mask"])
    whole = _run(sim.uncal, refdir, tmp_path / "whole", steps, False)
    streamed = _run(sim.uncal, refdir, tmp_path / "streamed", steps, True)
    assert whole.meta.cal_step.picture_frame == streamed.meta.cal_step.picture_frame == "COMPLETE"
    _assert_same_products(tmp_path / "streamed", tmp_path / "whole")


def test_science_region_masking_is_refused_before_any_step_runs(nirspec, tmp_path, caplog):
    sim, refs, _, _ = nirspec
    with caplog.at_level("INFO", logger="ramp2slope"):
        with pytest.raises(Ramp2SlopeError, match="mask_science_regions=False") as info:
            _run(sim.uncal, os.path.dirname(refs["mask"]), tmp_path,
                 {"picture_frame": {"skip": False}}, True)
    assert "\n" not in str(info.value)
    assert "dq_init running" not in caplog.text
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".fits")]


def test_skipped_without_a_reference_for_other_instruments(tmp_path):
    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(tmp_path / "sim", size=(64, 64), ngroups=3, seed=2)
    rate = _run(sim.uncal, os.path.dirname(sim.refs["mask"]), tmp_path,
                {"picture_frame": {"skip": False}}, True)
    assert rate.meta.cal_step.picture_frame == "SKIPPED"


def test_report_shows_the_subtracted_frame(nirspec, tmp_path, capsys):
    import re

    from ramp2slope.cli import main
    from test_report import PASS, _section, read_checks

    sim, refs, _, _ = nirspec
    out = tmp_path / "products"
    assert main(["run", str(sim.uncal), "--refdir", os.path.dirname(refs["mask"]), "--output-dir",
                 str(out), "--report", "--steps.picture_frame.skip=False",
                 "--steps.picture_frame.mask_science_regions=False"]) == 0
    capsys.readouterr()
    for suffix in ("pctfrm_correction", "pctfrm_mask"):    # implied by --report
        assert (out / f"{sim.root}_{suffix}.fits").is_file(), suffix
    checks, text = read_checks(out / "report.html")
    check = checks["Picture frame contrast reduced"]
    assert check["status"] == PASS, check
    before, after = (float(v) for v in re.findall(r"(-?[0-9.]+) DN", check["measured"]))
    assert abs(after) < 0.5 * abs(before)
    body = _section(text, "picture_frame")
    assert body.count("<img") == 2     # the subtracted pattern, before/after
    assert "scaled PICTUREFRAME pattern" in body


def test_correct_picture_frame_function_as_jwst(nirspec, tmp_path):
    """correct_picture_frame (jwst's function-level entry) on the rate with the reference as a
    PictureFrameModel: the corrected data, mask and correction equal jwst's function's, status
    COMPLETE; a single-group ramp is SKIPPED before the science masking is looked at."""
    jwst_oracle.require_jwst()
    jwst_oracle.configure_offline_crds()
    from jwst.picture_frame.picture_frame import correct_picture_frame as theirs
    from stdatamodels.jwst import datamodels as jwst_models

    from ramp2slope import datamodels
    from ramp2slope.picture_frame.picture_frame import correct_picture_frame
    from ramp2slope.ramp_fitting import RampFitStep

    sim, refs, ramp, base = nirspec
    rate, _ = RampFitStep(override_gain=refs["gain"], override_readnoise=refs["readnoise"]).run(ramp)
    path = str(tmp_path / f"{sim.root}_rate.fits")
    rate.save(path)
    pattern = datamodels.PictureFrameModel(data=_pattern())
    got = correct_picture_frame(datamodels.open(path), pattern, mask_science_regions=False,
                                save_mask=True, save_correction=True)
    expected = theirs(jwst_models.open(path), jwst_models.PictureFrameModel(data=_pattern()),
                      mask_science_regions=False, save_mask=True, save_correction=True)
    assert got[3] == expected[3] == "COMPLETE"
    for ours, official in zip(got[:3], expected[:3]):
        np.testing.assert_array_equal(ours.data, official.data)
    assert not np.array_equal(got[0].data, rate.data)
    single = datamodels.open(ramp)
    single.data, single.groupdq = single.data[:, :1], single.groupdq[:, :1]
    single.meta.cal_step.picture_frame = None
    out, mask, correction, status = correct_picture_frame(single, pattern)
    assert (status, mask, correction) == ("SKIPPED", None, None)
    assert single.meta.cal_step.picture_frame is None     # the step's status is not recorded
