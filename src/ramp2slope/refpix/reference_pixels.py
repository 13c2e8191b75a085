"""Reference-pixel correction for the NIR detectors (traditional, non-IRS2 readout).

Every group of every integration is corrected, one integration at a time, in place:

1. Top/bottom: in the detector frame, each amplifier (columns [0,512), [512,1024), ...) gets the
   sigma-clipped mean of its reference rows (0-3 and 2044-2047), separately for even and odd
   column index and for the top and bottom rows; top and bottom are averaged and subtracted from
   every row of the amplifier's columns of that parity.
2. Side (optional): the left and right reference columns of the top/bottom-corrected group give a
   running median per detector row; their mean times ``side_gain`` is subtracted from the row.
3. Subarrays are placed at their position in the 2048x2048 detector (SUBSTRT1/2), so parities,
   amplifiers and reference pixels refer to full-frame detector coordinates. Pixels of the
   detector outside the subarray are unusable. With NOUTPUTS=1 all usable REFERENCE_PIXEL pixels
   of the subarray are pooled (by column parity) and there is no side correction.

Both corrections only depend on the detector column (step 1) and row (step 2), so they are
applied in one pass directly on the DMS-frame data with precomputed index maps; the group is
never transposed or copied.

Matching the official arithmetic. The official step keeps one working buffer for the group. It
starts as float32; once a side correction has been applied it becomes float64 and stays so for
all later groups (and for the ZEROFRAME). So the first group of the exposure is computed in
float32 (means of float32 values, top/bottom-corrected values rounded to float32 before the side
medians) and, when the side correction is on, every later group in float64 (rounded to float32
only when stored). This module reproduces both regimes.
"""
import logging

import numba
import numpy as np

from ..datamodels import dqflags
from ..errors import Ramp2SlopeError
from .clipping import average_or_single, sigma_clipped_mean
from .miri import correct_miri_refpix
from .orientation import NIR_SIZE, check_axes, detector_to_dms_index, dms_to_detector
from .side import combine_sides, running_median, window_rows
from .sirs import sirs_templates

log = logging.getLogger("ramp2slope")

#: what :func:`correct_model` returns (the official module's status codes)
REFPIX_OK = 0
BAD_REFERENCE_PIXELS = 1
SUBARRAY_DOESNTFIT = 2
SUBARRAY_SKIPPED = 3

DNU = dqflags.pixel["DO_NOT_USE"]
REFERENCE_PIXEL = dqflags.pixel["REFERENCE_PIXEL"]

#: Width of one amplifier stripe in the detector frame.
AMP_WIDTH = 512
#: Number of amplifiers of a full-frame readout.
NAMPS = 4
#: Reference rows (detector frame) at the bottom and top, and reference columns at the sides.
BOTTOM_ROWS = (0, 4)
TOP_ROWS = (NIR_SIZE - 4, NIR_SIZE)
LEFT_COLUMNS = (0, 4)
RIGHT_COLUMNS = (NIR_SIZE - 4, NIR_SIZE)
#: NIRSpec subarrays that do not reach a detector edge: their first and last 4 DMS columns are
#: treated as reference pixels.
NRS_EDGELESS_SUBARRAYS = ("SUB512", "SUB512S", "SUB32")
#: the same, under the official module's name
NRS_edgeless_subarrays = list(NRS_EDGELESS_SUBARRAYS)

