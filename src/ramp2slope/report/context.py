"""What every section of the report shares: the products, the exposure's numbers, the reference
files recorded in the headers, and per-pixel summaries computed once from the group flags."""
from __future__ import annotations

import os

import numpy as np

from ..datamodels import dqflags
from ..datamodels.models import ImageModel
from ..errors import Ramp2SlopeError
from .checks import NotRun

DNU = dqflags.group["DO_NOT_USE"]
SAT = dqflags.group["SATURATED"]
JUMP = dqflags.group["JUMP_DET"]
REFPIX = dqflags.pixel["REFERENCE_PIXEL"]

#: reference type -> the primary-header keyword that records the file used
REF_KEYWORDS = {
    "mask": "R_MASK", "saturation": "R_SATURA", "superbias": "R_SUPERB", "linearity": "R_LINEAR",
    "dark": "R_DARK", "gain": "R_GAIN", "readnoise": "R_READNO", "reset": "R_RESET",
    "rscd": "R_RSCD", "emicorr": "R_MIREMI",
}

#: The ramp products of each instrument's steps, in the order the pipeline runs them (jwst 3.0).
NIR_STEPS = ("dq_init", "saturation", "superbias", "refpix", "linearity", "dark_current", "jump")
MIRI_STEPS = ("dq_init", "emicorr", "saturation", "firstframe", "lastframe", "reset", "linearity",
              "rscd", "dark_current", "refpix", "jump")
MIRI_STATUS = {"dq_init": "S_DQINIT", "emicorr": "S_MIREMI", "saturation": "S_SATURA",
               "firstframe": "S_FRSTFR", "lastframe": "S_LASTFR", "reset": "S_RESET",
               "linearity": "S_LINEAR", "rscd": "S_RSCD", "dark_current": "S_DARK",
               "refpix": "S_REFPIX", "jump": "S_JUMP"}
# MIRI-only products: products.py does not list them, so the Context registers them itself
_MIRI_ONLY = tuple(s for s in MIRI_STEPS if s not in NIR_STEPS)

# Latest product first: the most complete header of the run.
_HEADER_ORDER = ("rate", "rateints", "0_ramp_fit", "1_ramp_fit", "jump", "dark_current",
                 "linearity", "refpix", "superbias", "saturation", "dq_init", "fitopt") + _MIRI_ONLY


