"""OLS_C ramp fitting of MIRI ramps: stcal drops the groups that are DO_NOT_USE in every pixel.

For MIRI (instrument name "MIRI", more than one group) stcal's ``discard_miri_groups`` cuts the
leading all-DO_NOT_USE groups and a trailing one (the firstframe/lastframe groups) off the ramp
before fitting, clears JUMP in the new first group, and fits nothing when fewer than 2 groups
are left. The tests run jwst's RampFitStep and ours on MIRI ramps flagged that way (with
jumps, saturation, persistence and CHARGELOSS), check that the cut changes the products (so a
plain fit would be wrong), and that the streaming fitter gives the whole-exposure result.
"""
import numpy as np
import pytest

from ramp2slope import datamodels
from ramp2slope.datamodels import dqflags
from ramp2slope.errors import Ramp2SlopeError
from ramp2slope.ramp_fitting import RampFitStep
from ramp2slope.ramp_fitting.ols_fit import all_dnu_groups, fit_ramps, group_range, miri_kept_groups
from test_ramp_fitting import (SEGMENT_FIELDS, assert_matches, make_exposure,
                               stcal_dq_with_nan_flagged)

NY, NX = 32, 40
DNU = dqflags.group["DO_NOT_USE"]
JUMP = dqflags.group["JUMP_DET"]
SAT = dqflags.group["SATURATED"]
PERS = dqflags.group["PERSISTENCE"]
TFRAME = 2.775
SUBARRAY = "BRIGHTSKY"


def _exposure(seed, nints, ngroups, lead=1, trail=1, chargeloss=False):
    """A MIRI-like exposure: the first ``lead`` and last ``trail`` groups DO_NOT_USE everywhere,
    JUMP in ~5 % of the pixels of the first group kept (it must be ignored there)."""
    exp = make_exposure(seed, nints, ngroups, ny=NY, nx=NX, tframe=TFRAME, chargeloss=chargeloss)
    gdq = exp["groupdq"]
    gdq[:, :lead] |= DNU
    if trail:
        gdq[:, ngroups - trail:] |= DNU
    rng = np.random.default_rng(seed + 1000)
    if lead < ngroups:
        gdq[:, lead][rng.random((nints, NY, NX)) < 0.05] |= JUMP
    exp["drop_frames1"] = None
    return exp


def _set_meta(model, nints, ngroups):
    meta = model.meta
    meta.instrument.name = "MIRI"
    meta.instrument.detector = "MIRIMAGE"
    meta.observation.date = "2024-01-01"
    meta.observation.time = "00:00:00"
    meta.subarray.name = SUBARRAY
    meta.subarray.xstart, meta.subarray.ystart = 1, 1
    meta.subarray.xsize, meta.subarray.ysize = NX, NY
    meta.exposure.type = "MIR_IMAGE"
    meta.exposure.readpatt = "FASTR1"
    meta.exposure.nints, meta.exposure.ngroups = nints, ngroups
    meta.exposure.nframes, meta.exposure.groupgap = 1, 0
    meta.exposure.frame_time, meta.exposure.group_time = TFRAME, TFRAME
    meta.filename = "miri_ramp.fits"   # names the fitopt products
    return model


def _models(exp):
    from stdatamodels.jwst import datamodels as dm

    nints, ngroups = exp["data"].shape[:2]
    arrays = dict(data=exp["data"].copy(), groupdq=exp["groupdq"].copy(),
                  pixeldq=exp["pixeldq"].copy())
    theirs = _set_meta(dm.RampModel(**{k: v.copy() for k, v in arrays.items()}), nints, ngroups)
    ours = _set_meta(datamodels.RampModel(**arrays), nints, ngroups)
    return theirs, ours


def _references(tmp_path, exp):
    from stdatamodels.jwst import datamodels as dm

    paths = {}
    for name, cls, data in (("gain", dm.GainModel, exp["gain"]),
                            ("readnoise", dm.ReadnoiseModel, exp["readnoise"])):
        ref = cls(data=data.copy())
        meta = ref.meta
        meta.reftype = name.upper()
        meta.instrument.name, meta.instrument.detector = "MIRI", "MIRIMAGE"
        meta.author, meta.pedigree, meta.description = "test", "GROUND", "test reference"
        meta.useafter = "2000-01-01T00:00:00"
        meta.subarray.name = SUBARRAY
        meta.subarray.xstart, meta.subarray.ystart = 1, 1
        meta.subarray.xsize, meta.subarray.ysize = NX, NY
        paths[name] = str(tmp_path / f"{name}.fits")
        ref.save(paths[name])
    return paths


def _assert_products_match(ours, theirs):
    # SCI to float32 rounding (1e-5 relative for 99.99 % of the pixels, as the NIR oracle
    # tests), variances 1e-4, DQ identical (ours adds DO_NOT_USE to every NaN rate)
    assert_matches("slope", ours.data, theirs.data, rtol=1e-5, atol=1e-6, frac=0.9999)
    assert_matches("dq", ours.dq, stcal_dq_with_nan_flagged(theirs.dq, theirs.data), rtol=0)
    for name in ("err", "var_poisson", "var_rnoise"):
        assert_matches(name, getattr(ours, name), getattr(theirs, name), rtol=1e-4)


