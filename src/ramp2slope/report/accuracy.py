"""Accuracy against the simulator's truth: slopes, cosmic-ray detection, saturation groups.

The truth file (``<root>_truth.fits``, see :mod:`ramp2slope.simulate.truth`) holds the injected
light rate, the first group at which each pixel reached the saturation threshold, and every
cosmic-ray hit. Each comparison gives a number, a plot and a check.
"""
from __future__ import annotations

import os

import numpy as np

from . import plots
from .checks import NotRun, fmt, percent
from .context import DNU, JUMP, SAT
from .steps import robust_std

#: Slopes: pixels collecting at least this many DN over the ramp count as bright.
BRIGHT_DN = 1000.0
#: Requirements (see docs/report.md for how they were chosen).
MAX_RELATIVE_BIAS = 0.01
Z_SIGMA_RANGE = (0.8, 1.25)
CR_SIGMA = 10.0
MIN_CR_COMPLETENESS = 0.95
MAX_FALSE_POSITIVE_RATE = 1e-3


def unit_gaussian_counts(n, bins):
    """(x, y): the counts per histogram bin expected of ``n`` values drawn from a unit Gaussian,
    as a smooth curve to draw over a histogram with the (equal-width) ``bins``."""
    x = np.linspace(bins[0], bins[-1], 4 * (len(bins) - 1) + 1)
    width = bins[1] - bins[0]
    return x, n * width * np.exp(-0.5 * x ** 2) / np.sqrt(2 * np.pi)


def load_checked_truth(ctx):
    """The truth for this exposure (cached), or NotRun saying why it cannot be used."""
    if "truth" in ctx._cache:
        return ctx._cache["truth"]
    if ctx.truth_path is None:
        raise NotRun("no truth file was given (--truth), and none was found next to the raw exposure")
    from ..simulate.truth import load_truth

    try:
        truth = load_truth(ctx.truth_path)
    except Exception as exc:
        raise NotRun(f"the truth file cannot be read: {str(exc).splitlines()[0]}") from None
    if ctx.superstripe and truth.satgroup.shape[0] == ctx.nints * ctx.superstripe:
        truth = _collated_truth(ctx, truth)
    if truth.rate.shape != (ctx.ny, ctx.nx):
        raise NotRun(f"the truth is {truth.rate.shape[0]}x{truth.rate.shape[1]} but the exposure is "
                     f"{ctx.ny}x{ctx.nx}")
    for key, value in (("xstart", ctx.xstart), ("ystart", ctx.ystart)):
        if key in truth.params and int(truth.params[key]) != value:
            raise NotRun(f"the truth's {key} ({truth.params[key]}) differs from the exposure's ({value})")
    if truth.satgroup.shape[0] != ctx.nints:
        raise NotRun(f"the truth has {truth.satgroup.shape[0]} integrations, the exposure {ctx.nints}")
    ctx._cache["truth"] = truth
    return truth


def _collated_truth(ctx, truth):
    """The truth of a superstripe exposure's window (one integration per stripe integration)
    as the collated ramp sees it: integration ``p`` of the collated ramp holds, on the rows of
    stripe ``s``, integration ``p * nstripe + s`` of the window. The saturation groups and the
    cosmic-ray hits are taken from there (hits elsewhere were never read); the rate is the
    window's."""
    import dataclasses

    from ..references.stripes import collate_superstripes

    layout = ctx.stripe_layout()
    if layout is None:
        raise NotRun("the stripe layout (SSTR_*/MSTR_* keywords) is in none of the products")
    nstripe = layout.num_superstripe
    # which stripe's rows each pixel of the collated frame shows (NaN: no stripe reads it)
    index = np.broadcast_to(np.arange(nstripe, dtype=np.float32)[:, None, None, None],
                            (nstripe, 1, layout.ysize, layout.xsize))
    collated = collate_superstripes(layout, np.ascontiguousarray(index))[0]
    if collated.shape[1] != 1:
        raise NotRun("the stripes repeat within a frame: the truth's groups are not the "
                     "collated ramp's")
    owner = collated[0, 0]
    if owner.shape != truth.rate.shape:
        raise NotRun(f"the truth is {truth.rate.shape[0]}x{truth.rate.shape[1]} but the stripes "
                     f"collate into {owner.shape[0]}x{owner.shape[1]}")
    nints = truth.satgroup.shape[0] // nstripe
    satgroup = np.full((nints,) + owner.shape, -1, np.int16)
    for p in range(nints):
        for s in range(nstripe):
            rows = owner == s
            satgroup[p][rows] = truth.satgroup[p * nstripe + s][rows]
    crs = truth.cosmic_rays
    if len(crs):
        ints = np.asarray(crs["integration"], dtype=int)
        shown = owner[np.asarray(crs["y"], dtype=int), np.asarray(crs["x"], dtype=int)]
        keep = shown == (ints % nstripe)
        crs = crs[keep].copy()
        crs["integration"] = ints[keep] // nstripe
    return dataclasses.replace(truth, satgroup=satgroup, cosmic_rays=crs)


