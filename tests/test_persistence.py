"""Persistence flagging (jwst 3.0 behaviour) and the ASDF persistence-array file."""
import warnings

import numpy as np
import pytest

from ramp2slope.datamodels import dqflags
from ramp2slope.errors import Ramp2SlopeError
from ramp2slope.persistence import (
    flag_persistence,
    integration_start_epochs,
    mjd_to_epoch,
    persistence_file_name,
    read_persistence_array,
    write_persistence_array,
)

SAT = dqflags.group["SATURATED"]
PERS = dqflags.group["PERSISTENCE"]
DNU = dqflags.group["DO_NOT_USE"]


# ------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------
def test_mjd_to_epoch():
    assert mjd_to_epoch(40587.0) == 0.0
    assert mjd_to_epoch(40588.5) == 129600.0


def test_integration_start_times_from_int_times_then_exposure_start():
    starts = integration_start_epochs(3, int_start_mjd=[40588.0, 40588.25],
                                      exposure_start_mjd=40587.5, integration_time=100.0)
    # rows of INT_TIMES first; beyond them EXPSTART + i * EFFINTTM
    assert starts == [86400.0, 108000.0, 43200.0 + 200.0]
    assert integration_start_epochs(2, None, 40587.5, 100.0) == [43200.0, 43300.0]
    with pytest.raises(Ramp2SlopeError):
        integration_start_epochs(2, [40588.0], None, 100.0)


def test_group_times_and_windows_hand_computed():
    """Two integrations of 5 groups, TGROUP = 10 s, starts at 1000 s and 1100 s.

    Group g of integration i sits at start_i + 10 (g + 1): 1010 ... 1050 and 1110 ... 1150.
    """
    nints, ngroups = 2, 5
    data = np.zeros((nints, ngroups, 1, 6), np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    # pixel 0: saturated from group 1 of integration 0 on; the window opens at 1020 and ends at
    # 1055: groups 1-4 of integration 0 are flagged, nothing in integration 1.
    gdq[0, 1:, 0, 0] = SAT
    # pixel 1: saturated only in group 2 of integration 1: the count stays 1 afterwards, so the
    # window keeps being re-opened: groups 2-4 are flagged.
    gdq[1, 2, 0, 1] = SAT
    # pixel 2: saturated in every group of integration 0: the window opens at 1010 and ends at
    # 1045, so group 4 (1050) is no longer flagged although still saturated.
    gdq[0, :, 0, 2] = SAT
    # pixel 3: above dn_threshold in group 3 of integration 0 (t = 1040, window to 1075)
    data[0, 3:, 0, 3] = 500.0
    window = np.zeros((1, 6))
    window[0, 4] = 2000.0  # an open window ending after t + persistence_time: reset, no flags
    window[0, 5] = 1030.0  # an open window from an earlier exposure: flags until t > 1030
    resets = flag_persistence(data, gdq, window, 35, 10.0, [1000.0, 1100.0], dn_threshold=400.0)
    assert resets == 1
    flagged = (gdq & PERS) != 0
    assert flagged[0, :, 0, 0].tolist() == [False, True, True, True, True]
    assert not flagged[1, :, 0, 0].any()
    assert not flagged[0, :, 0, 1].any()
    assert flagged[1, :, 0, 1].tolist() == [False, False, True, True, True]
    assert flagged[0, :, 0, 2].tolist() == [True, True, True, True, False]
    assert not flagged[1, :, 0, 2].any()
    assert flagged[0, :, 0, 3].tolist() == [False, False, False, True, True]
    assert not flagged[1, :, 0, 3].any()
    assert not flagged[:, :, 0, 4].any()
    assert flagged[0, :, 0, 5].tolist() == [True, True, True, False, False]
    assert not np.any(gdq & DNU)
    # the state left for the next exposure: pixel 1's last window end, 1150 + 35
    assert window[0].tolist() == [0.0, 1185.0, 0.0, 0.0, 0.0, 0.0]

    # A short window closes while the pixel stays saturated (the count is then above 1)
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, :, 0, 2] = SAT
    window = np.zeros((1, 6))
    flag_persistence(data, gdq, window, 15, 10.0, [1000.0, 1100.0], persistence_dnu=True)
    assert gdq[0, :, 0, 2].tolist() == [SAT | PERS | DNU] * 2 + [SAT] * 3