def _run_both(tmp_path, exp, **params):
    from jwst.ramp_fitting import RampFitStep as Theirs

    refs = _references(tmp_path, exp)
    theirs, ours = _models(exp)
    kwargs = dict(override_gain=refs["gain"], override_readnoise=refs["readnoise"], **params)
    (tmp_path / "theirs").mkdir()
    (tmp_path / "ours").mkdir()
    their_rate, their_ints = Theirs.call(theirs, output_dir=str(tmp_path / "theirs"), **kwargs)
    result = RampFitStep(output_dir=str(tmp_path / "ours"), **kwargs).run(ours)
    return (their_rate, their_ints), result, refs


# ---------------------------------------------------------------------------- oracle

@pytest.mark.oracle
@pytest.mark.parametrize("nints, ngroups, lead, trail, chargeloss", [
    (1, 8, 1, 1, False),    # firstframe + lastframe, one integration (single-pass fit)
    (3, 6, 1, 1, False),    # several integrations
    (2, 7, 2, 1, True),     # two leading groups dropped, CHARGELOSS recomputation
    (2, 5, 0, 1, False),    # lastframe only: nothing dropped at the start, JUMP kept
])
def test_matches_jwst_ramp_fit_step(tmp_path, nints, ngroups, lead, trail, chargeloss):
    from stdatamodels.jwst import datamodels as dm

    exp = _exposure(10 * nints + ngroups, nints, ngroups, lead, trail, chargeloss)
    (their_rate, their_ints), result, _ = _run_both(tmp_path, exp, save_opt=True)
    rate, rateints = result
    assert rate.meta.cal_step.ramp_fit == their_rate.meta.cal_step.ramp_fit == "COMPLETE"
    _assert_products_match(rate, their_rate)
    _assert_products_match(rateints, their_ints)
    (their_opt,) = (tmp_path / "theirs").glob("*fitopt.fits")
    (our_opt,) = (tmp_path / "ours").glob("*fitopt.fits")
    with dm.open(str(their_opt)) as theirs, dm.open(str(our_opt)) as ours:
        for name in SEGMENT_FIELDS + ("pedestal", "crmag"):
            tol = dict(rtol=1e-5, atol=1e-6, frac=0.9999) if name == "slope" else dict(rtol=1e-4)
            assert_matches("fitopt " + name, getattr(ours, name), getattr(theirs, name), **tol)
    assert np.any(rate.dq & SAT) and np.any(np.isfinite(rate.data))


@pytest.mark.oracle
def test_too_few_groups_left_gives_no_products_like_jwst(tmp_path):
    # 3 groups, the first and last DO_NOT_USE: one group is left, stcal fits nothing
    exp = _exposure(5, 2, 3)
    (their_rate, their_ints), result, _ = _run_both(tmp_path, exp)
    assert their_rate is None and their_ints is None
    assert result is None


@pytest.mark.oracle
def test_likely_has_no_miri_specifics(tmp_path):
    # stcal drops groups only in its OLS path: LIKELY fits the whole MIRI ramp (skipping the
    # DO_NOT_USE groups as for any instrument)
    exp = _exposure(7, 2, 7)
    (their_rate, their_ints), (rate, rateints), _ = _run_both(tmp_path, exp, algorithm="LIKELY")
    tol = dict(rtol=2e-7, atol=0.0, frac=0.995)   # test_likely's tolerance
    for ours, theirs in ((rate, their_rate), (rateints, their_ints)):
        assert_matches("slope", ours.data, theirs.data, **tol)
        assert_matches("dq", ours.dq, stcal_dq_with_nan_flagged(theirs.dq, theirs.data), rtol=0)
        for name in ("err", "var_poisson", "var_rnoise"):
            assert_matches(name, getattr(ours, name), getattr(theirs, name), **tol)


# ---------------------------------------------------------------------------- the cut matters

def test_dropping_groups_changes_the_products():
    """The same flagged ramp fitted as MIRI and as another instrument: the cut changes slopes,
    variances, DQ (JUMP ignored in the new first group, PERSISTENCE/SAT of dropped groups) and
    the pedestal (extrapolated to the new first group)."""
    exp = _exposure(2, 3, 6)
    miri = fit_ramps(**exp, save_opt=True, instrument="MIRI")
    other = fit_ramps(**exp, save_opt=True, instrument="NIRCAM")
    assert not np.array_equal(miri.rate.dq, other.rate.dq)
    assert np.any(~np.isclose(miri.rateints.data, other.rateints.data, equal_nan=True))
    assert np.any(~np.isclose(miri.optional.pedestal, other.optional.pedestal))
    assert miri.optional.crmag.shape[1] <= other.optional.crmag.shape[1]


