"""dark_current for MIRI: 4-D darks (one dark ramp per integration).

Oracle comparisons run jwst's DarkCurrentStep and ours on the same small random MIRI ramps
with a DarkMIRIModel written to tmp_path: the direct case (dark NFRAMES/GROUPGAP equal the
science ones, as MIRI uses), science integrations beyond the dark's, an extrapolated dark, a
frame-averaged dark, later segments (INTSTART > 1), the dark_output product, and one
integration at a time (as the streaming pipeline hands them) against the whole exposure.
"""
import numpy as np
import pytest

from ramp2slope import datamodels
from ramp2slope.dark_current import DarkCurrentStep
from ramp2slope.dark_current.dark_current import collapse_dark_dq, dark_integration, subtract_dark
from ramp2slope.datamodels import dqflags
from ramp2slope.errors import ReferenceFileError

NY, NX = 32, 40
SUBARRAY = "BRIGHTSKY"
READPATT = "FASTR1"
HOT = dqflags.pixel["HOT"]
WARM = dqflags.pixel["WARM"]


def _ramp(seed, nints, ngroups):
    rng = np.random.default_rng(seed)
    shape = (nints, ngroups, NY, NX)
    data = rng.normal(1000.0, 50.0, shape).astype(np.float32)
    groupdq = np.where(rng.random(shape) < 0.03, dqflags.group["JUMP_DET"], 0).astype(np.uint8)
    pixeldq = np.where(rng.random((NY, NX)) < 0.05, dqflags.pixel["DO_NOT_USE"], 0).astype(np.uint32)
    return data, groupdq, pixeldq


def _set_meta(model, nints, ngroups, nframes=1, groupgap=0, integration_start=None,
              integration_end=None):
    meta = model.meta
    meta.instrument.name = "MIRI"
    meta.instrument.detector = "MIRIMAGE"
    meta.observation.date = "2024-01-01"
    meta.observation.time = "00:00:00"
    meta.subarray.name = SUBARRAY
    meta.subarray.xstart, meta.subarray.ystart = 1, 1
    meta.subarray.xsize, meta.subarray.ysize = NX, NY
    meta.exposure.readpatt = READPATT
    meta.exposure.nints = nints if integration_end is None else integration_end
    meta.exposure.ngroups = ngroups
    meta.exposure.nframes = nframes
    meta.exposure.groupgap = groupgap
    meta.exposure.frame_time = 2.775
    meta.exposure.group_time = 2.775 * (nframes + groupgap)
    meta.exposure.integration_start = integration_start
    meta.exposure.integration_end = integration_end
    return model


def _both(arrays, nints, ngroups, **meta):
    from stdatamodels.jwst import datamodels as dm

    data, groupdq, pixeldq = arrays
    theirs = dm.RampModel(data=data.copy(), groupdq=groupdq.copy(), pixeldq=pixeldq.copy())
    ours = datamodels.RampModel(data=data.copy(), groupdq=groupdq.copy(), pixeldq=pixeldq.copy())
    return _set_meta(theirs, nints, ngroups, **meta), _set_meta(ours, nints, ngroups, **meta)


def _dark_arrays(seed, dark_nints, dark_ngroups, dq_planes=1):
    rng = np.random.default_rng(seed)
    shape = (dark_nints, dark_ngroups, NY, NX)
    # a rising dark ramp per integration, different for each integration
    ramp = np.arange(1, dark_ngroups + 1, dtype=np.float32)[None, :, None, None]
    level = (np.arange(dark_nints, dtype=np.float32) * 3.0 + 1.0)[:, None, None, None]
    data = (ramp * level + rng.normal(0.0, 2.0, shape)).astype(np.float32)
    data[:, :, 3, 4] = np.nan                      # NaN planes count as 0
    data[0, 1, 5, 6] = np.nan
    dq = np.zeros((dark_nints, dq_planes, NY, NX), np.uint32)
    for i in range(dark_nints):
        dq[i, 0][rng.random((NY, NX)) < 0.04] = HOT if i % 2 == 0 else WARM
    if dq_planes > 1:
        dq[:, 1:] = dqflags.pixel["DEAD"]    # not the plane stcal reads
    return data, dq


def _write_dark(path, data, dq, nframes=1, groupgap=0, ngroups=None):
    from stdatamodels.jwst import datamodels as dm

    ref = dm.DarkMIRIModel(data=data, dq=dq, err=np.zeros_like(data))
    meta = ref.meta
    meta.reftype = "DARK"
    meta.instrument.name = "MIRI"
    meta.instrument.detector = "MIRIMAGE"
    meta.author, meta.pedigree, meta.description = "test", "GROUND", "test reference"
    meta.useafter = "2000-01-01T00:00:00"
    meta.exposure.readpatt = READPATT
    meta.exposure.nframes = nframes
    meta.exposure.groupgap = groupgap
    meta.exposure.ngroups = data.shape[1] if ngroups is None else ngroups
    meta.exposure.nints = data.shape[0]
    meta.subarray.name = SUBARRAY
    meta.subarray.xstart, meta.subarray.ystart = 1, 1
    meta.subarray.xsize, meta.subarray.ysize = NX, NY
    ref.save(str(path))
    return str(path)


