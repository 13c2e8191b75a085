"""Superstripe and multistripe (substripe) readout geometry, as jwst 3.0.0 defines it.

A striped readout reads, along the detector's slow axis, ``reads1`` reference rows, skips
``skips1`` rows, then reads ``reads2`` science rows; with ``repeat_stripe`` the head returns to
the subarray start after each science block (re-reading the reference rows), otherwise it skips
``skips2`` rows and reads on. A superstripe exposure stores ``num_superstripe`` such stripes as
successive integrations, stripe ``k`` starting ``k * superstripe_step`` rows further on.

All row ranges here are half-open ``(start, stop)`` pairs of 0-based *detector-frame* slow-axis
indices ("full") and of indices into the striped array ("sub"). Reference arrays are cut into
stripes by :func:`stripe_reference`; :func:`collate_superstripes` puts a corrected superstripe
ramp back into an ordinary ramp of the parent frame.
"""
import logging
from dataclasses import dataclass

import numpy as np

from ..errors import Ramp2SlopeError
from ..refpix.orientation import detector_to_dms, dms_to_detector

log = logging.getLogger("ramp2slope")

__all__ = ["StripeLayout", "superstripe_ranges", "substripe_ranges", "stripe_reference",
           "collate_superstripes", "stripe_int_times", "stripe_read_times", "PARENT_FRAME"]

FULL_SIZE = 2048

#: Subarrays whose collated ramp covers the whole slow axis (1-based start, size), as jwst's
#: ``STRIPE_TO_STANDARD_SUBARRAY``; other layouts collate to the span the stripes cover.
PARENT_FRAME = {name: (1, FULL_SIZE) for name in
                ("SUB17STRIPE_SOSS", "SUB60STRIPE_SOSS", "SUB204STRIPE_SOSS", "SUB680STRIPE_SOSS")}


class StripeLayoutError(Ramp2SlopeError, ValueError):
    """Stripe keywords that do not describe the science array (a ValueError, as in jwst)."""


def _int(value, default=0):
    return default if value is None else int(value)


@dataclass
class StripeLayout:
    """The subarray and stripe keywords of an exposure (``meta.subarray``)."""

    name: str
    xstart: int
    ystart: int
    xsize: int
    ysize: int
    fastaxis: int
    slowaxis: int
    reads1: int = 0
    skips1: int = 0
    reads2: int = 0
    skips2: int = 0
    repeat_stripe: int = 0
    interleave_reads1: int = 0
    superstripe_step: int = 0
    num_superstripe: int = 0

    @classmethod
    def from_header(cls, header):
        """The layout from a primary header's SUBARRAY, SUBSTRT/SUBSIZE, FASTAXIS/SLOWAXIS and
        MSTR_*/SSTR_* keywords."""
        get = header.get
        return cls(str(get("SUBARRAY") or ""), _int(get("SUBSTRT1"), 1), _int(get("SUBSTRT2"), 1),
                   _int(get("SUBSIZE1")), _int(get("SUBSIZE2")), _int(get("FASTAXIS"), 1),
                   _int(get("SLOWAXIS"), 2), _int(get("MSTR_RD1")), _int(get("MSTR_SK1")),
                   _int(get("MSTR_RD2")), _int(get("MSTR_SK2")), _int(get("MSTR_RPT")),
                   _int(get("MSTR_ILV")), _int(get("SSTR_STP")), _int(get("SSTR_NST")))

    @classmethod
    def from_model(cls, model):
        sub = model.meta.subarray
        return cls(str(sub.name or ""), _int(sub.xstart, 1), _int(sub.ystart, 1), _int(sub.xsize),
                   _int(sub.ysize), _int(sub.fastaxis, 1), _int(sub.slowaxis, 2),
                   _int(sub.multistripe_reads1), _int(sub.multistripe_skips1),
                   _int(sub.multistripe_reads2), _int(sub.multistripe_skips2),
                   _int(sub.repeat_stripe), _int(sub.interleave_reads1),
                   _int(sub.superstripe_step), _int(sub.num_superstripe))

    @property
    def slow_size(self):
        return self.ysize if abs(self.fastaxis) == 1 else self.xsize

    @property
    def fast_size(self):
        return self.xsize if abs(self.fastaxis) == 1 else self.ysize

    @property
    def fast_start(self):
        """0-based detector-frame start along the fast axis (as jwst's refpix uses it)."""
        return (self.xstart if abs(self.fastaxis) == 1 else self.ystart) - 1

    def slow_start_index(self):
        """0-based detector-frame index of the first row read."""
        start = self.ystart if abs(self.fastaxis) == 1 else self.xstart
        if self.slowaxis < 0 and start == 1:
            # early products recorded 1 where the reversed axis should say 2048
            log.warning("%s: Slow start is set to 1 for slowaxis=%d; the readout taken to start "
                        "at detector row 0", self.name, self.slowaxis)
            index = 0
        elif self.slowaxis < 0:
            index = FULL_SIZE - start
        else:
            index = start - 1
        if "DHS" in self.name.upper() and index != 0:
            # early DHS products carry a wrong start; jwst reads from 0
            log.warning("%s: Setting detector start index to 0 for DHS (the start keyword says "
                        "%d)", self.name, index)
            index = 0
        return index


