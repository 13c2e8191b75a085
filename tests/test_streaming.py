"""Streaming: an exposure processed one integration at a time gives exactly the products of the
whole-exposure processing, with memory that does not grow with the number of integrations.

* the pipeline on files, streamed vs whole (``_streaming = False``), every product bit for bit;
* the pieces: ``IncrementalWriter`` vs ``save()`` (and stdatamodels), jump detection by blocks
  of rows vs the whole exposure, refpix integration by integration, persistence per integration;
* peak RSS of a pipeline run in a fresh process with 10 and with 40 integrations.
"""
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
from astropy.io import fits

from ramp2slope import datamodels
from ramp2slope.datamodels import IncrementalWriter, dqflags
from ramp2slope.datamodels.lazy import open_ramp_source
from ramp2slope.datamodels.fits_io import write_model_astropy
from ramp2slope.errors import Ramp2SlopeError
from ramp2slope.jump import detect_jumps, detect_jumps_in_blocks, twopoint
from ramp2slope.pipeline import Detector1Pipeline
from ramp2slope.refpix import correct_refpix

STAGE_A_SAVED = ("group_scale", "dq_init", "saturation", "superbias", "refpix", "linearity",
                 "dark_current", "charge_migration")


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def _without_date(raw):
    """File bytes with the value of every DATE card blanked (the time of writing)."""
    out = bytearray(raw)
    for start in range(0, len(raw), 80):
        if raw[start:start + 10] == b"DATE    = ":
            out[start:start + 80] = b"DATE    = 'x'".ljust(80)
    return bytes(out)


def _assert_same_products(ours, reference):
    names = sorted(n for n in os.listdir(reference) if not n.startswith("."))
    assert sorted(n for n in os.listdir(ours) if not n.startswith(".")) == names
    for name in names:
        with open(os.path.join(ours, name), "rb") as a, open(os.path.join(reference, name), "rb") as b:
            raw_a, raw_b = a.read(), b.read()
        if name.endswith(".fits"):
            raw_a, raw_b = _without_date(raw_a), _without_date(raw_b)
        if raw_a != raw_b:
            detail = ""
            if name.endswith(".fits"):
                with fits.open(os.path.join(ours, name)) as ha, \
                        fits.open(os.path.join(reference, name)) as hb:
                    for hdu_a, hdu_b in zip(ha, hb):
                        if hdu_a.header != hdu_b.header:
                            detail += f" header {hdu_a.name} differs;"
                        elif hdu_a.data is not None and \
                                np.asarray(hdu_a.data).tobytes() != np.asarray(hdu_b.data).tobytes():
                            detail += f" data {hdu_a.name} differs;"
            raise AssertionError(f"{name} differs:{detail}")


def _run(uncal, refdir, out, steps, streaming, block_rows=None, scratch_memory=None,
         chunk_bytes=None, **kwargs):
    pipe = Detector1Pipeline(steps={k: dict(v) for k, v in steps.items()}, refdir=str(refdir),
                             output_dir=str(out), save_results=True, **kwargs)
    pipe._streaming = streaming
    pipe._jump_block_rows = block_rows
    pipe._scratch_memory = scratch_memory
    pipe._chunk_bytes = chunk_bytes
    return pipe.run(str(uncal))


def _everything_saved(tmp_path, **jump):
    steps = {name: {"save_results": True} for name in STAGE_A_SAVED + ("jump", "persistence",
                                                                        "gain_scale")}
    steps["charge_migration"].update(skip=False, signal_threshold=20000.0)
    steps["persistence"].update(skip=False, persistence_time=1000,
                                save_persistence=str(tmp_path / "persistence_array.asdf"))
    steps["ramp_fit"] = {"save_results": True, "save_opt": True}
    steps["jump"].update(jump)
    return steps


# ------------------------------------------------------------------------------------------------
# the pipeline, streamed vs whole
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sub160(tmp_path_factory):
    from ramp2slope.simulate import simulate_exposure

    return simulate_exposure(tmp_path_factory.mktemp("stream") / "sim", subarray="SUB160",
                             ngroups=5, nints=3, seed=21, cr_rate=300.0)


# scratch in files (the default), in memory, and split (only GROUPDQ fits); stage A on one
# integration at a time (chunk_bytes 1), on 2 then 1 (an integration is 512,000 bytes), and on
# all 3 at once (the default for so small an exposure)
@pytest.mark.parametrize("block_rows, scratch_memory, chunk_bytes", [
    (None, None, 1), (7, 1 << 30, 1_024_000), (None, 400_000, None), (None, None, 1_024_000)])
def test_streamed_products_identical_to_whole_exposure(sub160, tmp_path, block_rows, scratch_memory,
                                                       chunk_bytes):
    refdir = os.path.dirname(sub160.refs["mask"])
    streamed, whole = tmp_path / "streamed", tmp_path / "whole"
    for out, streaming in ((streamed, True), (whole, False)):
        arrays = tmp_path / f"persistence_{streaming}"
        arrays.mkdir()
        steps = _everything_saved(arrays, expand_large_events=True, min_jump_area=4.0)
        rate = _run(sub160.uncal, refdir, out, steps, streaming, block_rows, scratch_memory,
                    chunk_bytes, save_calibrated_ramp=True)
        assert rate.meta.cal_step.ramp_fit == "COMPLETE"
    _assert_same_products(streamed, whole)
    _assert_same_products(tmp_path / "persistence_True", tmp_path / "persistence_False")
    root = sub160.root
    with fits.open(streamed / f"{root}_jump.fits") as hdul:
        header = hdul[0].header
        assert header["NINTS"] == 3 and hdul["SCI"].data.shape == (3, 5, 160, 160)
        assert header["S_JUMP"] == "COMPLETE" and header["EXTNCRS"] > 0
        assert np.count_nonzero(hdul["GROUPDQ"].data & dqflags.group["JUMP_DET"]) > 0
    # the scratch folder is gone
    assert not [n for n in os.listdir(streamed) if n.startswith(".")]


@pytest.mark.parametrize("streaming", [True, False])
def test_a_run_leaves_no_model_to_the_cycle_collector(sub160, tmp_path, streaming):
    """Once the caller drops the result, every model the run made (ramps, rate, rateints,
    fitopt) has been freed by reference counting: none waits, with its arrays, for Python's
    cyclic garbage collector, which may not run for a long time in a notebook."""
    import gc

    from ramp2slope.datamodels.models import DataModel

    refdir = os.path.dirname(sub160.refs["mask"])
    # A first run imports what the steps need (asdf's extensions for the persistence file);
    # astropy leaves exceptions it catches while being imported in cycles, and their frames
    # keep their callers' variables (our models among them) until a collection. That happens
    # once per process and is not the models' doing: the run measured is the second.
    _run(sub160.uncal, refdir, tmp_path / "first", _everything_saved(tmp_path / "first"), streaming)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)     # what the collector finds is kept in gc.garbage
    try:
        rate = _run(sub160.uncal, refdir, tmp_path, _everything_saved(tmp_path), streaming)
        assert rate.meta.cal_step.ramp_fit == "COMPLETE"
        del rate
        gc.collect()
        left = sorted(type(o).__name__ for o in gc.garbage if isinstance(o, DataModel))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []


