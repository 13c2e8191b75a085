"""clean_flicker_noise's median_image on NIRISS SOSS time series, against jwst 3.0.0: the median
is scaled by a white-light curve (background templates subtracted, a box along order 1's trace,
the WAVELENGTHRANGE's range) and the background ramp is taken out of the median and put back."""
import os

import numpy as np
import pytest
from astropy.io import fits

import jwst_oracle
from ramp2slope import datamodels
from ramp2slope.errors import Ramp2SlopeError
from test_oracle_clean_flicker_noise import _ours, _ramp, _theirs, write_pastasoss

#: order 1's centre in the PASTASOSS of write_pastasoss (row near column ``x``, PWCPOS 245.76)
TRACE_ROW = 80.0


def _trace_row(x):
    return TRACE_ROW + 0.02 * (x - 1000) + 1e-5 * (x - 1000) ** 2


def _template(ny, nx, step_at, left, right, tilt=0.0):
    """A background with two levels meeting at column ``step_at`` (a smooth edge), rising
    slowly along the rows by ``tilt``."""
    x = np.arange(nx)[np.newaxis, :]
    y = np.arange(ny)[:, np.newaxis]
    edge = 1.0 / (1.0 + np.exp(-(x - step_at) / 2.0))
    return ((left + (right - left) * edge) * (1.0 + tilt * y / ny)).astype(np.float32)


def write_soss_background(path, ny=256, nx=2048):
    """A SOSS BKG reference (stdatamodels' SossBkgModel) of three templates; the second is the
    simulated sky's shape."""
    from stdatamodels.jwst.datamodels import SossBkgModel

    templates = np.stack([_template(ny, nx, 690, 1.0, 1.2),
                          _template(ny, nx, 705, 1.0, 1.8, tilt=0.1),
                          _template(ny, nx, 715, 1.0, 3.0, tilt=-0.2)])
    model = SossBkgModel(data=templates)
    meta = model.meta
    meta.instrument.name, meta.instrument.detector = "NIRISS", "NIS"
    meta.exposure.type, meta.reftype, meta.author = "NIS_SOSS", "BKG", "test"
    meta.description, meta.pedigree = "mock", "GROUND"
    meta.useafter, meta.telescope = "2022-01-01T00:00:00", "JWST"
    model.save(path)
    return str(path)


def write_wavelength_range(path, filter_name="CLEAR"):
    from stdatamodels.jwst.datamodels import WavelengthrangeModel

    model = WavelengthrangeModel()
    model.wavelengthrange = [[1, filter_name, 1.0, 2.6], [2, filter_name, 0.6, 1.4]]
    model.waverange_selector = [filter_name]
    model.order = [1, 2]
    meta = model.meta
    meta.instrument.name, meta.exposure.type = "NIRISS", "NIS_SOSS"
    meta.reftype, meta.author, meta.description = "WAVELENGTHRANGE", "test", "mock"
    meta.pedigree, meta.useafter, meta.telescope = "GROUND", "2022-01-01T00:00:00", "JWST"
    model.save(path)
    return str(path)


def _as_soss(ramp, path, *, subarray="SUBSTRIP256", pwcpos=245.79, sky=(5.0, 705.0), dip=None,
             nan_pixels=False):
    """A copy of ``ramp`` (256 x 2048 NIRISS) made a SOSS time series: a bright order-1 trace
    (Gaussian rows along it), a two-level sky of the second template's shape (``sky``: its rate
    left of the step, the step's column), and ``dip`` = (integration, depth) a transit."""
    with fits.open(ramp) as hdul:
        primary, sci = hdul[0].header, hdul["SCI"].data
        primary["EXP_TYPE"], primary["PWCPOS"] = "NIS_SOSS", pwcpos
        primary["SUBARRAY"], primary["FILTER"], primary["TSOVISIT"] = subarray, "CLEAR", True
        nints, ngroups, ny, nx = sci.shape
        frame_time = float(primary["TFRAME"])
        x = np.arange(nx)
        rows = np.arange(ny)[:, np.newaxis]
        trace = 40.0 * np.exp(-0.5 * ((rows - _trace_row(x)[np.newaxis, :]) / 3.0) ** 2)
        rate = trace + _template(ny, nx, sky[1], sky[0], 1.8 * sky[0], tilt=0.1)
        for i in range(nints):
            depth = dip[1] if dip is not None and dip[0] == i else 1.0
            for g in range(ngroups):
                sci[i, g] += ((trace * depth + (rate - trace)) * (g + 1) * frame_time).astype(
                    np.float32)
        if nan_pixels:
            sci[:, :, 200:203, 100:104] = np.nan
        hdul.writeto(path)
    return str(path)


