"""clean_flicker_noise on MIRI imaging against jwst's: the flicker is fitted along columns
whatever SLOWAXIS says, fit_by_channel is dropped, and ``mask_science_regions`` leaves out of
the background the pixels DO_NOT_USE or NON_SCIENCE in the draft rate's DQ and in the FLAT's
(jwst runs a flat_field step on its draft rate for that DQ). MIRI spectroscopy is skipped, as
jwst skips it.

Both pipelines run on the same simulated raw file with the same references; jwst's draft
RampFitStep and its FlatFieldStep are given the references its CRDS would have given.
"""
import numpy as np
import pytest
from astropy.io import fits

import jwst_oracle

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

CASES = {
    # one integration (processed whole), non-science regions masked, fit_by_channel dropped
    "sub256_mask": (dict(subarray="SUB256", ngroups=6, nints=1, seed=31),
                    {"mask_science_regions": True, "fit_by_channel": True}),
    # an imager subarray, three integrations (streamed), one mask per integration
    "sub256_mask_per_int": (dict(subarray="SUB256", ngroups=6, nints=3, seed=32),
                            {"mask_science_regions": True, "single_mask": False}),
    # MIRI spectroscopy: jwst skips the step
    "slitless_skipped": (dict(subarray="SLITLESSPRISM", ngroups=6, nints=2, seed=34), {}),
}
ROOT = "jw01234001001_01101_00001_mirimage"


def write_miri_flat(gain_path, path):
    """A full-frame MIRI imager FLAT: a smooth gradient, NON_SCIENCE over the coronagraph
    corner (x < 360, y > 700, as the imager's Lyot and 4QPM fields lie) and over a block that
    the SUB256 window holds, NaN and zero values and NO_FLAT_FIELD pixels scattered."""
    with fits.open(gain_path) as gain:
        primary = gain[0].header.copy()
    primary["REFTYPE"] = primary["FILETYPE"] = "FLAT"
    primary["DATAMODL"] = "MirImgFlatModel"
    primary["FILTER"] = "F770W"
    ny, nx = 1024, 1032
    y, x = np.mgrid[:ny, :nx] / 1024.0
    flat = (0.9 + 0.2 * x - 0.1 * y).astype(np.float32)
    flat.flat[::1733] = np.nan
    flat.flat[7::2111] = 0.0
    dq = np.zeros((ny, nx), np.uint32)
    from ramp2slope.datamodels import dqflags
    dq[700:, :360] |= dqflags.pixel["NON_SCIENCE"]
    dq[100:140, 450:500] |= dqflags.pixel["NON_SCIENCE"]
    dq.flat[11::1499] |= dqflags.pixel["NO_FLAT_FIELD"]
    fits.HDUList([fits.PrimaryHDU(header=primary), fits.ImageHDU(flat, name="SCI"),
                  fits.ImageHDU(np.full_like(flat, 0.01), name="ERR"),
                  fits.ImageHDU(dq, name="DQ")]).writeto(path)
    return str(path)


@pytest.fixture(scope="module", params=sorted(CASES))
def runs(request, tmp_path_factory):
    jwst_oracle.require_jwst()
    jwst_oracle.configure_offline_crds()
    import jwst.clean_flicker_noise.clean_flicker_noise as official
    from jwst.flatfield import FlatFieldStep
    from jwst.ramp_fitting import RampFitStep

    from ramp2slope.simulate.miri import simulate_miri_exposure

    sim_options, step_options = CASES[request.param]
    base = tmp_path_factory.mktemp(request.param)
    sim = simulate_miri_exposure(base / "sim", **sim_options)
    flat = write_miri_flat(sim.refs["gain"], base / "sim" / "refs" / f"{ROOT}_flat.fits")
    steps = {"clean_flicker_noise": dict(skip=False, save_results=True, save_mask=True,
                                         save_noise=True, override_flat=flat,
                                         override_pastasoss="N/A", **step_options)}
    patch = pytest.MonkeyPatch()
    patch.setattr(official, "RampFitStep", lambda: RampFitStep(
        override_gain=str(sim.refs["gain"]), override_readnoise=str(sim.refs["readnoise"])))
    patch.setattr(official, "FlatFieldStep", lambda: FlatFieldStep(
        override_flat=flat, override_fflat="N/A", override_sflat="N/A", override_dflat="N/A"))
    try:
        theirs, ours = jwst_oracle.run_both_miri(sim, base, steps=steps, save_steps=("jump",))
    finally:
        patch.undo()
    return request.param, theirs, ours


