"""The report's sections, one per pipeline step, in the order of the validation notebook.

Each builder fills a :class:`~ramp2slope.report.document.Section` with what the notebook shows
(images, ramps of example pixels, counts) and ends it with automatic checks. Example pixels are
chosen as the notebook chooses them (its fixed indexes, taken modulo the number of candidates,
since a small exposure has fewer candidates than the notebook's full-frame one).
"""
from __future__ import annotations

import os

import numpy as np

from ..datamodels import dqflags
from . import plots
from .checks import NotRun, fmt, percent
from .context import DNU, JUMP, REFPIX, SAT, detector_columns, pick_indexes, wrap_index

PERSISTENCE = dqflags.group["PERSISTENCE"]
NO_SAT_CHECK = dqflags.pixel["NO_SAT_CHECK"]
NO_LIN_CORR = dqflags.pixel["NO_LIN_CORR"]

#: Step status keywords, in pipeline order: (step, keyword, must be COMPLETE for NIRCam imaging)
STEP_STATUS = (
    ("group_scale", "S_GRPSCL", False), ("dq_init", "S_DQINIT", True),
    ("saturation", "S_SATURA", True), ("ipc", "S_IPC", False), ("superbias", "S_SUPERB", True),
    ("refpix", "S_REFPIX", True), ("linearity", "S_LINEAR", True),
    ("dark_current", "S_DARK", True), ("charge_migration", "S_CHGMIG", False),
    ("jump", "S_JUMP", True), ("picture_frame", "S_PCTFRM", False),
    ("clean_flicker_noise", "S_CLNFNS", False), ("persistence", "S_PERSIS", False),
    ("ramp_fit", "S_RAMP", True), ("gain_scale", "S_GANSCL", False),
)

# The notebook's example indexes (see its saturation, jump, linearity and ramp-fit cells).
SAT_INDEX = 123
JUMP_INDEX = 10112
JUMP_GRID = (200, 401, 600, 30010, 31000, 1202, 1400, 21600, 10112)
LIN_INDEX = 3
ZERO_INDEX = 45
REFPIX_GROUP = 5


def flag_names(value, table=None):
    names = dqflags.interpret_bit_flags(int(value), table)
    return "+".join(names) if names else "GOOD"


def _missing(sec, ctx, suffix, what):
    sec.para(f"{ctx.products.rootname}_{suffix}.fits was not saved, so {what} cannot be shown. "
             f"Run the pipeline with every step's product saved (ramp2slope run --save-steps).")


def _planes(ctx):
    for i in range(ctx.nints):
        for g in range(ctx.ngroups):
            yield i, g


def _same(a, b):
    """Pixels where two float arrays differ (NaN equals NaN)."""
    return (a == b) | (np.isnan(a) & np.isnan(b))


def compare_sci(ctx, first, second, ext_first="SCI", ext_second="SCI", planes_of=None):
    """(differing values, largest |difference|, planes compared) between two ramp products, over
    the exposure's (integration, group) planes or those ``planes_of`` yields."""
    ndiff, largest, planes = 0, 0.0, 0
    for i, g in (planes_of if planes_of is not None else _planes(ctx)):
        a = first.plane(ext_first, i, g).astype(np.float32)
        b = second.plane(ext_second, i, g).astype(np.float32)
        bad = ~_same(a, b)
        count = int(bad.sum())
        if count:
            ndiff += count
            with np.errstate(invalid="ignore"):
                diff = np.abs(a[bad].astype(np.float64) - b[bad])
            finite = diff[np.isfinite(diff)]
            largest = max(largest, float(finite.max()) if finite.size else np.inf)
        planes += 1
    return ndiff, largest, planes


def _unchanged_check(ctx, sec, before_suffix, after_suffix, step_name):
    def run():
        before = ctx.require(before_suffix)
        after = ctx.require(after_suffix)
        ndiff, largest, planes = compare_sci(ctx, before, after)
        return ndiff == 0, (f"{fmt(ndiff)} of {fmt(planes * ctx.ny * ctx.nx)} values differ "
                            f"(largest difference {fmt(largest)} DN) over {planes} groups")
    sec.check(f"SCI unchanged by {step_name}", f"{step_name} changes only the flags: the SCI ramp "
              f"equals the {before_suffix} product exactly", run)


def _ulp_tolerance(*arrays):
    """Two float32 units in the last place of the largest magnitude involved, per pixel."""
    big = np.abs(arrays[0]).astype(np.float32)
    for array in arrays[1:]:
        big = np.maximum(big, np.abs(array).astype(np.float32))
    return 2.0 * np.spacing(big).astype(np.float64) + 1e-6


def dilate(mask):
    """3x3 binary dilation with the edges handled like a maximum filter."""
    out = mask.copy()
    out[1:, :] |= mask[:-1, :]
    out[:-1, :] |= mask[1:, :]
    rows = out.copy()
    out[:, 1:] |= rows[:, :-1]
    out[:, :-1] |= rows[:, 1:]
    return out


def robust_std(values):
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.nan
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


# -------------------------------------------------------------------------------------------------
# Overview
# -------------------------------------------------------------------------------------------------
def section_overview(ctx, sec, step_status=STEP_STATUS, expected=None, reftypes=None):
    """``step_status``: (step, keyword, required) where required is True (must be COMPLETE),
    False, or the set of accepted values; ``expected``: the products that must exist (default:
    every product of a near-infrared run); ``reftypes``: the references listed."""
    h = ctx.header
    x0, y0 = ctx.xstart, ctx.ystart
    rows = [
        ("Instrument / detector", f"{h.get('INSTRUME')} / {h.get('DETECTOR')}"),
        ("Exposure type", h.get("EXP_TYPE")),
        ("Subarray", f"{h.get('SUBARRAY')}: columns {x0}-{x0 + ctx.nx - 1}, rows {y0}-{y0 + ctx.ny - 1} "
                     f"(1-based, full-frame DMS), {h.get('NOUTPUTS')} output(s)"),
        ("Readout", f"{h.get('READPATT')}: {ctx.nints} integration(s) x {ctx.ngroups} groups, "
                    f"NFRAMES={ctx.nframes}, GROUPGAP={ctx.groupgap}"),
        ("Frame / group time", f"{fmt(ctx.tframe)} s / {fmt(ctx.tgroup)} s"),
        ("Ramp shape (nints, ngroups, ny, nx)", str(tuple(int(v) for v in ctx.ramp_shape))),
        ("Processed by", f"{h.get('CAL_VER') or 'unknown'} ({h.get('CAL_VCS') or ''}) on {h.get('DATE')}"),
    ]
    sec.table(["Exposure", "Value"], rows)

    status_rows = [(step, keyword, ctx.keyword(keyword) or "not recorded")
                   for step, keyword, _ in step_status]
    sec.table(["Step", "Keyword", "Status"], status_rows,
              caption=f"Step status keywords (from the {ctx.header_source} product)")

    prod_rows = []
    for suffix in ctx.products.paths:
        product = ctx.get(suffix)
        shape = product.shape("SCI") if product.has("SCI") else (
            product.shape("SLOPE") if product.has("SLOPE") else "")
        prod_rows.append((suffix, product.name, str(tuple(int(v) for v in shape)) if shape else ""))
    missing = (ctx.products.missing() if expected is None else
               [s for s in expected if not ctx.products.has(s)])
    for suffix in missing:
        prod_rows.append((suffix, "not saved", ""))
    sec.table(["Product", "File", "SCI shape"], prod_rows)

    ref_rows = []
    from .context import REF_KEYWORDS
    for reftype in reftypes or ("mask", "saturation", "superbias", "linearity", "dark", "gain",
                                "readnoise"):
        keyword = REF_KEYWORDS[reftype]
        recorded = ctx.keyword(keyword)
        try:
            where = "found" if ctx.reference_path(reftype) else ""
        except NotRun as why:
            where = str(why)
        shown = "-" if recorded is None else str(recorded)
        if os.path.isabs(shown):
            shown = os.path.basename(shown)  # the report names files, not this machine's folders
        ref_rows.append((reftype.upper(), keyword, shown, where))
    sec.table(["Reference", "Keyword", "Recorded", "Available to the report"], ref_rows)

    def products_present():
        count = len(expected) if expected else len(ctx.products.paths)
        return not missing, (f"all {count} products present"
                             if not missing else f"missing: {', '.join(missing)}")
    sec.check("Every step's product was saved", "the 7 ramp products, rate, rateints, fitopt (an "
              "OLS_C fit's) and both ramp_fit products exist" if expected is None else
              f"the products {', '.join(expected)} exist", products_present)

    def steps_complete():
        bad, unknown = [], []
        for step, keyword, required in step_status:
            value = ctx.keyword(keyword)
            accepted = {"COMPLETE"} if required is True else (required or set())
            if accepted and value is None:
                unknown.append(keyword)
            elif accepted and str(value).upper() not in accepted:
                bad.append(f"{step}={value}")
        if unknown and not bad:
            raise NotRun(f"{', '.join(unknown)} not recorded in the saved products (the products of "
                         f"the later steps were not saved)")
        needed = [(step, keyword, required) for step, keyword, required in step_status if required]
        if step_status is STEP_STATUS:
            done = ("dq_init, saturation, superbias, refpix, linearity, dark_current, jump and "
                    "ramp_fit all COMPLETE")
        else:
            done = ", ".join(f"{step}={ctx.keyword(keyword)}" for step, keyword, _ in needed)
        return not bad, (done if not bad else "not complete: " + ", ".join(bad))
    requirement = ("S_DQINIT, S_SATURA, S_SUPERB, S_REFPIX, S_LINEAR, S_DARK, S_JUMP and S_RAMP are "
                   "COMPLETE" if step_status is STEP_STATUS else "; ".join(
                       f"{keyword} " + ("COMPLETE" if required is True else " or ".join(sorted(required)))
                       for _, keyword, required in step_status if required))
    sec.check("Stage 1 steps completed", requirement, steps_complete)


