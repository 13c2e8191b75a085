"""The RESET reference: the anomaly planes an exposure uses, and the DQ.

jwst uses the reference as it is, without a subarray cut-out: it must have the science array's
shape. Only the planes the exposure needs are read.
"""
from dataclasses import dataclass

import numpy as np

from ..errors import ReferenceFileError
from ..references.loaders import _RefFile

__all__ = ["ResetPlanes", "ResetRef", "exposure_integrations", "load_reset"]


class ResetPlanes:
    """The anomaly planes of an open RESET file, read one (integration, group) plane at a time
    when indexed (``planes[i, j]``: float32 (ny, nx), NaN set to 0), so that a full frame's
    reference is never held whole; ``shape`` is that of the planes the exposure uses."""

    def __init__(self, ref, shape):
        self._ref = ref
        self.shape = tuple(shape)
        self._plane = np.empty(self.shape[-2:], np.float32)

    def __getitem__(self, index):
        i, j = index
        if not (0 <= i < self.shape[0] and 0 <= j < self.shape[1]):
            raise IndexError(f"reset plane {index} outside {self.shape[:2]}")
        plane = self._ref.read("SCI", np.float32, planes=(i, j), out=self._plane)
        plane[np.isnan(plane)] = 0.0
        return plane

    def close(self):
        self._ref.close()


@dataclass
class ResetRef:
    """``data``: the planes (nints, ngroups, ny, nx) the exposure uses, float32 with NaN set to 0
    (a :class:`ResetPlanes`, read plane by plane from the file, which stays open until
    :meth:`close`); ``nints``/``ngroups``: the reference's NINTS/NGROUPS keywords; ``dq``:
    uint32 (ny, nx) in standard flags."""
    path: str
    data: ResetPlanes
    dq: np.ndarray
    nints: int
    ngroups: int

    def close(self):
        self.data.close()


def _keyword(ref, name):
    value = ref.header.get(name)
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise ReferenceFileError(f"{ref.path}: keyword {name} is missing or not an integer "
                                 f"({value!r})") from None
    return value


def exposure_integrations(model):
    """How many integrations of the exposure can be met: NINTS, or more if the data (a segment
    ending after it) go further."""
    exp = model.meta.exposure
    start = int(exp.integration_start or 1) - 1
    return max(int(exp.nints or 0), start + int(model.shape[0]))


def load_reset(path, model):
    ref = _RefFile(path, "RESET", model)
    try:
        hdu = ref.hdu("SCI")
        shape = tuple(hdu.shape)
        if len(shape) != 4:
            raise ReferenceFileError(f"{path}: SCI must be 4-D (nints, ngroups, ny, nx), got {shape}")
        if shape[-2:] != tuple(model.shape[-2:]):
            raise ReferenceFileError(
                f"{path}: reset is {shape[-2]}x{shape[-1]} but the science data are "
                f"{model.shape[-2]}x{model.shape[-1]} (jwst does not cut reset references out: "
                f"use one for this subarray)")
        nints, ngroups = _keyword(ref, "NINTS"), _keyword(ref, "NGROUPS")
        if nints < 1:
            raise ReferenceFileError(f"{path}: NINTS = {nints}, at least 1 is needed")
        use_ints = min(nints, exposure_integrations(model))
        use_groups = max(0, min(ngroups, int(model.shape[1])))
        if use_ints > shape[0] or use_groups > shape[1]:
            raise ReferenceFileError(
                f"{path}: NINTS = {nints}, NGROUPS = {ngroups} but SCI has {shape[0]} integrations "
                f"of {shape[1]} groups; this exposure needs {use_ints} of {use_groups}")
        dq = ref.dq()
        if dq is None:
            dq = np.zeros(shape[-2:], np.uint32)
        elif dq.shape != shape[-2:]:
            raise ReferenceFileError(f"{path}: DQ must be {shape[-2]}x{shape[-1]} like SCI, "
                                     f"got {dq.shape}")
        planes = ResetPlanes(ref, (use_ints, use_groups) + shape[-2:])
        return ResetRef(path, planes, np.ascontiguousarray(dq, dtype=np.uint32), nints, ngroups)
    except BaseException:
        ref.close()
        raise
