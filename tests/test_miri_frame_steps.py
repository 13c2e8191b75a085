"""The small MIRI steps of detector1: firstframe, lastframe, reset and rscd.

Oracle comparisons run the official Step classes and ours on the same small random ramps (with
RESET and RSCD references written to tmp_path), then: integration by integration (as the
streaming pipeline hands them) against the whole exposure, hand-computed RSCD rules, and one-line
errors for bad references.
"""
import contextlib

import numpy as np
import pytest
from astropy.io import fits

from ramp2slope import datamodels
from ramp2slope.datamodels import dqflags
from ramp2slope.errors import ReferenceFileError
from ramp2slope.firstframe import FirstFrameStep, flag_first_frame
from ramp2slope.lastframe import LastFrameStep, flag_last_frame
from ramp2slope.reset import ResetStep, subtract_reset
from ramp2slope.rscd import RscdStep, flag_rscd, flag_rscd_block, rscd_groups_to_skip

SAT = dqflags.group["SATURATED"]
DNU = dqflags.group["DO_NOT_USE"]
JUMP = dqflags.group["JUMP_DET"]
FLUX_ESTIMATED = dqflags.pixel["FLUX_ESTIMATED"]
NY, NX = 32, 40
SUBARRAY = "BRIGHTSKY"
READPATT = "FASTR1"


# ---------------------------------------------------------------------------- inputs

def _ramp(seed, nints, ngroups, saturation="monotonic"):
    """data, groupdq, pixeldq: saturation that runs to the end of the ramp once set (as the
    saturation step leaves it), or SATURATED flags set at random ("random")."""
    rng = np.random.default_rng(seed)
    shape = (nints, ngroups, NY, NX)
    data = rng.normal(1000.0, 50.0, shape).astype(np.float32)
    groupdq = np.where(rng.random(shape) < 0.03, JUMP, 0).astype(np.uint8)
    if saturation == "random":
        groupdq |= np.where(rng.random(shape) < 0.15, SAT, 0).astype(np.uint8)
    else:
        # a third of the pixels saturate, at any group (group 1 included)
        first_sat = rng.integers(0, ngroups, (nints, NY, NX))
        first_sat[rng.random((nints, NY, NX)) < 0.67] = ngroups
        groups = np.arange(ngroups)[None, :, None, None]
        groupdq |= np.where(groups >= first_sat[:, None], SAT, 0).astype(np.uint8)
    pixeldq = np.where(rng.random((NY, NX)) < 0.05, dqflags.pixel["DO_NOT_USE"], 0).astype(np.uint32)
    pixeldq[rng.random((NY, NX)) < 0.05] |= dqflags.pixel["HOT"]
    return data, groupdq, pixeldq


def _set_meta(model, nints, ngroups, detector="MIRIMAGE", subarray=SUBARRAY, readpatt=READPATT,
              integration_start=None, integration_end=None):
    meta = model.meta
    meta.instrument.name = "MIRI" if detector.startswith("MIR") else "NIRCAM"
    meta.instrument.detector = detector
    meta.observation.date = "2024-01-01"
    meta.observation.time = "00:00:00"
    meta.subarray.name = subarray
    meta.subarray.xstart, meta.subarray.ystart = 1, 1
    meta.subarray.xsize, meta.subarray.ysize = NX, NY
    meta.exposure.readpatt = readpatt
    meta.exposure.nints = nints
    meta.exposure.ngroups = ngroups
    meta.exposure.integration_start = integration_start
    meta.exposure.integration_end = integration_end
    return model


def _both(arrays, nints, ngroups, **meta):
    """The same ramp as an official RampModel and as ours."""
    from stdatamodels.jwst import datamodels as dm

    data, groupdq, pixeldq = arrays
    theirs = dm.RampModel(data=data.copy(), groupdq=groupdq.copy(), pixeldq=pixeldq.copy())
    ours = datamodels.RampModel(data=data.copy(), groupdq=groupdq.copy(), pixeldq=pixeldq.copy())
    return _set_meta(theirs, nints, ngroups, **meta), _set_meta(ours, nints, ngroups, **meta)


def _reference_header(model, reftype, detector="MIRIMAGE"):
    meta = model.meta
    meta.reftype = reftype
    meta.instrument.name = "MIRI"
    meta.instrument.detector = detector
    meta.author, meta.pedigree, meta.description = "test", "GROUND", "test reference"
    meta.useafter = "2000-01-01T00:00:00"
    return model


