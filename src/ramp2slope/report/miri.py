"""The report's sections for MIRI exposures.

MIRI runs its own steps (emicorr, firstframe, lastframe, reset, rscd), in its own order (jwst
3.0: dq_init, emicorr, saturation, firstframe, lastframe, reset, linearity, rscd, dark_current,
refpix, jump), with a 4-D DARK and a refpix of its own (4+4 reference columns, skipped for
subarrays). The near-infrared sections that apply as they are come from :mod:`.steps`; each
step's input is ``ctx.previous(step)``, the nearest earlier product the run saved.
"""
from __future__ import annotations

import numpy as np
from astropy.io import fits

from ..datamodels import dqflags
from . import plots, steps
from .checks import NotRun, fmt
from .context import DNU, JUMP, SAT

FLUX_ESTIMATED = dqflags.pixel["FLUX_ESTIMATED"]

#: MIRI's step status keywords in its pipeline order: (step, keyword, required). ``required`` is
#: True (must be COMPLETE), False, or the accepted values (set per exposure in the overview).
MIRI_STEP_STATUS = (
    ("group_scale", "S_GRPSCL", False), ("dq_init", "S_DQINIT", True),
    ("emicorr", "S_MIREMI", False), ("saturation", "S_SATURA", True), ("ipc", "S_IPC", False),
    ("firstframe", "S_FRSTFR", False), ("lastframe", "S_LASTFR", True),
    ("reset", "S_RESET", True), ("linearity", "S_LINEAR", True), ("rscd", "S_RSCD", True),
    ("dark_current", "S_DARK", True), ("refpix", "S_REFPIX", True),
    ("charge_migration", "S_CHGMIG", False), ("jump", "S_JUMP", True),
    ("clean_flicker_noise", "S_CLNFNS", False), ("persistence", "S_PERSIS", False),
    ("ramp_fit", "S_RAMP", True), ("gain_scale", "S_GANSCL", False),
)
MIRI_REFTYPES = ("mask", "saturation", "reset", "linearity", "rscd", "dark", "gain", "readnoise")
#: MIRI reference columns (full frame, detector = DMS frame): 4 on the left, 4 on the right.
REF_COLUMNS = (0, 1, 2, 3, 1028, 1029, 1030, 1031)
#: Showers: flagged regions of at least this many pixels in one group (cosmic rays flag a few to
#: a few tens); jwst's extend_min_area is 90 pixels after convolution.
SHOWER_MIN_AREA = 100
#: An injected shower must be flagged when its amplitude is at least this many times the noise
#: of a group difference averaged over jwst's ring kernel (Ring2DKernel(1, 2.6): 20 pixels).
#: Measured on jwst 3.0 products (FULL, 1 x 20 groups, 8 showers of 5.5-9.4 DN, read noise
#: 9 DN): flagged at 3.87 sigma and above, missed at 3.80 and below.
SHOWER_SIGMA = 4.0
RING_PIXELS = 20
#: A shower counts as flagged when this fraction of its disc is JUMP_DET in its group (jwst
#: flags the fitted ellipses: 14-63% of the injected discs in the measurement above).
SHOWER_FLAGGED_FRACTION = 0.10


def is_subarray(ctx):
    return str(ctx.header.get("SUBARRAY") or "FULL").strip().upper() != "FULL"


def _status(ctx, keyword):
    return str(ctx.keyword(keyword) or "not recorded")


def _ran(ctx, keyword):
    return _status(ctx, keyword).upper() == "COMPLETE"


def _status_table(sec, ctx, rows, caption=None):
    sec.table(["Keyword", "Value"], [(k, _status(ctx, k)) for k in rows], caption=caption)


def _line_figure(x, series, xlabel, ylabel, title=None, logy=False, width=6.4, height=4.2):
    """series: [(y, label, style dict)]."""
    fig = plots.new_figure(width, height)
    ax = fig.add_subplot(1, 1, 1)
    for y, label, style in series:
        ax.plot(x, y, label=label, **style)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if any(label for _, label, _ in series):
        ax.legend(fontsize=8, loc="best")
    if title:
        ax.set_title(title)
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.13, top=0.91)
    return plots.to_data_uri(fig)


def _dnu_fractions(ctx, product, integrations):
    """Fraction of the pixels DO_NOT_USE in each group, averaged over ``integrations``."""
    out = np.zeros(ctx.ngroups)
    for i in integrations:
        for g in range(ctx.ngroups):
            out[g] += np.mean((product.plane("GROUPDQ", i, g) & DNU) != 0)
    return out / max(1, len(integrations))


