"""The command line: a full run, info, and one-line errors (exit 2) that leave no products."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from ramp2slope import cli


@pytest.fixture(scope="module")
def small_exposure(tmp_path_factory):
    from ramp2slope.simulate import simulate_exposure

    base = tmp_path_factory.mktemp("cli")
    sim = simulate_exposure(base / "sim", subarray="SUB160", ngroups=4, nints=1, seed=5,
                            detector="NRCA1", full_frame_refs=False)
    return sim


def _run(argv, capsys):
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_writes_rate_products_and_info_reads_them(small_exposure, tmp_path, capsys):
    refdir = os.path.dirname(small_exposure.refs["mask"])
    code, out, err = _run(["run", str(small_exposure.uncal), "--refdir", refdir,
                           "--output-dir", str(tmp_path), "--steps.jump.rejection_threshold=5",
                           "--threads", "1"], capsys)
    assert code == 0, err
    rate = tmp_path / f"{small_exposure.root}_rate.fits"
    assert rate.exists() and (tmp_path / f"{small_exposure.root}_rateints.fits").exists()
    assert "jump done in" in err and "ramp_fit done in" in err
    with fits.open(rate) as hdul:
        assert hdul[0].header["S_JUMP"] == "COMPLETE"
        assert hdul[0].header["S_IPC"] == "SKIPPED"
        assert hdul[0].header["R_MASK"] == os.path.abspath(small_exposure.refs["mask"])
        assert np.isfinite(hdul["SCI"].data).mean() > 0.9
    code, out, err = _run(["info", str(rate)], capsys)
    assert code == 0 and "ImageModel" in out and "meta.exposure.ngroups = 4" in out


def _corrupt(kind, sim, folder):
    """Make a bad input of the given kind; returns (uncal path, refdir)."""
    refdir = folder / "refs"
    shutil.copytree(os.path.dirname(sim.refs["mask"]), refdir)
    uncal = folder / os.path.basename(sim.uncal)
    shutil.copy(sim.uncal, uncal)
    if kind == "truncated":
        with open(uncal, "r+b") as handle:
            handle.truncate(os.path.getsize(uncal) // 2)
    elif kind == "not_fits":
        uncal.write_bytes(b"SIMPLE = nonsense\n" * 100)
    elif kind in ("no_sci", "sci_3d", "no_ngroups"):
        with fits.open(sim.uncal) as hdul:
            hdus = [h.copy() for h in hdul]
        if kind == "no_sci":
            hdus = [h for h in hdus if h.name != "SCI"]
        elif kind == "sci_3d":
            for i, h in enumerate(hdus):
                if h.name == "SCI":
                    hdus[i] = fits.ImageHDU(h.data[0], name="SCI")
        else:
            del hdus[0].header["NGROUPS"]
        fits.HDUList(hdus).writeto(uncal, overwrite=True)
    elif kind == "wrong_detector_ref":
        path = refdir / os.path.basename(sim.refs["gain"])
        with fits.open(path, mode="update") as hdul:
            hdul[0].header["DETECTOR"] = "NRCB4"
        return uncal, refdir, f"--steps.jump.override_gain={path}"
    elif kind == "ref_cannot_cover":
        path = refdir / os.path.basename(sim.refs["saturation"])
        with fits.open(path, mode="update") as hdul:
            hdul[0].header["SUBSTRT1"] = 1000  # says it starts far right of the science window
        return uncal, refdir, None
    return uncal, refdir, None


@pytest.mark.parametrize("kind, message", [
    ("truncated", "truncated"),
    ("not_fits", "not a readable FITS file"),
    ("no_sci", "no SCI"),
    ("sci_3d", "SCI must have 4 dimensions"),
    ("no_ngroups", "NGROUPS"),
    ("wrong_detector_ref", "DETECTOR=NRCB4"),
    ("ref_cannot_cover", "do not contain the science subarray"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(small_exposure, tmp_path, capsys, kind, message):
    uncal, refdir, extra = _corrupt(kind, small_exposure, tmp_path)
    out_dir = tmp_path / "out"
    argv = ["run", str(uncal), "--refdir", str(refdir), "--output-dir", str(out_dir)]
    if extra:
        argv.append(extra)
    code, out, err = _run(argv, capsys)
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("ramp2slope: error:")]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_bad_step_parameter_is_a_clear_error(small_exposure, tmp_path, capsys):
    refdir = os.path.dirname(small_exposure.refs["mask"])
    code, out, err = _run(["run", str(small_exposure.uncal), "--refdir", refdir,
                           "--steps.jump.rejection_threshold=lots"], capsys)
    assert code == 2 and "rejection_threshold" in err
    code, out, err = _run(["run", str(small_exposure.uncal), "--refdir", refdir,
                           "--steps.nosuchstep.x=1"], capsys)
    assert code == 2 and "nosuchstep" in err


def test_help_everywhere():
    for args in ([], ["run"], ["info"], ["simulate"], ["demo"], ["report"]):
        result = subprocess.run([sys.executable, "-m", "ramp2slope.cli", *args, "--help"],
                                capture_output=True, text=True)
        assert result.returncode == 0 and "usage:" in result.stdout


def test_info_into_a_closed_pipe_stops_quietly(small_exposure):
    """``ramp2slope info X | head -1``: no BrokenPipeError traceback when the reader has gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)           # the reader is gone before the first line, as after head -1
    try:
        proc = subprocess.run([sys.executable, "-m", "ramp2slope.cli", "info", str(small_exposure.uncal)],
                              stdout=write_end, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(write_end)
    err = proc.stderr.decode()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert proc.returncode == 141


@pytest.mark.parametrize("kind", ["folder_is_file", "product_is_folder", "step_product_is_folder"])
def test_unwritable_outputs_are_refused_before_any_work(small_exposure, tmp_path, capsys, kind):
    refdir = os.path.dirname(small_exposure.refs["mask"])
    out_dir = tmp_path / "out"
    argv = ["run", str(small_exposure.uncal), "--refdir", refdir, "--output-dir", str(out_dir)]
    if kind == "folder_is_file":
        out_dir.write_text("")
        message = "exists and is not a folder"
    else:
        suffix = "rate" if kind == "product_is_folder" else "jump"
        (out_dir / f"{small_exposure.root}_{suffix}.fits").mkdir(parents=True)
        if kind == "step_product_is_folder":
            argv.append("--save-steps")
        message = "a folder has the product's name"
    code, out, err = _run(argv, capsys)
    errors = [line for line in err.splitlines() if line.startswith("ramp2slope: error:")]
    assert code == 2 and len(errors) == 1 and message in errors[0], err
    assert "running" not in err          # refused before the first step
    if out_dir.is_dir():
        assert [p.name for p in out_dir.iterdir()] == [f"{small_exposure.root}_{suffix}.fits"]


def test_demo_keeps_the_rates_and_report_and_says_how_much(tmp_path, capsys):
    outdir = tmp_path / "demo"
    code, out, err = _run(["demo", "--outdir", str(outdir), "--size", "64x512", "--ngroups", "4",
                           "--threads", "1"], capsys)
    assert code == 0, err
    products = sorted(p.name for p in (outdir / "products").iterdir())
    assert [name.rsplit("_", 1)[1] for name in products] == ["rate.fits", "rateints.fits"]
    assert (outdir / "report.html").is_file()
    assert "Step products read by the report removed" in out
    total = sum(p.stat().st_size for p in outdir.rglob("*") if p.is_file())
    said = [line for line in out.splitlines() if line.startswith(f"The demo folder {outdir} holds")]
    assert said and f"{total / 1e6:.0f} MB" in said[0]
    code, out, err = _run(["demo", "--outdir", str(tmp_path / "keep"), "--size", "64x512",
                           "--ngroups", "4", "--no-report", "--keep-steps"], capsys)
    assert code == 0 and (tmp_path / "keep" / "products").is_dir()
    assert len(list((tmp_path / "keep" / "products").iterdir())) > 2


def _edited_uncal(sim, tmp_path, **cards):
    path = tmp_path / os.path.basename(sim.uncal)
    shutil.copy(sim.uncal, path)
    with fits.open(path, mode="update") as hdul:
        for key, value in cards.items():
            if value is None:
                del hdul[0].header[key]
            else:
                hdul[0].header[key] = value
    return path


# jwst 3.0.0 stops with a Python error on each of these (TypeError, ZeroDivisionError,
# MemoryError): here they are one line and exit 2.
@pytest.mark.parametrize("cards, message", [
    (dict(TGROUP=None), "no TGROUP keyword"),
    (dict(TGROUP=0.0), "TGROUP=0"),
    (dict(NFRAMES=0), "NFRAMES=0"),
    (dict(GROUPGAP=10 ** 8), "GROUPGAP=100000000 is not a plausible"),
    (dict(NGROUPS="four"), "NGROUPS='four' is not a number"),
    (dict(TFRAME="fast"), "TFRAME='fast' is not a number"),
])
def test_unusable_timing_keywords_are_one_line_errors(small_exposure, tmp_path, capsys, cards, message):
    uncal = _edited_uncal(small_exposure, tmp_path, **cards)
    out_dir = tmp_path / "out"
    code, out, err = _run(["run", str(uncal), "--refdir", os.path.dirname(small_exposure.refs["mask"]),
                           "--output-dir", str(out_dir)], capsys)
    errors = [line for line in err.splitlines() if line.startswith("ramp2slope: error:")]
    assert code == 2 and len(errors) == 1 and message in errors[0], err
    assert not out_dir.exists() or not any(out_dir.iterdir())


@pytest.mark.oracle
@pytest.mark.parametrize("cards, warning", [
    (dict(TGROUP="negative"), "opposite sign"),
    (dict(FRMDIVSR=0), "every rate is NaN"),
    (dict(NINTS=5), "NINTS=5 but SCI has 1 integrations"),
])
def test_values_jwst_accepts_give_its_numbers_with_a_warning(small_exposure, tmp_path, capsys,
                                                             cards, warning):
    pytest.importorskip("jwst")
    from jwst_oracle import run_official_detector1

    if cards.get("TGROUP") == "negative":
        cards["TGROUP"] = -fits.getval(small_exposure.uncal, "TGROUP")
    uncal = _edited_uncal(small_exposure, tmp_path, **cards)
    refs = {k: str(v) for k, v in small_exposure.refs.items()}
    official = run_official_detector1(uncal, refs, tmp_path / "jwst", save_steps=())
    code, out, err = _run(["run", str(uncal), "--refdir", os.path.dirname(small_exposure.refs["mask"]),
                           "--output-dir", str(tmp_path / "ours")], capsys)
    assert code == 0 and warning in err, err
    with fits.open(tmp_path / "ours" / f"{small_exposure.root}_rate.fits") as hdul:
        np.testing.assert_allclose(hdul["SCI"].data, official.data, rtol=1e-5, equal_nan=True)
        assert np.array_equal(hdul["DQ"].data, official.dq)
        assert np.all(hdul["DQ"].data[np.isnan(hdul["SCI"].data)] & 1)


def test_jwst_command_line_habits(small_exposure, tmp_path, capsys, monkeypatch):
    """jwst's spellings (--output_dir=..., --save_results=true), -v after the subcommand,
    strun's order (`run calwebb_detector1 FILE`, `run PARS.asdf FILE`)."""
    refdir = os.path.dirname(small_exposure.refs["mask"])
    uncal = str(small_exposure.uncal)
    rate = f"{small_exposure.root}_rate.fits"
    code, out, err = _run(["run", uncal, "--refdir", refdir, f"--output_dir={tmp_path / 'a'}",
                           "--save_results=true", "-v"], capsys)
    assert code == 0 and (tmp_path / "a" / rate).is_file(), err
    args, extra = cli.build_parser().parse_known_args(["run", uncal, "-v"])
    assert args.verbose and not extra      # -v after the subcommand is understood
    code, out, err = _run(["run", "calwebb_detector1", uncal, "--refdir", refdir,
                           "--output-dir", str(tmp_path / "b")], capsys)
    assert code == 0 and (tmp_path / "b" / rate).is_file(), err
    pars = tmp_path / "pars.asdf"
    code, out, err = _run(["run", uncal, "--refdir", refdir, "--output-dir", str(tmp_path / "c"),
                           "--steps.jump.rejection_threshold=6.5", "--save-parameters", str(pars)],
                          capsys)
    assert code == 0 and pars.is_file(), err
    code, out, err = _run(["run", str(pars), uncal, "--refdir", refdir, "--output-dir",
                           str(tmp_path / "d")], capsys)
    assert code == 0 and (tmp_path / "d" / rate).is_file(), err
    assert "rejection_threshold" in err and "6.5" in err


def test_steps_lists_every_parameter_with_default_and_meaning(capsys):
    code, out, err = _run(["steps", "jump", "ramp_fit"], capsys)
    assert code == 0
    assert "jump (JumpStep): --steps.jump.<parameter>=VALUE" in out
    assert "rejection_threshold = 4.0  # " in out and "algorithm = 'OLS_C'" in out
    assert "dq_init" not in out
    code, out, err = _run(["steps"], capsys)
    assert "calwebb_detector1 (Detector1Pipeline)" in out and "persistence (PersistenceStep)" in out
    code, out, err = _run(["steps", "nosuch"], capsys)
    assert code == 2 and "no step named nosuch" in err


@pytest.mark.parametrize("limit_kib", [64, 300])
def test_file_size_limit_while_writing_is_one_line_and_leaves_nothing(small_exposure, tmp_path, limit_kib):
    """A file-size limit (EFBIG; a full disk, ENOSPC, takes the same path) while writing the
    products (500 KiB each): one line, exit 2, no partial product."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_kib * 1024, resource.RLIM_INFINITY))

    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "ramp2slope.cli", "run", str(small_exposure.uncal),
                           "--refdir", os.path.dirname(small_exposure.refs["mask"]),
                           "--output-dir", str(out)],
                          capture_output=True, text=True, timeout=300, preexec_fn=limit)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ramp2slope: error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert "cannot be written" in errors[0] and "Traceback" not in proc.stderr
    assert list(out.iterdir()) == []


def test_one_step_alone_in_struns_order(small_exposure, tmp_path, capsys):
    """`ramp2slope run STEP FILE --<param>=VALUE` runs that step alone, as `strun STEP FILE`:
    by alias, class name or jwst's dotted path; its output saved under its suffix; the result
    equals the step run from Python."""
    from ramp2slope import datamodels
    from ramp2slope.clean_flicker_noise import CleanFlickerNoiseStep

    refdir = os.path.dirname(small_exposure.refs["mask"])
    code, _, err = _run(["run", str(small_exposure.uncal), "--refdir", refdir,
                         "--output-dir", str(tmp_path / "pipe")], capsys)
    assert code == 0, err
    rate = str(tmp_path / "pipe" / f"{small_exposure.root}_rate.fits")
    for name in ("clean_flicker_noise", "CleanFlickerNoiseStep",
                 "jwst.clean_flicker_noise.CleanFlickerNoiseStep"):
        out_dir = tmp_path / name
        code, out, err = _run(["run", name, rate, "--skip=false", "--save_noise=true",
                               "--n_sigma=1.5", "--output_dir", str(out_dir)], capsys)
        assert code == 0, err
        product = out_dir / f"{small_exposure.root}_clean_flicker_noise.fits"
        assert str(product) in out and (out_dir / f"{small_exposure.root}_flicker_noise.fits").exists()
        expected = CleanFlickerNoiseStep.call(rate, skip=False, n_sigma=1.5)
        with datamodels.open(str(product)) as written:
            assert written.meta.cal_step.clean_flicker_noise == "COMPLETE"
            np.testing.assert_array_equal(written.data, expected.data)
    # a ramp step by its alias, with its references from the folder
    code, out, err = _run(["run", "dq_init", str(small_exposure.uncal), "--refdir", refdir,
                           "--output-dir", str(tmp_path / "dq")], capsys)
    assert code == 0, err
    assert (tmp_path / "dq" / f"{small_exposure.root}_dq_init.fits").exists()


@pytest.mark.parametrize("argv,message", [
    (["--steps.jump.rejection_threshold=5"], "give its parameters as --<param>=VALUE"),
    (["--no_such_parameter=1"], "has no parameter 'no_such_parameter'"),
    (["--save-steps"], "takes one file and none of --save-steps"),
])
def test_one_step_alone_refuses_pipeline_options(small_exposure, tmp_path, capsys, argv, message):
    code, _, err = _run(["run", "jump", str(small_exposure.uncal), "--output-dir",
                         str(tmp_path)] + argv, capsys)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not os.listdir(tmp_path)


def test_one_exposure_does_not_import_the_batch_engine(tmp_path):
    """The command line asks whether its inputs are a batch; for one file, that question does not
    import the batch engine (multiprocessing, hashlib, the manifest), which only a batch needs.
    The package's public names still all import."""
    one = tmp_path / "x_uncal.fits"
    one.write_bytes(b"")
    code = (
        "import sys\n"
        "from ramp2slope.batch import is_batch\n"
        f"assert is_batch([{str(one)!r}]) is False\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('ramp2slope.batch.'))\n"
        "assert loaded == ['ramp2slope.batch.inputs'], loaded\n"
        "from ramp2slope.batch import BatchResult, expand_inputs, predict_peak_bytes, run_many\n"
        "import ramp2slope.batch as batch\n"
        "assert set(batch.__all__) <= set(dir(batch))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
