"""Detector1Pipeline one integration at a time: memory that does not grow with NINTS.

:func:`run_streamed` gives the products of ``Detector1Pipeline.process`` on the whole exposure,
bit for bit, while holding about one integration in memory:

1. Stage A. Each integration is read from the input file on its own and goes through
   group_scale … charge_migration as a one-integration RampModel (the same Step objects, with
   the references loaded once per run). Its corrected ramp, GROUPDQ and ZEROFRAME go to scratch
   files (:class:`~ramp2slope.pipeline.scratch.ScratchStore`), and the saved step products are
   written integration by integration (:class:`~ramp2slope.datamodels.IncrementalWriter`).
   Small frames go several integrations to a model (up to :data:`CHUNK_BYTES` of ramp), which
   every step takes as it takes a segment file: a run of integrations from an offset.
2. Jump, on blocks of rows spanning every integration read from the scratch files
   (:func:`~ramp2slope.jump.detect.detect_jumps_in_blocks`), then snowballs per integration.
   When nothing changes the ramp after jump's blocks (no snowballs, showers, persistence,
   picture_frame or clean_flicker_noise) and the fit allows it, the ramp fit's first pass
   (median rates) is made on each block as jump finishes it.
3. A pass over the integrations, when there is something to do in it: the ``_jump`` product,
   persistence (in order, carrying its windows), the ``_persistence`` and ``_ramp`` products,
   and the ramp fit's first pass if it was not made on jump's blocks.
4. A second pass: the ramp fit's second pass, writing the rateints (and fitopt) planes into
   their products; then the rate.

The passes take the integrations in runs of the size stage A's chunks have (one integration
of a full frame, several of a small one; one at a time when fitopt arrays are made).

The metadata follow exactly the path they follow in the whole-exposure run: the same step
methods record the same keywords on a model that carries the headers (and a stand-in SCI of the
exposure's shape), and each product's header is taken at the moment the whole-exposure run
saves it.
"""
import logging
import os
import time

import numpy as np

from ..datamodels import IncrementalWriter, RampModel, dqflags
from ..datamodels.irs2_layout import is_irs2_shape
from ..datamodels.meta import MetaNode
from ..datamodels.models import placeholder
from ..errors import Ramp2SlopeError
from ..gain_scale.gain_scale import scale_by_gain
from ..jump import twopoint
from ..ramp_fitting.ols_fit import SEGMENT_FIELDS, ImageProduct, IntegrationOptional, OptionalProduct
from ..stpipe import ReferenceCache
from ..runtime import jit_warmup, kernel_clock, termination
from ..runtime.malloc import release_free_memory
from ..stpipe.naming import withdrawn_on_failure
from .scratch import ScratchStore

__all__ = ["run_streamed", "STAGE_A", "default_block_rows"]

log = logging.getLogger("ramp2slope")

#: The steps run on each integration on its own, in order (near-infrared detectors; MIRI's
#: are ``Detector1Pipeline.MIRI_STEPS`` and charge_migration: see :func:`stage_a_steps`).
STAGE_A = ("group_scale", "dq_init", "saturation", "ipc", "superbias", "refpix", "linearity",
           "dark_current", "charge_migration")


def stage_a_steps(pipe, model):
    """The aliases of the steps run on each integration of ``model`` on its own, in order."""
    return tuple(pipe.detector_steps(model)) + ("charge_migration",)

_SAT = np.uint8(dqflags.group["SATURATED"])
_AD_FLOOR = np.uint8(dqflags.group["AD_FLOOR"])


#: Fewest rows per jump block: thinner blocks cost more in file accesses than they save.
MIN_BLOCK_ROWS = 4
#: ... and a block may always hold this many bytes (data and GROUPDQ of every integration), at
#: the cost of this much memory for jump. The scratch files are laid out in these blocks. While
#: the ramp fit read integrations back with copies, 64 MB made those reads cheaper (256x2048
#: with 50 x 10: 0.51 s -> 0.46 s; MIRI's SLITLESSPRISM with 200 integrations 0.17 s -> 0.14 s)
#: but raised the peak of the SLITLESSPRISM with 50 (255 -> 295 MB, above 1/4 of jwst's); the
#: fit now maps the blocks (scratch.MAP_WINDOW_BYTES), and 32 MB costs nothing measurable.
MIN_BLOCK_BYTES = 32 << 20


#: Stage A (and the ramp fit's passes) take several integrations at a time while their float32
#: ramps fit in this many bytes. Each step costs a few tenths of a millisecond of Python per
#: call whatever the size of its input, so a time series of small frames (MIRI's SLITLESSPRISM:
#: 0.12 MB per group) spent most of stage A there, one integration at a time; larger frames
#: still go one by one.
CHUNK_BYTES = 16 << 20


