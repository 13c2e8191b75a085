"""clean_flicker_noise's median_image on imaging time series (NRC_TSIMAGE, MIRI imaging TSO),
whose median is scaled by tso_photometry's aperture sums: against jwst 3.0.0's step, and the
light curve against its TSOPhotometryStep under each photometry option."""
import os

import numpy as np
import pytest
from astropy.io import fits

import jwst_oracle
from ramp2slope import datamodels
from ramp2slope.clean_flicker_noise.tso_light_curve import (PhotometryParameters, aperture_sums,
                                                            light_curve)
from test_oracle_clean_flicker_noise import _ours, _ramp, _theirs


def _brightest_source(sim):
    from ramp2slope.simulate import load_truth

    rate = load_truth(sim.truth).rate
    y, x = np.unravel_index(np.nanargmax(np.where(np.isfinite(rate), rate, -np.inf)), rate.shape)
    return int(x), int(y)


def _as_time_series(ramp, path, exp_type, planned, dip=None):
    """A copy of ``ramp`` labelled an imaging time series with the planned source position
    ``planned`` (x, y, 0-based); ``dip``: (integration, factor) scales that integration's ramp,
    a transit seen by the light curve."""
    with fits.open(ramp) as hdul:
        hdul[0].header["EXP_TYPE"] = exp_type
        hdul[0].header["TSOVISIT"] = True
        hdul["SCI"].header["XREF_SCI"] = planned[0] + 1
        hdul["SCI"].header["YREF_SCI"] = planned[1] + 1
        if dip is not None:
            hdul["SCI"].data[dip[0]] *= np.float32(dip[1])
        hdul.writeto(path)
    return str(path)


def _official_photometry_stubs(monkeypatch, gain_path):
    """What jwst's TSOPhotometryStep needs beyond our references, offline: its GAIN (from CRDS
    officially; the simulated one here) and a WCS on the draft for the catalog's RA/Dec
    columns (assign_wcs with CRDS's distortion officially; an identity here, which touches
    neither data nor DQ). MIRI's draft flat_field (for its DQ) is left out on both sides."""
    jwst_oracle.require_jwst()
    import jwst.clean_flicker_noise.clean_flicker_noise as official
    from jwst.tso_photometry import TSOPhotometryStep

    class IdentityWcs:
        input_dir = ""

        def run(self, model):
            model.meta.wcs = _identity_wcs()
            return model

    class PassThrough:
        input_dir = ""

        def run(self, model):
            return model.copy()

    found = TSOPhotometryStep.get_reference_file
    monkeypatch.setattr(official, "AssignWcsStep", IdentityWcs)
    monkeypatch.setattr(official, "FlatFieldStep", PassThrough)
    monkeypatch.setattr(TSOPhotometryStep, "get_reference_file", lambda self, model, reftype:
                        gain_path if reftype == "gain" else found(self, model, reftype))


def _identity_wcs():
    from astropy import coordinates, units
    from astropy.modeling import models
    from gwcs import coordinate_frames, wcs

    detector = coordinate_frames.Frame2D(name="detector", axes_order=(0, 1),
                                         unit=(units.pix, units.pix))
    sky = coordinate_frames.CelestialFrame(reference_frame=coordinates.ICRS(), name="world")
    return wcs.WCS([(detector, models.Shift(0) & models.Shift(0)), (sky, None)])


@pytest.fixture(scope="module")
def nircam_series(tmp_path_factory):
    base = tmp_path_factory.mktemp("tso_image")
    ramp, refs, sim = _ramp(base, subarray="SUB160", ngroups=4, nints=4, seed=21)
    return ramp, refs, _brightest_source(sim)


@pytest.mark.oracle
@pytest.mark.parametrize("offset,dip,rates", [((2.3, -1.7), None, False),
                                              ((0.0, 0.0), (2, 0.8), False),
                                              ((0.0, 0.0), (2, 0.8), True)],
                         ids=["off_centre", "transit", "transit_rateints"])