def _write_reset(path, data, dq, nints=None, ngroups=None, dq_def=None):
    from stdatamodels.jwst import datamodels as dm

    ref = _reference_header(dm.ResetModel(data=data, dq=dq), "RESET")
    if dq_def is not None:
        ref.dq_def = np.array(dq_def, dtype=[("BIT", "<i4"), ("VALUE", "<u4"), ("NAME", "S40"),
                                             ("DESCRIPTION", "S80")])
    ref.meta.exposure.nints = data.shape[0] if nints is None else nints
    ref.meta.exposure.ngroups = data.shape[1] if ngroups is None else ngroups
    ref.meta.exposure.readpatt = READPATT
    ref.meta.subarray.name = SUBARRAY
    ref.meta.subarray.xstart, ref.meta.subarray.ystart = 1, 1
    ref.meta.subarray.xsize, ref.meta.subarray.ysize = data.shape[-1], data.shape[-2]
    ref.save(str(path))
    return str(path)


def _write_rscd(path, rows, with_int1=True):
    """rows: (subarray, readpatt, group_skip1, group_skip)."""
    from stdatamodels.jwst import datamodels as dm

    if with_int1:
        table = np.array(rows, dtype=[("subarray", "S17"), ("readpatt", "S12"),
                                      ("group_skip1", "<i4"), ("group_skip", "<i4")])
        ref = _reference_header(dm.RSCDModel(rscd_group_skip_table=table), "RSCD")
        ref.save(str(path))
    else:   # an old reference, with no first-integration column
        cols = [fits.Column(name="subarray", format="17A", array=[r[0] for r in rows]),
                fits.Column(name="readpatt", format="12A", array=[r[1] for r in rows]),
                fits.Column(name="group_skip", format="J", array=[r[3] for r in rows])]
        primary = fits.PrimaryHDU()
        primary.header.update(REFTYPE="RSCD", INSTRUME="MIRI", DETECTOR="MIRIMAGE")
        table = fits.BinTableHDU.from_columns(cols, name="RSCD_GROUP_SKIP")
        fits.HDUList([primary, table]).writeto(str(path))
    return str(path)


def _assert_same(theirs, ours, status_name):
    assert getattr(ours.meta.cal_step, status_name) == getattr(theirs.meta.cal_step, status_name)
    np.testing.assert_array_equal(ours.groupdq, theirs.groupdq)
    np.testing.assert_array_equal(ours.pixeldq, theirs.pixeldq)
    np.testing.assert_array_equal(ours.data, theirs.data)


# ---------------------------------------------------------------------------- firstframe, lastframe

@pytest.mark.oracle
@pytest.mark.parametrize("ngroups", [3, 4, 8])
@pytest.mark.parametrize("bright_use_group1", [True, False])
def test_firstframe_matches_jwst(ngroups, bright_use_group1):
    pytest.importorskip("jwst")
    from jwst.firstframe import FirstFrameStep as Theirs

    theirs, ours = _both(_ramp(ngroups, 3, ngroups, "random"), 3, ngroups)
    with pytest.warns(DeprecationWarning):
        theirs = Theirs(skip=False, bright_use_group1=bright_use_group1).run(theirs)
    ours = FirstFrameStep(skip=False, bright_use_group1=bright_use_group1).run(ours)
    assert ours.meta.cal_step.firstframe == ("COMPLETE" if ngroups > 3 else "SKIPPED")
    _assert_same(theirs, ours, "firstframe")
    if ngroups > 3 and bright_use_group1:
        assert np.any(ours.pixeldq & FLUX_ESTIMATED)


@pytest.mark.oracle
@pytest.mark.parametrize("ngroups", [2, 3, 8])
def test_lastframe_matches_jwst(ngroups):
    pytest.importorskip("jwst")
    from jwst.lastframe import LastFrameStep as Theirs

    theirs, ours = _both(_ramp(20 + ngroups, 3, ngroups), 3, ngroups)
    theirs = Theirs().run(theirs)
    ours = LastFrameStep().run(ours)
    assert ours.meta.cal_step.lastframe == ("COMPLETE" if ngroups > 2 else "SKIPPED")
    _assert_same(theirs, ours, "lastframe")


