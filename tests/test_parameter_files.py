"""Step parameter files and CRDS parameter references, against the official pipeline.

Files written by jwst are read by ramp2slope and the other way round; the precedence of CRDS
``pars-*`` files, a user's file and keyword arguments is compared with jwst's own
``build_config`` on the same exposure, the same CRDS cache and the same files.
"""
import logging
import os

import pytest

from ramp2slope import cli
from ramp2slope.errors import Ramp2SlopeError
from ramp2slope.jump import JumpStep
from ramp2slope.pipeline import Detector1Pipeline
from ramp2slope.stpipe import Step
from ramp2slope.stpipe.config import configure
from ramp2slope.stpipe.crds_pars import steppars_disabled
from ramp2slope.stpipe.parfiles import RAMP2SLOPE_ONLY, ParameterFileError

from jwst_oracle import require_jwst

JUMP_CLASS = "jwst.jump.jump_step.JumpStep"
PIPE_CLASS = "jwst.pipeline.calwebb_detector1.Detector1Pipeline"


@pytest.fixture(scope="module")
def exposure(tmp_path_factory):
    from ramp2slope.simulate import simulate_exposure

    return simulate_exposure(tmp_path_factory.mktemp("pars") / "sim", subarray="SUB160", ngroups=4,
                             nints=1, seed=3, detector="NRCA1", full_frame_refs=False)


def _write_asdf(path, tree):
    import asdf

    asdf.AsdfFile(tree).write_to(str(path))
    return str(path)


# -- a CRDS cache with parameter references --------------------------------------------------------
def build_pars_cache(root, pars):
    """A CRDS cache (tests/crds_cache.py) whose context gives NIRCAM/NRCA1 exposures the
    parameter files ``pars`` {reftype: tree}; other pars types are unknown to it, as in real
    contexts."""
    from crds_cache import Entry, build_cache

    folder = root.parent / f"{root.name}_files"
    folder.mkdir()
    entries = [Entry("NIRCAM", reftype, {"META.INSTRUMENT.DETECTOR": "NRCA1"},
                     "2000-01-01 00:00:00",
                     _write_asdf(folder / f"jwst_nircam_{reftype}_0001.asdf", tree))
               for reftype, tree in pars.items()]
    return build_cache(root, entries)


# The CRDS files of the precedence tests: the jump step's file, and the pipeline's, which has
# the last word over the step files (it sets min_jump_area again).
CRDS_JUMP = {"class": JUMP_CLASS, "name": "jump",
             "parameters": {"rejection_threshold": 5.5, "expand_large_events": True,
                            "min_jump_area": 6.0, "edge_size": 20}}
CRDS_PIPE = {"class": PIPE_CLASS, "name": "Detector1Pipeline", "parameters": {},
             "steps": [{"class": JUMP_CLASS, "name": "jump", "parameters": {"min_jump_area": 7.0}},
                       {"class": "jwst.saturation.saturation_step.SaturationStep",
                        "name": "saturation", "parameters": {"n_pix_grow_sat": 2}}]}


@pytest.fixture
def crds_pars(tmp_path, monkeypatch):
    """CRDS with pars-jumpstep and pars-detector1pipeline files, parameter look-ups enabled."""
    pytest.importorskip("crds")
    from crds_cache import crds_environment, forget_crds_state

    root = build_pars_cache(tmp_path / "crds", {"pars-jumpstep": CRDS_JUMP,
                                                "pars-detector1pipeline": CRDS_PIPE})
    crds_environment(monkeypatch, root)
    monkeypatch.delenv("STPIPE_DISABLE_CRDS_STEPPARS", raising=False)
    yield root
    monkeypatch.undo()
    forget_crds_state()


def _user_file(tmp_path):
    """A user's pipeline file over the CRDS files: one jump value changed, one added."""
    return _write_asdf(tmp_path / "user.asdf", {
        "class": PIPE_CLASS, "name": "Detector1Pipeline", "parameters": {},
        "steps": [{"class": JUMP_CLASS, "name": "jump",
                   "parameters": {"rejection_threshold": 6.0, "flag_4_neighbors": False}}]})


