"""emicorr: MIRI EMI (electromagnetic interference) correction."""
from .emicorr import (ALLOWED_READPATTS, SUBARRAY_CLOCKS, Clocks, EmiCorrection, apply_emicorr,
                      correct_exposure, get_frequency_info, get_subarcase, minmed, mk_reffile,
                      onthefly_clocks, phasing_integrations, rebin, rebin_nearest, sloper)
from .reference import EmiReference, load_emicorr, write_emicorr

__all__ = ["ALLOWED_READPATTS", "SUBARRAY_CLOCKS", "Clocks", "EmiCorrection", "EmiReference",
           "correct_exposure", "load_emicorr", "onthefly_clocks", "phasing_integrations",
           "rebin_nearest", "write_emicorr", "apply_emicorr", "get_frequency_info", "get_subarcase",
           "minmed", "mk_reffile", "rebin", "sloper"]
from .emicorr_step import EmiCorrStep, plan_emicorr  # noqa: E402
__all__ += ["EmiCorrStep", "plan_emicorr"]
