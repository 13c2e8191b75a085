"""Step framework: spec parsing, parameters, output names, saving, skipping, input safety."""
import os

import numpy as np
import pytest
from astropy.io import fits

from ramp2slope import datamodels
from ramp2slope.errors import Ramp2SlopeError
from ramp2slope.stpipe import Pipeline, Step, make_output_path, parse_spec, split_root


class AddOne(Step):
    class_alias = "add_one"
    cal_step_name = "superbias"
    spec = """
        amount = float(default=1.0)  # what to add
        mode = option('plain', 'fancy', default='plain')  # how
        flags = int_list(default=None)  # some integers
    """

    def process(self, model):
        model.data += self.amount
        return self.complete(model)


class TwoSteps(Pipeline):
    class_alias = "two"
    step_defs = {"first": AddOne, "second": AddOne}

    def process(self, model):
        model = self.first.run(model)
        return self.second.run(model)


def test_parse_spec_types_defaults_and_help():
    params = {p.name: p for p in parse_spec(AddOne.spec)}
    assert params["amount"].default == 1.0 and params["amount"].help == "what to add"
    assert params["mode"].options == ("plain", "fancy")
    assert params["amount"].convert("2.5") == 2.5
    assert params["flags"].convert("1,2") == [1, 2]
    with pytest.raises(Ramp2SlopeError, match="one of"):
        params["mode"].convert("other")


def test_step_parameters_are_typed_and_unknown_names_rejected():
    step = AddOne(amount="3")
    assert step.amount == 3.0 and step.save_results is False and step.output_dir is None
    step.skip = "true"
    assert step.skip is True
    with pytest.raises(Ramp2SlopeError, match="no parameter"):
        step.amuont = 2
    with pytest.raises(Ramp2SlopeError, match="amount: could not convert"):
        step.amount = "lots"


def test_split_root_and_output_names(tmp_path):
    assert split_root("/a/jw01_nrca1_uncal.fits") == "jw01_nrca1"
    assert split_root("jw01_nrca1_0_ramp_fit.fits") == "jw01_nrca1"
    assert split_root("jw01_nrca1_dark_current.fits") == "jw01_nrca1"
    assert make_output_path("x/jw01_uncal.fits", suffix="jump") == "jw01_jump.fits"
    assert make_output_path("jw01_uncal.fits", output_file="foo", suffix="rate") == "foo_rate.fits"
    assert make_output_path("jw01_uncal.fits", suffix="ramp_fit", index=0,
                            output_dir=str(tmp_path)) == os.path.join(str(tmp_path), "jw01_0_ramp_fit.fits")


def test_run_copies_user_models_and_saves_with_suffix(tmp_path):
    model = datamodels.RampModel((1, 2, 3, 4))
    model.meta.filename = "jw99_nrca1_uncal.fits"
    step = AddOne(save_results=True, output_dir=str(tmp_path))
    result = step.run(model)
    assert model.data.max() == 0, "the caller's model must not be modified"
    assert result.data.min() == 1
    assert result.meta.cal_step.superbias == "COMPLETE"
    assert os.path.exists(tmp_path / "jw99_nrca1_add_one.fits")


def test_pipeline_substeps_inherit_and_skip(tmp_path):
    model = datamodels.RampModel((1, 2, 3, 4))
    model.meta.filename = "jw99_uncal.fits"
    pipe = TwoSteps(steps={"second": {"amount": 10, "save_results": True}}, output_dir=str(tmp_path))
    assert pipe.second.amount == 10.0
    pipe.first.amount = 2
    result = pipe.run(model)
    assert result.data.min() == 12
    assert os.path.exists(tmp_path / "jw99_second.fits") is False  # suffix is the class alias
    assert os.path.exists(tmp_path / "jw99_add_one.fits")
    pipe.second.skip = True
    result = pipe.run(model)
    assert result.data.min() == 2
    # as stpipe: a skipped step records SKIPPED under its alias, which is a status keyword only
    # when it names one (here "add_one" does not: the first step's COMPLETE stays)
    assert result.meta.cal_step.superbias == "COMPLETE"
    with pytest.raises(Ramp2SlopeError, match="no step named"):
        TwoSteps(steps={"third": {}})


def test_standalone_step_runs_even_when_skip_is_set():
    step = AddOne(skip=True)
    result = step.run(datamodels.RampModel((1, 1, 2, 2)))
    assert np.all(result.data == 1)


def test_hugepage_advice_off_inside_runs_and_restored_after():
    from ramp2slope.runtime import hugepages

    setter = hugepages._set_madvise_hugepage
    if setter is None:
        pytest.skip("this numpy has no huge-page switch")
    seen = []

    class Probe(Step):
        def process(self, model):
            seen.append(setter(False))  # returns the setting in force
            return model

    before = setter(True)
    try:
        Probe().run(datamodels.ImageModel(np.zeros((2, 2), np.float32)))
        assert seen == [False]
        assert setter(True) is True  # restored
    finally:
        setter(before)


