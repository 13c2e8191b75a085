"""References chosen by CRDS: the same files as jwst for the same header and context, the
products' CRDS keywords as jwst's, ``ramp2slope refs``, and one-line errors for every way CRDS
can fail, all with a real CRDS cache made here and a server that cannot be reached."""
import json
import os
import shutil

import numpy as np
import pytest
from astropy.io import fits

from crds_cache import Entry, build_cache, crds_environment, forget_crds_state
from ramp2slope import cli, datamodels
from ramp2slope.references import find_reference

DET = "META.INSTRUMENT.DETECTOR"
SUB = "META.SUBARRAY.NAME"


@pytest.fixture(scope="module")
def exposure(tmp_path_factory):
    """A SUB160 exposure with the simulator's references, and versions of them for CRDS."""
    from ramp2slope.simulate import simulate_exposure

    base = tmp_path_factory.mktemp("crds")
    sim = simulate_exposure(base / "sim", subarray="SUB160", ngroups=4, nints=1, seed=8,
                            detector="NRCA1", full_frame_refs=False)
    versions = base / "versions"
    versions.mkdir()

    def version(reftype, name, scale=None):
        path = versions / name
        shutil.copy(sim.refs[reftype], path)
        if scale is not None:
            with fits.open(path, mode="update") as hdul:
                hdul["SCI"].data = (hdul["SCI"].data * scale).astype(np.float32)
        return str(path)

    entries = []
    for reftype in ("mask", "saturation", "superbias", "linearity", "dark"):
        entries.append(Entry("NIRCAM", reftype, {DET: "NRCA1|NRCA2"}, "2022-01-01 00:00:00",
                             version(reftype, f"jwst_nircam_{reftype}_0001.fits")))
    # Three versions of the gain: the one in force at the exposure's start (2024-03-31) wins.
    for serial, date, scale in (("0001", "2022-01-01 00:00:00", 1.0), ("0002", "2023-06-01 00:00:00", 1.01),
                                ("0003", "2030-01-01 00:00:00", 1.02)):
        entries.append(Entry("NIRCAM", "gain", {DET: "NRCA1"}, date,
                             version("gain", f"jwst_nircam_gain_{serial}.fits", scale)))
    # A read noise for the subarray beats the generic one.
    entries.append(Entry("NIRCAM", "readnoise", {DET: "NRCA1", SUB: "SUB160"}, "2022-01-01 00:00:00",
                         version("readnoise", "jwst_nircam_readnoise_sub160.fits", 1.0)))
    entries.append(Entry("NIRCAM", "readnoise", {DET: "NRCA1", SUB: "N/A"}, "2022-01-01 00:00:00",
                         version("readnoise", "jwst_nircam_readnoise_generic.fits", 1.5)))
    return sim, entries, base


@pytest.fixture
def cache(exposure, tmp_path, monkeypatch):
    sim, entries, _ = exposure
    root = build_cache(tmp_path / "crds_cache", entries)
    crds_environment(monkeypatch, root)
    yield root
    monkeypatch.undo()
    forget_crds_state()


def _metadata(sim):
    return datamodels.open(sim.uncal)


EXPECTED = {"mask": "jwst_nircam_mask_0001.fits", "gain": "jwst_nircam_gain_0002.fits",
            "readnoise": "jwst_nircam_readnoise_sub160.fits", "dark": "jwst_nircam_dark_0001.fits",
            "ipc": "N/A"}


def test_crds_chooses_by_match_and_useafter(exposure, cache):
    sim = exposure[0]
    model = _metadata(sim)
    for reftype, name in EXPECTED.items():
        path = find_reference(reftype, model)
        assert (path if path == "N/A" else os.path.basename(path)) == name, reftype
        if path != "N/A":
            assert path.startswith(os.path.join(str(cache), "references"))


@pytest.mark.oracle
def test_same_choice_as_jwst(exposure, cache):
    pytest.importorskip("jwst")
    from jwst.dark_current import DarkCurrentStep
    from jwst.dq_init import DQInitStep
    from jwst.ipc import IPCStep
    from jwst.jump import JumpStep
    from stdatamodels.jwst import datamodels as jdm

    sim = exposure[0]
    ours = _metadata(sim)
    theirs = jdm.RampModel(str(sim.uncal))
    for step, reftype in ((DQInitStep(), "mask"), (JumpStep(), "gain"), (JumpStep(), "readnoise"),
                          (DarkCurrentStep(), "dark"), (IPCStep(), "ipc")):
        official = step.get_reference_file(theirs, reftype)
        mine = find_reference(reftype, ours)
        assert (official if official == "N/A" else os.path.basename(official)) == \
               (mine if mine == "N/A" else os.path.basename(mine)), reftype