def test_firstframe_default_is_skip_and_spec_names():
    params = FirstFrameStep.parameters()
    defaults = {p.name: p.default for p in params}
    assert defaults["skip"] is True and defaults["bright_use_group1"] is True
    assert "override_reset" in {p.name for p in ResetStep.parameters()}
    assert "override_rscd" in {p.name for p in RscdStep.parameters()}
    assert [s.class_alias for s in (FirstFrameStep, LastFrameStep, ResetStep, RscdStep)] == \
        ["firstframe", "lastframe", "reset", "rscd"]


# ---------------------------------------------------------------------------- non-MIRI input

@pytest.mark.oracle
def test_non_miri_input_is_skipped_as_by_jwst(tmp_path):
    pytest.importorskip("jwst")
    from jwst.firstframe import FirstFrameStep as TheirFirst
    from jwst.lastframe import LastFrameStep as TheirLast
    from jwst.reset import ResetStep as TheirReset
    from jwst.rscd import RscdStep as TheirRscd

    reset = _write_reset(tmp_path / "reset.fits", np.ones((1, 2, NY, NX), np.float32),
                         np.zeros((NY, NX), np.uint32))
    rscd = _write_rscd(tmp_path / "rscd.fits", [(SUBARRAY, READPATT, 2, 3)])
    arrays = _ramp(3, 2, 6)
    cases = [(TheirFirst, FirstFrameStep, "firstframe", {"skip": False}),
             (TheirLast, LastFrameStep, "lastframe", {}),
             (TheirReset, ResetStep, "reset", {"override_reset": reset}),
             (TheirRscd, RscdStep, "rscd", {"override_rscd": rscd})]
    for their_cls, our_cls, name, kwargs in cases:
        theirs, ours = _both(arrays, 2, 6, detector="NRCA1")
        with pytest.warns(DeprecationWarning) if name == "firstframe" else contextlib.nullcontext():
            theirs = their_cls(**kwargs).run(theirs)
        ours = our_cls(**kwargs).run(ours)
        assert getattr(ours.meta.cal_step, name) == "SKIPPED"
        _assert_same(theirs, ours, name)
        np.testing.assert_array_equal(ours.groupdq, arrays[1])
        assert tuple(our_cls(**kwargs).wanted_references(ours)) == ()   # no reference looked for


# ---------------------------------------------------------------------------- reset

@pytest.mark.oracle
@pytest.mark.parametrize("nints, ngroups, ref_nints, ref_ngroups, segment", [
    (3, 8, 2, 5, None),       # later integrations use the reference's last; groups 6-8 untouched
    (2, 4, 3, 6, None),       # the reference has more integrations and groups than needed
    (4, 6, 2, 3, (2, 3)),     # a segment: integrations 2 and 3 of 4
    (4, 6, 3, 8, (3, None)),  # a segment running to the end (INTEND missing)
])
def test_reset_matches_jwst(tmp_path, nints, ngroups, ref_nints, ref_ngroups, segment):
    pytest.importorskip("jwst")
    from jwst.reset import ResetStep as Theirs

    rng = np.random.default_rng(nints * 10 + ngroups)
    ref = rng.normal(0.0, 30.0, (ref_nints, ref_ngroups, NY, NX)).astype(np.float32)
    ref[rng.random(ref.shape) < 0.02] = np.nan
    hot = dqflags.pixel["HOT"]
    ref_dq = rng.choice(np.array([0, 1, hot, hot | 1], np.uint32), (NY, NX), p=[0.85, 0.05, 0.05, 0.05])
    # stored with the reference's own bits (1 is HOT, 2 is DO_NOT_USE), read through its DQ_DEF
    path = _write_reset(tmp_path / "reset.fits", ref, ref_dq,
                        dq_def=[(0, 1, "HOT", "hot"), (1, 2, "DO_NOT_USE", "bad")])
    with fits.open(path) as hdul:
        assert set(np.unique(hdul["DQ"].data)) == {0, 1, 2, 3}

    start, end = segment or (None, None)
    n_here = nints if segment is None else (end or nints) - start + 1
    theirs, ours = _both(_ramp(ngroups, n_here, ngroups), nints, ngroups,
                         integration_start=start, integration_end=end)
    theirs = Theirs(override_reset=path).run(theirs)
    ours = ResetStep(override_reset=path).run(ours)
    assert ours.meta.cal_step.reset == "COMPLETE"
    _assert_same(theirs, ours, "reset")   # SCI bit for bit

    # by hand: integration i (1-based) of the exposure uses reference integration min(i, NINTS)
    data, _, pixeldq = _ramp(ngroups, n_here, ngroups)
    clean = np.nan_to_num(ref, nan=0.0)
    first = (start or 1) - 1
    for k in range(n_here):
        ir = min(first + k, ref_nints - 1)
        g = min(ngroups, ref_ngroups)
        np.testing.assert_array_equal(ours.data[k, :g], data[k, :g] - clean[ir, :g])
        np.testing.assert_array_equal(ours.data[k, g:], data[k, g:])
    np.testing.assert_array_equal(ours.pixeldq, pixeldq | ref_dq)