# -------------------------------------------------------------------------------------------------
# overview, and the steps MIRI does not run
# -------------------------------------------------------------------------------------------------
def section_overview(ctx, sec):
    accepted = {"refpix": {"SKIPPED"} if is_subarray(ctx) else True,
                # jwst skips these with too few groups
                "lastframe": True if ctx.ngroups > 2 else {"SKIPPED"},
                "rscd": True if ctx.ngroups >= 3 else {"SKIPPED"}}
    status = tuple((step, keyword, accepted.get(step, required))
                   for step, keyword, required in MIRI_STEP_STATUS)
    optional = [s for s, k in (("emicorr", "S_MIREMI"), ("firstframe", "S_FRSTFR")) if _ran(ctx, k)]
    expected = tuple(s for s in ctx.step_order if s not in ("emicorr", "firstframe") or s in optional)
    expected += ("rate", "rateints") if ctx.nints > 1 else ("rate",)
    reftypes = MIRI_REFTYPES + (("emicorr",) if _ran(ctx, "S_MIREMI") else ())
    steps.section_overview(ctx, sec, step_status=status, expected=expected, reftypes=reftypes)
    if is_subarray(ctx):
        sec.para(f"Subarray {ctx.header.get('SUBARRAY')}: jwst skips the MIRI reference-pixel "
                 f"correction for subarrays, so S_REFPIX must be SKIPPED.")


def not_for_miri(step, keyword, why):
    """A section for a step that calwebb_detector1 does not run on MIRI data."""
    def build(ctx, sec):
        sec.para(f"MIRI exposures do not go through {step}: {why}")
        _status_table(sec, ctx, [keyword])

        def not_applied():
            value = _status(ctx, keyword)
            product = ctx.get(step)
            return value.upper() != "COMPLETE" and product is None, (
                f"{keyword}={value}; {ctx.products.rootname}_{step}.fits "
                + ("exists" if product is not None else "not present"))
        sec.check(f"{step} not applied to MIRI", f"{keyword} is not COMPLETE and there is no "
                  f"{step} product", not_applied)
    return build


# -------------------------------------------------------------------------------------------------
# Flag-only steps: firstframe, lastframe, rscd
# -------------------------------------------------------------------------------------------------
def _flag_audit(ctx, before, after, expected):
    """Compare the GROUPDQ of two products with ``before | DNU where expected(i, g)``.

    ``expected(i, g, gdq_before)`` gives the (ny, nx) bool of the groups that must gain
    DO_NOT_USE. Returns counts: missing (DNU expected, absent), extra (any other change),
    flagged (values carrying DNU expected), sci (SCI values that changed)."""
    counts = dict(missing=0, extra=0, expected=0, sci=0, values=0)
    for i in range(ctx.nints):
        for g in range(ctx.ngroups):
            b = before.plane("GROUPDQ", i, g)
            a = after.plane("GROUPDQ", i, g)
            want = expected(i, g)
            target = np.where(want, b | np.uint8(DNU), b)
            counts["missing"] += int((want & ((a & DNU) == 0)).sum())
            counts["extra"] += int(((a != target) & ~(want & ((a & DNU) != 0))).sum())
            counts["expected"] += int(want.sum())
            sa, sb = after.plane("SCI", i, g), before.plane("SCI", i, g)
            counts["sci"] += int((~steps._same(sa, sb)).sum())
            counts["values"] += sa.size
    return counts


def _flag_section(ctx, sec, step, keyword, what, expected_fn, requirement, note_off):
    product = ctx.get(step)
    before_suffix = ctx.previous(step)
    before = ctx.get(before_suffix)
    _status_table(sec, ctx, [keyword])
    if product is None:
        sec.para(note_off if not _ran(ctx, keyword) else
                 f"{ctx.products.rootname}_{step}.fits was not saved, so the {what} cannot be "
                 f"shown (save every step's product: ramp2slope run --save-steps).")
    elif before is not None:
        groups = np.arange(ctx.ngroups)
        later = list(range(1, ctx.nints))
        series = [(_dnu_fractions(ctx, before, [0]), f"before ({before_suffix}), integration 1",
                   dict(color="0.5", linestyle="--", marker="o")),
                  (_dnu_fractions(ctx, product, [0]), "after, integration 1",
                   dict(color="C0", marker="o"))]
        if later:
            series.append((_dnu_fractions(ctx, product, later), "after, integrations 2+",
                           dict(color="C3", marker="s")))
        sec.figure(_line_figure(groups, series, "Group", "Fraction of pixels DO_NOT_USE",
                                title=f"DO_NOT_USE groups after {step}"),
                   f"The fraction of pixels flagged DO_NOT_USE in each group, before ({before_suffix} "
                   f"product, dashed) and after {step}: the {what}.")

    def audit():
        if "audit" not in cache:
            if product is None:
                raise NotRun(f"the step did not run ({keyword}={_status(ctx, keyword)})"
                             if not _ran(ctx, keyword) else f"no {ctx.products.rootname}_{step}.fits")
            prev = ctx.require(before_suffix)
            cache["audit"] = _flag_audit(ctx, prev, product, expected_fn(product, prev))
        return cache["audit"]
    cache = {}

    def flagged():
        c = audit()
        return c["missing"] == 0, (f"{fmt(c['expected'])} group values must carry DO_NOT_USE; "
                                   f"{fmt(c['missing'])} do not")
    sec.check(f"{step}: {what} flagged DO_NOT_USE", requirement, flagged)

    def nothing_else():
        c = audit()
        return c["extra"] == 0 and c["sci"] == 0, (
            f"{fmt(c['extra'])} other GROUPDQ changes; {fmt(c['sci'])} of {fmt(c['values'])} SCI "
            f"values changed")
    sec.check(f"{step}: nothing else changed", f"SCI equals the {before_suffix} product and GROUPDQ "
              f"differs from it only by those DO_NOT_USE flags", nothing_else)