def integrations_per_chunk(shape, chunk_bytes=None):
    """How many integrations of an exposure of ``shape`` stage A takes at a time (>= 1)."""
    nints, ngroups, ny, nx = shape
    budget = CHUNK_BYTES if chunk_bytes is None else int(chunk_bytes)
    return max(1, min(nints, budget // max(1, ngroups * ny * nx * 4)))


def default_block_rows(shape):
    """Rows per jump block: MIN_BLOCK_BYTES of every integration's rows (at least
    MIN_BLOCK_ROWS rows). Until the fit mapped the blocks, a block also held at least one
    integration's size (a full frame of 3 integrations: 682 rows, 105 MB), for the fit's
    integration reads; 218 rows of 33 MB can be mapped by jump too (jump 0.23 -> 0.21 s, peak
    781 -> 773 MB)."""
    nints, ngroups, ny, nx = shape
    row_bytes = max(1, nints * ngroups * nx * 5)   # float32 data and uint8 GROUPDQ
    return min(ny, max(MIN_BLOCK_ROWS, MIN_BLOCK_BYTES // row_bytes))


class _RepeatFilter(logging.Filter):
    """After the first integration (or chunk): no INFO messages, and each warning only once."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def filter(self, record):
        if record.levelno < logging.WARNING:
            return False
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


class _Products:
    """The products being written; on failure every unfinished one is discarded.

    ``source``: the exposure's RampSource, from which a ramp product's REFOUT (MIRI's reference
    output, which no step changes) is copied integration by integration.
    """

    def __init__(self, source=None):
        self._open = []
        self.setup_s = 0.0   # seconds spent creating the products' files (headers, layout)
        self.refout_shape = None
        self._source = None
        if source is not None and source.has("refout"):
            self._source = source
            self.refout_shape = source.shape_of("refout")

    def start(self, model, path, shapes):
        t0 = time.perf_counter()
        with termination.deferred():     # the temporary file exists only once it is recorded
            writer = IncrementalWriter(model, path, shapes)
            self._open.append(writer)
        self.setup_s += time.perf_counter() - t0
        writer.refout = None if self._source is None else \
            (lambda i, source=self._source: source.read("refout", i))
        return writer

    def finish(self, writer, step):
        path = writer.close()
        self._open.remove(writer)
        log.info("%s: saved %s", step.name, path)
        return path

    def abort(self):
        for writer in self._open:
            writer.abort()
        self._open = []

    def discard(self, writer):
        """Give up one product being written (nothing appears under its name)."""
        self._open.remove(writer)
        writer.abort()


def _ramp_shapes(model_or_shape, zeroframe, refout_shape=None):
    shape = tuple(model_or_shape)
    shapes = {"data": shape, "groupdq": shape}
    if zeroframe:
        shapes["zeroframe"] = (shape[0],) + shape[2:]
    if refout_shape is not None:
        shapes["refout"] = tuple(refout_shape)
    return shapes


def _write_ramp(writer, i, data, groupdq, zeroframe):
    if writer is None:
        return
    writer.write("data", i, data)
    writer.write("groupdq", i, groupdq)
    if "zeroframe" in writer.deferred:
        writer.write("zeroframe", i, zeroframe)
    if "refout" in writer.deferred:
        writer.write("refout", i, writer.refout(i))


def _log_done(step, elapsed, model, kernel_s=0.0):
    step.log_done(elapsed, model, kernel_s)


def run_streamed(pipe, source, input_name, block_rows=None):
    """Run ``pipe`` (a Detector1Pipeline) on ``source`` (a RampSource); returns the rate model
    (None when ramp fitting produces no slopes), like ``pipe.process`` on the whole model."""
    if pipe.ramp_fit.skip:
        raise Ramp2SlopeError(f"{pipe.name}: ramp_fit cannot be skipped")
    folder = os.path.dirname(os.path.abspath(pipe.output_path(input_name, suffix="rate")))
    products = _Products(source)
    cache = ReferenceCache()
    pipe._reference_cache = cache
    stores = []

    def make_store(shape):
        # made once the first integration is through stage A: an IRS2 exposure leaves refpix
        # with fewer rows than it was read with
        with termination.deferred():     # the folder exists only once it is recorded
            stores.append(ScratchStore(folder, shape, zeroframe=source.has("zeroframe"),
                                       memory_budget=getattr(pipe, "_scratch_memory", None),
                                       block_rows=block_rows or default_block_rows(shape)))
        log.debug("scratch arrays in memory: %s", stores[0].in_memory)
        return stores[0]
    try:
        if is_irs2_shape(source.shape) and not pipe.refpix.skip:
            pipe.refpix._irs2_reference_flags = irs2_reference_flags(pipe, source)
        if "emicorr" in stage_a_steps(pipe, source.template) and not pipe.emicorr.skip:
            # MIRI's EMI is fitted over the integrations together: a first pass
            pipe.emicorr.prepare_streamed(source, (pipe.group_scale, pipe.dq_init))
        shell, dnu_table = _stage_a(pipe, source, make_store, products)
        store = stores[0]
        cache.clear()
        release_free_memory()   # the stage's references, freed: see runtime/malloc.py
        return _stage_b(pipe, shell, store, products, input_name, dnu_table, store.block_rows)
    except BaseException:
        products.abort()
        raise
    finally:
        cache.clear()
        pipe._reference_cache = None
        pipe.refpix._irs2_reference_flags = None
        pipe.emicorr.end_streamed()
        for store in stores:
            store.close()


def irs2_reference_flags(pipe, source):
    """The bad reference samples of an IRS2 exposure, found as refpix finds them on the whole
    exposure (each integration's outliers, flagged in every integration): PIXELDQ bits to OR
    into each integration before its correction. Each integration is read and taken through
    the steps before refpix that change its values (group_scale, superbias) once more."""
    from ..datamodels.irs2_layout import layout_of
    from ..refpix import irs2_subtract_reference as irs2

    steps = [step for step in (pipe.group_scale, pipe.dq_init, pipe.superbias) if not step.skip]
    flags = None
    quiet = logging.getLogger("ramp2slope")
    level = quiet.level
    quiet.setLevel(logging.WARNING)   # the steps say what they do when they run for real
    try:
        for i in range(source.nints):
            model = source.integration_model(i)
            for step in steps:
                model = step.process(model)
            before = model.pixeldq.copy()
            after = before.copy()
            irs2.flag_bad_reference_samples(model.data, after, layout_of(model),
                                            n_sigma=pipe.refpix.ovr_corr_mitigation_ftr,
                                            flag_only=True)
            added = after & ~before
            flags = added if flags is None else flags | added
            model._arrays.clear()
    finally:
        quiet.setLevel(level)
    bad_rows = int(np.count_nonzero(np.any(flags != 0, axis=1)))
    log.info("%s: %d bad reference samples flagged from the %d integrations", pipe.refpix.name,
             bad_rows, source.nints)
    return flags


def _stage_a(pipe, source, make_store, products):
    """group_scale … charge_migration, integration by integration (or a few at a time, see
    :func:`integrations_per_chunk`), into the ScratchStore that ``make_store(shape)`` makes;
    returns the metadata model of the exposure after them and the table of all-DO_NOT_USE
    groups."""
    nints, ngroups = source.shape[:2]
    aliases = stage_a_steps(pipe, source.template)
    steps = [getattr(pipe, alias) for alias in aliases]
    elapsed = {step.name: 0.0 for step in steps}
    kernels = {step.name: 0.0 for step in steps}
    writers = {}
    dnu_table = np.zeros((nints, ngroups), dtype=bool)
    store = any_flags = None
    first = None
    quiet = _RepeatFilter()
    start = time.perf_counter()
    per_chunk = integrations_per_chunk(source.shape, pipe._chunk_bytes)
    cache = pipe._reference_cache
    # the reference types the stage's steps after each one load
    later_types = [{reftype for later in steps[index + 1:] if not later.skip
                    for reftype in later.reference_file_types} for index in range(len(steps))]
    try:
        for i in range(0, nints, per_chunk):
            if i > 0:
                log.addFilter(quiet)
            # integrations i .. stop - 1 as one model: every step takes a model that holds a
            # run of integrations starting at _integration_offset (as a segment file does)
            stop = min(nints, i + per_chunk)
            model = source.integration_model(i, stop)
            model._integration_offset = i
            for index, step in enumerate(steps):
                if step.skip:
                    step.record_skip(model)
                    if i == 0:
                        log.info("%s skipped", step.name)
                    continue
                if i == 0:
                    log.info("%s running", step.name)
                t0, k0 = time.perf_counter(), kernel_clock.seconds()
                model = step.process(model)
                if stop == nints:
                    # the last integrations: each reference leaves memory after its last user,
                    # as in the whole-exposure run, rather than when the stage ends (the peaks
                    # measured come later, in jump and the fit: 3 x 5 full frame 0.764 ->
                    # 0.760 GB, SLITLESSPRISM 50 x 10 unchanged)
                    cache.keep_only(later_types[index])
                elapsed[step.name] += time.perf_counter() - t0
                kernels[step.name] += kernel_clock.seconds() - k0
                if step.should_save():
                    if step.name not in writers:
                        # integration 0: the header is the one the whole exposure's has here;
                        # PIXELDQ, the union over the integrations, is written at the end
                        path = step.output_path(model._path or model.meta.filename)
                        shapes = _ramp_shapes((nints,) + model.shape[1:], model.has("zeroframe"),
                                              products.refout_shape)
                        shapes["pixeldq"] = model.pixeldq.shape
                        writers[step.name] = (products.start(model, path, shapes), step,
                                              model.pixeldq.copy())
                    writer, _, pixeldq = writers[step.name]
                    writer.write_integrations(i, model, exclude=("pixeldq",))
                    pixeldq |= model.pixeldq
            groupdq = model.groupdq
            if store is None:
                store = make_store((nints,) + model.shape[1:])
                # the union of every group's flags, for the saturation counts of the log
                any_flags = np.zeros(model.shape[-2:], dtype=np.uint8)
            dnu_table[i:stop] = twopoint.dnu_planes(groupdq)
            for j in range(stop - i):
                # one reduction of the flags rather than a masked copy and a test per flag
                # (a full frame's 5 groups: 2.5 ms against 9-14 ms, serial)
                np.bitwise_or(any_flags, np.bitwise_or.reduce(groupdq[j], axis=0), out=any_flags)
            store.write_integrations(i, model.data, groupdq,
                                     model.zeroframe if store.has_zeroframe else None)
            if i == 0:
                first = model
                first.pixeldq  # noqa: B018  (creates the default PIXELDQ if no step made one)
                # the integration is in the store: only its 2-D arrays and headers are kept
                for attr in ("data", "groupdq", "zeroframe"):
                    first._arrays[attr] = None
            else:
                # Steps only OR flags into PIXELDQ, most of them the same in every integration;
                # MIRI's rscd and firstframe add FLUX_ESTIMATED where an integration's own ramp
                # saturates. The whole-exposure run holds the union of them all, so does the
                # exposure's model here (the steps after stage A see that).
                np.bitwise_or(first.pixeldq, model.pixeldq, out=first.pixeldq)
                merge_integration_counts(first, model)
                # A model refers to itself (through meta), so it is freed only by the cyclic
                # garbage collector, which counts objects, not bytes: let go of the arrays now.
                model._arrays.clear()
    finally:
        log.removeFilter(quiet)
    for step in steps:
        if not step.skip:
            _log_done(step, elapsed[step.name], first, kernels[step.name])
    if not pipe.saturation.skip:
        log.info("%s: %d saturated pixels, %d A/D floor pixels in %d integrations",
                 pipe.saturation.name, int(np.count_nonzero(any_flags & _SAT)),
                 int(np.count_nonzero(any_flags & _AD_FLOOR)), nints)
    merged = merged_header_values(first)
    for writer, step, pixeldq in writers.values():
        writer.write_rows("pixeldq", pixeldq)
        writer.update_primary_values(merged)
        products.finish(writer, step)
    log.info("%s: %d integrations through %s to %s in %.2f s", pipe.name, nints, aliases[0],
             aliases[-1], time.perf_counter() - start)
    return _shell(first, store.shape), dnu_table


def merged_header_values(first):
    """The primary-header values ``merge_integration_counts`` completed: the products saved
    during stage A (written from integration 1's header) get them at the end."""
    from ..datamodels.keywords import KEYWORDS

    values = {}
    for path, (_, keyword) in KEYWORDS.items():
        if path.startswith("rscd."):
            value = getattr(first.meta.rscd, path.split(".", 1)[1])
            if value is not None:
                values[keyword] = value
    return values


def merge_integration_counts(first, model):
    """Fold what a later integration's steps counted into the exposure's model ``first``, as the
    whole-exposure run counts it (rscd's pixels of integrations 2 and later)."""
    from ..rscd.rscd_step import merge_counts

    merge_counts(first, model)


def _shell(first, shape):
    """The exposure's metadata model: the headers, tables and 2-D arrays of the first
    integration after stage A, and a stand-in SCI of the whole exposure's shape."""
    shell = RampModel()
    shell._headers.clear()
    shell._headers.update(first._headers)
    shell._tables.update(first._tables)
    shell._extra_hdus[:] = first._extra_hdus
    shell._asdf_meta = first._asdf_meta
    shell._tree = dict(first._tree)
    shell._path = first._path
    for attr, value in first._arrays.items():
        if value is not None and value.ndim == 2:
            shell._arrays[attr] = value
    shell._arrays["data"] = placeholder(shape, np.float32)
    for name, value in first.meta._extra.items():
        if not isinstance(value, MetaNode):
            shell.meta._extra[name] = value
    return shell


def _write_store(products, writer, step, store):
    """Write the whole ramp held by ``store`` through ``writer`` (a step's product), one
    integration at a time, and finish the product."""
    nints, ngroups, ny, nx = store.shape
    data = np.empty((ngroups, ny, nx), np.float32)
    groupdq = np.empty((ngroups, ny, nx), np.uint8)
    zeroframe = np.empty((ny, nx), np.float32) if store.has_zeroframe else None
    for i in range(nints):
        store.read_integration(i, data, groupdq, zeroframe)
        _write_ramp(writer, i, data, groupdq, zeroframe)
    products.finish(writer, step)


def _stage_b(pipe, shell, store, products, input_name, dnu_table, block_rows):
    """jump … ramp_fit and gain_scale on the exposure held by ``store``."""
    nints, ngroups, ny, nx = store.shape
    has_zf = store.has_zeroframe
    ramp_shapes = _ramp_shapes(store.shape, has_zf, products.refout_shape)
    step_input = shell._path or shell.meta.filename

    # jump
    jump = pipe.jump
    jump_writer = None
    # picture_frame and clean_flicker_noise: each makes a draft rate of the whole exposure,
    # then corrects the integrations one by one. The jump product is the ramp before them: when
    # one will change the store, it is written now rather than in the ramp fit's first pass.
    correctors = (pipe.picture_frame, pipe.clean_flicker_noise)
    first_pass = None
    if jump.skip:
        jump.record_status(shell, "SKIPPED")
        log.info("%s skipped", jump.name)
    else:
        jit_warmup.wait("jump")   # a first run's compilation is not the step's time
        if pipe.persistence.skip and all(corrector.skip for corrector in correctors):
            # nothing changes the ramp between jump and the fit: the fit's first pass is made
            # on jump's blocks as they are finished, not by reading the exposure once more
            median = pipe.ramp_fit.begin_median_rates(shell, has_zf, dnu_table)
            if median is not None:
                jit_warmup.wait("ramp_fit")
                first_pass = _FirstPassOnBlocks(median)
        log.info("%s running", jump.name)
        t0, k0 = time.perf_counter(), kernel_clock.seconds()
        shell = jump.process_in_blocks(shell, store, dnu_table, block_rows, on_rows=first_pass)
        release_free_memory()   # the blocks
        spent, kernels = _FirstPassOnBlocks.spent(first_pass)
        _log_done(jump, time.perf_counter() - t0 - spent, shell,
                  kernel_clock.seconds() - k0 - kernels)
        if first_pass is not None and not first_pass.median.complete:
            first_pass = None   # jump gave no blocks (snowballs, showers, too few groups)
        if jump.should_save():
            jump_writer = products.start(shell, jump.output_path(step_input), ramp_shapes)
    if jump_writer is not None and any(not corrector.skip for corrector in correctors):
        _write_store(products, jump_writer, jump, store)
        jump_writer = None
    for corrector in correctors:
        if corrector.skip:
            shell = corrector.run(shell)
            continue
        log.info("%s running", corrector.name)
        t0, k0 = time.perf_counter(), kernel_clock.seconds()
        shell = corrector.process_store(shell, store, products)
        _log_done(corrector, time.perf_counter() - t0, shell, kernel_clock.seconds() - k0)
        if corrector.should_save():
            writer = products.start(shell, corrector.output_path(step_input), ramp_shapes)
            _write_store(products, writer, corrector, store)

    # persistence (flagging happens in the pass below)
    persistence = pipe.persistence
    state, pers_writer, pers_time = None, None, 0.0
    if persistence.skip:
        persistence.record_status(shell, "SKIPPED")
        log.info("%s skipped", persistence.name)
    else:
        log.info("%s running", persistence.name)
        t0 = time.perf_counter()
        state = persistence.begin(shell)
        if state is not None:
            persistence.complete(shell)
        pers_time += time.perf_counter() - t0
        if persistence.should_save():
            pers_writer = products.start(shell, persistence.output_path(step_input), ramp_shapes)
    ramp_writer = None
    if pipe.save_calibrated_ramp:
        ramp_writer = products.start(shell, pipe.output_path(input_name, suffix="ramp"),
                                     ramp_shapes)

    # ramp fitting, first pass (with the products of the finished ramp)
    ramp_fit = pipe.ramp_fit
    log.info("%s running", ramp_fit.name)
    # the fit's time includes its first pass, wherever that was made
    spent, kernels = _FirstPassOnBlocks.spent(first_pass)
    fit_clock = (time.perf_counter() - spent, kernel_clock.seconds() - kernels, products.setup_s)
    fit_start = fit_clock[0]
    jit_warmup.wait("ramp_fit")
    fitter = ramp_fit.begin_fit(shell, has_zf, storage=store.extra, dnu_table=dnu_table,
                                median_rates=None if first_pass is None else first_pass.median)
    pipe._reference_cache.clear()   # the fitter holds what it needs of GAIN and READNOISE
    use_zf = ramp_fit.uses_zeroframe(shell, has_zf)
    # Both passes take as many integrations at a time as stage A did (several of a small
    # frame): a call of the fitter costs about as much in Python and in starting its threads as
    # the fit of a 416x72 integration, and the scratch files are read in fewer pieces. The
    # fitopt arrays are made one integration at a time.
    per_call = (1 if getattr(fitter, "save_opt", False)
                else integrations_per_chunk(store.shape, pipe._chunk_bytes))
    data = np.empty((per_call, ngroups, ny, nx), dtype=np.float32)
    groupdq = np.empty((per_call, ngroups, ny, nx), dtype=np.uint8)
    zeroframe = np.empty((per_call, ny, nx), dtype=np.float32) if has_zf else None
    first_pass_done = first_pass is not None
    passing = (not first_pass_done or state is not None
               or any(writer is not None for writer in (jump_writer, pers_writer, ramp_writer)))
    for i, run in _runs(nints, per_call, data, groupdq, zeroframe) if passing else ():
        store.read_integrations(i, i + len(run[0]), *run)
        for j, (data_i, groupdq_i, zeroframe_i) in enumerate(_integrations(run), start=i):
            _write_ramp(jump_writer, j, data_i, groupdq_i, zeroframe_i)
            if state is not None:
                t0 = time.perf_counter()
                persistence.flag_integrations(state, j, data_i[np.newaxis],
                                              groupdq_i[np.newaxis])
                store.write_gdq(j, groupdq_i)
                pers_time += time.perf_counter() - t0
            _write_ramp(pers_writer, j, data_i, groupdq_i, zeroframe_i)
            _write_ramp(ramp_writer, j, data_i, groupdq_i, zeroframe_i)
        if not first_pass_done:
            fitter.add_median_rates(run[0], run[1], run[2] if use_zf else None)
    if jump_writer is not None:
        products.finish(jump_writer, jump)
    if not persistence.skip:
        if state is not None:
            persistence.finish(shell, state)
        _log_done(persistence, pers_time, shell)
    if pers_writer is not None:
        products.finish(pers_writer, persistence)
    if ramp_writer is not None:
        products.finish(ramp_writer, pipe)

    if fitter.all_saturated:
        ramp_fit.no_slopes(shell)
        log.info("%s done in %.3f s", ramp_fit.name, time.perf_counter() - fit_start)
        log.warning("%s: ramp fitting produced no slopes (every pixel saturated in group 0); "
                    "no rate or rateints products", pipe.name)
        if pipe.save_results or pipe.output_file:
            writer = products.start(shell, pipe.output_path(input_name, suffix="ramp"),
                                    ramp_shapes)
            _write_store(products, writer, pipe, store)
        return None
    # handed over in a list that _fit_pass empties: no reference stays in this frame, so the
    # buffers and the fitter's arrays are freed before the rate is written (the run's peak)
    handed = [fitter, data, groupdq, zeroframe]
    del fitter, data, groupdq, zeroframe
    return _fit_pass(pipe, shell, store, products, input_name, handed, use_zf, fit_clock)


def _fit_pass(pipe, shell, store, products, input_name, handed, use_zf, fit_clock):
    """The ramp fit's second pass, the rateints/fitopt products, the rate and gain_scale.
    ``handed``: [fitter, data, groupdq, zeroframe], emptied here; ``fit_clock``: the ramp fit's
    start (``time.perf_counter()``, ``kernel_clock.seconds()``, ``products.setup_s``)."""
    nints, ngroups, ny, nx = store.shape
    fitter, data, groupdq, zeroframe = handed
    handed.clear()
    ramp_fit, gain_scale = pipe.ramp_fit, pipe.gain_scale
    step_input = shell._path or shell.meta.filename
    plane, cube = (ny, nx), (nints, ny, nx)
    cube_shapes = {name: cube for name in ("data", "dq", "err", "var_poisson", "var_rnoise")}

    fitopt_writer = opt_out = None
    likely = getattr(fitter, "is_likely", False)
    if ramp_fit.save_opt and not likely:
        nseg, ncr = fitter.nseg_max, fitter.ncr_max
        seg_shape = (nints, nseg, ny, nx)
        stand_in = OptionalProduct(
            *(placeholder(seg_shape) for _ in SEGMENT_FIELDS),
            pedestal=placeholder(cube), crmag=placeholder((nints, ncr, ny, nx)))
        fitopt = ramp_fit.optional_model(shell, stand_in)
        shapes = {name: seg_shape for name in SEGMENT_FIELDS}
        shapes.update(pedestal=cube, crmag=(nints, ncr, ny, nx))
        fitopt_writer = products.start(fitopt, ramp_fit.optional_path(shell), shapes)
        opt_out = IntegrationOptional(
            segments=np.zeros((len(SEGMENT_FIELDS), nseg, ny, nx), dtype=np.float32),
            pedestal=np.zeros(plane, dtype=np.float32),
            crmag=np.zeros((ncr, ny, nx), dtype=np.float32))

    def stand_in_product(shape):
        return ImageProduct(placeholder(shape), placeholder(shape), placeholder(shape, np.uint32),
                            placeholder(shape), placeholder(shape))

    rate, rateints = ramp_fit.products(shell, stand_in_product(plane), stand_in_product(cube))
    # The products saved from the rateints, each with its header as of its save.
    fit_writer = None
    if ramp_fit.should_save():
        fit_writer = products.start(rateints, ramp_fit.output_path(step_input, None, 1),
                                    cube_shapes)
    factor = None
    scaled_writer = None
    if gain_scale.skip:
        gain_scale.record_status(rateints, "SKIPPED")
        log.info("%s skipped", gain_scale.name)
    else:
        log.info("%s running", gain_scale.name)
        factor = gain_scale.gain_factor(rateints)
        if factor is None:
            gain_scale.skipped(rateints, "GAINFACT not found")
        else:
            gain_scale.scaled(rateints, factor)
        _log_done(gain_scale, 0.0, rateints)
        if gain_scale.should_save():
            scaled_writer = products.start(rateints, gain_scale.output_path(rateints._path),
                                           cube_shapes)
    final_writer = None
    if pipe.save_results or pipe.output_file:
        final_writer = products.start(rateints, pipe.output_path(input_name, suffix="rateints"),
                                      cube_shapes)

    writers = (fit_writer, scaled_writer, final_writer)
    buffers = [data, groupdq, zeroframe]
    del data, groupdq, zeroframe
    if getattr(fitter, "fits_rows", False) and store.maps_rows:
        # Block of rows by block of rows, every integration at once, the ramp read where the
        # scratch files' pages are (no copy); each pixel's sums are the same.
        buffers.clear()
        write_time = _fit_by_rows(fitter, store, writers, factor,
                                  pipe._chunk_bytes or CHUNK_BYTES)
    else:
        write_time = _fit_by_integrations(fitter, store, buffers, use_zf, writers, factor,
                                          fitopt_writer, opt_out)
    # write_time: the products' share, logged apart from the step's own time; the integration
    # buffers are freed before the rate is combined, scaled and written
    opt_out = None
    release_free_memory()
    result = fitter.finish()
    store.close()   # before the rate is written, which then takes the scratch files' pages
    if likely and ramp_fit.save_opt:
        ramp_fit.save_chisq(shell, fitter.chisq)
    for name in ("data", "dq", "err", "var_poisson", "var_rnoise"):
        setattr(rate, name, getattr(result, name))
    del fitter, result
    # the step's time is the fitting's: creating and filling the products is I/O, as it is
    # for the whole-exposure run, which saves them after the step's line
    fit_start, fit_kernels, setup_start = fit_clock
    write_time += products.setup_s - setup_start
    _log_done(ramp_fit, time.perf_counter() - fit_start - write_time, rate,
              kernel_clock.seconds() - fit_kernels)
    log.info("%s: rateints products created and filled in %.2f s", pipe.name, write_time)
    if fitopt_writer is not None:
        products.finish(fitopt_writer, ramp_fit)
    if fit_writer is not None:
        # the whole-exposure run saves (rate, rateints) as _0_ramp_fit and _1_ramp_fit
        ramp_fit.save_model((rate, None), input_name=step_input)
        products.finish(fit_writer, ramp_fit)
    rate = gain_scale.run(rate)
    if scaled_writer is not None:
        # after the rate's product of the same name, as in the whole-exposure run
        products.finish(scaled_writer, gain_scale)
    if final_writer is not None:
        rateints_path = products.finish(final_writer, pipe)
        with withdrawn_on_failure(rateints_path):
            pipe.save_model(rate, input_name=input_name, suffix="rate")
    return rate


def _fit_by_integrations(fitter, store, buffers, use_zf, writers, factor, fitopt_writer,
                         opt_out):
    """The fit's second pass run of integrations by run of integrations: ``buffers`` ([data,
    groupdq, zeroframe] for a run, emptied here so that they are freed on return), the rest
    as for :func:`_fit_by_rows`; with ``fitopt_writer`` (one integration per run) the fitopt
    arrays go through ``opt_out``. Returns the seconds spent writing."""
    data, groupdq, zeroframe = buffers
    buffers.clear()
    nints, ny, nx = store.shape[0], store.shape[2], store.shape[3]
    # The kernel writes every pixel of the five output planes; only the optional arrays
    # (segments and cosmic rays beyond a pixel's own) must start from zero.
    per_call = data.shape[0]   # integrations at a time, as in the first pass
    all_out = ImageProduct.unfilled((per_call, ny, nx))
    write_time = 0.0
    for i, run in _runs(nints, per_call, data, groupdq, zeroframe):
        count = len(run[0])
        store.read_integrations(i, i + count, *run)
        # read for the last time: their pages serve the products
        store.discard_integrations(i, i + count)
        out = all_out[:count]
        if opt_out is not None:
            for array in (opt_out.segments, opt_out.pedestal, opt_out.crmag):
                array[...] = 0
            fitter.fit_integration(run[0][0], run[1][0], run[2][0] if use_zf else None,
                                   out=out[0], opt_out=opt_out)
        else:
            fitter.fit_integrations(run[0], run[1], run[2] if use_zf else None, out=out)
        t0 = time.perf_counter()
        if fitopt_writer is not None:
            for index, name in enumerate(SEGMENT_FIELDS):
                fitopt_writer.write(name, i, opt_out.segments[index])
            fitopt_writer.write("pedestal", i, opt_out.pedestal)
            fitopt_writer.write("crmag", i, opt_out.crmag)
        _write_rateints(writers, factor, out,
                        lambda writer, attr, array: writer.write_planes(attr, i, array))
        write_time += time.perf_counter() - t0
    return write_time


def _fit_by_rows(fitter, store, writers, factor, ramp_bytes):
    """The fit's second pass block of rows by block of rows (``fitter.fit_rows``), each block
    in runs of integrations read through ``store.map_rows`` (copied where they cannot be
    mapped), their rateints rows written to ``writers`` (ramp_fit's, gain_scale's, the
    pipeline's; None where not saved), the last two scaled by the gain ``factor`` (None: not
    scaled). A run maps about ``ramp_bytes`` of ramp (with its flags), as much as stage A
    took at a time: more raised the peak memory of a series of small frames (MIRI's
    SLITLESSPRISM, 50 integrations: +21 MB with the whole block of 67 MB mapped). Returns the
    seconds spent writing."""
    nints, ngroups, ny, nx = store.shape
    write_time = 0.0
    out = None
    for y0 in range(0, ny, store.block_rows):
        y1 = min(ny, y0 + store.block_rows)
        per_map = store.map_run(y1 - y0, ramp_bytes * 5 // 4)
        for i in range(0, nints, per_map):
            count = min(per_map, nints - i)
            if out is None or out.data.shape[:2] != (count, y1 - y0):
                out = ImageProduct.unfilled((count, y1 - y0, nx))   # every pixel is fitted
            views = store.map_rows(y0, y1, i, i + count)
            if views is None:
                views = (np.empty((count, ngroups, y1 - y0, nx), np.float32),
                         np.empty((count, ngroups, y1 - y0, nx), np.uint8))
                store.read_block(y0, y1, i, *views)
            fitter.fit_rows(y0, *views, out, start=i)
            del views
            # read for the last time: their pages serve the products
            store.discard_rows(y0, y1, i, i + count)
            t0 = time.perf_counter()
            _write_rateints(writers, factor, out, lambda writer, attr, array:
                            writer.write_plane_rows(attr, i, y0, array))
            write_time += time.perf_counter() - t0
    return write_time


def _write_rateints(writers, factor, product, write):
    """``write(writer, attr, array)`` of each rateints array of ``product`` to ramp_fit's
    writer, then, scaled in place by the gain ``factor`` (None: not scaled), to gain_scale's
    and the pipeline's (``writers``: those three, None where not saved)."""
    for index, writer in enumerate(writers):
        if index == 1 and factor is not None:
            scale_by_gain(factor, product.data, product.err, product.var_poisson,
                          product.var_rnoise)
        if writer is not None:
            for name in ("data", "dq", "err", "var_poisson", "var_rnoise"):
                write(writer, name, getattr(product, name))


class _FirstPassOnBlocks:
    """jump's ``on_rows``: the ramp fit's first pass (a ``MedianRates``) made on jump's blocks,
    timed apart, so that its time counts as the fit's rather than jump's."""

    def __init__(self, median):
        self.median = median
        self.seconds = 0.0
        self.kernel_seconds = 0.0

    def __call__(self, y0, data, groupdq, rows):
        t0, k0 = time.perf_counter(), kernel_clock.seconds()
        self.median.add_rows(y0, data, groupdq, rows)
        self.seconds += time.perf_counter() - t0
        self.kernel_seconds += kernel_clock.seconds() - k0

    @staticmethod
    def spent(first_pass):
        """(seconds, kernel-loading seconds) spent in ``first_pass`` (None: none)."""
        if first_pass is None:
            return 0.0, 0.0
        return first_pass.seconds, first_pass.kernel_seconds


def _runs(nints, per_call, *buffers):
    """(i, views) for each run of up to ``per_call`` integrations from i on: the views are the
    first planes of each buffer (None stays None), as many as the run has integrations."""
    for i in range(0, nints, per_call):
        count = min(per_call, nints - i)
        yield i, tuple(None if b is None else b[:count] for b in buffers)


def _integrations(run):
    """The (data, groupdq, zeroframe) of each integration of a run (zeroframe None if absent)."""
    data, groupdq, zeroframe = run
    for j in range(len(data)):
        yield data[j], groupdq[j], None if zeroframe is None else zeroframe[j]