def superstripe_ranges(layout):
    """Per stripe: (science full ranges, science sub ranges, reference full, reference sub),
    each a list of (start, stop) in the detector frame. A pure substripe is one stripe."""
    nstripe = max(layout.num_superstripe, 1)
    reads2 = layout.reads2 if layout.reads2 > 0 else layout.superstripe_step
    start = layout.slow_start_index()
    size = layout.slow_size
    out = []
    for stripe in range(nstripe):
        sci_full, sci_sub, ref_full, ref_sub = [], [], [], []
        head, filled = start, 0
        if layout.reads1 > 0:
            ref_full.append((head, head + layout.reads1))
            ref_sub.append((filled, filled + layout.reads1))
            head += layout.reads1
            filled += layout.reads1
        head += layout.skips1 + layout.superstripe_step * stripe
        sci_full.append((head, head + reads2))
        sci_sub.append((filled, filled + reads2))
        head += reads2
        filled += reads2
        skipped = layout.skips1
        while filled < size:
            if layout.repeat_stripe > 0:
                head = start
                if layout.reads1 > 0:
                    ref_full.append((head, head + layout.reads1))
                    ref_sub.append((filled, filled + layout.reads1))
                    head += layout.reads1
                    filled += layout.reads1
                if layout.interleave_reads1:
                    skipped += layout.skips2 + reads2
                    head += skipped
                else:
                    head += layout.skips1 + layout.superstripe_step * stripe
            else:
                head += layout.skips2
            sci_full.append((head, head + reads2))
            sci_sub.append((filled, filled + reads2))
            head += reads2
            filled += reads2
        if filled != size:
            raise StripeLayoutError(f"{layout.name}: stripe readout does not match science array "
                                    f"shape ({filled} rows read, {size} in the array)")
        out.append((sci_full, sci_sub, ref_full, ref_sub))
    return out


def substripe_ranges(layout):
    """The multistripe (no superstripes) readout as one list of (full, sub) pairs, reference
    and science rows together (jwst's ``generate_substripe_ranges``, which needs reads2 > 0)."""
    if layout.reads2 <= 0:
        raise StripeLayoutError(f"{layout.name}: Invalid value for multistripe_reads2 (MSTR_RD2 = "
                                f"{layout.reads2}): must be positive for a multistripe readout")
    single = StripeLayout(**{**layout.__dict__, "num_superstripe": 0, "superstripe_step": 0})
    sci_full, sci_sub, ref_full, ref_sub = superstripe_ranges(single)[0]
    return list(zip(sci_full, sci_sub)) + list(zip(ref_full, ref_sub))


def _fast_cut(ref_array, ref_start, layout):
    """Cut a reference's fast axis to the science subarray (science frame, ``ref_start`` the
    reference's 1-based start along that axis, None when it has no subarray keywords)."""
    if ref_start is None:
        return ref_array
    if abs(layout.fastaxis) == 1:
        lo = layout.xstart - ref_start
        return ref_array[..., lo:lo + layout.xsize]
    lo = layout.ystart - ref_start
    return ref_array[..., lo:lo + layout.ysize, :]