@pytest.fixture(scope="module")
def soss_base(tmp_path_factory):
    base = tmp_path_factory.mktemp("soss_median")
    ramp, refs, _ = _ramp(base, detector="NIS", readpatt="NISRAPID", size=(256, 2048), ngroups=3,
                          nints=3, seed=23)
    return ramp, refs, base


def _stage2_references(monkeypatch, bkg, wavelength_range):
    """jwst's BackgroundStep and WhiteLightStep, run inside its step, ask CRDS for these."""
    jwst_oracle.require_jwst()
    from jwst.background.background_step import BackgroundStep
    from jwst.white_light.white_light_step import WhiteLightStep

    monkeypatch.setattr(BackgroundStep, "get_reference_file",
                        lambda self, model, reftype: bkg)
    monkeypatch.setattr(WhiteLightStep, "get_reference_file",
                        lambda self, model, reftype: wavelength_range)


def _compare(series, refs, monkeypatch, tmp_path, bkg="N/A", wavelength_range="N/A", **options):
    options = dict(options, background_method="median_image",
                   override_pastasoss=write_pastasoss(tmp_path / "pastasoss.asdf"))
    _stage2_references(monkeypatch, bkg, wavelength_range)
    (tmp_path / "theirs").mkdir()
    (tmp_path / "ours").mkdir()
    theirs = _theirs(series, refs, monkeypatch, output_dir=str(tmp_path / "theirs"), **options)
    ours = _ours(series, refs, output_dir=str(tmp_path / "ours"), override_bkg=bkg,
                 override_wavelengthrange=wavelength_range, **options)
    assert ours.meta.cal_step.clean_flicker_noise == theirs.meta.cal_step.clean_flicker_noise
    np.testing.assert_array_equal(ours.data, theirs.data)
    return ours, theirs


def _spy_on_scales(monkeypatch):
    """The list that receives each scale our step computes for its median image."""
    import ramp2slope.clean_flicker_noise.clean_flicker_noise_step as step_module

    seen, computed = [], step_module.relative_scale

    def relative_scale(fluxes):
        scale, invalid = computed(fluxes)
        seen.append(scale)
        return scale, invalid
    monkeypatch.setattr(step_module, "relative_scale", relative_scale)
    return seen


@pytest.mark.oracle
@pytest.mark.parametrize("case", ["templates", "no_references", "transit_nan", "substrip96",
                                  "rateints"])