def test_the_ramp_is_freed_before_the_run_gives_its_memory_back(sub160, tmp_path, monkeypatch):
    """The run hands its heap back to the system when it leaves ``retained_heap``; the ramp it
    opened must be gone by then, or its memory stays with the process after the run."""
    import contextlib
    import weakref

    from ramp2slope.runtime import malloc

    opened, alive_at_exit = [], []
    open_input, retained = Detector1Pipeline._open_input, malloc.retained_heap

    def recording_open(self, step_input):
        model = open_input(self, step_input)
        opened.append(weakref.ref(model))
        return model

    @contextlib.contextmanager
    def recording_retained():
        with retained():
            yield
            alive_at_exit.append([ref() is not None for ref in opened])

    monkeypatch.setattr(Detector1Pipeline, "_open_input", recording_open)
    monkeypatch.setattr(malloc, "retained_heap", recording_retained)
    refdir = os.path.dirname(sub160.refs["mask"])
    rate = _run(sub160.uncal, refdir, tmp_path, {}, streaming=False)
    assert rate.meta.cal_step.ramp_fit == "COMPLETE"
    assert alive_at_exit == [[False]]


def test_streamed_saturation_counts_are_the_union_over_integrations(sub160, tmp_path, caplog):
    """The streamed run logs, once, the pixels with SATURATED (and AD_FLOOR) in some group of
    some integration: the counts of the whole-exposure run, though no integration alone has
    them all."""
    uncal = tmp_path / "uncal.fits"
    with fits.open(sub160.uncal) as hdul:
        sci = hdul["SCI"].data
        sci[0, 3:, 10:14, 20] = 65535          # saturated in integration 0 only: 4 pixels
        sci[1, 2:, 40, 50:53] = 65535          # ... and in integration 1 only: 3 more
        sci[2, 0, 90:92, 90] = 0               # A/D floor, integration 2 only: 2 pixels
        sci[0, 1, 90, 90] = 0                  # one of them also in integration 0
        hdul.writeto(uncal)
    refdir = os.path.dirname(sub160.refs["mask"])
    pattern = r"saturation: (\d+) saturated pixels, (\d+) A/D floor pixels"
    counts = {}
    for streaming in (True, False):
        caplog.clear()
        with caplog.at_level("INFO", logger="ramp2slope"):
            _run(uncal, refdir, tmp_path / f"out_{streaming}", {}, streaming, chunk_bytes=1)
        found = [tuple(int(n) for n in re.match(pattern, r.getMessage()).groups())
                 + ("integrations" in r.getMessage(),)
                 for r in caplog.records if re.match(pattern, r.getMessage())]
        counts[streaming] = found[-1]
    assert counts[False][2] is False and counts[True][2] is True
    assert counts[True][:2] == counts[False][:2]
    assert counts[True][1] == 2 and counts[True][0] >= 7


# The ramp fit's first pass made on jump's blocks as they are finished (the default run: no
# persistence, fitopt or snowballs): every row once, whatever the blocks, the neighbour and
# after-jump flagging, or a jump product to write; not at all with snowballs.
@pytest.mark.parametrize("block_rows, jump, rows_expected", [
    (None, {}, 160),
    (7, {}, 160),
    (1, {}, 160),
    (7, {"flag_4_neighbors": False}, 160),
    (5, {"after_jump_flag_dn1": 10.0, "after_jump_flag_time1": 30.0}, 160),
    (None, {"save_results": True}, 160),
    (None, {"expand_large_events": True, "min_jump_area": 4.0}, 0),
])
def test_fit_first_pass_on_jump_blocks(sub160, tmp_path, monkeypatch, block_rows, jump,
                                       rows_expected):
    from ramp2slope.ramp_fitting.ols_fit import MedianRates

    given = []
    add_rows = MedianRates.add_rows

    def spy(self, y0, data, groupdq, rows):
        given.append((y0, rows))
        return add_rows(self, y0, data, groupdq, rows)

    monkeypatch.setattr(MedianRates, "add_rows", spy)
    refdir = os.path.dirname(sub160.refs["mask"])
    streamed, whole = tmp_path / "streamed", tmp_path / "whole"
    for out, streaming in ((streamed, True), (whole, False)):
        _run(sub160.uncal, refdir, out, {"jump": dict(jump)}, streaming, block_rows)
    rows = sorted(y for y0, n in given for y in range(y0, y0 + n))
    assert rows == list(range(rows_expected))
    _assert_same_products(streamed, whole)


def _refs_with_gain_factor(sim, refdir):
    """The simulation's references copied to ``refdir``, the GAIN with GAINFACT = 2."""
    refdir.mkdir()
    for path in sim.refs.values():
        with fits.open(path) as hdul:
            if hdul[0].header.get("REFTYPE") == "GAIN":
                hdul[0].header["GAINFACT"] = 2.0
            hdul.writeto(refdir / os.path.basename(path))
    return refdir


# The fit's second pass by blocks of rows, read from the scratch files through memory maps:
# the same products however the blocks come (mapped whole, in runs of integrations, copied where
# a map fails) and by whole integrations where files cannot be mapped; jump reads its blocks
# mapped where a block of every integration fits MAP_WINDOW_BYTES. The ramp_fit and gain_scale
# products (with a gain factor) are written by blocks of rows too.
@pytest.mark.parametrize("mapping, runs, jump_mapped", [
    ("whole blocks", [(0, 3)], True),
    ("runs", [(0, 2), (2, 3)], False),
    ("maps fail", [(0, 3)], False),
    ("no maps", None, False),
])
def test_fit_by_blocks_of_rows(sub160, tmp_path, monkeypatch, mapping, runs, jump_mapped):
    from ramp2slope.pipeline import scratch
    from ramp2slope.ramp_fitting.ols_fit import OLSRampFitter

    chunk_bytes = None
    if mapping == "runs":
        # the fit maps about stage A's chunk (2 integrations of a block of 40 rows, not 3);
        # jump's blocks of all 3 exceed the window and are copied
        chunk_bytes = 2 * 5 * 40 * 160 * 4
        monkeypatch.setattr(scratch, "MAP_WINDOW_BYTES", 2 * 5 * 40 * 160 * 5)
    elif mapping == "maps fail":
        monkeypatch.setattr(scratch._RampFileInRowBlocks, "map_block", lambda *args: None)
    elif mapping == "no maps":
        monkeypatch.setattr(scratch, "MAP_FILES", False)
    fitted, mapped = [], []
    fit_rows, map_rows = OLSRampFitter.fit_rows, scratch.ScratchStore.map_rows

    def fit_spy(self, y0, data, groupdq, out, start=0):
        fitted.append((y0, data.shape[2], start, data.shape[0]))
        return fit_rows(self, y0, data, groupdq, out, start)

    def map_spy(self, y0, y1, start=0, stop=None):
        views = map_rows(self, y0, y1, start, stop)
        mapped.append((y0, start, stop, views is not None))
        return views

    monkeypatch.setattr(OLSRampFitter, "fit_rows", fit_spy)
    monkeypatch.setattr(scratch.ScratchStore, "map_rows", map_spy)
    refdir = _refs_with_gain_factor(sub160, tmp_path / "refs")
    steps = {"ramp_fit": {"save_results": True}, "gain_scale": {"save_results": True}}
    streamed, whole = tmp_path / "streamed", tmp_path / "whole"
    _run(sub160.uncal, refdir, streamed, steps, True, 40, chunk_bytes=chunk_bytes)
    _run(sub160.uncal, refdir, whole, steps, False)
    _assert_same_products(streamed, whole)
    if runs is None:
        assert fitted == []
    else:
        assert sorted(fitted) == [(y0, 40, start, stop - start) for y0 in (0, 40, 80, 120)
                                  for start, stop in runs]
    # jump asks for every block of all integrations, unless a block exceeds the window
    jump_maps = [entry[3] for entry in mapped if entry[1:3] == (0, None)]
    assert jump_maps == ([] if mapping == "runs" else [jump_mapped] * 4)