# -------------------------------------------------------------------------------------------------
# The rate image (the notebook's "run the entire pipeline")
# -------------------------------------------------------------------------------------------------
def section_rate(ctx, sec):
    rate = ctx.get("rate")
    if rate is None:
        _missing(sec, ctx, "rate", "the rate image")
    else:
        data = rate.plane("SCI")
        vmin, vmax = plots.auto_limits(data, 1.0, 99.5, positive=True)
        sec.figure(plots.show_image(data, vmin, vmax, title="Rate image", label="DN/s"),
                   f"The count-rate image ({rate.name}), log stretch from {fmt(vmin)} to "
                   f"{fmt(vmax)} DN/s.")
        finite = data[np.isfinite(data)]
        p = np.percentile(finite, [1, 50, 99]) if finite.size else [np.nan] * 3
        sec.table(["Statistic", "Value"], [
            ("pixels", int(data.size)), ("NaN pixels", int(np.isnan(data).sum())),
            ("1st percentile (DN/s)", float(p[0])), ("median (DN/s)", float(p[1])),
            ("99th percentile (DN/s)", float(p[2]))])
    lin = ctx.get("linearity")
    if lin is not None:
        last = lin.plane("SCI", 0, ctx.ngroups - 1)
        vmin, vmax = plots.auto_limits(last, 1.0, 99.5, positive=True)
        sec.figure(plots.show_image(last, vmin, vmax, title="Final group, linearity-corrected"),
                   f"The final group of the first integration after the linearity correction, "
                   f"log stretch from {fmt(vmin)} to {fmt(vmax)} DN.")

    def units():
        product = ctx.require("rate")
        sci = product.ext_header("SCI").get("BUNIT")
        err = product.ext_header("ERR").get("BUNIT") if product.has("ERR") else None
        return sci == "DN/s" and err == "DN/s", f"SCI BUNIT={sci!r}, ERR BUNIT={err!r}"
    sec.check("Rate units are DN/s", "BUNIT = 'DN/s' on the SCI and ERR extensions of the rate", units)

    def err_is_total():
        product = ctx.require("rate")
        for ext in ("ERR", "VAR_POISSON", "VAR_RNOISE"):
            if not product.has(ext):
                raise NotRun(f"the rate product has no {ext} extension")
        err = product.plane("ERR").astype(np.float64)
        total = np.sqrt(product.plane("VAR_POISSON").astype(np.float64)
                        + product.plane("VAR_RNOISE"))
        with np.errstate(invalid="ignore"):
            dev = np.abs(err - total) / np.maximum(np.abs(total), 1e-30)
        dev[(err == 0) & (total == 0)] = 0
        dev[np.isnan(err) & np.isnan(total)] = 0     # NaN where NaN: no slope, no error
        bad = ~(dev <= 1e-5)
        return not bad.any(), (f"largest relative difference {fmt(np.nanmax(dev))}; "
                               f"{fmt(int(bad.sum()))} pixels above 1e-5")
    sec.check("ERR combines the two variances", "ERR = sqrt(VAR_POISSON + VAR_RNOISE) within 1e-5 "
              "(relative) in every pixel (NaN where it is NaN)", err_is_total)

    def rate_vs_rateints():
        product = ctx.require("rate")
        ints = ctx.require("rateints")
        cube = ints.read("SCI")
        data = product.plane("SCI")
        if cube.shape[0] == 1:
            bad = ~_same(data, cube[0])
            return not bad.any(), (f"1 integration: {fmt(int(bad.sum()))} of {fmt(data.size)} pixels "
                                   f"differ between rate and rateints")
        full = np.all(np.isfinite(cube), axis=0) & np.isfinite(data)
        low, high = cube.min(axis=0), cube.max(axis=0)
        tol = 1e-5 * np.maximum(np.abs(low), np.abs(high)) + 1e-6
        outside = full & ((data < low - tol) | (data > high + tol))
        return not outside.any(), (f"{cube.shape[0]} integrations: {fmt(int(outside.sum()))} of "
                                   f"{fmt(int(full.sum()))} pixels outside the range of their "
                                   f"integrations' slopes")
    sec.check("Rate agrees with the rateints", "one integration: rate = rateints exactly (NaN where "
              "NaN); several: each rate lies between its integrations' slopes (a weighted mean)",
              rate_vs_rateints)


# -------------------------------------------------------------------------------------------------
# dq_init
# -------------------------------------------------------------------------------------------------
def section_dq_init(ctx, sec):
    product = ctx.get("dq_init")
    if product is None:
        _missing(sec, ctx, "dq_init", "the PIXELDQ array")
    else:
        dq = product.plane("PIXELDQ").astype(np.uint32)
        unflagged = int((dq == 0).sum())
        flagged = dq.size - unflagged
        sec.para(f"Total pixels in PIXELDQ: {fmt(dq.size)}. {fmt(unflagged)} pixels have no flags; "
                 f"{fmt(flagged)} pixels ({percent(flagged, dq.size)} of the array) have flags.")
        sec.figure(plots.show_image(dq, 0, 100, title="Pixel DQ extension", label="DQ value",
                                    how="max"),
                   "PIXELDQ after dq_init, log stretch 0-100 as in the notebook: every flag value "
                   "of 100 or more (e.g. REFERENCE_PIXEL, DEAD, HOT) sits at the top of the scale. "
                   "Blocks show their largest value so that single flagged pixels stay visible.")
        rows = []
        for name, bit in dqflags.pixel.items():
            if bit:
                count = int(((dq & np.uint32(bit)) != 0).sum())
                if count:
                    rows.append((name, bit, count, percent(count, dq.size)))
        sec.table(["Flag", "Value", "Pixels", "Fraction"], rows, caption="Pixels carrying each flag")
        unique, counts = np.unique(dq, return_counts=True)
        order = np.argsort(counts)[::-1][:15]
        sec.table(["DQ value", "Pixels", "Flags"],
                  [(int(unique[k]), int(counts[k]), flag_names(unique[k])) for k in order],
                  caption="Number of pixels for each DQ value (the notebook's frequencies table; "
                          "largest 15)")

    _dq_init_sci_check(ctx, sec)

    def mask_copied():
        dq = ctx.require("dq_init").plane("PIXELDQ").astype(np.uint32)
        mask = ctx.reference("mask").dq.astype(np.uint32)
        bad = dq != mask
        return not bad.any(), (f"{fmt(int(bad.sum()))} of {fmt(dq.size)} pixels differ from the "
                               f"MASK reference (after its DQ_DEF translation and cut-out)")
    sec.check("PIXELDQ is the MASK reference", "PIXELDQ equals the MASK reference's DQ (R_MASK)",
              mask_copied)

    def groupdq_dnu():
        product = ctx.require("dq_init")
        expected = (product.plane("PIXELDQ").astype(np.uint32) & np.uint32(DNU)).astype(np.uint8)
        bad = 0
        for i, g in _planes(ctx):
            bad += int((product.plane("GROUPDQ", i, g) != expected).sum())
        return bad == 0, (f"{fmt(bad)} group values differ from PIXELDQ & DO_NOT_USE "
                          f"({fmt(int((expected != 0).sum()))} DO_NOT_USE pixels)")
    sec.check("GROUPDQ carries the DO_NOT_USE pixels", "every group's GROUPDQ equals "
              "PIXELDQ & DO_NOT_USE (the raw file has no group flags)", groupdq_dnu)


def _product_planes(product):
    """(integration, group) of every plane of a product, in its own layout (stripes too)."""
    nints, ngroups = product.shape("SCI")[:2]
    for i in range(nints):
        for g in range(ngroups):
            yield i, g


def _dq_init_sci_check(ctx, sec):
    def sci_unchanged():
        dq_init = ctx.require("dq_init")
        uncal = ctx.products.open_uncal()
        if uncal is None:
            raise NotRun(f"the raw exposure {ctx.products.rootname}_uncal.fits was not found next to "
                         f"the products (give it with uncal=)")
        # the product's own planes: a superstripe exposure's are stripes
        ndiff, largest, planes = compare_sci(ctx, uncal, dq_init,
                                             planes_of=_product_planes(dq_init))
        values = planes * int(np.prod(dq_init.shape("SCI")[-2:]))
        return ndiff == 0, (f"{fmt(ndiff)} of {fmt(values)} values differ from "
                            f"{uncal.name} (largest difference {fmt(largest)} DN)")
    sec.check("SCI unchanged by dq_init", "the SCI ramp equals the raw uncal data exactly",
              sci_unchanged)


def section_dq_init_striped(ctx, sec):
    """dq_init of a superstripe exposure: its product holds stripes (integration i is stripe
    i % nstripe) and PIXELDQ one plane per stripe, from the MASK cut into stripes."""
    product = ctx.get("dq_init")
    nstripe = ctx.superstripe
    if product is None:
        _missing(sec, ctx, "dq_init", "the PIXELDQ array")
    else:
        dq = product.plane("PIXELDQ").astype(np.uint32)
        sec.para(f"A superstripe exposure: the dq_init product holds {nstripe} stripes of "
                 f"{dq.shape[-2]} x {dq.shape[-1]} pixels (file integration i is stripe "
                 f"i % {nstripe}); PIXELDQ has one plane per stripe, {fmt(int((dq != 0).sum()))} "
                 f"of {fmt(dq.size)} values flagged.")
        sec.figure(plots.show_image(dq[0], 0, 100, title="Pixel DQ, stripe 0", label="DQ value",
                                    how="max"),
                   "PIXELDQ of the first stripe after dq_init, log stretch 0-100.")

    _dq_init_sci_check(ctx, sec)

    def mask_copied():
        dq = ctx.require("dq_init").plane("PIXELDQ").astype(np.uint32)
        mask = ctx.stripe_reference("mask", with_data=False).dq.astype(np.uint32)
        if dq.shape != mask.shape:
            return False, f"PIXELDQ is {dq.shape}, the MASK cut into stripes {mask.shape}"
        bad = dq != mask
        return not bad.any(), (f"{fmt(int(bad.sum()))} of {fmt(dq.size)} values differ from the "
                               f"MASK reference cut into stripes")
    sec.check("PIXELDQ is the MASK reference", "PIXELDQ equals the MASK reference's DQ (R_MASK) "
              "cut into one plane per stripe", mask_copied)

    def groupdq_dnu():
        product = ctx.require("dq_init")
        expected = (product.plane("PIXELDQ").astype(np.uint32) & np.uint32(DNU)).astype(np.uint8)
        bad = 0
        for i, g in _product_planes(product):
            bad += int((product.plane("GROUPDQ", i, g) != expected[i % len(expected)]).sum())
        return bad == 0, f"{fmt(bad)} group values differ from their stripe's PIXELDQ & DO_NOT_USE"
    sec.check("GROUPDQ carries the DO_NOT_USE pixels", "every group's GROUPDQ equals its "
              "stripe's PIXELDQ & DO_NOT_USE", groupdq_dnu)