def test_invalid_arguments():
    data = np.zeros((1, 2, 2, 2), np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    for bad in (None, 0, -5):
        with pytest.raises(Ramp2SlopeError):
            flag_persistence(data, gdq, np.zeros((2, 2)), bad, 10.0, [0.0])
    with pytest.raises(Ramp2SlopeError):
        flag_persistence(data, gdq, np.zeros((2, 2), np.float32), 10, 10.0, [0.0])


# ------------------------------------------------------------------------------------------
# The ASDF file
# ------------------------------------------------------------------------------------------
def test_file_name_suffix():
    assert persistence_file_name("out/pers.fits") == "out/pers.asdf"
    assert persistence_file_name("pers") == "pers.asdf"
    assert persistence_file_name("pers.asdf") == "pers.asdf"


def test_array_file_round_trip(tmp_path):
    pytest.importorskip("asdf")
    arr = np.zeros((5, 7))
    arr[1, 2] = 1.7e9
    arr[4, 6] = 1.8e9
    path = write_persistence_array(str(tmp_path / "p.txt"), "NRCA1", arr, 300, "a_uncal.fits")
    assert path.endswith("p.asdf")
    assert np.array_equal(read_persistence_array(path, "NRCA1", (5, 7), 300), arr)
    # a different persistence_time, another detector, or no file: start from zeros
    assert not read_persistence_array(path, "NRCA1", (5, 7), 200).any()
    assert not read_persistence_array(path, "NRCB1", (5, 7), 300).any()
    assert not read_persistence_array(str(tmp_path / "none.asdf"), "NRCA1", (5, 7), 300).any()
    # a second detector is added, the first kept
    other = np.zeros((5, 7))
    other[0, 0] = 5.0
    write_persistence_array(path, "NRCB1", other, 300)
    assert np.array_equal(read_persistence_array(path, "NRCA1", (5, 7), 300), arr)
    assert np.array_equal(read_persistence_array(path, "NRCB1", (5, 7), 300), other)
    with pytest.raises(Ramp2SlopeError):
        read_persistence_array(path, "NRCA1", (3, 3), 300)


def _jwst_ramp(data, gdq, int_starts=None, start_mjd=59672.47338658912):
    from stdatamodels.jwst.datamodels import RampModel

    model = RampModel(data=data.copy(), groupdq=gdq.copy())
    model.meta.instrument.name = "NIRCAM"
    model.meta.instrument.detector = "NRCA1"
    model.meta.exposure.group_time = 21.47354
    model.meta.exposure.integration_time = data.shape[1] * 21.47354 + 5.0
    model.meta.exposure.start_time = start_mjd
    model.meta.filename = "test_uncal.fits"
    if int_starts is not None:
        table = np.zeros(len(int_starts), dtype=[
            ("integration_number", "i4"), ("int_start_MJD_UTC", "f8"),
            ("int_mid_MJD_UTC", "f8"), ("int_end_MJD_UTC", "f8"), ("int_start_BJD_TDB", "f8"),
            ("int_mid_BJD_TDB", "f8"), ("int_end_BJD_TDB", "f8")])
        table["integration_number"] = np.arange(1, len(int_starts) + 1)
        table["int_start_MJD_UTC"] = int_starts
        model.int_times = table
    return model


@pytest.mark.oracle
def test_array_file_layout_matches_jwst(tmp_path):
    pytest.importorskip("jwst")
    from jwst.persistence.persistence_step import PersistenceStep

    arr = np.zeros((4, 6))
    arr[2, 3] = 1.65e9
    arr[0, 5] = 1.66e9
    model = _jwst_ramp(np.zeros((1, 1, 4, 6), np.float32), np.zeros((1, 1, 4, 6), np.uint8))
    step = PersistenceStep()
    step.persistence_array = arr
    step.persistence_time = 120
    step.write_persistence_array(model, str(tmp_path / "theirs.fits"))
    assert np.array_equal(read_persistence_array(str(tmp_path / "theirs.asdf"), "NRCA1",
                                                 (4, 6), 120), arr)
    ours = write_persistence_array(str(tmp_path / "ours"), "NRCA1", arr, 120, "test_uncal.fits")
    import asdf

    theirs_tree = asdf.load(str(tmp_path / "theirs.asdf"))["NRCA1"]
    ours_tree = asdf.load(ours)["NRCA1"]
    assert set(theirs_tree) == set(ours_tree)
    for key in theirs_tree:
        assert np.array_equal(np.asarray(theirs_tree[key]), np.asarray(ours_tree[key]))
    step = PersistenceStep()
    step.persistence_time = 120
    step.persistence_array_file = ours
    step.get_persistence_array_from_file(model, 4, 6)
    assert np.array_equal(step.persistence_array, arr)


@pytest.mark.oracle
@pytest.mark.parametrize("with_int_times,dn_threshold,dnu", [
    (True, None, False), (False, 30000.3, True), (True, 25000.0, False)])
def test_flagging_matches_jwst(with_int_times, dn_threshold, dnu):
    pytest.importorskip("jwst")
    from jwst.persistence.persistence import DataSet

    rng = np.random.default_rng(7)
    nints, ngroups, ny, nx = 3, 6, 40, 50
    data = rng.uniform(0.0, 40000.0, (nints, ngroups, ny, nx)).astype(np.float32)
    data[0, 0, ::5, ::5] = np.float32(30000.3)  # at the threshold: compared in float32
    gdq = np.zeros(data.shape, np.uint8)
    first_sat = rng.integers(0, 2 * ngroups, (nints, ny, nx))
    for g in range(ngroups):
        gdq[:, g][first_sat <= g] |= SAT
    gdq[rng.random(gdq.shape) < 0.05] |= SAT  # isolated saturated groups
    gdq[rng.random(gdq.shape) < 0.05] |= DNU
    start = 59672.47338658912
    int_starts = [start + i * 200.0 / 86400.0 for i in range(nints - 1)] if with_int_times \
        else None
    window = np.zeros((ny, nx))
    window[rng.random((ny, nx)) < 0.1] = mjd_to_epoch(start) + rng.uniform(0, 900, 1)[0]
    window[0, 0] = mjd_to_epoch(start) + 1e5  # reset: would start in the future
    model = _jwst_ramp(data, gdq, int_starts, start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        official = DataSet(model, None, 300, dn_threshold, window.copy(), dnu)
        official.do_all()
    ours = gdq.copy()
    ours_window = window.copy()
    starts = integration_start_epochs(nints, int_starts, start,
                                      model.meta.exposure.integration_time)
    flag_persistence(data, ours, ours_window, 300, model.meta.exposure.group_time, starts,
                     dn_threshold=dn_threshold, persistence_dnu=dnu)
    assert np.array_equal(ours, model.groupdq)
    assert np.array_equal(ours_window, official.persistence_array)
    assert np.count_nonzero(ours & PERS) > 100


@pytest.mark.oracle
@pytest.mark.parametrize("persistence_time", [None, 0, -5])
def test_invalid_window_fails_and_is_forgotten_as_jwst(persistence_time, caplog):
    pytest.importorskip("jwst")
    from jwst.persistence import PersistenceStep as TheirStep

    from ramp2slope import datamodels
    from ramp2slope.persistence import PersistenceStep

    data = np.zeros((1, 3, 4, 6), np.float32)
    theirs = TheirStep(persistence_time=persistence_time)
    official = theirs.run(_jwst_ramp(data, np.zeros(data.shape, np.uint8)))
    model = datamodels.RampModel(data.copy())
    model.meta.instrument.name, model.meta.instrument.detector = "NIRCAM", "NRCA1"
    step = PersistenceStep(persistence_time=persistence_time)
    with caplog.at_level("INFO", logger="ramp2slope"):
        ours = step.run(model)
    assert ours.meta.cal_step.persistence == official.meta.cal_step.persistence == "FAILED"
    assert step.persistence_time is theirs.persistence_time is None
    assert "Persistence step failed due to invalid persistence_time." in caplog.text