def test_stage_a_references_leave_memory_after_their_last_user(sub160, tmp_path, monkeypatch):
    """Stage A loads each reference once for every integration; in the last integrations each
    one is dropped as soon as no later step of the stage loads it (as the whole-exposure run
    does), not when the stage ends."""
    from ramp2slope.dark_current.dark_current_step import DarkCurrentStep
    from ramp2slope.dq_init.dq_init_step import DQInitStep
    from ramp2slope.linearity.linearity_step import LinearityStep
    from ramp2slope.refpix.refpix_step import RefPixStep
    from ramp2slope.saturation.saturation_step import SaturationStep
    from ramp2slope.stpipe.step import ReferenceCache
    from ramp2slope.superbias.superbias_step import SuperBiasStep

    events = []
    stage_a_types = {"mask", "saturation", "superbias", "linearity", "dark"}
    get, keep_only = ReferenceCache.get, ReferenceCache.keep_only

    def recording_get(self, key, load):
        if key not in self._values and key[0] in stage_a_types:
            events.append(("load", key[0]))
        return get(self, key, load)

    def recording_keep_only(self, reftypes):
        held = [key[0] for key in self._values]
        keep_only(self, reftypes)
        events.extend(("drop", t) for t in held if t not in reftypes and t in stage_a_types)

    monkeypatch.setattr(ReferenceCache, "get", recording_get)
    monkeypatch.setattr(ReferenceCache, "keep_only", recording_keep_only)
    for cls in (DQInitStep, SaturationStep, SuperBiasStep, RefPixStep, LinearityStep,
                DarkCurrentStep):
        def process(self, model, _process=cls.process):
            events.append(("run", self.name))
            return _process(self, model)
        monkeypatch.setattr(cls, "process", process)

    refdir = os.path.dirname(sub160.refs["mask"])
    _run(sub160.uncal, refdir, tmp_path / "out", {}, True, chunk_bytes=1)   # 3 chunks of 1
    runs = [k for k, e in enumerate(events) if e == ("run", "dq_init")]
    assert len(runs) == 3
    loads = [e for e in events if e[0] == "load"]
    assert sorted(loads) == sorted(("load", t) for t in stage_a_types)   # each once
    assert not any(e[0] == "drop" for e in events[:runs[-1]])
    assert events[runs[-1]:] == [
        ("run", "dq_init"), ("drop", "mask"),
        ("run", "saturation"), ("drop", "saturation"),
        ("run", "superbias"), ("drop", "superbias"),
        ("run", "refpix"),
        ("run", "linearity"), ("drop", "linearity"),
        ("run", "dark_current"), ("drop", "dark")]


@pytest.mark.parametrize("budget, expected", [
    (0, {"data": False, "groupdq": False, "zeroframe": False}),
    (3 * 4 * 5 * 6, {"data": False, "groupdq": True, "zeroframe": False}),
    (3 * 4 * 5 * 6 * 5 + 3 * 5 * 6 * 4, {"data": True, "groupdq": True, "zeroframe": True}),
])
def test_scratch_store_in_memory_and_in_files(tmp_path, budget, expected):
    from ramp2slope.pipeline.scratch import ScratchStore

    rng = np.random.default_rng(5)
    data = rng.normal(size=(3, 4, 5, 6)).astype(np.float32)
    gdq = rng.integers(0, 256, size=data.shape).astype(np.uint8)
    zf = rng.normal(size=(3, 5, 6)).astype(np.float32)
    store = ScratchStore(str(tmp_path), data.shape, zeroframe=True, memory_budget=budget)
    try:
        assert store.in_memory == expected
        store.write_integration(0, data[0], gdq[0], zf[0])
        store.write_integrations(1, data[1:], gdq[1:], zf[1:])
        block_d = np.empty((3, 4, 2, 6), np.float32)
        block_g = np.empty((3, 4, 2, 6), np.uint8)
        store.read_rows(2, 4, block_d, block_g)
        assert block_d.tobytes() == data[:, :, 2:4].tobytes()
        assert block_g.tobytes() == gdq[:, :, 2:4].tobytes()
        store.write_gdq_rows(2, block_g ^ np.uint8(4))
        out_d, out_g, out_z = np.empty((4, 5, 6), np.float32), np.empty((4, 5, 6), np.uint8), \
            np.empty((5, 6), np.float32)
        store.read_integration(1, out_d, out_g, out_z)
        changed = gdq[1].copy()
        changed[:, 2:4] ^= np.uint8(4)
        assert out_d.tobytes() == data[1].tobytes() and out_z.tobytes() == zf[1].tobytes()
        assert out_g.tobytes() == changed.tobytes()
    finally:
        store.close()
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("block_rows, iov_max, threaded", [
    (17, 1024, False),      # the blocks read are the file's: one run of the file each
    (17, 5, False),         # ... in vectored calls of 5 buffers
    (17, 1024, True),       # ... shared out between threads
    (None, 1024, False),    # one block of 50 rows: each block read is a part of it
    (20, 3, True),          # blocks of 20 rows: the blocks read straddle them
    (1, 1024, True),        # a block per row
])
def test_row_blocks_of_scratch_files(tmp_path, monkeypatch, block_rows, iov_max, threaded):
    """Blocks of rows of every integration and whole integrations, written and read back,
    whatever the file's blocks of rows: a run of the file per block or a piece per plane, in
    vectored calls that take a few buffers each, on one thread or shared out between threads;
    a shorter block at the bottom edge, and a view with its rows reversed written back."""
    from ramp2slope.pipeline import scratch
    from ramp2slope.pipeline.scratch import ScratchStore

    monkeypatch.setattr(scratch, "IOV_MAX", iov_max)
    monkeypatch.setattr(scratch, "PARALLEL_BYTES", 1 if threaded else 1 << 40)

    rng = np.random.default_rng(8)
    data = rng.normal(size=(3, 4, 50, 70)).astype(np.float32)
    gdq = rng.integers(0, 256, size=data.shape).astype(np.uint8)
    store = ScratchStore(str(tmp_path), data.shape, memory_budget=0, block_rows=block_rows)
    try:
        assert store.in_memory == {"data": False, "groupdq": False}
        assert store.block_rows == (block_rows or 50)
        store.write_integrations(0, data[:2], gdq[:2])       # a run, then one integration
        store.write_integration(2, data[2], gdq[2])
        with pytest.raises(Ramp2SlopeError, match="needs arrays of shape"):
            store.write_integrations(2, data[:2])            # past the last integration
        for y0, y1 in ((0, 17), (17, 34), (34, 50)):
            block_d = np.empty((3, 4, y1 - y0, 70), np.float32)
            block_g = np.empty((3, 4, y1 - y0, 70), np.uint8)
            store.read_rows(y0, y1, block_d, block_g)
            np.testing.assert_array_equal(block_d, data[:, :, y0:y1])
            np.testing.assert_array_equal(block_g, gdq[:, :, y0:y1])
            store.write_gdq_rows(y0, block_g[:, :, ::-1])   # a view, rows reversed
            gdq[:, :, y0:y1] = gdq[:, :, y0:y1][:, :, ::-1].copy()
        out = np.empty((4, 50, 70), np.uint8)
        out_d = np.empty((4, 50, 70), np.float32)
        for i in range(3):
            store.read_integration(i, out_d, out)
            np.testing.assert_array_equal(out, gdq[i])
            np.testing.assert_array_equal(out_d, data[i])
        for start, stop in ((0, 3), (1, 3), (0, 2), (2, 3)):     # runs of integrations
            run_d = np.empty((stop - start, 4, 50, 70), np.float32)
            run_g = np.empty((stop - start, 4, 50, 70), np.uint8)
            store.read_integrations(start, stop, run_d, run_g)
            np.testing.assert_array_equal(run_d, data[start:stop])
            np.testing.assert_array_equal(run_g, gdq[start:stop])
        with pytest.raises(Ramp2SlopeError, match="needs a buffer of shape"):
            store.read_integrations(0, 2, np.empty((1, 4, 50, 70), np.float32))
        # the file holds exactly the exposure's bytes, each once
        assert os.path.getsize(os.path.join(store.folder, "sci.f32")) == data.nbytes
    finally:
        store.close()


