"""Where the NIRISS SOSS spectral traces fall, for ``mask_science_regions`` on NIS_SOSS.

The PASTASOSS reference (ASDF) describes each order's trace at the commanded pupil-wheel
position (PWCPOS_CMD): points (x, y), a pivot, and a 2-D polynomial giving the wavelength from
the scaled column and the scaled pupil-wheel offset. For an exposure's pupil-wheel position
(PWCPOS), the trace is rotated about its pivot by the offset (degrees), brought back onto the
original columns by linear interpolation (extrapolated at the ends), cut above row 255, given
its wavelengths, and resampled on the reference's wavelength grid (linearly extrapolated beyond
the trace's own range), as jwst's ``pastasoss.get_soss_wavemaps`` traces them. The scene mask
then leaves out ``HALFWIDTH`` rows above and below each order's trace in every column.
"""
import numpy as np

from ..errors import ReferenceFileError

__all__ = ["HALFWIDTH", "order_trace", "read_pastasoss", "soss_traces", "trace_pixels",
           "wavelength_map"]

#: Rows masked above and below the centre of each trace (jwst's default).
HALFWIDTH = 16


def read_pastasoss(path):
    """The parts of a PASTASOSS reference the traces need (a dict), checked; a one-line error
    names the file when they are missing."""
    import warnings

    import asdf

    try:
        with warnings.catch_warnings():
            # written by the official data models, whose tags asdf alone does not know
            warnings.simplefilter("ignore")
            with asdf.open(path, lazy_load=False, memmap=False) as handle:
                tree = handle.tree
                meta = tree["meta"]
                ref = {
                    "pwcpos_cmd": float(meta["pwcpos_cmd"]),
                    "pwcpos_bounds": [float(v) for v in meta["pwcpos_bounds"]],
                    # the frame of the wavelength maps (only they need it)
                    "frame": {key: int(meta[key]) if meta.get(key) is not None else None
                              for key in ("soss_xdim", "soss_ydim", "subarray_ymin")},
                    "wave_grid": np.linspace(float(meta["wavemap_wlmin"]),
                                             float(meta["wavemap_wlmax"]),
                                             int(meta["wavemap_nwl"])),
                    "traces": [{
                        "order": int(trace["spectral_order"]),
                        "points": np.array(trace["trace"], dtype=np.float64),
                        "pivot": (float(trace["pivot_x"]), float(trace["pivot_y"])),
                    } for trace in tree["traces"]],
                    "wavecal": [{
                        "coefficients": np.array(model["coefficients"], dtype=np.float64),
                        "extents": np.array(model["scale_extents"], dtype=np.float64),
                    } for model in tree["wavecal_models"]],
                }
    except Exception as exc:   # noqa: BLE001 - whatever is missing or unreadable
        raise ReferenceFileError(f"{path}: not a usable PASTASOSS reference "
                                 f"({type(exc).__name__}: {exc})") from None
    if len(ref["wavecal"]) != len(ref["traces"]):
        raise ReferenceFileError(f"{path}: {len(ref['traces'])} traces but "
                                 f"{len(ref['wavecal'])} wavelength models")
    for trace in ref["traces"]:
        if trace["points"].ndim != 2 or trace["points"].shape[1] != 2:
            raise ReferenceFileError(f"{path}: order {trace['order']}'s trace is not a list of "
                                     f"(x, y) points")
    return ref


