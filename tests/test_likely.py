"""LIKELY ramp fitting: equal to stcal 1.20's likelihood fit within float32 rounding.

* the arrays: ``fit_ramps_likely`` vs ``stcal.ramp_fitting.likely_fit`` on ramps with jumps,
  saturation, NaNs, DO_NOT_USE groups, NFRAMES > 1 with a ZEROFRAME, firstgroup/lastgroup, one
  and several integrations, 4 to 10 groups (rate, err, var_*, dq and chi squared);
* the same products on 1 and 2 threads;
* the step: RampFitStep(algorithm='LIKELY') on a calibrated ramp vs jwst's RampFitStep (rate,
  rateints and the likely_chisq product), the fallback to OLS_C below 4 groups, and the
  pipeline streamed vs whole with LIKELY.
"""
import os

import numba
import numpy as np
import pytest
from astropy.io import fits

from ramp2slope.datamodels import dqflags
from ramp2slope.errors import Ramp2SlopeError
from ramp2slope.ramp_fitting.likely_fit import fit_ramps_likely
from test_ramp_fitting import assert_matches, make_exposure, stcal_dq_with_nan_flagged
from test_streaming import _assert_same_products, _run

JUMP = dqflags.group["JUMP_DET"]
DNU = dqflags.group["DO_NOT_USE"]


def stcal_likely(exp, firstgroup=None, lastgroup=None, read_times=None):
    pytest.importorskip("stcal")
    pytest.importorskip("stdatamodels")
    from stcal.ramp_fitting import likely_fit, ramp_fit_class
    from stdatamodels.jwst.datamodels import dqflags as jwst_dqflags

    gdq = exp["groupdq"].copy()
    if firstgroup is not None or lastgroup is not None:
        step = pytest.importorskip("jwst.ramp_fitting.ramp_fit_step")
        step.set_groupdq(firstgroup, lastgroup, gdq.shape[1], gdq, jwst_dqflags.group)
    rd = ramp_fit_class.RampData()
    zf = exp["zeroframe"]
    rd.set_arrays(exp["data"].copy(), gdq, exp["pixeldq"].copy(),
                  exp["average_dark_current"].copy(), zeroframe=None if zf is None else zf.copy())
    rd.set_meta(name="NIRCAM", frame_time=exp["frame_time"], group_time=exp["group_time"],
                groupgap=exp["groupgap"], nframes=exp["nframes"],
                drop_frames1=exp["drop_frames1"])
    rd.algorithm = "LIKELY"
    if read_times is not None:
        # stcal edits the first group's list in place when it splits off a ZEROFRAME
        rd.read_pattern = [list(t) for t in read_times]
    rd.set_dqflags(jwst_dqflags.pixel)
    rd.start_row, rd.num_rows = 0, exp["data"].shape[2]
    image, ints, opt = likely_fit.likely_ramp_fit(rd, exp["readnoise"].copy(), exp["gain"].copy())
    assert opt is None
    return image, ints


# The kernels repeat stcal's float64 arithmetic step by step, but stcal's NumPy ufuncs round
# differently on different CPUs (their SIMD dispatch): bit-identical on one machine, a few ULP
# apart on another. So: float32 rounding on 99.5 % of the pixels (a ULP at a rejection threshold
# may pick other differences to omit), and the chi-square's cancellation noise around zero
# (1e-16 to 1e-11 seen) below an absolute 1e-10.
TOL = dict(rtol=2e-7, atol=0.0, frac=0.995)
CHISQ_TOL = dict(TOL, atol=1e-10)


def compare(ours, image, ints):
    for product, chisq, ref in ((ours.rate, ours.chisq, image),
                                (ours.rateints, ours.chisq_ints, ints)):
        assert_matches("slope", product.data, ref["slope"], **TOL)
        for name in ("err", "var_poisson", "var_rnoise"):
            assert_matches(name, getattr(product, name), ref[name], **TOL)
        assert_matches("chisq", chisq, ref["chisq"], **CHISQ_TOL)
        assert_matches("dq", product.dq, stcal_dq_with_nan_flagged(ref["dq"], ref["slope"]),
                       rtol=0)