@pytest.mark.parametrize("threaded", [False, True])
def test_scratch_transfers_that_stop_short_are_resumed(tmp_path, monkeypatch, threaded):
    """System calls that move only a few bytes each (as a signal or a busy disk may make them)
    are resumed inside the buffer where they stopped: the arrays go to the calls as they are,
    and only such a buffer is cut into bytes."""
    from ramp2slope.pipeline import scratch
    from ramp2slope.pipeline.scratch import ScratchStore

    def short(call):
        def transfer(fd, views, offset):
            return call(fd, [memoryview(views[0]).cast("B")[:7]], offset)
        return transfer
    monkeypatch.setattr(scratch, "_pwritev", short(os.pwritev))
    monkeypatch.setattr(scratch, "_preadv", short(os.preadv))
    monkeypatch.setattr(scratch, "PARALLEL_BYTES", 1 if threaded else 1 << 40)
    rng = np.random.default_rng(10)
    data = rng.normal(size=(3, 2, 9, 5)).astype(np.float32)
    gdq = rng.integers(0, 256, size=data.shape).astype(np.uint8)
    store = ScratchStore(str(tmp_path), data.shape, memory_budget=0, block_rows=4)
    try:
        store.write_integrations(0, data, gdq)
        run_d, run_g = np.empty_like(data), np.empty_like(gdq)
        store.read_integrations(0, 3, run_d, run_g)
        np.testing.assert_array_equal(run_d, data)
        np.testing.assert_array_equal(run_g, gdq)
        block_d = np.empty((3, 2, 4, 5), np.float32)
        block_g = np.empty((3, 2, 4, 5), np.uint8)
        store.read_rows(4, 8, block_d, block_g)
        np.testing.assert_array_equal(block_d, data[:, :, 4:8])
        np.testing.assert_array_equal(block_g, gdq[:, :, 4:8])
    finally:
        store.close()


def test_blocks_of_scratch_files_mapped(tmp_path, monkeypatch):
    """map_rows gives a block of rows (runs of its integrations included) without a copy, the
    values read_block copies; writing to it leaves the store as it was; rows that are not a
    block of the layout, arrays held in memory and a system that cannot map give None."""
    from ramp2slope.pipeline import scratch
    from ramp2slope.pipeline.scratch import ScratchStore

    rng = np.random.default_rng(9)
    data = rng.normal(size=(5, 3, 50, 70)).astype(np.float32)   # rows of 280 bytes: most
    gdq = rng.integers(0, 256, size=data.shape).astype(np.uint8)  # blocks start mid-page
    store = ScratchStore(str(tmp_path), data.shape, memory_budget=0, block_rows=17)
    try:
        assert store.maps_rows
        store.write_integrations(0, data, gdq)
        for y0, y1 in ((0, 17), (17, 34), (34, 50)):
            for start, stop in ((0, 5), (1, 3), (4, 5)):
                views = store.map_rows(y0, y1, start, stop)
                assert views[0].shape == (stop - start, 3, y1 - y0, 70)
                np.testing.assert_array_equal(views[0], data[start:stop, :, y0:y1])
                np.testing.assert_array_equal(views[1], gdq[start:stop, :, y0:y1])
                assert views[0].flags.c_contiguous and views[0].flags.writeable
                copies = (np.empty_like(views[0]), np.empty_like(views[1]))
                store.read_block(y0, y1, start, *copies)
                np.testing.assert_array_equal(copies[0], views[0])
                np.testing.assert_array_equal(copies[1], views[1])
                views[0][...] = -1.0            # private to this process
                views[1][...] = 0
        block_d = np.empty((5, 3, 17, 70), np.float32)
        block_g = np.empty((5, 3, 17, 70), np.uint8)
        store.read_rows(17, 34, block_d, block_g)
        np.testing.assert_array_equal(block_d, data[:, :, 17:34])
        np.testing.assert_array_equal(block_g, gdq[:, :, 17:34])
        assert store.map_rows(0, 16) is None and store.map_rows(1, 18) is None
        assert store.map_rows(0, 17, 3, 6) is None   # past the last integration
        with pytest.raises(Ramp2SlopeError, match="not a block of the layout"):
            store.read_block(1, 18, 0, block_d, block_g)
        # runs as large as fit in MAP_WINDOW_BYTES, at least one integration
        monkeypatch.setattr(scratch, "MAP_WINDOW_BYTES", 3 * 17 * 70 * 5 * 2)
        assert store.map_run(17) == 2 and store.map_run(40) == 1
        monkeypatch.setattr(scratch, "MAP_FILES", False)
        assert not store.maps_rows and store.map_rows(0, 17) is None
    finally:
        store.close()
    in_memory = ScratchStore(str(tmp_path), data.shape, memory_budget=1 << 30, block_rows=17)
    try:
        assert not in_memory.maps_rows and in_memory.map_rows(0, 17) is None
    finally:
        in_memory.close()


def test_scratch_errors_name_the_problem(tmp_path, monkeypatch):
    """A scratch file that stops short, and a failing system call (a full disk), are one-line
    errors."""
    from ramp2slope.errors import Ramp2SlopeError
    from ramp2slope.pipeline import scratch
    from ramp2slope.pipeline.scratch import ScratchStore

    store = ScratchStore(str(tmp_path), (2, 3, 8, 16), memory_budget=0, block_rows=4)
    try:
        os.ftruncate(store._data.fd, 100)
        with pytest.raises(Ramp2SlopeError, match="scratch file is shorter than expected"):
            store.read_integration(1, data=np.empty((3, 8, 16), np.float32))

        def full(fd, views, offset):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(scratch, "_pwritev", full)
        with pytest.raises(Ramp2SlopeError, match="cannot write the scratch files: No space left"):
            store.write_gdq_rows(0, np.zeros((2, 3, 4, 16), np.uint8))
    finally:
        store.close()


