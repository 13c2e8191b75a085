"""``write_report``: the validation notebook as one self-contained HTML file."""
from __future__ import annotations

import logging
import os
import time

from .. import __version__
from ..runtime import termination
from ..errors import Ramp2SlopeError
from . import steps
from .accuracy import section_accuracy
from .checks import FAIL, Check
from .context import Context
from .document import Section, render
from .products import locate

log = logging.getLogger("ramp2slope")

#: (id, title, summary, builder), in the notebook's order.
SECTIONS = (
    ("overview", "The exposure and the run",
     "What was processed, which steps ran, which products were saved and which reference files "
     "were used.", steps.section_overview),
    ("rate", "calwebb_detector1 output: the rate image",
     "The primary output of Stage 1: a count-rate image in DN/s, and the final group of the "
     "linearity-corrected ramp.", steps.section_rate),
    ("dq_init", "Data quality initialization (dq_init)",
     "The DQ flags of the MASK reference are copied into PIXELDQ; the science data are not "
     "changed.", steps.section_dq_init),
    ("saturation", "Saturation flagging (saturation)",
     "Groups whose signal reaches the SATURATION reference threshold are flagged SATURATED, from "
     "that group on, and in the neighbouring pixels.", steps.section_saturation),
    ("superbias", "Superbias subtraction (superbias)",
     "The SUPERBIAS reference frame is subtracted from every group.", steps.section_superbias),
    ("refpix", "Reference pixel subtraction (refpix)",
     "The top and bottom reference rows remove amplifier and odd/even column offsets; the side "
     "reference columns remove 1/f row noise.", steps.section_refpix),
    ("linearity", "Linearity correction (linearity)",
     "A per-pixel polynomial makes the signal linear; saturated groups are left alone.",
     steps.section_linearity),
    ("persistence", "Persistence (persistence)",
     "Skipped in the notebook, and by default in jwst 3.0.", steps.section_persistence),
    ("dark_current", "Dark current subtraction (dark_current)",
     "The DARK reference is subtracted group by group.", steps.section_dark),
    ("jump", "Cosmic-ray flagging (jump)",
     "Jumps in the ramps are flagged JUMP_DET in GROUPDQ; the data are not modified.",
     steps.section_jump),
    ("picture_frame", "Picture frame (picture_frame)",
     "Off by default, NIRSpec full frames only: the thermal picture frame (a brighter border), "
     "scaled to each group's centre and edge background, is subtracted.",
     steps.section_picture_frame),
    ("clean_flicker_noise", "1/f noise cleaning (clean_flicker_noise)",
     "Off by default: a background-only fit of the 1/f (flicker) noise in each group difference "
     "is removed from the ramp.", steps.section_clean_flicker_noise),
    ("ramp_fit", "Ramp fitting (ramp_fit)",
     "Each ramp is fitted between the flagged groups; the slopes become the rate and rateints "
     "products and the intercepts go to the optional fitopt product.", steps.section_ramp_fit),
    ("zero_nan", "Pixels with a zero or NaN slope",
     "The notebook's last investigation: which pixels have no valid slope, and why.",
     steps.section_zero_nan),
    ("accuracy", "Accuracy against the injected truth",
     "Slopes, cosmic-ray detection and saturation groups compared with what the simulator "
     "injected.", section_accuracy),
)


def _default_out(products, given):
    if os.path.isdir(os.fspath(given)):
        return os.path.join(os.fspath(given), "report.html")
    return f"{products.root}_report.html"


def _find_truth(products, truth):
    if truth is not None:
        truth = os.fspath(truth)
        if not os.path.isfile(truth):
            raise Ramp2SlopeError(f"{truth}: no such file (the truth file given with --truth)")
        return truth, "given"
    folders = [products.folder, os.path.dirname(os.path.abspath(products.folder))]
    if products.uncal:
        folders.insert(0, os.path.dirname(os.path.abspath(products.uncal)))
    for folder in folders:
        candidate = os.path.join(folder, f"{products.rootname}_truth.fits")
        if os.path.isfile(candidate):
            return candidate, "found next to the products"
    return None, None