@pytest.mark.oracle
def test_products_carry_crds_keywords_as_jwst(exposure, cache, tmp_path):
    pytest.importorskip("jwst")
    from jwst.pipeline import Detector1Pipeline as Official

    from ramp2slope.pipeline import Detector1Pipeline

    sim = exposure[0]
    miri_only = {name: {"skip": True} for name in ("emicorr", "rscd", "firstframe", "lastframe", "reset")}
    Official.call(str(sim.uncal), steps=miri_only, output_dir=str(tmp_path / "jwst"), save_results=True)
    Detector1Pipeline.call(str(sim.uncal), output_dir=str(tmp_path / "ours"), save_results=True)
    for suffix in ("rate", "rateints"):
        name = f"{sim.root}_{suffix}.fits"
        official = fits.getheader(tmp_path / "jwst" / name)
        ours = fits.getheader(tmp_path / "ours" / name)
        # jwst runs ipc by default and records the N/A CRDS answers with R_IPC = 'N/A';
        # ramp2slope leaves ipc off unless asked (README), so it has no R_IPC.
        keys = sorted(k for k in official if k.startswith(("R_", "CRDS_")) and k != "R_IPC")
        assert official["R_IPC"] == "N/A"
        assert "R_GAIN" in keys and "CRDS_CTX" in keys
        assert {k: ours.get(k) for k in keys} == {k: official[k] for k in keys}
        assert ours["R_GAIN"] == "crds://jwst_nircam_gain_0002.fits"
        with fits.open(tmp_path / "jwst" / name) as a, fits.open(tmp_path / "ours" / name) as b:
            np.testing.assert_allclose(b["SCI"].data, a["SCI"].data, rtol=1e-5, equal_nan=True)
            assert np.array_equal(b["DQ"].data, a["DQ"].data)


def test_not_applicable_skips_the_step(exposure, cache, tmp_path, capsys):
    sim = exposure[0]
    code = cli.main(["run", str(sim.uncal), "--output-dir", str(tmp_path / "out"),
                     "--steps.ipc.skip=false"])
    assert code == 0, capsys.readouterr().err
    header = fits.getheader(tmp_path / "out" / f"{sim.root}_rate.fits")
    assert header["S_IPC"] == "SKIPPED" and header["S_DARK"] == "COMPLETE"
    assert header["CRDS_CTX"] == "jwst_0001.pmap"


def test_refs_lists_each_reference_and_its_source(exposure, cache, tmp_path, capsys):
    sim = exposure[0]
    mask = sim.refs["mask"]
    code = cli.main(["refs", str(sim.uncal), "--json", f"--steps.dq_init.override_mask={mask}"])
    out = capsys.readouterr().out
    assert code == 0
    plan = {(p["step"], p["reftype"]): p for p in json.loads(out)[str(sim.uncal)]}
    assert plan[("dq_init", "mask")]["source"] == "override"
    assert plan[("jump", "gain")]["source"] == "CRDS cache"
    assert os.path.basename(plan[("jump", "gain")]["file"]) == "jwst_nircam_gain_0002.fits"
    # A reference the cache lacks: the server would have it; run and --sync cannot reach it.
    os.unlink(os.path.join(cache, "references", "jwst", "nircam", "jwst_nircam_dark_0001.fits"))
    forget_crds_state()
    assert cli.main(["refs", str(sim.uncal)]) == 0
    out = capsys.readouterr().out
    assert "dark_current DARK" in out and "jwst_nircam_dark_0001.fits  (CRDS server)" in out
    for argv in (["refs", str(sim.uncal), "--sync"],
                 ["run", str(sim.uncal), "--output-dir", str(tmp_path / "out")]):
        code = cli.main(argv)
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("ramp2slope: error:")]
        assert code == 2 and len(errors) == 1 and "DARK" in errors[0], err
        assert "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_sync_with_everything_cached_fetches_nothing(exposure, cache, capsys):
    sim = exposure[0]
    before = sorted(os.listdir(os.path.join(cache, "references", "jwst", "nircam")))
    assert cli.main(["refs", str(sim.uncal), "--sync"]) == 0
    out = capsys.readouterr().out
    assert "fetched" not in out and "(CRDS cache)" in out
    assert sorted(os.listdir(os.path.join(cache, "references", "jwst", "nircam"))) == before