def stripe_reference(ref_array, layout, ref_fast_start=None):
    """A science-frame reference array (full length along the slow axis) cut into stripes:
    ``(num_superstripe, ny, nx)`` for a superstripe exposure, ``(..., ny, nx)`` for a substripe
    one. Rows the readout never visits stay 0."""
    ref_array = _fast_cut(np.asarray(ref_array), ref_fast_start, layout)
    det = dms_to_detector(ref_array, layout.fastaxis, layout.slowaxis)
    if layout.num_superstripe > 0:
        if det.ndim != 2:
            raise StripeLayoutError(f"{layout.name}: Unsupported shape: len(ref_shape) == {det.ndim}; "
                                    f"superstripe references must be 2-D")
        out = np.zeros((layout.num_superstripe, layout.slow_size, layout.fast_size), dtype=det.dtype)
        for stripe, (sci_full, sci_sub, ref_full, ref_sub) in enumerate(superstripe_ranges(layout)):
            for (f0, f1), (s0, s1) in zip(sci_full + ref_full, sci_sub + ref_sub):
                out[stripe, s0:s1] = det[f0:f1]
    else:
        out = np.zeros(det.shape[:-2] + (layout.slow_size, layout.fast_size), dtype=det.dtype)
        for (f0, f1), (s0, s1) in substripe_ranges(layout):
            out[..., s0:s1, :] = det[..., f0:f1, :]
    return np.ascontiguousarray(detector_to_dms(out, layout.fastaxis, layout.slowaxis))


def parent_frame(layout, ranges):
    """(1-based science-frame slow start, 0-based detector slow start, slow size) of the
    collated ramp."""
    if layout.name in PARENT_FRAME:
        sci_start, size = PARENT_FRAME[layout.name]
        det_start = FULL_SIZE - (sci_start + size - 1) if layout.slowaxis < 1 else sci_start - 1
        return sci_start, det_start, size
    spans = np.array([r for sci_full, _, _, _ in ranges for r in sci_full])
    sci = FULL_SIZE - spans if layout.slowaxis < 0 else spans
    return int(sci.min()) + 1, int(spans.min()), int(spans.max() - spans.min())


def collate_superstripes(layout, data, groupdq=None, pixeldq=None, zeroframe=None):
    """Put a superstripe ramp ``(nints * nstripe, ngroups, ny, nx)`` back into ordinary ramps of
    the parent frame: ``(nints, ngroups * nrepeat, slow, fast)`` in the science frame.

    Returns (data, groupdq, pixeldq, zeroframe or None, 1-based slow start, nrepeat). Rows no
    stripe covers are NaN in data, 0 in GROUPDQ and REFERENCE_PIXEL in PIXELDQ; PIXELDQ comes from
    each stripe's plane (or 0 where ``pixeldq`` is not ``(nstripe, ny, nx)``); GROUPDQ from the
    input when it has the data's shape; ZEROFRAME is placed at every repeat's rows.
    """
    from ..datamodels import dqflags

    nstripe = max(layout.num_superstripe, 1)
    nints, ngroups, ny, nx = data.shape
    nints_out = nints // nstripe
    ranges = superstripe_ranges(layout)
    sci_start, det_start, slow = parent_frame(layout, ranges)
    nrepeat = max(len(r[1]) for r in ranges)
    fast = layout.fast_size
    shape = (nints_out, ngroups * nrepeat, slow, fast)
    new_data = np.full(shape, np.nan, dtype=np.float32)
    new_gdq = np.zeros(shape, dtype=np.uint8)
    new_pdq = np.full((slow, fast), dqflags.pixel["REFERENCE_PIXEL"], dtype=np.uint32)
    new_zf = None
    old_zf = None
    if zeroframe is not None:
        new_zf = np.full((nints_out, slow, fast), np.nan, dtype=np.float32)
        if zeroframe.shape == (nints, ny, nx):
            old_zf = dms_to_detector(zeroframe, layout.fastaxis, layout.slowaxis)
    old = dms_to_detector(data, layout.fastaxis, layout.slowaxis)
    old_gdq = None
    if groupdq is not None and groupdq.shape == data.shape:
        old_gdq = dms_to_detector(groupdq, layout.fastaxis, layout.slowaxis)
    old_pdq = None
    if pixeldq is not None and pixeldq.shape == (nstripe, ny, nx):
        old_pdq = dms_to_detector(pixeldq, layout.fastaxis, layout.slowaxis)
    # repeats outer, stripes inner: where stripes overlap, the later one wins, as in jwst
    for repeat in range(nrepeat):
        for stripe, (sci_full, sci_sub, _, _) in enumerate(ranges):
            if repeat >= len(sci_full):
                continue
            (f0, f1), (s0, s1) = sci_full[repeat], sci_sub[repeat]
            f0, f1 = f0 - det_start, f1 - det_start
            # output group g*nrepeat + repeat is input group g of this stripe's integrations
            src = old[stripe::nstripe][:nints_out, :, s0:s1]
            new_data[:, repeat::nrepeat, f0:f1] = src
            if old_gdq is not None:
                new_gdq[:, repeat::nrepeat, f0:f1] = old_gdq[stripe::nstripe][:nints_out, :, s0:s1]
            new_pdq[f0:f1] = 0 if old_pdq is None else old_pdq[stripe, s0:s1]
            if old_zf is not None:
                new_zf[:, f0:f1] = old_zf[stripe::nstripe][:nints_out, s0:s1]
    back = lambda a: None if a is None else np.ascontiguousarray(  # noqa: E731
        detector_to_dms(a, layout.fastaxis, layout.slowaxis))
    return back(new_data), back(new_gdq), back(new_pdq), back(new_zf), sci_start, nrepeat