def test_nircam_time_series_matches_jwst(nircam_series, monkeypatch, tmp_path, offset, dip,
                                         rates):
    """The median ramp scaled by each integration's aperture sum at the centroided source,
    then each group cleaned against it: bit-identical to jwst, the saved background too. With
    ``rates``, the stage-2 rateints cube of the series instead."""
    ramp, refs, (x, y) = nircam_series
    series = _as_time_series(ramp, tmp_path / os.path.basename(ramp), "NRC_TSIMAGE",
                             (x + offset[0], y + offset[1]), dip)
    if rates:
        from ramp2slope.ramp_fitting import RampFitStep

        cube = RampFitStep(override_gain=refs["gain"], override_readnoise=refs["readnoise"]).run(
            series)[1]
        series = str(tmp_path / os.path.basename(ramp).replace("_ramp", "_rateints"))
        cube.save(series)
    _official_photometry_stubs(monkeypatch, refs["gain"])
    options = dict(background_method="median_image", save_background=True)
    for side in ("theirs", "ours"):
        (tmp_path / side).mkdir()
    theirs = _theirs(series, refs, monkeypatch, output_dir=str(tmp_path / "theirs"), **options)
    ours = _ours(series, refs, output_dir=str(tmp_path / "ours"), **options)
    assert ours.meta.cal_step.clean_flicker_noise == theirs.meta.cal_step.clean_flicker_noise \
        == "COMPLETE"
    np.testing.assert_array_equal(ours.data, theirs.data)
    name = os.path.basename(series).replace("_ramp.fits", "_flicker_bkg.fits").replace(
        "_rateints.fits", "_flicker_bkg.fits")
    with fits.open(tmp_path / "theirs" / name) as a, fits.open(tmp_path / "ours" / name) as b:
        np.testing.assert_array_equal(b["SCI"].data, a["SCI"].data)
        background = b["SCI"].data
    if rates:
        background = background[:, np.newaxis]   # one "group": the rate
    if dip is not None:
        # the light curve carries the transit: the dimmed integration's median is scaled down
        ratio = background[dip[0], -1] / np.delete(background, dip[0], axis=0)[:, -1].mean(axis=0)
        assert abs(np.nanmedian(ratio) - dip[1]) < 0.02


@pytest.mark.oracle
@pytest.mark.slow
def test_miri_imaging_time_series_matches_jwst(tmp_path, monkeypatch):
    """MIRI imaging with TSOVISIT: the same photometric scaling, its centroids also skipping
    the FLAT's unusable pixels (officially from a flat_field run on the draft rate)."""
    jwst_oracle.require_jwst()
    import jwst.clean_flicker_noise.clean_flicker_noise as official
    from jwst.flatfield import FlatFieldStep

    from ramp2slope.pipeline import Detector1Pipeline
    from ramp2slope.simulate.miri import simulate_miri_exposure
    from test_oracle_miri_flicker import ROOT, write_miri_flat

    sim = simulate_miri_exposure(tmp_path / "sim", subarray="SUB256", ngroups=5, nints=3, seed=35)
    refs = {k: str(v) for k, v in sim.refs.items() if k != "emicorr"}
    Detector1Pipeline(steps=jwst_oracle._miri_steps(refs, None, ()), output_dir=str(tmp_path),
                      save_calibrated_ramp=True).run(str(sim.uncal))
    ramp = str(tmp_path / f"{ROOT}_ramp.fits")
    x, y = _brightest_source(sim)
    series = _as_time_series(ramp, tmp_path / "series_ramp.fits", "MIR_IMAGE", (x + 1.4, y + 0.6))
    flat = write_miri_flat(refs["gain"], tmp_path / "flat.fits")
    with fits.open(series) as hdul:
        x0, y0 = hdul[0].header["SUBSTRT1"] - 1, hdul[0].header["SUBSTRT2"] - 1
    with fits.open(flat, mode="update") as hdul:     # unusable pixels on the star's wing
        for dy, dx in ((1, 2), (-2, 1), (0, -3)):
            hdul["DQ"].data[y0 + y + dy, x0 + x + dx] |= 1
    _official_photometry_stubs(monkeypatch, refs["gain"])
    monkeypatch.setattr(official, "FlatFieldStep", lambda: FlatFieldStep(
        override_flat=flat, override_fflat="N/A", override_sflat="N/A", override_dflat="N/A"))
    options = dict(background_method="median_image", override_flat=flat)
    theirs = _theirs(series, refs, monkeypatch, **options)
    ours = _ours(series, refs, **options)
    assert ours.meta.cal_step.clean_flicker_noise == theirs.meta.cal_step.clean_flicker_noise \
        == "COMPLETE"
    np.testing.assert_array_equal(ours.data, theirs.data)


def test_missing_planned_position_leaves_the_exposure_as_jwst(nircam_series, tmp_path, caplog):
    """Without XREF_SCI the official photometry raises and the step gives up (FAILED, the data
    as they were): the same here, said in the log."""
    ramp, refs, (x, y) = nircam_series
    series = _as_time_series(ramp, tmp_path / os.path.basename(ramp), "NRC_TSIMAGE", (x, y))
    with fits.open(series, mode="update") as hdul:
        del hdul["SCI"].header["XREF_SCI"]
    out = _ours(series, refs, background_method="median_image")
    assert out.meta.cal_step.clean_flicker_noise == "FAILED"
    np.testing.assert_array_equal(out.data, datamodels.open(series).data)
    assert "XREF_SCI is missing" in caplog.text