def _corrupt_mapping(root):
    path = os.path.join(root, "mappings", "jwst", "jwst_nircam_gain_0001.rmap")
    with open(path, "w") as handle:
        handle.write("header = {this is not a mapping\n")


def _truncate(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.truncate(size // 2)


def _drop_type(root):
    path = os.path.join(root, "mappings", "jwst", "jwst_nircam_0001.imap")
    text = open(path).read().replace("'gain': 'jwst_nircam_gain_0001.rmap', ", "")
    assert "'gain'" not in text
    with open(path, "w") as handle:
        handle.write(text)


@pytest.mark.parametrize("fault, message", [
    ("no_cache_no_server", "CRDS has no cache"),
    ("missing_context", "jwst_9999.pmap"),
    ("unknown_type", "does not know this reference type"),
    ("corrupt_mapping", "jwst_nircam_gain_0001.rmap"),
    ("corrupt_reference", "jwst_nircam_gain_0002.fits"),
])
def test_crds_failures_are_one_line_exit_2(exposure, cache, tmp_path, capsys, monkeypatch, fault,
                                            message):
    sim = exposure[0]
    if fault == "no_cache_no_server":
        monkeypatch.setenv("CRDS_PATH", str(tmp_path / "empty"))
        monkeypatch.delenv("CRDS_SERVER_URL")
    elif fault == "missing_context":
        monkeypatch.setenv("CRDS_CONTEXT", "jwst_9999.pmap")
    elif fault == "unknown_type":
        _drop_type(cache)
    elif fault == "corrupt_reference":
        _truncate(os.path.join(cache, "references", "jwst", "nircam", "jwst_nircam_gain_0002.fits"))
    else:
        _corrupt_mapping(cache)
    forget_crds_state()
    out_dir = tmp_path / "out"
    code = cli.main(["run", str(sim.uncal), "--output-dir", str(out_dir)])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("ramp2slope: error:")]
    assert code == 2 and len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_crds_path_without_a_cache_and_local_references_runs(exposure, tmp_path, monkeypatch, capsys):
    """CRDS_PATH naming a folder that holds no cache yet, with every reference in --refdir: the
    run needs nothing from CRDS and must succeed (crds itself would end the process when asked
    for its context there)."""
    sim = exposure[0]
    monkeypatch.setenv("CRDS_PATH", str(tmp_path / "not_synced_yet"))
    monkeypatch.delenv("CRDS_SERVER_URL", raising=False)
    forget_crds_state()
    out_dir = tmp_path / "out"
    code = cli.main(["run", str(sim.uncal), "--refdir", os.path.dirname(sim.refs["mask"]),
                     "--output-dir", str(out_dir)])
    forget_crds_state()
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out_dir.iterdir()) == [f"{sim.root}_rate.fits", f"{sim.root}_rateints.fits"]


def test_default_cache_is_crds_own():
    """Without any CRDS_* variable the cache is crds's default, known here without importing
    crds: the same folder crds names."""
    import subprocess
    import sys

    from ramp2slope.references import crds_client

    code = "from crds.core import config; print(config.get_crds_path())"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == crds_client.CRDS_DEFAULT_CACHE


def test_a_run_without_crds_does_not_import_it(exposure, tmp_path):
    """Every reference in --refdir and no CRDS_* variable: the run never asks CRDS, so crds
    (0.3 s of imports) is not loaded; the products are written."""
    import subprocess
    import sys

    sim = exposure[0]
    code = ("import sys; from ramp2slope import cli; "
            f"code = cli.main(['run', {str(sim.uncal)!r}, '--refdir', "
            f"{os.path.dirname(sim.refs['mask'])!r}, '--output-dir', {str(tmp_path)!r}]); "
            "print(code, 'crds' in sys.modules)")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CRDS_") and k != "STPIPE_DISABLE_CRDS_STEPPARS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "0 False", out.stderr[-2000:]
    assert (tmp_path / f"{sim.root}_rate.fits").exists()


# -- MIRI ----------------------------------------------------------------------------------------
READPATT = "META.EXPOSURE.READPATT"


