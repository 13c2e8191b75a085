"""Reference-file models, laid out as the official JWST reference data models.

They hold a reference in memory with the official attribute names (``GainModel(data=...)``,
``MaskModel(dq=..., dq_def=...)``, ``LinearityModel(coeffs=...)``) and save it as a FITS file
that the official models and ramp2slope's loaders both read. A step given one as its
``override_<reftype>`` uses it exactly as it would use that file (see
``Step.resolve_reference``).
"""
import numpy as np

from .models import MODEL_CLASSES, ArraySpec, DarkModel, DataModel, _zeros_like_data, _zeros_like_data_2d


def _zeros_like_coeffs_2d(dtype):
    return lambda model: np.zeros(model.coeffs.shape[-2:], dtype=dtype)


class ReferenceFileModel(DataModel):
    """Common base of the reference models (REFTYPE, AUTHOR, PEDIGREE, USEAFTER in ``meta``)."""

    model_type = "ReferenceFileModel"
    reftype = None

    def __init__(self, init=None, **arrays):
        super().__init__(init, **arrays)
        if self.reftype and self.meta.reftype is None and not isinstance(init, str):
            self.meta.reftype = self.reftype


def _reference(name, reftype, arrays, tables=("dq_def",), primary="data", table_extnames=None, fill=0):
    cls = type(name, (ReferenceFileModel,), {
        "model_type": name, "reftype": reftype, "arrays": tuple(arrays), "tables": tuple(tables),
        "primary_array": primary, "table_extnames": dict(table_extnames or {}), "primary_fill": fill,
        "__doc__": f"A {reftype.upper()} reference file.",
    })
    return cls


GainModel = _reference("GainModel", "gain", [ArraySpec("data", "SCI", np.float32, 2)], tables=())
ReadnoiseModel = _reference("ReadnoiseModel", "readnoise", [ArraySpec("data", "SCI", np.float32, 2)],
                            tables=())
SaturationModel = _reference("SaturationModel", "saturation", [
    ArraySpec("data", "SCI", np.float32, 2),
    ArraySpec("dq", "DQ", np.uint32, 2, default=_zeros_like_data(np.uint32)),
], fill=100000.0)
MaskModel = _reference("MaskModel", "mask", [ArraySpec("dq", "DQ", np.uint32, 2)], primary="dq")
SuperBiasModel = _reference("SuperBiasModel", "superbias", [
    ArraySpec("data", "SCI", np.float32, 2),
    ArraySpec("dq", "DQ", np.uint32, 2, default=_zeros_like_data(np.uint32)),
    ArraySpec("err", "ERR", np.float32, 2, default=_zeros_like_data(np.float32)),
])
LinearityModel = _reference("LinearityModel", "linearity", [
    ArraySpec("coeffs", "COEFFS", np.float32, 3),
    ArraySpec("inv_coeffs", "INV_COEFFS", np.float32, 3),
    ArraySpec("dq", "DQ", np.uint32, 2, default=_zeros_like_coeffs_2d(np.uint32)),
], primary="coeffs")
DarkNirspecModel = _reference("DarkNirspecModel", "dark", [
    ArraySpec("data", "SCI", np.float32, 3),
    ArraySpec("dq", "DQ", np.uint32, 2, default=_zeros_like_data_2d(np.uint32)),
    ArraySpec("err", "ERR", np.float32, 3),
    ArraySpec("average_dark_current", "AVDRKCUR", np.float32, 2),
    ArraySpec("dark_rate", "DRK", np.float32, 2),
    ArraySpec("dark_rate_unc", "UNC", np.float32, 2),
])
FlatModel = _reference("FlatModel", "flat", [
    ArraySpec("data", "SCI", np.float32, 2),
    ArraySpec("dq", "DQ", np.uint32, 2, default=_zeros_like_data(np.uint32)),
    ArraySpec("err", "ERR", np.float32, 2, default=_zeros_like_data(np.float32)),
], fill=1.0)
PictureFrameModel = _reference("PictureFrameModel", "pictureframe",
                               [ArraySpec("data", "SCI", np.float32, 2)], tables=())
IPCModel = _reference("IPCModel", "ipc", [ArraySpec("data", "SCI", np.float32, 2)], tables=(), fill=1.0)
PersistenceSatModel = _reference("PersistenceSatModel", "persat", [
    ArraySpec("data", "SCI", np.float32, 2),
    ArraySpec("dq", "DQ", np.uint32, 2, default=_zeros_like_data(np.uint32)),
], fill=90000.0)
TrapDensityModel = _reference("TrapDensityModel", "trapdensity", [
    ArraySpec("data", "SCI", np.float32, 2),
    ArraySpec("dq", "DQ", np.uint32, 2, default=_zeros_like_data(np.uint32)),
])
TrapParsModel = _reference("TrapParsModel", "trappars", [], tables=("trappars_table",),
                           primary=None, table_extnames={"trappars_table": "TRAPPARS"})
IRS2Model = _reference("IRS2Model", "refpix", [], tables=("irs2_table", "dq_table"), primary=None,
                       table_extnames={"irs2_table": "IRS2", "dq_table": "DQ"})


# MIRI
DarkMIRIModel = _reference("DarkMIRIModel", "dark", [
    ArraySpec("data", "SCI", np.float32, 4),
    # (as the official model's default; the dark step reads plane [i, 0] of each integration)
    ArraySpec("dq", "DQ", np.uint32, 4, default=_zeros_like_data(np.uint32)),
    ArraySpec("err", "ERR", np.float32, 4, default=_zeros_like_data(np.float32)),
    ArraySpec("average_dark_current", "AVDRKCUR", np.float32, 2),
])
ResetModel = _reference("ResetModel", "reset", [
    ArraySpec("data", "SCI", np.float32, 4),
    ArraySpec("dq", "DQ", np.uint32, 2, default=_zeros_like_data_2d(np.uint32)),
    ArraySpec("err", "ERR", np.float32, 4, default=_zeros_like_data(np.float32)),
])
RSCDModel = _reference("RSCDModel", "rscd", [], tables=("rscd_group_skip_table",), primary=None,
                       table_extnames={"rscd_group_skip_table": "RSCD_GROUP_SKIP"})


class TrapsFilledModel(DataModel):
    """The traps filled at the end of an exposure (persistence's ``_trapsfilled`` product)."""

    model_type = "TrapsFilledModel"
    arrays = (ArraySpec("data", "SCI", np.float32, 3),)


REFERENCE_MODEL_CLASSES = (
    GainModel, ReadnoiseModel, SaturationModel, MaskModel, SuperBiasModel, LinearityModel,
    DarkNirspecModel, FlatModel, IPCModel, PersistenceSatModel, PictureFrameModel,
    TrapDensityModel, TrapParsModel,
    TrapsFilledModel, IRS2Model, DarkMIRIModel, ResetModel, RSCDModel,
)

#: the reference model classes for each reference type
BY_REFTYPE = {cls.reftype: (cls,) for cls in REFERENCE_MODEL_CLASSES if getattr(cls, "reftype", None)}
BY_REFTYPE["dark"] = (DarkModel, DarkNirspecModel, DarkMIRIModel)

MODEL_CLASSES.update({cls.model_type: cls for cls in REFERENCE_MODEL_CLASSES})
