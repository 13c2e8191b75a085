"""Data models and FITS I/O in the official JWST layout.

``open(path)`` picks the class from the primary DATAMODL keyword (raw guide-star data, by
EXP_TYPE, opens as a GuiderRawModel); raw ``*_uncal.fits``
(Level1bModel) files open as a float32 :class:`RampModel` with zero-filled PIXELDQ and GROUPDQ.
"""
from . import dqflags
from .emi_model import EmiModel
from .sirs_kernel_model import SIRSKernelModel
from .fits_io import open, write_model
from .incremental import IncrementalWriter
from .models import (
    CubeModel,
    DarkModel,
    DataModel,
    GuiderRawModel,
    IFUImageModel,
    ImageModel,
    JwstDataModel,
    Level1bModel,
    RampFitOutputModel,
    RampModel,
    SuperstripeRampModel,
)
from .reference_models import (
    FlatModel,
    GainModel,
    IPCModel,
    LinearityModel,
    MaskModel,
    DarkNirspecModel,
    PersistenceSatModel,
    PictureFrameModel,
    ReadnoiseModel,
    ReferenceFileModel,
    SaturationModel,
    SuperBiasModel,
    TrapDensityModel,
    TrapParsModel,
    IRS2Model,
    TrapsFilledModel,
    DarkMIRIModel,
    ResetModel,
    RSCDModel,
)

__all__ = [
    "open", "write_model", "IncrementalWriter", "dqflags", "DataModel", "JwstDataModel", "RampModel", "SuperstripeRampModel", "GuiderRawModel", "Level1bModel", "ImageModel", "IFUImageModel",
    "CubeModel", "RampFitOutputModel", "DarkModel", "ReferenceFileModel", "FlatModel", "GainModel",
    "ReadnoiseModel",
    "SaturationModel", "MaskModel", "SuperBiasModel", "LinearityModel", "DarkNirspecModel", "IPCModel",
    "PersistenceSatModel", "PictureFrameModel", "TrapDensityModel", "TrapParsModel", "TrapsFilledModel",
    "IRS2Model", "DarkMIRIModel", "ResetModel", "RSCDModel", "EmiModel", "SIRSKernelModel",
]