@pytest.fixture(scope="module")
def miri_exposure(tmp_path_factory):
    """A MIRI SUB64 exposure of 2 integrations and its references, as a CRDS context lists
    MIRI's: full-frame MASK/SATURATION/LINEARITY/GAIN/READNOISE, a DARK and a RESET per subarray
    and read pattern, the RSCD table, the EMICORR file (ASDF); SUPERBIAS, REFPIX and SIRSKERNEL
    not applicable."""
    from ramp2slope.simulate.miri import simulate_miri_exposure

    base = tmp_path_factory.mktemp("crds_miri")
    sim = simulate_miri_exposure(base / "sim", subarray="SUB64", ngroups=6, nints=2, seed=9)
    names = base / "names"
    names.mkdir()
    entries = []
    for reftype, match in (("mask", {DET: "MIRIMAGE"}), ("saturation", {DET: "MIRIMAGE"}),
                           ("linearity", {DET: "MIRIMAGE"}), ("gain", {DET: "MIRIMAGE"}),
                           ("readnoise", {DET: "MIRIMAGE"}), ("rscd", {DET: "MIRIMAGE"}),
                           ("emicorr", {DET: "MIRIMAGE"}),
                           ("dark", {DET: "MIRIMAGE", SUB: "SUB64", READPATT: "FAST"}),
                           ("reset", {DET: "MIRIMAGE", SUB: "SUB64", READPATT: "FAST"})):
        source = sim.refs[reftype]
        path = names / f"jwst_miri_{reftype}_0001{os.path.splitext(source)[1]}"
        shutil.copy(source, path)
        entries.append(Entry("MIRI", reftype, match, "2022-01-01 00:00:00", str(path)))
    return sim, entries


@pytest.fixture
def miri_cache(miri_exposure, tmp_path, monkeypatch):
    sim, entries = miri_exposure
    root = build_cache(tmp_path / "crds_cache", entries)
    crds_environment(monkeypatch, root)
    yield root
    monkeypatch.undo()
    forget_crds_state()


@pytest.mark.oracle
def test_miri_references_and_products_as_jwst(miri_exposure, miri_cache, tmp_path):
    """jwst and ramp2slope ask the same MIRI context: the same file (or N/A) for every type,
    the same R_* and CRDS keywords in the products, and the same rates."""
    pytest.importorskip("jwst")
    from jwst.pipeline import Detector1Pipeline as Official
    from stdatamodels.jwst import datamodels as jdm

    from ramp2slope.pipeline import Detector1Pipeline

    from jwst.dq_init import DQInitStep

    sim = miri_exposure[0]
    ours = _metadata(sim)
    asker = DQInitStep()
    with jdm.RampModel(str(sim.uncal)) as theirs:
        for reftype in ("mask", "saturation", "superbias", "linearity", "dark", "reset", "rscd",
                        "emicorr", "gain", "readnoise", "refpix", "sirskernel"):
            official = asker.get_reference_file(theirs, reftype)
            mine = find_reference(reftype, ours)
            assert (official if official == "N/A" else os.path.basename(official)) == \
                   (mine if mine == "N/A" else os.path.basename(mine)), reftype
    Official.call(str(sim.uncal), output_dir=str(tmp_path / "jwst"), save_results=True)
    Detector1Pipeline.call(str(sim.uncal), output_dir=str(tmp_path / "ours"), save_results=True)
    for suffix in ("rate", "rateints"):
        name = f"{sim.root}_{suffix}.fits"
        official = fits.getheader(tmp_path / "jwst" / name)
        mine = fits.getheader(tmp_path / "ours" / name)
        # (jwst runs ipc by default and records its N/A with R_IPC; ramp2slope leaves ipc off)
        keys = sorted(k for k in official if k.startswith(("R_", "CRDS_")) and k != "R_IPC")
        assert "R_RESET" in keys and "R_RSCD" in keys and "R_DARK" in keys
        assert {k: mine.get(k) for k in keys} == {k: official[k] for k in keys}
        with fits.open(tmp_path / "jwst" / name) as a, fits.open(tmp_path / "ours" / name) as b:
            np.testing.assert_array_equal(b["SCI"].data, a["SCI"].data)
            assert np.array_equal(b["DQ"].data, a["DQ"].data)


def test_override_in_the_cache_is_recorded_by_its_path(exposure, cache, tmp_path):
    """jwst records a reference CRDS chose as crds://<name>, and one named as an override by its
    full path, even when that file lies in the CRDS cache."""
    from ramp2slope.dq_init import DQInitStep

    sim = exposure[0]
    in_cache = next(os.path.join(folder, name) for folder, _, names in os.walk(cache)
                    for name in names if name == "jwst_nircam_mask_0001.fits")
    chosen = DQInitStep.call(str(sim.uncal))
    named = DQInitStep.call(str(sim.uncal), override_mask=in_cache)
    assert chosen.meta.ref_file.mask.name == "crds://jwst_nircam_mask_0001.fits"
    assert named.meta.ref_file.mask.name == os.path.abspath(in_cache)
