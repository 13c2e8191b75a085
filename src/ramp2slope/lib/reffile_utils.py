"""``get_subarray_model``: a reference model cut to the science exposure (as ``jwst.lib``'s)."""
import numpy as np

from ..datamodels.models import DataModel
from ..errors import ReferenceFileError
from ..references.stripes import FULL_SIZE, StripeLayout, stripe_reference
from ..references.subarray import cutout_slices, science_box

__all__ = ["get_subarray_model"]


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