def _run_both(tmp_path, arrays, nints, ngroups, dark_path, dark_output=False, **meta):
    from jwst.dark_current import DarkCurrentStep as Theirs

    theirs, ours = _both(arrays, nints, ngroups, **meta)
    kwargs = {"override_dark": dark_path}
    their_out = our_out = None
    if dark_output:
        their_out, our_out = str(tmp_path / "theirs_dark.fits"), str(tmp_path / "ours_dark.fits")
    # jwst writes dark_output (its base name) into output_dir
    theirs = Theirs.call(theirs, dark_output=None if their_out is None else "theirs_dark.fits",
                         output_dir=str(tmp_path), **kwargs)
    ours = DarkCurrentStep(dark_output=our_out, **kwargs).run(ours)
    assert ours.meta.cal_step.dark_sub == theirs.meta.cal_step.dark_sub
    np.testing.assert_array_equal(ours.pixeldq, theirs.pixeldq)
    np.testing.assert_array_equal(ours.groupdq, theirs.groupdq)
    # equal to float32 rounding: the same operations in the same order give the same bits
    np.testing.assert_array_equal(ours.data, theirs.data)
    return theirs, ours, their_out, our_out


def _assert_same_dark_output(their_out, our_out):
    from stdatamodels.jwst import datamodels as dm

    with dm.open(their_out) as theirs, dm.open(our_out) as ours:
        assert type(ours).__name__ == type(theirs).__name__ == "DarkMIRIModel"
        np.testing.assert_array_equal(ours.data, theirs.data)
        np.testing.assert_array_equal(ours.dq, theirs.dq)
        for key in ("nframes", "ngroups", "groupgap"):
            assert getattr(ours.meta.exposure, key) == getattr(theirs.meta.exposure, key), key


# ---------------------------------------------------------------------------- oracle

@pytest.mark.oracle
def test_direct_more_science_integrations_than_dark(tmp_path):
    # 3 science integrations, 2 dark ones: integration 3 uses the dark's last; the dark has more
    # groups than the science; two DQ planes per integration (only plane 0 is used)
    data, dq = _dark_arrays(1, 2, 8, dq_planes=2)
    path = _write_dark(tmp_path / "dark.fits", data, dq)
    theirs, ours, t_out, o_out = _run_both(tmp_path, _ramp(1, 3, 6), 3, 6, path, dark_output=True)
    assert ours.meta.cal_step.dark_sub == "COMPLETE"
    assert np.any(ours.pixeldq & HOT) and np.any(ours.pixeldq & WARM)
    assert not np.any(ours.pixeldq & dqflags.pixel["DEAD"])
    _assert_same_dark_output(t_out, o_out)


@pytest.mark.oracle
def test_direct_more_dark_integrations_than_science(tmp_path):
    data, dq = _dark_arrays(2, 4, 6)
    path = _write_dark(tmp_path / "dark.fits", data, dq)
    _run_both(tmp_path, _ramp(2, 2, 6), 2, 6, path)


@pytest.mark.oracle
def test_extrapolated_dark(tmp_path):
    # the dark has 4 groups, the science 7: each dark integration is extended (in float64)
    data, dq = _dark_arrays(3, 2, 4)
    path = _write_dark(tmp_path / "dark.fits", data, dq)
    _, _, t_out, o_out = _run_both(tmp_path, _ramp(3, 3, 7), 3, 7, path, dark_output=True)
    _assert_same_dark_output(t_out, o_out)


@pytest.mark.oracle
@pytest.mark.parametrize("dark_nints, sci_nints", [(2, 3), (4, 2)])
def test_frame_averaged_dark(tmp_path, dark_nints, sci_nints):
    # science NFRAMES=2, GROUPGAP=1 (not a MIRI readout, but stcal's 4-D averaging path): with
    # 4 dark integrations and 2 science ones, the output dark's integrations 3-4 stay 0
    data, dq = _dark_arrays(4, dark_nints, 16)
    path = _write_dark(tmp_path / "dark.fits", data, dq)
    _, _, t_out, o_out = _run_both(tmp_path, _ramp(4, sci_nints, 4), sci_nints, 4, path,
                                   dark_output=True, nframes=2, groupgap=1)
    _assert_same_dark_output(t_out, o_out)