# -- the light curve alone, against TSOPhotometryStep's catalog ----------------------------------
def _cube(tmp_path, ny=64, nx=64, nints=5, seed=3):
    """A star over a sky with noise, NaNs and DO_NOT_USE pixels on it, drifting by a pixel over
    the integrations and dimming in the middle ones; its GAIN file; the planned position."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:ny, :nx]
    rates = np.empty((nints, ny, nx), np.float32)
    for i in range(nints):
        x0, y0 = 30.4 + 0.25 * i, 33.1 - 0.2 * i
        flux = 900.0 * (0.97 if 1 < i < 4 else 1.0)
        star = flux * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 1.4 ** 2))
        rates[i] = star + 4.0 + rng.normal(0, 0.6, (ny, nx))
    rates[:, 31, 29] = np.nan
    dq = np.zeros(rates.shape, np.uint32)
    dq[:, 34, 31] = 1
    dq[2, 30, 30] = 1
    gain = (2.0 + 0.1 * rng.random((ny, nx))).astype(np.float32)
    gain_path = tmp_path / "gain.fits"
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(gain, name="SCI")])
    hdul[0].header.update(REFTYPE="GAIN", INSTRUME="NIRCAM", DETECTOR="NRCALONG",
                          SUBARRAY="GENERIC", SUBSTRT1=1, SUBSTRT2=1, SUBSIZE1=nx, SUBSIZE2=ny)
    hdul.writeto(gain_path)
    return rates, dq, gain, str(gain_path), (32.0, 31.0)


def _official_light_curve(rates, dq, gain_path, planned, integration_time, pupil, subarray,
                          monkeypatch, **options):
    jwst_oracle.require_jwst()
    jwst_oracle.configure_offline_crds()
    from stdatamodels.jwst import datamodels as official_models
    from jwst.tso_photometry import TSOPhotometryStep

    nints, ny, nx = rates.shape
    cube = official_models.CubeModel(data=rates.copy(), dq=dq.copy(),
                                     err=np.ones_like(rates))
    meta = cube.meta
    meta.instrument.name, meta.instrument.detector = "NIRCAM", "NRCALONG"
    meta.instrument.pupil = pupil
    meta.subarray.name = subarray
    meta.subarray.xstart = meta.subarray.ystart = 1
    meta.subarray.xsize, meta.subarray.ysize = nx, ny
    meta.exposure.type = "NRC_TSIMAGE"
    meta.exposure.integration_time = integration_time
    meta.bunit_data = meta.bunit_err = "DN/s"
    meta.wcsinfo.siaf_xref_sci, meta.wcsinfo.siaf_yref_sci = planned[0] + 1, planned[1] + 1
    meta.wcs = _identity_wcs()
    times = np.zeros(nints, dtype=cube.get_dtype("int_times"))
    times["integration_number"] = np.arange(1, nints + 1)
    times["int_mid_MJD_UTC"] = times["int_mid_BJD_TDB"] = 60000.0 + np.arange(nints) / 1e3
    cube.int_times = times
    monkeypatch.setattr(TSOPhotometryStep, "get_reference_file",
                        lambda self, model, reftype: gain_path)
    table = TSOPhotometryStep.call(cube, **options)
    return np.asarray(table["aperture_sum"].value)


@pytest.mark.oracle
@pytest.mark.parametrize("options", [
    {},
    {"moving_centroid": True},
    {"centroid_source": False},
    {"radius": 4.5, "radius_inner": 6.0, "radius_outer": 8.0, "search_box_width": 20,
     "fit_box_width": 8},
    {"search_box_width": 5},               # the wide box misses the drifting star's peak
], ids=["default", "moving", "planned", "radii_even_boxes", "narrow_search"])
def test_light_curve_matches_tso_photometry(tmp_path, monkeypatch, options):
    rates, dq, gain, gain_path, planned = _cube(tmp_path)
    theirs = _official_light_curve(rates, dq, gain_path, planned, 10.737, "CLEAR", "GENERIC",
                                   monkeypatch, **options)
    ours = light_curve(rates, dq, gain, 10.737, planned[0] + 1, planned[1] + 1,
                       PhotometryParameters.from_mapping(options))
    np.testing.assert_array_equal(ours, theirs)
    assert ours.dtype == theirs.dtype


@pytest.mark.oracle
def test_light_curve_on_sub64p_wlp8_is_the_whole_image(tmp_path, monkeypatch):
    """The weak-lens pupil on SUB64P overfills the subarray: the official sum is the image's."""
    rates, dq, gain, gain_path, planned = _cube(tmp_path)
    theirs = _official_light_curve(rates, dq, gain_path, planned, 10.737, "WLP8", "SUB64P",
                                   monkeypatch)
    ours = light_curve(rates, dq, gain, 10.737, planned[0] + 1, planned[1] + 1,
                       PhotometryParameters(), whole_image=True)
    np.testing.assert_array_equal(ours, theirs)