def test_subtract_reset_hand_computed():
    data = np.full((3, 4, 1, 2), 10.0, np.float32)
    reset = np.arange(2 * 2 * 1 * 2, dtype=np.float32).reshape(2, 2, 1, 2)
    pixeldq = np.array([[0, 4]], np.uint32)
    subtract_reset(data, pixeldq, reset, np.array([[1, 0]], np.uint32))
    np.testing.assert_array_equal(data[0, :2, 0], 10 - reset[0, :, 0])
    np.testing.assert_array_equal(data[1, :2, 0], 10 - reset[1, :, 0])
    np.testing.assert_array_equal(data[2, :2, 0], 10 - reset[1, :, 0])   # beyond NINTS: the last
    assert np.all(data[:, 2:] == 10)
    np.testing.assert_array_equal(pixeldq, [[1, 4]])
    # INTEND: integrations from there on are left alone
    data = np.full((3, 4, 1, 2), 10.0, np.float32)
    subtract_reset(data, pixeldq, reset, np.zeros((1, 2), np.uint32), integration_end=2)
    assert np.all(data[2] == 10) and not np.all(data[1] == 10)


# ---------------------------------------------------------------------------- rscd

@pytest.mark.parametrize("skips, ngroups, nints, expected", [
    ((2, 4), 10, 3, (2, 4)),
    ((2, 4), 6, 3, (2, 3)),     # leave 3 groups
    ((2, 4), 6, 1, (2, 4)),     # one integration: the later integrations' number is not used
    ((3, 4), 5, 3, (1, 1)),     # up to 5 groups: 1 and 1
    ((3, 4), 4, 3, (1, 1)),
    ((3, 4), 3, 3, (0, 0)),
    ((3, 4), 2, 3, None),       # too few groups: skipped
    ((-1, 4), 10, 3, (1, 4)),   # an old reference with no first-integration value
])
def test_rscd_groups_to_skip(skips, ngroups, nints, expected):
    assert rscd_groups_to_skip(*skips, ngroups, nints) == expected


def test_rscd_back_off_by_hand():
    # one integration, 8 groups, skip 3: pixel a saturates at group 4 (1-based), b at 2,
    # c in group 1 (nothing to save), d never
    groupdq = np.zeros((1, 8, 1, 4), np.uint8)
    for pixel, first in ((0, 3), (1, 1), (2, 0)):
        groupdq[0, first:, 0, pixel] = SAT
    pixeldq = np.zeros((1, 4), np.uint32)
    counts = flag_rscd_block(groupdq, pixeldq, 3)
    dropped = [int(np.count_nonzero(groupdq[0, :, 0, p] & DNU)) for p in range(4)]
    # a: group 5 (skip+2) and 4 are saturated, 3 not: the back-off stops there -> 3 - 2 = 1
    # b: saturated from group 2: back to 0 groups dropped; c and d: 3
    assert dropped == [1, 0, 3, 3]
    np.testing.assert_array_equal(pixeldq, [[FLUX_ESTIMATED, FLUX_ESTIMATED, 0, 0]])
    assert counts[:3] == (3, 2, 1)


