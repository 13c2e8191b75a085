"""Reference correction of NIRSpec IRS2 readouts (the IRS2 branch of the refpix step).

An IRS2 frame is 3200 samples long along the detector's fast axis: the reference output (one
fifth) and four amplifier outputs in which ``r`` reference samples follow every ``n`` normal
ones (see :mod:`ramp2slope.datamodels.irs2_layout`). The correction works on the samples in the
order they were read: each output becomes one time series of ``2048 * row`` samples (``row`` =
712 for n=16, r=4, pad=8: the samples of one detector line plus the clock overheads, which hold
zeros). For every group, the reference output's series is low-pass filtered in Fourier space to
fill its gaps; each amplifier's reference samples, spread over the neighbouring gaps, are
Fourier transformed, weighted by the complex ``beta`` of the REFPIX reference, added to the
reference output's transform weighted by ``alpha``, transformed back, and the result is
subtracted from the amplifier's normal samples. The reference samples and the reference output
are then dropped.

Functions
---------
:func:`coefficients_from_table`
    alpha and beta (complex64) from the REFPIX reference's IRS2 table.
:func:`fold_coefficients`, :func:`folded_coefficients_from_table`
    alpha and beta folded onto the half spectrum the correction works on.
:func:`flag_bad_reference_samples`
    flag (BAD_REF_PIXEL | DO_NOT_USE) and replace outlying reference samples, before the
    correction; :func:`flag_bad_refpix` is the same on a datamodel.
:func:`correct_irs2`
    the correction itself, on arrays.
:func:`clobber_ref`, :func:`decode_mask`
    the DQ table of the REFPIX reference: which reference samples it declares bad.

Agreement with jwst 3.0.0 (``jwst/refpix/irs2_subtract_reference.py``)
-------------------------------------------------------------------------
**Bit-identical**: the DQ flags exactly, and the data of :func:`flag_bad_reference_samples`
bit for bit. The statistics of reference pairs are numpy reductions over the same slices as
jwst's (the float32 pairwise sums depend on the slices' layout), clipped by astropy's
``sigma_clipped_stats``, as in jwst.

**Within float32 rounding**: the data of :func:`correct_irs2`. jwst transforms each output's
series with numpy's complex transforms (forward ones computed in double precision and rounded
to complex64, inverse ones in single precision). The series are real and only the real part
of the inverse transform is used, so here they go through scipy's real transforms in single
precision: half the spectrum, with the REFPIX coefficients and the low-pass filter folded onto
it (:func:`_hermitian_half`). That is the same linear algebra, about five times cheaper. On
synthetic full frames (NRS1, NRS2, with and without ``preserve_refpix``) the corrected samples
differ from jwst's by at most one unit in the last place of the frame's level (about 1e-3 DN
at 1e4 DN), and 0.15 % of them differ at all without ``preserve_refpix``. The rest of the
arithmetic is jwst's, in the same precision and order:

* the cosine-weighted interpolation of the reference output replays scipy's
  ``convolve1d(mode="wrap")`` (double sums in scipy's order), evaluated only at the zero
  samples, the only ones it changes (at every sample when one is NaN or infinite);
* the rest (ramp mean, frame-edge line fits and their removal, the final subtraction and
  re-adding of the mean) is the same float32/float64 element arithmetic, in numba kernels
  (which do not contract into fused multiply-adds).

A NaN in the reference output turns every output sample into NaN, in both.

Memory: in the pipeline the 2048-row result is written over the 3200-row input, plane by
plane, and the rest of the input's memory is given back (``release_input``); the DQ arrays are
stripped the same way, the ramp mean is kept for the normal samples only, and the REFPIX
table is read and folded piece by piece. On a full frame of 10 groups the step's allocations
peak 0.15 GB above the integration's own arrays (tracemalloc), where they peaked 0.33 GB above.

Speed: the transforms are most of the work (8 forward and 7 inverse real transforms of 1.46
million samples per group; jwst does 11 and 7 complex ones, transforming the reference
output's series once per amplifier). Groups, or with few groups the four amplifiers, run in
parallel threads, as many as numba may use (scipy's transforms release the GIL). One
integration of 10 full-frame groups takes about 2.3 s on 2 cores, against 22-24 s in jwst.
"""
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np
import scipy.fft

from ..datamodels import dqflags
from ..datamodels.irs2_layout import IRS2Layout, layout_of, normal_mask
from ..runtime.malloc import release_pages

log = logging.getLogger(__name__)

__all__ = ["coefficients_from_table", "fold_coefficients", "folded_coefficients_from_table",
           "folded_coefficients_from_rows", "flag_bad_reference_samples", "flag_bad_refpix",
           "correct_irs2", "clobber_ref", "decode_mask", "EXPECTED_TABLE_ROWS"]

BAD_REF_PIXEL = np.uint32(dqflags.pixel["BAD_REF_PIXEL"])
DO_NOT_USE = np.uint32(dqflags.pixel["DO_NOT_USE"])

#: rows of the IRS2 table: real and imaginary parts of 712 * 2048 complex coefficients
EXPECTED_TABLE_ROWS = 2 * 712 * 2048

# detector lines per tile in the kernels that turn the stored frame into time series: along a
# tile the stored frame is read contiguously and the series' cache lines stay resident
_TILE = 64
# normal samples per amplifier output
_NORMAL_PER_OUTPUT = 512


# --------------------------------------------------------------------------------------------
# the reference file


def _table_column(table, name):
    """A column of a FITS_rec or numpy record array, whatever the case of its name."""
    if hasattr(table, "field"):
        try:
            return np.asarray(table.field(name))
        except (KeyError, ValueError, IndexError):
            pass
    names = {n.lower(): n for n in table.dtype.names}
    return np.asarray(table[names[name.lower()]])


