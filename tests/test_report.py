"""The validation report: sections and checks on good data, failures on corrupted data, "not run"
when inputs are missing, and the HTML as a browser renders it."""
import json
import os
import re
import shutil
import subprocess
import types

import numpy as np
import pytest
from astropy.io import fits

from ramp2slope.datamodels import dqflags
from ramp2slope.errors import Ramp2SlopeError
from ramp2slope.report import SECTIONS, write_report
from ramp2slope.report.checks import FAIL, NOT_RUN, PASS, NotRun, run_check
from ramp2slope.report.plots import downsample
from ramp2slope.report.products import locate
from ramp2slope.report.steps import dilate, segments

DNU, SAT, JUMP = (dqflags.group[n] for n in ("DO_NOT_USE", "SATURATED", "JUMP_DET"))

# Checks that cannot run on the test exposure (64 rows x 2048 columns), and why.
EXPECTED_NOT_RUN = {"Side reference pixels reduce the 1/f row noise",  # needs >= 512 rows
                    "Row striping reduced",  # clean_flicker_noise is off by default
                    "Picture frame contrast reduced"}  # picture_frame: NIRSpec full frames only


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A small simulated exposure processed by ramp2slope with every product saved."""
    from jwst_oracle import run_ours_detector1
    from ramp2slope.pipeline import Detector1Pipeline  # noqa: F401  (the pipeline must exist)
    from ramp2slope.simulate import simulate_exposure

    root = tmp_path_factory.mktemp("report_run")
    sim = simulate_exposure(root / "sim", size=(64, 2048), ngroups=8, seed=1)
    products = root / "sim" / "products"
    run_ours_detector1(sim.uncal, {k: str(v) for k, v in sim.refs.items()}, products,
                       steps={"ramp_fit": {"save_opt": True, "save_results": True}})
    return types.SimpleNamespace(root=root, sim=sim, products=products,
                                 prefix=str(products / sim.root))


@pytest.fixture(scope="module")
def good_report(run):
    out = run.root / "good.html"
    path = write_report(run.products, truth=run.sim.truth, out=out)
    assert path == str(out)
    return out


def read_checks(path):
    text = open(path, encoding="utf-8").read()
    match = re.search(r'<script type="application/json" id="report-checks">(.*?)</script>', text, re.S)
    assert match, "the report has no machine-readable list of checks"
    checks = json.loads(match.group(1))
    return {c["name"]: c for c in checks}, text


def product(run_or_dir, suffix, root):
    return os.path.join(run_or_dir, f"{root}_{suffix}.fits")


# -------------------------------------------------------------------------------------------------
def test_good_data_all_checks_pass(run, good_report):
    checks, text = read_checks(good_report)
    failed = {n: c["measured"] for n, c in checks.items() if c["status"] == FAIL}
    assert not failed
    not_run = {n for n, c in checks.items() if c["status"] == NOT_RUN}
    assert not_run == EXPECTED_NOT_RUN, {n: checks[n]["measured"] for n in not_run}
    for name in ("SCI unchanged by dq_init", "PIXELDQ is the MASK reference",
                 "Every SATURATED group is above the threshold", "Every group above the threshold is flagged",
                 "Superbias difference equals the reference", "Odd/even column offsets reduced",
                 "Side correction is one value per detector row", "Linearity left saturated groups alone",
                 "Correction is the reference polynomial", "Dark difference equals the reference",
                 "No JUMP flag on a DO_NOT_USE group", "Rate units are DN/s", "Rate agrees with the rateints",
                 "Fitted intercept and slope reproduce the ramps", "Group flags reach the rate DQ",
                 "Every zero or NaN slope is explained by its flags", "Slope bias",
                 "ERR describes the slope scatter", "Cosmic-ray completeness", "Jump false-positive rate",
                 "Saturation-group accuracy"):
        assert checks[name]["status"] == PASS, (name, checks[name]["measured"])
    # measured numbers are reported, e.g. the saturation audit and the jump counts
    assert re.search(r"\d+ SATURATED groups: \d+ at or above", checks["Every SATURATED group is above the threshold"]["measured"])
    assert "0 of" in checks["No JUMP flag on a DO_NOT_USE group"]["measured"]


def test_sections_figures_and_summary(run, good_report):
    checks, text = read_checks(good_report)
    for section_id, title, _, _ in SECTIONS:
        match = re.search(rf'<section class="step" id="{section_id}">(.*?)</section>', text, re.S)
        assert match, section_id
        body = match.group(1)
        assert "<img" in body or "<table" in body, f"section {section_id} shows nothing"
        assert 'class="checks"' in body, f"section {section_id} has no checks"
    # one embedded PNG per figure, nothing fetched from elsewhere, no folder of this machine
    images = re.findall(r'<img src="([^"]+)"', text)
    assert len(images) >= 20
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(https?:|file:)', text)
    assert str(run.root) not in text
    # the summary table lists every check with its status
    summary = text[text.index('<section id="summary">'):]
    summary = summary[:summary.index("</section>")]
    assert summary.count("<tr data-status=") == len(checks)
    assert f"{sum(c['status'] == PASS for c in checks.values())} passed" in summary
    # the notebook's displays: counts and examples
    assert "pixels are partially saturated" in text
    assert "jump flags detected" in text
    assert "have flags" in text


def _corrupt(run, folder):
    """Copy the products (and the raw exposure) and damage one thing per check."""
    products = folder / "products"
    shutil.copytree(run.products, products)
    shutil.copy(run.sim.uncal, folder / os.path.basename(run.sim.uncal))
    root = run.sim.root

    def path(suffix):
        return product(products, suffix, root)

    with fits.open(path("dq_init"), mode="update") as hdul:
        hdul["SCI"].data[0, 0, 5, 5] += 1.0
    with fits.open(path("saturation"), mode="update") as hdul:
        assert (hdul["GROUPDQ"].data & SAT).any()
        hdul["GROUPDQ"].data &= np.uint8(~SAT & 0xFF)
    with fits.open(path("superbias"), mode="update") as hdul:
        hdul["SCI"].data[0, 1, 20, 300] += 1.0
    with fits.open(path("superbias")) as before, fits.open(path("refpix"), mode="update") as hdul:
        hdul["SCI"].data[0, 5] = before["SCI"].data[0, 5]          # refpix "did nothing"
    with fits.open(path("linearity"), mode="update") as hdul:
        sat = np.argwhere(hdul["GROUPDQ"].data & SAT)
        i, g, y, x = sat[0]
        hdul["SCI"].data[i, g, y, x] += 10.0
    with fits.open(path("dark_current"), mode="update") as hdul:
        hdul["SCI"].data[0, 2, 30, 1000] += 1.0
    with fits.open(path("jump"), mode="update") as hdul:
        i, g, y, x = np.argwhere(hdul["GROUPDQ"].data & DNU)[0]
        hdul["GROUPDQ"].data[i, g, y, x] |= np.uint8(JUMP)
    with fits.open(path("fitopt"), mode="update") as hdul:
        hdul["YINT"].data[:, 0] += 100.0
    with fits.open(path("rate"), mode="update") as hdul:
        hdul["SCI"].header["BUNIT"] = "DN"
        y, x = np.argwhere(hdul["DQ"].data == 0)[100]
        hdul["SCI"].data[y, x] = np.nan
    return products


def test_corrupted_products_fail_their_checks(run, tmp_path):
    products = _corrupt(run, tmp_path)
    out = write_report(products, truth=run.sim.truth)
    assert out == str(products / "report.html")
    checks, text = read_checks(out)
    for name in ("SCI unchanged by dq_init", "Every group above the threshold is flagged",
                 "Superbias difference equals the reference", "Odd/even column offsets reduced",
                 "Side correction is one value per detector row", "Linearity left saturated groups alone",
                 "Dark difference equals the reference", "No JUMP flag on a DO_NOT_USE group",
                 "Fitted intercept and slope reproduce the ramps", "Rate units are DN/s",
                 "Rate agrees with the rateints", "Every zero or NaN slope is explained by its flags",
                 "The ramp_fit output is the rate product"):
        assert checks[name]["status"] == FAIL, (name, checks[name]["measured"])
    assert 'data-verdict="fail"' in text
    assert "1 of" in checks["No JUMP flag on a DO_NOT_USE group"]["measured"]


def test_missing_inputs_are_not_run(run, tmp_path, monkeypatch):
    monkeypatch.delenv("RAMP2SLOPE_REFDIR", raising=False)
    products = tmp_path / "products"
    shutil.copytree(run.products, products)
    os.remove(product(products, "rate", run.sim.root))
    for name in os.listdir(products):
        with fits.open(products / name, mode="update") as hdul:
            hdul[0].header["R_SATURA"] = "crds://jwst_nircam_saturation_0000.fits"
    out = write_report(str(products / run.sim.root), out=tmp_path / "r.html")
    checks, _ = read_checks(out)
    expect = {
        "SCI unchanged by dq_init": "uncal",
        "Every SATURATED group is above the threshold": "jwst_nircam_saturation_0000.fits",
        "Rate units are DN/s": "_rate.fits",
        "Every zero or NaN slope is explained by its flags": "_rate.fits",
        "Slope bias": "no truth file",
        "Cosmic-ray completeness": "no truth file",
    }
    for name, why in expect.items():
        assert checks[name]["status"] == NOT_RUN, (name, checks[name])
        assert why in checks[name]["measured"], (name, checks[name]["measured"])
    assert checks["Every step's product was saved"]["status"] == FAIL
    # everything still computable from what is there still runs
    assert checks["Superbias difference equals the reference"]["status"] == PASS


# -------------------------------------------------------------------------------------------------
def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium_run(browser, tmp_path, page, *extra):
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--virtual-time-budget=10000", *extra,
           f"file://{os.path.abspath(page)}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def _body_attributes(dom):
    body = re.search(r"<body([^>]*)>", dom).group(1)
    return dict(re.findall(r'([\w-]+)="([^"]*)"', body))


def test_report_in_headless_chromium(good_report, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    text = open(good_report, encoding="utf-8").read()
    dom = _chromium_run(browser, tmp_path, good_report, "--dump-dom").stdout
    attrs = _body_attributes(dom)
    assert attrs.get("data-ready") == "yes", attrs
    assert int(attrs["data-images"]) == text.count("<img ")
    assert attrs["data-broken-images"] == "0"
    assert attrs["data-sections"] == str(len(SECTIONS))
    assert attrs["data-empty-sections"] == "0"
    assert 'data-loaded="no"' not in dom

    shot = tmp_path / "report.png"
    _chromium_run(browser, tmp_path, good_report, f"--screenshot={shot}", "--window-size=1400,4000")
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (4000, 1400)
    assert pixels.std() > 0.05          # not a blank page
    assert (pixels.reshape(-1, 3).std(axis=1) > 0.1).mean() > 0.003  # coloured badges, figures

    # the page's own test: a damaged image is reported as broken
    broken = tmp_path / "broken.html"
    first = re.search(r'src="data:image/png;base64,([^"]{64})', text).group(1)
    broken.write_text(text.replace(first, "AAAA" * 16, 1), encoding="utf-8")
    attrs = _body_attributes(_chromium_run(browser, tmp_path, broken, "--dump-dom").stdout)
    assert attrs["data-broken-images"] == "1"


# -------------------------------------------------------------------------------------------------
def test_locate_products(run, tmp_path):
    by_folder = locate(run.products)
    assert by_folder.rootname == run.sim.root
    assert len(by_folder.paths) == 12 and not by_folder.missing()
    assert by_folder.uncal == str(run.sim.uncal)            # found in the parent folder
    assert locate(run.prefix).paths == by_folder.paths
    assert locate(product(run.products, "jump", run.sim.root)).paths == by_folder.paths
    with pytest.raises(Ramp2SlopeError, match="no pipeline products"):
        locate(tmp_path)
    for root in ("jwA_nrcb1", "jwB_nrcb1"):
        for suffix in ("rate", "jump"):
            (tmp_path / f"{root}_{suffix}.fits").write_bytes(b"")
    with pytest.raises(Ramp2SlopeError, match="several exposures"):
        locate(tmp_path)
    (tmp_path / "jwB_nrcb1_uncal.fits").write_bytes(b"")      # the raw file picks the exposure
    assert locate(tmp_path, uncal=tmp_path / "jwB_nrcb1_uncal.fits").rootname == "jwB_nrcb1"
    with pytest.raises(Ramp2SlopeError, match="no such file"):
        locate(run.products, uncal=tmp_path / "missing_uncal.fits")


def test_cli_report(run, tmp_path, capsys):
    from ramp2slope.cli import main

    out = tmp_path / "cli.html"
    assert main(["report", str(run.products), "--truth", str(run.sim.truth), "--out", str(out)]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out
    assert main(["report", str(tmp_path)]) == 2
    assert "no pipeline products" in capsys.readouterr().err


# -------------------------------------------------------------------------------------------------
def test_run_check_statuses():
    assert run_check("s", "n", "r", lambda: (True, "1 = 1")).status == PASS
    assert run_check("s", "n", "r", lambda: (False, "1 != 2")).status == FAIL

    def missing():
        raise NotRun("no input")
    result = run_check("s", "n", "r", missing)
    assert (result.status, result.measured) == (NOT_RUN, "no input")

    def broken():
        raise ValueError("bad shape")
    result = run_check("s", "n", "r", broken)
    assert result.status == FAIL and "bad shape" in result.measured


def test_segments_follow_ramp_fitting():
    # a jump in group 4 starts a new segment that includes the jump group
    assert segments([0, 0, 0, 0, JUMP, 0, 0, 0]) == [(0, 4), (4, 8)]
    # saturation ends the ramp; a single-group segment is dropped when longer ones exist
    assert segments([0, 0, 0, DNU, 0, 0, SAT, SAT]) == [(0, 3), (4, 6)]
    assert segments([0, DNU, 0, 0, 0]) == [(2, 5)]
    # only single groups: the first is kept
    assert segments([0, DNU, 0, DNU]) == [(0, 1)]
    assert segments([SAT, SAT, SAT]) == []


def test_dilate_and_downsample():
    mask = np.zeros((5, 6), bool)
    mask[0, 0] = mask[3, 4] = True
    grown = dilate(mask)
    assert grown.sum() == 4 + 9
    assert grown[1, 1] and not grown[2, 2] and grown[4, 5] and grown[2, 3]
    image = np.arange(36, dtype=np.float32).reshape(6, 6)
    image[0, 0] = np.nan
    small, factor = downsample(image, max_size=3)
    assert factor == 2 and small.shape == (3, 3)
    assert small[0, 0] == pytest.approx((1 + 6 + 7) / 3)
    flags = np.zeros((7, 7), np.uint32)
    flags[6, 6] = 1024
    small, factor = downsample(flags, max_size=4, how="max")
    assert factor == 2 and small.shape == (4, 4) and small[3, 3] == 1024


def test_unit_gaussian_overlay_has_the_histograms_area():
    from ramp2slope.report.accuracy import unit_gaussian_counts

    values = np.random.default_rng(3).standard_normal(200_000)
    bins = np.linspace(-6, 6, 61)
    counts, _ = np.histogram(values, bins)
    x, y = unit_gaussian_counts(values.size, bins)
    # The curve and the histogram hold the same pixels, and the peak bin sits on the curve.
    assert np.trapezoid(y, x) == pytest.approx(counts.sum() * (bins[1] - bins[0]), rel=1e-3)
    centre = counts.size // 2
    assert counts[centre] == pytest.approx(np.interp(0.5 * (bins[centre] + bins[centre + 1]), x, y),
                                           rel=0.03)


def test_colour_bar_ticks_under_a_log_stretch_do_not_crowd():
    from matplotlib.figure import Figure

    from ramp2slope.report import plots

    fig = Figure()
    ax = fig.add_subplot(1, 1, 1)
    norm = plots.log_norm(1.0, 20000.0)
    im = ax.imshow(np.ones((4, 4)), norm=norm)
    cbar = plots._colorbar(fig, im, ax=ax)
    ticks = np.asarray(cbar.get_ticks())
    positions = np.sort(np.asarray(norm(ticks), dtype=float))
    assert ticks.size >= 4
    assert np.diff(positions).min() > 0.1   # evenly spread along the bar, labels apart
    labels = [t.get_text() for t in cbar.ax.get_yticklabels()]
    assert len(set(labels)) == len(labels)


def test_cli_run_report_saves_what_the_report_needs(run, tmp_path, capsys):
    from ramp2slope.cli import main

    out = tmp_path / "products"
    refdir = os.path.dirname(run.sim.refs["mask"])
    assert main(["run", str(run.sim.uncal), "--refdir", refdir, "--output-dir", str(out),
                 "--report"]) == 0          # no --save-steps: --report implies the saves
    checks, _ = read_checks(out / "report.html")
    failed = {n: c["measured"] for n, c in checks.items() if c["status"] == FAIL}
    assert not failed
    capsys.readouterr()
    # The raw exposure can be named when it is not next to the products.
    moved = tmp_path / "elsewhere"
    shutil.copytree(out, moved)
    html = tmp_path / "with_uncal.html"
    assert main(["report", str(moved), "--uncal", str(run.sim.uncal), "--out", str(html)]) == 0
    text = html.read_text(encoding="utf-8")
    assert os.path.basename(run.sim.uncal) in text and "the dq_init check is not run" not in text


def _section(text, section_id):
    match = re.search(rf'<section class="step" id="{section_id}">(.*?)</section>', text, re.S)
    assert match, section_id
    return match.group(1)


def test_clean_flicker_noise_section_only_when_the_step_ran(run, good_report, tmp_path, capsys):
    from ramp2slope.cli import main

    # off by default: the section shows its status, no figure and no flicker products
    checks, text = read_checks(good_report)
    assert "<img" not in _section(text, "clean_flicker_noise")
    assert checks["No flicker-noise products unless the step ran"]["status"] == PASS
    assert checks["Row striping reduced"]["status"] == NOT_RUN

    out = tmp_path / "products"
    refdir = os.path.dirname(run.sim.refs["mask"])
    assert main(["run", str(run.sim.uncal), "--refdir", refdir, "--output-dir", str(out),
                 "--report", "--steps.clean_flicker_noise.skip=False"]) == 0
    capsys.readouterr()
    root = os.path.basename(run.prefix)
    for suffix in ("flicker_noise", "mask"):     # --report implied save_noise and save_mask
        assert os.path.isfile(product(out, suffix, root)), suffix
    checks, text = read_checks(out / "report.html")
    failed = {n: c["measured"] for n, c in checks.items() if c["status"] == FAIL}
    assert not failed
    body = _section(text, "clean_flicker_noise")
    assert body.count("<img") == 4      # noise model, before/after, row/column profiles, mask
    assert "Row and column median profiles" in body or "median of each row" in body.lower()
    assert checks["Row striping reduced"]["status"] == PASS
    before, after = re.findall(r"([0-9.e+-]+) DN", checks["Row striping reduced"]["measured"])
    assert float(after) < float(before)    # the simulator injects 1/f row noise