def section_firstframe(ctx, sec):
    def expected(product, prev):
        def want(i, g):
            if g != 0 or ctx.ngroups <= 3:
                return np.zeros((ctx.ny, ctx.nx), bool)
            # bright_use_group1 keeps group 1 of pixels saturated by group 3: accept either
            kept = (prev.plane("GROUPDQ", i, 2) & SAT) != 0
            return ~(kept & ((product.plane("GROUPDQ", i, 0) & DNU) == 0))
        return want
    _flag_section(ctx, sec, "firstframe", "S_FRSTFR", "first group of every integration", expected,
                  "with more than 3 groups, group 1 of every pixel and integration is DO_NOT_USE, "
                  "except (bright_use_group1) pixels SATURATED by group 3",
                  "firstframe is off by default in jwst 3.0 (deprecated: rscd now flags the first "
                  "groups), and this run did not use it.")


def section_lastframe(ctx, sec):
    def expected(product, prev):
        def want(i, g):
            return np.full((ctx.ny, ctx.nx), g == ctx.ngroups - 1 and ctx.ngroups > 2)
        return want
    _flag_section(ctx, sec, "lastframe", "S_LASTFR", "final group of every integration", expected,
                  "with more than 2 groups, the final group of every pixel and integration is "
                  "DO_NOT_USE", "lastframe did not run in this exposure.")


def _rscd_skips(ctx, product):
    """{integration range label: (skip, backed-off count keyword value, integrations)}."""
    h = product.header
    out = []
    for key, bors, ints in (("INT1SKIP", "INT1BORS", [0]),
                            ("INT2SKIP", "INT2BORS", list(range(1, ctx.nints)))):
        if ints and h.get(key) is not None:
            out.append((key, int(h[key]), bors, h.get(bors), ints))
    return out


def _rscd_effective(ctx, product, skip, i):
    """Per pixel, the number of leading groups jwst flags (its back-off for saturation: one
    group fewer for each of groups skip+1 .. 1 (0-based) that is SATURATED, unless group 0 is)."""
    eff = np.full((ctx.ny, ctx.nx), skip, np.int32)
    sat0 = (product.plane("GROUPDQ", i, 0) & SAT) != 0
    for k in range(min(skip + 1, ctx.ngroups - 1), 0, -1):
        eff -= ((product.plane("GROUPDQ", i, k) & SAT) != 0) & ~sat0
    return np.maximum(eff, 0)


def section_rscd(ctx, sec):
    product = ctx.get("rscd")
    skips = _rscd_skips(ctx, product) if product is not None else []
    if skips:
        sec.table(["Keyword", "Value", "Backed off for saturation (keyword)"],
                  [(k, s, f"{b} = {v}") for k, s, b, v, _ in skips],
                  caption="Groups the RSCD reference says to skip, as the step recorded them")
    cache = {}

    def effective():
        if "eff" not in cache:
            cache["eff"] = {i: _rscd_effective(ctx, product, skip, i)
                            for _, skip, _, _, ints in skips for i in ints}
        return cache["eff"]

    def expected(prod, prev):
        if not skips:
            raise NotRun("the rscd product records no INT1SKIP keyword")
        eff = effective()

        def want(i, g):
            return g < eff[i]
        return want
    _flag_section(ctx, sec, "rscd", "S_RSCD", "first groups of each integration (INT1SKIP in "
                  "integration 1, INT2SKIP in the later ones)", expected,
                  "the first INT1SKIP (integration 1) or INT2SKIP (later integrations) groups are "
                  "DO_NOT_USE, fewer only where saturation forced jwst to back off",
                  "rscd did not run in this exposure.")

    def back_offs():
        if product is None:
            raise NotRun(f"no {ctx.products.rootname}_rscd.fits")
        if not skips:
            raise NotRun("the rscd product records no INT1SKIP keyword")
        eff, parts, ok = effective(), [], True
        for key, skip, bors, value, ints in skips:
            count = int(np.any([eff[i] < skip for i in ints], axis=0).sum())
            if value is not None:
                ok &= count == int(value)
            parts.append(f"{bors}={value}, {fmt(count)} pixels found backed off")
        return ok, "; ".join(parts)
    sec.check("rscd: saturation back-offs counted", "the number of pixels whose skipped groups were "
              "lowered because of saturation equals INT1BORS (integration 1) and INT2BORS (later)",
              back_offs)


# -------------------------------------------------------------------------------------------------
# reset
# -------------------------------------------------------------------------------------------------
def _reset_reference(ctx):
    path = ctx.reference_path("reset")
    with fits.open(path, memmap=True) as hdul:
        sci = hdul["SCI"]
        shape = sci.shape
        if len(shape) != 4 or tuple(shape[-2:]) != (ctx.ny, ctx.nx):
            raise NotRun(f"the RESET reference's SCI is {shape}, not (nints, ngroups, {ctx.ny}, "
                         f"{ctx.nx})")
        nints = int(hdul[0].header.get("NINTS") or shape[0])
        ngroups = int(hdul[0].header.get("NGROUPS") or shape[1])
        use_g = min(ngroups, ctx.ngroups, shape[1])
        use_i = min(nints, ctx.nints, shape[0])
        data = np.array(sci.section[:use_i, :use_g], dtype=np.float32)
    data[np.isnan(data)] = 0.0
    return data, nints, ngroups


