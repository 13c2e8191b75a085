"""Finding and loading reference files (MASK, SATURATION, SUPERBIAS, LINEARITY, DARK, GAIN,
READNOISE, IPC, REFPIX), with DQ_DEF translation and subarray cut-outs."""
from .derived import derived
from .dq_def import translate_dq
from .finder import ENV_REFDIR, NOT_APPLICABLE, find_in_directory, find_reference
from .loaders import (
    DarkPlanes,
    check_reference,
    load_dark,
    load_dark_resident,
    load_gain,
    load_ipc,
    load_irs2_refpix,
    load_linearity,
    load_mask,
    load_readnoise,
    load_saturation,
    load_superbias,
)
from .subarray import cutout, science_box, subarray_box

LOADERS = {
    "mask": load_mask,
    "saturation": load_saturation,
    "superbias": load_superbias,
    "linearity": load_linearity,
    "dark": load_dark,
    "gain": load_gain,
    "readnoise": load_readnoise,
    "ipc": load_ipc,
    "refpix": load_irs2_refpix,
}

__all__ = [
    "ENV_REFDIR", "DarkPlanes", "derived", "check_reference", "NOT_APPLICABLE", "LOADERS", "find_reference", "find_in_directory", "translate_dq",
    "cutout", "science_box", "subarray_box", "load_mask", "load_saturation", "load_superbias",
    "load_linearity", "load_dark", "load_dark_resident", "load_gain", "load_readnoise", "load_ipc",
    "load_irs2_refpix",
]