@pytest.mark.oracle
@pytest.mark.parametrize("nframes", [1, 2])
def test_later_segment_uses_last_dark_integration(tmp_path, nframes):
    # INTSTART=3: every integration uses the dark's last; with frame averaging and a dark of
    # more integrations than the segment, stcal subtracts its never-averaged (zero) last one
    data, dq = _dark_arrays(5, 3, 12)
    path = _write_dark(tmp_path / "dark.fits", data, dq)
    theirs, ours, _, _ = _run_both(tmp_path, _ramp(5, 2, 5), 2, 5, path, nframes=nframes,
                                   integration_start=3, integration_end=4)
    changed = not np.array_equal(ours.data, _ramp(5, 2, 5)[0])
    assert changed == (nframes == 1)


@pytest.mark.oracle
def test_skipped_when_dark_nframes_exceeds_science(tmp_path):
    data, dq = _dark_arrays(6, 2, 8)
    path = _write_dark(tmp_path / "dark.fits", data, dq, nframes=2)
    theirs, ours, _, _ = _run_both(tmp_path, _ramp(6, 2, 4), 2, 4, path)
    assert ours.meta.cal_step.dark_sub == "SKIPPED"


# ---------------------------------------------------------------------------- streaming

def _one_integration(model, i):
    part = datamodels.RampModel(data=model.data[i:i + 1].copy(),
                                groupdq=model.groupdq[i:i + 1].copy(), pixeldq=model.pixeldq.copy())
    part.update(model)
    part._integration_offset = i
    return part


@pytest.mark.parametrize("meta", [{}, {"integration_start": 2, "integration_end": 4},
                                  {"nframes": 2}])
def test_integration_by_integration_equals_whole_exposure(tmp_path, meta):
    nints, ngroups = 3, 5
    data, dq = _dark_arrays(7, 2, 12)
    path = _write_dark(tmp_path / "dark.fits", data, dq)
    arrays = _ramp(7, nints, ngroups)
    whole = _set_meta(datamodels.RampModel(data=arrays[0].copy(), groupdq=arrays[1].copy(),
                                           pixeldq=arrays[2].copy()), nints, ngroups, **meta)
    parts = [_one_integration(whole, i) for i in range(nints)]
    whole = DarkCurrentStep(override_dark=path).process(whole)
    for i, part in enumerate(parts):
        part = DarkCurrentStep(override_dark=path).process(part)
        np.testing.assert_array_equal(part.data[0], whole.data[i])
        np.testing.assert_array_equal(part.pixeldq, whole.pixeldq)


def test_array_api_reuse_and_plane_selection():
    rng = np.random.default_rng(8)
    dark = rng.normal(0, 5, (2, 6, 4, 5)).astype(np.float32)
    dark_dq = np.zeros((2, 1, 4, 5), np.uint32)
    dark_dq[0, 0, 0, 0], dark_dq[1, 0, 1, 1] = HOT, WARM
    data = rng.normal(100, 5, (3, 6, 4, 5)).astype(np.float32)
    expected = data - dark[[0, 1, 1]]
    pixeldq = np.zeros((4, 5), np.uint32)
    reuse = {}
    for i in range(3):   # one integration at a time, the group darks kept in ``reuse``
        part = data[i:i + 1].copy()
        subtract_dark(part, pixeldq, dark, dark_dq, 1, 0, 1, 0, reuse=reuse, first_integration=i)
        np.testing.assert_array_equal(part[0], expected[i])
    assert pixeldq[0, 0] == HOT and pixeldq[1, 1] == WARM
    np.testing.assert_array_equal(collapse_dark_dq(dark_dq, 2), pixeldq)
    assert [dark_integration(i, 2) for i in range(4)] == [0, 1, 1, 1]
    assert [dark_integration(i, 2, integration_start=5) for i in range(2)] == [1, 1]


# ---------------------------------------------------------------------------- bad input

def test_three_dimensional_dark_for_miri_is_a_one_line_error(tmp_path):
    from astropy.io import fits

    path = tmp_path / "dark3d.fits"
    primary = fits.PrimaryHDU()
    primary.header.update(REFTYPE="DARK", INSTRUME="MIRI", DETECTOR="MIRIMAGE", SUBARRAY=SUBARRAY,
                          READPATT=READPATT, NFRAMES=1, GROUPGAP=0, NGROUPS=4)
    fits.HDUList([primary, fits.ImageHDU(np.zeros((4, NY, NX), np.float32), name="SCI")]
                 ).writeto(path)
    model = _set_meta(datamodels.RampModel(*_ramp(9, 1, 4)[:1]), 1, 4)
    with pytest.raises(ReferenceFileError, match="dark3d.fits.*4-D") as info:
        DarkCurrentStep(override_dark=str(path)).process(model)
    assert "\n" not in str(info.value)
