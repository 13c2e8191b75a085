"""Charge migration flagging: hand-checked neighbours and later groups, and the oracle."""
import warnings

import numpy as np
import pytest

from ramp2slope.charge_migration import flag_charge_migration
from ramp2slope.datamodels import dqflags
from ramp2slope.errors import Ramp2SlopeError

DNU = dqflags.group["DO_NOT_USE"]
SAT = dqflags.group["SATURATED"]
CHLO = dqflags.group["CHARGELOSS"]
FLAG = CHLO | DNU


def test_flags_pixel_and_edge_neighbours_from_the_trigger_group_on():
    data = np.zeros((2, 5, 6, 7), np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    data[0, 2, 3, 4] = 30000.0  # triggers at group 2 of integration 0
    data[0, 4, 3, 4] = 30000.0  # later groups are flagged anyway
    ntrig = flag_charge_migration(data, gdq, 25000.0)
    assert ntrig == 1
    expected = np.zeros(gdq.shape, np.uint8)
    for (y, x) in [(3, 4), (2, 4), (4, 4), (3, 3), (3, 5)]:
        expected[0, 2:, y, x] = FLAG
    assert np.array_equal(gdq, expected)  # no diagonals, no earlier groups, no other integration


def test_edges_and_overlapping_neighbourhoods():
    data = np.zeros((1, 4, 3, 3), np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    data[0, 3, 0, 0] = 5.0  # corner, last group
    data[0, 1, 0, 1] = 5.0  # its neighbour, earlier
    flag_charge_migration(data, gdq, 4.0)
    assert np.all(gdq[0, 1:, 0, 0] == FLAG) and gdq[0, 0, 0, 0] == 0  # from group 1 (neighbour)
    assert np.all(gdq[0, 1:, 1, 1] == FLAG)  # below (0, 1)
    assert np.all(gdq[0, 3, 1, 0] == FLAG) and gdq[0, 2, 1, 0] == 0  # below the corner: group 3
    assert np.all(gdq[0, :, 2, :] == 0)


def test_do_not_use_exactly_is_skipped_but_other_flags_are_not():
    data = np.full((1, 3, 3, 3), 100.0, np.float32)
    data[0, :, 1, 1] = 1e5
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 0, 1, 1] = DNU         # exactly DNU: not a trigger
    gdq[0, 1, 1, 1] = DNU | SAT   # DNU with another flag: a trigger
    flag_charge_migration(data, gdq, 25000.0)
    assert gdq[0, 0, 1, 1] == DNU and gdq[0, 0, 0, 1] == 0
    assert gdq[0, 1, 1, 1] == DNU | SAT | CHLO and gdq[0, 1, 0, 1] == FLAG
    assert gdq[0, 2, 1, 2] == FLAG


def test_threshold_is_compared_in_float32():
    # float32(25000.1) == 25000.1015625 is not above float32(25000.1), as with numpy
    data = np.full((1, 3, 1, 2), np.float32(25000.1), np.float32)
    data[0, 2, 0, 1] = np.nextafter(np.float32(25000.1), np.float32(1e9))
    gdq = np.zeros(data.shape, np.uint8)
    flag_charge_migration(data, gdq, 25000.1)
    assert gdq[0, 2, 0, 1] == FLAG and gdq[0, 2, 0, 0] == FLAG and gdq[0, 1].max() == 0
    with pytest.raises(Ramp2SlopeError):
        flag_charge_migration(data, gdq[0], 1.0)


@pytest.mark.oracle
@pytest.mark.parametrize("threshold", [25000.0, 20000.3])
def test_matches_jwst(threshold):
    pytest.importorskip("jwst")
    from jwst.charge_migration.charge_migration import charge_migration
    from stdatamodels.jwst.datamodels import RampModel

    rng = np.random.default_rng(4)
    shape = (2, 6, 60, 70)
    data = rng.normal(10000.0, 8000.0, shape).astype(np.float32)
    data = np.cumsum(np.abs(data) * 0.25, axis=1).astype(np.float32)
    data[data > 20000] *= 1.05
    data[0, 1, ::3, ::4] = np.float32(threshold)  # exactly at the (float32) threshold
    gdq = rng.choice(np.array([0, 0, 0, 0, DNU, SAT, SAT | DNU, 4], np.uint8), size=shape)
    model = RampModel(data=data.copy(), groupdq=gdq.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        charge_migration(model, threshold)
    ours = gdq.copy()
    flag_charge_migration(data, ours, threshold)
    assert np.array_equal(ours, model.groupdq)
    assert np.count_nonzero(ours & CHLO) > 1000
    assert np.count_nonzero((ours & CHLO) == 0) > 1000