def noise_per_difference(ctx):
    """Read noise (DN) of a difference of two groups: median CDS noise / sqrt(NFRAMES)."""
    try:
        readnoise = ctx.reference("readnoise").data
        value = float(np.nanmedian(readnoise[ctx.science_mask()]))
        return value / np.sqrt(ctx.nframes), "READNOISE reference"
    except NotRun:
        jump = ctx.require("jump")
        y0 = max(0, ctx.ny // 2 - 32)
        band = slice(y0, min(ctx.ny, y0 + 64))
        data = jump.read("SCI", (0, slice(None), band)).astype(np.float64)
        gdq = jump.read("GROUPDQ", (0, slice(None), band))
        clean = np.all(gdq == 0, axis=0) & ctx.science_mask()[band]
        if ctx.ngroups < 3 or not clean.any():
            raise NotRun("no READNOISE reference and no clean pixels to estimate the noise from")
        d2 = (data[2:] - 2 * data[1:-1] + data[:-2])[:, clean]
        return robust_std(d2) * np.sqrt(2.0 / 6.0), "second differences of the data"


def wilson_upper(successes, trials, z=1.96):
    """Upper end of the Wilson score interval of a binomial fraction (95% for z=1.96)."""
    if trials <= 0:
        return 1.0
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return float(min(1.0, (centre + spread) / (1 + z * z / trials)))


def _binned(x, y, edges):
    centres, med, low, high = [], [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (x >= lo) & (x < hi)
        if sel.sum() >= 10:
            centres.append(np.sqrt(lo * hi))
            q = np.percentile(y[sel], [16, 50, 84])
            low.append(q[0])
            med.append(q[1])
            high.append(q[2])
    return np.array(centres), np.array(med), np.array(low), np.array(high)


def _slope_accuracy(ctx, sec):
    truth = load_checked_truth(ctx)
    rate = ctx.require("rate")
    data = rate.plane("SCI").astype(np.float64)
    err = rate.plane("ERR").astype(np.float64)
    dq = rate.plane("DQ").astype(np.uint32)
    true = truth.rate.astype(np.float64)
    good = (ctx.science_mask() & np.isfinite(data) & (err > 0) & (truth.badpix == 0)
            & ((dq & np.uint32(DNU)) == 0) & (true > 0))
    if good.sum() < 20:
        raise NotRun("fewer than 20 usable pixels with a positive injected rate")
    z = (data[good] - true[good]) / err[good]
    t = true[good]
    signal = t * ctx.tgroup * (ctx.ngroups - 1)
    bright = signal >= BRIGHT_DN
    rel = (data[good][bright] - t[bright]) / t[bright]
    result = dict(n=int(good.sum()), z_median=float(np.median(z)), z_sigma=robust_std(z),
                  n_bright=int(bright.sum()),
                  rel_bias=float(np.median(rel)) if bright.any() else None,
                  rel_scatter=robust_std(rel) if bright.any() else None)
    edges = np.logspace(np.log10(max(t.min(), 1e-3)), np.log10(t.max() * 1.0001), 16)
    sec.figure(plots.scatter_binned(t, np.clip(z, -10, 10), "Injected rate (DN/s)",
                                    "(rate - truth) / ERR", title="Slope residuals in units of ERR",
                                    bands=(-1, 0, 1), ylim=(-10.5, 10.5),
                                    binned=_binned(t, z, edges)),
               f"Normalised slope residuals against the injected rate for {fmt(result['n'])} "
               f"unflagged science pixels (clipped at +/-10): a correct ERR gives a band of unit "
               f"width about 0 at every signal level.")
    inside = z[np.abs(z) <= 6]
    bins = np.linspace(-6, 6, 61)
    sec.figure(plots.histogram(inside, bins=bins, xlabel="(rate - truth) / ERR",
                               reference=unit_gaussian_counts(inside.size, bins) + ("unit Gaussian",),
                               title="Distribution of the normalised residuals"),
               "Histogram of the normalised residuals with a unit Gaussian of the same area.")
    if bright.sum() >= 10:
        sig = signal[bright]
        edges = np.logspace(np.log10(sig.min()), np.log10(sig.max() * 1.0001), 12)
        sec.figure(plots.scatter_binned(sig, 100 * rel, "Signal collected over the ramp (DN)",
                                        "(rate - truth) / truth (%)",
                                        title="Relative slope error of bright pixels", bands=(0,),
                                        binned=_binned(sig, 100 * rel, edges)),
                   f"Relative slope error of the {fmt(int(bright.sum()))} pixels collecting at least "
                   f"{fmt(BRIGHT_DN)} DN.")
    return result


#: Connected JUMP_DET regions of at least this many pixels in one group are extended events.
LARGE_EVENT_PIXELS = 100


def _large_regions(flags):
    """The pixels of ``flags`` in 8-connected regions of LARGE_EVENT_PIXELS or more."""
    if np.count_nonzero(flags) < LARGE_EVENT_PIXELS:
        return np.zeros(flags.shape, bool)
    from scipy import ndimage

    labels, count = ndimage.label(flags, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    return sizes[labels] >= LARGE_EVENT_PIXELS


def _cosmic_rays(ctx, sec):
    truth = load_checked_truth(ctx)
    jump = ctx.require("jump")
    crs = truth.cosmic_rays
    if len(crs) == 0:
        raise NotRun("the truth has no cosmic-ray hits")
    sigma, source = noise_per_difference(ctx)
    pixeldq = ctx.pixeldq()
    usable_pixel = ctx.science_mask() & ((pixeldq & np.uint32(DNU)) == 0)
    ints = np.asarray(crs["integration"], dtype=int)
    grp = np.asarray(crs["group"], dtype=int)
    ys = np.asarray(crs["y"], dtype=int)
    xs = np.asarray(crs["x"], dtype=int)
    amp = np.asarray(crs["amplitude"], dtype=np.float64)
    detectable = np.zeros(len(crs), bool)
    detected = np.zeros(len(crs), bool)
    fp, flagged_total, tested = 0, 0, 0
    per_group_true = np.zeros(ctx.ngroups, np.int64)
    per_group_false = np.zeros(ctx.ngroups, np.int64)
    for i in range(ctx.nints):
        mine = np.where(ints == i)[0]
        gdq = np.empty((ctx.ngroups, mine.size), np.uint8)
        prev = None
        for g in range(ctx.ngroups):
            plane = jump.plane("GROUPDQ", i, g)
            gdq[g] = plane[ys[mine], xs[mine]]
            # false positives: JUMP flags with no injected hit in this group (or the one before,
            # when frames are averaged) at the pixel or one of its 4 neighbours
            flags = ((plane & JUMP) != 0) & ctx.science_mask()
            # extended events (NIR snowballs, MIRI showers) are flagged as wholes: not false
            # positives of the point-hit test
            flags &= ~_large_regions(flags)
            near = np.zeros((ctx.ny, ctx.nx), bool)
            hits = mine[(grp[mine] == g) | ((ctx.nframes > 1) & (grp[mine] == g - 1))]
            near[ys[hits], xs[hits]] = True
            cross = near.copy()
            cross[1:] |= near[:-1]
            cross[:-1] |= near[1:]
            cross[:, 1:] |= near[:, :-1]
            cross[:, :-1] |= near[:, 1:]
            false = int((flags & ~cross).sum())
            flagged_total += int(flags.sum())
            fp += false
            per_group_false[g] += false
            per_group_true[g] += int(flags.sum()) - false
            if prev is not None:
                bad = ((plane | prev) & (SAT | DNU)) != 0
                tested += int((usable_pixel & ~bad).sum())
            prev = plane
        g = grp[mine]
        ok_group = (g >= 1) & (g < ctx.ngroups)
        gi = np.clip(g, 1, ctx.ngroups - 1)
        cols = np.arange(mine.size)
        clean = ((gdq[gi, cols] | gdq[gi - 1, cols]) & (SAT | DNU)) == 0
        detectable[mine] = ok_group & clean & usable_pixel[ys[mine], xs[mine]]
        hit = (gdq[gi, cols] & JUMP) != 0
        if ctx.nframes > 1:
            nxt = np.clip(g + 1, 0, ctx.ngroups - 1)
            hit |= ((gdq[nxt, cols] & JUMP) != 0) & (g + 1 < ctx.ngroups)
        detected[mine] = hit & ok_group
    strong = detectable & (amp >= CR_SIGMA * sigma)
    result = dict(n_hits=len(crs), n_detectable=int(detectable.sum()),
                  n_detected=int((detected & detectable).sum()), n_strong=int(strong.sum()),
                  strong_detected=int((detected & strong).sum()), sigma=sigma, sigma_source=source,
                  fp=fp, flagged=flagged_total, tested=tested)
    a = amp[detectable]
    if a.size:
        # (the first edge a little below the weakest hit, which the rounding of logspace
        # could otherwise leave outside every bin)
        edges = np.logspace(np.log10(max(a.min(), 0.1) * 0.999), np.log10(a.max() * 1.0001), 14)
        centres, fractions, counts = [], [], []
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = detectable & (amp >= lo) & (amp < hi)
            if sel.sum():
                centres.append(np.sqrt(lo * hi))
                fractions.append(float(detected[sel].mean()))
                counts.append(int(sel.sum()))
        sec.figure(plots.fraction_plot(centres, fractions, counts, "Injected cosmic-ray amplitude (DN)",
                                       "Fraction flagged JUMP_DET",
                                       title="Cosmic-ray completeness", target=MIN_CR_COMPLETENESS),
                   f"Fraction of the detectable injected hits (group 1 or later, neither group "
                   f"saturated or DO_NOT_USE) flagged as jumps, against their amplitude; the number "
                   f"of hits in each bin is written above its point. The read noise of a group "
                   f"difference is {fmt(sigma, 3)} DN ({source}).")
    if flagged_total:
        sec.figure(plots.stacked_bars(np.arange(ctx.ngroups),
                                      [(per_group_true, "at an injected hit (or a 4-neighbour)",
                                        "tab:blue"),
                                       (per_group_false, "no injected hit: false positive", "tab:red")],
                                      "Group", "JUMP_DET flags", title="Jump flags by group"),
                   f"JUMP_DET flags of every integration by group: {fmt(fp)} of "
                   f"{fmt(flagged_total)} have no injected hit in that group at the pixel or a "
                   f"4-neighbour, {fp / max(tested, 1):.2e} per tested group difference.")
    return result


def _saturation_groups(ctx, sec):
    truth = load_checked_truth(ctx)
    # a superstripe exposure's saturation product holds stripes: its flags are read after the
    # collation (refpix does not change them)
    flagged = ctx.flag_summary("refpix" if ctx.superstripe else "saturation")["first_sat"]
    flagged = flagged.astype(np.int32)
    expected = truth.satgroup.astype(np.int32)
    big = np.int32(1 << 20)
    counts = dict(truth_sat=0, exact=0, late=0, early_grown=0, unexplained=0, spurious_grown=0)
    differences = []
    for i in range(ctx.nints):
        t = expected[i]
        f = flagged[i]
        ts = t >= 0
        # earliest truth saturation among the pixel and its 8 neighbours (growth by one pixel)
        tt = np.where(ts, t, big)
        nbr = tt.copy()
        nbr[1:] = np.minimum(nbr[1:], tt[:-1])
        nbr[:-1] = np.minimum(nbr[:-1], tt[1:])
        rows = nbr.copy()
        nbr[:, 1:] = np.minimum(nbr[:, 1:], rows[:, :-1])
        nbr[:, :-1] = np.minimum(nbr[:, :-1], rows[:, 1:])
        fs = f >= 0
        counts["truth_sat"] += int(ts.sum())
        counts["exact"] += int((ts & fs & (f == t)).sum())
        counts["late"] += int((ts & (~fs | (f > t))).sum())
        early = fs & (~ts | (f < t))
        grown = early & (nbr <= f)
        counts["early_grown"] += int((grown & ts).sum())
        counts["spurious_grown"] += int((grown & ~ts).sum())
        counts["unexplained"] += int((early & ~grown).sum())
        differences.append(np.where(fs, f, ctx.ngroups)[ts] - t[ts])
    if counts["truth_sat"] == 0:
        raise NotRun("no pixel reaches the saturation threshold in the truth")
    diff = np.concatenate(differences)
    sec.figure(plots.histogram(diff, bins=np.arange(-ctx.ngroups - 0.5, ctx.ngroups + 1.5),
                               xlabel="first SATURATED group - true saturation group",
                               title="Saturation-group accuracy", log=True),
               f"For the {fmt(counts['truth_sat'])} pixel-integrations that reach the threshold in "
               f"the truth: the first flagged group minus the true one (never flagged counts as "
               f"{ctx.ngroups} - truth). Negative values are earlier flags from a saturating "
               f"neighbour (n_pix_grow_sat=1).")
    return counts


def section_accuracy(ctx, sec):
    if ctx.truth_path is None:
        sec.para("No truth file was given, so the accuracy against the injected signal cannot be "
                 "measured. Simulated exposures (ramp2slope simulate, ramp2slope demo) write "
                 "<root>_truth.fits; pass it with --truth.")
    else:
        sec.para(f"Injected truth: {os.path.basename(ctx.truth_path)}.")
    store = {}

    def guarded(name, function):
        try:
            store[name] = function(ctx, sec)
        except NotRun as why:
            store[name] = why
        except Exception as exc:  # reported in the section; the checks fail
            sec.error(f"{name} could not be measured: {exc}")
            store[name] = exc

    for name, function in (("slopes", _slope_accuracy), ("crs", _cosmic_rays),
                           ("sat", _saturation_groups)):
        guarded(name, function)

    def result(name):
        value = store.get(name)
        if isinstance(value, NotRun):
            raise value
        if isinstance(value, Exception):
            raise RuntimeError(str(value))
        return value

    def bias():
        r = result("slopes")
        if r["n_bright"] < 20:
            raise NotRun(f"only {r['n_bright']} pixels collect {fmt(BRIGHT_DN)} DN or more")
        return abs(r["rel_bias"]) <= MAX_RELATIVE_BIAS, (
            f"median (rate - truth)/truth = {100 * r['rel_bias']:+.3f}% over {fmt(r['n_bright'])} "
            f"bright pixels (robust scatter {100 * r['rel_scatter']:.2f}%)")
    sec.check("Slope bias", f"|median relative error| <= {100 * MAX_RELATIVE_BIAS:g}% for pixels "
              f"collecting >= {fmt(BRIGHT_DN)} DN over the ramp", bias)

    def errors():
        r = result("slopes")
        low, high = Z_SIGMA_RANGE
        ok = low <= r["z_sigma"] <= high
        return ok, (f"(rate - truth)/ERR over {fmt(r['n'])} pixels: robust sigma {r['z_sigma']:.3f}, "
                    f"median {r['z_median']:+.3f} (the median moves with the 1/f noise common to "
                    f"all pixels and is not part of the requirement)")
    sec.check("ERR describes the slope scatter", f"robust sigma of (rate - truth)/ERR within "
              f"{Z_SIGMA_RANGE[0]}-{Z_SIGMA_RANGE[1]}", errors)

    def completeness():
        r = result("crs")
        if r["n_strong"] == 0:
            raise NotRun(f"no detectable hit above {fmt(CR_SIGMA)} x {fmt(r['sigma'], 3)} DN")
        upper = wilson_upper(r["strong_detected"], r["n_strong"])
        return upper >= MIN_CR_COMPLETENESS, (
            f"95% upper bound {100 * upper:.1f}%: "
            f"{fmt(r['strong_detected'])} of {fmt(r['n_strong'])} hits above {fmt(CR_SIGMA)} sigma "
            f"({fmt(CR_SIGMA * r['sigma'], 3)} DN) flagged = {percent(r['strong_detected'], r['n_strong'])}; "
            f"all detectable hits: {fmt(r['n_detected'])} of {fmt(r['n_detectable'])} "
            f"({percent(r['n_detected'], r['n_detectable'])}); {fmt(r['n_hits'])} hits injected")
    sec.check("Cosmic-ray completeness", f"the fraction of detectable hits brighter than "
              f"{fmt(CR_SIGMA)} x the group-difference read noise flagged JUMP_DET is consistent with "
              f">= {100 * MIN_CR_COMPLETENESS:g}% (95% Wilson upper bound, so that a few hits do not "
              f"decide)", completeness)

    def false_positives():
        r = result("crs")
        if r["tested"] == 0:
            raise NotRun("no group difference could be tested")
        rate = r["fp"] / r["tested"]
        return rate <= MAX_FALSE_POSITIVE_RATE, (
            f"{fmt(r['fp'])} of {fmt(r['flagged'])} JUMP_DET flags have no injected hit at the pixel "
            f"or a 4-neighbour: {rate:.2e} per tested group difference ({fmt(r['tested'])} tested)")
    sec.check("Jump false-positive rate", f"<= {MAX_FALSE_POSITIVE_RATE:g} false JUMP_DET flags per "
              f"group difference", false_positives)

    def saturation():
        c = result("sat")
        return c["late"] == 0 and c["unexplained"] == 0, (
            f"{fmt(c['exact'])} of {fmt(c['truth_sat'])} saturating pixel-integrations flagged from "
            f"exactly the true group ({percent(c['exact'], c['truth_sat'])}), "
            f"{fmt(c['early_grown'])} earlier because a neighbour saturated; {fmt(c['late'])} late "
            f"or never, {fmt(c['unexplained'])} early without a saturating neighbour "
            f"({fmt(c['spurious_grown'])} unsaturated pixels flagged by growth)")
    sec.check("Saturation-group accuracy", "the first SATURATED group equals the true one, or is "
              "earlier only because a neighbour saturated then", saturation)


