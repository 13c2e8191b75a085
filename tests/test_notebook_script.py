"""scripts/validation_notebook.py: the validation notebook's code, unchanged apart from the
imports, runs on ramp2slope end to end (on a small simulated exposure)."""
import json
import os
import re
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts",
                      "validation_notebook.py")
ROOT = "jw98765001001_01101_00003_nrcblong"
PRODUCTS = ("dq_init", "saturation", "superbias", "refpix", "linearity", "dark_current", "jump",
            "0_ramp_fit", "1_ramp_fit", "fitopt", "rate", "rateints")
FIGURES = ("rate_image", "linearity_last_group", "pixeldq", "saturated_pixel", "superbias",
           "refpix_zoom", "refpix_difference", "refpix_side", "refpix_side_difference",
           "linearity_pixel", "dark", "jump_pixel", "jump_grid", "jump_pixel_fit", "jump_grid_fit",
           "slope_image")


@pytest.mark.slow
def test_notebook_runs_on_ramp2slope(tmp_path):
    out = tmp_path / "notebook"
    proc = subprocess.run([sys.executable, SCRIPT, "--outdir", str(out), "--size", "256x256",
                           "--ngroups", "6", "--report"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = proc.stdout
    assert "Notebook finished." in log
    # the notebook's products, named from the uncal file name with its replace() patterns
    assert (out / f"{ROOT}_uncal.fits").is_file()
    for suffix in PRODUCTS:
        assert (out / f"{ROOT}_{suffix}.fits").is_file(), suffix
    assert (out / "refpix_test_no_side_pixels_refpix.fits").is_file()
    # every figure the notebook draws, in order
    saved = sorted(os.listdir(out / "figures"))
    assert [re.sub(r"^\d+_|\.png$", "", name) for name in saved] == list(FIGURES)
    assert all((out / "figures" / name).stat().st_size > 5000 for name in saved)
    # the notebook's printed findings
    for text in ("pixels have no flags.", "pixels are partially saturated.", "jump flags detected.",
                 "Jump located in group(s)", "pixels meet the criteria above.", "DN/s",
                 "science pixels have a slope that is exactly zero."):
        assert text in log, text
    # and the automated report of the same products has no failed check
    report = (out / "report.html").read_text(encoding="utf-8")
    checks = json.loads(re.search(r'id="report-checks">(.*?)</script>', report, re.S).group(1))
    failed = [(c["name"], c["measured"]) for c in checks if c["status"] == "fail"]
    assert not failed


def test_notebook_rejects_too_few_groups(tmp_path):
    proc = subprocess.run([sys.executable, SCRIPT, "--outdir", str(tmp_path), "--ngroups", "4"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "at least 6" in proc.stderr


@pytest.mark.slow
def test_notebook_runs_with_only_a_crds_cache(tmp_path):
    """The notebook's CRDS cell as written: CRDS_CACHE_TYPE names a cache, no reference folder;
    every reference comes from CRDS (a cache made here, a server that cannot be reached)."""
    from astropy.io import fits

    from crds_cache import Entry, build_cache, closed_port_url
    from ramp2slope.simulate import simulate_exposure

    # the same simulation as the script's, for the reference files the cache holds
    sim = simulate_exposure(tmp_path / "refsim", size=(256, 256), ngroups=6, seed=1,
                            detector="NRCBLONG", program=98765, observation=1, visit=1,
                            exposure=3)
    entries = []
    for reftype, path in sim.refs.items():
        named = tmp_path / f"jwst_nircam_{reftype}_0001.fits"
        os.replace(path, named)
        entries.append(Entry("NIRCAM", reftype, {"META.INSTRUMENT.DETECTOR": "NRCBLONG"},
                             "2022-01-01 00:00:00", str(named)))
    cache = build_cache(tmp_path / "crds_cache", entries)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRDS_", "RAMP2SLOPE_REFDIR"))}
    env.update(CRDS_CACHE_TYPE=str(cache), CRDS_SERVER_URL=closed_port_url(),
               CRDS_IGNORE_MAPPING_CHECKSUM="1", STPIPE_DISABLE_CRDS_STEPPARS="True")
    out = tmp_path / "notebook"
    proc = subprocess.run([sys.executable, SCRIPT, "--outdir", str(out), "--size", "256x256",
                           "--ngroups", "6", "--crds"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"CRDS cache location: {cache}" in proc.stdout and "Notebook finished." in proc.stdout
    assert not (out / "refs").exists()
    header = fits.getheader(out / f"{ROOT}_rate.fits")
    assert header["R_GAIN"] == "crds://jwst_nircam_gain_0001.fits"
    assert header["R_DARK"] == "crds://jwst_nircam_dark_0001.fits"
    assert header["CRDS_CTX"] == "jwst_0001.pmap"