def sections_for(ctx):
    """The sections of this exposure's instrument: MIRI runs other steps, in another order."""
    if ctx.miri:
        from .miri import MIRI_SECTIONS

        return MIRI_SECTIONS
    return SECTIONS


#: The sections of the steps whose products a superstripe exposure saves in its stripe layout
#: (refpix collates the stripes): dq_init and saturation have their own forms there (superbias'
#: and refpix's own sections read the stripes too: refpix's compares the collated stripes of
#: the superbias product with its collated product).
STRIPED_SECTIONS = {"dq_init": steps.section_dq_init_striped,
                    "saturation": steps.section_saturation_striped,
                    "superbias": steps.section_superbias,
                    "refpix": steps.section_refpix}


def build_sections(ctx):
    """Every section, built in order; a section that fails to build says so and fails a check."""
    sections = []
    for section_id, title, summary, builder in sections_for(ctx):
        section = Section(section_id, title, summary)
        start = time.perf_counter()
        log.info("report: %s", title)   # some sections take seconds: the log keeps talking
        if ctx.superstripe and section_id in STRIPED_SECTIONS:
            builder = STRIPED_SECTIONS[section_id]
        try:
            builder(ctx, section)
        except Exception as exc:  # keep the rest of the report
            log.debug("report section %s failed", section_id, exc_info=True)
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            section.error(f"This section could not be completed: {message}")
            section.checks.append(Check(section_id, "Section built", "the section's figures and "
                                        "numbers could be computed", FAIL, message))
        log.debug("report section %s: %.2f s", section_id, time.perf_counter() - start)
        sections.append(section)
    return sections


def write_report(products, truth=None, out=None, uncal=None):
    """Write the validation report of a run and return the path of the HTML file.

    Parameters
    ----------
    products : path
        The folder the run saved its products in (``<root>_dq_init.fits`` ... ``_rate.fits``,
        as written with every step's ``save_results`` and ramp_fit ``save_opt``), or the root
        name prefix ``<folder>/<root>``, or any one of the product files.
    truth : path, optional
        The simulator's ``<root>_truth.fits``, for the accuracy section. When not given, a file
        of that name next to the raw exposure or the products is used if it exists.
    out : path, optional
        The HTML file to write; default ``<folder>/report.html`` (``<root>_report.html`` when
        ``products`` is a root name).
    uncal : path, optional
        The raw exposure, for the dq_init check; default ``<root>_uncal.fits`` next to the
        products or in their parent folder.
    """
    start = time.perf_counter()
    product_set = locate(products, uncal)
    truth_path, truth_origin = _find_truth(product_set, truth)
    out = os.fspath(out) if out else _default_out(product_set, products)
    ctx = Context(product_set, truth_path)
    try:
        sections = build_sections(ctx)
        inputs = [
            ("Products", f"{product_set.rootname}_*.fits in {os.path.basename(os.path.abspath(product_set.folder))}/ "
                         + (f"({len(product_set.paths)} found)" if ctx.miri else
                            f"({len(product_set.paths)} of 12 found)")),
            ("Raw exposure", os.path.basename(product_set.uncal) if product_set.uncal else
             "not found (the dq_init check is not run)"),
            ("Truth", f"{os.path.basename(truth_path)} ({truth_origin})" if truth_path else
             "none (the accuracy section is not run)"),
        ]
        page = render(f"calwebb_detector1 validation report: {product_set.rootname}", inputs,
                      sections, __version__, elapsed=time.perf_counter() - start)
    finally:
        product_set.close()
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    partial = out + ".part"
    with termination.deferred():     # a few milliseconds: never leave the .part behind
        try:
            with open(partial, "w", encoding="utf-8") as handle:
                handle.write(page)
            os.replace(partial, out)
        except BaseException:
            if os.path.exists(partial):
                os.unlink(partial)
            raise
    failed = sum(c.status == FAIL for s in sections for c in s.checks)
    log.info("report written to %s in %.1f s (%d checks failed)", out, time.perf_counter() - start,
             failed)
    return out
