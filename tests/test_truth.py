"""Science truth: a full pipeline run against the simulator's injected rates and cosmic rays."""
import types
import warnings

import numpy as np
import pytest

from ramp2slope import datamodels
from ramp2slope.datamodels import dqflags
from jump_reference import reference_iterative

pytestmark = pytest.mark.slow

JUMP = dqflags.group["JUMP_DET"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from ramp2slope.pipeline import Detector1Pipeline
    from ramp2slope.simulate import load_truth, simulate_exposure

    base = tmp_path_factory.mktemp("truth")
    # 4 outputs, so the side-pixel 1/f correction runs as on a full frame.
    sim = simulate_exposure(base / "sim", subarray="SUBGRISM256", ngroups=10, nints=2, seed=31)
    out = base / "out"
    rate = Detector1Pipeline(refdir=str(sim.refs["mask"].parent), output_dir=str(out),
                             save_results=True, steps={"jump": {"save_results": True}}
                             ).run(str(sim.uncal))
    return types.SimpleNamespace(rate=rate, truth=load_truth(sim.truth), refs=sim.refs,
                                 jump=datamodels.open(str(out / f"{sim.root}_jump.fits")))


def _science(shape):
    inner = np.zeros(shape, bool)
    inner[4:-4, 4:-4] = True
    return inner


def _clean(run):
    """Science pixels with no injected defect, no saturation and no cosmic ray."""
    truth = run.truth
    clean = _science(truth.rate.shape) & (truth.badpix == 0) & (truth.satgroup < 0).all(axis=0)
    clean[truth.cosmic_rays["y"], truth.cosmic_rays["x"]] = False
    return clean & (run.rate.dq == 0)


def test_slopes_are_unbiased_for_bright_pixels(run):
    bright = _clean(run) & (run.truth.rate > 5.0)
    assert bright.sum() > 500, "the simulation should have enough pixels above 5 DN/s"
    relative = (run.rate.data[bright] - run.truth.rate[bright]) / run.truth.rate[bright]
    assert abs(np.median(relative)) < 1e-3, np.median(relative)


def test_errors_describe_the_scatter(run):
    clean = _clean(run) & (run.rate.err > 0)
    pull = (run.rate.data[clean] - run.truth.rate[clean]) / run.rate.err[clean]
    assert 0.9 <= np.std(pull) <= 1.15, np.std(pull)


def _noise_per_difference(run):
    """Each pixel's expected noise on one group difference, in DN and in electrons."""
    from ramp2slope.references import load_gain, load_readnoise

    gain = load_gain(str(run.refs["gain"]), run.jump).data.astype(np.float64)
    rn_cds = load_readnoise(str(run.refs["readnoise"]), run.jump).data.astype(np.float64)
    signal = np.clip((run.truth.rate + run.truth.dark_rate) * run.jump.meta.exposure.group_time, 0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma_dn = np.sqrt(rn_cds ** 2 + signal / gain)
    return sigma_dn, gain, rn_cds, signal


def test_jump_completeness_above_10_sigma(run):
    truth, jump = run.truth, (run.jump.groupdq & JUMP) != 0
    sigma_dn, gain, _, _ = _noise_per_difference(run)
    hits = truth.cosmic_rays
    y, x, g, i = hits["y"], hits["x"], hits["group"], hits["integration"]
    usable = (g >= 1) & _science(truth.rate.shape)[y, x] & (truth.badpix[y, x] == 0) & \
        (truth.satgroup[i, y, x] < 0) & (gain[y, x] > 0)
    strong = usable & (hits["amplitude"] > 10 * sigma_dn[y, x])
    assert strong.sum() > 100
    found = jump[i[strong], g[strong], y[strong], x[strong]]
    assert found.mean() >= 0.99, found.mean()


def test_jump_false_positive_rate_matches_the_threshold(run):
    """False positives on clean pixels versus the rate the iterative rule gives on pure noise
    with each pixel's own read noise and signal (a Monte Carlo of the rule itself).

    With 18 differences pooled per pixel, the default 4-sigma threshold gives only ~3e-6
    false positives per difference (a few tens on this exposure: too few to measure a rate
    to 20 %), so the step is re-run at 3 sigma on the same ramps (the JUMP flags of the first
    run removed), where the rate is ~2e-4 and the counts are in the thousands.
    """
    from ramp2slope.jump import JumpStep

    threshold = 3.0
    ramp = run.jump.copy()
    ramp.groupdq &= np.uint8(~JUMP & 0xFF)
    ramp = JumpStep(rejection_threshold=threshold, override_gain=str(run.refs["gain"]),
                    override_readnoise=str(run.refs["readnoise"])).run(ramp)
    truth, jump = run.truth, (ramp.groupdq & JUMP) != 0
    sigma_dn, gain, rn_cds, signal = _noise_per_difference(run)
    hit = np.zeros(truth.rate.shape, bool)
    hit[truth.cosmic_rays["y"], truth.cosmic_rays["x"]] = True
    near = hit.copy()
    near[1:] |= hit[:-1]
    near[:-1] |= hit[1:]
    near[:, 1:] |= hit[:, :-1]
    near[:, :-1] |= hit[:, 1:]
    clean = _science(hit.shape) & ~near & (truth.badpix == 0) & (truth.satgroup < 0).all(axis=0) \
        & (gain > 0) & (truth.rate < 1.0)
    nints, ngroups = jump.shape[:2]
    ours = jump[:, 1:][:, :, clean].sum() / (clean.sum() * nints * (ngroups - 1))

    # The differences carry a little more noise than the READNOISE reference says (1/f
    # residuals after refpix, reference-pixel estimate noise): measure that excess on the
    # clean pixels themselves and put it into the Monte Carlo (the rule still uses READNOISE).
    diffs = np.diff(ramp.data[:, :, clean], axis=1)
    z = (diffs - np.median(diffs, axis=(0, 1))) / sigma_dn[clean]
    excess = max(1.0, 1.4826 * np.median(np.abs(z - np.median(z))))
    assert 0.95 <= excess < 1.3, excess

    rng = np.random.default_rng(5)
    sample = rng.choice(np.flatnonzero(clean), 200_000)
    g_e, rn_e = gain.ravel()[sample], rn_cds.ravel()[sample] * gain.ravel()[sample]
    mean_e = signal.ravel()[sample] * g_e
    per_int = []
    for _ in range(nints):
        reads = np.cumsum(rng.poisson(mean_e, (ngroups, sample.size)), axis=0) + \
            excess * rn_e / np.sqrt(2) * rng.standard_normal((ngroups, sample.size))
        per_int.append(np.diff(reads, axis=0))
    # The statistics are pooled over the integrations, as in the step.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = reference_iterative(np.concatenate(per_int), rn_e ** 2, threshold).mean()
    assert 0.8 <= ours / expected <= 2.0, (ours, expected)


def test_cosmic_rays_are_removed_from_the_slopes(run):
    truth, rate = run.truth, run.rate
    hits = truth.cosmic_rays
    # Far above the noise, and after the first group (a hit before the first read is just
    # signal, with no jump to see): the jump must be found and excluded.
    big = (hits["amplitude"] > 500) & (hits["group"] >= 1)
    y, x = hits["y"][big], hits["x"][big]
    usable = (truth.badpix[y, x] == 0) & (truth.satgroup[:, y, x] < 0).all(axis=0) & \
        _science(truth.rate.shape)[y, x]
    y, x = y[usable], x[usable]
    assert y.size > 20
    assert (rate.dq[y, x] & dqflags.pixel["JUMP_DET"]).all()
    pull = (rate.data[y, x] - truth.rate[y, x]) / rate.err[y, x]
    assert np.median(np.abs(pull)) < 1.5