RSCD_CASES = [
    # nints, ngroups, (group_skip1, group_skip), saturation, segment
    (3, 8, (2, 4), "monotonic", None),
    (3, 8, (2, 4), "random", None),
    (1, 8, (3, 4), "random", None),
    (3, 12, (1, 6), "monotonic", None),
    (3, 6, (4, 4), "random", None),     # both lowered to leave 3 groups
    (3, 5, (3, 4), "random", None),     # <= 5 groups: 1 and 1
    (3, 3, (3, 4), "random", None),     # 3 groups: nothing to drop, but jwst still counts
    (2, 2, (3, 4), "random", None),     # too few groups: skipped
    (4, 8, (2, 4), "random", (2, 4)),   # a segment not holding the first integration
    (4, 8, (2, 4), "random", (1, 2)),   # a segment holding it
]


@pytest.mark.oracle
@pytest.mark.parametrize("nints, ngroups, skips, saturation, segment", RSCD_CASES)
def test_rscd_matches_jwst(tmp_path, nints, ngroups, skips, saturation, segment):
    pytest.importorskip("jwst")
    from jwst.rscd import RscdStep as Theirs

    rows = [("FULL", READPATT, 9, 9), (SUBARRAY, "SLOWR1", 9, 9), (SUBARRAY, READPATT) + skips,
            (SUBARRAY, READPATT, 0, 0)]   # only the first match counts
    path = _write_rscd(tmp_path / "rscd.fits", rows)
    start, end = segment or (None, None)
    n_here = nints if segment is None else end - start + 1
    arrays = _ramp(100 + ngroups, n_here, ngroups, saturation)
    theirs, ours = _both(arrays, nints, ngroups, integration_start=start, integration_end=end)
    theirs = Theirs(override_rscd=path).run(theirs)
    ours = RscdStep(override_rscd=path).run(ours)
    assert ours.meta.cal_step.rscd == ("SKIPPED" if ngroups < 3 else "COMPLETE")
    _assert_same(theirs, ours, "rscd")
    if ngroups < 3:
        return
    if saturation == "monotonic":
        assert np.any(ours.pixeldq & FLUX_ESTIMATED)

    # the counts jwst records in INT1SKIP/INT1BORS/INT1UGP1 and INT2*
    _, groupdq, pixeldq = arrays
    first = (start or 1) - 1
    int1, int2p = flag_rscd(groupdq, pixeldq, *rscd_groups_to_skip(*skips, ngroups, nints), nints,
                            first_integration=first)
    rscd = theirs.meta.rscd
    for counts, suffix in ((int1, "int1"), (int2p, "int2p")):
        recorded = (getattr(rscd, f"ngroups_skip_{suffix}"),
                    getattr(rscd, f"keep_groups_saturation_{suffix}"),
                    getattr(rscd, f"keep_bright_firstgroup_{suffix}"))
        assert recorded == ((None, None, None) if counts is None else tuple(counts)[:3])


@pytest.mark.oracle
def test_rscd_back_off_stops_for_all_integrations_at_once(tmp_path):
    """Flags that come and go (not what the saturation step makes): the back-off stops at the
    first group where no pixel of the set of integrations saturates, as in jwst."""
    pytest.importorskip("jwst")
    from jwst.rscd import RscdStep as Theirs

    path = _write_rscd(tmp_path / "rscd.fits", [(SUBARRAY, READPATT, 3, 3)])
    data, groupdq, pixeldq = _ramp(9, 3, 10)
    groupdq &= ~np.uint8(SAT)
    groupdq[0, [2, 4], 0, 0] = SAT    # integration 1: saturated in groups 5 and 3, not 4
    groupdq[1, [2, 4], 1, 1] = SAT    # integration 2: the same
    groupdq[2, 3:, 2, 2] = SAT        # integration 3: saturated from group 4 on
    theirs, ours = _both((data, groupdq, pixeldq), 3, 10)
    theirs = Theirs(override_rscd=path).run(theirs)
    ours = RscdStep(override_rscd=path).run(ours)
    _assert_same(theirs, ours, "rscd")

    def dropped(model, i, y, x):
        return int(np.count_nonzero(model.groupdq[i, :, y, x] & DNU))

    # integration 1 alone: group 4 stops the back-off after one step (3 -> 2); in integrations
    # 2+ integration 3's pixel keeps it going down to group 3, where integration 2's pixel
    # loses a second group (3 -> 1)
    assert (dropped(ours, 0, 0, 0), dropped(ours, 1, 1, 1), dropped(ours, 2, 2, 2)) == (2, 1, 1)
    # one integration at a time, integration 2 stops as integration 1 did: such flags are the
    # one case where streaming differs from the whole exposure
    whole = _set_meta(datamodels.RampModel(data=data, groupdq=groupdq, pixeldq=pixeldq), 3, 10)
    part = RscdStep(override_rscd=path).process(_one_integration(whole, 1))
    assert dropped(part, 0, 1, 1) == 2


