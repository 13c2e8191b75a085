"""The MIRI branch of Detector1Pipeline without the oracle: a streamed exposure (one integration
at a time) gives exactly the whole-exposure products, malformed MIRI inputs and references give
one-line errors, and the command line runs the simulator's MIRI exposures with a reference
folder."""
import os

import numpy as np
import pytest
from astropy.io import fits

from ramp2slope import cli
from ramp2slope.errors import Ramp2SlopeError
from ramp2slope.pipeline import Detector1Pipeline
from ramp2slope.simulate.miri import simulate_miri_exposure

from test_streaming import _assert_same_products

MIRI_SAVED = ("dq_init", "saturation", "firstframe", "lastframe", "reset", "linearity", "rscd",
              "dark_current", "refpix", "jump")


@pytest.fixture(scope="module")
def tso(tmp_path_factory):
    # bright enough to saturate mid-ramp in some pixels (rscd keeps their groups, firstframe's
    # FLUX_ESTIMATED differs between integrations), with cosmic rays
    return simulate_miri_exposure(tmp_path_factory.mktemp("miri") / "sim", subarray="SUB64",
                                  ngroups=8, nints=4, seed=5, cr_rate=200.0)


def _run(sim, out, streaming, chunk_bytes=None, **steps):
    all_steps = {name: {"save_results": True} for name in MIRI_SAVED}
    all_steps["firstframe"]["skip"] = False
    all_steps["ramp_fit"] = {"save_results": True, "save_opt": True}
    for name, values in steps.items():
        all_steps.setdefault(name, {}).update(values)
    pipe = Detector1Pipeline(steps=all_steps, refdir=os.path.dirname(sim.refs["mask"]),
                             output_dir=str(out), save_results=True, save_calibrated_ramp=True)
    pipe._streaming = streaming
    pipe._chunk_bytes = chunk_bytes
    return pipe.run(str(sim.uncal))


# stage A on one integration at a time, on 3 then 1 (an integration is 147,456 bytes), and on
# all 4 at once (the default for so small an exposure)
@pytest.mark.parametrize("chunk_bytes", [1, 3 * 147_456, None])
def test_streamed_miri_products_identical_to_whole_exposure(tso, tmp_path, chunk_bytes):
    streamed, whole = tmp_path / "streamed", tmp_path / "whole"
    for out, streaming in ((streamed, True), (whole, False)):
        rate = _run(tso, out, streaming, chunk_bytes)
        assert rate.meta.cal_step.ramp_fit == "COMPLETE"
    _assert_same_products(streamed, whole)
    with fits.open(streamed / f"{tso.root}_rscd.fits") as hdul:
        header = hdul[0].header
        assert header["S_RSCD"] == "COMPLETE" and header["S_RESET"] == "COMPLETE"
        assert header["INT1SKIP"] == 1 and header["INT2SKIP"] == 3
        assert hdul["REFOUT"].data.shape == (4, 8, 16, 72)
        # the RSCD groups of integrations 2 and later are flagged DO_NOT_USE, but in the pixels
        # that keep groups because they saturate (counted once over the integrations)
        kept = ~np.all(hdul["GROUPDQ"].data[1:, :3] & 1, axis=(0, 1))
        assert 0 < np.count_nonzero(kept) == header["INT2BORS"]


@pytest.mark.parametrize("chunk_bytes", [1, 3 * 147_456])
def test_streamed_emi_correction_identical_to_whole_exposure(tso, tmp_path, chunk_bytes):
    # the EMI is fitted over the integrations first, then subtracted from each chunk's
    emicorr = {"skip": False, "override_emicorr": str(tso.refs["emicorr"])}
    streamed, whole = tmp_path / "streamed", tmp_path / "whole"
    for out, streaming in ((streamed, True), (whole, False)):
        _run(tso, out, streaming, chunk_bytes, emicorr=emicorr)
    _assert_same_products(streamed, whole)
    with fits.open(streamed / f"{tso.root}_rate.fits") as hdul:
        assert hdul[0].header["S_MIREMI"] == "COMPLETE"


def test_miri_rate_recovers_truth(tso, tmp_path):
    import jwst_oracle

    _run(tso, tmp_path, True)
    jwst_oracle.assert_rate_recovers_truth(tso, tmp_path, tolerance=0.02)


def _corrupt(src, dst, edit):
    with fits.open(src) as hdul:
        edit(hdul)
        hdul.writeto(dst)
    return dst


@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize("edit, message", [
    (lambda h: h[0].header.__setitem__("DETECTOR", "NRCA1"), "DETECTOR=NRCA1"),
    (lambda h: h["REFOUT"].__setattr__("data", h["REFOUT"].data[:, :2]), "REFOUT has shape"),
    (lambda h: h["REFOUT"].__setattr__("data", np.zeros((4, 8, 16, 80), np.uint16)),
     "REFOUT has shape"),
])
def test_malformed_miri_inputs_fail_in_one_line(tso, tmp_path, edit, message, streaming):
    bad = _corrupt(tso.uncal, tmp_path / "bad_uncal.fits", edit)
    pipe = Detector1Pipeline(refdir=os.path.dirname(tso.refs["mask"]), output_dir=str(tmp_path))
    pipe._streaming = streaming
    with pytest.raises(Ramp2SlopeError, match=message) as info:
        pipe.run(str(bad))
    assert "\n" not in str(info.value) and "bad_uncal.fits" in str(info.value)
    assert not [n for n in os.listdir(tmp_path) if n.endswith((".fits",)) and "bad" not in n]


def test_reset_reference_of_another_subarray_fails_before_processing(tso, tmp_path):
    other = simulate_miri_exposure(tmp_path / "other", subarray="SUB128", ngroups=4, nints=1)
    steps = {"reset": {"override_reset": str(other.refs["reset"])}}
    pipe = Detector1Pipeline(steps=steps, refdir=os.path.dirname(tso.refs["mask"]),
                             output_dir=str(tmp_path / "out"))
    with pytest.raises(Ramp2SlopeError, match="reset is 128x136 but the science data are 64x72"):
        pipe.run(str(tso.uncal))
    assert not os.path.exists(tmp_path / "out") or not os.listdir(tmp_path / "out")


def test_cli_simulates_and_runs_a_miri_exposure(tmp_path, capsys):
    assert cli.main(["simulate", "--outdir", str(tmp_path / "sim"), "--detector", "MIRIMAGE",
                     "--subarray", "SUB64", "--ngroups", "5", "--nints", "2"]) == 0
    uncal = next((tmp_path / "sim").glob("*_uncal.fits"))
    assert cli.main(["run", str(uncal), "--refdir", str(tmp_path / "sim" / "refs"),
                     "--output-dir", str(tmp_path / "out")]) == 0
    with fits.open(next((tmp_path / "out").glob("*_rate.fits"))) as hdul:
        assert hdul[0].header["INSTRUME"] == "MIRI"
        for key in ("S_LASTFR", "S_RESET", "S_RSCD", "S_DARK", "S_RAMP"):
            assert hdul[0].header[key] == "COMPLETE", key
        assert hdul[0].header["S_REFPIX"] == "SKIPPED"   # a MIRI subarray, as jwst
        assert os.path.basename(hdul[0].header["R_RESET"]).endswith("_reset.fits")
    assert cli.main(["simulate", "--outdir", str(tmp_path / "x"), "--subarray", "SUB64"]) == 2
    assert "add --detector MIRIMAGE" in capsys.readouterr().err
