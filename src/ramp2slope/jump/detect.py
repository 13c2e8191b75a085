"""Jump (cosmic-ray) detection (near-infrared and MIRI ramps): the algorithm behind ``JumpStep``.

Public API
----------
``detect_jumps(data, groupdq, pixeldq, gain, readnoise, *, nframes, group_time, **parameters)``
    ``data``      float32 (nints, ngroups, ny, nx), DN. Read only, never copied.
    ``groupdq``   uint8, same shape. Modified in place.
    ``pixeldq``   uint32 (ny, nx). Modified in place (NO_GAIN_VALUE|DO_NOT_USE where the gain
                  is <= 0 or NaN).
    ``gain``      (ny, nx) e-/DN and ``readnoise`` (ny, nx) CDS read noise in DN, cut out to
                  the science array; used as float32 (converted if needed).
    ``nframes``   frames averaged per group (NFRAMES); ``group_time`` TGROUP in seconds.
    The keyword parameters have the names and defaults of jwst 3.0.0's ``JumpStep`` (see
    :data:`STEP_DEFAULTS`). Returns a :class:`JumpResult`.

``detect_jumps_in_blocks(store, pixeldq, gain, readnoise, *, nframes, group_time, dnu_table,
block_rows, **parameters)``
    The same flags for an exposure that is not held in memory: ``store`` reads and writes it in
    blocks of rows spanning every integration (see the function's docstring). Returns the same
    :class:`JumpResult` as ``detect_jumps`` on the whole exposure.

``effective_minimum_groups(maximum_cores, minimum_groups, nrows)``
    The ``minimum_groups`` stcal actually applies: when it runs in a single process (the
    default ``maximum_cores='1'``) it always uses 3, whatever the parameter says.

Algorithm (spec §4.12, as stcal 1.20 runs it)
---------------------------------------------
1. Nothing happens when ngroups <= 2 (``JumpResult.skipped``).
2. Gain <= 0 or NaN: PIXELDQ |= NO_GAIN_VALUE|DO_NOT_USE (the ramp is still processed with
   that gain, as stcal does).
3. Everything is in electrons: D = DN·gain, RN = readnoise·gain; groups with SAT or DNU are
   ignored. Per pixel, the median of all first differences of all integrations and
   sigma = sqrt(|median| + RN²/nframes) are the first-pass statistics.
4. Mode, from the groups that are DO_NOT_USE in every pixel: sigma clipping across
   integrations (nints >= minimum_sigclip_groups with only_use_ints, otherwise when the
   usable groups of all integrations reach it); a single pass when at least
   ``min_diffs_single_pass`` differences per integration are usable; otherwise the iterative
   search (one CR per pixel per pass, thresholds by the number n of usable differences pooled
   over all integrations: rejection_threshold for n >= 4, four_group_rejection_threshold for
   n = 3, three_group_rejection_threshold for n = 2). Too few usable groups for any mode:
   no detection, and stcal reports -99 primary CRs.
5. Neighbours (flag_4_neighbors) of jumps with min < significance < max; after-jump flagging
   (after_jump_flag_dn/time 1 and 2); JUMP removed where DNU or SAT is also set.
6. Snowballs when ``expand_large_events`` (see :mod:`ramp2slope.jump.snowballs`).
6b. MIRI showers when ``find_showers`` (see :mod:`ramp2slope.jump.showers`), after the
    snowballs; their count then replaces the snowballs' in EXTNCRS (as in stcal, even when
    there were too few differences to look for showers: 0).
7. PRIMECRS = 1000·N_primary/(TGROUP·Ngrp_eff·npix), EXTNCRS = 1e6·N_extended/(same), with
   Ngrp_eff = nints·ngroups − (groups DO_NOT_USE in every pixel, counted after the step) −
   nints; both None when Ngrp_eff < 1.

Differences between the spec and the running stcal that matter here (stcal is followed):
* ``minimum_groups`` is ignored by stcal in single-process mode (it uses 3), see
  :func:`effective_minimum_groups`.
* When no mode can run, stcal's primary-CR count is -99 (so PRIMECRS comes out negative),
  and neighbour/after-jump flagging are skipped, while the JUMP clean-up and snowballs run.
* After-jump flagging flags the next n groups (capped at ngroups-2) and merely skips those
  that have SAT or DNU; it does not look further for n unflagged groups.
* The snowball edge test compares both centroid coordinates with ``nrows - edge_size``.
"""
from dataclasses import dataclass
import multiprocessing