class Context:
    """The products of one run plus lazily computed, shared per-pixel summaries."""

    def __init__(self, products, truth_path=None):
        self.products = products
        self.truth_path = truth_path
        self.header = None
        self.header_source = None
        for suffix in _HEADER_ORDER:
            product = products.get(suffix)
            if product is not None:
                self.header, self.header_source = product.header, suffix
                break
        if self.header is None:
            raise Ramp2SlopeError(f"{products.root}: no readable product")
        self.ramp_shape = self._ramp_shape()
        self.nints, self.ngroups, self.ny, self.nx = self.ramp_shape
        self.tgroup = _float(self.header.get("TGROUP"))
        self.tframe = _float(self.header.get("TFRAME"))
        self.nframes = int(self.header.get("NFRAMES") or 1)
        self.groupgap = int(self.header.get("GROUPGAP") or 0)
        self.instrument = str(self.header.get("INSTRUME") or "").strip().upper()
        self._cache = {}

    @property
    def miri(self):
        return self.instrument == "MIRI"

    @property
    def superstripe(self):
        """The number of superstripes (0: none), from the products saved before refpix's
        collation (the later ones no longer have SSTR_NST)."""
        if "superstripe" not in self._cache:
            count = 0
            for suffix in ("dq_init", "saturation", "superbias", "refpix"):
                product = self.products.get(suffix)
                if product is not None:
                    count = max(count, int(product.header.get("SSTR_NST") or 0))
            uncal = self.products.open_uncal() if not count else None
            if uncal is not None:
                count = int(uncal.header.get("SSTR_NST") or 0)
            self._cache["superstripe"] = count
        return self._cache["superstripe"]

    def stripe_layout(self):
        """The superstripe layout, from the first product (or raw exposure) saved before the
        collation; None when there is none."""
        from ..references.stripes import StripeLayout

        for suffix in ("dq_init", "saturation", "superbias", "refpix"):
            product = self.products.get(suffix)
            if product is not None and int(product.header.get("SSTR_NST") or 0) > 0:
                return StripeLayout.from_header(product.header)
        uncal = self.products.open_uncal()
        if uncal is not None and int(uncal.header.get("SSTR_NST") or 0) > 0:
            return StripeLayout.from_header(uncal.header)
        return None

    @property
    def step_order(self):
        return MIRI_STEPS if self.miri else NIR_STEPS

    def previous(self, suffix):
        """The product a step's input was saved as: the step just before it (NIR), or for MIRI,
        whose optional steps (emicorr, firstframe) often did not run, the nearest earlier step
        whose product exists (the immediately earlier one when none does, to name it)."""
        order = self.step_order
        earlier = order[:order.index(suffix)]
        if not earlier:
            return None
        if self.miri:
            for candidate in reversed(earlier):
                # a step that ran without saving its product is the input: named, then missing
                if self.products.has(candidate) or str(
                        self.keyword(MIRI_STATUS[candidate])).upper() == "COMPLETE":
                    return candidate
        return earlier[-1]

    # -- basic facts ------------------------------------------------------------------------------
    def _ramp_shape(self):
        for suffix in ("jump", "dark_current", "linearity", "refpix", "superbias", "saturation",
                       "dq_init") + _MIRI_ONLY:
            product = self.products.get(suffix)
            if product is not None:
                return product.shape("SCI")
        nints = int(self.header.get("NINTS") or 1)
        ngroups = int(self.header.get("NGROUPS") or 0)
        for suffix in ("rate", "rateints", "0_ramp_fit", "1_ramp_fit"):
            product = self.products.get(suffix)
            if product is not None:
                ny, nx = product.shape("SCI")[-2:]
                return nints, ngroups, ny, nx
        raise Ramp2SlopeError(f"{self.products.root}: cannot tell the exposure's shape")

    def get(self, suffix):
        return self.products.get(suffix)

    def require(self, suffix):
        """The product, or NotRun naming the missing file."""
        product = self.products.get(suffix)
        if product is None:
            raise NotRun(f"no {self.products.rootname}_{suffix}.fits")
        return product

    def keyword(self, key):
        """A primary-header value from the latest product that has it."""
        for suffix in _HEADER_ORDER:
            product = self.products.get(suffix)
            if product is not None and product.header.get(key) is not None:
                return product.header.get(key)
        return None

    @property
    def xstart(self):
        return int(self.header.get("SUBSTRT1") or 1)

    @property
    def ystart(self):
        return int(self.header.get("SUBSTRT2") or 1)

    def group_times(self):
        """Time of each group relative to group 0 (s), as the notebook builds it."""
        if not self.tgroup:
            raise NotRun("the products have no TGROUP keyword")
        return np.arange(self.ngroups) * self.tgroup

    # -- pixel data quality -------------------------------------------------------------------------
    def pixeldq(self):
        """PIXELDQ of the latest ramp product (or the rate DQ), cached."""
        if "pixeldq" not in self._cache:
            value = None
            for suffix in ("jump", "dark_current", "linearity", "refpix", "superbias", "saturation",
                           "dq_init") + _MIRI_ONLY:
                product = self.products.get(suffix)
                if product is not None and product.has("PIXELDQ"):
                    value = product.plane("PIXELDQ").astype(np.uint32)
                    break
            if value is None and self.products.get("rate") is not None:
                value = self.products.get("rate").plane("DQ").astype(np.uint32)
            self._cache["pixeldq"] = value
        return self._cache["pixeldq"]

    def science_mask(self):
        """True on science pixels (not REFERENCE_PIXEL)."""
        dq = self.pixeldq()
        if dq is None:
            return np.ones((self.ny, self.nx), bool)
        return (dq & REFPIX) == 0

    # -- group-flag summaries ---------------------------------------------------------------------
    def flag_summary(self, suffix):
        """Per-pixel counts of SAT / DNU / JUMP groups (integration 0), the first SAT group of
        every integration, the pixels with a JUMP in any integration, and total counts."""
        key = ("flags", suffix)
        if key not in self._cache:
            product = self.require(suffix)
            nints, ngroups = self.nints, self.ngroups
            shape = (self.ny, self.nx)
            sat0 = np.zeros(shape, np.int16)
            dnu0 = np.zeros(shape, np.int16)
            jump0 = np.zeros(shape, np.int16)
            jump_any = np.zeros(shape, bool)
            sat_any = np.zeros(shape, bool)
            sat_kept_any = np.zeros(shape, bool)  # SATURATED in a group not DO_NOT_USE
            first_sat = np.full((nints,) + shape, -1, np.int16)
            totals = {"SAT": 0, "DNU": 0, "JUMP": 0, "JUMP&DNU": 0, "JUMP&SAT": 0}
            for i in range(nints):
                for g in range(ngroups):
                    gdq = product.plane("GROUPDQ", i, g)
                    sat = (gdq & SAT) != 0
                    dnu = (gdq & DNU) != 0
                    jump = (gdq & JUMP) != 0
                    totals["SAT"] += int(sat.sum())
                    totals["DNU"] += int(dnu.sum())
                    totals["JUMP"] += int(jump.sum())
                    totals["JUMP&DNU"] += int((jump & dnu).sum())
                    totals["JUMP&SAT"] += int((jump & sat).sum())
                    jump_any |= jump
                    sat_any |= sat
                    sat_kept_any |= sat & ~dnu
                    first_sat[i][sat & (first_sat[i] < 0)] = g
                    if i == 0:
                        sat0 += sat
                        dnu0 += dnu
                        jump0 += jump
            self._cache[key] = dict(sat0=sat0, dnu0=dnu0, jump0=jump0, jump_any=jump_any,
                                    sat_any=sat_any, sat_kept_any=sat_kept_any,
                                    first_sat=first_sat, totals=totals)
        return self._cache[key]

    # -- reference files ------------------------------------------------------------------------------
    def reference_path(self, reftype):
        """The reference file recorded in the products' R_* keyword, found on this machine.

        Looked for as recorded, then by its base name next to the products, next to the raw
        exposure, in their ``refs/`` folders and in ``$RAMP2SLOPE_REFDIR``. Raises NotRun
        (saying which keyword and name) when it cannot be found.
        """
        keyword = REF_KEYWORDS[reftype]
        value = self.keyword(keyword)
        if value is None:
            raise NotRun(f"the products record no {reftype.upper()} reference ({keyword} is missing)")
        value = str(value).strip()
        if value.upper() == "N/A":
            raise NotRun(f"{keyword} = N/A: the run used no {reftype.upper()} reference")
        name = value[len("crds://"):] if value.startswith("crds://") else value
        base = os.path.basename(name)
        folders = [self.products.folder, os.path.join(self.products.folder, "refs"),
                   os.path.join(os.path.dirname(os.path.abspath(self.products.folder)), "refs")]
        if self.products.uncal:
            folder = os.path.dirname(os.path.abspath(self.products.uncal))
            folders += [folder, os.path.join(folder, "refs")]
        if os.environ.get("RAMP2SLOPE_REFDIR"):
            folders.append(os.environ["RAMP2SLOPE_REFDIR"])
        candidates = ([name] if os.path.isabs(name) else []) + [os.path.join(f, base) for f in folders]
        for candidate in candidates:
            if os.path.isfile(candidate):
                return candidate
        raise NotRun(f"the {reftype.upper()} reference {base} ({keyword}) was not found next to "
                     f"the products, the raw exposure or in $RAMP2SLOPE_REFDIR")

    def _header_model(self, rows=None):
        """A data-less model carrying the exposure's header, for the reference loaders."""
        key = ("header_model", rows)
        if key not in self._cache:
            model = ImageModel(np.broadcast_to(np.float32(0), (rows or self.ny, self.nx)))
            model.primary_header.update(self.header)
            self._cache[key] = model
        return self._cache[key]

    def stripe_reference(self, reftype, with_data=True):
        """A superstripe exposure's reference cut into one plane per stripe, as dq_init,
        saturation and superbias use it (``data``, ``dq``: (nstripe, ny, nx)); NotRun if absent."""
        from ..references.striped import load_striped

        path = self.reference_path(reftype)
        product = next((self.products.get(s) for s in ("dq_init", "saturation", "superbias")
                        if self.products.get(s) is not None), None)
        if product is None:
            raise NotRun("no product of the stripe layout was saved")
        model = ImageModel(np.broadcast_to(np.float32(0), product.shape("SCI")[-2:]))
        model.primary_header.update(product.header)
        try:
            return load_striped(path, model, reftype, with_data)
        except Ramp2SlopeError as exc:
            raise NotRun(f"the {reftype.upper()} reference cannot be cut into stripes: "
                         f"{exc}") from None

    def irs2_rows(self):
        """The science-row mask of an IRS2 exposure (its first products' layout), else None."""
        for suffix in ("dq_init", "saturation", "superbias"):
            product = self.products.get(suffix)
            if product is not None:
                return product.science_rows
        return None

    def reference(self, reftype):
        """The loaded reference (DQ-translated, cut out to the exposure); NotRun if absent.

        Not cached: each check loads what it needs and lets it go (a full-frame LINEARITY or
        DARK is hundreds of MB). Close what it returns when it has a ``close`` method (DARK).
        """
        from ..references import LOADERS

        path = self.reference_path(reftype)
        rows = self.irs2_rows()
        try:
            if rows is None or reftype not in ("mask", "superbias"):
                return LOADERS[reftype](path, self._header_model())
            # these two cover the IRS2 layout: the report sees their science rows
            loaded = LOADERS[reftype](path, self._header_model(rows.size))
            for name, value in vars(loaded).items():
                if isinstance(value, np.ndarray) and value.ndim >= 2 and value.shape[-2] == rows.size:
                    setattr(loaded, name, value[..., rows, :])
            return loaded
        except Ramp2SlopeError as exc:
            raise NotRun(f"the {reftype.upper()} reference cannot be used: {exc}") from None


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def wrap_index(index, count):
    """The notebook's fixed example index, taken modulo the number of candidates available."""
    return int(index) % int(count)


def pick_indexes(indexes, count):
    """The notebook's list of example indexes modulo ``count``, without repeats, order kept."""
    seen, out = set(), []
    for index in indexes:
        k = wrap_index(index, count)
        if k not in seen:
            seen.add(k)
            out.append(k)
    return out


def detector_columns(ctx):
    """For every DMS pixel, its full-frame detector-frame column (readout amplifiers and
    odd/even column parity are defined there). Returns a (ny, nx) int array."""
    fast = int(ctx.header.get("FASTAXIS") or 1)
    ys = np.arange(ctx.ny) + ctx.ystart - 1
    xs = np.arange(ctx.nx) + ctx.xstart - 1
    if abs(fast) == 1:
        cols = xs if fast > 0 else 2047 - xs
        return np.broadcast_to(cols[None, :], (ctx.ny, ctx.nx))
    cols = ys if fast > 0 else 2047 - ys
    return np.broadcast_to(cols[:, None], (ctx.ny, ctx.nx))