CASES = {
    "1int-4g": dict(nints=1, ngroups=4),
    "1int-6g": dict(nints=1, ngroups=6),
    "3int-5g": dict(nints=3, ngroups=5),
    "2int-10g-dense": dict(nints=2, ngroups=10, dense_flags=True),
    "2int-7g-nframes4-zeroframe": dict(nints=2, ngroups=7, nframes=4, groupgap=1,
                                       zeroframe=True),
    "1int-9g-nframes2": dict(nints=1, ngroups=9, nframes=2),
}


@pytest.mark.oracle
@pytest.mark.parametrize("case", CASES)
def test_likely_matches_stcal(case):
    kw = dict(CASES[case])
    nints, ngroups = kw.pop("nints"), kw.pop("ngroups")
    exp = make_exposure(300 + nints * 17 + ngroups, nints, ngroups, **kw)
    # NaN groups, also in the non-dense cases
    exp["data"][:, ngroups // 2, 5, 5:9] = np.nan
    image, ints = stcal_likely(exp)
    ours = fit_ramps_likely(**exp)
    compare(ours, image, ints)
    # the cases exercise the interesting paths: jumps found by the fit, NaN rates, DQ
    new_jumps = ours.rateints.dq & JUMP
    assert np.count_nonzero(new_jumps) > 0
    assert np.isnan(ours.rate.data).any() and np.isfinite(ours.rate.data).mean() > 0.5


@pytest.mark.oracle
def test_likely_firstgroup_lastgroup_matches_stcal():
    exp = make_exposure(41, 2, 8)
    image, ints = stcal_likely(exp, firstgroup=1, lastgroup=6)
    compare(fit_ramps_likely(**exp, firstgroup=1, lastgroup=6), image, ints)


# uneven reads: two per frame time at unequal spacing, as a collated superstripe ramp repeated
# within a frame has them (nframes 1), and a pattern of several frames per group with gaps
UNEVEN = {
    "stripes-8g": (dict(nints=2, ngroups=8), [[0.284], [0.563], [0.847], [1.126], [1.410],
                                              [1.688], [1.972], [2.251]]),
    "frames-6g-zeroframe": (dict(nints=2, ngroups=6, nframes=2, zeroframe=True),
                            [[1.0, 2.0], [3.5, 4.5], [5.0, 6.0], [9.0, 10.0], [10.5, 11.5],
                             [16.0, 17.0]]),
}


@pytest.mark.oracle
@pytest.mark.parametrize("case", UNEVEN)
def test_likely_explicit_read_times_match_stcal(case):
    kw, times = UNEVEN[case]
    kw = dict(kw)
    nints, ngroups = kw.pop("nints"), kw.pop("ngroups")
    exp = make_exposure(77 + ngroups, nints, ngroups, **kw)
    image, ints = stcal_likely(exp, read_times=times)
    ours = fit_ramps_likely(**exp, read_times=times)
    compare(ours, image, ints)
    # the times matter: evenly spaced reads give other slopes
    even = fit_ramps_likely(**exp)
    finite = np.isfinite(ours.rate.data)
    assert not np.allclose(even.rate.data[finite], ours.rate.data[finite], rtol=1e-3)


def test_likely_read_times_must_fit_the_ramp():
    exp = make_exposure(5, 1, 5)
    with pytest.raises(Ramp2SlopeError, match="list 4 groups, the ramp has 5"):
        fit_ramps_likely(**exp, read_times=[[1.0], [2.0], [3.0], [4.0]])
    with pytest.raises(Ramp2SlopeError, match="not a finite number"):
        fit_ramps_likely(**exp, read_times=[[1.0], [2.0], [np.nan], [4.0], [5.0]])


def test_likely_finds_a_jump_and_is_thread_independent():
    exp = make_exposure(7, 2, 8, ny=24, nx=24)
    exp["groupdq"][:] = 0
    exp["data"][:, 5:, 3, 4] += 5000.0  # an unflagged jump at group 5
    results = []
    for threads in (1, 2):
        if threads > numba.config.NUMBA_NUM_THREADS:
            pytest.skip("needs 2 numba threads")
        results.append(fit_ramps_likely(**exp, threads=threads))
    a, b = results
    for name in ("data", "err", "dq", "var_poisson", "var_rnoise"):
        np.testing.assert_array_equal(getattr(a.rate, name), getattr(b.rate, name))
        np.testing.assert_array_equal(getattr(a.rateints, name), getattr(b.rateints, name))
    assert a.rateints.dq[:, 3, 4].tolist() == [JUMP, JUMP]
    # the jump does not bias the rate: compare with the neighbours' spread
    assert abs(a.rate.data[3, 4] - np.median(a.rate.data[2:5, 2:7])) < 5 * a.rate.err[3, 4] + 50


# ------------------------------------------------------------------------------------------------
# the step and the pipeline
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from ramp2slope.simulate import simulate_exposure

    return simulate_exposure(tmp_path_factory.mktemp("likely") / "sim", subarray="SUB64P",
                             ngroups=6, nints=2, seed=5, cr_rate=300.0)


@pytest.mark.oracle
def test_step_matches_jwst_ramp_fit_step(sim, tmp_path):
    """Our pipeline's calibrated ramp, fitted by both RampFitSteps with LIKELY."""
    from jwst_oracle import require_jwst

    require_jwst()
    from jwst.ramp_fitting import RampFitStep as JwstRampFitStep

    refdir = os.path.dirname(sim.refs["mask"])
    steps = {"ramp_fit": {"algorithm": "LIKELY", "save_opt": True}}
    rate = _run(sim.uncal, refdir, tmp_path, steps, True, save_calibrated_ramp=True)
    assert rate.meta.cal_step.ramp_fit == "COMPLETE"
    ramp = tmp_path / f"{sim.root}_ramp.fits"
    jwst_dir = tmp_path / "jwst"
    ref_rate, ref_ints = JwstRampFitStep.call(
        str(ramp), algorithm="LIKELY", save_opt=True, output_dir=str(jwst_dir),
        override_gain=str(sim.refs["gain"]), override_readnoise=str(sim.refs["readnoise"]))
    with fits.open(tmp_path / f"{sim.root}_rateints.fits") as hdul:
        ours_ints = {name: hdul[name].data for name in ("SCI", "ERR", "DQ", "VAR_POISSON",
                                                         "VAR_RNOISE")}
    for ours, ref in ((ours_ints, ref_ints), ({"SCI": rate.data, "ERR": rate.err, "DQ": rate.dq,
                                               "VAR_POISSON": rate.var_poisson,
                                               "VAR_RNOISE": rate.var_rnoise}, ref_rate)):
        tol = TOL
        assert_matches("SCI", ours["SCI"], ref.data, **tol)
        for name in ("ERR", "VAR_POISSON", "VAR_RNOISE"):
            assert_matches(name, ours[name], getattr(ref, name.lower()), **tol)
        assert_matches("DQ", ours["DQ"], stcal_dq_with_nan_flagged(ref.dq, ref.data), rtol=0)
    with fits.open(tmp_path / f"{sim.root}_likely_chisq.fits") as hdul:
        chisq = hdul["SCI"].data
    (ref_chisq_path,) = jwst_dir.glob("*likely_chisq.fits")
    with fits.open(ref_chisq_path) as hdul:
        ref_chisq = hdul["SCI"].data
    assert chisq.shape == rate.data.shape and np.isfinite(chisq).mean() > 0.9
    assert_matches("chisq", chisq, ref_chisq, **CHISQ_TOL)


def test_likely_streamed_identical_to_whole_and_falls_back_below_4_groups(sim, tmp_path):
    refdir = os.path.dirname(sim.refs["mask"])
    steps = {"ramp_fit": {"algorithm": "LIKELY", "save_opt": True, "save_results": True}}
    streamed, whole = tmp_path / "streamed", tmp_path / "whole"
    _run(sim.uncal, refdir, streamed, steps, True)
    _run(sim.uncal, refdir, whole, steps, False)
    _assert_same_products(streamed, whole)
    names = os.listdir(streamed)
    assert f"{sim.root}_likely_chisq.fits" in names
    assert not [n for n in names if n.endswith("_fitopt.fits")]
    # LIKELY differs from OLS_C
    ols = tmp_path / "ols"
    rate_ols = _run(sim.uncal, refdir, ols, {}, True)
    with fits.open(streamed / f"{sim.root}_rate.fits") as hdul:
        likely_rate = hdul["SCI"].data
    finite = np.isfinite(likely_rate) & np.isfinite(rate_ols.data)
    assert not np.array_equal(likely_rate[finite], rate_ols.data[finite])


def test_likely_below_four_groups_is_ols(tmp_path):
    from ramp2slope.simulate import simulate_exposure

    sim3 = simulate_exposure(tmp_path / "sim3", subarray="SUB64P", ngroups=3, nints=1, seed=2)
    refdir = os.path.dirname(sim3.refs["mask"])
    a = _run(sim3.uncal, refdir, tmp_path / "a", {"ramp_fit": {"algorithm": "LIKELY"}}, True)
    b = _run(sim3.uncal, refdir, tmp_path / "b", {}, True)
    np.testing.assert_array_equal(a.data, b.data)


def test_report_compares_likely_with_ols(sim, tmp_path):
    """A LIKELY run's report shows the rate against an OLS_C fit of the same ramps."""
    import re

    from jwst_oracle import run_ours_detector1
    from ramp2slope.report import write_report
    from ramp2slope.report.context import Context
    from ramp2slope.report.products import locate
    from ramp2slope.report.steps import likely_vs_ols

    refs = {k: str(v) for k, v in sim.refs.items()}
    out = tmp_path / "products"
    run_ours_detector1(sim.uncal, refs, out, save_steps=("jump",),
                       steps={"ramp_fit": {"algorithm": "LIKELY", "save_opt": True}})
    with locate(out) as products:
        ctx = Context(products)
        likely, ols, err, y0 = likely_vs_ols(ctx, products.get("rate"))
        # the OLS_C refit is the pipeline's own OLS_C rate
        rate_ols = run_ours_detector1(sim.uncal, refs, tmp_path / "ols", save_steps=())
        np.testing.assert_array_equal(ols, rate_ols.data[y0:y0 + ols.shape[0]])
        finite = np.isfinite(likely) & np.isfinite(ols)
        assert finite.mean() > 0.9 and not np.array_equal(likely[finite], ols[finite])
    html = write_report(out, out=tmp_path / "report.html")
    text = open(html, encoding="utf-8").read()
    section = re.search(r'<section class="step" id="ramp_fit">(.*?)</section>', text, re.S).group(1)
    assert "The run fitted the ramps with LIKELY" in section
    assert re.search(r"median \|difference\| = [0-9.]+ x ERR", section)
    assert section.count("<img") >= 3
    # a LIKELY fit has no fitopt product (nor has jwst's): not reported missing
    missing = re.search(r"missing: ([^<]*)", text)
    assert missing is None or "fitopt" not in missing.group(1)
    # without the chi-squared product (an OLS_C run's products) the comparison is not shown
    os.remove(out / f"{sim.root}_likely_chisq.fits")
    text = open(write_report(out, out=tmp_path / "plain.html"), encoding="utf-8").read()
    assert "fitted the ramps with LIKELY" not in text


def test_jit_warm_up_compiles_what_a_likely_run_uses(sim, tmp_path, monkeypatch):
    from ramp2slope.ramp_fitting import _likely_kernels
    from ramp2slope.runtime import jit_warmup, threads

    def signatures():
        return {name: set(getattr(_likely_kernels, name).signatures)
                for name in ("integration_kernel", "combine_kernel")}

    monkeypatch.setenv("RAMP2SLOPE_JIT_WARMUP", "0")
    refdir = os.path.dirname(sim.refs["mask"])
    _run(sim.uncal, refdir, tmp_path, {"ramp_fit": {"algorithm": "LIKELY"}}, True)
    used = signatures()
    assert all(used.values())
    jit_warmup.warm_ramp_fit_likely(sim.shape[0], sim.shape[1])
    assert signatures() == used
    # a LIKELY run's ramp_fit helper compiles these kernels, an OLS_C run's the OLS ones
    launched = []

    class Popen:
        def __init__(self, command, **kwargs):
            launched.append(command[3])

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(jit_warmup.subprocess, "Popen", Popen)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(jit_warmup, "_cache_is_empty", lambda kind: True)
    monkeypatch.delenv("RAMP2SLOPE_JIT_WARMUP")
    for likely, expected in ((True, "ramp_fit_likely"), (False, "ramp_fit")):
        jit_warmup.start((1, 6, 64, 64), streamed=True, kinds=["ramp_fit"], likely=likely)
        jit_warmup.wait("ramp_fit")
        assert launched.pop() == expected


def test_benchmark_likely_report():
    """The benchmark's LIKELY case reports ratios to jwst's step and PASS/MISS for >= 5x."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"
    spec = importlib.util.spec_from_file_location("bench_for_test", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    runs = {"ramp2slope_t1": dict(ok=True, threads=1, step_s=15.0, rss=1.2e9,
                                  vs_jwst=dict(same_nan=True, max_rel=0.0)),
            "ramp2slope_t2": dict(ok=True, threads=2, step_s=4.0, rss=1.2e9,
                                  vs_jwst=dict(same_nan=True, max_rel=0.0)),
            "jwst": dict(ok=True, threads=None, step_s=60.0, rss=1.3e9)}
    text, verdicts = bench.likely_report(dict(description="full frame", shape=[1, 10, 2048, 2048],
                                              load_start=1.0, load_end=1.0, runs=runs))
    assert [v["state"] for v in verdicts] == ["MISS", "PASS"]
    assert "4.0x (60.00 s / 15.00 s)" in text and "15.0x (60.00 s / 4.00 s)" in text
    assert "max rel diff 0.0e+00, NaNs identical" in text
    del runs["jwst"]
    _, verdicts = bench.likely_report(dict(description="full frame", shape=[1, 10, 2048, 2048],
                                           load_start=1.0, load_end=1.0, runs=runs))
    assert [v["state"] for v in verdicts] == ["n/a", "n/a"]


def test_cli_runs_likely(sim, tmp_path):
    from ramp2slope.cli import main

    refdir = os.path.dirname(sim.refs["mask"])
    out = tmp_path / "cli"
    assert main(["run", str(sim.uncal), "--refdir", refdir, "--output-dir", str(out),
                 "--steps.ramp_fit.algorithm=LIKELY", "--steps.ramp_fit.save_opt=true"]) == 0
    api = _run(sim.uncal, refdir, tmp_path / "api",
               {"ramp_fit": {"algorithm": "LIKELY", "save_opt": True}}, True)
    with fits.open(out / f"{sim.root}_rate.fits") as hdul:
        np.testing.assert_array_equal(hdul["SCI"].data, api.data)
    assert (out / f"{sim.root}_likely_chisq.fits").exists()
    assert not list(out.glob("*_fitopt.fits"))


def test_kept_planes_in_scratch_files_and_row_blocks(tmp_path, monkeypatch):
    """The streamed fitter's per-integration planes in scratch files, combined a few rows at a
    time, give the same rate as in memory at once."""
    from ramp2slope.pipeline.scratch import ScratchStore
    from ramp2slope.ramp_fitting import likely_fit

    exp = make_exposure(11, 3, 6, ny=20, nx=16)
    whole = fit_ramps_likely(**exp)
    monkeypatch.setattr(likely_fit, "FINISH_BLOCK_BYTES", 20 * 3 * 16 * 3)   # 3 rows a block
    store = ScratchStore(str(tmp_path), exp["data"].shape, memory_budget=0)
    try:
        fitter = likely_fit.LikelyRampFitter(
            exp["data"].shape, exp["gain"], exp["readnoise"], exp["pixeldq"],
            nframes=1, frame_time=exp["frame_time"],
            average_dark_current=exp["average_dark_current"], storage=store.extra)
        for i in range(3):
            fitter.fit_integration(exp["data"][i], exp["groupdq"][i])
        assert sorted(os.listdir(store.folder)) == sorted(
            [f"likely_{name}" for name, _ in likely_fit._KEPT] + ["groupdq.u8", "sci.f32"])
        rate = fitter.finish()
    finally:
        store.close()
    for name in ("data", "err", "dq", "var_poisson", "var_rnoise"):
        np.testing.assert_array_equal(getattr(rate, name), getattr(whole.rate, name))
    np.testing.assert_array_equal(fitter.chisq, whole.chisq)