import numpy as np

from ..datamodels import dqflags
from ..errors import Ramp2SlopeError
from . import twopoint
from .showers import SHOWER_DEFAULTS, ShowerFlagger, enough_differences, flag_showers, \
    shower_statistics
from .snowballs import LargeEventFlagger
from .snowballs import expand_large_events as _expand_large_events

__all__ = ["detect_jumps", "detect_jumps_in_blocks", "JumpResult", "STEP_DEFAULTS",
           "effective_minimum_groups"]

#: JumpStep parameters of jwst 3.0.0 with their defaults.
STEP_DEFAULTS = dict(
    rejection_threshold=4.0,
    three_group_rejection_threshold=6.0,
    four_group_rejection_threshold=5.0,
    maximum_cores="1",
    flag_4_neighbors=True,
    max_jump_to_flag_neighbors=1000.0,
    min_jump_to_flag_neighbors=10.0,
    after_jump_flag_dn1=0.0,
    after_jump_flag_time1=0.0,
    after_jump_flag_dn2=0.0,
    after_jump_flag_time2=0.0,
    expand_large_events=False,
    min_sat_area=1.0,
    min_jump_area=5.0,
    expand_factor=2.0,
    use_ellipses=False,
    sat_required_snowball=True,
    min_sat_radius_extend=2.5,
    sat_expand=2,
    edge_size=25,
    mask_snowball_core_next_int=True,
    snowball_time_masked_next_int=4000,
    min_diffs_single_pass=10,
    max_extended_radius=200,
    minimum_groups=3,
    minimum_sigclip_groups=100,
    only_use_ints=True,
    **SHOWER_DEFAULTS,
)


@dataclass
class JumpResult:
    """What the Step needs besides the updated DQ arrays."""

    #: True when ngroups <= 2: nothing was done (S_JUMP = 'SKIPPED').
    skipped: bool
    #: Primary cosmic rays as stcal counts them: elements carrying JUMP_DET right after the
    #: detection pass (before neighbours and after-jump flags); -99 if no mode could run.
    number_primary_crs: int
    #: Number of snowballs (0 unless expand_large_events).
    number_snowballs: int
    #: meta.exposure.primary_cosmic_rays (PRIMECRS) or None when not defined.
    primecrs: float | None
    #: meta.exposure.extended_emission_events (EXTNCRS) or None when not defined.
    extncrs: float | None
    #: Detection mode used: 'iterative', 'single_pass', 'sigma_clip', 'none' or 'skipped'.
    mode: str
    #: Number of MIRI showers (0 unless find_showers).
    number_showers: int = 0


#: Number of differences per pixel above which :func:`detect_jumps` keeps the first-pass
#: statistics of the detection pass (16 bytes per pixel) instead of computing them again. At
#: or below it, those of a few pixels with a jump per row are kept for neighbour flagging
#: (``twopoint.kept_medians``).
_KEEP_STATS_DIFFS = 24
#: No kept statistics.
_NO_STATS = np.zeros((0, 2, 1), dtype=np.float64)

_MODE_NAMES = {
    twopoint.MODE_SKIP: "none",
    twopoint.MODE_ITERATIVE: "iterative",
    twopoint.MODE_SINGLE_PASS: "single_pass",
    twopoint.MODE_SIGMA_CLIP: "sigma_clip",
}


def effective_minimum_groups(maximum_cores, minimum_groups, nrows):
    """The minimum_groups stcal 1.20 applies: 3 whenever it works in a single process."""
    available = multiprocessing.cpu_count()
    text = str(maximum_cores)
    if text.isnumeric():
        slices = int(text)
    elif text.lower() in ("none", "one"):
        slices = 1
    elif text == "quarter":
        slices = available // 4 or 1
    elif text == "half":
        slices = available // 2 or 1
    elif text == "all":
        slices = available
    else:
        slices = 1
    slices = min(nrows, slices, available)
    return 3 if slices == 1 else minimum_groups


