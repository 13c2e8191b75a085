"""Figures for the report, drawn with matplotlib's object API on the Agg canvas.

No pyplot state is used, so writing a report never opens a window and never depends on the
user's backend. Images are shown as the validation notebook does (``ImageNormalize`` with a
``ManualInterval`` and a ``LogStretch``, origin at the bottom left, a colour bar), after
block-averaging to at most ``MAX_DISPLAY`` pixels per axis; the axes keep the true pixel
coordinates.
"""
from __future__ import annotations

import base64
import io
import warnings

import numpy as np
from astropy.visualization import ImageNormalize, LinearStretch, LogStretch, ManualInterval
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Largest number of displayed pixels along one axis of an image.
MAX_DISPLAY = 512
DPI = 80
CMAP = "viridis"


def new_figure(width=6.4, height=5.2):
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def to_data_uri(fig):
    """The figure as an embedded ``data:image/png;base64,...`` URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    fig.clf()
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def downsample(image, max_size=MAX_DISPLAY, how="mean"):
    """Block-reduce a 2-D image to at most ``max_size`` pixels per axis.

    ``how='mean'`` averages the finite values of each block (NaN if none); ``how='max'`` keeps
    the largest value (used for flag maps, so that an isolated flagged pixel stays visible).
    Returns (image, factor); the image is padded with NaN (or 0) to a multiple of the factor.
    """
    image = np.asarray(image)
    ny, nx = image.shape
    factor = int(np.ceil(max(ny, nx) / max_size))
    if factor <= 1:
        return image, 1
    py, px = (-ny) % factor, (-nx) % factor
    if how == "max":
        work = image
        if py or px:
            work = np.pad(image, ((0, py), (0, px)), constant_values=0)
        blocks = work.reshape(work.shape[0] // factor, factor, work.shape[1] // factor, factor)
        return blocks.max(axis=(1, 3)), factor
    work = image.astype(np.float32, copy=False)
    if py or px:
        work = np.pad(work, ((0, py), (0, px)), constant_values=np.nan)
    blocks = work.reshape(work.shape[0] // factor, factor, work.shape[1] // factor, factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(blocks, axis=(1, 3)), factor


def auto_limits(image, low=1.0, high=99.5, positive=False):
    """Display limits from percentiles of the finite values (vmin < vmax always)."""
    values = np.asarray(image, dtype=np.float64)
    values = values[np.isfinite(values)]
    if positive:
        values = values[values > 0]
    if values.size == 0:
        return (1e-3, 1.0) if positive else (0.0, 1.0)
    vmin, vmax = np.percentile(values, [low, high])
    if positive:
        vmin = max(vmin, 1e-3 * max(vmax, 1e-3))
    if not vmax > vmin:
        vmax = vmin + max(abs(vmin) * 1e-3, 1.0)
    return float(vmin), float(vmax)


def log_norm(vmin, vmax):
    """The notebook's normalisation: a manual interval with a logarithmic stretch."""
    return ImageNormalize(interval=ManualInterval(vmin=vmin, vmax=vmax), stretch=LogStretch(),
                          clip=True)


def linear_norm(vmin, vmax):
    return ImageNormalize(interval=ManualInterval(vmin=vmin, vmax=vmax), stretch=LinearStretch(),
                          clip=True)


def _draw_image(ax, image, norm, origin=(0, 0), how="mean"):
    ny, nx = image.shape
    small, factor = downsample(image, how=how)
    x0, y0 = origin
    extent = (x0 - 0.5, x0 - 0.5 + small.shape[1] * factor, y0 - 0.5, y0 - 0.5 + small.shape[0] * factor)
    im = ax.imshow(small, origin="lower", norm=norm, cmap=CMAP, extent=extent,
                   interpolation="nearest", aspect="equal")
    ax.set_xlim(x0 - 0.5, x0 - 0.5 + nx)
    ax.set_ylim(y0 - 0.5, y0 - 0.5 + ny)
    ax.set_xlabel("Pixel column")
    ax.set_ylabel("Pixel row")
    return im, factor


