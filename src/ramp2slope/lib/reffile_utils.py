"""Reference models against science exposures, as ``jwst.lib.reffile_utils`` has them:
``get_subarray_model`` (a reference cut to the science exposure), ``ref_matches_sci``,
``is_subarray``, the science/detector frame transforms and ``find_row``."""
import logging

import numpy as np

from ..datamodels.models import DataModel
from ..errors import ReferenceFileError
from ..references.stripes import FULL_SIZE, StripeLayout, stripe_reference
from ..references.subarray import cutout_slices, science_box
from ..refpix.orientation import detector_to_dms, dms_to_detector

__all__ = ["get_subarray_model", "get_multistripe_subarray_model", "ref_matches_sci",
           "is_subarray", "science_detector_frame_transform",
           "detector_science_frame_transform", "find_row", "MatchRowError"]

log = logging.getLogger("ramp2slope")

#: Full-frame (columns, rows) of MIRI's detectors; the near-infrared ones are 2048 x 2048.
MIRI_FULL = (1032, 1024)


def _cut_arrays(ref_model):
    """The arrays that are cut: the primary one, ERR and DQ (and INV_COEFFS with COEFFS)."""
    primary = ref_model.primary_array
    names = [primary, "err", "dq"] + (["inv_coeffs"] if primary == "coeffs" else [])
    return [name for name in dict.fromkeys(names)
            if ref_model._spec(name) is not None and ref_model._arrays.get(name) is not None]


def _ref_box(ref_model, shape):
    sub = ref_model.meta.subarray
    values = (sub.xstart, sub.ystart, sub.xsize, sub.ysize)
    if any(v is None for v in values):
        if tuple(shape[-2:]) == (FULL_SIZE, FULL_SIZE):
            return 1, 1, FULL_SIZE, FULL_SIZE
        raise ReferenceFileError(f"{ref_model._path or 'reference'}: SUBSTRT1/2 and SUBSIZE1/2 "
                                 f"are missing and the array {tuple(shape[-2:])} is not full frame")
    return tuple(int(v) for v in values)


def get_subarray_model(sci_model, ref_model):
    """A new reference model of ``ref_model``'s type holding its primary array, ERR and DQ (and
    INV_COEFFS) cut to ``sci_model``'s subarray: rows and columns for an ordinary subarray; for
    a multistripe or superstripe readout, the rows each stripe reads (one plane per stripe for
    superstripes), the reference needing the whole slow axis. Its metadata is the reference's.

    Raises TypeError when either is not a ramp2slope data model, and ReferenceFileError (a
    ValueError in jwst) when the reference does not cover the science pixels."""
    for what, model in (("Science", sci_model), ("Reference", ref_model)):
        if not isinstance(model, DataModel):
            raise TypeError(f"{what} model must be a ramp2slope data model, "
                            f"not {type(model).__name__}")
    names = _cut_arrays(ref_model)
    where = ref_model._path or f"the {type(ref_model).__name__}"
    cut = {}
    if sci_model.meta.subarray.multistripe_reads1 is not None:
        layout = StripeLayout.from_model(sci_model)
        for name in names:
            array = np.asarray(getattr(ref_model, name))
            xstart, ystart, xsize, ysize = _ref_box(ref_model, array.shape)
            slow = (ystart, ysize) if abs(layout.fastaxis) == 1 else (xstart, xsize)
            if slow != (1, FULL_SIZE):
                raise ReferenceFileError(f"{where}: a striped exposure needs a reference covering "
                                         f"the whole slow axis (start 1, size {FULL_SIZE}), not "
                                         f"{slow}")
            cut[name] = stripe_reference(array, layout, xstart if abs(layout.fastaxis) == 1
                                         else ystart)
    else:
        sci_box = science_box(sci_model)
        for name in names:
            array = getattr(ref_model, name)
            rows, cols = cutout_slices(array.shape, _ref_box(ref_model, array.shape), sci_box,
                                       where)
            cut[name] = array[..., rows, cols]
    sub_model = type(ref_model)()
    for name, array in cut.items():
        setattr(sub_model, name, np.array(array))
    sub_model.update(ref_model)
    return sub_model


def get_multistripe_subarray_model(sci_model, ref_model):
    """``ref_model`` cut to the rows a multistripe or superstripe exposure reads (see
    :func:`get_subarray_model`, which cuts striped and ordinary subarrays alike)."""
    return get_subarray_model(sci_model, ref_model)


def _full_size(model):
    miri = str(model.meta.instrument.name or "").upper() == "MIRI"
    return MIRI_FULL if miri else (FULL_SIZE, FULL_SIZE)


def is_subarray(input_model):
    """True when the model's data are smaller than its instrument's full frame."""
    ny, nx = np.shape(input_model.data)[-2:]
    columns, rows = _full_size(input_model)
    return nx < columns or ny < rows


def ref_matches_sci(sci_model, ref_model):
    """True when the reference covers exactly the science exposure's subarray (no cut
    needed); never for a superstripe exposure, whose references are always cut per stripe.
    A reference without SUBSTRT/SUBSIZE is taken as full frame when its data are (the
    keywords are then set on it), else ValueError."""
    if (sci_model.meta.subarray.num_superstripe or 0) > 0:
        return False
    sub = ref_model.meta.subarray
    box = (sub.xstart, sub.ystart, sub.xsize, sub.ysize)
    if any(value is None for value in box):
        columns, rows = _full_size(ref_model)
        if tuple(np.shape(ref_model.data)[-2:]) != (rows, columns):
            raise ValueError(f"{ref_model._path or 'reference'}: SUBSTRT1/2 and SUBSIZE1/2 are "
                             f"missing and the data are not full frame")
        log.warning("%s: no SUBSTRT/SUBSIZE keywords; taken as full frame",
                    ref_model._path or "reference")
        sub.xstart, sub.ystart, sub.xsize, sub.ysize = box = (1, 1, columns, rows)
    sci = sci_model.meta.subarray
    return tuple(int(v) for v in box) == tuple(
        int(v) if v is not None else None for v in (sci.xstart, sci.ystart, sci.xsize, sci.ysize))


def science_detector_frame_transform(data, fastaxis, slowaxis):
    """A view of ``data`` (last two axes y, x in the science frame) in the detector frame, as
    FASTAXIS and SLOWAXIS say (see :mod:`ramp2slope.refpix.orientation`)."""
    return dms_to_detector(data, fastaxis, slowaxis)


def detector_science_frame_transform(data, fastaxis, slowaxis):
    """The inverse of :func:`science_detector_frame_transform`."""
    return detector_to_dms(data, fastaxis, slowaxis)


class MatchRowError(Exception):
    """More than one row of a table matched."""


def find_row(ldict, match_keys):
    """The one dict of the list ``ldict`` whose values equal ``match_keys``'s; None (with a
    warning) when none does, MatchRowError when several do."""
    found = [row for row in ldict if all(row[key] == value for key, value in match_keys.items())]
    if len(found) > 1:
        raise MatchRowError(f"{len(found)} rows match {match_keys}; expected one")
    if not found:
        log.warning("no row matches %s", match_keys)
        return None
    return found[0]
