"""Reference files for striped (superstripe) exposures: the full-height reference cut into one
plane per stripe (jwst's ``get_multistripe_subarray_model``), arrays ``(nstripe, ny, nx)``."""
from dataclasses import dataclass

import numpy as np

from ..errors import ReferenceFileError
from .loaders import _RefFile
from .stripes import FULL_SIZE, StripeLayout, stripe_reference

__all__ = ["is_superstripe", "is_multistripe", "StripedRef", "load_striped"]


def is_superstripe(model):
    return int(model.meta.subarray.num_superstripe or 0) > 0


def is_multistripe(model):
    return model.meta.subarray.multistripe_reads1 is not None


@dataclass
class StripedRef:
    path: str
    data: np.ndarray   # None for a MASK
    dq: np.ndarray


def load_striped(path, model, reftype, with_data=True):
    """The reference's SCI (when ``with_data``) and translated DQ, one plane per stripe."""
    layout = StripeLayout.from_model(model)
    ref = _RefFile(path, reftype.upper(), model)
    try:
        sci = ref.array("SCI") if with_data else None
        dq = ref.dq()
        if dq is None:
            if sci is None:
                raise ReferenceFileError(f"{path}: no DQ extension")
            dq = np.zeros(sci.shape[-2:], np.uint32)
        striped = (layout.num_superstripe,) + tuple(model.shape[-2:])
        if dq.shape == striped and (sci is None or sci.shape == striped):
            # already one plane per stripe (jwst's get_subarray_model gives references so, and
            # its module-level functions take them)
            return StripedRef(path, sci, dq)
        shape = dq.shape[-2:]
        xstart, ystart, xsize, ysize = ref.box(shape)
        slow = (ystart, ysize) if abs(layout.fastaxis) == 1 else (xstart, xsize)
        if slow != (1, FULL_SIZE):
            raise ReferenceFileError(f"{path}: a superstripe exposure needs a reference covering the "
                                     f"whole slow axis (start 1, size {FULL_SIZE}), not {slow}")
        fast_start = xstart if abs(layout.fastaxis) == 1 else ystart
        planes = [None if a is None else stripe_reference(a, layout, fast_start) for a in (sci, dq)]
        if planes[1].shape[-2:] != model.shape[-2:]:
            raise ReferenceFileError(f"{path}: does not cover the science subarray")
        return StripedRef(path, planes[0], planes[1])
    finally:
        ref.close()