# -- precedence --------------------------------------------------------------------------------------
JUMP_KEYS = ("rejection_threshold", "expand_large_events", "min_jump_area", "edge_size",
             "flag_4_neighbors")


def test_precedence_crds_then_user_file_then_arguments_as_jwst(crds_pars, exposure, tmp_path, caplog):
    user = _user_file(tmp_path)
    kwargs = {"steps": {"jump": {"rejection_threshold": 7.0}}}
    with caplog.at_level(logging.INFO, logger="ramp2slope"):
        pipe = configure(Detector1Pipeline, str(exposure.uncal), config_file=user, **kwargs)
    jump = {key: getattr(pipe.jump, key) for key in JUMP_KEYS}
    assert jump == {"rejection_threshold": 7.0,    # argument over file over CRDS
                    "expand_large_events": True,   # CRDS jump file
                    "min_jump_area": 7.0,          # CRDS pipeline file over CRDS jump file
                    "edge_size": 20,               # CRDS jump file
                    "flag_4_neighbors": False}     # user file
    assert pipe.saturation.n_pix_grow_sat == 2

    messages = [r.getMessage() for r in caplog.records]
    crds_jump = next(m for m in messages if "PARS-JUMPSTEP jwst_nircam_pars-jumpstep_0001.asdf" in m)
    assert "jump.expand_large_events=True" in crds_jump and "jump.edge_size=20" in crds_jump
    assert "rejection_threshold" not in crds_jump and "min_jump_area" not in crds_jump
    crds_pipe = next(m for m in messages if "PARS-DETECTOR1PIPELINE" in m)
    assert "jump.min_jump_area=7.0" in crds_pipe and "saturation.n_pix_grow_sat=2" in crds_pipe
    from_user = next(m for m in messages if f"config file {user}" in m)
    assert "jump.flag_4_neighbors=False" in from_user and "rejection_threshold" not in from_user
    # listed lowest precedence first
    assert messages.index(crds_jump) < messages.index(crds_pipe) < messages.index(from_user)

    require_jwst()
    from jwst.pipeline import Detector1Pipeline as Official

    config, _ = Official.build_config(str(exposure.uncal), config_file=user, **kwargs)
    official = Official.from_config_section(config)
    assert {key: getattr(official.jump, key) for key in JUMP_KEYS} == jump
    assert official.saturation.n_pix_grow_sat == 2


def test_step_files_named_in_arguments_and_in_files_as_jwst(tmp_path):
    """A sub-step file in the arguments is beneath that section only; one named in a file is
    beneath everything set for the step (both found beside the user's file)."""
    _write_asdf(tmp_path / "jump.asdf", {"class": JUMP_CLASS, "name": "jump", "parameters": {
        "edge_size": 11, "rejection_threshold": 4.4, "min_jump_area": 2.0}})
    _write_asdf(tmp_path / "sat.asdf", {"class": "jwst.saturation.saturation_step.SaturationStep",
                                        "name": "saturation", "parameters": {"n_pix_grow_sat": 0,
                                                                              "use_readpatt": False}})
    user = _write_asdf(tmp_path / "user.asdf", {
        "class": PIPE_CLASS, "name": "Detector1Pipeline", "parameters": {},
        "steps": [{"class": JUMP_CLASS, "name": "jump", "parameters": {"rejection_threshold": 6.0}},
                  {"class": "jwst.saturation.saturation_step.SaturationStep",
                   "name": "saturation", "parameters": {"config_file": "sat.asdf",
                                                        "n_pix_grow_sat": 3}}]})
    kwargs = {"steps": {"jump": {"config_file": "jump.asdf", "min_jump_area": 8.0}}}
    pipe = configure(Detector1Pipeline, None, config_file=user, **kwargs)
    ours = (pipe.jump.edge_size, pipe.jump.rejection_threshold, pipe.jump.min_jump_area,
            pipe.saturation.n_pix_grow_sat, pipe.saturation.use_readpatt)
    assert ours == (11, 4.4, 8.0, 3, False)

    require_jwst()
    from jwst.pipeline import Detector1Pipeline as Official

    config, _ = Official.build_config(None, config_file=user, **kwargs)
    official = Official.from_config_section(config, config_file=user)
    assert (official.jump.edge_size, official.jump.rejection_threshold,
            official.jump.min_jump_area, official.saturation.n_pix_grow_sat,
            official.saturation.use_readpatt) == ours


