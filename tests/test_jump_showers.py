"""jump: MIRI shower flagging (find_showers) against jwst 3.0.0's JumpStep and stcal.

The simulated MIRI ramps (2 integrations x 10 groups x 128 x 136, read noise ~20 DN) carry
faint extended showers (elliptical disks of 25-60 DN appearing at one group, below the
two-point threshold in every pixel), ordinary cosmic rays, a bright star, saturation,
DO_NOT_USE pixels and groups (the first group everywhere, as after firstframe), a pixel with
an unusual DQ combination and reference-pixel columns.
"""
import warnings

import numpy as np
import pytest

from ramp2slope import datamodels
from ramp2slope.datamodels import dqflags
from ramp2slope.jump import STEP_DEFAULTS, JumpStep, detect_jumps, detect_jumps_in_blocks
from ramp2slope.jump import showers, twopoint

DNU = dqflags.group["DO_NOT_USE"]
SAT = dqflags.group["SATURATED"]
JUMP = dqflags.group["JUMP_DET"]
REF = dqflags.pixel["REFERENCE_PIXEL"]
TGROUP = 2.775
NY, NX = 128, 136


def _simulate(nints=2, ngroups=10, ny=NY, nx=NX, seed=0, nshowers=3, ncr=40, rn=20.0, gain=4.0):
    rng = np.random.default_rng(seed)
    gain2d = (gain + 0.2 * rng.standard_normal((ny, nx))).astype(np.float32)
    rn2d = (rn + 1.0 * rng.standard_normal((ny, nx))).astype(np.float32)
    yy, xx = np.mgrid[:ny, :nx]
    rate = rng.uniform(5, 40, (ny, nx))            # DN per group
    cy, cx = rng.uniform(10, ny - 10), rng.uniform(10, nx - 10)
    rate += 3000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 6.0)
    data = np.zeros((nints, ngroups, ny, nx), np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    for i in range(nints):
        dn = np.cumsum(rng.poisson(rate * gain, (ngroups, ny, nx)) / gain2d, axis=0)
        for _ in range(nshowers):
            g = rng.integers(2, ngroups - 1)
            sy, sx = rng.uniform(15, ny - 15), rng.uniform(15, nx - 15)
            r, axis_ratio = rng.uniform(8, 18), rng.uniform(0.6, 1.0)
            disk = ((yy - sy) / r) ** 2 + ((xx - sx) / (r * axis_ratio)) ** 2 < 1
            dn[g:] += rng.uniform(25.0, 60.0) * disk
        for _ in range(ncr):
            g, y, x = rng.integers(1, ngroups), rng.integers(0, ny), rng.integers(0, nx)
            dn[g:, y, x] += 10 ** rng.uniform(1.5, 3.5)
        dn += 10000 + rn2d / np.sqrt(2) * rng.standard_normal((ngroups, ny, nx))
        data[i] = dn
        gdq[i][np.maximum.accumulate(dn >= 60000, axis=0)] |= SAT
    pdq = np.zeros((ny, nx), np.uint32)
    pdq[:, :4] = REF
    pdq[:, -4:] = REF
    pdq[5, :4] |= dqflags.pixel["DO_NOT_USE"]     # not exactly REFERENCE_PIXEL any more
    for _ in range(10):
        gdq[:, :, rng.integers(0, ny), rng.integers(0, nx)] |= DNU
    gdq[:, 0] |= DNU
    gdq[:, :, 7, 9] = SAT | dqflags.group["CHARGELOSS"]   # not NaN-ed by stcal's equality test
    return data, gdq, pdq, gain2d, rn2d


def _stcal(data, gdq, pdq, gain, rn, **kw):
    """stcal's detect_jumps_data with showers, set up as jwst 3.0.0's JumpStep sets it up."""
    from stcal.jump.jump import detect_jumps_data
    from stcal.jump.jump_class import JumpData
    from stdatamodels.jwst.datamodels import dqflags as official

    p = {**STEP_DEFAULTS, "find_showers": True, **kw}
    jd = JumpData(gain2d=gain, rnoise2d=rn, dqflags=official.pixel)
    jd.init_arrays_from_arrays(data.copy(), gdq.copy(), pdq.copy())
    jd.nframes, jd.dt_group, jd.n_reads_groupdiff = 1, np.ones(1), np.ones(1) * 2
    jd.set_detection_settings(4.0, 6.0, 5.0, 1000, 10, True)
    jd.set_snowball_info(p["expand_large_events"], p["min_jump_area"], p["min_sat_area"],
                         p["expand_factor"], p["sat_required_snowball"],
                         p["min_sat_radius_extend"], p["sat_expand"] * 2, p["edge_size"])
    jd.set_shower_info(True, p["extend_snr_threshold"], p["extend_min_area"],
                       p["extend_inner_radius"], p["extend_outer_radius"],
                       p["extend_ellipse_expand_ratio"], p["min_diffs_single_pass"],
                       p["max_extended_radius"] * 2)
    jd.set_sigma_clipping_info(3, p["minimum_sigclip_groups"], True)
    jd.max_cores = "1"
    jd.mask_persist_grps_next_int = p["mask_snowball_core_next_int"]
    jd.persist_grps_flagged = int(p["snowball_time_masked_next_int"] // TGROUP)
    jd.grps_masked_after_shower = int(p["time_masked_after_shower"] // TGROUP)
    jd.max_shower_amplitude = jd.max_shower_amplitude * TGROUP
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return detect_jumps_data(jd)


def _ours(data, gdq, pdq, gain, rn, **kw):
    g, p = gdq.copy(), pdq.copy()
    res = detect_jumps(data, g, p, gain, rn, nframes=1, group_time=TGROUP,
                       **{"find_showers": True, **kw})
    return g, p, res


# ---------------------------------------------------------------------------- JumpStep oracle

def _set_meta(model, nints, ngroups):
    meta = model.meta
    meta.instrument.name, meta.instrument.detector = "MIRI", "MIRIMAGE"
    meta.observation.date, meta.observation.time = "2024-01-01", "00:00:00"
    meta.subarray.name = "BRIGHTSKY"
    meta.subarray.xstart, meta.subarray.ystart = 1, 1
    meta.subarray.xsize, meta.subarray.ysize = NX, NY
    meta.exposure.type, meta.exposure.readpatt = "MIR_IMAGE", "FASTR1"
    meta.exposure.nints, meta.exposure.ngroups = nints, ngroups
    meta.exposure.nframes, meta.exposure.groupgap = 1, 0
    meta.exposure.frame_time, meta.exposure.group_time = TGROUP, TGROUP
    return model


def _references(tmp_path, gain, rn):
    from stdatamodels.jwst import datamodels as dm

    paths = {}
    for name, cls, arr in (("gain", dm.GainModel, gain), ("readnoise", dm.ReadnoiseModel, rn)):
        ref = cls(data=arr.copy())
        meta = ref.meta
        meta.reftype = name.upper()
        meta.instrument.name, meta.instrument.detector = "MIRI", "MIRIMAGE"
        meta.author, meta.pedigree, meta.description = "test", "GROUND", "test reference"
        meta.useafter = "2000-01-01T00:00:00"
        meta.subarray.name = "BRIGHTSKY"
        meta.subarray.xstart, meta.subarray.ystart = 1, 1
        meta.subarray.xsize, meta.subarray.ysize = NX, NY
        paths[name] = str(tmp_path / f"{name}.fits")
        ref.save(paths[name])
    return paths


VARIANTS = {
    "defaults": {},
    # lower threshold and area, bigger expansion capped by max_extended_radius, fewer groups
    # masked after a shower, and a max_shower_amplitude that jwst 3.0.0 does not use
    "variant": dict(extend_snr_threshold=1.1, extend_min_area=60, extend_ellipse_expand_ratio=1.6,
                    max_extended_radius=12, time_masked_after_shower=8.0,
                    max_shower_amplitude=1000.0, extend_outer_radius=3.5),
}


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_matches_jwst_jump_step(tmp_path, name):
    pytest.importorskip("jwst")
    from jwst.jump import JumpStep as Theirs
    from stdatamodels.jwst import datamodels as dm

    params = VARIANTS[name]
    data, gdq, pdq, gain, rn = _simulate(seed=3 if name == "defaults" else 4)
    refs = _references(tmp_path, gain, rn)
    arrays = dict(data=data, groupdq=gdq, pixeldq=pdq)
    theirs_in = _set_meta(dm.RampModel(**{k: v.copy() for k, v in arrays.items()}), *data.shape[:2])
    ours_in = _set_meta(datamodels.RampModel(**{k: v.copy() for k, v in arrays.items()}),
                        *data.shape[:2])
    kwargs = dict(override_gain=refs["gain"], override_readnoise=refs["readnoise"],
                  find_showers=True, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = Theirs.call(theirs_in, **kwargs)
    ours = JumpStep(**kwargs).run(ours_in)
    np.testing.assert_array_equal(ours.groupdq, theirs.groupdq)
    np.testing.assert_array_equal(ours.pixeldq, theirs.pixeldq)
    assert ours.meta.cal_step.jump == theirs.meta.cal_step.jump == "COMPLETE"
    assert ours.meta.exposure.extended_emission_events == pytest.approx(
        theirs.meta.exposure.extended_emission_events, rel=1e-12)
    assert theirs.meta.exposure.extended_emission_events > 0
    assert ours.meta.exposure.primary_cosmic_rays == pytest.approx(
        theirs.meta.exposure.primary_cosmic_rays, rel=1e-12)
    # the showers add many JUMP flags to what the two-point pass finds
    plain, _, _ = _ours(data, gdq, pdq, gain, rn, find_showers=False)
    assert (ours.groupdq & JUMP).sum() > 2 * (plain & JUMP).sum()


# ---------------------------------------------------------------------------- stcal oracle

STCAL_CASES = {
    # name: (nints, ngroups, seed, parameters)
    "sigma_clip_5ints": (5, 8, 0, dict(minimum_sigclip_groups=5)),
    "sigma_clip_3ints": (3, 8, 1, dict(minimum_sigclip_groups=3, extend_snr_threshold=1.0)),
    "with_snowballs": (2, 8, 2, dict(expand_large_events=True)),
    "one_int_12_groups": (1, 12, 5, {}),
    # 1 x 10 groups with the first DO_NOT_USE: 8 differences, too few to look for showers
    "too_few_differences": (1, 10, 6, {}),
}


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(STCAL_CASES))
def test_matches_stcal(name):
    pytest.importorskip("stcal")
    nints, ngroups, seed, params = STCAL_CASES[name]
    data, gdq, pdq, gain, rn = _simulate(nints, ngroups, seed=seed)
    gdq_ref, pdq_ref, ncr_ref, nextended_ref = _stcal(data, gdq, pdq, gain, rn, **params)
    g, p, res = _ours(data, gdq, pdq, gain, rn, **params)
    np.testing.assert_array_equal(g, gdq_ref)
    np.testing.assert_array_equal(p, pdq_ref)
    assert res.number_primary_crs == ncr_ref
    assert res.number_showers == nextended_ref
    assert (res.number_showers > 0) == (name != "too_few_differences")


def test_large_changes_of_the_mean_difference_are_restored(monkeypatch):
    """The amplitude test (6 DN x TGROUP, compared with electrons) undoes the flags of
    pixels whose mean difference moves too much: without it more pixels stay flagged."""
    data, gdq, pdq, gain, rn = _simulate(seed=3)
    with_test, _, res = _ours(data, gdq, pdq, gain, rn)
    monkeypatch.setattr(showers, "STCAL_SHOWER_AMPLITUDE", 1e30)
    without_test, _, res2 = _ours(data, gdq, pdq, gain, rn)
    assert res.number_showers == res2.number_showers > 0
    assert ((with_test & JUMP) <= (without_test & JUMP)).all()
    assert (with_test & JUMP).sum() < (without_test & JUMP).sum()
    # reference pixels never get shower flags
    plain, _, _ = _ours(data, gdq, pdq, gain, rn, find_showers=False)
    ref = pdq == REF
    np.testing.assert_array_equal(with_test[:, :, ref], plain[:, :, ref])


# ---------------------------------------------------------------------------- blocks

class _Store:
    """An in-memory store with the protocol of detect_jumps_in_blocks (showers included)."""

    def __init__(self, data, gdq):
        self.data, self.gdq, self.shape = data, gdq, data.shape

    def read_rows(self, y0, y1, data, groupdq):
        if data is not None:
            data[...] = self.data[:, :, y0:y1]
        groupdq[...] = self.gdq[:, :, y0:y1]

    def write_gdq_rows(self, y0, groupdq):
        self.gdq[:, :, y0:y0 + groupdq.shape[2]] = groupdq

    def read_gdq(self, i, out):
        out[...] = self.gdq[i]

    def write_gdq(self, i, groupdq):
        self.gdq[i] = groupdq

    def read_integration(self, i, data=None):
        data[...] = self.data[i]


@pytest.mark.parametrize("params, block_rows, nints", [({}, 17, 2),
                                                       (dict(minimum_sigclip_groups=3), 40, 3)])
def test_blocks_path_matches_whole_array(params, block_rows, nints):
    data, gdq, pdq, gain, rn = _simulate(nints, 8 if nints == 3 else 10, seed=7)
    whole, p_whole, res = _ours(data, gdq, pdq, gain, rn, **params)
    blocks_gdq, p_blocks = gdq.copy(), pdq.copy()
    got = detect_jumps_in_blocks(_Store(data, blocks_gdq), p_blocks, gain, rn, nframes=1,
                                 group_time=TGROUP, dnu_table=twopoint.dnu_planes(gdq),
                                 block_rows=block_rows, find_showers=True, **params)
    np.testing.assert_array_equal(blocks_gdq, whole)
    np.testing.assert_array_equal(p_blocks, p_whole)
    assert got == res and res.number_showers > 0


@pytest.mark.parametrize("file_rows", [None, 33])   # files in blocks of other rows, or the same
def test_blocks_path_with_scratch_files(tmp_path, file_rows):
    from ramp2slope.pipeline.scratch import ScratchStore

    data, gdq, pdq, gain, rn = _simulate(seed=8)
    whole, _, res = _ours(data, gdq, pdq, gain, rn)
    store = ScratchStore(str(tmp_path), data.shape, memory_budget=0, block_rows=file_rows)
    try:
        for i in range(data.shape[0]):
            store.write_integration(i, data[i], gdq[i])
        got = detect_jumps_in_blocks(store, pdq.copy(), gain, rn, nframes=1, group_time=TGROUP,
                                     dnu_table=twopoint.dnu_planes(gdq), block_rows=33,
                                     find_showers=True)
        out = np.empty(gdq.shape[1:], np.uint8)
        for i in range(data.shape[0]):
            store.read_gdq(i, out)
            np.testing.assert_array_equal(out, whole[i])
    finally:
        store.close()
    assert got == res


# ---------------------------------------------------------------------------- convolution

@pytest.mark.oracle
def test_direct_convolution_matches_stcal_fft_convolution():
    """The direct ring convolution gives stcal's thresholded map, and the exact fallback is
    stcal's convolve_fast itself."""
    pytest.importorskip("stcal")
    from astropy.convolution import Ring2DKernel
    from stcal.jump.jump import convolve_fast

    rng = np.random.default_rng(0)
    ratio = np.abs(rng.standard_normal((60, 70))).astype(np.float32)
    ratio[rng.random(ratio.shape) < 0.2] = np.nan
    ratio[20:30, 30:40] = np.nan                  # pixels whose whole ring is NaN
    ratio[40:55, 5:25] += 1.0                     # extended emission
    kernel = Ring2DKernel(1, 2.6).array
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = (convolve_fast(ratio.copy(), kernel) > 1.2).astype(np.uint8)
    np.testing.assert_array_equal(showers._smooth_above_like_stcal(ratio, kernel, 1.2), expected)
    flagger = showers.ShowerFlagger(np.zeros(ratio.shape, np.uint32),
                                    np.ones(ratio.shape, np.float32), group_time=TGROUP,
                                    extend_snr_threshold=1.2, extend_min_area=90,
                                    extend_inner_radius=1, extend_outer_radius=2.6,
                                    extend_ellipse_expand_ratio=1.1, time_masked_after_shower=15,
                                    max_extended_radius=200)
    mask = np.empty(ratio.shape, np.uint8)
    near = np.zeros(ratio.shape[0], np.int64)
    showers._smooth_above(ratio, flagger.dy, flagger.dx, flagger.weights, 1.2, flagger.min_norm,
                          1e-9, mask, near)
    np.testing.assert_array_equal(mask, expected)
    assert expected.sum() > 100 and near.sum() == 0


def test_step_says_when_no_mode_can_run(tmp_path, caplog):
    """Too few usable groups for any mode: the log says so (stcal's -99 count goes into
    PRIMECRS only, as jwst writes it), nothing is flagged, and the step is COMPLETE."""
    pytest.importorskip("stdatamodels")
    data, gdq, pdq, gain, rn = _simulate(nints=2, ngroups=4, nshowers=0, seed=5)
    gdq[:, :2] |= DNU                  # two usable groups in each integration: no mode runs
    refs = _references(tmp_path, gain, rn)
    model = _set_meta(datamodels.RampModel(data=data, groupdq=gdq.copy(), pixeldq=pdq),
                      *data.shape[:2])
    with caplog.at_level("INFO", logger="ramp2slope"):
        result = JumpStep(override_gain=refs["gain"], override_readnoise=refs["readnoise"]).run(model)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("jump: no jump")]
    assert said == ["jump: no jump detection: too few usable groups for any mode (minimum_groups "
                    "3, minimum_sigclip_groups 100); no jumps flagged, 0 snowballs, 0 showers"]
    assert not any("-99" in r.getMessage() for r in caplog.records)
    assert not (result.groupdq & JUMP).any()
    assert result.meta.cal_step.jump == "COMPLETE"
    assert result.meta.exposure.primary_cosmic_rays < 0