# -------------------------------------------------------------------------------------------------
# saturation
# -------------------------------------------------------------------------------------------------
def _saturation_audit(ctx):
    """Compare every SATURATED group flag with the SATURATION reference threshold (for a
    superstripe exposure, in the stripe layout with the threshold cut for each stripe)."""
    if "sat_audit" in ctx._cache:
        return ctx._cache["sat_audit"]
    product = ctx.require("saturation")
    if ctx.superstripe:
        ref = ctx.stripe_reference("saturation")
        threshold, ref_dq = ref.data.astype(np.float32), ref.dq
    else:
        ref = ctx.reference("saturation")
        threshold, ref_dq = ref.threshold.astype(np.float32)[np.newaxis], ref.dq[np.newaxis]
    threshold = threshold.copy()
    threshold[~np.isfinite(threshold) | ((ref_dq & np.uint32(NO_SAT_CHECK)) != 0)] = 65536.0
    nints, ngroups, ny, nx = product.shape("SCI")
    counts = dict(flagged=0, direct=0, earlier=0, grown=0, unexplained=0, missed=0)
    for i in range(nints):
        reached = np.zeros((ny, nx), bool)
        plane_threshold = threshold[i % len(threshold)]
        for g in range(ngroups):
            data = product.plane("SCI", i, g)
            over = data >= plane_threshold
            reached |= over
            expected = dilate(reached)
            flagged = (product.plane("GROUPDQ", i, g) & SAT) != 0
            counts["flagged"] += int(flagged.sum())
            counts["direct"] += int((flagged & over).sum())
            counts["earlier"] += int((flagged & reached & ~over).sum())
            counts["grown"] += int((flagged & expected & ~reached).sum())
            counts["unexplained"] += int((flagged & ~expected).sum())
            counts["missed"] += int((reached & ~flagged).sum())
    ctx._cache["sat_audit"] = counts
    return counts


def section_saturation(ctx, sec):
    product = ctx.get("saturation")
    if product is None:
        _missing(sec, ctx, "saturation", "the saturation flags")
    else:
        summary = ctx.flag_summary("saturation")
        sat0 = summary["sat0"]
        sec.para(f"Found {fmt(summary['totals']['SAT'])} saturated flags. This may include multiple "
                 f"saturated groups within a given pixel.")
        partial = np.where((sat0 > 0) & (sat0 < ctx.ngroups))
        sec.para(f"{fmt(len(partial[0]))} pixels are partially saturated (saturated in some but not "
                 f"all groups of the first integration); {fmt(int((sat0 == ctx.ngroups).sum()))} are "
                 f"saturated in every group.")
        sec.figure(plots.show_image(sat0, 0, max(1, ctx.ngroups), title="Saturated groups per pixel",
                                    label="groups", how="max", stretch="linear"),
                   "Number of groups flagged SATURATED in each pixel (first integration).")
        if len(partial[0]):
            k = wrap_index(SAT_INDEX, len(partial[0]))
            y, x = int(partial[0][k]), int(partial[1][k])
            ramp = product.pixel("SCI", 0, y, x)
            gdq = product.pixel("GROUPDQ", 0, y, x).astype(np.uint8)
            sat = (gdq & SAT) != 0
            saturated_points = ramp.astype(np.float64).copy()
            saturated_points[~sat] = np.nan
            groups = np.arange(ctx.ngroups)
            sec.figure(plots.ramp_plot(groups, [(ramp, "Not saturated", "black"),
                                                (saturated_points, "Saturated", "red")],
                                       title=f"Pixel ({x}, {y})"),
                       f"Signal up the ramp of the partially saturated pixel ({x}, {y}) "
                       f"(the notebook's example {SAT_INDEX}, taken modulo {len(partial[0])}); "
                       f"the saturated groups are red.")
            sec.table(["Group", "Signal (DN)", "GROUPDQ", "Flags"],
                      [(g, float(ramp[g]), int(gdq[g]), flag_names(gdq[g], dqflags.group))
                       for g in groups], caption=f"Pixel ({x}, {y}) up the ramp")
        else:
            sec.para("No pixel is partially saturated in this exposure, so there is no example ramp.")

    _unchanged_check(ctx, sec, ctx.previous("saturation"), "saturation", "saturation")
    _saturation_checks(ctx, sec)


def section_saturation_striped(ctx, sec):
    """saturation of a superstripe exposure: the flags checked in the stripe layout, each
    integration against the SATURATION reference cut for its stripe."""
    if ctx.get("saturation") is None:
        _missing(sec, ctx, "saturation", "the saturation flags")
    else:
        sec.para(f"A superstripe exposure: the saturation product holds {ctx.superstripe} "
                 f"stripes (file integration i is stripe i % {ctx.superstripe}); its flags are "
                 f"checked there, against the SATURATION reference cut into stripes.")
    _saturation_checks(ctx, sec)


def _saturation_checks(ctx, sec):
    def flags_explained():
        c = _saturation_audit(ctx)
        return c["unexplained"] == 0, (
            f"{fmt(c['flagged'])} SATURATED groups: {fmt(c['direct'])} at or above the threshold, "
            f"{fmt(c['earlier'])} after a group that was, {fmt(c['grown'])} next to a pixel that "
            f"was (n_pix_grow_sat=1); {fmt(c['unexplained'])} unexplained")
    sec.check("Every SATURATED group is above the threshold", "each flagged group reached the "
              "SATURATION reference threshold (R_SATURA) in that or an earlier group, in the pixel "
              "or one of its 8 neighbours (default growth of 1 pixel)", flags_explained)

    def none_missed():
        c = _saturation_audit(ctx)
        return c["missed"] == 0, (f"{fmt(c['missed'])} groups at or after the pixel's first "
                                  f"threshold crossing are not flagged")
    sec.check("Every group above the threshold is flagged", "no group at or above the threshold "
              "(or after such a group) lacks the SATURATED flag", none_missed)


# -------------------------------------------------------------------------------------------------
# superbias
# -------------------------------------------------------------------------------------------------
def section_superbias(ctx, sec):
    """Also for a superstripe exposure, in its stripe layout: integration i loses the SUPERBIAS
    cut for stripe i % nstripe."""
    before, after = ctx.get("saturation"), ctx.get("superbias")
    if before is None or after is None:
        _missing(sec, ctx, "saturation" if before is None else "superbias", "the bias subtraction")
    else:
        b = before.plane("SCI", 0, 0)
        a = after.plane("SCI", 0, 0)
        what = "stripe integration" if ctx.superstripe else "integration"
        sec.figure(plots.side_by_side(b, a, plots.auto_limits(b), plots.auto_limits(a),
                                      "Before superbias subtraction", "After superbias subtraction"),
                   f"The first group of the first {what} before and after the superbias "
                   "subtraction (log stretch, each panel from its 1st to 99.5th percentile).")

    def difference_is_bias():
        first, second = ctx.require("saturation"), ctx.require("superbias")
        if ctx.superstripe:
            bias = ctx.stripe_reference("superbias").data.astype(np.float32)
        else:
            bias = ctx.reference("superbias").data.astype(np.float32)[np.newaxis]
        bias = np.where(np.isfinite(bias), bias, np.float32(0))
        bad, largest = 0, 0.0
        for i, g in _product_planes(second):
            raw = first.plane("SCI", i, g)
            sub = second.plane("SCI", i, g)
            plane = bias[i % len(bias)]
            dev = np.abs(raw.astype(np.float64) - sub - plane)
            bad += int((dev > _ulp_tolerance(raw, plane)).sum())
            largest = max(largest, float(np.nanmax(dev)))
        return bad == 0, (f"largest |before - after - bias| = {fmt(largest)} DN; {fmt(bad)} values "
                          f"beyond float32 rounding")
    sec.check("Superbias difference equals the reference", "before - after = SUPERBIAS reference "
              "(R_SUPERB, NaN as 0; cut for each integration's stripe in a superstripe exposure) "
              "in every pixel and group, to float32 rounding",
              difference_is_bias)


# -------------------------------------------------------------------------------------------------
# refpix
# -------------------------------------------------------------------------------------------------
def _one_group_model(product, integration, group):
    """A RampModel holding one group of a saved ramp product, with its header and flags."""
    from ..datamodels import RampModel

    model = RampModel(data=product.plane("SCI", integration, group)[None, None].astype(np.float32))
    model.pixeldq = product.plane("PIXELDQ").astype(np.uint32)
    model.groupdq = product.plane("GROUPDQ", integration, group)[None, None].astype(np.uint8)
    model.primary_header.update(product.header)
    return model


def _stripes_group_model(product, nstripe, group):
    """A superstripe RampModel of one group: the first ``nstripe`` integrations of a product
    saved in the stripe layout (one per stripe, together collated integration 0)."""
    from ..datamodels import RampModel

    model = RampModel(data=np.stack([product.plane("SCI", i, group)
                                     for i in range(nstripe)])[:, None].astype(np.float32))
    model.pixeldq = product.plane("PIXELDQ").astype(np.uint32)
    model.groupdq = np.stack([product.plane("GROUPDQ", i, group)
                              for i in range(nstripe)])[:, None].astype(np.uint8)
    model.primary_header.update(product.header)
    return model


def _before_refpix(ctx, group):
    """Group ``group`` of integration 0 before refpix: the superbias product's, or for a
    superstripe exposure its stripes collated into the frame the refpix product holds (refpix
    corrects each stripe, then collates them; the collation only moves pixels)."""
    product = ctx.require("superbias")
    if not ctx.superstripe:
        return product.plane("SCI", 0, group)
    key = ("before_refpix", group)
    if key not in ctx._cache:
        from ..references.stripes import collate_superstripes

        layout = ctx.stripe_layout()
        if layout is None:
            raise NotRun("the stripe layout (SSTR_*/MSTR_* keywords) is in none of the products")
        stripe_groups = product.shape("SCI")[1]
        if stripe_groups != ctx.ngroups:
            raise NotRun(f"the stripes repeat within a frame: their {stripe_groups} groups are "
                         f"{ctx.ngroups} groups of the collated ramp")
        data = _stripes_group_model(product, ctx.superstripe, group).data
        ctx._cache[key] = collate_superstripes(layout, data)[0][0, 0]
    return ctx._cache[key]


def _no_side_refpix(ctx, group):
    """RefPixStep with use_side_ref_pixels=False on one group of the superbias product (for a
    superstripe exposure, on that group of every stripe, which the step collates).

    The correction of one group depends on that group only, and without the side correction the
    official arithmetic is float32 for every group, so this equals the full run's group.
    """
    key = ("no_side", group)
    if key not in ctx._cache:
        from ..refpix import RefPixStep

        product = ctx.require("superbias")
        if ctx.superstripe:
            _before_refpix(ctx, group)   # the same NotRun when the stripes repeat
            model = _stripes_group_model(product, ctx.superstripe, group)
        else:
            model = _one_group_model(product, 0, group)
        result = RefPixStep(use_side_ref_pixels=False).run(model)
        ctx._cache[key] = result.data[0, 0]
    return ctx._cache[key]


def _parity_offsets(ctx, image, mask):
    """{amplifier: median(even detector columns) - median(odd)} over the masked pixels."""
    cols = detector_columns(ctx)
    amp = cols // 512
    parity = cols % 2
    out = {}
    for a in np.unique(amp[mask]):
        sel = mask & (amp == a)
        even = image[sel & (parity == 0)]
        odd = image[sel & (parity == 1)]
        even, odd = even[np.isfinite(even)], odd[np.isfinite(odd)]
        if even.size >= 4 and odd.size >= 4:
            err = np.hypot(robust_std(even) / np.sqrt(even.size), robust_std(odd) / np.sqrt(odd.size))
            out["ABCD"[int(a)]] = (float(np.median(even) - np.median(odd)), float(err))
    return out