def _frame_seconds(columns, rows, outputs, row_pad, extra_rows, extra_clocks):
    """Seconds to clock out ``rows`` lines of ``columns`` pixels over ``outputs`` amplifiers
    (10 us per pixel), with the end-of-row pad and the extra rows and clocks of a reset."""
    return ((columns / outputs + row_pad) * (rows + extra_rows) + extra_clocks) * 10.0e-6


def stripe_read_times(layout, nframes, groupgap, ngroups, noutputs):
    """The time of every read of a collated superstripe ramp whose stripes repeat within a frame:
    a list of ``ngroups * nrepeat`` lists of ``nframes`` seconds, as jwst records them in
    ``meta.exposure.read_times`` (and as its ramp fit then uses them).

    Within a frame the head reads ``reads1 + reads2`` lines (a "subframe") again and again; the
    first subframe of a frame follows the reset of the subframe's lines, the others follow the
    previous subframe. Each frame averaged into a group adds one read a frame time later, and a
    group is followed by its other frames and the dropped ones. ``layout`` is the exposure's
    (uncollated) :class:`StripeLayout`; the other arguments are its NFRAMES, GROUPGAP, NGROUPS
    and NOUTPUTS.
    """
    nframes, groupgap, ngroups = int(nframes or 1), int(groupgap or 0), int(ngroups)
    outputs = int(noutputs or 1)
    if abs(layout.slowaxis) == 1:
        rows, columns = layout.xsize, layout.ysize
    else:
        rows, columns = layout.ysize, layout.xsize
    subframe_rows = layout.reads1 + layout.reads2
    # the detector's clocking overheads: four outputs (full frame and stripe readouts) add one
    # line and one clock to a reset; one output adds two lines for 9+ columns, three for fewer
    if outputs == 4:
        extra_rows, extra_clocks = 1, 1
    else:
        extra_rows, extra_clocks = (2 if outputs == 1 and columns >= 9 else 3), 0
    frame = _frame_seconds(columns, rows, outputs, 12, extra_rows, extra_clocks)
    if subframe_rows > 0:
        reset = _frame_seconds(columns, subframe_rows, outputs, 12, extra_rows, extra_clocks)
        subframe = _frame_seconds(columns, subframe_rows, outputs, 12, 0, 0)
        steps = [reset] + [subframe] * (rows // subframe_rows - 1)
    else:
        steps = [frame]
    times, elapsed = [], 0
    for _ in range(ngroups):
        for step in steps:
            times.append([elapsed + step + k * frame for k in range(nframes)])
            elapsed += step
        elapsed += frame * (nframes - 1 + groupgap)
    return times


def stripe_int_times(int_times, nstripe, integration_start=1):
    """(INT_TIMES of the collated ramp, INT_TIMES_STRIPE rows) from a superstripe INT_TIMES
    table: each parent integration runs from its first stripe's start to its last stripe's end,
    its mid time half-way; the per-stripe rows are kept with their integration and stripe
    numbers. Returns plain lists of tuples in the table's column order."""
    n = len(int_times) // nstripe
    first = int(np.ceil((integration_start or 1) / nstripe))
    names = ("int_start_MJD_UTC", "int_mid_MJD_UTC", "int_end_MJD_UTC",
             "int_start_BJD_TDB", "int_mid_BJD_TDB", "int_end_BJD_TDB")
    per_stripe = [(first + i // nstripe, i % nstripe + 1) + tuple(row[c] for c in names)
                  for i, row in enumerate(int_times)]
    parent = []
    for i in range(n):
        a, b = int_times[i * nstripe], int_times[(i + 1) * nstripe - 1]
        mjd0, mjd1 = a["int_start_MJD_UTC"], b["int_end_MJD_UTC"]
        bjd0, bjd1 = a["int_start_BJD_TDB"], b["int_end_BJD_TDB"]
        parent.append((first + i, mjd0, (mjd1 - mjd0) / 2.0 + mjd0, mjd1,
                       bjd0, (bjd1 - bjd0) / 2.0 + bjd0, bjd1))
    return parent, per_stripe