def _colorbar(fig, im, **kwargs):
    """A colour bar whose ticks are spread evenly along the bar.

    Matplotlib places ticks evenly in data values; under a logarithmic stretch those crowd
    into the top of the bar and their labels overlap. Ticks at evenly spaced stretched
    positions, rounded to two significant figures, stay apart at any stretch.
    """
    cbar = fig.colorbar(im, **kwargs)
    norm = im.norm
    if hasattr(norm, "inverse"):
        values = np.atleast_1d(norm.inverse(np.linspace(0.0, 1.0, 6))).astype(float)
        ticks = np.unique([float(f"{v:.2g}") for v in values if np.isfinite(v)])
        ticks = ticks[(ticks >= norm.vmin) & (ticks <= norm.vmax)] if norm.vmin is not None else ticks
        if ticks.size >= 2:
            cbar.set_ticks(ticks)
            cbar.set_ticklabels([f"{t:g}" for t in ticks])
    return cbar


def _note_factor(ax, factor):
    if factor > 1:
        ax.text(0.01, 0.01, f"shown block-averaged {factor}x{factor}", transform=ax.transAxes,
                fontsize=7, color="white", va="bottom",
                bbox=dict(facecolor="black", alpha=0.4, pad=1, edgecolor="none"))


def show_image(image, vmin, vmax, title=None, label="DN", xpixel=None, ypixel=None, origin=(0, 0),
               how="mean", stretch="log"):
    """One image with a colour bar, optionally marking one pixel with a red dot."""
    fig = new_figure(6.4, 5.4)
    ax = fig.add_subplot(1, 1, 1)
    norm = log_norm(vmin, vmax) if stretch == "log" else linear_norm(vmin, vmax)
    im, factor = _draw_image(ax, image, norm, origin, how)
    if xpixel is not None and ypixel is not None:
        ax.plot([xpixel], [ypixel], marker="o", color="red", markersize=6, linestyle="none",
                label="Selected pixel")
        ax.legend(loc="upper right", fontsize=8)
    _colorbar(fig, im, ax=ax, label=label)
    _note_factor(ax, factor)
    if title:
        ax.set_title(title)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.1, top=0.93)
    return to_data_uri(fig)


def side_by_side(image1, image2, limits1, limits2=None, title1=None, title2=None, title=None,
                 label="DN", origin=(0, 0), stretch="log"):
    """Two images; one shared colour bar when ``limits2`` is None, else one colour bar each."""
    fig = new_figure(11.0, 5.0)
    make = log_norm if stretch == "log" else linear_norm
    norm1 = make(*limits1)
    norm2 = norm1 if limits2 is None else make(*limits2)
    axes = fig.subplots(1, 2)
    im1, factor = _draw_image(axes[0], image1, norm1, origin)
    im2, _ = _draw_image(axes[1], image2, norm2, origin)
    axes[1].set_ylabel("")
    for ax, text in ((axes[0], title1), (axes[1], title2)):
        if text:
            ax.set_title(text)
        _note_factor(ax, factor)
    if limits2 is None:
        _colorbar(fig, im2, ax=list(axes), label=label, shrink=0.85)
    else:
        _colorbar(fig, im1, ax=axes[0], label=label, shrink=0.85)
        _colorbar(fig, im2, ax=axes[1], label=label, shrink=0.85)
    if title:
        fig.suptitle(title)
    return to_data_uri(fig)


def ramp_plot(groups, series, title=None, marks=None, ylabel="Signal (DN)", lines=None):
    """Signal up the ramp.

    series: [(values, label, colour)], drawn with markers and lines. marks: [(mask, values,
    label, colour)], drawn as larger open markers on the flagged groups only. lines: [(x, y,
    label, colour)] drawn as dashed lines (fitted models).
    """
    fig = new_figure(6.0, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    for values, label, colour in series:
        ax.plot(groups, values, marker="o", color=colour, label=label, markersize=4)
    for mask, values, label, colour in marks or ():
        mask = np.asarray(mask, bool)
        if mask.any():
            ax.plot(np.asarray(groups)[mask], np.asarray(values)[mask], marker="o", markersize=10,
                    markerfacecolor="none", markeredgewidth=2, linestyle="none", color=colour,
                    label=label)
    for x, y, label, colour in lines or ():
        ax.plot(x, y, linestyle="--", color=colour, label=label, linewidth=1.5)
    ax.set_xlabel("Group")
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.12, top=0.92)
    return to_data_uri(fig)