def test_unavailable_choice_is_refused_before_any_step_runs(tmp_path, caplog):
    from ramp2slope.pipeline import Detector1Pipeline
    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(tmp_path / "sim", size=(64, 64), ngroups=3, nints=2, seed=2)
    with fits.open(sim.uncal, mode="update") as hdul:
        hdul[0].header["EXP_TYPE"] = "NRC_TSGRISM"     # its median image needs extract_1d
    pipe = Detector1Pipeline(steps={"clean_flicker_noise": {"skip": False,
                                                            "background_method": "median_image"}},
                             refdir=os.path.dirname(sim.refs["mask"]), output_dir=str(tmp_path))
    with caplog.at_level("INFO", logger="ramp2slope"):
        with pytest.raises(Ramp2SlopeError, match="median_image' on NRC_TSGRISM"):
            pipe.run(str(sim.uncal))
    assert "dq_init running" not in caplog.text


def test_call_logs_each_step_at_info_like_jwst_and_run_stays_quiet(tmp_path):
    """``Step.call`` shows INFO messages on stderr as jwst's does (``configure_log=False`` and
    a caller's own logging turn that off); ``run`` adds nothing."""
    import subprocess
    import sys

    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(tmp_path / "sim", size=(32, 32), ngroups=3, nints=1, seed=3)
    refdir = os.path.dirname(sim.refs["mask"])
    program = (
        "import sys\n"
        "from ramp2slope.dq_init import DQInitStep\n"
        f"how, path, refdir = sys.argv[1], {str(sim.uncal)!r}, {refdir!r}\n"
        "if how == 'call':\n"
        "    DQInitStep.call(path, refdir=refdir)\n"
        "elif how == 'quiet':\n"
        "    DQInitStep.call(path, refdir=refdir, configure_log=False)\n"
        "else:\n"
        "    DQInitStep(refdir=refdir).run(path)\n")
    def stderr(how):
        return subprocess.run([sys.executable, "-c", program, how], capture_output=True, text=True,
                              check=True).stderr
    shown = stderr("call")
    assert " - ramp2slope - INFO - dq_init running" in shown and "dq_init done in" in shown
    assert "INFO" not in stderr("quiet") and "INFO" not in stderr("run")


def test_pipeline_steps_answer_parameters_by_name():
    # jwst code reads a pipeline's step parameters as pipeline.steps[alias][name]
    from ramp2slope.pipeline import Detector1Pipeline

    pipe = Detector1Pipeline(steps={"jump": {"rejection_threshold": 5.5}})
    assert pipe.steps["emicorr"]["skip"] is True and pipe.steps["lastframe"]["skip"] is False
    assert pipe.steps["jump"]["rejection_threshold"] == 5.5
    with pytest.raises(KeyError):
        pipe.steps["jump"]["no_such_parameter"]


class _Closable:
    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


def test_reference_cache_keeps_only_what_later_steps_load():
    from ramp2slope.stpipe import ReferenceCache

    cache = ReferenceCache()
    gain, mask = _Closable(), _Closable()
    assert cache.get(("gain", "g.fits"), lambda: gain) is gain
    assert cache.get(("mask", "m.fits"), lambda: mask) is mask
    assert cache.get(("gain", "g.fits"), _Closable) is gain    # loaded once
    cache.keep_only({"gain", "readnoise"})
    assert mask.closed and not gain.closed
    assert cache.holds(gain) and not cache.holds(mask)
    cache.clear()
    assert gain.closed and not cache.holds(gain)


@pytest.mark.parametrize("nints", [1, 2])
def test_pipeline_loads_gain_and_readnoise_once_for_jump_and_ramp_fit(tmp_path, monkeypatch, nints):
    """A whole-exposure run (1 integration) and a streamed one (2) load the GAIN and READNOISE
    that jump and ramp_fit both use once, and SUPERBIAS once for saturation and superbias."""
    from ramp2slope import references
    from ramp2slope.jump import jump_step
    from ramp2slope.pipeline import Detector1Pipeline
    from ramp2slope.ramp_fitting import ramp_fit_step
    from ramp2slope.saturation import saturation_step
    from ramp2slope.simulate import simulate_exposure
    from ramp2slope.superbias import superbias_step

    loads = []

    def counting(loader, name):
        def load(path, model):
            loads.append(name)
            return loader(path, model)
        return load

    # one counting loader per type, shared by its steps as the real loader is
    gain = counting(references.load_gain, "gain")
    readnoise = counting(references.load_readnoise, "readnoise")
    superbias = counting(references.load_superbias, "superbias")
    for module in (jump_step, ramp_fit_step):
        monkeypatch.setattr(module, "load_gain", gain)
        monkeypatch.setattr(module, "load_readnoise", readnoise)
    for module in (saturation_step, superbias_step):
        monkeypatch.setattr(module, "load_superbias", superbias)
    sim = simulate_exposure(tmp_path / "sim", size=(64, 64), ngroups=4, nints=nints, seed=5)
    refdir = os.path.dirname(sim.refs["mask"])
    Detector1Pipeline(refdir=refdir, output_dir=str(tmp_path / "out"),
                      steps={"ipc": {"skip": True}}).run(str(sim.uncal))
    assert sorted(loads) == ["gain", "readnoise", "superbias"]