def section_reset(ctx, sec):
    product, before_suffix = ctx.get("reset"), ctx.previous("reset")
    before = ctx.get(before_suffix)
    _status_table(sec, ctx, ["S_RESET", "R_RESET"])
    try:
        ref, ref_nints, ref_ngroups = _reset_reference(ctx)
    except NotRun as why:
        ref, reason = None, str(why)
        sec.para(f"The RESET reference cannot be shown: {why}")
    if ref is not None:
        groups = np.arange(ref.shape[1])
        series = [(np.nanmean(ref[i], axis=(1, 2)), f"reference integration {i + 1}",
                   dict(marker="o")) for i in range(ref.shape[0])]
        if product is not None and before is not None:
            measured = [np.mean(before.plane("SCI", 0, g).astype(np.float64)
                                - product.plane("SCI", 0, g)) for g in groups]
            series.append((measured, f"{before_suffix} - reset, integration 1",
                           dict(color="black", linestyle=":", marker="x")))
        sec.figure(_line_figure(groups, series, "Group", "Mean correction (DN)",
                                title="Reset correction per group"),
                   f"The mean RESET correction in each of the first {ref.shape[1]} groups for each "
                   f"reference integration ({ref_nints} in the reference: science integration i uses "
                   f"min(i, {ref_nints}) ), and the mean measured difference of the products "
                   f"(dotted).")
        sec.figure(plots.show_image(ref[0, 0], *plots.auto_limits(ref[0, 0], 0.5, 99.5),
                                    title="RESET reference, integration 1, group 1",
                                    stretch="linear"),
                   "The correction subtracted from the first group of the first integration.")

    def difference_is_reset():
        first, second = ctx.require(before_suffix), ctx.require("reset")
        if ref is None:
            raise NotRun(reason)
        bad, largest, unchanged_bad = 0, 0.0, 0
        for i in range(ctx.nints):
            r = ref[min(i, ref.shape[0] - 1)]
            for g in range(ctx.ngroups):
                a = first.plane("SCI", i, g)
                b = second.plane("SCI", i, g)
                if g < r.shape[0]:
                    dev = np.abs(a.astype(np.float64) - b - r[g])
                    ok = np.isfinite(a)
                    bad += int((dev[ok] > steps._ulp_tolerance(a, r[g])[ok]).sum())
                    largest = max(largest, float(dev[ok].max()) if ok.any() else 0.0)
                else:
                    unchanged_bad += int((~steps._same(a, b)).sum())
        return bad == 0 and unchanged_bad == 0, (
            f"largest |before - after - reset| = {fmt(largest)} DN; {fmt(bad)} values beyond float32 "
            f"rounding; {fmt(unchanged_bad)} values changed in groups beyond the reference's "
            f"{ref_ngroups}")
    sec.check("Reset difference equals the reference", f"{before_suffix} - reset = the RESET "
              f"reference plane (integration min(i, NINTS-1), group g < NGROUPS, NaN as 0) to "
              f"float32 rounding; later groups unchanged", difference_is_reset)

    def flags_unchanged():
        first, second = ctx.require(before_suffix), ctx.require("reset")
        changed = sum(int((first.plane("GROUPDQ", i, g) != second.plane("GROUPDQ", i, g)).sum())
                      for i, g in steps._planes(ctx))
        return changed == 0, f"{fmt(changed)} GROUPDQ values changed"
    sec.check("Reset leaves the group flags alone", "GROUPDQ equals the input's", flags_unchanged)


# -------------------------------------------------------------------------------------------------
# emicorr
# -------------------------------------------------------------------------------------------------
def _row_time(ctx):
    """Seconds between the reads of consecutive rows (10 us pixel clock)."""
    from ..emicorr.emicorr import onthefly_clocks

    clocks = onthefly_clocks(str(ctx.header.get("SUBARRAY") or "FULL").strip().upper(),
                             str(ctx.header.get("READPATT") or "FAST"))
    rowclocks = clocks[0] if clocks else ctx.nx // 4 + 8
    return rowclocks * 10e-6


def _row_means(product, i, g):
    d = product.plane("SCI", i, g).astype(np.float64) - product.plane("SCI", i, g - 1)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(d, axis=1)


def _periodogram(series, dt):
    series = series - np.nanmean(series)
    series = np.where(np.isfinite(series), series, 0.0)
    power = np.abs(np.fft.rfft(series)) ** 2 / max(1, series.size)
    return np.fft.rfftfreq(series.size, dt), power