def ramp_grid(groups, panels, title=None):
    """A square grid of small ramp plots. panels: [(values, jump_mask, fit_lines, title)]."""
    n = len(panels)
    side = max(1, int(np.ceil(np.sqrt(n))))
    fig = new_figure(10.0, 9.0)
    axes = np.atleast_2d(fig.subplots(side, side, squeeze=False))
    for k in range(side * side):
        ax = axes[k // side, k % side]
        if k >= n:
            ax.axis("off")
            continue
        values, mask, fit_lines, panel_title = panels[k]
        mask = np.asarray(mask, bool)
        ax.plot(groups, values, marker="o", color="black", markersize=3)
        if mask.any():
            ax.plot(np.asarray(groups)[mask], np.asarray(values)[mask], marker="o", color="red",
                    linestyle="none", markersize=6, label="Flagged jump")
        for x, y in fit_lines or ():
            ax.plot(x, y, color="blue", linestyle="--", linewidth=1.2)
        ax.set_title(panel_title, fontsize=9)
        ax.tick_params(labelsize=7)
        if k // side == side - 1 or k + side >= n:
            ax.set_xlabel("Group", fontsize=8)
        if k % side == 0:
            ax.set_ylabel("Signal (DN)", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.06, top=0.95 if title else 0.97,
                        hspace=0.35, wspace=0.28)
    return to_data_uri(fig)


def histogram(values, bins, xlabel, title=None, ylabel="Pixels", log=False, reference=None,
              vlines=()):
    """A histogram; ``reference`` = (x, y, label) overplots a curve (e.g. a unit Gaussian)."""
    fig = new_figure(6.0, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    ax.hist(values, bins=bins, color="tab:blue", alpha=0.8, log=log)
    if reference is not None:
        x, y, label = reference
        ax.plot(x, y, color="tab:red", label=label)
        ax.legend(fontsize=8)
    for x in vlines:
        ax.axvline(x, color="black", linestyle=":", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.13, top=0.91)
    return to_data_uri(fig)


def scatter_binned(x, y, xlabel, ylabel, title=None, logx=True, bands=(), ylim=None, binned=None):
    """A scatter plot (at most 20 000 points shown) with binned medians and spreads.

    binned: (centres, median, low, high) drawn as a line with a shaded band.
    bands: horizontal reference lines.
    """
    fig = new_figure(6.4, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    x = np.asarray(x)
    y = np.asarray(y)
    if x.size > 20000:
        pick = np.random.default_rng(0).choice(x.size, 20000, replace=False)
        x, y = x[pick], y[pick]
    ax.scatter(x, y, s=2, alpha=0.35, color="tab:blue", rasterized=True, label="pixels")
    if binned is not None:
        centres, median, low, high = binned
        ax.plot(centres, median, color="tab:red", label="binned median")
        ax.fill_between(centres, low, high, color="tab:red", alpha=0.2, label="binned 16-84%")
    for value in bands:
        ax.axhline(value, color="black", linestyle=":", linewidth=1)
    if logx:
        ax.set_xscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    if title:
        ax.set_title(title)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.12, top=0.92)
    return to_data_uri(fig)


def fraction_plot(centres, fractions, counts, xlabel, ylabel, title=None, logx=True, target=None):
    """A fraction (0..1) against a binned quantity, with the number in each bin annotated."""
    fig = new_figure(6.4, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(centres, fractions, marker="o", color="tab:blue")
    for cx, fy, n in zip(centres, fractions, counts):
        ax.annotate(str(int(n)), (cx, fy), textcoords="offset points", xytext=(0, 6), fontsize=7,
                    ha="center")
    if target is not None:
        ax.axhline(target, color="black", linestyle=":", linewidth=1)
    if logx:
        ax.set_xscale("log")
    ax.set_ylim(-0.05, 1.1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.13, top=0.91)
    return to_data_uri(fig)


def stacked_bars(x, stacks, xlabel, ylabel, title=None, log=False):
    """Stacked bar chart. stacks: [(values, label, colour)], bottom first."""
    fig = new_figure(6.0, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    bottom = np.zeros(len(x), dtype=np.float64)
    for values, label, colour in stacks:
        values = np.asarray(values, dtype=np.float64)
        ax.bar(x, values, bottom=bottom, color=colour, label=label, log=log)
        bottom += values
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xticks(x)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.13, top=0.91)
    return to_data_uri(fig)


def profiles(panels, title=None):
    """Side-by-side line plots; panels: [(x, [(y, label, colour)], xlabel, ylabel)]."""
    fig = new_figure(11.0, 4.2)
    axes = fig.subplots(1, len(panels))
    for ax, (x, series, xlabel, ylabel) in zip(np.atleast_1d(axes), panels):
        for y, label, colour in series:
            ax.plot(x, y, color=colour, label=label, linewidth=0.9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.88, wspace=0.25)
    return to_data_uri(fig)
