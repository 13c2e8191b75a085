"""Science truth: the slopes of a full pipeline run against the simulator's injected rates."""
import numpy as np
import pytest

from ramp2slope.datamodels import dqflags

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from ramp2slope.pipeline import Detector1Pipeline
    from ramp2slope.simulate import load_truth, simulate_exposure

    base = tmp_path_factory.mktemp("truth")
    # 4 outputs, so the side-pixel 1/f correction runs as on a full frame.
    sim = simulate_exposure(base / "sim", subarray="SUBGRISM256", ngroups=10, nints=2, seed=31)
    refdir = str(sim.refs["mask"].parent)
    rate = Detector1Pipeline(refdir=refdir, output_dir=str(base / "out"), save_results=True).run(
        str(sim.uncal))
    return rate, load_truth(sim.truth)


def _clean(rate, truth):
    """Science pixels with no injected defect, no saturation and no cosmic ray."""
    ny, nx = truth.rate.shape
    clean = np.ones((ny, nx), bool)
    clean[:4] = clean[-4:] = False
    clean[:, :4] = clean[:, -4:] = False
    clean &= truth.badpix == 0
    clean &= (truth.satgroup < 0).all(axis=0)
    hits = truth.cosmic_rays
    clean[hits["y"], hits["x"]] = False
    clean &= rate.dq == 0
    return clean


def test_slopes_are_unbiased_for_bright_pixels(run):
    rate, truth = run
    clean = _clean(rate, truth)
    bright = clean & (truth.rate > 5.0)
    assert bright.sum() > 500, "the simulation should have enough pixels above 5 DN/s"
    relative = (rate.data[bright] - truth.rate[bright]) / truth.rate[bright]
    assert abs(np.median(relative)) < 1e-3, np.median(relative)


def test_errors_describe_the_scatter(run):
    rate, truth = run
    clean = _clean(rate, truth) & (rate.err > 0)
    pull = (rate.data[clean] - truth.rate[clean]) / rate.err[clean]
    assert 0.9 <= np.std(pull) <= 1.15, np.std(pull)


def test_cosmic_rays_are_removed_from_the_slopes(run):
    rate, truth = run
    hits = truth.cosmic_rays
    # Far above the noise, and after the first group (a hit before the first read is just
    # signal, with no jump to see): the jump must be found and excluded.
    big = (hits["amplitude"] > 500) & (hits["group"] >= 1)
    y, x = hits["y"][big], hits["x"][big]
    usable = (truth.badpix[y, x] == 0) & (truth.satgroup[:, y, x] < 0).all(axis=0) & \
        (y >= 4) & (y < truth.rate.shape[0] - 4) & (x >= 4) & (x < truth.rate.shape[1] - 4)
    y, x = y[usable], x[usable]
    assert y.size > 20
    assert (rate.dq[y, x] & dqflags.pixel["JUMP_DET"]).all()
    pull = (rate.data[y, x] - truth.rate[y, x]) / rate.err[y, x]
    assert np.median(np.abs(pull)) < 1.5