def test_get_config_from_reference_matches_jwst(crds_pars, exposure):
    require_jwst()
    from jwst.pipeline import Detector1Pipeline as Official

    ours = Detector1Pipeline.get_config_from_reference(str(exposure.uncal))
    official = Official.get_config_from_reference(str(exposure.uncal))
    official_steps = {alias: {k: v for k, v in section.items() if k not in ("class", "name")}
                      for alias, section in official["steps"].items() if section}
    ours_steps = {alias: {k: v for k, v in section.items() if k not in ("class", "name")}
                  for alias, section in ours["steps"].items()}
    assert ours_steps == official_steps == {
        "jump": {"rejection_threshold": 5.5, "expand_large_events": True, "min_jump_area": 7.0,
                 "edge_size": 20},
        "saturation": {"n_pix_grow_sat": 2}}
    assert JumpStep.get_config_reftype() == "pars-jumpstep"
    assert JumpStep.get_config_from_reference(str(exposure.uncal)) == {
        "class": JUMP_CLASS, "name": "jump", **CRDS_JUMP["parameters"]}


def test_call_applies_crds_then_file_then_keywords(crds_pars, exposure, tmp_path, monkeypatch):
    jump_file = _write_asdf(tmp_path / "jump.asdf", {"class": JUMP_CLASS, "name": "jump",
                                                    "parameters": {"edge_size": 12}})
    made = []
    monkeypatch.setattr(JumpStep, "run", lambda self, *args: made.append(self) or self)
    JumpStep.call(str(exposure.uncal), config_file=jump_file, min_jump_area=3.0)
    step = made[0]
    assert (step.rejection_threshold, step.expand_large_events, step.edge_size,
            step.min_jump_area) == (5.5, True, 12, 3.0)
    # Step(...) and from_config_file do not ask CRDS, as officially
    assert JumpStep.from_config_file(jump_file).rejection_threshold == 4.0
    # nor does the constructor read the file it is given (it only locates sub-step files)
    assert JumpStep(config_file=jump_file).edge_size == 25


@pytest.mark.parametrize("value", ["true", "True", "t", "yes", "y", "1", "TRUE", "on", "false", ""])
def test_disable_switch_truthiness_is_jwst_s(value, crds_pars, exposure, monkeypatch):
    monkeypatch.setenv("STPIPE_DISABLE_CRDS_STEPPARS", value)
    require_jwst()
    from stpipe.step import get_disable_crds_steppars

    assert steppars_disabled() == get_disable_crds_steppars()
    found = Detector1Pipeline.get_config_from_reference(str(exposure.uncal))
    assert bool(found) != steppars_disabled()
    # an explicit true argument wins over the environment; false defers to it, as officially
    assert steppars_disabled(True) and steppars_disabled("yes")
    assert steppars_disabled(False) == get_disable_crds_steppars(False)
    assert Detector1Pipeline.get_config_from_reference(str(exposure.uncal), disable=True) == {}


