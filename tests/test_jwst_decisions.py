"""Odd inputs that jwst 3.0.0 runs rather than refuses, run through both pipelines: ramp2slope
must give jwst's products (or, like jwst, none), with a warning saying what happened.

The decisions are listed in docs/reliability.md; the fault corpus (test_fault_corpus.py) checks
every case's outcome class without jwst.
"""
import os
import shutil

import numpy as np
import pytest
from astropy.io import fits

from ramp2slope import cli

pytestmark = pytest.mark.oracle


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from ramp2slope.simulate import simulate_exposure

    return simulate_exposure(tmp_path_factory.mktemp("decisions") / "sim", subarray="SUB160",
                             ngroups=4, nints=2, seed=21, full_frame_refs=False)


def _setup(sim, tmp_path):
    uncal = tmp_path / os.path.basename(sim.uncal)
    shutil.copy(sim.uncal, uncal)
    refdir = tmp_path / "refs"
    shutil.copytree(os.path.dirname(sim.refs["mask"]), refdir)
    refs = {kind: str(refdir / os.path.basename(path)) for kind, path in sim.refs.items()}
    return uncal, refdir, refs


def _ours(uncal, refdir, outdir, capsys):
    code = cli.main(["run", str(uncal), "--refdir", str(refdir), "--output-dir", str(outdir),
                     "--threads", "1"])
    return code, capsys.readouterr().err


def test_pixeldq_of_wrong_shape_and_a_short_dark_of_another_window_as_jwst(sim, tmp_path, capsys):
    """jwst replaces a PIXELDQ of the wrong shape by zeros ("Setting input pixel DQ to default
    array"), extrapolates a dark with fewer frames than the exposure needs, and subtracts a
    dark whose SUBSTRT says it comes from another window (it does not look)."""
    pytest.importorskip("jwst")
    from jwst_oracle import run_official_detector1

    uncal, refdir, refs = _setup(sim, tmp_path)
    with fits.open(uncal, mode="append") as hdul:
        hdul.append(fits.ImageHDU(np.ones((100, 100), np.uint32), name="PIXELDQ"))
    with fits.open(refs["dark"]) as hdul:
        hdus = [hdu.copy() for hdu in hdul]
    for hdu in hdus:
        if hdu.name in ("SCI", "ERR"):
            hdu.data = hdu.data[:2].copy()
    hdus[0].header["NGROUPS"] = 2
    hdus[0].header["SUBSTRT1"] += 16
    fits.HDUList(hdus).writeto(refs["dark"], overwrite=True)

    official = run_official_detector1(uncal, refs, tmp_path / "jwst", save_steps=())
    code, err = _ours(uncal, refdir, tmp_path / "ours", capsys)
    assert code == 0, err
    assert "PIXELDQ has shape (100, 100), not (160, 160); replaced by zeros" in err
    assert "extrapolated" in err
    root = os.path.basename(str(uncal))[:-len("_uncal.fits")]
    with fits.open(tmp_path / "ours" / f"{root}_rate.fits") as hdul:
        np.testing.assert_allclose(hdul["SCI"].data, official.data, rtol=1e-5, atol=1e-6,
                                   equal_nan=True)
        assert np.array_equal(hdul["DQ"].data, official.dq)
        assert hdul[0].header["S_DQINIT"] == official.meta.cal_step.dq_init == "COMPLETE"
        assert hdul[0].header["S_DARK"] == official.meta.cal_step.dark_sub == "COMPLETE"


def test_all_saturated_ramps_give_no_rate_and_exit_0_as_jwst(sim, tmp_path, capsys):
    pytest.importorskip("jwst")
    from jwst_oracle import run_official_detector1

    uncal, refdir, refs = _setup(sim, tmp_path)
    with fits.open(refs["saturation"], mode="update") as hdul:
        hdul["SCI"].data[:] = 1.0
    official = run_official_detector1(uncal, refs, tmp_path / "jwst", save_steps=())
    assert official is None and not os.listdir(tmp_path / "jwst")
    code, err = _ours(uncal, refdir, tmp_path / "ours", capsys)
    assert code == 0 and "no rate or rateints products" in err, err
    assert not [name for name in os.listdir(tmp_path / "ours") if "_rate" in name]