def section_refpix(ctx, sec):
    if ctx.irs2_rows() is not None:
        return _section_refpix_irs2(ctx, sec)
    before_p, after_p = ctx.get("superbias"), ctx.get("refpix")
    group = wrap_index(REFPIX_GROUP, ctx.ngroups)
    before = None
    if before_p is None or after_p is None:
        _missing(sec, ctx, "superbias" if before_p is None else "refpix", "the reference-pixel correction")
    else:
        try:
            before = _before_refpix(ctx, group)
        except NotRun as exc:
            sec.para(f"Not shown: {exc}.")
    if before is not None:
        after = after_p.plane("SCI", 0, group)
        rows = min(18, ctx.ny)
        width = min(20, ctx.nx)
        y0 = ctx.ny - rows
        x0 = 1030 if ctx.nx >= 1050 else max(0, ctx.nx // 2 - width // 2)
        zb = before[y0:, x0:x0 + width]
        za = after[y0:, x0:x0 + width]
        sec.figure(plots.side_by_side(zb, za, plots.auto_limits(zb), plots.auto_limits(za),
                                      "Before refpix subtraction", "After refpix subtraction",
                                      origin=(x0, y0)),
                   f"Zoom on the top {rows} rows, columns {x0}-{x0 + width - 1}, group {group}: before "
                   f"the correction the odd/even column offsets dominate.")
        diff = zb.astype(np.float64) - za
        sec.figure(plots.show_image(diff, *plots.auto_limits(diff, 0, 100), origin=(x0, y0),
                                    title="Difference: before - after refpix", stretch="linear"),
                   "What the reference-pixel correction subtracted in the zoomed region.")
        try:
            no_side = _no_side_refpix(ctx, group)
        except Exception as exc:  # reported, and the check below says not run
            sec.error(f"RefPixStep(use_side_ref_pixels=False) could not be run: {exc}")
        else:
            limits = plots.auto_limits(after, 1.0, 99.0)
            sec.figure(plots.side_by_side(no_side, after, limits, None, "No side refpix correction",
                                          "With side refpix correction"),
                       f"Group {group} corrected with the top/bottom reference pixels only "
                       f"(RefPixStep run here with use_side_ref_pixels=False on the superbias "
                       f"product) and with the side reference pixels as well (the refpix product).")
            side = after.astype(np.float64) - no_side
            sec.figure(plots.show_image(side, *plots.auto_limits(side, 0.5, 99.5),
                                        title="Difference with/without side refpix",
                                        stretch="linear"),
                       "With minus without the side reference-pixel (1/f) correction: horizontal "
                       "bands are the removed row noise.")

    def parity():
        before = _before_refpix(ctx, group)
        after = ctx.require("refpix").plane("SCI", 0, group)
        dq = ctx.require("refpix").plane("PIXELDQ").astype(np.uint32)
        mask = ((dq & np.uint32(REFPIX)) != 0) & ((dq & np.uint32(DNU)) == 0)
        if mask.sum() < 16:
            raise NotRun("the exposure has no usable reference pixels")
        off_before = _parity_offsets(ctx, before, mask)
        off_after = _parity_offsets(ctx, after, mask)
        if not off_before:
            raise NotRun("too few reference pixels per amplifier and column parity")
        worst_before = max(abs(v[0]) for v in off_before.values())
        worst_after = max(abs(off_after[a][0]) for a in off_before)
        noise = max(off_after[a][1] for a in off_before)
        detail = "; ".join(f"{a}: {fmt(off_before[a][0], 3)} -> {fmt(off_after[a][0], 3)}"
                           for a in sorted(off_before))
        ok = worst_after <= max(0.5 * worst_before, 3 * noise)
        return ok, (f"even-odd column offset in the reference pixels, group {group} (DN), per "
                    f"amplifier before -> after: {detail}; statistical error {fmt(noise, 2)} DN")
    sec.check("Odd/even column offsets reduced", "in the reference pixels, the largest even-minus-odd "
              "column offset after refpix is at most half of the one before, or within 3 sigma of 0",
              parity)

    def _side_inputs():
        after = ctx.require("refpix").plane("SCI", 0, group).astype(np.float64)
        no_side = _no_side_refpix(ctx, group).astype(np.float64)
        if np.array_equal(after, no_side, equal_nan=True):
            raise NotRun("the side reference-pixel correction changed nothing: it does not apply to "
                         "this readout (a 1-output subarray, or no side reference columns)")
        dq = ctx.require("refpix").plane("PIXELDQ").astype(np.uint32)
        use = (dq & np.uint32(REFPIX | DNU)) == 0
        if abs(int(ctx.header.get("FASTAXIS") or 1)) != 1:
            # detector rows are DMS columns: work on the transposed images
            after, no_side, use = after.T, no_side.T, use.T
        return after, no_side, use

    def one_value_per_row():
        after, no_side, _ = _side_inputs()
        diff = after - no_side
        # rows no pixel of which was read (between a superstripe exposure's stripes) are NaN
        read = np.isfinite(diff).any(axis=1)
        diff, after = diff[read], after[read]
        spread = np.nanmax(diff, axis=1) - np.nanmin(diff, axis=1)
        tol = 4.0 * np.spacing(np.nanmax(np.abs(after), axis=1).astype(np.float32)).astype(np.float64) + 1e-6
        bad = int((spread > tol).sum())
        return bad == 0, (f"group {group}: the with-minus-without difference varies along "
                          f"{fmt(bad)} of {fmt(diff.shape[0])} detector rows (largest spread "
                          f"{fmt(float(spread.max()))} DN; float32 rounding allowed); it removes "
                          f"{fmt(robust_std(diff[:, 0]), 3)} DN rms of row noise")
    sec.check("Side correction is one value per detector row", "refpix (with side pixels) minus "
              "RefPixStep(use_side_ref_pixels=False) is constant along every detector row",
              one_value_per_row)

    def row_noise():
        after, no_side, use = _side_inputs()
        if after.shape[0] < 512:
            raise NotRun(f"only {after.shape[0]} detector rows: the 1/f noise the side correction "
                         f"targets has periods of hundreds of rows and is not measurable here")
        import warnings

        def metric(image):
            masked = np.where(use, image, np.nan)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                medians = np.nanmedian(masked, axis=1)
            return robust_std(medians)
        m_no, m_with = metric(no_side), metric(after)
        return m_with < m_no, (f"scatter of the row medians (robust sigma) {fmt(m_no, 3)} DN without "
                               f"the side correction, {fmt(m_with, 3)} DN with it")
    sec.check("Side reference pixels reduce the 1/f row noise", "with at least 512 detector rows, "
              "the row-to-row scatter of the row medians is smaller with the side correction than "
              "without", row_noise)


def _detector_frame(ctx, image):
    """A DMS-frame image with detector rows as its rows (NIRSpec's are the DMS columns)."""
    return image.T if abs(int(ctx.header.get("FASTAXIS") or 1)) == 2 else image


def _section_refpix_irs2(ctx, sec):
    """NIRSpec IRS2: the correction computed from the interleaved reference samples and the
    reference output (the report sees the science rows of the products before refpix)."""
    before_p, after_p = ctx.get("superbias"), ctx.get("refpix")
    if before_p is None or after_p is None:
        _missing(sec, ctx, "superbias" if before_p is None else "refpix", "the IRS2 correction")
        return
    group = wrap_index(REFPIX_GROUP, ctx.ngroups)
    before = before_p.plane("SCI", 0, group).astype(np.float64)
    after = after_p.plane("SCI", 0, group).astype(np.float64)
    correction = before - after
    limits = plots.auto_limits(after, 1.0, 99.0)
    sec.figure(plots.side_by_side(before, after, limits, limits, "Before the IRS2 correction",
                                  "After the IRS2 correction"),
               f"Group {group}, science pixels: before (the superbias product without its "
               f"interleaved reference samples) and after refpix's IRS2 correction.")
    sec.figure(plots.show_image(correction, *plots.auto_limits(correction, 0.5, 99.5),
                                title="Subtracted: before - after", stretch="linear"),
               "What the IRS2 correction subtracted: the offsets of each output and the 1/f noise "
               "of the read, estimated from the reference samples read alongside the pixels.")
    profile = np.nanmedian(_detector_frame(ctx, correction), axis=1)
    sec.figure(plots.profiles([(np.arange(profile.size), [(profile, "median correction", "C0")],
                                "detector row", "DN")], title="Correction per detector row"),
               "The median of the subtracted signal along each detector row: the slow drifts "
               "and 1/f noise the reference samples followed.")

    def layout():
        stored = before_p.hdu("SCI").shape[-2]
        kept = after_p.hdu("SCI").shape[-2]
        preserved = kept == stored
        ok = preserved or kept == int(np.count_nonzero(ctx.irs2_rows()))
        return ok, (f"{stored} stored rows before refpix, {kept} after"
                    + (" (preserve_irs2_refpix)" if preserved else ": the interleaved reference "
                       "samples and the reference output are gone"))
    sec.check("Reference samples removed", "the refpix product holds the 2048 science rows of "
              "the IRS2 layout (all rows with preserve_irs2_refpix)", layout)

    def offsets():
        # the correction works on each group's departure from the ramp's mean, so constant
        # offsets stay (superbias's business) and what goes is their drift from group to group
        if ctx.ngroups < 2:
            raise NotRun("one group: no drift between groups")
        dq = after_p.plane("PIXELDQ").astype(np.uint32)
        mask = ((dq & np.uint32(REFPIX)) != 0) & ((dq & np.uint32(DNU)) == 0)
        amp = detector_columns(ctx) // 512
        stats = {}
        for name, product, image in (("before", before_p, before), ("after", after_p, after)):
            drift = image - product.plane("SCI", 0, 0).astype(np.float64)
            medians, errors = [], []
            for a in range(4):
                values = drift[mask & (amp == a)]
                values = values[np.isfinite(values)]
                if values.size < 8:
                    raise NotRun("too few reference pixels per amplifier")
                medians.append(np.median(values))
                errors.append(robust_std(values) / np.sqrt(values.size))
            stats[name] = (float(np.ptp(medians)), float(max(errors)))
        (spread_before, _), (spread_after, noise) = stats["before"], stats["after"]
        ok = spread_after <= max(0.5 * spread_before, 3 * np.sqrt(2) * noise)
        return ok, (f"group {group} minus group 0, spread of the four amplifiers' reference-pixel "
                    f"medians: {fmt(spread_before, 3)} DN before, {fmt(spread_after, 3)} DN after "
                    f"(statistical error {fmt(noise, 2)} DN)")
    sec.check("Amplifier drifts removed", "between two groups, the spread of the per-amplifier "
              "medians of the reference pixels is at least halved, or within the noise", offsets)

    def row_noise():
        if ctx.ngroups < 2:
            raise NotRun("one group: no group-to-group 1/f noise to compare")
        dq = _detector_frame(ctx, after_p.plane("PIXELDQ").astype(np.uint32))
        use = (dq & np.uint32(DNU)) == 0
        first_before = before_p.plane("SCI", 0, 0).astype(np.float64)
        first_after = after_p.plane("SCI", 0, 0).astype(np.float64)

        def metric(change):
            import warnings

            masked = np.where(use, _detector_frame(ctx, change), np.nan)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return robust_std(np.nanmedian(masked, axis=1))
        m_before, m_after = metric(before - first_before), metric(after - first_after)
        return m_after < m_before, (f"group {group} minus group 0: scatter of the detector-row "
                                    f"medians {fmt(m_before, 3)} DN before, {fmt(m_after, 3)} DN after")
    sec.check("1/f row noise reduced", "between two groups, the row-to-row scatter of the "
              "detector-row medians is smaller after the IRS2 correction", row_noise)


# -------------------------------------------------------------------------------------------------
# linearity
# -------------------------------------------------------------------------------------------------
def _well_exposed_pixel(ctx):
    lin, ref = ctx.require("linearity"), ctx.require(ctx.previous("linearity"))
    g3 = min(3, ctx.ngroups - 1)
    lin_fix = lin.plane("SCI", 0, g3).astype(np.float64) - ref.plane("SCI", 0, g3)
    last = lin.plane("SCI", 0, ctx.ngroups - 1)
    well = np.where((last > 40000.0) & (lin_fix > 20))
    criterion = f"final group above 40,000 DN and corrected by more than 20 DN in group {g3}"
    if len(well[0]) == 0:
        well = np.where(lin_fix > 20)
        criterion = f"corrected by more than 20 DN in group {g3} (no pixel reaches 40,000 DN)"
    if len(well[0]) == 0:
        science = ctx.science_mask() & np.isfinite(lin_fix)
        flat = np.where(science, np.abs(lin_fix), -1).ravel()
        k = int(np.argmax(flat))
        well = (np.array([k // ctx.nx]), np.array([k % ctx.nx]))
        criterion = f"largest correction in group {g3} (no pixel is corrected by more than 20 DN)"
    return well, criterion


def section_linearity(ctx, sec):
    lin, ref = ctx.get("linearity"), ctx.get(ctx.previous("linearity"))
    if lin is None or ref is None:
        _missing(sec, ctx, "linearity" if lin is None else ctx.previous("linearity"),
                 "the linearity correction")
    else:
        well, criterion = _well_exposed_pixel(ctx)
        sec.para(f"{fmt(len(well[0]))} pixels meet the criterion: {criterion}.")
        k = wrap_index(LIN_INDEX, len(well[0]))
        y, x = int(well[0][k]), int(well[1][k])
        groups = np.arange(ctx.ngroups)
        before = ref.pixel("SCI", 0, y, x)
        after = lin.pixel("SCI", 0, y, x)
        sat = (lin.pixel("GROUPDQ", 0, y, x) & SAT) != 0
        sec.figure(plots.ramp_plot(groups, [(before, "Uncorrected", "black"),
                                            (after, "Corrected", "red")],
                                   marks=[(sat, after, "Saturated (left alone)", "tab:orange")],
                                   title=f"Pixel ({x}, {y})"),
                   f"Signal up the ramp of pixel ({x}, {y}) before (black) and after (red) the "
                   f"linearity correction (the notebook's example {LIN_INDEX}, modulo "
                   f"{len(well[0])}). Saturated groups are circled: the step leaves them unchanged.")

    def sat_untouched():
        first, second = ctx.require(ctx.previous("linearity")), ctx.require("linearity")
        checked, changed = 0, 0
        for i, g in _planes(ctx):
            sat = (second.plane("GROUPDQ", i, g) & SAT) != 0
            if sat.any():
                a = first.plane("SCI", i, g)[sat]
                b = second.plane("SCI", i, g)[sat]
                checked += int(sat.sum())
                changed += int((~_same(a, b)).sum())
        if checked == 0:
            raise NotRun("no group is flagged SATURATED in this exposure")
        return changed == 0, f"{fmt(changed)} of {fmt(checked)} saturated groups changed"
    sec.check("Linearity left saturated groups alone", "every SATURATED group has the same value "
              "before and after the linearity correction", sat_untouched)

    def polynomial():
        first, second = ctx.require(ctx.previous("linearity")), ctx.require("linearity")
        ref = ctx.reference("linearity")
        if ref.inv_coeffs is not None and ctx.nframes > 1:
            raise NotRun("with NFRAMES > 1 and INV_COEFFS the read-level correction is used, which "
                         "is not a plain polynomial of the group value")
        y0 = max(0, ctx.ny // 2 - 64)
        y1 = min(ctx.ny, y0 + 128)
        coeffs = ref.coeffs[:, y0:y1].astype(np.float64)
        benign = (~np.all(np.isfinite(coeffs), axis=0) | (coeffs[1] == 0)
                  | ((ref.dq[y0:y1] & np.uint32(NO_LIN_CORR)) != 0))
        worst, bad, tested = 0.0, 0, 0
        band = (slice(y0, y1),)
        for i, g in _planes(ctx):
            x = first.read("SCI", (i, g) + band).astype(np.float64)
            got = second.read("SCI", (i, g) + band).astype(np.float64)
            sat = (second.read("GROUPDQ", (i, g) + band) & SAT) != 0
            expected = np.zeros_like(x)
            for c in coeffs[::-1]:
                expected = expected * x + c
            expected = np.where(benign | sat, x, expected)
            ok = np.isfinite(x)
            dev = np.abs(got - expected)[ok]
            tol = (2e-6 * np.abs(expected) + 1e-3)[ok]
            bad += int((dev > tol).sum())
            tested += int(ok.sum())
            worst = max(worst, float(dev.max()) if dev.size else 0.0)
        return bad == 0, (f"rows {y0}-{y1 - 1}: largest |corrected - polynomial| = {fmt(worst)} DN "
                          f"over {fmt(tested)} group values; {fmt(bad)} beyond 2e-6 relative + 1e-3 DN")
    sec.check("Correction is the reference polynomial", "corrected = sum c_k x^k with the LINEARITY "
              "coefficients (R_LINEAR; identity where they are unusable, SATURATED groups unchanged)",
              polynomial)


# -------------------------------------------------------------------------------------------------
# persistence (skipped by default in jwst 3.0)
# -------------------------------------------------------------------------------------------------
def section_persistence(ctx, sec):
    status = ctx.keyword("S_PERSIS")
    sec.table(["Keyword", "Value"], [("S_PERSIS", status or "not recorded")],
              caption="The notebook skips this step, and jwst 3.0 skips it by default (it only "
                      "flags groups after saturation when persistence_time is given).")

    def flags_consistent():
        rate = ctx.require("rate")
        dq = rate.plane("DQ").astype(np.uint32)
        flagged = int(((dq & np.uint32(PERSISTENCE)) != 0).sum())
        if str(status).upper() == "COMPLETE":
            return True, f"the step ran; {fmt(flagged)} pixels carry PERSISTENCE in the rate DQ"
        return flagged == 0, (f"S_PERSIS={status}; {fmt(flagged)} pixels carry PERSISTENCE in the "
                              f"rate DQ")
    sec.check("No persistence flags unless the step ran", "when S_PERSIS is not COMPLETE, no rate "
              "DQ value has the PERSISTENCE flag", flags_consistent)


# -------------------------------------------------------------------------------------------------
# dark_current
# -------------------------------------------------------------------------------------------------
def _dark_planes(ref, ctx, integration=0):
    """The dark the step subtracts from each group (frame-averaged and extended as in stcal); a
    MIRI dark is 4-D, and integration i uses its integration min(i, NINTS_dark - 1)."""
    data = ref.data
    if getattr(ref, "nints", None):
        data = data.integration(min(integration, ref.nints - 1))
    nplanes = data.shape[0]
    ns, gs, nd = ctx.nframes, ctx.groupgap, ref.nframes
    read = data.read_plane if hasattr(data, "read_plane") else data.__getitem__

    def plane(j):
        if j < nplanes:
            return np.asarray(read(j), dtype=np.float64)
        last = np.asarray(read(nplanes - 1), dtype=np.float64)
        prev = np.asarray(read(nplanes - 2), dtype=np.float64) if nplanes > 1 else last
        return last + (j - nplanes + 1) * (last - prev)

    def expected(g):
        if nd == ns and ref.groupgap == gs:
            out = plane(g)
        else:
            start = g * (ns + gs)
            out = np.mean([plane(start + k) for k in range(ns)], axis=0)
        return np.where(np.isfinite(out), out, 0.0)
    return expected


def section_dark(ctx, sec):
    before, after = ctx.get(ctx.previous("dark_current")), ctx.get("dark_current")
    if before is None or after is None:
        _missing(sec, ctx, ctx.previous("dark_current") if before is None else "dark_current",
                 "the dark subtraction")
    else:
        b = before.plane("SCI", 0, 0)
        a = after.plane("SCI", 0, 0)
        sec.figure(plots.side_by_side(b, a, plots.auto_limits(b), None, "Before dark correction",
                                      "After dark correction"),
                   "The first group of the first integration before and after the dark "
                   "subtraction (log stretch, shared scale).")
        last_b = before.plane("SCI", 0, ctx.ngroups - 1).astype(np.float64)
        last_a = after.plane("SCI", 0, ctx.ngroups - 1)
        removed = last_b - last_a
        sec.figure(plots.show_image(removed, *plots.auto_limits(removed, 0.5, 99.5),
                                    title="Dark subtracted from the final group", stretch="linear"),
                   "Before minus after the dark subtraction in the final group: hot and warm "
                   "pixels stand out.")

    def difference_is_dark():
        first, second = ctx.require(ctx.previous("dark_current")), ctx.require("dark_current")
        ref = ctx.reference("dark")
        try:
            return _compare_dark(ctx, first, second, ref)
        finally:
            ref.close()
    sec.check("Dark difference equals the reference", "before - after = the DARK reference (R_DARK) "
              "plane of each group (frame-averaged when NFRAMES > 1"
              + ("; MIRI: integration min(i, NINTS_dark - 1) of the 4-D reference" if ctx.miri else "")
              + "), to float32 rounding", difference_is_dark)


def _compare_dark(ctx, first, second, ref):
    """(ok, measured) for before - after = the dark the step should have subtracted."""
    status = str(ctx.keyword("S_DARK")).upper()
    if ref.nframes > ctx.nframes or ref.groupgap > ctx.groupgap:
        ndiff, _, planes = compare_sci(ctx, first, second)
        return ndiff == 0 and status == "SKIPPED", (
            f"the dark (NFRAMES={ref.nframes}) cannot be resampled to the science "
            f"(NFRAMES={ctx.nframes}): S_DARK={status}, {fmt(ndiff)} values changed")
    # a 4-D (MIRI) dark has one set of planes per integration, a 3-D one is shared
    per_int = [_dark_planes(ref, ctx, i) for i in range(ctx.nints if getattr(ref, "nints", None) else 1)]
    bad, largest = 0, 0.0
    for g in range(ctx.ngroups):
        darks = [expected(g) for expected in per_int]
        for i in range(ctx.nints):
            dark = darks[min(i, len(darks) - 1)]
            lin = first.plane("SCI", i, g)
            out = second.plane("SCI", i, g)
            dev = np.abs(lin.astype(np.float64) - out - dark)
            ok = np.isfinite(lin)
            bad += int((dev[ok] > _ulp_tolerance(lin, dark)[ok]).sum())
            largest = max(largest, float(dev[ok].max()) if ok.any() else 0.0)
    return bad == 0, (f"largest |before - after - dark| = {fmt(largest)} DN over "
                      f"{ctx.nints * ctx.ngroups} groups; {fmt(bad)} values beyond float32 rounding")


# -------------------------------------------------------------------------------------------------
# picture_frame (NIRSpec full frames; off by default)
# -------------------------------------------------------------------------------------------------
def _last_minus_first(product, integration=0):
    last = product.shape()[1] - 1
    return (product.plane("SCI", integration, last).astype(np.float64)
            - product.plane("SCI", integration, 0))


def _picture_frame_images(ctx):
    """(before, correction) of the first integration's last-minus-first group, or None: the
    step's input is the jump product, and the saved correction is its output minus that input."""
    before, correction = ctx.get("jump"), ctx.get("pctfrm_correction")
    if before is None or correction is None:
        return None
    return _last_minus_first(before), _last_minus_first(correction)


def _frame_contrast(image, background=None):
    """Median of the edge band minus median of the centre (the regions the step scales by)."""
    from ..picture_frame import region_masks

    usable = np.isfinite(image) if background is None else (background > 0) & np.isfinite(image)
    center, edge = region_masks(usable)
    if not center.any() or not edge.any():
        return None
    return float(np.median(image[edge]) - np.median(image[center]))


def _change_figures(sec, before, change, shown, title, caption, what, after_caption):
    """Two figures: ``shown`` (the step's change, as the step applied or removed it) and the image
    before and after (``before + change``), which is returned."""
    after = before + change
    sec.figure(plots.show_image(shown, *plots.auto_limits(shown, 0.5, 99.5), title=title,
                                stretch="linear"), caption)
    limits = plots.auto_limits(before, 0.5, 99.5)
    sec.figure(plots.side_by_side(before, after, limits, None, f"Before {what}", f"After {what}",
                                  stretch="linear"),
               f"Last group minus first group of the first integration before and after "
               f"{after_caption}")
    return after


def _images_for_check(ctx, ran, status, images_of, product, option):
    """A check's (before, change) images of an optional step; NotRun when it did not run or did
    not save ``product`` (the step's ``option``)."""
    if not ran:
        raise NotRun(f"the step did not run ({status})")
    found = images_of(ctx)
    if found is None:
        raise NotRun(f"no {ctx.products.rootname}_{product}.fits ({option})")
    return found


def _optional_step(ctx, sec, keyword, caption, images_of, product, what):
    """The status table of a step that is off by default, and its (before, change) images when
    it ran and saved them (None otherwise, saying which product is missing). Returns
    ``(status, ran, images)``."""
    status = ctx.keyword(keyword)
    ran = str(status).upper() == "COMPLETE"
    sec.table(["Keyword", "Value"], [(keyword, status or "not recorded")], caption=caption)
    images = images_of(ctx) if ran else None
    if ran and images is None:
        _missing(sec, ctx, product if ctx.get("jump") is not None else "jump", what)
    return status, ran, images


def section_picture_frame(ctx, sec):
    status, ran, images = _optional_step(
        ctx, sec, "S_PCTFRM", "NIRSpec full frames only, off by default in jwst 3.0; when it runs, "
        "the report shows the scaled pattern it subtracted (ramp2slope run --report saves it with "
        "save_correction and save_mask).", _picture_frame_images, "pctfrm_correction",
        "the subtracted picture frame")
    if images is not None:
        before, correction = images
        _change_figures(sec, before, correction, -correction, "Subtracted picture frame",
                        "The scaled PICTUREFRAME pattern the step subtracted, last group minus "
                        "first group of the first integration.", "the correction",
                        "picture_frame (linear stretch, shared scale): the frame is the brighter "
                        "border.")

    def contrast_reduced():
        before, correction = _images_for_check(ctx, ran, f"S_PCTFRM={status}", _picture_frame_images,
                                               "pctfrm_correction", "save_correction")
        mask = ctx.get("pctfrm_mask")
        background = mask.plane("SCI") if mask is not None else None
        cb, ca = _frame_contrast(before, background), _frame_contrast(before + correction, background)
        if cb is None or ca is None:
            raise NotRun("no background pixels in the centre or the edge band")
        return abs(ca) <= abs(cb), (f"edge-band minus centre median (last minus first group) "
                                    f"{fmt(cb, 3)} DN before, {fmt(ca, 3)} DN after")
    sec.check("Picture frame contrast reduced", "the edge-band minus centre median of the background "
              "(last minus first group) is not larger after the correction than before",
              contrast_reduced)


# -------------------------------------------------------------------------------------------------
# clean_flicker_noise (off by default; NIRCam users turn it on against 1/f striping)
# -------------------------------------------------------------------------------------------------
def _flicker_images(ctx):
    """(before, noise) of the first integration's last-minus-first group, or None.

    The step's input is the jump product, corrected by picture_frame when that ran; the saved
    noise product is the cleaned ramp minus that input, so the cleaned image is before + noise.
    """
    before, noise = ctx.get("jump"), ctx.get("flicker_noise")
    if before is None or noise is None:
        return None
    image = _last_minus_first(before)
    frame = ctx.get("pctfrm_correction")
    if frame is not None:
        image += _last_minus_first(frame)
    return image, _last_minus_first(noise)


def _row_column_medians(image, rows, columns):
    with np.errstate(all="ignore"):
        science = image[rows][:, columns]
        return np.nanmedian(science, axis=1), np.nanmedian(science, axis=0)


def _science_region(ctx):
    """Rows and columns that are not reference pixels (a full frame's 4-pixel border)."""
    def keep(start, n, size=2048):
        detector = np.arange(n) + start - 1
        return (detector >= 4) & (detector < size - 4)
    return keep(ctx.ystart, ctx.ny), keep(ctx.xstart, ctx.nx)


def section_clean_flicker_noise(ctx, sec):
    status, ran, images = _optional_step(
        ctx, sec, "S_CLNFNS", "The step is off by default in jwst 3.0; when it runs, the report "
        "shows the fitted noise it removed (ramp2slope run --report saves it with save_noise and "
        "save_mask).", _flicker_images, "flicker_noise", "the fitted flicker noise")
    if images is not None:
        before, model = images
        after = _change_figures(
            sec, before, model, model, "Fitted flicker-noise model",
            "The noise the step added to the ramp (cleaned minus input), last group minus first "
            "group of the first integration: 1/f noise appears as row stripes.", "cleaning",
            "clean_flicker_noise (linear stretch, shared scale).")
        rows, columns = _science_region(ctx)
        rb, cb = _row_column_medians(before, rows, columns)
        ra, ca = _row_column_medians(after, rows, columns)
        sec.figure(plots.profiles([
            (np.nonzero(rows)[0] + ctx.ystart - 1, [(rb - np.nanmedian(rb), "before", "C3"),
                                                    (ra - np.nanmedian(ra), "after", "C0")],
             "Detector row", "Row median - overall median (DN)"),
            (np.nonzero(columns)[0] + ctx.xstart - 1, [(cb - np.nanmedian(cb), "before", "C3"),
                                                       (ca - np.nanmedian(ca), "after", "C0")],
             "Detector column", "Column median - overall median (DN)")],
            title="Row and column median profiles"),
            "Median of each row (left) and column (right) of the science pixels: the cleaning "
            "flattens the row profile, where 1/f striping shows.")
        mask = ctx.get("mask")
        if mask is not None:
            plane = mask.plane("SCI", *((0,) * (len(mask.shape()) - 2)))
            sec.figure(plots.show_image(plane, 0, 1, title="Background mask", label="used",
                                        stretch="linear"),
                       f"Pixels used to fit the noise (1) and masked as sources or bad pixels (0): "
                       f"{percent(int((plane > 0).sum()), plane.size)} of the pixels are background.")

    def striping_reduced():
        before, model = _images_for_check(ctx, ran, f"S_CLNFNS={status}", _flicker_images,
                                          "flicker_noise", "save_noise")
        rows, columns = _science_region(ctx)
        rb, _ = _row_column_medians(before, rows, columns)
        ra, _ = _row_column_medians(before + model, rows, columns)
        sb, sa = robust_std(rb), robust_std(ra)
        return sa <= sb, (f"robust scatter of the row medians {fmt(sb)} DN before, {fmt(sa)} DN "
                          f"after")
    sec.check("Row striping reduced", "the scatter of the row medians (last minus first group) "
              "is not larger after the cleaning than before", striping_reduced)

    def products_consistent():
        saved = [s for s in ("flicker_noise", "flicker_bkg", "mask") if ctx.get(s) is not None]
        if ran:
            return True, f"the step ran; saved: {', '.join(saved) or 'none'}"
        return not saved, f"S_CLNFNS={status}; flicker-noise products found: {', '.join(saved) or 'none'}"
    sec.check("No flicker-noise products unless the step ran", "the noise, background and mask "
              "products exist only when S_CLNFNS is COMPLETE", products_consistent)


# -------------------------------------------------------------------------------------------------
# jump
# -------------------------------------------------------------------------------------------------
def jump_pixels(ctx):
    """The notebook's jump examples: (single pixel, grid pixels), each (y, x), or None."""
    if "jump_pixels" not in ctx._cache:
        summary = ctx.flag_summary("jump")
        indexes = np.where(summary["jump0"] > 0)
        n = len(indexes[0])
        if n == 0:
            ctx._cache["jump_pixels"] = (None, [], indexes)
        else:
            single = wrap_index(JUMP_INDEX, n)
            grid = pick_indexes(JUMP_GRID, n)
            ctx._cache["jump_pixels"] = (
                (int(indexes[0][single]), int(indexes[1][single])),
                [(int(indexes[0][k]), int(indexes[1][k])) for k in grid], indexes)
    return ctx._cache["jump_pixels"]


def section_jump(ctx, sec):
    product = ctx.get("jump")
    if product is None:
        _missing(sec, ctx, "jump", "the jump flags")
    else:
        summary = ctx.flag_summary("jump")
        totals = summary["totals"]
        jump0 = summary["jump0"]
        impacted = int((jump0 > 0).sum())
        total = ctx.ny * ctx.nx
        sec.para(f"{fmt(totals['JUMP'])} jump flags detected (all integrations; a pixel can have more "
                 f"than one flagged group). In the first integration {fmt(impacted)} pixels "
                 f"({100.0 * impacted / total:.2f}% of the {ctx.ny}x{ctx.nx} array) have been "
                 f"flagged with at least one jump.")
        sec.figure(plots.show_image(jump0, 0, max(1, int(jump0.max())), title="Jump flags per pixel",
                                    label="flagged groups", how="max", stretch="linear"),
                   "Number of groups flagged JUMP_DET in each pixel (first integration).")
        single, grid, indexes = jump_pixels(ctx)
        groups = np.arange(ctx.ngroups)
        if single is None:
            sec.para("No jump was flagged in the first integration, so there is no example ramp.")
        else:
            y, x = single
            ramp = product.pixel("SCI", 0, y, x)
            flags = (product.pixel("GROUPDQ", 0, y, x) & JUMP) != 0
            sec.para(f"Jump located in group(s) {[int(g) for g in groups[flags]]} of pixel ({x}, {y}).")
            sec.figure(plots.ramp_plot(groups, [(ramp, None, "black")],
                                       marks=[(flags, ramp, "Flagged jump", "red")],
                                       title=f"Pixel ({x},{y})"),
                       f"Signal up the ramp of pixel ({x}, {y}) (the notebook's example {JUMP_INDEX}, "
                       f"modulo {len(indexes[0])}); the flagged jump is circled in red.")
            panels = []
            for yy, xx in grid:
                values = product.pixel("SCI", 0, yy, xx)
                mask = (product.pixel("GROUPDQ", 0, yy, xx) & JUMP) != 0
                panels.append((values, mask, None, f"Pixel ({xx}, {yy})"))
            sec.figure(plots.ramp_grid(groups, panels),
                       "Examples of flagged jumps (the notebook's indexes "
                       f"{list(JUMP_GRID)} modulo {len(indexes[0])}); red marks the flagged groups, which "
                       "ramp fitting ignores.")

    def no_jump_on_dnu():
        summary = ctx.flag_summary("jump")
        t = summary["totals"]
        return t["JUMP&DNU"] == 0, (f"{fmt(t['JUMP&DNU'])} of {fmt(t['JUMP'])} JUMP_DET flags sit on "
                                    f"a DO_NOT_USE group ({fmt(t['DNU'])} DO_NOT_USE groups)")
    sec.check("No JUMP flag on a DO_NOT_USE group", "no group has both JUMP_DET and DO_NOT_USE",
              no_jump_on_dnu)

    def no_jump_on_sat():
        summary = ctx.flag_summary("jump")
        t = summary["totals"]
        return t["JUMP&SAT"] == 0, (f"{fmt(t['JUMP&SAT'])} of {fmt(t['JUMP'])} JUMP_DET flags sit on "
                                    f"a SATURATED group ({fmt(t['SAT'])} SATURATED groups)")
    sec.check("No JUMP flag on a SATURATED group", "no group has both JUMP_DET and SATURATED",
              no_jump_on_sat)

    _unchanged_check(ctx, sec, ctx.previous("jump"), "jump", "jump")


# -------------------------------------------------------------------------------------------------
# ramp_fit
# -------------------------------------------------------------------------------------------------
def segments(gdq):
    """The fitted segments of one ramp, as ramp fitting (OLS_C) forms them: [(start, stop)]."""
    flags = np.asarray(gdq, dtype=np.uint8) & np.uint8(~PERSISTENCE & 0xFF)
    n = flags.size
    found, g = [], 0
    while g < n:
        if flags[g] == 0:
            start = g
            while g < n and flags[g] == 0:
                g += 1
            if start > 0 and flags[start - 1] == JUMP:
                start -= 1
            found.append((start, g))
        else:
            g += 1
    if any(stop - start >= 2 for start, stop in found):
        found = [(a, b) for a, b in found if b - a >= 2]
    else:
        found = found[:1]
    return found


def _fit_lines(ctx, fitopt, y, x, gdq):
    """Each fitted segment as (groups, intercept + slope x time) from the fitopt product."""
    lines = []
    nseg = fitopt.shape("YINT")[1]
    times = ctx.group_times()
    for k, (start, stop) in enumerate(segments(gdq)[:nseg]):
        yint = float(fitopt.read("YINT", (0, k, y, x)))
        slope = float(fitopt.read("SLOPE", (0, k, y, x)))
        g = np.arange(start, stop)
        lines.append((g, yint + slope * times[g]))
    return lines


def likely_vs_ols(ctx, rate, rows=256):
    """(LIKELY rate, OLS_C rate, ERR, first row) in a band of at most ``rows`` rows.

    The OLS_C rate is fitted here, with the run's GAIN and READNOISE references, to the ramps of
    the jump product (what the fit saw, unless persistence flagged more groups), and scaled
    by GAINFACT when gain_scale scaled the rate."""
    from ..ramp_fitting.ols_fit import fit_ramps

    jump = ctx.require("jump")
    if not (ctx.tgroup and ctx.tframe):
        raise NotRun("the products have no TGROUP or TFRAME keyword")
    y0 = max(0, ctx.ny // 2 - rows // 2)
    band = slice(y0, min(ctx.ny, y0 + rows))
    gain = ctx.reference("gain").data[band]
    readnoise = ctx.reference("readnoise").data[band]
    pixeldq = ctx.pixeldq()
    pixeldq = (np.zeros((ctx.ny, ctx.nx), np.uint32) if pixeldq is None else pixeldq)[band]
    data = jump.read("SCI", (slice(None), slice(None), band), dtype=np.float32)
    gdq = jump.read("GROUPDQ", (slice(None), slice(None), band), dtype=np.uint8)
    fit = fit_ramps(data, gdq, pixeldq, gain, readnoise, nframes=ctx.nframes,
                    group_time=ctx.tgroup, frame_time=ctx.tframe, groupgap=ctx.groupgap)
    if fit is None:
        raise NotRun("every pixel of the sampled rows is saturated in the first group")
    factor = 1.0
    if str(rate.header.get("S_GANSCL")).upper() == "COMPLETE":
        factor = float(rate.header.get("GAINFACT") or 1.0)
    ols = fit.rate.data.astype(np.float64) * factor
    likely = rate.read("SCI", (band,)).astype(np.float64)
    err = rate.read("ERR", (band,)).astype(np.float64)
    return likely, ols, err, y0


def _likely_vs_ols(ctx, sec, rate):
    """The run used LIKELY (its chi-squared product is there): its rate against OLS_C's."""
    try:
        likely, ols, err, y0 = likely_vs_ols(ctx, rate)
    except NotRun as exc:
        sec.para(f"The run fitted the ramps with LIKELY; its comparison with OLS_C is not "
                 f"shown: {exc}.")
        return
    diff = likely - ols
    science = ctx.science_mask()[y0:y0 + diff.shape[0]]
    good = science & np.isfinite(diff) & (err > 0)
    if good.sum() < 10:
        sec.para("The run fitted the ramps with LIKELY; fewer than 10 pixels have both rates, "
                 "so its comparison with OLS_C is not shown.")
        return
    rel = diff[good] / err[good]
    limit = float(np.percentile(np.abs(diff[good]), 99)) or 1.0
    y1 = y0 + diff.shape[0] - 1
    shown = np.where(science, diff, np.nan)
    sec.para(f"The run fitted the ramps with LIKELY (the likelihood method of Brandt 2024). In rows "
             f"{y0}-{y1}, against an OLS_C fit of the same calibrated ramps: median difference "
             f"{fmt(float(np.median(diff[good])), 3)} DN/s, median |difference| = "
             f"{fmt(float(np.median(np.abs(rel))), 3)} x ERR, "
             f"{percent(int(np.sum(np.abs(rel) > 1)), rel.size)} of {fmt(int(good.sum()))} pixels differ "
             f"by more than their ERR.")
    sec.figure(plots.show_image(shown, -limit, limit, title="LIKELY - OLS_C rate", label="DN/s",
                                origin=(0, y0), stretch="linear"),
               f"The LIKELY rate minus an OLS_C fit of the jump product's ramps, rows {y0}-{y1}, "
               f"linear stretch +-{fmt(limit, 3)} DN/s (the 99th percentile of |difference|).")
    sec.figure(plots.histogram(np.clip(rel, -5, 5), 100, "(LIKELY - OLS_C) / ERR",
                               title="LIKELY vs OLS_C rate", log=True, vlines=(-1, 1)),
               "The differences in units of the rate's ERR, clipped to +-5; most pixels lie "
               "well inside +-1 (dotted), pixels with a jump that one method found and the "
               "other did not lie outside.")


def section_ramp_fit(ctx, sec):
    rf0, rf1, fitopt, jump = (ctx.get("0_ramp_fit"), ctx.get("1_ramp_fit"), ctx.get("fitopt"),
                              ctx.get("jump"))
    if rf0 is None or rf1 is None:
        _missing(sec, ctx, "0_ramp_fit" if rf0 is None else "1_ramp_fit", "the ramp-fit outputs")
    else:
        s0, s1 = rf0.shape("SCI"), rf1.shape("SCI")
        y, x = min(500, ctx.ny - 1), min(500, ctx.nx - 1)
        v0, v1 = float(rf0.read("SCI", (y, x))), float(rf1.read("SCI", (0, y, x)))
        sec.para(f"ramp_fit[0].shape, ramp_fit[1].shape = {tuple(s0)}, {tuple(s1)}: the exposure's "
                 f"mean slope image and one slope image per integration. At pixel ({x}, {y}): "
                 f"ramp_fit[0] = {fmt(v0, 6)}, ramp_fit[1][0] = {fmt(v1, 6)} "
                 f"(units {rf0.ext_header('SCI').get('BUNIT')!r}).")
    if fitopt is not None:
        rows = [(hdu.name, str(tuple(int(v) for v in hdu.shape)) if hdu.shape else "",
                 str(hdu.header.get("BITPIX")))
                for hdu in fitopt.hdulist[1:] if hdu.name != "ASDF"]
        sec.table(["Extension", "Shape", "BITPIX"], rows, caption=f"{fitopt.name}: the optional "
                  f"ramp-fit output (intercepts in YINT, one plane per fitted segment)")
    if jump is not None and fitopt is not None and ctx.tgroup:
        single, grid, indexes = jump_pixels(ctx)
        groups = np.arange(ctx.ngroups)
        if single is not None:
            y, x = single
            ramp = jump.pixel("SCI", 0, y, x)
            gdq = jump.pixel("GROUPDQ", 0, y, x).astype(np.uint8)
            lines = _fit_lines(ctx, fitopt, y, x, gdq)
            sec.figure(plots.ramp_plot(groups, [(ramp, "Data", "black")],
                                       marks=[((gdq & JUMP) != 0, ramp, "Flagged jump", "red")],
                                       lines=[(g, v, f"Fit, segment {k + 1}", "blue")
                                              for k, (g, v) in enumerate(lines)],
                                       title=f"Pixel ({x},{y})"),
                       "The jump example again with its fitted line(s): YINT + SLOPE x group time "
                       "for each segment of the fitopt product (blue, dashed).")
            panels = []
            for yy, xx in grid:
                values = jump.pixel("SCI", 0, yy, xx)
                g = jump.pixel("GROUPDQ", 0, yy, xx).astype(np.uint8)
                panels.append((values, (g & JUMP) != 0, _fit_lines(ctx, fitopt, yy, xx, g),
                               f"Pixel ({xx}, {yy})"))
            sec.figure(plots.ramp_grid(groups, panels),
                       "The grid of jump examples with the fitted segments (blue, dashed).")
    rate = ctx.get("rate") or rf0
    if rate is not None:
        data = rate.plane("SCI")
        vmin, vmax = plots.auto_limits(data, 1.0, 99.0, positive=True)
        sec.figure(plots.show_image(data, vmin, vmax, title="Slope image", label="DN/s"),
                   f"The slope image ({rate.name}), log stretch {fmt(vmin)}-{fmt(vmax)} DN/s.")
    if ctx.get("likely_chisq") is not None:
        _likely_vs_ols(ctx, sec, rate)

    def reconstruction():
        jump_p, fit, ints = ctx.require("jump"), ctx.require("fitopt"), ctx.get("1_ramp_fit") or ctx.get("rateints")
        if ints is None:
            raise NotRun("neither the 1_ramp_fit nor the rateints product was saved")
        times = ctx.group_times()
        y0 = max(0, ctx.ny // 2 - 64)
        y1 = min(ctx.ny, y0 + 128)
        band = slice(y0, y1)
        data = jump_p.read("SCI", (0, slice(None), band)).astype(np.float64)
        gdq = jump_p.read("GROUPDQ", (0, slice(None), band))
        yint = fit.read("YINT", (0, 0, band)).astype(np.float64)
        slope = ints.read("SCI", (0, band)).astype(np.float64)
        science = ctx.science_mask()[band]
        clean = np.all(gdq == 0, axis=0) & science & np.isfinite(slope) & np.isfinite(yint)
        if ctx.ngroups < 3 or clean.sum() < 10:
            raise NotRun("fewer than 10 unflagged pixels with at least 3 groups in the sampled rows")
        model = yint[None] + slope[None] * times[:, None, None]
        resid = (data - model)[:, clean]
        d2 = (data[2:] - 2 * data[1:-1] + data[:-2])[:, clean]
        sigma = robust_std(d2) / np.sqrt(6.0)
        typical = float(np.median(np.abs(resid)))
        ratio = typical / sigma if sigma > 0 else np.inf
        return ratio <= 1.0, (f"rows {y0}-{y1 - 1}, {fmt(int(clean.sum()))} unflagged pixels: median "
                              f"|data - (YINT + slope x t)| = {fmt(typical, 3)} DN, "
                              f"{fmt(ratio, 3)} x the per-group noise ({fmt(sigma, 3)} DN, from second "
                              f"differences); a correct fit gives about 0.6")
    sec.check("Fitted intercept and slope reproduce the ramps", "for unflagged pixels the median "
              "residual of the data about YINT + slope x group time is at most the per-group noise",
              reconstruction)

    def products_agree():
        first = ctx.require("0_ramp_fit")
        rate = ctx.require("rate")
        factor = 1.0
        if str(rate.header.get("S_GANSCL")).upper() == "COMPLETE":
            factor = float(rate.header.get("GAINFACT") or 1.0)
        bad = []
        for ext in ("SCI", "ERR", "DQ"):
            a = first.plane(ext).astype(np.float64)
            b = rate.plane(ext).astype(np.float64)
            if ext in ("SCI", "ERR"):
                a = a * factor
            mismatch = int((~_same(a, b) & ~(np.abs(a - b) <= 1e-6 * np.abs(b))).sum())
            if mismatch:
                bad.append(f"{ext}: {fmt(mismatch)} pixels")
        return not bad, ("SCI, ERR and DQ identical" + (f" (after GAINFACT {factor})" if factor != 1 else "")
                         if not bad else "differ: " + ", ".join(bad))
    sec.check("The ramp_fit output is the rate product", "_0_ramp_fit equals _rate (times GAINFACT "
              "when gain_scale ran) in SCI, ERR and DQ", products_agree)

    def flags_propagated():
        rate = ctx.require("rate")
        summary = ctx.flag_summary("jump")
        dq = rate.plane("DQ").astype(np.uint32)
        has_jump = (dq & np.uint32(JUMP)) != 0
        has_sat = (dq & np.uint32(SAT)) != 0
        lost_jump = int((summary["jump_any"] & ~has_jump).sum())
        extra_jump = int((has_jump & ~summary["jump_any"]).sum())
        # MIRI: a group saturated only in its DO_NOT_USE final group (lastframe) is not
        # reported in the rate DQ by jwst
        sat_any = summary["sat_kept_any"] if ctx.miri else summary["sat_any"]
        lost_sat = int((sat_any & ~has_sat).sum())
        return lost_jump == 0 and extra_jump == 0 and lost_sat == 0, (
            f"{fmt(int(summary['jump_any'].sum()))} pixels with a JUMP_DET group: {fmt(lost_jump)} "
            f"lack JUMP_DET in the rate DQ, {fmt(extra_jump)} rate pixels have it without one; "
            f"{fmt(lost_sat)} of {fmt(int(sat_any.sum()))} pixels with a SATURATED group "
            + ("(not DO_NOT_USE) " if ctx.miri else "") + "lack SATURATED")
    sec.check("Group flags reach the rate DQ", "rate DQ has JUMP_DET exactly where some group was "
              "flagged JUMP_DET, and SATURATED wherever some group was SATURATED", flags_propagated)


# -------------------------------------------------------------------------------------------------
# Pixels whose slope is zero or NaN
# -------------------------------------------------------------------------------------------------
def section_zero_nan(ctx, sec):
    rate = ctx.get("rate")
    if rate is None:
        _missing(sec, ctx, "rate", "the investigation of invalid slopes")
    else:
        data = rate.plane("SCI")
        dq = rate.plane("DQ").astype(np.uint32)
        science = ctx.science_mask()
        zero = science & (data == 0.0)
        nan = science & np.isnan(data)
        sec.para(f"{fmt(int(zero.sum()))} science pixels have a slope that is exactly zero and "
                 f"{fmt(int(nan.sum()))} have a NaN slope (reference pixels excluded). The official "
                 f"pipeline used to give zero where it now gives NaN.")
        invalid = zero | nan
        if invalid.any():
            values, counts = np.unique(dq[invalid], return_counts=True)
            order = np.argsort(counts)[::-1]
            sec.table(["Rate DQ", "Pixels", "Flags"],
                      [(int(values[k]), int(counts[k]), flag_names(values[k])) for k in order[:20]],
                      caption="Why: the DQ flags of the zero- or NaN-slope pixels")
            reasons = []
            if ctx.get("jump") is not None:
                summary = ctx.flag_summary("jump")
                all_sat = invalid & (summary["sat0"] >= ctx.ngroups)
                first_sat = invalid & (summary["first_sat"][0] == 0)
                all_dnu = invalid & (summary["dnu0"] >= ctx.ngroups)
                reasons = [("saturated in every group (first integration)", int(all_sat.sum())),
                           ("saturated from group 0", int(first_sat.sum())),
                           ("DO_NOT_USE in every group", int(all_dnu.sum()))]
                sec.table(["Group flags (jump product)", "Pixels"], reasons)
            ys, xs = np.where(invalid)
            k = wrap_index(ZERO_INDEX, len(ys))
            y, x = int(ys[k]), int(xs[k])
            sec.para(f"({x}, {y}) has a slope of {fmt(float(data[y, x]))} (the notebook's example "
                     f"{ZERO_INDEX}, modulo {len(ys)}); its rate DQ is {int(dq[y, x])} = "
                     f"{flag_names(dq[y, x])}.")
            lin = ctx.get("linearity") or ctx.get("jump")
            if lin is not None:
                ramp = lin.pixel("SCI", 0, y, x)
                gdq = lin.pixel("GROUPDQ", 0, y, x).astype(np.uint8)
                groups = np.arange(ctx.ngroups)
                sec.table(["Group", "Signal (DN)", "GROUPDQ", "Flags"],
                          [(g, float(ramp[g]), int(gdq[g]), flag_names(gdq[g], dqflags.group))
                           for g in groups],
                          caption=f"Pixel ({x}, {y}) up the ramp ({lin.name})")
                sec.figure(plots.ramp_plot(groups, [(ramp, "Signal", "black")],
                                           marks=[((gdq & SAT) != 0, ramp, "Saturated", "red"),
                                                  ((gdq & DNU) != 0, ramp, "Do not use", "tab:orange")],
                                           title=f"Pixel ({x}, {y})"),
                           f"Pixel ({x}, {y}) up the ramp, flagged groups circled.")

    def nan_explained():
        product = ctx.require("rate")
        data = product.plane("SCI")
        dq = product.plane("DQ").astype(np.uint32)
        science = ctx.science_mask()
        invalid = science & ((data == 0.0) | np.isnan(data))
        flagged = (dq & np.uint32(DNU | SAT)) != 0
        unexplained = int((invalid & ~flagged).sum())
        return unexplained == 0, (f"{fmt(int(invalid.sum()))} zero or NaN slopes; {fmt(unexplained)} "
                                  f"without DO_NOT_USE or SATURATED in the rate DQ")
    sec.check("Every zero or NaN slope is explained by its flags", "each science pixel with a zero or "
              "NaN slope has DO_NOT_USE or SATURATED in the rate DQ", nan_explained)

    def dnu_is_nan():
        product = ctx.require("rate")
        data = product.plane("SCI")
        dq = product.plane("DQ").astype(np.uint32)
        dnu = (dq & np.uint32(DNU)) != 0
        kept = int((dnu & np.isfinite(data)).sum())
        return kept == 0, f"{fmt(int(dnu.sum()))} DO_NOT_USE pixels, {fmt(kept)} with a finite slope"
    sec.check("DO_NOT_USE pixels have no slope", "every pixel flagged DO_NOT_USE in the rate DQ has a "
              "NaN slope", dnu_is_nan)