def _file_system_punches_holes(folder):
    """Whether fallocate(PUNCH_HOLE | KEEP_SIZE) frees blocks of a file in ``folder``."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    path = os.path.join(folder, "probe")
    with open(path, "wb") as handle:
        handle.write(b"x" * (1 << 20))
        handle.flush()
        os.fsync(handle.fileno())
        before = os.stat(path).st_blocks
        done = libc.fallocate(handle.fileno(), 3, 0, 1 << 20) == 0
        after = os.stat(path).st_blocks
    os.remove(path)
    return done and after < before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="hole punching is Linux's")
@pytest.mark.parametrize("block_rows", [None, 16])
@pytest.mark.parametrize("run", [False, True])
def test_integrations_read_for_the_last_time_give_their_file_pages_back(tmp_path, block_rows,
                                                                       run):
    from ramp2slope.pipeline.scratch import ScratchStore

    if not _file_system_punches_holes(str(tmp_path)):
        pytest.skip("this file system does not punch holes")

    shape = (3, 4, 64, 1024)                 # 1 MB of data per integration
    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    store = ScratchStore(str(tmp_path), shape, memory_budget=0, block_rows=block_rows)
    try:
        for i in range(3):
            store.write_integration(i, data[i], np.zeros(shape[1:], np.uint8))
        path = os.path.join(store.folder, "sci.f32")
        os.fsync(store._data.fd)            # blocks allocated now, not at writeback
        before = os.stat(path).st_blocks
        if run:
            store.discard_integrations(1, 3)
        else:
            store.discard_integration(1)
        freed = (before - os.stat(path).st_blocks) * 512
        # integration 1's bytes (and 2's), less what the file system may take to note the
        # holes (ext4: a block of its extent tree once a file has more than 4 extents)
        expected = data[1:3].nbytes if run else data[1].nbytes
        assert expected - 4096 <= freed <= expected
        out = np.empty(shape[1:], np.float32)
        out_g = np.empty(shape[1:], np.uint8)
        for i in (0,) if run else (0, 2):    # the others are intact
            store.read_integration(i, out, out_g)
            assert out.tobytes() == data[i].tobytes()
        assert os.path.getsize(path) == data.nbytes
    finally:
        store.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="hole punching is Linux's")
def test_runs_of_a_block_read_for_the_last_time_give_their_file_pages_back(tmp_path):
    from ramp2slope.pipeline.scratch import ScratchStore

    if not _file_system_punches_holes(str(tmp_path)):
        pytest.skip("this file system does not punch holes")

    shape = (4, 4, 64, 1024)
    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    store = ScratchStore(str(tmp_path), shape, memory_budget=0, block_rows=32)
    try:
        store.write_integrations(0, data, np.zeros(shape, np.uint8))
        path = os.path.join(store.folder, "sci.f32")
        os.fsync(store._data.fd)
        before = os.stat(path).st_blocks
        store.discard_rows(32, 64, 1, 3)      # integrations 1 and 2 of the second block
        freed = (before - os.stat(path).st_blocks) * 512
        expected = data[1:3, :, 32:64].nbytes
        assert expected - 4096 <= freed <= expected
        for start, stop in ((0, 1), (3, 4)):   # the rest of the block is intact
            np.testing.assert_array_equal(store.map_rows(32, 64, start, stop)[0],
                                          data[start:stop, :, 32:64])
        np.testing.assert_array_equal(store.map_rows(0, 32)[0], data[:, :, :32])
    finally:
        store.close()


def test_scratch_memory_budget_from_environment(monkeypatch):
    from ramp2slope.errors import Ramp2SlopeError
    from ramp2slope.pipeline.scratch import default_memory_budget

    monkeypatch.delenv("RAMP2SLOPE_SCRATCH_MEMORY", raising=False)
    assert default_memory_budget() == 0
    monkeypatch.setenv("RAMP2SLOPE_SCRATCH_MEMORY", "1M")
    assert default_memory_budget() == 1 << 20   # well under 1/8 of any machine's memory
    monkeypatch.setenv("RAMP2SLOPE_SCRATCH_MEMORY", "0")
    assert default_memory_budget() == 0
    monkeypatch.setenv("RAMP2SLOPE_SCRATCH_MEMORY", "lots")
    with pytest.raises(Ramp2SlopeError, match="RAMP2SLOPE_SCRATCH_MEMORY"):
        default_memory_budget()


def test_streamed_with_gain_factor_and_one_group_fits(sub160, tmp_path):
    """GAINFACT scales rateints plane by plane; suppress_one_group off uses the ZEROFRAME."""
    refdir = _refs_with_gain_factor(sub160, tmp_path / "refs")
    steps = {"ramp_fit": {"save_results": True, "save_opt": True, "suppress_one_group": False},
             "gain_scale": {"save_results": True}}
    streamed, whole = tmp_path / "streamed", tmp_path / "whole"
    _run(sub160.uncal, refdir, streamed, steps, True)
    _run(sub160.uncal, refdir, whole, steps, False)
    _assert_same_products(streamed, whole)
    with fits.open(streamed / f"{sub160.root}_rateints.fits") as hdul:
        assert hdul[0].header["S_GANSCL"] == "COMPLETE" and hdul[0].header["GAINFACT"] == 2.0


def test_streamed_sigma_clip_mode(tmp_path):
    """Over minimum_sigclip_groups integrations jump detection pools across integrations."""
    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(tmp_path / "sim", size=(32, 32), ngroups=4, nints=101, seed=5,
                            cr_rate=2000.0, full_frame_refs=False)
    refdir = os.path.dirname(sim.refs["mask"])
    steps = {"jump": {"save_results": True, "expand_large_events": True,
                      "sat_required_snowball": False, "min_jump_area": 3.0,
                      "after_jump_flag_dn1": 10.0, "after_jump_flag_time1": 30.0}}
    streamed, whole = tmp_path / "streamed", tmp_path / "whole"
    _run(sim.uncal, refdir, streamed, steps, True, block_rows=3)
    _run(sim.uncal, refdir, whole, steps, False)
    _assert_same_products(streamed, whole)
    with fits.open(streamed / f"{sim.root}_jump.fits") as hdul:
        assert hdul[0].header["PRIMECRS"] > 0


def test_streamed_errors_leave_nothing_behind(sub160, tmp_path, monkeypatch):
    from ramp2slope.errors import Ramp2SlopeError
    from ramp2slope.ramp_fitting import RampFitStep

    def fail(*args, **kwargs):
        raise Ramp2SlopeError("ramp_fit failed on purpose")

    refdir = os.path.dirname(sub160.refs["mask"])
    out = tmp_path / "out"
    steps = _everything_saved(tmp_path)
    monkeypatch.setattr(RampFitStep, "begin_fit", fail)   # fails after jump, scratch in use
    with pytest.raises(Ramp2SlopeError, match="on purpose"):
        _run(sub160.uncal, refdir, out, steps, True, save_calibrated_ramp=True)
    leftovers = [n for n in os.listdir(out) if n.startswith(".")]
    assert not leftovers, leftovers


def test_lazy_source_reads_like_open(sub160):
    whole = datamodels.open(sub160.uncal)
    with open_ramp_source(sub160.uncal) as source:
        assert source.shape == whole.shape and source.has("zeroframe")
        assert source.template.meta.model_type == "RampModel"
        for i in range(whole.shape[0]):
            one = source.integration_model(i)
            np.testing.assert_array_equal(one.data[0], whole.data[i])
            np.testing.assert_array_equal(one.zeroframe[0], whole.zeroframe[i])
            for name, header in whole._headers.items():
                assert str(one._headers[name]) == str(header)


@pytest.mark.parametrize("dtype, unsigned", [("uint16", True), ("uint8", True), ("int16", False),
                                             ("float32", False)])
def test_first_groups_read_for_the_value_checks_unless_stored_unsigned(sub160, tmp_path,
                                                                       monkeypatch, dtype,
                                                                       unsigned):
    """The streamed run checks the first group of each integration for non-finite and negative
    values; a ramp stored unsigned (BZERO offset, or bytes) can hold neither, and is not read
    for it. Other types are read, every integration."""
    from ramp2slope.datamodels.lazy import RampSource
    from ramp2slope.pipeline.calwebb_detector1 import validate_ramp

    uncal = tmp_path / f"{dtype}.fits"
    with fits.open(sub160.uncal) as hdul:
        data = np.clip(hdul["SCI"].data, 0, 255 if dtype == "uint8" else 30000).astype(dtype)
        header = hdul["SCI"].header.copy()
        for keyword in ("BZERO", "BSCALE"):     # astropy writes what the new type needs
            header.remove(keyword, ignore_missing=True)
        hdul["SCI"] = fits.ImageHDU(data, header=header, name="SCI")
        hdul.writeto(uncal)
    reads = []
    read = RampSource.read

    def spy(self, attr, integration, out=None, group=None):
        reads.append((attr, integration, group))
        return read(self, attr, integration, out, group)

    monkeypatch.setattr(RampSource, "read", spy)
    with open_ramp_source(str(uncal)) as source:
        assert source.stores_unsigned is unsigned
        validate_ramp(source.template, str(uncal), source)
    assert reads == ([] if unsigned else [("data", i, 0) for i in range(3)])


# ------------------------------------------------------------------------------------------------
# IncrementalWriter
# ------------------------------------------------------------------------------------------------
def _models():
    rng = np.random.default_rng(3)
    ramp = datamodels.RampModel(rng.normal(size=(3, 2, 5, 6)).astype(np.float32))
    ramp.meta.instrument.name = "NIRCAM"
    ramp.meta.instrument.detector = "NRCA1"
    ramp.meta.exposure.ngroups = 2
    ramp.meta.exposure.nints = 3
    ramp.meta.exposure.zero_frame = True
    ramp.meta.cal_step.superbias = "COMPLETE"
    ramp.data[0, 0, 0, 0] = np.nan
    ramp.groupdq = rng.integers(0, 255, size=(3, 2, 5, 6)).astype(np.uint8)
    ramp.pixeldq = rng.integers(0, 2 ** 32, size=(5, 6), dtype=np.uint64).astype(np.uint32)
    ramp.zeroframe = rng.normal(size=(3, 5, 6)).astype(np.float32)
    ramp.average_dark_current = np.full((5, 6), 0.5, np.float32)
    columns = [("integration_number", ">i4")] + [
        (f"int_{when}_{scale}", ">f8") for scale in ("MJD_UTC", "BJD_TDB")
        for when in ("start", "mid", "end")]
    ramp.int_times = np.zeros(3, dtype=columns)
    ramp.int_times["integration_number"] = [1, 2, 3]
    cube = datamodels.CubeModel(rng.normal(size=(3, 5, 6)).astype(np.float32))
    cube.dq = rng.integers(0, 2 ** 32, size=(3, 5, 6), dtype=np.uint64).astype(np.uint32)
    cube.var_poisson = np.ones((3, 5, 6), np.float32)
    cube.var_rnoise = np.ones((3, 5, 6), np.float32)
    fitopt = datamodels.RampFitOutputModel(
        slope=rng.normal(size=(3, 2, 5, 6)).astype(np.float32),
        pedestal=np.ones((3, 5, 6), np.float32), crmag=np.zeros((3, 0, 5, 6), np.float32))
    return {"RampModel": ramp, "CubeModel": cube, "RampFitOutputModel": fitopt}


@pytest.mark.parametrize("runs", [False, True, "rows"])
@pytest.mark.parametrize("name", ["RampModel", "CubeModel", "RampFitOutputModel"])
def test_incremental_writer_writes_what_save_writes(tmp_path, name, runs):
    model = _models()[name]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # the reference is astropy's writer (save() itself goes through the incremental writer)
    model.stamp_for_save("x.fits")
    saved = write_model_astropy(model, str(tmp_path / "a" / "x.fits"))
    shapes = {spec.attr: model._arrays[spec.attr].shape for spec in model.arrays
              if model._arrays.get(spec.attr) is not None and model._arrays[spec.attr].ndim >= 3}
    path = str(tmp_path / "b" / "x.fits")
    writer = IncrementalWriter(model, path, shapes)
    assert not os.path.exists(path)
    if runs == "rows":   # blocks of the second axis of runs of planes, in any order
        for attr in writer.deferred:
            array = model._arrays[attr]
            writer.write_plane_rows(attr, 1, 2, array[1:, 2:])
            writer.write_plane_rows(attr, 0, 0, array[:1])
            writer.write_plane_rows(attr, 1, 0, array[1:, :2])
        with pytest.raises(Ramp2SlopeError, match=r"outside \(3, "):
            attr = next(iter(writer.deferred))
            writer.write_plane_rows(attr, 1, 1, model._arrays[attr][1:])
        with pytest.raises(Ramp2SlopeError, match=r"must have shape \(k, R\)"):
            writer.write_plane_rows(attr, 0, 0, model._arrays[attr][0])
    elif runs:   # planes 1 and 2 in one call, then plane 0
        for attr in writer.deferred:
            writer.write_planes(attr, 1, model._arrays[attr][1:])
            writer.write_planes(attr, 0, model._arrays[attr][:1])
        with pytest.raises(Ramp2SlopeError, match=r"indices 2\.\.3 outside 0\.\.2"):
            attr = next(iter(writer.deferred))
            writer.write_planes(attr, 2, model._arrays[attr][:2])
    else:
        for i in reversed(range(3)):   # any order
            for attr in writer.deferred:
                writer.write(attr, i, model._arrays[attr][i])
    if name == "RampFitOutputModel":  # a zero-length axis: nothing to write
        writer.write("crmag", 0, np.zeros((0, 5, 6), np.float32))
        writer.write_planes("crmag", 0, np.zeros((3, 0, 5, 6), np.float32))
    assert writer.close() == path
    with open(saved, "rb") as a, open(path, "rb") as b:
        assert _without_date(a.read()) == _without_date(b.read())
    back = datamodels.open(path)
    for attr, array in model._arrays.items():
        spec = model._spec(attr)
        if spec.write:
            assert back._arrays[attr].tobytes() == array.tobytes(), attr


def test_rows_written_by_short_calls_and_a_full_disk(tmp_path, monkeypatch):
    """Rows of planes go to one system call each: a call that writes only part of them is
    resumed where it stopped (the file is astropy's, byte for byte), and a full disk is an
    error that names the product."""
    model = _models()["CubeModel"]
    model.stamp_for_save("x.fits")
    (tmp_path / "a").mkdir()
    saved = write_model_astropy(model, str(tmp_path / "a" / "x.fits"))
    shapes = {spec.attr: model._arrays[spec.attr].shape for spec in model.arrays
              if model._arrays.get(spec.attr) is not None and model._arrays[spec.attr].ndim >= 3}
    real = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: real(
        fd, memoryview(data).cast("B")[:5], offset))
    path = str(tmp_path / "x.fits")
    writer = IncrementalWriter(model, path, shapes)
    for attr in writer.deferred:
        writer.write_plane_rows(attr, 0, 0, model._arrays[attr][:, :2])
        writer.write_plane_rows(attr, 0, 2, model._arrays[attr][:, 2:])
    writer.close()
    with open(saved, "rb") as a, open(path, "rb") as b:
        assert _without_date(a.read()) == _without_date(b.read())

    def full(fd, data, offset):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "pwrite", real)
    writer = IncrementalWriter(model, str(tmp_path / "y.fits"), shapes)
    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(Ramp2SlopeError, match=r"y\.fits: cannot be written \(No space left"):
        writer.write_plane_rows("data", 0, 0, model.data[:, :2])
    writer.abort()
    assert not os.path.exists(tmp_path / "y.fits")


@pytest.mark.parametrize("name", ["RampModel", "CubeModel", "RampFitOutputModel"])
def test_save_writes_what_astropy_writes(tmp_path, name):
    model = _models()[name]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    fast = model.save(str(tmp_path / "b" / "x.fits"))
    reference = write_model_astropy(model, str(tmp_path / "a" / "x.fits"))
    with open(reference, "rb") as a, open(fast, "rb") as b:
        assert _without_date(a.read()) == _without_date(b.read())


def test_incremental_writer_abort_and_incomplete(tmp_path):
    model = _models()["CubeModel"]
    path = tmp_path / "x.fits"
    with pytest.raises(RuntimeError):
        with IncrementalWriter(model, path, {"data": (3, 5, 6)}) as writer:
            writer.write("data", 0, model.data[0])
            raise RuntimeError("failed run")
    assert os.listdir(tmp_path) == []
    writer = IncrementalWriter(model, path, {"data": (3, 5, 6)})
    writer.write("data", 0, model.data[0])
    with pytest.raises(Exception, match=r"never written: data\[1\]"):
        writer.close()
    assert os.listdir(tmp_path) == []
    # a plane written but for one of its rows is incomplete
    writer = IncrementalWriter(model, path, {"data": (3, 5, 6)})
    writer.write_planes("data", 0, model.data)
    writer.write_plane_rows("data", 0, 0, model.data[:, :2])
    writer.write_plane_rows("data", 2, 3, np.zeros((1, 1, 6), np.float32))
    assert writer.close() == str(path)
    writer = IncrementalWriter(model, path, {"data": (3, 5, 6)})
    writer.write_plane_rows("data", 0, 0, model.data[:, :4])
    writer.write_plane_rows("data", 0, 4, model.data[:2, 4:])
    with pytest.raises(Exception, match=r"never written: data\[2\]"):
        writer.close()


@pytest.mark.oracle
def test_incremental_products_open_in_stdatamodels_without_warnings(tmp_path):
    sdm = pytest.importorskip("stdatamodels.jwst.datamodels")
    for name, model in _models().items():
        shapes = {spec.attr: model._arrays[spec.attr].shape for spec in model.arrays
                  if model._arrays.get(spec.attr) is not None and model._arrays[spec.attr].ndim >= 3}
        path = str(tmp_path / f"{name}.fits")
        with IncrementalWriter(model, path, shapes) as writer:
            for attr in writer.deferred:
                for i in range(3):
                    writer.write(attr, i, model._arrays[attr][i])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            theirs = sdm.open(path)
        assert type(theirs).__name__ == name
        primary = model.primary_array
        values = np.asarray(getattr(theirs, primary)).astype(np.float32)  # native byte order
        assert values.tobytes() == model._arrays[primary].tobytes()
        theirs.close()


# ------------------------------------------------------------------------------------------------
# the algorithm pieces
# ------------------------------------------------------------------------------------------------
class _MemoryStore:
    """The store protocol of detect_jumps_in_blocks, on arrays in memory."""

    def __init__(self, data, groupdq):
        self.data, self.groupdq, self.shape = data, groupdq, data.shape

    def read_rows(self, y0, y1, data, groupdq):
        if data is not None:
            data[...] = self.data[:, :, y0:y1]
        groupdq[...] = self.groupdq[:, :, y0:y1]

    def write_gdq_rows(self, y0, groupdq):
        self.groupdq[:, :, y0:y0 + groupdq.shape[2]] = groupdq

    def read_gdq(self, i, out):
        out[...] = self.groupdq[i]

    def write_gdq(self, i, groupdq):
        self.groupdq[i] = groupdq


def _ramps(nints, ngroups, ny, nx, seed, jumps=300):
    rng = np.random.default_rng(seed)
    rate = rng.uniform(5, 50, (ny, nx))
    t = np.arange(1, ngroups + 1)[None, :, None, None]
    data = (rate * t + rng.normal(0, 8, (nints, ngroups, ny, nx))).astype(np.float32)
    groupdq = np.zeros(data.shape, np.uint8)
    for _ in range(jumps):
        i, g = rng.integers(nints), rng.integers(1, ngroups)
        y, x = rng.integers(ny), rng.integers(nx)
        size = rng.integers(1, 4)
        data[i, g:, max(0, y - size):y + size, max(0, x - size):x + size] += rng.uniform(50, 5000)
    saturated = rng.random(data.shape) < 0.002
    groupdq[np.maximum.accumulate(saturated, axis=1)] |= dqflags.group["SATURATED"]
    groupdq[:, :, :, :2] |= dqflags.group["DO_NOT_USE"]
    return data, groupdq


@pytest.mark.parametrize("case", ["iterative", "single_pass", "sigma_clip", "sigma_clip_full_plane",
                                  "sigma_clip_dnu_group", "snowballs_after_jump", "no_neighbours"])
@pytest.mark.parametrize("block_rows", [1, 2, 5, 40])
def test_jump_blocks_match_whole_exposure(case, block_rows):
    nints = 101 if case.startswith("sigma") else 3
    data, groupdq = _ramps(nints, 5, 17, 23, seed=len(case) + block_rows)
    params = {}
    if case == "single_pass":
        params["min_diffs_single_pass"] = 3
    if case == "sigma_clip_dnu_group":
        # the last group DO_NOT_USE everywhere (as MIRI's lastframe leaves it), which never
        # stops being a plane of JUMP or DNU pixels; with a full plane of jumps as well
        groupdq[:, 4] |= dqflags.group["DO_NOT_USE"]
    if case in ("sigma_clip_full_plane", "sigma_clip_dnu_group"):
        # every pixel jumps in one plane: the sigma-clip mode clears that plane's JUMP flags
        data[7, 3:] += 3000.0
        groupdq[7] &= ~np.uint8(dqflags.group["SATURATED"])
        groupdq[7, :, 3, 4] |= dqflags.group["DO_NOT_USE"]   # the pixel with no gain
    if case == "snowballs_after_jump":
        params.update(expand_large_events=True, sat_required_snowball=False, min_jump_area=3.0,
                      after_jump_flag_dn1=10.0, after_jump_flag_time1=25.0)
    if case == "no_neighbours":
        params["flag_4_neighbors"] = False
    gain = np.full((17, 23), 2.0, np.float32)
    gain[3, 4] = 0.0
    readnoise = np.full((17, 23), 6.0, np.float32)
    pixeldq = np.zeros((17, 23), np.uint32)
    table = twopoint.dnu_planes(groupdq)
    whole_gdq, whole_pdq = groupdq.copy(), pixeldq.copy()
    expected = detect_jumps(data, whole_gdq, whole_pdq, gain, readnoise, nframes=1,
                            group_time=10.0, **params)
    blocks_gdq, blocks_pdq = groupdq.copy(), pixeldq.copy()
    got = detect_jumps_in_blocks(_MemoryStore(data, blocks_gdq), blocks_pdq, gain, readnoise,
                                 nframes=1, group_time=10.0, dnu_table=table,
                                 block_rows=block_rows, **params)
    assert got == expected
    np.testing.assert_array_equal(blocks_gdq, whole_gdq)
    np.testing.assert_array_equal(blocks_pdq, whole_pdq)
    assert expected.number_primary_crs > 0
    if case.startswith("sigma"):
        assert expected.mode == "sigma_clip"
    if case in ("sigma_clip_full_plane", "sigma_clip_dnu_group"):
        assert not np.any(whole_gdq[7, 3] == dqflags.group["JUMP_DET"])
    if case == "snowballs_after_jump":
        assert expected.number_snowballs > 0


@pytest.mark.parametrize("noutputs,side", [(4, True), (4, False), (1, False)])
def test_refpix_integration_by_integration_matches_whole(noutputs, side, monkeypatch):
    rng = np.random.default_rng(8)
    ny, nx, y0 = 64, 2048, 1984
    data = (rng.normal(1000, 5, (3, 2, ny, nx))
            + rng.normal(0, 3, (3, 2, ny, 1))).astype(np.float32)
    zeroframe = rng.normal(900, 5, (3, ny, nx)).astype(np.float32)
    pixeldq = np.zeros((ny, nx), np.uint32)
    ref = dqflags.pixel["REFERENCE_PIXEL"]
    pixeldq[:, :4] = pixeldq[:, -4:] = ref
    pixeldq[-4:, :] = ref          # the detector's top reference rows
    kwargs = dict(fastaxis=-1, slowaxis=2, xstart=1, ystart=y0 + 1, noutputs=noutputs,
                  use_side_ref_pixels=side)
    whole, whole_zf = data.copy(), zeroframe.copy()
    correct_refpix(whole, pixeldq, zeroframe=whole_zf, **kwargs)
    cache = {}   # as the step keeps it between the integrations of a streamed run
    for i in range(3):
        one, one_zf = data[i:i + 1].copy(), zeroframe[i:i + 1].copy()
        correct_refpix(one, pixeldq, zeroframe=one_zf, continuation=i > 0, cache=cache, **kwargs)
        assert one.tobytes() == whole[i:i + 1].tobytes()
        assert one_zf.tobytes() == whole_zf[i:i + 1].tobytes()
    # reused while nothing changed: no table is built again
    from ramp2slope.refpix import reference_pixels

    with monkeypatch.context() as patched:
        patched.setattr(reference_pixels, "dms_to_detector", None)
        correct_refpix(data[:1].copy(), pixeldq, cache=cache, **kwargs)
    # other reference pixels, then other parameters: the cache does not serve the old tables
    bad = pixeldq.copy()
    bad[:, :4] |= dqflags.pixel["DO_NOT_USE"]
    bad[-4:, 1000:1100] |= dqflags.pixel["DO_NOT_USE"]
    for changed in ({}, dict(odd_even_columns=False)):
        fresh, cached = data.copy(), data.copy()
        correct_refpix(fresh, bad, **kwargs, **changed)
        correct_refpix(cached, bad, cache=cache, **kwargs, **changed)
        assert cached.tobytes() == fresh.tobytes()


# ------------------------------------------------------------------------------------------------
# memory
# ------------------------------------------------------------------------------------------------
_PEAK = textwrap.dedent("""
    import resource, subprocess, sys
    subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
""")


def _peak_rss_kib(uncal, refdir, out, scratch_memory):
    command = [sys.executable, "-c", _PEAK, sys.executable, "-m", "ramp2slope.cli", "run",
               str(uncal), "--refdir", str(refdir), "--output-dir", str(out)]
    env = dict(os.environ, RAMP2SLOPE_SCRATCH_MEMORY=scratch_memory)
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return int(result.stdout.split()[-1])


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_nints(tmp_path):
    from ramp2slope.simulate import simulate_exposure

    # a 40-integration ramp alone (float32 + GROUPDQ) is about 210 MB: scratch in files only,
    # then with a 64 MiB memory budget, which may be used in full by the longer exposure
    peaks = {}
    for nints in (10, 40):
        sim = simulate_exposure(tmp_path / f"sim{nints}", size=(256, 512), ngroups=8, nints=nints,
                                seed=1, full_frame_refs=False)
        for budget in ("0", "64M"):
            peaks[nints, budget] = _peak_rss_kib(sim.uncal, os.path.dirname(sim.refs["mask"]),
                                                 tmp_path / f"out{nints}_{budget}", budget)
    assert peaks[40, "0"] <= 1.3 * peaks[10, "0"], peaks
    assert peaks[40, "64M"] <= 1.3 * peaks[10, "64M"] + 64 * 1024, peaks


def test_stale_scratch_of_dead_runs_is_removed_and_live_ones_kept(sub160, tmp_path):
    from ramp2slope.runtime import owners

    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = owners._host()
    stale = out / f".ramp2slope-scratch-{host}-{dead.pid}-x1"
    live = out / f".ramp2slope-scratch-{host}-{os.getpid()}-x2"
    other_host = out / f".ramp2slope-scratch-{host}elsewhere-{dead.pid}-x3"
    for folder in (stale, live, other_host):
        folder.mkdir()
        (folder / "sci.f32").write_bytes(b"\0" * 1024)
    # a product a killed run was writing, and one a live run is writing
    stale_part = out / f".{sub160.root}_rate.fits.{host}-{dead.pid}-k2j4.part"
    live_part = out / f".{sub160.root}_rateints.fits.{host}-{os.getpid()}-k2j5.part"
    stale_part.write_bytes(b"x")
    live_part.write_bytes(b"x")
    _run(sub160.uncal, os.path.dirname(sub160.refs["mask"]), out, {}, True)
    assert not stale.exists() and not stale_part.exists()
    assert live.exists() and other_host.exists() and live_part.exists()


def test_sigterm_stops_a_run_cleanly(tmp_path):
    from ramp2slope.simulate import simulate_exposure

    sim = simulate_exposure(tmp_path / "sim", size=(256, 512), ngroups=6, nints=12, seed=4)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "ramp2slope.cli", "run", str(sim.uncal),
                             "--refdir", os.path.dirname(sim.refs["mask"]), "--output-dir", str(out),
                             "--threads", "1"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and any(p.name.startswith(".ramp2slope-scratch-") for p in out.iterdir()):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 143, err
    assert "ramp2slope: terminated" in err and "Traceback" not in err
    assert list(out.iterdir()) == []      # no scratch, no partial product


@pytest.fixture
def sigterm_handler():
    """The run's SIGTERM handler installed in this process, and the previous one put back."""
    from ramp2slope.runtime import termination

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGALRM)
    termination.handle_sigterm()
    yield termination
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGTERM, before[0])
    signal.signal(signal.SIGALRM, before[1])
    termination._requested = False