def _open(folder, suffix):
    path = folder / f"{ROOT}_{suffix}.fits"
    assert path.exists(), path
    return fits.open(path)


def test_cleaned_ramp_matches_jwst(runs):
    case, theirs, ours = runs
    with _open(theirs, "clean_flicker_noise") as a, _open(ours, "clean_flicker_noise") as b:
        assert a[0].header.get("S_CLNFNS") == b[0].header.get("S_CLNFNS")
        np.testing.assert_array_equal(a["GROUPDQ"].data, b["GROUPDQ"].data)
        np.testing.assert_array_equal(a["PIXELDQ"].data, b["PIXELDQ"].data)
        np.testing.assert_allclose(b["SCI"].data, a["SCI"].data, rtol=0, atol=1e-3)
        with _open(theirs, "jump") as before:
            changed = not np.array_equal(before["SCI"].data, a["SCI"].data)
    # the case really cleans (or, for spectroscopy, really leaves the ramp alone)
    assert changed == (case != "slitless_skipped")


def test_mask_and_noise_match_jwst(runs):
    case, theirs, ours = runs
    if case == "slitless_skipped":
        assert not (theirs / f"{ROOT}_mask.fits").exists()
        assert not (ours / f"{ROOT}_mask.fits").exists()
        return
    with _open(theirs, "mask") as a, _open(ours, "mask") as b:
        np.testing.assert_array_equal(a["SCI"].data, b["SCI"].data)
        if "mask" in case:
            # the FLAT's unusable pixels in the window are out of the background
            with _open(ours, "jump") as ramp, fits.open(theirs.parent / "sim" / "refs" /
                                                         f"{ROOT}_flat.fits") as flat:
                x0, y0 = ramp[0].header["SUBSTRT1"] - 1, ramp[0].header["SUBSTRT2"] - 1
                ny, nx = ramp["SCI"].shape[-2:]
                window = (slice(y0, y0 + ny), slice(x0, x0 + nx))
                values, dq = flat["SCI"].data[window], flat["DQ"].data[window]
            unusable = np.isnan(values) | (values == 0) | (dq != 0)
            assert unusable.sum() > 10
            assert not b["SCI"].data.astype(bool)[..., unusable].any()
    with _open(theirs, "flicker_noise") as a, _open(ours, "flicker_noise") as b:
        np.testing.assert_allclose(b["SCI"].data, a["SCI"].data, rtol=0, atol=1e-3)
        # (the first and last groups are not cleaned: their differences are DO_NOT_USE)
        noise = a["SCI"].data[0, 2]
        # MIRI's flicker is fitted along columns: constant down each column of the background
        assert np.nanmax(np.nanstd(noise, axis=0)) < 1e-3 < np.nanmax(np.nanstd(noise, axis=1))


@pytest.mark.parametrize("suffix", ["rate", "rateints"])
def test_slopes_match_jwst(runs, suffix):
    _, theirs, ours = runs
    with _open(theirs, suffix) as a, _open(ours, suffix) as b:
        np.testing.assert_array_equal(a["DQ"].data, b["DQ"].data)
        np.testing.assert_allclose(b["SCI"].data, a["SCI"].data, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b["ERR"].data, a["ERR"].data, rtol=1e-5, atol=1e-6)