def test_cli_config_file_crds_and_command_line(crds_pars, exposure, tmp_path, capsys):
    user = _user_file(tmp_path)
    saved = tmp_path / "saved.asdf"
    refdir = os.path.dirname(exposure.refs["mask"])
    code = cli.main(["run", str(exposure.uncal), "--refdir", refdir, "--output-dir",
                     str(tmp_path / "out"), "--threads", "1", "--config", user,
                     "--save-parameters", str(saved), "--steps.jump.min_jump_area=9"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "PARS-JUMPSTEP jwst_nircam_pars-jumpstep_0001.asdf set" in err
    assert f"config file {user} set 2 parameters" in err
    assert (tmp_path / "out" / f"{exposure.root}_rate.fits").exists()
    pipe = Detector1Pipeline.from_config_file(saved)
    assert (pipe.jump.rejection_threshold, pipe.jump.expand_large_events, pipe.jump.min_jump_area,
            pipe.jump.flag_4_neighbors, pipe.saturation.n_pix_grow_sat, pipe.threads) == (
        6.0, True, 9.0, False, 2, 1)

    code = cli.main(["run", str(exposure.uncal), "--refdir", refdir, "--output-dir",
                     str(tmp_path / "out2"), "--disable-crds-steppars", "--save-parameters",
                     str(saved)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "PARS-" not in err
    assert Detector1Pipeline.from_config_file(saved).jump.rejection_threshold == 4.0


# -- files written by jwst, read by ramp2slope, and the other way ------------------------------------
def test_jwst_files_are_read(tmp_path, caplog):
    require_jwst()
    from jwst.jump import JumpStep as OfficialJump
    from jwst.pipeline import Detector1Pipeline as Official

    official = Official()
    official.jump.rejection_threshold = 6.5
    official.jump.expand_large_events = True
    official.saturation.n_pix_grow_sat = 0
    official.save_calibrated_ramp = True
    official.export_config(str(tmp_path / "d1.asdf"), include_metadata=True)
    single = OfficialJump(maximum_cores="half", min_jump_area=4.0)
    single.export_config(str(tmp_path / "jump.asdf"))

    with caplog.at_level(logging.INFO, logger="ramp2slope"):
        pipe = Step.from_config_file(tmp_path / "d1.asdf")
    assert type(pipe) is Detector1Pipeline
    assert (pipe.jump.rejection_threshold, pipe.jump.expand_large_events,
            pipe.saturation.n_pix_grow_sat, pipe.save_calibrated_ramp) == (6.5, True, 0, True)
    assert pipe.ipc.skip is False   # jwst's own default, which its file holds
    summary = next(r.getMessage() for r in caplog.records if "d1.asdf" in r.getMessage())
    assert "jump.rejection_threshold=6.5" in summary and "save_calibrated_ramp=True" in summary
    for alias, step in pipe.steps.items():
        expected = getattr(official, alias).get_pars()
        ours = step.get_pars()
        assert {k: ours[k] for k in expected if k != "input_dir"} == {
            k: v for k, v in expected.items() if k != "input_dir"}, alias

    step = JumpStep.from_config_file(tmp_path / "jump.asdf")
    assert (step.maximum_cores, step.min_jump_area) == ("half", 4.0)
    with pytest.raises(ParameterFileError, match="holds parameters for JumpStep.*not Detector1Pipeline"):
        Detector1Pipeline.from_config_file(tmp_path / "jump.asdf")


def test_our_files_are_read_by_jwst(tmp_path, monkeypatch):
    require_jwst()
    import stpipe
    from jwst.pipeline import Detector1Pipeline as Official

    pipe = Detector1Pipeline(threads=2, refdir=str(tmp_path),
                             steps={"jump": {"rejection_threshold": 5.0, "override_gain": "g.fits"},
                                    "ramp_fit": {"algorithm": "OLS_C", "save_opt": True}})
    path = pipe.export_config(tmp_path / "ours.asdf", include_metadata=True)
    official = stpipe.Step.from_config_file(path)
    assert isinstance(official, Official)
    for alias, step in pipe.steps.items():
        theirs = getattr(official, alias).get_pars()
        ours = {k: v for k, v in step.get_pars().items()
                if k not in RAMP2SLOPE_ONLY and not k.startswith("override_") and k != "input_dir"}
        assert ours == {k: theirs[k] for k in ours}, alias
    assert official.jump.override_gain == "g.fits"

    # our own parameters survive a round trip, beside the official ones
    again = Detector1Pipeline.from_config_file(path)
    assert again.get_pars() == pipe.get_pars()

    # Detector1Pipeline.call with our file: the sub-steps are configured before anything runs
    seen = []
    monkeypatch.setattr(Official, "run", lambda self, *args: seen.append(self))
    Official.call(None, config_file=path)
    assert seen[0].jump.rejection_threshold == 5.0 and seen[0].ramp_fit.save_opt is True


def test_get_pars_round_trip_and_update_pars():
    pipe = Detector1Pipeline(steps={"jump": {"rejection_threshold": 8.0}}, threads=3)
    pars = pipe.get_pars()
    assert pars["steps"]["jump"]["rejection_threshold"] == 8.0
    assert Detector1Pipeline(**pars).get_pars() == pars
    fresh = Detector1Pipeline()
    fresh.update_pars(pars | {"not_a_parameter": 1})
    assert fresh.get_pars() == pars


def test_cfg_files_read_as_jwst_reads_them(tmp_path):
    (tmp_path / "jump.cfg").write_text('name = "jump"\nclass = "jwst.jump.jump_step.JumpStep"\n'
                                       "rejection_threshold = 4.5  # sigma\nminimum_groups = 4\n")
    (tmp_path / "d1.cfg").write_text(
        'name = "Detector1Pipeline"\nclass = "jwst.pipeline.Detector1Pipeline"\n'
        "save_calibrated_ramp = True\n\n[steps]\n  [[jump]]\n    config_file = jump.cfg\n"
        "    minimum_groups = 5\n  [[ipc]]\n    skip = True\n  [[refpix]]\n"
        "    odd_even_columns = False\n")
    pipe = Detector1Pipeline.from_config_file(tmp_path / "d1.cfg")
    assert (pipe.save_calibrated_ramp, pipe.jump.rejection_threshold, pipe.jump.minimum_groups,
            pipe.ipc.skip, pipe.refpix.odd_even_columns) == (True, 4.5, 5, True, False)

    require_jwst()
    import stpipe

    official = stpipe.Step.from_config_file(str(tmp_path / "d1.cfg"))
    assert (official.save_calibrated_ramp, official.jump.rejection_threshold,
            official.jump.minimum_groups, official.ipc.skip,
            official.refpix.odd_even_columns) == (True, 4.5, 5, True, False)


def test_first_format_version_asdf_files(tmp_path):
    """Files of the first ASDF format keep class, name and steps under ``parameters``."""
    path = _write_asdf(tmp_path / "old.asdf", {"parameters": {
        "class": PIPE_CLASS, "name": "Detector1Pipeline", "save_calibrated_ramp": True,
        "steps": {"jump": {"class": JUMP_CLASS, "name": "jump", "rejection_threshold": 3.5},
                  "ipc": {"skip": True}}}})
    pipe = Step.from_config_file(path)
    assert (pipe.save_calibrated_ramp, pipe.jump.rejection_threshold, pipe.ipc.skip) == (
        True, 3.5, True)
    require_jwst()
    import stpipe

    official = stpipe.Step.from_config_file(path)
    assert (official.save_calibrated_ramp, official.jump.rejection_threshold,
            official.ipc.skip) == (True, 3.5, True)


# -- bad files -----------------------------------------------------------------------------------------
def _bad_file(kind, folder):
    path = folder / f"{kind}.asdf"
    if kind == "binary":
        path.write_bytes(b"SIMPLE  =                    T\0\0\0\xff\xfe" * 50)
    elif kind == "not_parameters":
        _write_asdf(path, {"data": [1, 2, 3]})
    elif kind == "wrong_class":
        _write_asdf(path, {"class": "jwst.assign_wcs.assign_wcs_step.AssignWcsStep",
                           "name": "assign_wcs", "parameters": {}})
    elif kind == "other_step":
        _write_asdf(path, {"class": "jwst.saturation.saturation_step.SaturationStep",
                           "name": "saturation", "parameters": {}})
    elif kind == "unknown":
        _write_asdf(path, {"class": PIPE_CLASS, "name": "Detector1Pipeline", "parameters": {},
                           "steps": [{"class": JUMP_CLASS, "name": "jump",
                                      "parameters": {"rejection_treshold": 5.0}}]})
    elif kind == "wrong_type":
        _write_asdf(path, {"class": PIPE_CLASS, "name": "Detector1Pipeline", "parameters": {},
                           "steps": [{"class": JUMP_CLASS, "name": "jump",
                                      "parameters": {"rejection_threshold": "high"}}]})
    elif kind == "bad_cfg":
        path = folder / "bad.cfg"
        path.write_text("[steps]\n  [[jump]]\n    this line has no equals sign\n")
    return path


BAD_FILES = {
    "binary": "not a parameter file (neither ASDF nor .cfg text)",
    "not_parameters": "not a step parameter file (the ASDF tree has no 'parameters' mapping)",
    "wrong_class": "class 'jwst.assign_wcs.assign_wcs_step.AssignWcsStep' is not a step ramp2slope implements",
    "other_step": "holds parameters for SaturationStep",
    "unknown": "unknown parameter steps.jump.rejection_treshold (JumpStep has no parameter 'rejection_treshold')",
    "wrong_type": "steps.jump.rejection_threshold: expected a number, got 'high'",
    "bad_cfg": "line 3: not a parameter file line (expected name = value)",
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_files_are_one_line_errors(kind, tmp_path, capsys, exposure):
    path = _bad_file(kind, tmp_path)
    with pytest.raises(ParameterFileError) as info:
        Detector1Pipeline.from_config_file(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)) and BAD_FILES[kind] in message
    code = cli.main(["run", str(exposure.uncal), "--config", str(path), "--output-dir",
                     str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == f"ramp2slope: error: {message}"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["unknown", "wrong_type"])
def test_jwst_also_refuses_unknown_and_mistyped_parameters(kind, tmp_path):
    require_jwst()
    import stpipe
    from stpipe.exceptions import ValidationError

    with pytest.raises(ValidationError):
        stpipe.Step.from_config_file(str(_bad_file(kind, tmp_path)))


def test_missing_file_and_unwritable_output(tmp_path):
    with pytest.raises(ParameterFileError, match="no such parameter file"):
        Detector1Pipeline.from_config_file(tmp_path / "nothing.asdf")
    with pytest.raises(ParameterFileError, match="cannot write"):
        JumpStep().export_config(tmp_path / "no" / "such" / "dir.asdf")
    with pytest.raises(Ramp2SlopeError, match="no parameter"):
        JumpStep.call(None, rejection_treshold=3)


def test_miri_step_sections_configure_the_miri_steps(tmp_path):
    classes = {"emicorr": "EmiCorrStep", "rscd": "RscdStep", "firstframe": "FirstFrameStep",
               "lastframe": "LastFrameStep", "reset": "ResetStep"}
    steps = [{"class": f"jwst.{alias}.{alias}_step.{name}", "name": alias,
              "parameters": {"skip": alias != "firstframe"}} for alias, name in classes.items()]
    path = _write_asdf(tmp_path / "miri.asdf", {"class": PIPE_CLASS, "name": "Detector1Pipeline",
                                                "parameters": {}, "steps": steps})
    pipe = Step.from_config_file(path)
    assert type(pipe) is Detector1Pipeline
    assert [getattr(pipe, alias).skip for alias in classes] == [True, True, False, True, True]
    assert type(pipe.rscd).__name__ == "RscdStep"