def test_soss_median_image_matches_jwst(soss_base, tmp_path, monkeypatch, case):
    ramp, refs, _ = soss_base
    kwargs = {"dip": (1, 0.9)} if case != "no_references" else {}
    if case == "transit_nan":
        kwargs.update(nan_pixels=True, pwcpos=245.6)
    series = ramp
    if case == "substrip96":
        # a 96-row window cut from the 256-row one, at the rows SUBSTRIP96 takes of the BKG
        cut = tmp_path / "cut_ramp.fits"
        with fits.open(ramp) as hdul:
            for hdu in hdul:
                if hdu.data is not None and hdu.data.ndim >= 2 and hdu.data.shape[-2] == 256:
                    hdu.data = hdu.data[..., 10:106, :]
            hdul[0].header["SUBSIZE2"] = 96
            hdul.writeto(cut)
        series = cut
        kwargs["subarray"] = "SUBSTRIP96"
    series = _as_soss(series, tmp_path / "series_ramp.fits", **kwargs)
    if case == "rateints":
        # stage 2: the rateints cube cleaned (its median and background taken as rates)
        from ramp2slope.ramp_fitting import RampFitStep

        rateints = RampFitStep(override_gain=refs["gain"],
                               override_readnoise=refs["readnoise"]).run(series)[1]
        series = str(tmp_path / "series_rateints.fits")
        rateints.save(series)
    references = {}
    if case != "no_references":
        references = dict(bkg=write_soss_background(tmp_path / "bkg.fits"),
                          wavelength_range=write_wavelength_range(tmp_path / "wlr.asdf"))
    scales = _spy_on_scales(monkeypatch)
    ours, _ = _compare(series, refs, monkeypatch, tmp_path, save_background=True, **references)
    assert ours.meta.cal_step.clean_flicker_noise == "COMPLETE"
    name = os.path.basename(series).replace("_ramp.fits", "_flicker_bkg.fits").replace(
        "_rateints.fits", "_flicker_bkg.fits")
    with fits.open(tmp_path / "theirs" / name) as a, fits.open(tmp_path / "ours" / name) as b:
        np.testing.assert_array_equal(b["SCI"].data, a["SCI"].data)
    if "dip" in kwargs:
        # the white light sees the 10 % transit of integration 2
        assert scales[-1][1] / scales[-1][0] == pytest.approx(0.9, abs=0.02)


@pytest.mark.oracle
@pytest.mark.parametrize("case", ["subarray", "pwcpos", "filter", "no_pastasoss"])
def test_soss_failures_leave_the_exposure_as_jwst(soss_base, tmp_path, monkeypatch, case):
    """Where jwst gives up on the median image (a subarray it does not make one on, a pupil-wheel
    position outside the PASTASOSS, no wavelength range for the filter, no PASTASOSS), the step
    is FAILED on both sides and the ramp left as it was."""
    ramp, refs, _ = soss_base
    kwargs = {"subarray": "SUBSTRIP128"} if case == "subarray" else {}
    if case == "pwcpos":
        kwargs["pwcpos"] = 246.3
    series = _as_soss(ramp, tmp_path / "series_ramp.fits", **kwargs)
    wavelength_range = write_wavelength_range(tmp_path / "wlr.asdf",
                                              "F277W" if case == "filter" else "CLEAR")
    options = {"override_pastasoss": "N/A"} if case == "no_pastasoss" else {}
    _stage2_references(monkeypatch, "N/A", wavelength_range)
    options.setdefault("override_pastasoss", write_pastasoss(tmp_path / "pastasoss.asdf"))
    theirs = _theirs(series, refs, monkeypatch, background_method="median_image", **options)
    ours = _ours(series, refs, background_method="median_image", override_bkg="N/A",
                 override_wavelengthrange=wavelength_range, **options)
    assert theirs.meta.cal_step.clean_flicker_noise == "FAILED"
    assert ours.meta.cal_step.clean_flicker_noise == "FAILED"
    np.testing.assert_array_equal(ours.data, datamodels.open(series).data)