def _polynomial(coefficients):
    """The 2-D polynomial of a PASTASOSS wavelength model: its coefficients are listed by total
    degree, and within one degree by the power of the second variable."""
    from astropy.modeling.polynomial import Polynomial2D

    degree = int(np.sqrt(2 * len(coefficients))) - 1
    poly = Polynomial2D(degree=degree)
    for name in poly.param_names:
        xpow, ypow = (int(n) for n in name.strip("c").split("_"))
        total = xpow + ypow
        setattr(poly, name, coefficients[total * (total + 1) // 2 + ypow])
    return poly


def _scaled(value, low, high):
    return (value - low) / (high - low)


def _trace_at(ref, index, pwcpos, subarray):
    """Order ``index``'s trace (x, y, wavelength) at pupil-wheel position ``pwcpos``."""
    from scipy.interpolate import interp1d

    trace = ref["traces"][index]
    x, y = trace["points"].T.copy()
    if subarray == "SUBSTRIP96":
        y -= 10
    angle = np.radians(pwcpos - ref["pwcpos_cmd"])
    origin = np.array(trace["pivot"])[:, np.newaxis]
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    x_rot, y_rot = rotation @ (np.vstack([x, y]) - origin) + origin
    y_new = interp1d(x_rot, y_rot, fill_value="extrapolate")(x)
    kept = y_new <= 255.0
    x, y_new = x[kept], y_new[kept]
    wavecal = ref["wavecal"][index]
    (x_low, offset_low), (x_high, offset_high) = wavecal["extents"]
    offset = np.ones_like(x) * (pwcpos - ref["pwcpos_cmd"])
    wavelength = _polynomial(wavecal["coefficients"])(_scaled(x, x_low, x_high),
                                                      _scaled(offset, offset_low, offset_high))
    return x, y_new, wavelength


def _on_grid(grid, wavelength, quantity):
    """``quantity`` resampled on the wavelength ``grid``, extended linearly beyond its ends."""
    order = np.argsort(wavelength)
    q, w = quantity[order], wavelength[order]
    right = np.where(grid > w[-1])[0]
    left = np.where(grid < w[0])[0]
    q_right = q[-1] + (grid[right] - w[-1]) * ((q[-1] - q[-2]) / (w[-1] - w[-2]))
    q_left = q[0] + (grid[left] - w[0]) * ((q[1] - q[0]) / (w[1] - w[0]))
    return np.interp(grid, np.concatenate((grid[left], w, grid[right])),
                     np.concatenate((q_left, q, q_right)))


def _check_position(ref, pwcpos):
    low, high = (ref["pwcpos_bounds"] + [None, None])[:2]
    if low is None or high is None or not low <= pwcpos <= high:
        raise ReferenceFileError(f"PASTASOSS: pupil wheel position {pwcpos} is outside the "
                                 f"positions the reference covers ({ref['pwcpos_bounds']})")


def _order_index(ref, order):
    orders = [trace["order"] for trace in ref["traces"]]
    if order not in orders:
        raise ReferenceFileError(f"PASTASOSS: no trace of spectral order {order} (orders "
                                 f"{orders})")
    return orders.index(order)


def soss_traces(ref, pwcpos, subarray):
    """Each order's trace as (x, y) arrays on the reference's wavelength grid. Raises
    ReferenceFileError when ``pwcpos`` is outside the positions the reference covers."""
    _check_position(ref, pwcpos)
    traces = []
    for index in range(len(ref["traces"])):
        x, y, wavelength = _trace_at(ref, index, pwcpos, subarray)
        traces.append((_on_grid(ref["wave_grid"], wavelength, x),
                       _on_grid(ref["wave_grid"], wavelength, y)))
    return traces


def order_trace(ref, pwcpos, order, subarray="SUBSTRIP256"):
    """Spectral order ``order``'s trace at ``pwcpos`` on the reference's own columns: (x, y,
    wavelength). ReferenceFileError when the position or the order is not in the reference."""
    _check_position(ref, pwcpos)
    return _trace_at(ref, _order_index(ref, order), pwcpos, subarray)


def wavelength_map(ref, pwcpos, order, subarray, iterations=5, tolerance=1e-2):
    """The wavelength of each pixel of the SOSS window (rows, columns) for one order, as jwst's
    ``get_soss_wavemaps`` draws it: the trace on the wavelength grid, each column's wavelength
    found by a few fixed-point steps, NaN beyond the grid, the map drawn in the reference's
    frame (``soss_xdim`` wide, its last ``soss_ydim`` rows), rows below ``subarray_ymin``
    repeating that row, then cut to the subarray (96 rows for SUBSTRIP96, up to ``soss_xdim``
    otherwise). The traces are not tilted, so a column has one wavelength in every row of the
    frame: the steps are taken on one row."""
    frame = ref.get("frame", {})
    if None in (frame.get("soss_xdim"), frame.get("soss_ydim"), frame.get("subarray_ymin")):
        raise ReferenceFileError("PASTASOSS: no soss_xdim, soss_ydim or subarray_ymin; the "
                                 "wavelength map cannot be drawn")
    width, height, ymin = frame["soss_xdim"], frame["soss_ydim"], frame["subarray_ymin"]
    x, _, wavelength = order_trace(ref, pwcpos, order, subarray)
    grid = ref["wave_grid"]
    xtrace = _on_grid(grid, wavelength, x)
    columns = np.arange(width, dtype=np.float64)
    shift = 0.0
    for _ in range(iterations):
        guess = np.interp(columns - shift, xtrace[::-1], grid[::-1])
        moved = np.interp(guess, grid, xtrace)
        shift = shift + (moved - columns)
        if np.all(np.abs(moved - columns) < tolerance):
            break
    row = np.interp(columns - shift, xtrace[::-1], grid[::-1], left=np.nan, right=np.nan)
    # the frame is square (width rows); only its last `height` rows are drawn
    stop = ymin + 96 if subarray == "SUBSTRIP96" else width
    drawn = np.arange(ymin, stop) >= width - height
    return np.where(drawn[:, np.newaxis], row[np.newaxis, :], np.nan)


def trace_pixels(traces, shape, halfwidth=HALFWIDTH):
    """bool (ny, nx): the pixels within ``halfwidth`` rows of a trace's centre, column by
    column (the trace interpolated over every column)."""
    ny, nx = shape
    rows = np.arange(ny)[:, np.newaxis]
    columns = np.arange(nx)
    covered = np.zeros(shape, dtype=bool)
    for xs, ys in traces:
        order = np.argsort(xs)
        centre = np.interp(columns, xs[order], ys[order])
        covered |= (rows >= np.floor(centre - halfwidth)) & (rows <= np.ceil(centre + halfwidth))
    return covered