def coefficients_from_table(irs2_table):
    """alpha, beta: complex64 arrays shape (4, nrows//2) from the REFPIX reference's IRS2 table
    (a numpy record array / FITS_rec with fields alpha_0..alpha_3, beta_0..beta_3, float32 real/imag
    pairs interleaved). Returns None when the row count is not 2*712*2048 (jwst then skips the step)."""
    if not _expected_rows(len(_table_column(irs2_table, "alpha_0"))):
        return None
    values = _complex_columns(irs2_table)
    return values[:4], values[4:]


def fold_coefficients(alpha, beta):
    """alpha and beta of :func:`coefficients_from_table` (4, N) folded onto the half spectrum
    of a real series (4, N // 2 + 1), as :func:`correct_irs2` uses them: fold once and pass
    these to every call to save the folding and half the memory."""
    return _hermitian_half(alpha), _hermitian_half(beta)


def folded_coefficients_from_table(irs2_table):
    """:func:`fold_coefficients` of :func:`coefficients_from_table` (None for a wrong row
    count), without the unfolded coefficients (93 MB) ever being made whole."""
    return folded_coefficients_from_rows(len(irs2_table), lambda start, stop: irs2_table[start:stop])


def folded_coefficients_from_rows(nrows, rows):
    """:func:`folded_coefficients_from_table` of a table read in pieces: ``rows(start, stop)``
    returns its rows ``start .. stop - 1`` (a record array with the alpha and beta columns).

    The half spectrum's value k comes from the coefficients k and N - k, so the rows are read
    in pieces from both ends; a reader of the file then holds no more than two pieces."""
    if not _expected_rows(nrows):
        return None
    length = nrows // 2
    folded = np.empty((2 * 4, length // 2 + 1), dtype=np.complex64)
    _fold(lambda start, stop: _complex_columns(rows(2 * start, 2 * stop)), length, folded)
    return folded[:4], folded[4:]


def _expected_rows(nrows):
    if nrows == EXPECTED_TABLE_ROWS:
        return True
    log.error(f"Number of rows in reference file = {nrows}, "
              f"but it should be {EXPECTED_TABLE_ROWS}.")
    return False


def _complex_columns(table):
    """alpha_0..3 then beta_0..3 of (part of) the table as complex64 (8, rows // 2)."""
    values = np.empty((8, len(_table_column(table, "alpha_0")) // 2), dtype=np.complex64)
    for i, name in enumerate(f"{kind}_{k}" for kind in ("alpha", "beta") for k in range(4)):
        interleaved = _table_column(table, name)
        # real + 1j * imaginary in numpy's complex64 arithmetic, so that even the sign of a
        # zero part is what jwst gets
        values[i] = interleaved[0::2] + 1j * interleaved[1::2]
    return values


#: Values of the half spectrum folded at a time (from two pieces of 1 MB per row folded)
_FOLD_PIECE = 1 << 17


def _fold(values, length, half):
    """half[:, k] = (w[:, k] + conj(w[:, -k])) / 2 in double precision, rounded to complex64,
    for k = 0 .. length // 2, where ``values(start, stop)`` gives ``w[:, start:stop]``."""
    for start in range(0, half.shape[1], _FOLD_PIECE):
        stop = min(start + _FOLD_PIECE, half.shape[1])
        front = values(start, stop)
        # the partner of k >= 1 is length - k: a run read backwards; k = 0 is its own partner
        first = max(start, 1)
        mirror = np.empty_like(front)
        if stop > first:
            mirror[:, first - start:] = values(length - stop + 1, length - first + 1)[:, ::-1]
        if start == 0:
            mirror[:, 0] = front[:, 0]
        out = half[:, start:stop]
        out.real = (front.real.astype(np.float64) + mirror.real.astype(np.float64)) / 2.0
        out.imag = (front.imag.astype(np.float64) - mirror.imag.astype(np.float64)) / 2.0


def decode_mask(mask):
    """The numbers (ascending) of the bits set in one MASK value of the REFPIX DQ table.

    Bit ``k`` marks the ``k``-th group of interleaved reference samples of an output as bad.
    """
    value = int(mask) & 0xFFFFFFFF
    return [bit for bit in range(32) if value >> bit & 1]


# --------------------------------------------------------------------------------------------
# replacing bad reference samples (shared by the DQ-table clobbering and the outlier flagging)


def _replacement(bad, flagged, is_reference, low, high, period):
    """Where a bad reference sample's new value comes from, given the current flags.

    Its own kind of sample one period before and after (same parity), averaged when both are
    good, else the one that is; failing both, a good reference sample two places before or else
    after (the other parity); failing that, zero (the correction interpolates over zeros).
    Returns the indices to average: two, one or none.
    """
    before, after = bad - period, bad + period
    sources = [index for index, usable in ((before, before >= low), (after, after < high))
               if usable and not flagged[index]]
    if sources:
        return sources
    for neighbour in (bad - 2, bad + 2):
        if low <= neighbour < high and is_reference[neighbour] and not flagged[neighbour]:
            return [neighbour]
    return []


def _assign_replacement(data, bad, sources, axis):
    """Write the replacement of index ``bad`` along ``axis`` (-1 or -2) of ``data``, in place."""
    def take(index):
        return data[..., index] if axis == -1 else data[..., index, :]

    if len(sources) == 2:
        # numpy's mean of the two, in the data's precision
        value = np.mean(np.stack([take(sources[0]), take(sources[1])]), axis=0)
    elif len(sources) == 1:
        value = take(sources[0])
    else:
        value = 0.0
    if axis == -1:
        data[..., bad] = value
    else:
        data[..., bad, :] = value


def clobber_ref(data, output, odd_even, mask, ref_flags, is_irs2, scipix_n=16, refpix_r=4):
    """Replace the interleaved reference samples that the REFPIX DQ table declares bad.

    ``data`` (..., nx) is in detector orientation (nx = 3200 along the last axis) and is
    modified in place; so is ``ref_flags`` (nx,) bool, which gains the samples handled here
    (samples already flagged are left alone). ``output`` (1-4), ``odd_even`` (1-2) and ``mask``
    are the table's columns; ``is_irs2`` (nx,) marks interleaved reference samples (candidate
    neighbours). Each table row is handled in turn, with the flags as they stand after its own
    samples are flagged.
    """
    nx = data.shape[-1]
    section = nx // 5
    period = scipix_n + refpix_r
    for amp, parity, bits in zip(output, odd_even, mask):
        amp, parity = int(amp), int(parity)
        start = amp * section
        # outputs are read in alternating directions: the table counts pairs in read order
        if amp % 2 == 0:
            parity = 3 - parity
        fresh = []
        for block in decode_mask(bits):
            first = start + scipix_n // 2 + block * period + 2 * (parity - 1)
            for index in (first, first + 1):
                if not ref_flags[index]:
                    ref_flags[index] = True
                    fresh.append(index)
        for index in fresh:
            sources = _replacement(index, ref_flags, is_irs2, start, start + section, period)
            _assign_replacement(data, index, sources, axis=-1)


# --------------------------------------------------------------------------------------------
# flagging outlying reference samples


def _pair_statistics(frames, first):
    """Mean absolute difference, mean and std of the reference pair (first, first + 1).

    ``frames`` (ngroups, ny, nx) is one integration. The reductions are numpy's over exactly
    these slices, because their float32 pairwise sums depend on the slices' layout.
    """
    pair = frames[:, first:first + 2, :]
    difference = np.mean(np.abs(frames[:, first + 1, :] - frames[:, first, :]))
    return difference, np.mean(pair), np.std(pair)


def _outlying_pairs(values, n_sigma):
    """Which ``values`` exceed the clipped mean by more than ``n_sigma`` clipped stds."""
    from astropy.stats import sigma_clipped_stats

    centre, _, spread = sigma_clipped_stats(values, sigma=n_sigma)
    return (values - centre) > (n_sigma * spread)


def flag_bad_reference_samples(data, pixeldq, layout, n_sigma=3.0, flag_only=False, replace_only=False):
    """jwst's flag_bad_refpix on arrays: data (nints, ngroups, L, nx) float32 in the DMS frame
    (L = 3200 rows for NRS1/NRS2, modified in place when replacing), pixeldq (L, nx) uint32 modified
    in place (BAD_REF_PIXEL|DO_NOT_USE). Returns the number flagged/replaced (jwst logs it).

    Every output (the reference output too) is examined on its own, one integration at a time:
    the reference samples are taken in pairs (the ``r`` samples of a group, two at a time), and a
    pair not flagged yet is flagged when its mean absolute difference, its mean or its std lies
    more than ``n_sigma`` clipped stds above the clipped mean over the output's pairs. A flag
    found in any integration applies to all. Unless ``flag_only``, every flagged row (already
    flagged ones included) then gets the value of its nearest good reference rows (see
    :func:`_replacement`) in every integration and group. ``replace_only`` skips the search.
    """
    layout = layout or IRS2Layout()
    n, r = layout.n, layout.r
    nints, _, length, _ = data.shape
    if pixeldq is None:
        flagged = np.zeros(length, dtype=bool)
    else:
        flagged = np.any(pixeldq & BAD_REF_PIXEL, axis=1)
    previously = flagged.copy()
    section = length // 5
    period = n + r

    # the first sample of every pair, per output (the same rows in every output)
    pair_offsets = np.array([start + k for start in range(n // 2, section, period)
                             for k in range(0, r, 2)], dtype=np.intp)
    is_reference = np.zeros(length, dtype=bool)
    for output in range(5):
        firsts = output * section + pair_offsets
        is_reference[firsts] = True
        is_reference[firsts + 1] = True

    for output in range(5):
        firsts = output * section + pair_offsets
        if not replace_only:
            usable = ~(previously[firsts] | previously[firsts + 1])
            candidates = firsts[usable]
            for integration in range(nints):
                frames = data[integration]
                # in the data's precision (numpy keeps the scalars' dtype), float64 if empty
                stats = np.array([_pair_statistics(frames, first)
                                  for first in candidates]).reshape(-1, 3)
                outlying = np.zeros(candidates.size, dtype=bool)
                for column in range(3):
                    outlying |= _outlying_pairs(stats[:, column], n_sigma)
                log.debug(f"output {output}, integration {integration}: "
                          f"{int(outlying.sum())} outlying reference pairs")
                flagged[candidates[outlying]] = True
                flagged[candidates[outlying] + 1] = True
        if not flag_only:
            low, high = output * section, (output + 1) * section
            for bad in np.flatnonzero(flagged[low:high]) + low:
                sources = _replacement(bad, flagged, is_reference, low, high, period)
                _assign_replacement(data, bad, sources, axis=-2)

    total = int(flagged.sum())
    if flag_only:
        log.info(f"Total bad reference pixels flagged: {total}")
    else:
        log.info(f"Total bad reference pixels replaced: {total}")
    if pixeldq is not None:
        pixeldq[flagged] |= BAD_REF_PIXEL | DO_NOT_USE
    return total


def flag_bad_refpix(datamodel, n_sigma=3.0, flag_only=False, replace_only=False):
    """:func:`flag_bad_reference_samples` on a ramp datamodel (its data and pixeldq, in place),
    with the layout given by its NRS_NORM and NRS_REF keywords."""
    return flag_bad_reference_samples(datamodel.data, datamodel.pixeldq, layout_of(datamodel),
                                      n_sigma=n_sigma, flag_only=flag_only,
                                      replace_only=replace_only)


# --------------------------------------------------------------------------------------------
# geometry of the time series


@dataclass(frozen=True)
class _Series:
    """Where every sample of an output sits in its time series, for one layout and pad."""

    row: int                 # series samples per detector line (samples + overheads)
    lines: int               # detector lines (2048)
    section: int             # samples per output along the fast axis (640)
    column_of: np.ndarray    # (section,) series column of each sample, in read order
    source: np.ndarray       # (5, row) detector x read at each series column (-1: a gap)
    normal_columns: np.ndarray   # (512,) series columns of the normal samples, in read order
    normal_reads: np.ndarray     # (512,) their positions in read order
    spread_to: np.ndarray    # series columns that receive a copy of a reference sample...
    spread_from: np.ndarray  # ...and the series column of the sample copied there
    keep: np.ndarray         # (row,) bool: normal columns, kept through the reference filter
    time_origin: float       # mean of the sample times 0 .. lines*row - 1

    @property
    def length(self):
        return self.lines * self.row


@lru_cache(maxsize=4)
def _series(n, r, pad, lines, section):
    """The :class:`_Series` of a layout (n normal, r reference samples) and line overhead."""
    count = _NORMAL_PER_OUTPUT
    groups = count // n                      # groups of reference samples per output line
    row = (n + r + 2) * groups + pad
    normal = np.arange(count)
    reference = np.arange(groups * r)
    # in read order: n//2 normal samples, then r references, n normals, r references, ...;
    # in the series every group of references is surrounded by a one-sample gap on each side
    normal_reads = normal + r * ((normal + n // 2) // n)
    reference_reads = reference + n * (reference // r) + n // 2
    normal_columns = normal + (r + 2) * ((normal + n // 2) // n)
    reference_columns = reference + (n + 2) * (reference // r) + n // 2 + 1
    if section != count + groups * r:
        raise ValueError(f"an IRS2 output of {section} samples does not match "
                         f"n={n}, r={r} ({count + groups * r})")
    column_of = np.empty(section, dtype=np.intp)
    column_of[normal_reads] = normal_columns
    column_of[reference_reads] = reference_columns

    source = np.full((5, row), -1, dtype=np.intp)
    reads = np.arange(section)
    for output in range(5):
        # outputs 0, 2 and 4 are stored in the opposite direction to their read order
        stored = reads if output % 2 else section - 1 - reads
        source[output, column_of] = output * section + stored

    # The reference samples of a group are spread over 2r columns centred on it (gaps and the
    # neighbouring normal columns included), each pair of reads duplicated, in the order the
    # IDL original interleaves them.
    half = r // 2
    pattern = np.concatenate([[k, k + half, k, k + half] for k in range(half)])
    if r % 4 == 2:
        pattern = pattern.reshape(-1, 2)[:, ::-1].ravel()
    period = n + r + 2
    first_to = n // 2 + 1 - half
    spread_to = np.concatenate([b * period + first_to + np.arange(2 * r) for b in range(groups)])
    spread_from = np.concatenate([b * period + n // 2 + 1 + pattern for b in range(groups)])

    keep = np.zeros(row, dtype=bool)
    keep[normal_columns] = True
    # the times are float32 integers (exact below 2**24) minus their float64 mean (exact too)
    time_origin = (lines * row - 1) / 2.0
    return _Series(row=row, lines=lines, section=section, column_of=column_of, source=source,
                   normal_columns=normal_columns, normal_reads=normal_reads,
                   spread_to=spread_to.astype(np.intp), spread_from=spread_from.astype(np.intp),
                   keep=keep, time_origin=time_origin)


def _reference_filter(n, r, pad, lines, row):
    """The low-pass weights (float64, lines*row) applied to the reference output's spectrum.

    Frequencies below ``passed`` bins keep their amplitude, a half-cosine taper of
    ``taper_length`` bins follows, the rest is cut; the negative frequencies mirror that (the
    roll by one keeps bin 0, the zero frequency, at the start).
    """
    taper_length = 110000 // (n + r + 2)
    passed = (_NORMAL_PER_OUTPUT + _NORMAL_PER_OUTPUT // n * (r + 2) + pad) // (n + r + 2) \
        * lines // 2 - taper_length // 2
    taper = (np.cos(np.arange(taper_length, dtype=np.float64) * np.pi / float(taper_length))
             + 1.0) / 2.0
    half = row * lines // 2
    first_half = np.concatenate((np.ones(passed), taper,
                                 np.zeros(half - 2 * passed - 2 * taper_length),
                                 taper[::-1], np.ones(passed)))
    return np.concatenate((first_half, np.roll(first_half, -1)[::-1]))


def _hermitian_half(weights):
    """The weights that act on the spectrum of a real series as ``weights`` (..., N) do on its
    full spectrum, where only the real part of the inverse transform is used: complex64
    (w[k] + conj(w[-k])) / 2 for k = 0 .. N // 2.

    The real part of ifft(w * fft(x)) is irfft of those weights times rfft(x): the half
    spectrum of a real series holds all of it, and each transform costs half as much."""
    full = np.ascontiguousarray(weights, dtype=np.complex64)
    rows = full.reshape(-1, full.shape[-1])
    half = np.empty((rows.shape[0], rows.shape[1] // 2 + 1), dtype=np.complex64)
    _fold(lambda start, stop: rows[:, start:stop], rows.shape[1], half)
    return half.reshape(full.shape[:-1] + half.shape[-1:])


@lru_cache(maxsize=2)
def _reference_filter_half(n, r, pad, lines, row):
    """:func:`_reference_filter` for the half spectrum (float32: the filter is real). Only
    this is kept: the full filter (float64, 12 MB on a full frame) is made and dropped."""
    return np.ascontiguousarray(_hermitian_half(_reference_filter(n, r, pad, lines, row)).real)


@lru_cache(maxsize=1)
def _cosine_weights():
    """Weights of the cosine interpolation in scipy's correlation order (float64), and which of
    scipy's three summation orders applies to them (1 symmetric, -1 antisymmetric, 0 neither)."""
    bell = np.sin(np.arange(1, 32, dtype=np.float32) / 32.0 * np.pi)
    weights = np.ascontiguousarray(bell[::-1], dtype=np.float64)
    half = weights.size // 2
    eps = np.finfo(np.float64).eps
    mirrored = [(weights[half + k], weights[half - k]) for k in range(1, half + 1)]
    if all(abs(a - b) <= eps for a, b in mirrored):
        symmetry = 1
    elif all(abs(a + b) <= eps for a, b in mirrored):
        symmetry = -1
    else:
        symmetry = 0
    return weights, symmetry


# --------------------------------------------------------------------------------------------
# kernels


@numba.njit(parallel=True, cache=True)
def _subtract_ramp_mean(frames, mean, rows_to, columns_to):
    """frames -= their float64 mean over groups (summed in group order), rounded to float32;
    the mean of pixel (y, x) is kept at mean[rows_to[y], columns_to[x]] unless either is -1.
    frames (ngroups, ny, nx) float32; mean float64.

    Row by row, each group's row added to a row of sums: the loops run along the rows, which
    the compiler vectorises (pixel by pixel, through the groups a plane apart, a full frame of
    10 groups took 100 ms on two cores; 25 ms this way, the same sums)."""
    ngroups, ny, nx = frames.shape
    for y in numba.prange(ny):
        total = np.zeros(nx, np.float64)
        for g in range(ngroups):
            row = frames[g, y]
            for x in range(nx):
                total[x] += np.float64(row[x])
        for x in range(nx):
            total[x] = total[x] / ngroups
        to_row = rows_to[y]
        if to_row >= 0:
            for x in range(nx):
                if columns_to[x] >= 0:
                    mean[to_row, columns_to[x]] = total[x]
        for g in range(ngroups):
            row = frames[g, y]
            for x in range(nx):
                row[x] = np.float32(np.float64(row[x]) - total[x])


@numba.njit(inline="always")
def _detrended(value, intercept, slope, index, origin):
    """A series sample minus the fitted line at its time; zeros (gaps, bad samples) stay put
    (but the line's weight is multiplied in, as the original does, so NaN still spreads)."""
    t = np.float32(np.float64(index) - origin)
    weight = np.float32(1.0) if value != 0 else np.float32(0.0)
    return value - (intercept + t * slope) * weight


@numba.njit(nogil=True, cache=True)
def _reference_output_series(det, source, intercept, slope, row, origin, series):
    """The reference output's detrended series: series[y*row + c] from det[y, source[c]]."""
    lines = det.shape[0]
    for y0 in range(0, lines, _TILE):
        y1 = min(y0 + _TILE, lines)
        for c in range(row):
            x = source[c]
            for y in range(y0, y1):
                k = y * row + c
                value = det[y, x] if x >= 0 else np.float32(0.0)
                series[k] = _detrended(value, intercept, slope, k, origin)


@numba.njit(nogil=True, cache=True)
def _spread_references(det, source, spread_to, spread_from, intercept, slope, row, origin,
                       series):
    """An amplifier's detrended reference samples copied to their spread columns of a zeroed
    float32 series."""
    lines = det.shape[0]
    for y0 in range(0, lines, _TILE):
        y1 = min(y0 + _TILE, lines)
        for j in range(spread_to.size):
            c_from = spread_from[j]
            c_to = spread_to[j]
            x = source[c_from]
            for y in range(y0, y1):
                k = y * row + c_from
                series[y * row + c_to] = _detrended(det[y, x], intercept, slope, k, origin)


@numba.njit(nogil=True, cache=True, inline="always")
def _wrapped(i, n):
    """``i % n`` without the division a modulo costs (one addition for an index at most one
    period outside, as every index here is)."""
    while i < 0:
        i += n
    while i >= n:
        i -= n
    return i


@numba.njit(nogil=True, cache=True)
def _cosine_interpolate(series, weights, symmetry, everywhere):
    """scipy.ndimage.convolve1d(mode='wrap') of the series and of its non-zero mask with
    ``weights`` (double sums in scipy's order), and series += num/den * (1 - mask), in place.

    Only zero samples change unless a value is NaN or infinite (``everywhere``). An index
    wraps by an addition rather than a modulo (a full frame's 10 groups: 132 -> 89 ms on one
    core)."""
    n = series.size
    half = weights.size // 2
    last = weights.size - half - 1
    original = series.copy()
    for i in range(n):
        here = original[i]
        if here != 0 and not everywhere:
            continue
        if symmetry == 0:
            k = _wrapped(i + last, n)
            value = np.float64(original[k])
            num = value * weights[half + last]
            den = (1.0 if value != 0 else 0.0) * weights[half + last]
            for j in range(-half, last):
                k = _wrapped(i + j, n)
                value = np.float64(original[k])
                num += value * weights[half + j]
                den += (1.0 if value != 0 else 0.0) * weights[half + j]
        else:
            value = np.float64(here)
            num = value * weights[half]
            den = (1.0 if value != 0 else 0.0) * weights[half]
            for j in range(-half, 0):
                a = np.float64(original[_wrapped(i + j, n)])
                b = np.float64(original[_wrapped(i - j, n)])
                ma = 1.0 if a != 0 else 0.0
                mb = 1.0 if b != 0 else 0.0
                if symmetry > 0:
                    num += (a + b) * weights[half + j]
                    den += (ma + mb) * weights[half + j]
                else:
                    num += (a - b) * weights[half + j]
                    den += (ma - mb) * weights[half + j]
        numerator = np.float32(num)
        denominator = np.float32(den)
        if denominator == 0:
            numerator = np.float32(0.0)
            denominator = np.float32(1.0)
        fill = numerator / denominator
        mask = np.float32(1.0) if here != 0 else np.float32(0.0)
        series[i] = here + fill * (np.float32(1.0) - mask)


@numba.njit(nogil=True, cache=True)
def _combine_spectra(spectrum, beta, reference, alpha):
    """spectrum = spectrum * beta + reference * alpha, in place (complex64 half spectra)."""
    for k in range(spectrum.size):
        spectrum[k] = spectrum[k] * beta[k] + reference[k] * alpha[k]


@numba.njit(nogil=True, cache=True)
def _restore_kept(series, filtered, kept, keep, row):
    """series = ``filtered`` except in the kept columns, which get ``kept`` (line by line: the
    column of a sample without a modulo)."""
    for start in range(0, series.size, row):
        for c in range(min(row, series.size - start)):
            k = start + c
            series[k] = kept[k] if keep[c] else filtered[k]


@numba.njit(nogil=True, cache=True)
def _write_corrected(det, mean_det, correction, reads, columns, mean_from, targets,
                     intercept, slope, row, origin, out_det):
    """out_det[y, targets[i]] = detrended det[y, reads[i]] minus the correction at series
    column columns[i], plus the ramp mean at mean_det[y, mean_from[i]] (not added where
    mean_from is -1)."""
    lines = det.shape[0]
    for y0 in range(0, lines, _TILE):
        y1 = min(y0 + _TILE, lines)
        for i in range(reads.size):
            x = reads[i]
            c = columns[i]
            xm = mean_from[i]
            xo = targets[i]
            for y in range(y0, y1):
                k = y * row + c
                value = _detrended(det[y, x], intercept, slope, k, origin)
                value = value - correction[k]
                if xm >= 0:
                    out_det[y, xo] = np.float32(np.float64(value) + mean_det[y, xm])
                else:
                    out_det[y, xo] = value


@numba.njit(nogil=True, cache=True)
def _write_reference_output(series, mean_det, columns, targets, row, out_det):
    """out_det[y, targets[i]] = series[y*row + columns[i]] plus the ramp mean there."""
    lines = out_det.shape[0]
    for y0 in range(0, lines, _TILE):
        y1 = min(y0 + _TILE, lines)
        for i in range(columns.size):
            x = targets[i]
            for y in range(y0, y1):
                out_det[y, x] = np.float32(np.float64(series[y * row + columns[i]])
                                           + mean_det[y, x])


# --------------------------------------------------------------------------------------------
# the correction


def _detector_view(array, detector):
    """View of an array (..., L, nx) in the DMS frame in detector orientation (..., y, x), with
    x the 3200-long fast axis (NRS1: transposed; NRS2: transposed and both axes reversed)."""
    if detector == "NRS1":
        return np.swapaxes(array, -1, -2)
    if detector == "NRS2":
        return np.swapaxes(array, -1, -2)[..., ::-1, ::-1]
    return array


def _line_fit(times, values):
    """Ordinary least-squares line (intercept, slope) through float32 points, evaluated in
    float32 numpy scalars with the original's operation order; (0, 0) with no points."""
    if times.size == 0:
        return np.float32(0.0), np.float32(0.0)
    count = float(times.size)
    mean_t = times.mean()
    mean_v = values.mean()
    sum_tt = np.square(times).sum()
    sum_tv = (times * values).sum()
    slope = (sum_tv - count * mean_t * mean_v) / (sum_tt - count * mean_t**2)
    intercept = mean_v - slope * mean_t
    return np.float32(intercept), np.float32(slope)


def _frame_edge_fits(det_frames, geometry):
    """Per output and group, the line fitted to the first and last four detector lines of the
    (mean-subtracted) series, zeros excluded: arrays (5, ngroups) float32."""
    lines, row = geometry.lines, geometry.row
    edge = np.array([0, 1, 2, 3, lines - 4, lines - 3, lines - 2, lines - 1])
    index = edge[:, None] * row + np.arange(row)[None, :]
    times = (index.astype(np.float32).astype(np.float64) - geometry.time_origin).astype(np.float32)
    ngroups = det_frames.shape[0]
    intercepts = np.zeros((5, ngroups), dtype=np.float32)
    slopes = np.zeros((5, ngroups), dtype=np.float32)
    for g in range(ngroups):
        rows = np.ascontiguousarray(det_frames[g][edge, :])
        for output in range(5):
            source = geometry.source[output]
            block = np.where(source >= 0, rows[:, np.maximum(source, 0)], np.float32(0.0))
            used = block != 0.0
            intercepts[output, g], slopes[output, g] = _line_fit(times[used], block[used])
    return intercepts, slopes


class _Integration:
    """The correction of one integration: the frames (ngroups, L, nx) in the DMS frame, already
    mean-subtracted in place, and the float64 ramp mean (of every sample with ``preserve``,
    else of the normal samples only, laid out as the output)."""

    def __init__(self, frames, mean, detector, geometry, alpha, beta, mask, preserve, output,
                 layout, pad):
        self.det = _detector_view(frames, detector)
        self.mean_det = _detector_view(mean, detector)
        self._output = output   # group -> the (DMS-frame) plane its result is written to
        self._detector = detector
        self.geometry = geometry
        # half spectra (see _hermitian_half)
        self.alpha, self.beta = alpha, beta
        self.preserve = preserve
        self.mask = mask
        self.intercepts, self.slopes = _frame_edge_fits(self.det, geometry)
        self.spectra = {}
        self._layout = (layout.n, layout.r, pad)
        self._targets = self._amplifier_targets()

    def reference_output(self, g):
        """Filter group g's reference output series and keep its scaled transform."""
        geo = self.geometry
        n, r, pad = self._layout
        series = np.empty(geo.length, dtype=np.float32)
        _reference_output_series(self.det[g], geo.source[0], self.intercepts[0, g],
                                 self.slopes[0, g], geo.row, geo.time_origin, series)
        weights, symmetry = _cosine_weights()
        everywhere = not np.isfinite(series).all()
        _cosine_interpolate(series, weights, symmetry, everywhere)
        kept = series.copy()
        lowpass = _reference_filter_half(n, r, pad, geo.lines, geo.row)
        for _ in range(3):
            spectrum = scipy.fft.rfft(series)
            spectrum *= lowpass
            filtered = scipy.fft.irfft(spectrum, n=geo.length, overwrite_x=True)
            _restore_kept(series, filtered, kept, geo.keep, geo.row)
        del filtered, kept
        self.spectra[g] = scipy.fft.rfft(series)
        if self.preserve:
            reads = np.arange(geo.section)
            targets = geo.section - 1 - reads
            _write_reference_output(series, self.mean_det, geo.column_of, targets, geo.row,
                                    self._out_det(g))

    def amplifier(self, g, output):
        """Correct amplifier ``output`` (1-4) of group g (needs its reference output first)."""
        geo = self.geometry
        series = np.zeros(geo.length, dtype=np.float32)
        intercept, slope = self.intercepts[output, g], self.slopes[output, g]
        _spread_references(self.det[g], geo.source[output], geo.spread_to, geo.spread_from,
                           intercept, slope, geo.row, geo.time_origin, series)
        spectrum = scipy.fft.rfft(series)
        del series
        _combine_spectra(spectrum, self.beta[output - 1], self.spectra[g], self.alpha[output - 1])
        correction = scipy.fft.irfft(spectrum, n=geo.length, overwrite_x=True)
        del spectrum
        reads, columns, mean_from, targets = self._targets[output]
        _write_corrected(self.det[g], self.mean_det, correction, reads, columns,
                         mean_from, targets, intercept, slope, geo.row, geo.time_origin,
                         self._out_det(g))

    def _out_det(self, g):
        return _detector_view(self._output(g), self._detector)

    def _amplifier_targets(self):
        """Per amplifier: the detector x read, its series column, where its ramp mean comes
        from (-1: none) and the output x, for every sample written."""
        geo = self.geometry
        targets_of = {}
        for output in range(1, 5):
            base = output * geo.section
            if self.preserve:
                reads = np.arange(geo.section)
                stored = reads if output % 2 else geo.section - 1 - reads
                x = base + stored
                columns = geo.column_of
                # as in the original, only normal samples get their mean back
                mean_from = np.where(self.mask[x], x, -1)
                targets = x
            else:
                order = np.arange(_NORMAL_PER_OUTPUT)
                stored = geo.normal_reads if output % 2 else geo.section - 1 - geo.normal_reads
                x = base + stored
                columns = geo.normal_columns
                targets = (output - 1) * _NORMAL_PER_OUTPUT + (
                    order if output % 2 else _NORMAL_PER_OUTPUT - 1 - order)
                # the mean comes back from the mask's n-th normal sample, the sample stored
                # there whenever the layout reads the same in both directions; only normal
                # samples' means are kept, in the output's layout (see correct_irs2)
                mean_from = targets
            targets_of[output] = tuple(np.ascontiguousarray(a, dtype=np.intp)
                                       for a in (x, columns, mean_from, targets))
        return targets_of

    def run(self, pool, workers, done):
        """Correct every group; ``done(g)`` is called, in group order, once group g's input
        is no longer read and its output plane is complete."""
        ngroups = self.det.shape[0]

        def whole_group(g):
            self.reference_output(g)
            for output in range(1, 5):
                self.amplifier(g, output)
            del self.spectra[g]

        if ngroups >= workers:
            for g, future in enumerate([pool.submit(whole_group, g) for g in range(ngroups)]):
                future.result()
                done(g)
            return
        # few groups: the reference outputs first, then the 4 * ngroups amplifiers in parallel
        for future in [pool.submit(self.reference_output, g) for g in range(ngroups)]:
            future.result()
        for future in [pool.submit(self.amplifier, g, output)
                       for g in range(ngroups) for output in range(1, 5)]:
            future.result()
        self.spectra.clear()
        for g in range(ngroups):
            done(g)


class _OutputOverInput:
    """The 2048-row result written over the 3200-row input's own memory, plane after plane.

    Output plane ``p`` (integration x group, in file order) takes the bytes from ``p`` times
    the output plane's size on, so it only covers input planes up to ``p`` (the output planes
    are smaller). A plane whose input planes are all taken already is written in place; any
    other is computed into a plane of its own and copied into place once they are. The input's
    full size is never held twice, and the result's pages are ones the input had already
    faulted in; the pages beyond the result are given back at the end."""

    def __init__(self, data, shape):
        self._flat = data.reshape(-1)
        self.result = self._flat[:int(np.prod(shape))].reshape(shape)
        self._planes = self.result.reshape((-1,) + shape[-2:])
        self._input_plane = data.shape[-2] * data.shape[-1]
        self._staged = {}
        self._consumed = 0
        self._lock = threading.Lock()

    def plane(self, p):
        """Where output plane ``p`` is to be written (the same array on every call)."""
        with self._lock:
            if p in self._staged:
                return self._staged[p]
            last_input = ((p + 1) * self._planes[0].size - 1) // self._input_plane
            if last_input < self._consumed:
                return self._planes[p]
            self._staged[p] = np.empty(self._planes.shape[1:], dtype=np.float32)
            return self._staged[p]

    def consumed(self, count):
        """Input planes ``0 .. count - 1`` are no longer read (and their outputs are done)."""
        with self._lock:
            self._consumed = max(self._consumed, count)
            for p in sorted(p for p in self._staged if p < count):
                self._planes[p] = self._staged.pop(p)

    def finish(self):
        self.consumed(self._planes.shape[0])
        release_pages(self._flat[self.result.size:])
        return self.result


def correct_irs2(data, pixeldq, groupdq, detector, alpha, beta, dq_table, layout, preserve_refpix=False, pad=8,
                 release_input=False):
    """jwst's correct_model on arrays (everything after the REFPIX file has been read):
    data (nints, ngroups, L, nx) float32 DMS frame; pixeldq (L, nx); groupdq (nints, ngroups, L, nx);
    detector 'NRS1' or 'NRS2' (other: no reorientation, as jwst); dq_table: None or a tuple of the
    REFPIX DQ table's (output, odd_even, mask) columns. Returns (data, pixeldq, groupdq) — with the
    interleaved reference samples and the reference output removed (2048 rows) unless preserve_refpix.

    ``data`` serves as workspace: reference samples declared bad by the DQ table are replaced
    in it and every group is left with the ramp mean subtracted (with ``preserve_refpix`` it
    is the returned array, corrected in place). ``alpha`` and ``beta`` are the complex64
    (4, 712*2048) coefficients of :func:`coefficients_from_table`, or the same folded by
    :func:`fold_coefficients` (4, 356*2048 + 1).

    ``release_input`` (ignored with ``preserve_refpix``): the caller needs nothing more from
    ``data``, ``pixeldq`` and ``groupdq``. The results are written over their start (views of
    them are returned) and the memory pages of the rest are given back
    (:func:`ramp2slope.runtime.malloc.release_pages`), so that the 3200-row arrays and the
    2048-row ones are never held together.
    """
    layout = layout or IRS2Layout()
    detector = str(detector).upper() if detector is not None else ""
    if detector not in ("NRS1", "NRS2"):
        log.warning(f"Detector {detector}; not changing orientation (sky vs detector)")
    if data.dtype != np.float32 or not data.flags.c_contiguous:
        data = np.ascontiguousarray(data, dtype=np.float32)
    nints, ngroups = data.shape[:2]
    det_shape = _detector_view(data, detector).shape
    lines, nx = det_shape[-2], det_shape[-1]
    section = nx // 5
    geometry = _series(layout.n, layout.r, pad, lines, section)
    mask = normal_mask(nx, layout)

    if dq_table is not None and len(dq_table[0]) > 0:
        flags = np.zeros(nx, dtype=bool) if pixeldq is None else \
            np.any(_detector_view(pixeldq, detector) & BAD_REF_PIXEL, axis=0)
        is_reference = ~mask
        # the reference output has no interleaved samples: borrow an amplifier's pattern
        is_reference[:section] = is_reference[2 * section:3 * section]
        clobber_ref(_detector_view(data, detector), dq_table[0], dq_table[1], dq_table[2],
                    flags, is_reference, scipix_n=layout.n, refpix_r=layout.r)
    else:
        log.warning("DQ extension not found in reference file")

    release = release_input and not preserve_refpix
    if release:
        # before the correction's own arrays are made: the DQ arrays' freed tails make room
        pixeldq = _strip(pixeldq, detector, mask, in_place=True)
        groupdq = _strip(groupdq, detector, mask, in_place=True)

    out_det_shape = (nints, ngroups, lines, _NORMAL_PER_OUTPUT * 4)
    out_shape = out_det_shape[:2] + out_det_shape[:1:-1] if detector in ("NRS1", "NRS2") \
        else out_det_shape
    over_input = None
    if preserve_refpix:
        out = data
    elif release:
        over_input = _OutputOverInput(data, out_shape)
    else:
        out = np.empty(out_shape, dtype=np.float32)

    folded_length = geometry.length // 2 + 1
    if np.shape(alpha)[-1] == np.shape(beta)[-1] == geometry.length:
        alpha, beta = fold_coefficients(alpha, beta)
    elif not np.shape(alpha)[-1] == np.shape(beta)[-1] == folded_length:
        raise ValueError(f"the IRS2 coefficients hold {np.shape(beta)[-1]} values per output, "
                         f"the time series of this readout {geometry.length} "
                         f"({folded_length} folded)")
    workers = max(1, min(numba.get_num_threads(), os.cpu_count() or 1))
    if preserve_refpix:
        mean = np.empty(data.shape[2:], dtype=np.float64)
        rows_to, columns_to = np.arange(data.shape[2]), np.arange(data.shape[3])
    else:
        # only the normal samples get their mean back: it is kept where they end up
        mean = np.empty(out_shape[2:], dtype=np.float64)
        axis, keep = _kept_axis(detector, mask)
        kept_at = np.where(keep, np.cumsum(keep) - 1, -1)
        rows_to, columns_to = (kept_at, np.arange(data.shape[3])) if axis == -2 else \
            (np.arange(data.shape[2]), kept_at)
    _reference_filter_half(layout.n, layout.r, pad, geometry.lines, geometry.row)   # made once
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for integration in range(nints):
            log.info(f"Working on integration {integration + 1} out of {nints}")
            frames = data[integration]
            _subtract_ramp_mean(frames, mean, rows_to, columns_to)
            first = integration * ngroups
            if over_input is not None:
                output, done = (lambda g, first=first: over_input.plane(first + g)), \
                    (lambda g, first=first: over_input.consumed(first + g + 1))
            else:
                output, done = (lambda g, i=integration: out[i, g]), (lambda g: None)
            work = _Integration(frames, mean, detector, geometry, alpha, beta, mask,
                                preserve_refpix, output, layout, pad)
            work.run(pool, workers, done)
    if over_input is not None:
        out = over_input.finish()
    elif not preserve_refpix:
        pixeldq = _strip(pixeldq, detector, mask)
        groupdq = _strip(groupdq, detector, mask)
    return out, pixeldq, groupdq


def _strip(dq, detector, mask, in_place=False):
    """The normal samples of a DQ array in the DMS frame (rows for NRS1/NRS2, else columns),
    C-contiguous: indexing ``[..., mask, :]`` gives a strided array for several integrations,
    which the later steps' kernels would be compiled for once more.

    ``in_place``: written over the start of ``dq`` itself (a view of it is returned) and the
    pages of the rest given back. Plane ``p`` of the result ends where plane ``p`` of ``dq``
    ends or before, so it only covers planes already taken (each is copied out first)."""
    if dq is None:
        return None
    axis, keep = _kept_axis(detector, mask)
    if not (in_place and dq.flags.c_contiguous and dq.flags.writeable):
        return np.compress(keep, dq, axis=axis)
    kept = int(np.count_nonzero(keep))
    shape = dq.shape[:-2] + ((kept, dq.shape[-1]) if axis == -2 else (dq.shape[-2], kept))
    flat = dq.reshape(-1)
    stripped = flat[:int(np.prod(shape))].reshape(shape)
    planes, stripped_planes = dq.reshape((-1,) + dq.shape[-2:]), stripped.reshape((-1,) + shape[-2:])
    for p in range(planes.shape[0]):
        stripped_planes[p] = np.compress(keep, planes[p], axis=axis)
    release_pages(flat[stripped.size:])
    return stripped


def _kept_axis(detector, mask):
    """The DMS-frame axis along which the normal samples are kept (rows for NRS1/NRS2, else
    columns) and which of its indices are kept."""
    if detector not in ("NRS1", "NRS2"):
        return -1, mask
    return -2, mask if detector == "NRS1" else mask[::-1]