@pytest.mark.parametrize("case", ["stripes", "no_pwcpos"])
def test_soss_median_image_refusals_are_one_line_before_any_step(tmp_path, case):
    from ramp2slope.pipeline import Detector1Pipeline
    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(tmp_path / "sim", detector="NIS", readpatt="NISRAPID",
                            size=(256, 2048), ngroups=3, nints=2, seed=31)
    with fits.open(sim.uncal, mode="update") as hdul:
        hdul[0].header.update(EXP_TYPE="NIS_SOSS", TSOVISIT=True)
        if case == "stripes":
            hdul[0].header.update(SUBARRAY="SUB204STRIPE_SOSS", PWCPOS=245.76)
    steps = {"clean_flicker_noise": {"skip": False, "background_method": "median_image",
                                     "override_bkg": "N/A", "override_wavelengthrange": "N/A"}}
    pipe = Detector1Pipeline(refdir=os.path.dirname(sim.refs["mask"]),
                             output_dir=str(tmp_path / "out"), steps=steps)
    message = "stripe subarray SUB204STRIPE_SOSS" if case == "stripes" else "no PWCPOS keyword"
    with pytest.raises(Ramp2SlopeError, match=message) as err:
        pipe.run(str(sim.uncal))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_soss_pipeline_streamed_equals_whole(tmp_path):
    from test_streaming import _assert_same_products, _run
    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(tmp_path / "sim", detector="NIS", readpatt="NISRAPID",
                            size=(256, 2048), ngroups=3, nints=3, seed=29)
    with fits.open(sim.uncal, mode="update") as hdul:
        hdul[0].header.update(EXP_TYPE="NIS_SOSS", TSOVISIT=True, PWCPOS=245.7, FILTER="CLEAR",
                              SUBARRAY="SUBSTRIP256")
    steps = {"clean_flicker_noise": dict(
        skip=False, save_results=True, save_background=True, background_method="median_image",
        override_pastasoss=write_pastasoss(tmp_path / "pastasoss.asdf"),
        override_bkg=write_soss_background(tmp_path / "bkg.fits"),
        override_wavelengthrange=write_wavelength_range(tmp_path / "wlr.asdf"))}
    refdir = os.path.dirname(sim.refs["mask"])
    _run(sim.uncal, refdir, tmp_path / "whole", steps, streaming=False)
    _run(sim.uncal, refdir, tmp_path / "streamed", steps, streaming=True)
    names = os.listdir(tmp_path / "whole")
    assert any(n.endswith("_flicker_bkg.fits") for n in names)
    with fits.open(tmp_path / "whole" / [n for n in names if n.endswith("_rate.fits")][0]) as hdul:
        assert hdul[0].header["S_CLNFNS"] == "COMPLETE"
    _assert_same_products(tmp_path / "streamed", tmp_path / "whole")


@pytest.mark.oracle
def test_soss_references_from_crds_as_jwst(soss_base, tmp_path, monkeypatch):
    """With no overrides, the PASTASOSS, BKG and WAVELENGTHRANGE come from CRDS: jwst's step and
    the stage-2 steps it runs ask the same cache as ours, and the cleaned ramps are equal."""
    pytest.importorskip("crds")
    jwst_oracle.require_jwst()
    import shutil

    import jwst.clean_flicker_noise.clean_flicker_noise as official
    from crds_cache import Entry, build_cache, crds_environment, forget_crds_state
    from jwst.clean_flicker_noise import CleanFlickerNoiseStep as Theirs
    from jwst.ramp_fitting import RampFitStep

    ramp, refs, _ = soss_base
    series = _as_soss(ramp, tmp_path / "series_ramp.fits", dip=(2, 0.95))
    made = {"pastasoss": write_pastasoss(tmp_path / "p.asdf"),
            "bkg": write_soss_background(tmp_path / "b.fits"),
            "wavelengthrange": write_wavelength_range(tmp_path / "w.asdf")}
    entries = []
    for reftype, path in made.items():
        named = tmp_path / f"jwst_niriss_{reftype}_0001{os.path.splitext(path)[1]}"
        shutil.copy(path, named)
        entries.append(Entry("NIRISS", reftype, {"META.EXPOSURE.TYPE": "NIS_SOSS"},
                             "2022-01-01 00:00:00", str(named)))
    crds_environment(monkeypatch, build_cache(tmp_path / "crds_cache", entries))
    monkeypatch.setenv("STPIPE_DISABLE_CRDS_STEPPARS", "1")
    monkeypatch.setattr(official, "RampFitStep", lambda: RampFitStep(
        override_gain=refs["gain"], override_readnoise=refs["readnoise"]))
    try:
        theirs = Theirs.call(series, skip=False, background_method="median_image")
        ours = _ours(series, refs, background_method="median_image")
    finally:
        forget_crds_state()
    assert ours.meta.cal_step.clean_flicker_noise == theirs.meta.cal_step.clean_flicker_noise \
        == "COMPLETE"
    np.testing.assert_array_equal(ours.data, theirs.data)
    assert ours.meta.ref_file.pastasoss.name == theirs.meta.ref_file.pastasoss.name \
        == "crds://jwst_niriss_pastasoss_0001.asdf"
