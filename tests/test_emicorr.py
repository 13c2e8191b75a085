"""MIRI EMI correction (emicorr): oracle comparisons with jwst's EmiCorrStep.

Small simulated MIRI ramps (SUB64 and MASK1065 shapes, 2-3 integrations x 10 groups) carry
sine-wave interference at the frequencies of a small EMICORR reference written to tmp_path in
the EmiModel layout. Both algorithms, the on-the-fly frequencies (and the reference they save),
the skip rules, the streaming API and bad references are checked.
"""
import logging

import numpy as np
import pytest

from ramp2slope import datamodels
from ramp2slope.emicorr import (Clocks, EmiCorrection, EmiCorrStep, correct_exposure,
                                load_emicorr, rebin_nearest)
from ramp2slope.errors import ReferenceFileError

pytestmark = pytest.mark.oracle

FREQS = ((390.625, 4.0), (218.52055, 2.0))
CLOCKS = {"SUB64": (28, 8512), "MASK1065": (82, 23968), "FULL_FAST": (271, 277504)}
SHAPES = {"SUB64": (64, 72), "MASK1065": (224, 288), "FULL": (32, 64)}


def _emi(shape, freq, amp, rowclocks, frameclocks, reset_frame, phase0=0.3):
    """A sine wave on the pixel clock: 4 channels read together, one row after another, with
    the padding of a 1024-row frame, and a reset frame between integrations for R1 patterns."""
    nints, ngroups, ny, nx = shape
    period = 1 / freq / 10e-6
    frame = ny * rowclocks + (1024 - ny) * 7
    inttime = ngroups * frame + (frameclocks if reset_frame else 0)
    i, g, j, c = np.meshgrid(*(np.arange(n) for n in (nints, ngroups, ny, nx // 4)), indexing="ij")
    ticks = i * inttime + g * frame + j * rowclocks + c
    return np.repeat(amp * np.sin(2 * np.pi * (ticks / period + phase0)), 4, axis=3)


def _models(nints=3, ngroups=10, subarray="SUB64", readpatt="FAST", instrument="MIRI",
            xsize=None, seed=1, nan=False):
    """The same EMI-ridden ramp as an official RampModel and as ours."""
    from stdatamodels.jwst import datamodels as dm

    ny, nx = SHAPES[subarray]
    rng = np.random.default_rng(seed)
    shape = (nints, ngroups, ny, nx)
    slope = rng.uniform(5, 50, (ny, nx))
    data = 1000 + slope * np.arange(ngroups)[None, :, None, None] + rng.normal(0, 2, shape)
    rowclocks, frameclocks = CLOCKS["FULL_FAST" if subarray == "FULL" else subarray]
    for freq, amp in FREQS:
        data += _emi(shape, freq, amp, rowclocks, frameclocks, readpatt.endswith("R1"))
    if nan:
        data[0, 3, 5, 7] = np.nan
    data = data.astype(np.float32)
    pixeldq = np.where(rng.random((ny, nx)) < 0.02, 1, 0).astype(np.uint32)
    pair = []
    for module in (dm, datamodels):
        model = module.RampModel(data=data.copy(), pixeldq=pixeldq.copy(),
                                 groupdq=np.zeros(shape, np.uint8))
        meta = model.meta
        meta.instrument.name = instrument
        meta.instrument.detector = "MIRIMAGE" if instrument == "MIRI" else "NRCA1"
        meta.exposure.type = "MIR_IMAGE"
        meta.exposure.readpatt = readpatt
        meta.exposure.nints, meta.exposure.ngroups = nints, ngroups
        meta.subarray.name = subarray
        meta.subarray.xstart = meta.subarray.ystart = 1
        meta.subarray.xsize, meta.subarray.ysize = xsize or nx, ny
        meta.observation.date, meta.observation.time = "2024-01-01", "00:00:00"
        if module is dm:
            meta.exposure.nsamples = 1
        else:
            model.primary_header["NSAMPLES"] = 1
        pair.append(model)
    return pair


def _write_reference(path, subarray="SUB64", nwave=300, freqs=FREQS, fast_names=None):
    from stdatamodels.jwst import datamodels as dm

    model = dm.EmiModel()
    names = [f"Hz{f}".replace(".", "p") for f, _ in freqs]
    phase = (np.arange(nwave) + 0.5) / nwave
    model.frequencies = {name: {"frequency": f, "phase_amplitudes": np.sin(2 * np.pi * phase)}
                         for name, (f, _) in zip(names, freqs)}
    rowclocks, frameclocks = CLOCKS[subarray]
    model.subarray_cases = {subarray: {"rowclocks": rowclocks, "frameclocks": frameclocks, "freqs": {
        "FAST": fast_names if fast_names is not None else names, "SLOW": {"MIRIMAGE": names}}}}
    meta = model.meta
    meta.reftype, meta.author, meta.description = "emicorr", "test", "test"
    meta.pedigree, meta.useafter = "GROUND", "2024-01-01T00:00:00"
    model.save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("emicorr")
    return {sub: _write_reference(folder / f"emi_{sub}.asdf", sub) for sub in ("SUB64", "MASK1065")}


def _run_both(models, **pars):
    from jwst.emicorr.emicorr_step import EmiCorrStep as Official

    theirs, ours = models
    raw = ours.data.copy()
    expected = Official.call(theirs, skip=False, **pars)
    got = EmiCorrStep.call(ours, skip=False, **pars)
    return expected, got, raw


def _assert_same(expected, got, raw):
    assert got.meta.cal_step.emicorr == expected.meta.cal_step.emicorr
    np.testing.assert_array_equal(got.data, expected.data)
    if expected.meta.cal_step.emicorr == "COMPLETE":
        assert np.nanmax(np.abs(got.data - raw)) > 0.5   # the EMI was really removed


# -------------------------------------------------------------------------------- oracle

@pytest.mark.parametrize("subarray, algorithm, extra", [
    ("SUB64", "joint", {}),
    ("SUB64", "joint", {"fit_ints_separately": True}),
    ("MASK1065", "joint", {}),
    ("SUB64", "sequential", {}),
    ("MASK1065", "sequential", {"scale_reference": False, "use_n_cycles": None, "nbins": 90}),
    ("SUB64", "sequential", {"nints_to_phase": 2, "use_n_cycles": 5}),
])
def test_reference_algorithms_match_jwst(reference, subarray, algorithm, extra):
    """Both algorithms with the reference waveforms, two frequencies in turn: SCI bit for bit."""
    nints = 2 if subarray == "MASK1065" else 3
    # one NaN read: harmless to the sequential binning, but the joint algorithm's median ramp
    # scatter becomes NaN and officially no pixel is used (nothing is corrected)
    models = _models(nints=nints, subarray=subarray, nan=algorithm == "sequential")
    expected, got, raw = _run_both(models,
                                   algorithm=algorithm, override_emicorr=reference[subarray], **extra)
    _assert_same(expected, got, raw)
    assert expected.meta.cal_step.emicorr == "COMPLETE"


@pytest.mark.parametrize("subarray, readpatt, xsize", [
    ("SUB64", "FAST", None),
    # full frame: FULL_FAST clocks, a reset frame between integrations, and the last quad
    # column shifted (SUBSIZE1=1032 gives the reference-pixel column stop of 258)
    ("FULL", "FASTR1", 1032),
])
def test_onthefly_frequencies_match_jwst(tmp_path, subarray, readpatt, xsize):
    """Self-correction with frequencies given (joint falls back to sequential), and the
    reference it saves with save_intermediate_results."""
    import asdf

    models = _models(nints=2, subarray=subarray, readpatt=readpatt, xsize=xsize)
    for model, who in zip(models, ("jwst", "ours")):
        (tmp_path / who).mkdir()
        model.meta.filename = "exp_uncal.fits"
    from jwst.emicorr.emicorr_step import EmiCorrStep as Official

    freqs = [f for f, _ in FREQS]
    raw = models[1].data.copy()
    expected = Official.call(models[0], skip=False, algorithm="joint", onthefly_corr_freq=freqs,
                             save_intermediate_results=True, output_dir=str(tmp_path / "jwst"))
    got = EmiCorrStep.call(models[1], skip=False, algorithm="joint", onthefly_corr_freq=freqs,
                           save_intermediate_results=True, output_dir=str(tmp_path / "ours"))
    _assert_same(expected, got, raw)
    assert got.meta.ref_file.emicorr.name is None   # no reference is looked up
    (theirs_file,) = (tmp_path / "jwst").glob("*emi_ref_waves.asdf")
    (ours_file,) = (tmp_path / "ours").glob("*emi_ref_waves.asdf")
    assert ours_file.name == theirs_file.name
    with asdf.open(theirs_file) as a, asdf.open(ours_file) as b:
        assert a.tree["subarray_cases"] == b.tree["subarray_cases"]
        assert set(a.tree["frequencies"]) == set(b.tree["frequencies"]) == {repr(f) for f in freqs}
        for name, entry in a.tree["frequencies"].items():
            assert b.tree["frequencies"][name]["frequency"] == entry["frequency"]
            np.testing.assert_array_equal(b.tree["frequencies"][name]["phase_amplitudes"],
                                          entry["phase_amplitudes"])
    # as officially, the saved cases are keyed by SUBARRAY and READPATT as they are, so only a
    # non-FULL FAST exposure can read them back
    ref = load_emicorr(ours_file)
    names = ref.case(subarray, readpatt, "MIRIMAGE")[3]
    assert names == ([repr(f) for f in freqs] if readpatt == "FAST" else None)


# -------------------------------------------------------------------------------- skips

@pytest.mark.parametrize("case", ["instrument", "readpatt", "no_reference", "ngroups",
                                  "subarray_not_in_reference", "no_frequencies"])
def test_skip_rules_match_jwst(reference, tmp_path, case, caplog):
    kwargs, pars = {}, {"override_emicorr": reference["SUB64"]}
    if case == "instrument":
        kwargs["instrument"] = "NIRCAM"
    elif case == "readpatt":
        kwargs["readpatt"] = "FASTGRPAVG"
    elif case == "no_reference":
        pars["override_emicorr"] = "N/A"
    elif case == "ngroups":
        kwargs["ngroups"] = 2
    elif case == "subarray_not_in_reference":
        pars["override_emicorr"] = reference["MASK1065"]
    else:
        pars["override_emicorr"] = _write_reference(tmp_path / "empty.asdf", fast_names=[])
    caplog.set_level(logging.WARNING, logger="ramp2slope")
    expected, got, raw = _run_both(_models(nints=1, **kwargs), **pars)
    assert expected.meta.cal_step.emicorr == "SKIPPED"
    _assert_same(expected, got, raw)
    np.testing.assert_array_equal(got.data, raw)
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_off_by_default():
    assert EmiCorrStep().skip is True
    assert EmiCorrStep().algorithm == "joint"


# -------------------------------------------------------------------------------- streaming

@pytest.mark.parametrize("algorithm", ["joint", "sequential"])
def test_streaming_passes(reference, algorithm):
    """The pass API fed with integration copies gives the whole-exposure result, and the
    sequential algorithm reads only its phasing integration."""
    ours = _models(nints=3)[1]
    ref = load_emicorr(reference["SUB64"])
    freqs = [(name, *ref.frequency(name)) for name in ref.case("SUB64", "FAST", "MIRIMAGE")[3]]
    clocks = Clocks(1, 28, 8512, "FAST", 72, 1)
    whole = ours.data.copy()
    correct_exposure(whole, ours.pixeldq, clocks, freqs, algorithm=algorithm)

    corr = EmiCorrection(ours.data.shape, ours.pixeldq, clocks, freqs, algorithm=algorithm)
    passes = []
    while corr.needs_pass():
        passes.append(list(corr.pass_integrations()))
        for i in passes[-1]:
            corr.feed(i, ours.data[i].copy())
        corr.end_pass()
    assert passes == ([[0, 1, 2]] * 4 if algorithm == "joint" else [[0], [0]])
    for i in range(3):
        data = ours.data[i].copy()
        corr.apply(i, data)
        np.testing.assert_array_equal(data, whole[i])


# -------------------------------------------------------------------------------- pieces, errors

def test_rebin_matches_jwst():
    from jwst.emicorr.emicorr import rebin

    arr = np.arange(500.0)
    for old in (20, 128, 228, 300, 500):
        for new in (256.0, 457.6228, 9960.159, 300, 17.3):
            np.testing.assert_array_equal(rebin_nearest(arr[:old], new), rebin(arr[:old], [new]))


def test_bad_references(tmp_path):
    import asdf

    bad = tmp_path / "bad.asdf"
    bad.write_text("not asdf")
    with pytest.raises(ReferenceFileError, match="bad.asdf"):
        load_emicorr(bad)
    asdf.AsdfFile({"frequencies": {}}).write_to(tmp_path / "nocases.asdf")
    with pytest.raises(ReferenceFileError, match="nocases.asdf"):
        load_emicorr(tmp_path / "nocases.asdf")
    path = _write_reference(tmp_path / "missing.asdf", fast_names=["Hz999"])
    _, ours = _models(nints=1)
    with pytest.raises(ReferenceFileError, match="missing.asdf.*Hz999"):
        EmiCorrStep.call(ours, skip=False, override_emicorr=path)