@pytest.mark.oracle
@pytest.mark.parametrize("case", ["old_table", "subprism", "not_found"])
def test_rscd_table_lookup_matches_jwst(tmp_path, case):
    pytest.importorskip("jwst")
    from jwst.rscd import RscdStep as Theirs

    subarray = {"subprism": "SUBPRISM"}.get(case, SUBARRAY)
    table_sub = {"subprism": "SLITLESSPRISM", "not_found": "MASK1550"}.get(case, SUBARRAY)
    path = _write_rscd(tmp_path / "rscd.fits", [(table_sub, READPATT, 3, 4)],
                       with_int1=case != "old_table")
    theirs, ours = _both(_ramp(7, 3, 9, "random"), 3, 9, subarray=subarray)
    theirs = Theirs(override_rscd=path).run(theirs)
    ours = RscdStep(override_rscd=path).run(ours)
    assert ours.meta.cal_step.rscd == ("SKIPPED" if case == "not_found" else "COMPLETE")
    _assert_same(theirs, ours, "rscd")


# ---------------------------------------------------------------------------- one integration at a time

def _one_integration(model, i):
    """Integration ``i`` of ``model`` as the streaming pipeline hands it to a step."""
    part = datamodels.RampModel(data=model.data[i:i + 1].copy(), groupdq=model.groupdq[i:i + 1].copy(),
                                pixeldq=model.pixeldq.copy())
    part.update(model)
    part._integration_offset = i
    return part


@pytest.mark.parametrize("ngroups", [4, 8])
def test_integration_by_integration_equals_whole_exposure(tmp_path, ngroups):
    nints = 4
    rng = np.random.default_rng(ngroups)
    ref = rng.normal(0.0, 30.0, (2, 5, NY, NX)).astype(np.float32)
    ref_dq = np.where(rng.random((NY, NX)) < 0.05, dqflags.pixel["HOT"], 0).astype(np.uint32)
    reset_path = _write_reset_plain(tmp_path / "reset.fits", ref, ref_dq)
    rscd_path = _write_rscd_plain(tmp_path / "rscd.fits", [(SUBARRAY, READPATT, 2, 4)])
    data, groupdq, pixeldq = _ramp(ngroups, nints, ngroups)
    whole = _set_meta(datamodels.RampModel(data=data, groupdq=groupdq, pixeldq=pixeldq),
                      nints, ngroups)

    def steps():
        return [FirstFrameStep(skip=False), LastFrameStep(), ResetStep(override_reset=reset_path),
                RscdStep(override_rscd=rscd_path)]

    parts = [_one_integration(whole, i) for i in range(nints)]
    for step in steps():
        whole = step.process(whole)
    for i, part in enumerate(parts):
        for step in steps():
            part = step.process(part)
        np.testing.assert_array_equal(part.data[0], whole.data[i])
        np.testing.assert_array_equal(part.groupdq[0], whole.groupdq[i])
        assert part.meta.cal_step.rscd == part.meta.cal_step.reset == "COMPLETE"
    # PIXELDQ: FLUX_ESTIMATED (firstframe, rscd) depends on the integration; the exposure's is
    # the union of the integrations'
    union = np.bitwise_or.reduce([part.pixeldq for part in parts])
    np.testing.assert_array_equal(union, whole.pixeldq)
    assert np.any(whole.groupdq[1:, :4] & DNU)


def test_array_functions_integration_by_integration():
    data, groupdq, pixeldq = _ramp(5, 3, 9)
    reset = np.random.default_rng(1).normal(0, 10, (2, 4, NY, NX)).astype(np.float32)
    reset_dq = np.zeros((NY, NX), np.uint32)
    whole = [data.copy(), groupdq.copy(), pixeldq.copy()]
    subtract_reset(whole[0], whole[2], reset, reset_dq)
    flag_rscd(whole[1], whole[2], 2, 5, 3)
    flag_first_frame(whole[1], whole[2])
    flag_last_frame(whole[1])
    union = np.zeros_like(pixeldq)
    for i in range(3):
        d, g, p = data[i:i + 1].copy(), groupdq[i:i + 1].copy(), pixeldq.copy()
        subtract_reset(d, p, reset, reset_dq, first_integration=i)
        flag_rscd(g, p, 2, 5, 3, first_integration=i)
        flag_first_frame(g, p)
        flag_last_frame(g)
        np.testing.assert_array_equal(d[0], whole[0][i])
        np.testing.assert_array_equal(g[0], whole[1][i])
        union |= p
    np.testing.assert_array_equal(union, whole[2])