def test_light_curve_follows_the_source():
    """A moving centroid puts each integration's aperture on its own star position."""
    ny = nx = 48
    yy, xx = np.mgrid[:ny, :nx]
    positions = [(20.0, 22.0), (23.0, 21.0), (26.0, 24.0)]
    rates = np.stack([np.float32(500.0) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 2.0)
                      for x, y in positions]).astype(np.float32)
    dq = np.zeros(rates.shape, np.uint32)
    gain = np.ones((ny, nx), np.float32)
    fixed = light_curve(rates, dq, gain, 1.0, 24, 23, PhotometryParameters(radius=2.0))
    moving = light_curve(rates, dq, gain, 1.0, 24, 23,
                         PhotometryParameters(radius=2.0, moving_centroid=True))
    whole = aperture_sums(rates, 0, 0, 1.0, whole_image=True)
    assert np.ptp(moving) < 1e-3 * moving.mean()        # every star fully in its aperture
    assert moving.min() > fixed.min() * 1.5             # the fixed aperture misses the ends
    assert np.all((moving > 0.8 * whole) & (moving < 0.9 * whole))   # a 2-sigma radius: 86 %


def test_annulus_radii_are_checked_as_officially():
    rates, dq = np.ones((2, 16, 16), np.float32), np.zeros((2, 16, 16), np.uint32)
    with pytest.raises(ValueError, match="r_out"):
        light_curve(rates, dq, np.ones((16, 16), np.float32), 1.0, 8, 8,
                    PhotometryParameters(radius_inner=6.0, radius_outer=5.0))


def test_even_box_widths_are_lowered_as_officially(caplog):
    params = PhotometryParameters.from_mapping({"search_box_width": 40, "fit_box_width": 11,
                                                "radius": 2, "save_catalog": True})
    assert (params.search_box_width, params.fit_box_width, params.radius) == (39, 11, 2.0)
    assert "search_box_width 40 taken as 39" in caplog.text


def test_crds_photometry_parameters_are_used(tmp_path, monkeypatch, caplog):
    """As the official step calls TSOPhotometryStep with its CRDS parameters, the aperture
    follows a ``pars-tsophotometrystep`` of the context."""
    pytest.importorskip("crds")
    from crds_cache import crds_environment, forget_crds_state
    from test_parameter_files import build_pars_cache

    ramp, refs, sim = _ramp(tmp_path, subarray="SUB160", ngroups=3, nints=3, seed=23,
                            detector="NRCA1", full_frame_refs=False)
    x, y = _brightest_source(sim)
    series = _as_time_series(ramp, tmp_path / "series_ramp.fits", "NRC_TSIMAGE", (x, y))
    pars = {"class": "jwst.tso_photometry.tso_photometry_step.TSOPhotometryStep",
            "name": "tso_photometry", "parameters": {"radius": 4.5, "moving_centroid": True}}
    crds_environment(monkeypatch, build_pars_cache(tmp_path / "crds",
                                                   {"pars-tsophotometrystep": pars}))
    monkeypatch.delenv("STPIPE_DISABLE_CRDS_STEPPARS", raising=False)
    try:
        with caplog.at_level("INFO", logger="ramp2slope"):
            out = _ours(series, refs, background_method="median_image")
    finally:
        forget_crds_state()
    assert out.meta.cal_step.clean_flicker_noise == "COMPLETE"
    assert "aperture of radius 4.5" in caplog.text
    assert "median of the moving centroid" in caplog.text


def test_missing_integration_time_is_refused_before_any_step(tmp_path):
    """The photometry is in electrons per integration: without EFFINTTM (where jwst's
    photometry stops with a TypeError) one line, before any step runs, and no product."""
    from ramp2slope.errors import Ramp2SlopeError
    from ramp2slope.pipeline import Detector1Pipeline
    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(tmp_path / "sim", subarray="SUB160", ngroups=3, nints=2, seed=24)
    with fits.open(sim.uncal, mode="update") as hdul:
        hdul[0].header.update(EXP_TYPE="NRC_TSIMAGE", TSOVISIT=True)
        del hdul[0].header["EFFINTTM"]
    pipe = Detector1Pipeline(refdir=os.path.dirname(sim.refs["mask"]),
                             output_dir=str(tmp_path / "out"),
                             steps={"clean_flicker_noise": {"skip": False,
                                                            "background_method": "median_image"}})
    with pytest.raises(Ramp2SlopeError, match="no EFFINTTM keyword") as err:
        pipe.run(str(sim.uncal))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")