def section_emicorr(ctx, sec):
    product, before_suffix = ctx.get("emicorr"), ctx.previous("emicorr")
    before = ctx.get(before_suffix) if before_suffix else None
    _status_table(sec, ctx, ["S_MIREMI", "R_MIREMI"])
    if product is None or before is None:
        sec.para("The EMI correction is off by default in jwst 3.0 and this run saved no "
                 f"{ctx.products.rootname}_emicorr.fits, so there is nothing to show."
                 if product is None else f"No {before_suffix} product: the correction cannot be "
                 f"measured.")
    elif ctx.ngroups >= 2:
        dt = _row_time(ctx)
        pb = np.zeros(ctx.ny // 2 + 1)
        pa = np.zeros_like(pb)
        for g in range(1, ctx.ngroups):
            f, p = _periodogram(_row_means(before, 0, g), dt)
            pb += p
            pa += _periodogram(_row_means(product, 0, g), dt)[1]
        sec.figure(_line_figure(f[1:], [(pb[1:], f"before ({before_suffix})", dict(color="0.5")),
                                        (pa[1:], "after emicorr", dict(color="C0"))],
                                "Frequency (Hz)", "Power (DN^2)", title="Row-mean group "
                                "differences: periodogram", logy=True),
                   f"Periodogram of the mean over each row of the difference between consecutive "
                   f"groups (integration 1, summed over groups), with rows {fmt(dt * 1e6, 4)} us "
                   f"apart: EMI shows as peaks (e.g. 218 Hz and harmonics, aliased by the row "
                   f"sampling) that the correction removes.")
    cache = {}

    def corrections():
        if "c" not in cache:
            if product is None:
                raise NotRun(f"no {ctx.products.rootname}_emicorr.fits (emicorr is off by default)")
            prev = ctx.require(before_suffix)
            nan_new = rough = noise = 0.0
            changed_dq = 0
            rough_list, noise_list = [], []
            last = None
            for i, g in steps._planes(ctx):
                b = prev.plane("SCI", i, g).astype(np.float64)
                a = product.plane("SCI", i, g).astype(np.float64)
                nan_new += int((np.isfinite(b) & ~np.isfinite(a)).sum())
                changed_dq += int((prev.plane("GROUPDQ", i, g) != product.plane("GROUPDQ", i, g)).sum())
                corr = b - a
                # the noise of the data: a group difference, free of the scene
                step = b - last if g > 0 else None
                last = b
                if step is None:
                    continue
                # each amplifier reads columns a, a+4, ...: consecutive clocks along a row
                for amp in range(4):
                    c = corr[:, amp::4]
                    d = step[:, amp::4]
                    if c.shape[1] >= 3:
                        rough_list.append(np.diff(c, 2, axis=1).ravel())
                        noise_list.append(np.diff(d, 2, axis=1).ravel())
            rough = steps.robust_std(np.concatenate(rough_list)) if rough_list else 0.0
            noise = steps.robust_std(np.concatenate(noise_list)) if noise_list else 0.0
            cache["c"] = dict(nan=int(nan_new), dq=changed_dq, rough=rough, noise=noise)
        return cache["c"]

    def no_nan():
        c = corrections()
        return c["nan"] == 0 and c["dq"] == 0, (f"{fmt(c['nan'])} finite values became NaN; "
                                                f"{fmt(c['dq'])} GROUPDQ values changed")
    sec.check("emicorr adds no NaN and changes no flags", "every finite value stays finite and "
              "GROUPDQ equals the input's", no_nan)

    def smooth():
        c = corrections()
        return c["rough"] <= 0.1 * c["noise"] + 1e-3, (
            f"pixel-to-pixel roughness of the correction (robust sigma of its second difference "
            f"along each amplifier's read sequence) {fmt(c['rough'], 3)} DN, against "
            f"{fmt(c['noise'], 3)} DN for the data")
    sec.check("emicorr subtracts a smooth waveform", "the correction varies smoothly with read "
              "time: its second-difference scatter is at most 10% of the data's", smooth)


# -------------------------------------------------------------------------------------------------
# refpix
# -------------------------------------------------------------------------------------------------
def _refcolumn_offsets(ctx, product, pixeldq):
    """{(amplifier, parity): [median over the 8 reference columns of (group g - group 0)]}."""
    cols = np.array([c for c in REF_COLUMNS if c < ctx.nx])
    good = (pixeldq[:, cols] & np.uint32(DNU)) == 0
    out = {(a, p): [] for a in range(4) for p in range(2)}
    first = product.read("SCI", (0, 0, slice(None), cols)).astype(np.float64)
    for g in range(1, ctx.ngroups):
        d = product.read("SCI", (0, g, slice(None), cols)).astype(np.float64) - first
        for a in range(4):
            for p in range(2):
                sel = d[p::2][:, cols % 4 == a][good[p::2][:, cols % 4 == a]]
                out[(a, p)].append(float(np.median(sel)) if sel.size else np.nan)
    noise = steps.robust_std(d[good]) / np.sqrt(max(1, good.sum() / 8))
    return {k: np.array(v) for k, v in out.items()}, noise


def section_refpix(ctx, sec):
    product, before_suffix = ctx.get("refpix"), ctx.previous("refpix")
    before = ctx.get(before_suffix)
    _status_table(sec, ctx, ["S_REFPIX"])
    subarray = is_subarray(ctx)
    if subarray:
        sec.para(f"Subarray {ctx.header.get('SUBARRAY')}: jwst skips the MIRI reference-pixel "
                 f"correction for subarrays (they have no usable reference columns), so the refpix "
                 f"product must equal its input.")
    elif product is not None and before is not None and ctx.ngroups >= 2:
        dq = product.plane("PIXELDQ").astype(np.uint32)
        off_b, _ = _refcolumn_offsets(ctx, before, dq)
        off_a, _ = _refcolumn_offsets(ctx, product, dq)
        groups = np.arange(1, ctx.ngroups)
        series = []
        for (a, p), values in off_b.items():
            colour = f"C{a}"
            series.append((values, f"amp {'ABCD'[a]} {'odd' if p else 'even'} rows",
                           dict(color=colour, linestyle="-" if p else "--")))
        series += [(v, None, dict(color="black", linewidth=0.8)) for v in off_a.values()]
        sec.figure(_line_figure(groups, series, "Group", "Median of (group - group 1) (DN)",
                                title="Reference-column drifts"),
                   "The median drift from the first group of the 4+4 reference columns, for each "
                   "amplifier (column mod 4) and row parity, before refpix (coloured) and after "
                   "(black): the correction removes these drifts from every column of the "
                   "amplifier.")

    def skipped_unchanged():
        if not subarray:
            raise NotRun("full frame: the correction runs (see the next check)")
        first, second = ctx.require(before_suffix), ctx.require("refpix")
        ndiff, largest, planes = steps.compare_sci(ctx, first, second)
        status = _status(ctx, "S_REFPIX")
        return status.upper() == "SKIPPED" and ndiff == 0, (
            f"S_REFPIX={status}; {fmt(ndiff)} values differ from the {before_suffix} product")
    sec.check("refpix skipped for the subarray", "subarrays: S_REFPIX = SKIPPED and the SCI ramp "
              "equals the input", skipped_unchanged)

    def offsets_removed():
        if subarray:
            raise NotRun(f"subarray {ctx.header.get('SUBARRAY')}: jwst skips refpix")
        if ctx.ngroups < 2:
            raise NotRun("one group: no drift to remove")
        first, second = ctx.require(before_suffix), ctx.require("refpix")
        dq = second.plane("PIXELDQ").astype(np.uint32)
        off_b, _ = _refcolumn_offsets(ctx, first, dq)
        off_a, noise = _refcolumn_offsets(ctx, second, dq)
        worst_b = max(float(np.nanmax(np.abs(v))) for v in off_b.values())
        worst_a = max(float(np.nanmax(np.abs(v))) for v in off_a.values())
        ok = worst_a <= max(0.5 * worst_b, 4 * noise)
        return ok, (f"largest |median drift| of the reference columns over the 4 amplifiers x "
                    f"odd/even rows x {ctx.ngroups - 1} groups: {fmt(worst_b, 3)} DN before, "
                    f"{fmt(worst_a, 3)} DN after (statistical error {fmt(noise, 2)} DN)")
    sec.check("Amplifier and odd/even-row offsets removed", "full frame: in the 4+4 reference "
              "columns, the largest per-amplifier (column mod 4), per-row-parity median drift from "
              "group 1 is at least halved, or within 4 sigma of 0", offsets_removed)


# -------------------------------------------------------------------------------------------------
# jump: showers
# -------------------------------------------------------------------------------------------------
def _shower_regions(ctx, product):
    """[(size, integration, group, (y0, y1, x0, x1), mask of the region)] of every connected
    JUMP_DET region of at least SHOWER_MIN_AREA pixels, largest first."""
    if "showers" in ctx._cache:
        return ctx._cache["showers"]
    from scipy import ndimage

    found = []
    for i, g in steps._planes(ctx):
        flags = (product.plane("GROUPDQ", i, g) & JUMP) != 0
        if flags.sum() < SHOWER_MIN_AREA:
            continue
        labels, n = ndimage.label(flags)
        sizes = np.bincount(labels.ravel())[1:]
        for k in np.nonzero(sizes >= SHOWER_MIN_AREA)[0]:
            box = ndimage.find_objects((labels == k + 1).astype(np.int8))[0]
            found.append((int(sizes[k]), i, g, (box[0].start, box[0].stop, box[1].start,
                                                box[1].stop)))
    found.sort(key=lambda r: -r[0])
    ctx._cache["showers"] = found
    return found


def _truth_showers(ctx):
    if ctx.truth_path is None:
        return None
    try:
        with fits.open(ctx.truth_path) as hdul:
            if "SHOWERS" not in hdul:
                return None
            return np.array(hdul["SHOWERS"].data)
    except OSError:
        return None


def section_showers(ctx, sec):
    product = ctx.get("jump")
    if product is None:
        steps._missing(sec, ctx, "jump", "the shower flags")
        regions = []
    else:
        regions = _shower_regions(ctx, product)
        truth = _truth_showers(ctx)
        in_groups = {(i, g) for _, i, g, _ in regions}
        sec.para(f"{fmt(len(regions))} connected JUMP_DET regions of at least {SHOWER_MIN_AREA} "
                 f"pixels in {len(in_groups)} integration-groups (cosmic rays flag a few to a few "
                 f"tens of pixels; the jump step flags showers, with find_showers=True, as ellipses "
                 f"and keeps them flagged for time_masked_after_shower)."
                 + ("" if regions else " None: shower flagging was off (the default) or found "
                    "nothing."))
        if regions:
            size, i, g, (y0, y1, x0, x1) = regions[0]
            pad = 20
            y0, y1 = max(0, y0 - pad), min(ctx.ny, y1 + pad)
            x0, x1 = max(0, x0 - pad), min(ctx.nx, x1 + pad)
            cut = ((product.read("GROUPDQ", (i, g, slice(y0, y1), slice(x0, x1))) & JUMP) != 0)
            fig = plots.new_figure(6.0, 5.6)
            ax = fig.add_subplot(1, 1, 1)
            ax.imshow(cut, origin="lower", cmap="Greys", extent=(x0 - .5, x1 - .5, y0 - .5, y1 - .5),
                      interpolation="nearest")
            shown = 0
            if truth is not None:
                from matplotlib.patches import Circle

                for s in truth:
                    if (int(s["integration"]) == i and y0 - s["radius"] <= s["y"] <= y1 + s["radius"]
                            and x0 - s["radius"] <= s["x"] <= x1 + s["radius"]):
                        ax.add_patch(Circle((s["x"], s["y"]), s["radius"], fill=False, color="red"))
                        ax.annotate(f"group {int(s['group']) + 1}, {float(s['amplitude']):.1f} DN",
                                    (s["x"], s["y"]), color="red", fontsize=8, ha="center")
                        shown += 1
            ax.set_xlim(x0 - .5, x1 - .5)
            ax.set_ylim(y0 - .5, y1 - .5)
            ax.set_title(f"Largest flagged region: {size} pixels, integration {i + 1}, group {g + 1}")
            ax.set_xlabel("x (pixel)")
            ax.set_ylabel("y (pixel)")
            sec.figure(plots.to_data_uri(fig),
                       "JUMP_DET flags (black) of the largest flagged region, in its group"
                       + (f"; red circles: the {shown} injected shower(s) of the truth's SHOWERS "
                          f"table nearby (label: group, amplitude)" if truth is not None else "")
                       + ".")
            rows = [(s, i + 1, g + 1, f"x {x0}-{x1 - 1}, y {y0}-{y1 - 1}")
                    for s, i, g, (y0, y1, x0, x1) in regions[:10]]
            sec.table(["Pixels", "Integration", "Group", "Bounding box"], rows,
                      caption="The largest flagged regions")

    def injected_flagged():
        jump = ctx.require("jump")
        truth = _truth_showers(ctx)
        if truth is None:
            raise NotRun("no truth file with a SHOWERS table")
        if len(truth) == 0:
            raise NotRun("the truth has no injected shower")
        if not _shower_regions(ctx, jump):
            raise NotRun("no flagged region of 100 pixels or more: shower flagging was not run "
                         "(jump find_showers is off by default)")
        from .accuracy import noise_per_difference

        sigma_diff, source = noise_per_difference(ctx)
        sigma = sigma_diff / np.sqrt(RING_PIXELS)
        yy, xx = np.mgrid[:ctx.ny, :ctx.nx]
        strong, hit, rows = 0, 0, []
        for s in truth:
            i, g = int(s["integration"]), int(s["group"])
            if not (0 <= i < ctx.nints and 0 < g < ctx.ngroups):
                continue
            inside = (yy - s["y"]) ** 2 + (xx - s["x"]) ** 2 < s["radius"] ** 2
            gdq = jump.plane("GROUPDQ", i, g)
            usable = inside & ((gdq & (DNU | SAT)) == 0)
            if float(s["amplitude"]) < SHOWER_SIGMA * sigma or usable.sum() < inside.sum() / 2:
                continue
            strong += 1
            fraction = float(((gdq & JUMP) != 0)[inside].mean())
            hit += fraction >= SHOWER_FLAGGED_FRACTION
            rows.append(f"({float(s['x']):.0f}, {float(s['y']):.0f}) group {g + 1}: "
                        f"{100 * fraction:.0f}%")
        if strong == 0:
            raise NotRun(f"no injected shower brighter than {SHOWER_SIGMA:g} x {fmt(sigma, 3)} DN")
        return hit == strong, (f"{hit} of {strong} showers of at least {SHOWER_SIGMA:g} sigma "
                               f"({fmt(SHOWER_SIGMA * sigma, 3)} DN; sigma = group-difference noise "
                               f"{fmt(sigma_diff, 3)} DN ({source}) / sqrt({RING_PIXELS})) flagged; "
                               f"disc fraction flagged: " + ", ".join(rows))
    sec.check("Injected showers flagged", f"every injected shower brighter than {SHOWER_SIGMA:g} "
              f"x the group-difference noise averaged over {RING_PIXELS} pixels has at least "
              f"{100 * SHOWER_FLAGGED_FRACTION:g}% of its disc flagged JUMP_DET in its group",
              injected_flagged)


def section_jump(ctx, sec):
    """The near-infrared jump section; shower flagging (jwst's ellipses and the groups masked
    after a shower) may put JUMP_DET on DO_NOT_USE groups, so the check on those excludes the
    shower regions."""
    steps.section_jump(ctx, sec)

    def no_jump_on_dnu():
        jump = ctx.require("jump")
        regions = _shower_regions(ctx, jump)
        total, outside = ctx.flag_summary("jump")["totals"]["JUMP&DNU"], 0
        if total:
            from scipy import ndimage

            for i, g in steps._planes(ctx):
                gdq = jump.plane("GROUPDQ", i, g)
                both = ((gdq & JUMP) != 0) & ((gdq & DNU) != 0)
                if both.any():
                    labels, _ = ndimage.label((gdq & JUMP) != 0)
                    sizes = np.bincount(labels.ravel())
                    outside += int((both & (sizes[labels] < SHOWER_MIN_AREA)).sum())
        return outside == 0, (f"{fmt(total)} JUMP_DET flags on DO_NOT_USE groups, "
                              f"{fmt(total - outside)} of them in shower regions "
                              f"({len(regions)} regions of {SHOWER_MIN_AREA}+ pixels); "
                              f"{fmt(outside)} elsewhere")
    name = "No JUMP flag on a DO_NOT_USE group"
    sec.checks = [c for c in sec.checks if c.name != name]
    sec.check(name, "no group outside the flagged shower regions has both JUMP_DET and DO_NOT_USE",
              no_jump_on_dnu)


def _accuracy(ctx, sec):
    from .accuracy import section_accuracy

    section_accuracy(ctx, sec)


#: (id, title, summary, builder) of a MIRI exposure, in the order its pipeline runs the steps.
MIRI_SECTIONS = (
    ("overview", "The exposure and the run",
     "What was processed, which steps ran (in MIRI's order), which products were saved and which "
     "reference files were used.", section_overview),
    ("rate", "calwebb_detector1 output: the rate image",
     "The primary output of Stage 1: a count-rate image in DN/s, and the final group of the "
     "linearity-corrected ramp.", steps.section_rate),
    ("dq_init", "Data quality initialization (dq_init)",
     "The DQ flags of the MASK reference are copied into PIXELDQ; the science data are not "
     "changed.", steps.section_dq_init),
    ("emicorr", "EMI correction (emicorr)",
     "Off by default: the electromagnetic interference of the detector electronics (a waveform "
     "at known frequencies, phase-folded over the read times) is fitted and subtracted.",
     section_emicorr),
    ("saturation", "Saturation flagging (saturation)",
     "Groups whose signal reaches the SATURATION reference threshold are flagged SATURATED, from "
     "that group on, and in the neighbouring pixels.", steps.section_saturation),
    ("superbias", "Superbias subtraction (superbias)",
     "Not a MIRI step.", not_for_miri("superbias", "S_SUPERB", "the MIRI detectors' bias is "
                                      "removed with the reset anomaly, dark and first groups.")),
    ("firstframe", "First-group flagging (firstframe)",
     "Off by default (deprecated): the first group of every integration is flagged DO_NOT_USE.",
     section_firstframe),
    ("lastframe", "Last-group flagging (lastframe)",
     "The final group of every integration, affected by the reset of the next, is flagged "
     "DO_NOT_USE.", section_lastframe),
    ("reset", "Reset anomaly correction (reset)",
     "The RESET reference (per integration, for the first groups) is subtracted.", section_reset),
    ("linearity", "Linearity correction (linearity)",
     "A per-pixel polynomial makes the signal linear; saturated groups are left alone.",
     steps.section_linearity),
    ("rscd", "Reset switch charge decay (rscd)",
     "The first groups of each integration, which the RSCD reference says to skip, are flagged "
     "DO_NOT_USE.", section_rscd),
    ("dark_current", "Dark current subtraction (dark_current)",
     "The 4-D MIRI DARK reference is subtracted group by group, one set of planes per "
     "integration.", steps.section_dark),
    ("refpix", "Reference pixel subtraction (refpix)",
     "Full frame: the drifts of the 4+4 reference columns, per amplifier and row parity, are "
     "subtracted; skipped for subarrays.", section_refpix),
    ("jump", "Cosmic-ray flagging (jump)",
     "Jumps in the ramps are flagged JUMP_DET in GROUPDQ; the data are not modified.",
     section_jump),
    ("jump_showers", "Shower flagging (jump, find_showers)",
     "Off by default: large faint extended events are flagged JUMP_DET over fitted ellipses.",
     section_showers),
    ("persistence", "Persistence (persistence)",
     "Not run on MIRI data.", steps.section_persistence),
    ("clean_flicker_noise", "1/f noise cleaning (clean_flicker_noise)",
     "Off by default: a background-only fit of the 1/f (flicker) noise in each group difference "
     "is removed from the ramp.", steps.section_clean_flicker_noise),
    ("ramp_fit", "Ramp fitting (ramp_fit)",
     "Each ramp is fitted between the flagged groups; the slopes become the rate and rateints "
     "products.", steps.section_ramp_fit),
    ("zero_nan", "Pixels with a zero or NaN slope",
     "Which pixels have no valid slope, and why.", steps.section_zero_nan),
    ("accuracy", "Accuracy against the injected truth",
     "Slopes, cosmic-ray detection and saturation groups compared with what the simulator "
     "injected.", _accuracy),
)