# ---------------------------------------------------------------------------- bad references

def _write_reset_plain(path, data, dq=None, **keywords):
    primary = fits.PrimaryHDU()
    header = dict(REFTYPE="RESET", INSTRUME="MIRI", DETECTOR="MIRIMAGE", SUBARRAY=SUBARRAY,
                  READPATT=READPATT, NINTS=data.shape[0] if data.ndim == 4 else 1,
                  NGROUPS=data.shape[1] if data.ndim == 4 else 1)
    header.update(keywords)
    for key, value in header.items():
        if value is not None:
            primary.header[key] = value
    hdus = [primary, fits.ImageHDU(data, name="SCI")]
    if dq is not None:
        hdus.append(fits.ImageHDU(dq, name="DQ"))
    fits.HDUList(hdus).writeto(str(path))
    return str(path)


def _write_rscd_plain(path, rows, reftype="RSCD", columns=("subarray", "readpatt", "group_skip1",
                                                           "group_skip"), table="RSCD_GROUP_SKIP"):
    formats = {"subarray": "17A", "readpatt": "12A", "group_skip1": "J", "group_skip": "J"}
    index = {"subarray": 0, "readpatt": 1, "group_skip1": 2, "group_skip": 3}
    primary = fits.PrimaryHDU()
    primary.header.update(REFTYPE=reftype, INSTRUME="MIRI", DETECTOR="MIRIMAGE")
    cols = [fits.Column(name=c, format=formats[c], array=[r[index[c]] for r in rows]) for c in columns]
    fits.HDUList([primary, fits.BinTableHDU.from_columns(cols, name=table)]).writeto(str(path))
    return str(path)


@pytest.mark.parametrize("case", ["full_frame", "three_d", "no_nints", "nints_beyond_sci",
                                  "wrong_reftype", "other_detector", "dq_shape"])
def test_bad_reset_reference_one_line_error(tmp_path, case):
    path = tmp_path / f"reset_{case}.fits"
    shape = {"full_frame": (2, 3, 1024, 1032), "three_d": (3, NY, NX)}.get(case, (2, 3, NY, NX))
    data = np.zeros(shape, np.float32)
    keywords = {"no_nints": {"NINTS": None}, "nints_beyond_sci": {"NINTS": 4},
                "wrong_reftype": {"REFTYPE": "RSCD"}, "other_detector": {"DETECTOR": "MIRIFULONG"}}
    dq = np.zeros((NY, NX + 1) if case == "dq_shape" else (NY, NX), np.uint32)
    _write_reset_plain(path, data, dq, **keywords.get(case, {}))
    model = _set_meta(datamodels.RampModel(data=np.zeros((3, 5, NY, NX), np.float32)), 3, 5)
    with pytest.raises(ReferenceFileError) as err:
        ResetStep(override_reset=str(path)).run(model)
    message = str(err.value)
    assert str(path) in message and "\n" not in message


@pytest.mark.parametrize("case", ["no_table", "no_column", "wrong_reftype"])
def test_bad_rscd_reference_one_line_error(tmp_path, case):
    path = tmp_path / f"rscd_{case}.fits"
    rows = [(SUBARRAY, READPATT, 2, 4)]
    if case == "no_table":
        _write_rscd_plain(path, rows, table="SOMETHING_ELSE")
    elif case == "no_column":
        _write_rscd_plain(path, rows, columns=("subarray", "readpatt", "group_skip1"))
    else:
        _write_rscd_plain(path, rows, reftype="RESET")
    model = _set_meta(datamodels.RampModel(data=np.zeros((2, 6, NY, NX), np.float32)), 2, 6)
    with pytest.raises(ReferenceFileError) as err:
        RscdStep(override_rscd=str(path)).run(model)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