def _sigterm_after(function):
    """``function`` that sends this process SIGTERM just after it returns: the handler runs at
    the next bytecode, before the caller can record what was created."""
    def wrapped(*args, **kwargs):
        result = function(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        return result
    return wrapped


@pytest.mark.parametrize("where", ["scratch folder", "product file"])
def test_sigterm_right_after_a_temporary_is_created_leaves_nothing(sub160, tmp_path, monkeypatch,
                                                                   sigterm_handler, where):
    """A SIGTERM between creating a scratch folder (or a product's temporary file) and recording
    it for clean-up is acted on once it is recorded, so the clean-up removes it."""
    import tempfile

    from ramp2slope.datamodels import fits_io, incremental
    from ramp2slope.pipeline import scratch

    if where == "scratch folder":
        monkeypatch.setattr(scratch.tempfile, "mkdtemp", _sigterm_after(tempfile.mkdtemp))
    else:
        for module in (fits_io, incremental):
            monkeypatch.setattr(module, "temporary_path", _sigterm_after(fits_io.temporary_path))
    out = tmp_path / "out"
    with pytest.raises(sigterm_handler.Terminated):
        _run(sub160.uncal, os.path.dirname(sub160.refs["mask"]), out, {}, True)
    assert not out.exists() or list(out.iterdir()) == []


def test_deferred_block_raises_sigterm_at_its_end(sigterm_handler):
    reached = []
    with pytest.raises(sigterm_handler.Terminated):
        with sigterm_handler.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):   # bytecodes enough for the handler to have run
                reached.append(1)
            reached.append("end of block")
    assert reached[-1] == "end of block"


@pytest.mark.parametrize("streaming", [True, False])
def test_rateints_is_withdrawn_when_the_rate_cannot_be_written(sub160, tmp_path, monkeypatch,
                                                               streaming):
    """No half product set: a failure writing _rate removes the _rateints written before it."""
    from ramp2slope.errors import BadInputError
    from ramp2slope.stpipe.step import Step

    original = Step._save_one

    def failing(self, model, input_name, suffix, index):
        if suffix == "rate":
            raise BadInputError("disk full on purpose")
        return original(self, model, input_name, suffix, index)

    monkeypatch.setattr(Step, "_save_one", failing)
    out = tmp_path / "out"
    with pytest.raises(BadInputError, match="rateints.fits was withdrawn with it"):
        _run(sub160.uncal, os.path.dirname(sub160.refs["mask"]), out, {}, streaming)
    assert os.listdir(out) == []