COMPLETE = "COMPLETE"
SKIPPED = "SKIPPED"


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------
@numba.njit(parallel=True, cache=True)
def _apply_corrections(group, index_y, index_x, transposed, col_corr, row_corr, use_rows,
                       single):
    """group[y, x] -= col_corr[c] (then row_corr[r, amp(c)]) with (r, c) the detector position.

    ``index_y``/``index_x`` give the detector row (or column, when ``transposed``) of each DMS
    row and column. Each subtraction is float64 and rounded to float32 when stored; with
    ``single`` the intermediate value is rounded to float32 too.
    """
    ny, nx = group.shape
    for y in numba.prange(ny):
        iy = index_y[y]
        for x in range(nx):
            ix = index_x[x]
            if transposed:
                row = ix
                col = iy
            else:
                row = iy
                col = ix
            value = np.float64(group[y, x]) - col_corr[col]
            if single:
                value = np.float64(np.float32(value))
            if use_rows:
                value = value - row_corr[row, col // 512]
            group[y, x] = np.float32(value)


@numba.njit(parallel=True, cache=True)
def _gather_side_strips(group, src_y, src_x, columns, col_corr, single, out):
    """Top/bottom-corrected side reference pixels in the detector frame (0 outside the data)."""
    nrows, ncols = src_y.shape
    for row in numba.prange(nrows):
        for j in range(ncols):
            y = src_y[row, j]
            if y < 0:
                out[row, j] = 0.0
                continue
            value = np.float64(group[y, src_x[row, j]]) - col_corr[columns[j]]
            if single:
                value = np.float64(np.float32(value))
            out[row, j] = value


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------
class _Geometry:
    """Where the data sit on the detector and how DMS pixels map to detector pixels."""

    def __init__(self, shape, xstart, ystart, fastaxis, slowaxis):
        self.ny, self.nx = shape
        self.fast, self.slow = check_axes(fastaxis, slowaxis)
        self.is_subarray = self.ny < NIR_SIZE or self.nx < NIR_SIZE
        if self.is_subarray:
            if xstart is None or ystart is None:
                raise Ramp2SlopeError("refpix needs SUBSTRT1/SUBSTRT2 for subarray data")
            self.x0 = int(xstart) - 1
            self.y0 = int(ystart) - 1
        else:
            self.x0 = self.y0 = 0
        self.transposed = abs(self.fast) == 2
        last = NIR_SIZE - 1
        ys = np.arange(self.ny) + self.y0
        xs = np.arange(self.nx) + self.x0
        sf = self.fast > 0
        ss = self.slow > 0
        if self.transposed:
            # DMS y is the fast (column) direction, DMS x the slow (row) direction.
            self.index_y = np.where(sf, ys, last - ys).astype(np.int64)
            self.index_x = np.where(ss, xs, last - xs).astype(np.int64)
        else:
            self.index_y = np.where(ss, ys, last - ys).astype(np.int64)
            self.index_x = np.where(sf, xs, last - xs).astype(np.int64)

    def fits(self):
        """False when the subarray runs off the 2048x2048 detector."""
        return (self.y0 >= 0 and self.x0 >= 0 and self.y0 + self.ny <= NIR_SIZE
                and self.x0 + self.nx <= NIR_SIZE)

    def source(self, rows, cols):
        """Indices into the data of detector pixels (rows, cols); -1 where outside the data."""
        y, x = detector_to_dms_index(rows, cols, self.fast, self.slow)
        y = np.asarray(y, dtype=np.int64) - self.y0
        x = np.asarray(x, dtype=np.int64) - self.x0
        inside = (y >= 0) & (y < self.ny) & (x >= 0) & (x < self.nx)
        return np.where(inside, y, -1), np.where(inside, x, -1)

    def embedded_dq(self, pixeldq, subarray_name=None):
        """PIXELDQ placed in the full detector (DMS frame), as the reference-pixel logic sees it.

        Outside the data, the outer 4-pixel border is DO_NOT_USE|REFERENCE_PIXEL and the rest 0.
        """
        if not self.is_subarray:
            return pixeldq
        full = np.zeros((NIR_SIZE, NIR_SIZE), dtype=np.uint32)
        border = np.uint32(DNU | REFERENCE_PIXEL)
        full[:4, :] = border
        full[-4:, :] = border
        full[:, :4] = border
        full[:, -4:] = border
        y0, x0 = self.y0, self.x0
        full[y0:y0 + self.ny, x0:x0 + self.nx] = pixeldq
        if subarray_name is not None and str(subarray_name).strip().upper() in \
                NRS_EDGELESS_SUBARRAYS:
            full[y0:y0 + self.ny, x0:x0 + 4] |= np.uint32(REFERENCE_PIXEL)
            full[y0:y0 + self.ny, x0 + self.nx - 4:x0 + self.nx] |= np.uint32(REFERENCE_PIXEL)
        return full


class _PixelSet:
    """A list of usable reference pixels (in detector reading order) and their data indices."""

    def __init__(self, geometry, rows, cols):
        self.y, self.x = geometry.source(rows, cols)
        if np.any(self.y < 0):
            # Cannot happen: pixels outside the data are DO_NOT_USE in the embedding.
            raise AssertionError("usable reference pixel outside the data")

    def values(self, group, wide):
        vals = group[self.y, self.x]
        return vals.astype(np.float64) if wide else vals


def _usable_block(det_dq, row_range, col_start, col_stop, col_step):
    """Detector (rows, cols) of the usable pixels of a block, in row-major reading order."""
    block = det_dq[row_range[0]:row_range[1], col_start:col_stop:col_step]
    rr, cc = np.nonzero((block & DNU) == 0)
    return rr + row_range[0], col_start + col_step * cc


# --------------------------------------------------------------------------------------------
# The correction
# --------------------------------------------------------------------------------------------
class _FourAmpCorrector:
    """Full frame, or a subarray read through 4 outputs: amplifier means plus side medians."""

    def __init__(self, geometry, det_dq, odd_even_columns, use_side, smoothing_length,
                 side_gain, siglimit, sirs_kernels, sigreject):
        self.geo = geometry
        self.odd_even_columns = bool(odd_even_columns)
        self.use_side = bool(use_side)
        self.length = smoothing_length
        self.side_gain = float(side_gain)
        self.siglimit = float(siglimit)
        self.sirs_kernels = sirs_kernels
        self.sigreject = float(sigreject)
        # Per amplifier: {parity or None: [top set, bottom set]}
        self.sets = []
        for amp in range(NAMPS):
            c0 = amp * AMP_WIDTH
            c1 = c0 + AMP_WIDTH
            if self.odd_even_columns:
                groups = {parity: [_PixelSet(geometry, *_usable_block(det_dq, edge, c0 + parity,
                                                                        c1, 2))
                                   for edge in (TOP_ROWS, BOTTOM_ROWS)]
                          for parity in (0, 1)}
            else:
                groups = {None: [_PixelSet(geometry, *_usable_block(det_dq, edge, c0, c1, 1))
                                 for edge in (TOP_ROWS, BOTTOM_ROWS)]}
            self.sets.append(groups)
        if self.use_side:
            rows = np.arange(NIR_SIZE)
            columns = np.r_[np.arange(*LEFT_COLUMNS), np.arange(*RIGHT_COLUMNS)]
            rr, cc = np.meshgrid(rows, columns, indexing="ij")
            self.side_y, self.side_x = geometry.source(rr, cc)
            self.side_y = np.ascontiguousarray(self.side_y)
            self.side_x = np.ascontiguousarray(self.side_x)
            self.side_columns = columns.astype(np.int64)
            self.side_good = np.ascontiguousarray((det_dq[:, columns] & DNU) == 0)
            if sirs_kernels is None:
                half, _ = window_rows(smoothing_length)  # validates it
                if half >= NIR_SIZE:
                    raise Ramp2SlopeError(
                        f"side_smoothing_length {smoothing_length} is too large")
        self.strip = np.empty((NIR_SIZE, 8), dtype=np.float64)
        self.row_corr = np.zeros((NIR_SIZE, NAMPS), dtype=np.float64)

    def column_corrections(self, group, wide):
        """Per-detector-column value subtracted by the top/bottom step (0 where none)."""
        col_corr = np.zeros(NIR_SIZE, dtype=np.float64)
        for amp, groups in enumerate(self.sets):
            values = {}
            for parity, (top, bottom) in groups.items():
                top_mean = sigma_clipped_mean(top.values(group, wide), self.siglimit)
                bottom_mean = sigma_clipped_mean(bottom.values(group, wide), self.siglimit)
                values[parity] = average_or_single(top_mean, bottom_mean)
            if any(v is None for v in values.values()):
                continue  # the official step leaves this amplifier alone
            c0 = amp * AMP_WIDTH
            for parity, value in values.items():
                if parity is None:
                    col_corr[c0:c0 + AMP_WIDTH] = float(value)
                else:
                    col_corr[c0 + parity:c0 + AMP_WIDTH:2] = float(value)
        return col_corr

    def row_corrections(self, group, col_corr, single):
        """Per detector row and amplifier value subtracted by the side step."""
        _gather_side_strips(group, self.side_y, self.side_x, self.side_columns, col_corr,
                            single, self.strip)
        if self.sirs_kernels is not None:
            self.row_corr[:] = sirs_templates(self.strip[:, :4], self.strip[:, 4:],
                                              self.sirs_kernels, self.sigreject, NAMPS)
        else:
            left = running_median(self.strip[:, :4], self.side_good[:, :4], self.length, single)
            right = running_median(self.strip[:, 4:], self.side_good[:, 4:], self.length, single)
            self.row_corr[:] = (self.side_gain * combine_sides(left, right))[:, None]
        return self.row_corr

    def correct(self, group, wide):
        col_corr = self.column_corrections(group, wide)
        single = not wide
        if self.use_side:
            row_corr = self.row_corrections(group, col_corr, single)
        else:
            row_corr = self.row_corr  # unused
        _apply_corrections(group, self.geo.index_y, self.geo.index_x, self.geo.transposed,
                           col_corr, row_corr, self.use_side, single)


class _OneAmpCorrector:
    """Subarray read through one output: pooled reference pixels, by column parity."""

    def __init__(self, geometry, det_dq, odd_even_columns, siglimit):
        self.geo = geometry
        self.siglimit = float(siglimit)
        self.odd_even_columns = bool(odd_even_columns)
        usable = ((det_dq & REFERENCE_PIXEL) != 0) & ((det_dq & DNU) == 0)
        rows, cols = np.nonzero(usable)
        self.empty = rows.size == 0
        if self.odd_even_columns:
            self.sets = {parity: _PixelSet(geometry, rows[cols % 2 == parity],
                                           cols[cols % 2 == parity]) for parity in (0, 1)}
        else:
            self.sets = {None: _PixelSet(geometry, rows, cols)}
        self.row_corr = np.zeros((NIR_SIZE, NAMPS), dtype=np.float64)

    def correct(self, group, wide):
        if self.empty:
            return
        col_corr = np.zeros(NIR_SIZE, dtype=np.float64)
        for parity, pixels in self.sets.items():
            value = sigma_clipped_mean(pixels.values(group, False), self.siglimit)
            if value is None:
                # The official code fails here (no reference pixel of this parity); leave
                # these columns alone.
                continue
            if parity is None:
                col_corr[:] = float(value)
            else:
                col_corr[parity::2] = float(value)
        _apply_corrections(group, self.geo.index_y, self.geo.index_x, self.geo.transposed,
                           col_corr, self.row_corr, False, True)


def correct_refpix(data, pixeldq, *, fastaxis, slowaxis, xstart=1, ystart=1, noutputs=4,
                   odd_even_columns=True, use_side_ref_pixels=True, side_smoothing_length=11,
                   side_gain=1.0, siglimit=3.0, zeroframe=None, subarray_name=None,
                   sirs_kernels=None, sigreject=4.0, continuation=False, cache=None):
    """Reference-pixel correction of a NIR ramp (traditional readout), in place.

    Parameters
    ----------
    data : float32 ndarray (nints, ngroups, ny, nx)
        DMS-frame ramp; corrected in place, one integration at a time.
    pixeldq : uint32 ndarray (ny, nx)
        Only DO_NOT_USE and REFERENCE_PIXEL are looked at; not modified.
    fastaxis, slowaxis : int
        FASTAXIS/SLOWAXIS keywords.
    xstart, ystart : int
        SUBSTRT1/SUBSTRT2 (1-based; only used when the data are smaller than 2048x2048).
    noutputs : int or None
        NOUTPUTS; for subarrays, 4 selects the per-amplifier correction, anything else the
        single-output one. Ignored for full frames.
    odd_even_columns, use_side_ref_pixels, side_smoothing_length, side_gain, siglimit :
        The step parameters of the same names.
    zeroframe : float32 ndarray (nints, ny, nx) or None
        ZEROFRAME, corrected in place like a one-group ramp; pixels that are 0 stay 0.
    subarray_name : str or None
        SUBARRAY; NIRSpec SUB32/SUB512/SUB512S get their first/last 4 columns as reference
        pixels.
    sirs_kernels : (left, right) or None
        Kernels from :func:`ramp2slope.refpix.sirs.make_sirs_kernels`; when given (and
        use_side_ref_pixels), the SIRS convolution replaces the running median. Full frame only.
    sigreject : float
        SIRS outlier rejection threshold (sigmas).
    continuation : bool
        True when ``data`` (and ``zeroframe``) hold later integrations of an exposure whose
        earlier integrations were corrected by a previous call: the official working buffer is
        then already float64 (when the side correction is on), so even the first group of
        ``data`` is computed in float64. Correcting an exposure integration by integration, with
        ``continuation=True`` for every call after the first, gives exactly the result of one
        call on the whole exposure.
    cache : dict or None
        Kept by the caller between the calls on the integrations of one exposure: the
        reference-pixel tables built from ``pixeldq`` are reused while it and the geometry and
        parameters stay the same (building them costs about 40 ms per call, each integration
        of a time series being a call).

    Returns
    -------
    str : 'COMPLETE', or 'SKIPPED' when a subarray runs off the detector (data unchanged).
    """
    if not isinstance(data, np.ndarray) or data.ndim != 4 or data.dtype != np.float32:
        raise Ramp2SlopeError("refpix needs a float32 (nints, ngroups, ny, nx) ramp")
    ny, nx = data.shape[-2:]
    if max(ny, nx) > NIR_SIZE:
        raise Ramp2SlopeError(
            "refpix: NIRSpec IRS2 data (an axis longer than 2048) are not supported")
    pixeldq = np.asarray(pixeldq)
    if pixeldq.shape != (ny, nx):
        raise Ramp2SlopeError(f"refpix: PIXELDQ shape {pixeldq.shape} does not match the data "
                              f"({ny}, {nx})")
    if zeroframe is not None and (zeroframe.dtype != np.float32
                                  or zeroframe.shape != (data.shape[0], ny, nx)):
        raise Ramp2SlopeError("refpix: ZEROFRAME must be float32 (nints, ny, nx)")
    geometry = _Geometry((ny, nx), xstart, ystart, fastaxis, slowaxis)
    if not geometry.fits():
        return SKIPPED
    four_amp = (not geometry.is_subarray) or noutputs == 4
    if four_amp and sirs_kernels is not None and geometry.is_subarray:
        raise Ramp2SlopeError("refpix: the SIRS algorithm is only supported for full-frame data")
    # The official working buffer turns float64 after the first side correction.
    widens = four_amp and bool(use_side_ref_pixels)

    def build():
        det_dq = dms_to_detector(geometry.embedded_dq(pixeldq, subarray_name),
                                 geometry.fast, geometry.slow)
        if four_amp:
            return _FourAmpCorrector(geometry, det_dq, odd_even_columns, use_side_ref_pixels,
                                     side_smoothing_length, side_gain, siglimit,
                                     sirs_kernels if use_side_ref_pixels else None, sigreject)
        return _OneAmpCorrector(geometry, det_dq, odd_even_columns, siglimit)

    if cache is None:
        corrector = build()
    else:
        # the kernels are compared by identity: the cache holds them, so the id stays theirs
        key = ((ny, nx), xstart, ystart, fastaxis, slowaxis, four_amp, odd_even_columns,
               use_side_ref_pixels, side_smoothing_length, side_gain, siglimit, subarray_name,
               id(sirs_kernels), sigreject)
        held = cache.get("corrector")
        if held is not None and held[0] == key and np.array_equal(held[1], pixeldq):
            corrector = held[2]
        else:
            corrector = build()
            cache["corrector"] = (key, pixeldq.copy(), corrector, sirs_kernels)

    first = not continuation
    for integration in range(data.shape[0]):
        for group in range(data.shape[1]):
            corrector.correct(data[integration, group], widens and not first)
            first = False
    if zeroframe is not None:
        for integration in range(zeroframe.shape[0]):
            frame = zeroframe[integration]
            zeros = frame == 0.0
            corrector.correct(frame, widens and not first)
            first = False
            frame[zeros] = 0.0
    return COMPLETE


def correct_model(input_model, odd_even_columns, use_side_ref_pixels, side_smoothing_length,
                  side_gain, odd_even_rows, conv_kernel_params, siglimit):
    """Reference-pixel correction of a RampModel in place, the official module-level interface
    (RefPixStep calls it); returns one of the status codes above.

    ``conv_kernel_params``: the official dict (``sigreject``; ``sirs_kernel_model`` must be
    None) and, for SIRS, the kernels made by :func:`~ramp2slope.refpix.sirs.make_sirs_kernels`
    under ``sirs_kernels``. MIRI: subarrays are skipped (SUBARRAY_SKIPPED) as officially; full
    frames get the reference-column algorithm of :mod:`ramp2slope.refpix.miri`, which only uses
    ``odd_even_rows`` and ``siglimit``.
    """
    conv_kernel_params = conv_kernel_params or {}
    where = input_model._path or "input"
    if str(input_model.meta.instrument.name or "").upper() == "MIRI":
        ny, nx = input_model.shape[-2:]
        if nx < 1032 or ny < 1024:   # the official test for a MIRI subarray
            log.warning("Refpix correction skipped for MIRI subarrays")
            return SUBARRAY_SKIPPED
        zero = input_model.meta.exposure.zero_frame and input_model.has("zeroframe")
        # REFPIX_OK even when no correction was possible (no usable reference column), as the
        # official step reports it
        correct_miri_refpix(input_model.data, input_model.pixeldq, odd_even_rows=odd_even_rows,
                            siglimit=siglimit, zeroframe=input_model.zeroframe if zero else None)
        return REFPIX_OK
    if conv_kernel_params.get("sirs_kernel_model") is not None:
        raise Ramp2SlopeError("refpix: a SIRSKernelModel cannot be used here; give RefPixStep "
                              "override_sirskernel=PATH (or the kernels as 'sirs_kernels')")
    header = input_model.primary_header
    if header.get("MSTR_RD1") is not None or (header.get("SSTR_NST") or 0) > 0:
        # striped readouts, with or without superstripes (NIRCam DHS): the reference pixels are
        # wherever PIXELDQ says (the stripes' reference rows)
        from ..references.stripes import StripeLayout
        from .multistripe import correct_superstripes

        zero = input_model.meta.exposure.zero_frame and input_model.has("zeroframe")
        correct_superstripes(input_model.data, input_model.pixeldq, StripeLayout.from_model(input_model),
                             odd_even_columns=odd_even_columns, siglimit=siglimit,
                             zeroframe=input_model.zeroframe if zero else None)
        return REFPIX_OK
    sub = input_model.meta.subarray
    if sub.fastaxis is None or sub.slowaxis is None:
        raise Ramp2SlopeError(f"{where}: FASTAXIS/SLOWAXIS keywords are missing; "
                              f"refpix needs them to find the detector orientation")
    zero = input_model.meta.exposure.zero_frame and input_model.has("zeroframe")
    status = correct_refpix(
        input_model.data, input_model.pixeldq, fastaxis=int(sub.fastaxis), slowaxis=int(sub.slowaxis),
        xstart=sub.xstart or 1, ystart=sub.ystart or 1, noutputs=input_model.meta.exposure.noutputs,
        odd_even_columns=odd_even_columns, use_side_ref_pixels=use_side_ref_pixels,
        side_smoothing_length=side_smoothing_length, side_gain=side_gain, siglimit=siglimit,
        zeroframe=input_model.zeroframe if zero else None, subarray_name=sub.name,
        sirs_kernels=conv_kernel_params.get("sirs_kernels"),
        sigreject=conv_kernel_params.get("sigreject", 4.0),
        # a model holding later integrations of a longer exposure continues its correction
        continuation=getattr(input_model, "_integration_offset", 0) > 0,
        cache=conv_kernel_params.get("corrector_cache"))
    return SUBARRAY_DOESNTFIT if status == "SKIPPED" else REFPIX_OK