def test_kept_groups_rules():
    t, f = True, False
    assert miri_kept_groups([t, f, f, f, t]) == (1, 4)
    assert miri_kept_groups([t, t, f, f, t, t]) == (2, 5)   # one trailing group only
    assert miri_kept_groups([f, f, f]) == (0, 3)
    assert miri_kept_groups([t, f, t]) is None                # one group left
    assert miri_kept_groups([t, t, t]) is None
    # one-good-group suppression and firstgroup/lastgroup count as DO_NOT_USE
    gdq = np.zeros((4, 2, 3), np.uint8)
    gdq[0] = DNU
    gdq[2:, 0, 0] = SAT
    gdq[1:, 1, 2] = DNU | SAT                  # only group 0 good: suppressed, every group DNU
    assert list(all_dnu_groups(gdq)) == [True, False, False, False]
    assert list(all_dnu_groups(gdq, lastgroup=2)) == [True, False, False, True]


def _all_dnu_reference(gdq, first, last, suppress):
    """The rule of all_dnu_groups written with whole-array numpy: (k, ngroups, ny, nx) in."""
    g = gdq.astype(np.uint32)
    g[:, :first] |= DNU
    g[:, last + 1:] |= DNU
    if suppress:
        one_good = ((g & ~np.uint32(PERS)) == 0).sum(axis=1) == 1
        g |= np.where(one_good, np.uint32(DNU), np.uint32(0))[:, np.newaxis]
    return np.all(g & DNU, axis=(0, 2, 3))


@pytest.mark.parametrize("seed", range(6))
def test_all_dnu_groups_against_a_whole_array_rule(seed):
    rng = np.random.default_rng(seed)
    nints, ngroups, ny, nx = 3, 6, 5, 9
    flags = np.array([0, DNU, SAT, PERS, DNU | SAT, JUMP, DNU | PERS], np.uint8)
    gdq = flags[rng.integers(0, flags.size, (nints, ngroups, ny, nx))]
    gdq[:, rng.integers(0, ngroups)] = DNU               # some group DO_NOT_USE everywhere
    gdq[rng.integers(0, nints), rng.integers(0, ngroups), :, :] |= DNU
    good = rng.random((nints, ngroups, ny, nx)) < 0.35
    gdq[good] = 0
    # group 3 is DO_NOT_USE everywhere but in a ramp whose only other good group is group 0:
    # all-DNU when that ramp is suppressed, which it is when group 0 is out of range
    gdq[:, 3] |= DNU
    gdq[1, :, 2, 4] = DNU
    gdq[1, 3, 2, 4] = PERS                               # PERSISTENCE alone is good
    gdq[1, 0, 2, 4] = 0
    # group 5: DO_NOT_USE everywhere but in the last pixel of the last row
    gdq[:, 5] |= DNU
    gdq[2, 5, ny - 1, nx - 1] = 0
    gdq[2, 4, ny - 1, nx - 1] = 0
    for first, last in ((None, None), (1, None), (None, 3), (2, 4)):
        lo, hi = group_range(ngroups, first, last)
        for suppress in (True, False):
            expected = _all_dnu_reference(gdq, lo, hi, suppress)
            assert expected[3] == (suppress and lo >= 1 and hi >= 3)
            assert expected[5] == (hi < 5)
            got = all_dnu_groups(gdq, first, last, suppress)      # the run of integrations
            np.testing.assert_array_equal(got, expected)
            each = np.logical_and.reduce([all_dnu_groups(gdq[i], first, last, suppress)
                                          for i in range(nints)])
            np.testing.assert_array_equal(each, expected)


# ---------------------------------------------------------------------------- streaming

def _streamed(step, model, exp, dnu_table):
    fitter = step.begin_fit(model, False, dnu_table=dnu_table)
    data, gdq = exp["data"], exp["groupdq"]
    for i in range(data.shape[0]):
        fitter.add_median_rate(data[i], gdq[i])
    planes = [fitter.fit_integration(data[i], gdq[i]).rateints for i in range(data.shape[0])]
    return fitter.finish(), planes


def test_streaming_fitter_matches_whole_exposure(tmp_path):
    exp = _exposure(3, 3, 7)
    refs = _references(tmp_path, exp)
    step = RampFitStep(override_gain=refs["gain"], override_readnoise=refs["readnoise"])
    _, model = _models(exp)
    rate, rateints = step.run(model.copy())
    # the table the streaming pipeline keeps: groups DO_NOT_USE in every pixel, per integration
    table = np.all(exp["groupdq"] & DNU, axis=(2, 3))
    stream_rate, planes = _streamed(step, model, exp, table)
    for name in ("data", "err", "dq", "var_poisson", "var_rnoise"):
        np.testing.assert_array_equal(getattr(stream_rate, name), getattr(rate, name))
        for i, plane in enumerate(planes):
            np.testing.assert_array_equal(getattr(plane, name), getattr(rateints, name)[i])
    # without the table the fitter cannot know the groups to drop before its first pass
    with pytest.raises(Ramp2SlopeError, match="MIRI ramp fitting"):
        _streamed(step, model, exp, None)
