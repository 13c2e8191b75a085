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