def _check(data, groupdq, pixeldq, gain, readnoise):
    if data.ndim != 4:
        raise Ramp2SlopeError(f"jump: data must be 4-D (nints, ngroups, ny, nx), got {data.shape}")
    if groupdq.shape != data.shape or groupdq.dtype != np.uint8:
        raise Ramp2SlopeError("jump: groupdq must be uint8 with the shape of data")
    ny, nx = data.shape[2:]
    if pixeldq.shape != (ny, nx):
        raise Ramp2SlopeError("jump: pixeldq must have shape (ny, nx) of the data")
    for name, arr in (("gain", gain), ("readnoise", readnoise)):
        if arr.shape != (ny, nx):
            raise Ramp2SlopeError(f"jump: {name} has shape {arr.shape}, expected {(ny, nx)}")


def detect_jumps(data, groupdq, pixeldq, gain, readnoise, *, nframes, group_time,
                 rejection_threshold=4.0, three_group_rejection_threshold=6.0,
                 four_group_rejection_threshold=5.0, flag_4_neighbors=True,
                 max_jump_to_flag_neighbors=1000.0, min_jump_to_flag_neighbors=10.0,
                 after_jump_flag_dn1=0.0, after_jump_flag_time1=0.0,
                 after_jump_flag_dn2=0.0, after_jump_flag_time2=0.0,
                 expand_large_events=False, min_sat_area=1.0, min_jump_area=5.0,
                 expand_factor=2.0, use_ellipses=False, sat_required_snowball=True,
                 min_sat_radius_extend=2.5, sat_expand=2, edge_size=25,
                 mask_snowball_core_next_int=True, snowball_time_masked_next_int=4000,
                 max_extended_radius=200, minimum_groups=3, minimum_sigclip_groups=100,
                 only_use_ints=True, min_diffs_single_pass=10, find_showers=False,
                 max_shower_amplitude=4.0, extend_snr_threshold=1.2, extend_min_area=90,
                 extend_inner_radius=1.0, extend_outer_radius=2.6,
                 extend_ellipse_expand_ratio=1.1, time_masked_after_shower=15.0,
                 dnu_table=None):
    """Detect jumps in place on ``groupdq``/``pixeldq``; see the module docstring.

    ``use_ellipses`` is accepted for compatibility and ignored (deprecated in jwst too), and
    so is ``max_shower_amplitude`` (jwst 3.0.0 does not pass it on; see
    :mod:`ramp2slope.jump.showers`).
    ``minimum_groups`` is applied as given; pass :func:`effective_minimum_groups` to mimic
    stcal's single-process behaviour. ``dnu_table`` is the (nints, ngroups) table of the groups
    that are DO_NOT_USE in every pixel, from which the mode is chosen (computed from
    ``groupdq`` when None).
    """
    data = np.asarray(data)
    if data.dtype != np.float32:
        data = data.astype(np.float32)
    _check(data, groupdq, pixeldq, np.asarray(gain), np.asarray(readnoise))
    nints, ngroups, ny, nx = data.shape
    if ngroups <= 2:
        return JumpResult(True, 0, 0, None, None, "skipped")

    gain, readnoise, n1, e1, n2, e2 = _prepare(
        pixeldq, gain, readnoise, group_time, after_jump_flag_dn1, after_jump_flag_time1,
        after_jump_flag_dn2, after_jump_flag_time2)
    if dnu_table is None:
        dnu_table = twopoint.dnu_planes(groupdq)
    mode, skipped = twopoint.choose_mode(
        np.asarray(dnu_table, dtype=bool), minimum_groups=minimum_groups,
        minimum_sigclip_groups=minimum_sigclip_groups, only_use_ints=bool(only_use_ints),
        min_diffs_single_pass=min_diffs_single_pass)

    # the first-pass statistics of the pixels with a jump, kept from the detection pass when
    # they are expensive to compute again (a median of many differences)
    stats, kept = _NO_STATS, None
    if skipped:
        number_crs = -99
    else:
        if nints * (ngroups - 1) > _KEEP_STATS_DIFFS:
            stats = np.empty((ny, 2, nx), dtype=np.float64)
        elif flag_4_neighbors:
            kept = twopoint.kept_medians(ny)
        counts = np.empty(ny, dtype=np.int64)
        twopoint.detect(data, groupdq, gain, readnoise, float(nframes), mode,
                        float(rejection_threshold), float(three_group_rejection_threshold),
                        float(four_group_rejection_threshold), bool(only_use_ints), stats,
                        counts, kept)
        number_crs = int(counts.sum())
        if mode == twopoint.MODE_SIGMA_CLIP:
            full = twopoint.jump_or_dnu_planes(groupdq)
            if full.any():   # flags cleared: counted again
                twopoint.reset_jump_planes(groupdq, full)
                number_crs = int(twopoint.count_jump_flags(groupdq))
        if flag_4_neighbors:
            twopoint.flag_neighbours(data, groupdq, gain, readnoise, float(nframes),
                                     float(min_jump_to_flag_neighbors),
                                     float(max_jump_to_flag_neighbors), stats, kept)
    do_after = (not skipped) and (n1 > 0 or n2 > 0)
    twopoint.flag_after_jumps_and_clean(data, groupdq, gain, readnoise, float(nframes),
                                        e1, n1, e2, n2, do_after, stats, ny)

    number_snowballs = 0
    if expand_large_events:
        number_snowballs = _expand_large_events(
            groupdq, min_jump_area=min_jump_area, min_sat_area=min_sat_area,
            expand_factor=float(expand_factor), sat_required_snowball=sat_required_snowball,
            min_sat_radius_extend=min_sat_radius_extend, sat_expand=int(sat_expand) * 2,
            edge_size=edge_size, mask_snowball_core_next_int=mask_snowball_core_next_int,
            persist_groups=int(snowball_time_masked_next_int // group_time),
            max_extended_width=int(max_extended_radius) * 2)

    final_dnu = twopoint.dnu_planes(groupdq)
    number_showers = 0
    if find_showers:
        # showers never change a DO_NOT_USE flag, so the table serves both purposes
        number_showers = flag_showers(
            data, groupdq, pixeldq, gain, readnoise, nframes=nframes, group_time=group_time,
            minimum_sigclip_groups=minimum_sigclip_groups,
            max_extended_radius=max_extended_radius, dnu_table=final_dnu,
            extend_snr_threshold=extend_snr_threshold, extend_min_area=extend_min_area,
            extend_inner_radius=extend_inner_radius, extend_outer_radius=extend_outer_radius,
            extend_ellipse_expand_ratio=extend_ellipse_expand_ratio,
            time_masked_after_shower=time_masked_after_shower)

    return _result(final_dnu, data.shape, group_time, number_crs, number_snowballs, mode,
                   skipped, number_showers if find_showers else None)


def _prepare(pixeldq, gain, readnoise, group_time, after_jump_flag_dn1, after_jump_flag_time1,
             after_jump_flag_dn2, after_jump_flag_time2):
    """float32 gain and read noise, bad-gain PIXELDQ flags, and the after-jump settings."""
    gain = np.ascontiguousarray(gain, dtype=np.float32)
    readnoise = np.ascontiguousarray(readnoise, dtype=np.float32)
    bad_gain = (gain <= 0.0) | np.isnan(gain)
    pixeldq[bad_gain] |= np.uint32(dqflags.pixel["NO_GAIN_VALUE"] | dqflags.pixel["DO_NOT_USE"])

    # after-jump thresholds in electrons (float32 like stcal: a Python float times the
    # float32 median gain stays float32) and group counts
    n1 = int(after_jump_flag_time1 // group_time)
    n2 = int(after_jump_flag_time2 // group_time)
    e1 = e2 = 0.0
    if n1 > 0 or n2 > 0:
        median_gain = np.nanmedian(gain)
        e1 = float(float(after_jump_flag_dn1) * median_gain)
        e2 = float(float(after_jump_flag_dn2) * median_gain)
    return gain, readnoise, n1, e1, n2, e2


def _result(final_dnu_table, shape, group_time, number_crs, number_snowballs, mode, skipped,
            number_showers=None):
    """The JumpResult, with PRIMECRS/EXTNCRS from the DO_NOT_USE groups after the step (the
    extended events are the showers when they were looked for, else the snowballs)."""
    nints, ngroups, ny, nx = shape
    all_dnu = int(np.asarray(final_dnu_table).sum())
    effective_groups = nints * ngroups - all_dnu - nints
    primecrs = extncrs = None
    if effective_groups >= 1:
        exposure = group_time * effective_groups * (ny * nx)
        primecrs = 1000 * number_crs / exposure
        extended = number_snowballs if number_showers is None else number_showers
        extncrs = 1e6 * extended / exposure
    return JumpResult(False, number_crs, number_snowballs, primecrs, extncrs,
                      _MODE_NAMES[mode] if not skipped else "none", number_showers or 0)


def detect_jumps_in_blocks(store, pixeldq, gain, readnoise, *, nframes, group_time, dnu_table,
                           block_rows, on_rows=None, **parameters):
    """:func:`detect_jumps` for an exposure read and written in blocks of rows.

    ``store`` holds the exposure, of shape ``store.shape = (nints, ngroups, ny, nx)``:

    * ``store.read_rows(y0, y1, data, groupdq)`` fills float32 ``data`` (or skips it when None)
      and uint8 ``groupdq`` buffers of shape (nints, ngroups, y1 - y0, nx) with those rows;
    * ``store.write_gdq_rows(y0, groupdq)`` stores GROUPDQ rows y0, y0 + 1, ... (``groupdq`` may
      be a view of rows of such a buffer);
    * ``store.read_gdq(i, out)`` and ``store.write_gdq(i, groupdq_i)``: the GROUPDQ of one
      integration (ngroups, ny, nx), used by the snowball and shower passes;
    * ``store.read_integration(i, data=out)`` (only with ``find_showers``): the float32 ramp
      of one integration (ngroups, ny, nx);
    * optionally ``store.map_rows(y0, y1)``: ``(data, groupdq)`` arrays of those rows that need
      no copy (a scratch file mapped copy-on-write), or None, and ``store.map_run(rows)``: the
      integrations of ``rows`` rows to map at once; the ramp is read from there when a block
      of every integration may be mapped.

    ``dnu_table`` is the (nints, ngroups) table of the groups that are DO_NOT_USE in every pixel
    (:func:`twopoint.dnu_planes` of the GROUPDQ before the step). ``block_rows`` is the number of
    rows per block (the memory used is about that many rows of every integration). The other
    arguments are those of :func:`detect_jumps`; ``pixeldq`` is modified in place.

    ``on_rows(y0, data, groupdq, rows)``, when given, is called with rows y0 .. y0 + rows - 1 of
    every integration as the step leaves them, each row once, in the first ``rows`` rows of
    C-contiguous (nints, ngroups, R, nx) buffers (valid during the call only), so that what
    comes after jump can be done in the same reading of the exposure. It is not called at all
    when the step would change flags after the blocks (snowballs, showers) or when detection is
    skipped.

    The flags are exactly those of :func:`detect_jumps` on the whole exposure: detection and
    after-jump flagging only involve one pixel's ramps; neighbour flagging reaches the rows
    next to a block, so the last row of each block is finished once the next block's triggers
    are known; the sigma-clip mode's clearing of all-JUMP planes is decided from the whole
    exposure before the neighbours are flagged (a detection-only pass first, which stops as
    soon as no plane can be full); the statistics
    (mode, PRIMECRS, EXTNCRS) come from whole-exposure tables and counts; snowballs are
    found integration by integration after every block; and showers, whose per-pixel
    statistics pool every integration, take one more pass over the blocks for those
    statistics and are then found and flagged integration by integration.
    """
    unknown = set(parameters) - set(STEP_DEFAULTS)
    if unknown:
        raise TypeError(f"detect_jumps_in_blocks: unknown parameters {', '.join(sorted(unknown))}")
    p = {**STEP_DEFAULTS, **parameters}
    nints, ngroups, ny, nx = (int(n) for n in store.shape)
    ny_nx = (ny, nx)
    for name, arr in (("pixeldq", pixeldq), ("gain", gain), ("readnoise", readnoise)):
        if np.shape(arr) != ny_nx:
            raise Ramp2SlopeError(f"jump: {name} has shape {np.shape(arr)}, expected {ny_nx}")
    if ngroups <= 2:
        return JumpResult(True, 0, 0, None, None, "skipped")
    gain, readnoise, n1, e1, n2, e2 = _prepare(
        pixeldq, gain, readnoise, group_time, p["after_jump_flag_dn1"],
        p["after_jump_flag_time1"], p["after_jump_flag_dn2"], p["after_jump_flag_time2"])
    dnu_table = np.asarray(dnu_table, dtype=bool)
    mode, skipped = twopoint.choose_mode(
        dnu_table, minimum_groups=p["minimum_groups"],
        minimum_sigclip_groups=p["minimum_sigclip_groups"],
        only_use_ints=bool(p["only_use_ints"]), min_diffs_single_pass=p["min_diffs_single_pass"])
    blocks = _RowBlocks(store, max(1, min(int(block_rows), ny)))
    nframes = float(nframes)
    detect_args = (nframes, mode, float(p["rejection_threshold"]),
                   float(p["three_group_rejection_threshold"]),
                   float(p["four_group_rejection_threshold"]), bool(p["only_use_ints"]))

    full = None
    if not skipped and mode == twopoint.MODE_SIGMA_CLIP:
        # The planes where every pixel is JUMP or DNU after detection have their JUMP-only
        # pixels cleared before anything else, so they must be known first: detect block by
        # block (without storing anything) until every plane has a pixel that is neither,
        # which usually happens in the first block. The planes DO_NOT_USE in every pixel are
        # left out from the start: no pixel of theirs is exactly JUMP, so clearing them changes
        # nothing, and they would never stop being full (MIRI's last group: the whole exposure
        # was detected twice).
        full = ~dnu_table
        for y0, y1, data, gdq in blocks.read(with_data=True) if full.any() else ():
            twopoint.detect(data, gdq, gain[y0:y1], readnoise[y0:y1], *detect_args, _NO_STATS)
            full &= twopoint.jump_or_dnu_planes(gdq)
            if not full.any():
                break

    neighbours = (not skipped) and bool(p["flag_4_neighbors"])
    do_after = (not skipped) and (n1 > 0 or n2 > 0)
    if skipped or p["expand_large_events"] or p["find_showers"]:
        on_rows = None
    after_args = (nframes, e1, n1, e2, n2, do_after)
    no_data = np.zeros((1, 1, 1, 1), dtype=np.float32)
    number_crs = -99 if skipped else 0

    def finish(y0, data, gdq, stats, rows):
        """After-jump flags and the JUMP clean-up for the first ``rows`` rows (y0...) of a
        block. (Whole buffers and a row count rather than views of their first rows: the
        kernels see one memory layout, so they are compiled once.)"""
        twopoint.flag_after_jumps_and_clean(data if do_after else no_data, gdq,
                                            gain[y0:y0 + gdq.shape[2]],
                                            readnoise[y0:y0 + gdq.shape[2]], *after_args, stats,
                                            rows)

    # The last row of a block waits for the next block's triggers, and the block is stored
    # whole once that row is done (whole blocks are what the store moves fastest):
    # (y, data, gdq, triggers, stats) of that row, and (y0, gdq) of the block.
    held = held_block = triggers_buffer = row_any_buffer = None
    no_triggers = np.zeros((nints, ngroups, nx), dtype=np.uint8)
    no_rows_any = np.zeros((nints, ngroups, 1), dtype=np.uint8)
    # first-pass statistics of the pixels with a jump, from the detection pass
    stats_buffer = np.empty((blocks.rows, 2, nx), dtype=np.float64)
    counts_buffer = np.empty(blocks.rows, dtype=np.int64)
    for y0, y1, data, gdq in blocks.read(with_data=not skipped or do_after):
        rows = y1 - y0
        stats = _NO_STATS
        if not skipped:
            stats, counts = stats_buffer[:rows], counts_buffer[:rows]
            twopoint.detect(data, gdq, gain[y0:y1], readnoise[y0:y1], *detect_args, stats,
                            counts)
            if full is not None and full.any():   # flags cleared: counted again
                twopoint.reset_jump_planes(gdq, full)
                number_crs += int(twopoint.count_jump_flags(gdq))
            else:
                number_crs += int(counts.sum())
        if not neighbours:
            finish(y0, data, gdq, stats, rows)
            if on_rows is not None:
                on_rows(y0, data, gdq, rows)
            store.write_gdq_rows(y0, gdq)
            continue
        # the kernel writes what is read (row_any, and the rows it marks): a full block's
        # buffers serve every full block
        if rows == blocks.rows:
            if triggers_buffer is None:
                triggers_buffer = np.empty(gdq.shape, dtype=np.uint8)
                row_any_buffer = np.empty(gdq.shape[:3], dtype=np.uint8)
            triggers, row_any = triggers_buffer, row_any_buffer
        else:
            triggers = np.empty(gdq.shape, dtype=np.uint8)
            row_any = np.empty(gdq.shape[:3], dtype=np.uint8)
        twopoint.neighbour_triggers(data, gdq, gain[y0:y1], readnoise[y0:y1], nframes,
                                    float(p["min_jump_to_flag_neighbors"]),
                                    float(p["max_jump_to_flag_neighbors"]), triggers, row_any,
                                    stats)
        above = no_triggers if held is None else held[3]
        twopoint.apply_neighbour_triggers(gdq, triggers, row_any, above)
        if held is not None:
            # the row above this block gets the triggers of this block's first row
            hy, hdata, hgdq, _, hstats = held
            twopoint.apply_neighbour_triggers(hgdq, np.zeros_like(hgdq), no_rows_any,
                                              _trigger_row(triggers, row_any, 0))
            finish(hy, hdata, hgdq, hstats, 1)
            if on_rows is not None:
                on_rows(hy, hdata, hgdq, 1)
            held_block[1][:, :, -1:] = hgdq
            store.write_gdq_rows(*held_block)
        keep_data = do_after or on_rows is not None
        held = (y1 - 1, data[:, :, rows - 1:].copy() if keep_data else None,
                gdq[:, :, rows - 1:].copy(), _trigger_row(triggers, row_any, rows - 1),
                stats[rows - 1:].copy() if len(stats) else stats)
        if rows > 1:
            finish(y0, data, gdq, stats, rows - 1)
            if on_rows is not None:
                on_rows(y0, data, gdq, rows - 1)
        held_block = (y0, gdq)   # the reader reads the next block into its other buffer
    if held is not None:
        finish(held[0], held[1], held[2], held[4], 1)
        if on_rows is not None:
            on_rows(held[0], held[1], held[2], 1)
        held_block[1][:, :, -1:] = held[2]
        store.write_gdq_rows(*held_block)

    number_snowballs = 0
    final_dnu = dnu_table
    if p["expand_large_events"]:
        flagger = LargeEventFlagger(
            min_jump_area=p["min_jump_area"], min_sat_area=p["min_sat_area"],
            expand_factor=float(p["expand_factor"]),
            sat_required_snowball=p["sat_required_snowball"],
            min_sat_radius_extend=p["min_sat_radius_extend"], sat_expand=int(p["sat_expand"]) * 2,
            edge_size=p["edge_size"], mask_snowball_core_next_int=p["mask_snowball_core_next_int"],
            persist_groups=int(p["snowball_time_masked_next_int"] // group_time),
            max_extended_width=int(p["max_extended_radius"]) * 2)
        final_dnu = np.zeros_like(dnu_table)
        gdq_i = np.empty((ngroups, ny, nx), dtype=np.uint8)
        for i in range(nints):
            store.read_gdq(i, gdq_i)
            flagger.flag_integration(gdq_i)
            store.write_gdq(i, gdq_i)
            final_dnu[i] = twopoint.dnu_planes(gdq_i[np.newaxis])[0]
        number_snowballs = flagger.total
    # Without snowballs the step changes no DO_NOT_USE flag, so the table is the initial one
    # (nor do showers change any).
    number_showers = None
    if p["find_showers"]:
        number_showers = _showers_in_blocks(store, blocks, pixeldq, gain, readnoise, nframes,
                                            group_time, final_dnu, p)
    return _result(final_dnu, store.shape, group_time, number_crs, number_snowballs, mode,
                   skipped, number_showers)


def _trigger_row(triggers, row_any, y):
    """Row y of every plane's neighbour triggers, (nints, ngroups, nx): zeros where the plane's
    row has none (``triggers`` is not written there, see ``twopoint.neighbour_triggers``)."""
    return np.where(row_any[:, :, y, np.newaxis] != 0, triggers[:, :, y], np.uint8(0))


def _showers_in_blocks(store, blocks, pixeldq, gain, readnoise, nframes, group_time, dnu_table,
                       p):
    """Showers for an exposure held by ``store``: the statistics need every integration of a
    pixel (one pass over the blocks), the search whole frames of one integration."""
    if not enough_differences(dnu_table):
        return 0
    nints, ngroups, ny, nx = store.shape
    centre = spread = None
    for y0, y1, data, gdq in blocks.read(with_data=True):
        c, s = shower_statistics(data, gdq, gain[y0:y1], readnoise[y0:y1], nframes=nframes,
                                 minimum_sigclip_groups=p["minimum_sigclip_groups"])
        if centre is None:
            centre = np.empty(c.shape[:-2] + (ny, nx), dtype=c.dtype)
            spread = np.empty(s.shape[:-2] + (ny, nx), dtype=s.dtype)
        centre[..., y0:y1, :] = c
        spread[..., y0:y1, :] = s
    flagger = ShowerFlagger(
        pixeldq, gain, group_time=group_time, extend_snr_threshold=p["extend_snr_threshold"],
        extend_min_area=p["extend_min_area"], extend_inner_radius=p["extend_inner_radius"],
        extend_outer_radius=p["extend_outer_radius"],
        extend_ellipse_expand_ratio=p["extend_ellipse_expand_ratio"],
        time_masked_after_shower=p["time_masked_after_shower"],
        max_extended_radius=p["max_extended_radius"])
    data_i = np.empty((ngroups, ny, nx), dtype=np.float32)
    gdq_i = np.empty((ngroups, ny, nx), dtype=np.uint8)
    for i in range(nints):
        store.read_integration(i, data=data_i)
        store.read_gdq(i, gdq_i)
        if flagger.flag_integration(data_i, gdq_i, centre, spread):
            store.write_gdq(i, gdq_i)
    return flagger.total


class _RowBlocks:
    """Reads an exposure from a store in blocks of rows, into reused buffers; the ramp of a
    block is not copied where the store can map it (``store.map_rows``), since jump only
    reads it.

    The GROUPDQ of consecutive blocks alternates between two buffers: a block's stays as it
    is while the next block is read and processed, so that jump can hold it (its last row
    waits for the next block's neighbour flags) without copying it."""

    def __init__(self, store, rows):
        self.store = store
        self.rows = rows
        nints, ngroups, ny, nx = store.shape
        self.ny = ny
        # mapped only where a block of every integration is within what a reader maps at once
        self.mapped = getattr(store, "map_rows", None)
        if self.mapped is not None and store.map_run(rows) < nints:
            self.mapped = None
        self.data = None   # made when a block cannot be mapped
        self.gdq_shape = (nints, ngroups, rows, nx)
        self.gdq_buffers = []   # made as needed, two at most

    def read(self, with_data):
        """Yield (y0, y1, data, groupdq) for consecutive blocks (data is None without data)."""
        for index, y0 in enumerate(range(0, self.ny, self.rows)):
            y1 = min(y0 + self.rows, self.ny)
            views = self.mapped(y0, y1) if with_data and self.mapped is not None else None
            data = None if views is None else views[0]
            if y1 - y0 == self.rows:
                if len(self.gdq_buffers) <= index % 2:
                    self.gdq_buffers.append(np.empty(self.gdq_shape, dtype=np.uint8))
                gdq = self.gdq_buffers[index % 2]
                if data is None and with_data:
                    if self.data is None:
                        self.data = np.empty(self.gdq_shape, dtype=np.float32)
                    data = self.data
            else:   # the last, shorter block gets buffers of its own (contiguous)
                gdq = np.empty(self.gdq_shape[:2] + (y1 - y0,) + self.gdq_shape[3:], np.uint8)
                if data is None and with_data:
                    data = np.empty(gdq.shape, np.float32)
            self.store.read_rows(y0, y1, None if views is not None else data, gdq)
            yield y0, y1, data, gdq
            del views, data
