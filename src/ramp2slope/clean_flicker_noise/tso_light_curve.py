"""The light curve that scales the median image (``background_method='median_image'``) of an
imaging time series: NRC_TSIMAGE, and MIR_IMAGE when it is a time series.

There the official step does not take each integration's median rate: it runs the stage-2
``tso_photometry`` step on the draft rateints and scales the median by the aperture sums. The
same measurement is made here, with the same photutils calls:

1. the rates in electrons per integration: DN/s x EFFINTTM x GAIN, in float32;
2. the source centroided in two passes, each on the image minus the median of the pixels
   farther than ``radius_inner`` from the guess: a ``search_box_width`` box at the planned
   position (XREF_SCI, YREF_SCI, 1-based), then a ``fit_box_width`` box at the median of the
   first centroids; the median of the second centroids is the position (or each
   integration's own with ``moving_centroid``), the planned one when no centroid was found;
3. the flux summed in a circular aperture of ``radius`` pixels (exact overlap, non-finite
   pixels left out); on SUB64P with the WLP8 pupil, the sum of the whole image.

Only the sums are used, so the official catalog's Gaussian PSF fit, background annulus and
times are not computed (its annulus radii are checked as photutils checks them; an input
without an INT_TIMES table, which the official step refuses, is measured all the same). The parameters are those of ``TSOPhotometryStep``, from its CRDS
parameter file (``pars-tsophotometrystep``) when the context has one for the exposure.
"""
import logging
import warnings
from dataclasses import dataclass, fields

import numpy as np

__all__ = ["PhotometryParameters", "to_electrons", "source_position", "aperture_sums",
           "light_curve"]

log = logging.getLogger("ramp2slope")


@dataclass
class PhotometryParameters:
    """``TSOPhotometryStep``'s parameters (jwst 3.0.0 defaults) that the sums depend on."""
    radius: float = 3.0
    radius_inner: float = 4.0
    radius_outer: float = 5.0
    centroid_source: bool = True
    search_box_width: int = 41
    fit_box_width: int = 11
    moving_centroid: bool = False

    @classmethod
    def from_mapping(cls, values):
        """The parameters given in ``values`` (a parameter file's), defaults for the others;
        even box widths lowered to the odd width below, as the official step does."""
        known = {f.name: f.type for f in fields(cls)}
        chosen = {name: known[name](value) for name, value in (values or {}).items()
                  if name in known and value is not None}
        params = cls(**chosen)
        for name in ("search_box_width", "fit_box_width"):
            width = getattr(params, name)
            if width % 2 == 0:
                log.warning("tso photometry: even box widths are not supported; %s %d taken as %d",
                            name, width, width - 1)
                setattr(params, name, width - 1)
        return params


def to_electrons(rates, gain, integration_time):
    """DN/s rates (nints, ny, nx) as electrons per integration, float32 as officially."""
    factor = float(integration_time) * np.asarray(gain, dtype=np.float32)
    return np.asarray(rates, dtype=np.float32) * factor


def _centroids(images, bad, x0, y0, box, source_radius):
    """One centroiding pass: each image minus its background, photutils' centre of mass in a
    ``box`` around (x0, y0); NaN where none was found or it fell off the image."""
    from photutils.centroids import centroid_sources

    nimg, ny, nx = images.shape
    yy, xx = np.mgrid[:ny, :nx]
    background_pixels = ~(((xx - x0) ** 2 + (yy - y0) ** 2) < source_radius ** 2)
    xs = np.full(nimg, np.nan)
    ys = np.full(nimg, np.nan)
    for i in range(nimg):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)    # an all-NaN background
            level = np.nanmedian(images[i][background_pixels])
        try:
            x, y = centroid_sources(images[i] - level, x0, y0, mask=bad[i], box_size=box)
        except ValueError as exc:
            log.debug("tso photometry: no centroid in integration %d (%s)", i + 1, exc)
            continue
        if 0 <= x[0] < nx and 0 <= y[0] < ny:
            xs[i], ys[i] = x[0], y[0]
    return xs, ys


def source_position(images, bad, x_planned, y_planned, params):
    """Where the aperture goes, zero-based: (x, y) as floats, or per-integration arrays with
    ``moving_centroid``. ``bad`` (bool, like ``images``) marks the pixels the centroids skip."""
    if not params.centroid_source:
        return x_planned, y_planned
    xs, ys = _centroids(images, bad, x_planned, y_planned, params.search_box_width,
                        params.radius_inner)
    if np.isfinite(xs).any() and np.isfinite(ys).any():
        xs, ys = _centroids(images, bad, np.nanmedian(xs), np.nanmedian(ys),
                            params.fit_box_width, params.radius_inner)
    if np.isnan(xs).all() or np.isnan(ys).all():
        log.warning("tso photometry: the source could not be centroided; the aperture is at the "
                    "planned position x,y = %.2f,%.2f", x_planned, y_planned)
        return x_planned, y_planned
    if params.moving_centroid:
        return xs, ys
    return np.nanmedian(xs), np.nanmedian(ys)


def aperture_sums(images, x, y, radius, whole_image=False):
    """Each image's sum in a circle of ``radius`` at (x, y) (scalars or one per image), as
    photutils' ApertureStats gives it; with ``whole_image``, the NaN-ignoring sum of it all."""
    from photutils.aperture import ApertureStats, CircularAperture

    nimg = images.shape[0]
    if whole_image:
        return np.array([np.nansum(images[i]) for i in range(nimg)])
    xs = np.full(nimg, x) if np.isscalar(x) else x
    ys = np.full(nimg, y) if np.isscalar(y) else y
    return np.array([ApertureStats(images[i], CircularAperture((xs[i], ys[i]), r=radius)).sum
                     for i in range(nimg)])


def light_curve(rates, dq, gain, integration_time, x_ref_sci, y_ref_sci, params,
                whole_image=False):
    """The aperture sums of the draft rateints ``rates`` (DN/s) with its ``dq``, one per
    integration. ``x_ref_sci``/``y_ref_sci``: the planned source position, 1-based.
    Raises ValueError where the official photometry cannot be made (the step then leaves the
    exposure as it is)."""
    if x_ref_sci is None:
        raise ValueError("XREF_SCI is missing")
    if y_ref_sci is None:
        raise ValueError("YREF_SCI is missing")
    images = to_electrons(rates, gain, integration_time)
    x0, y0 = float(x_ref_sci) - 1, float(y_ref_sci) - 1
    if whole_image:
        return aperture_sums(images, x0, y0, params.radius, whole_image=True)
    _check_annulus(params)
    bad = ((np.asarray(dq) & 1) != 0) | np.isnan(images)
    x, y = source_position(images, bad, x0, y0, params)
    log.info("tso photometry: aperture of radius %g at x,y = %s,%s", params.radius,
             _position_text(x), _position_text(y))
    return aperture_sums(images, x, y, params.radius)


def _check_annulus(params):
    """The official photometry also measures a background annulus, whose radii photutils
    checks: the same ValueError here where they cannot make one."""
    from photutils.aperture import CircularAnnulus

    CircularAnnulus((0.0, 0.0), r_in=params.radius_inner, r_out=params.radius_outer)


def _position_text(value):
    if np.isscalar(value):
        return f"{value:.2f}"
    return f"{np.nanmedian(value):.2f} (median of the moving centroid)"
