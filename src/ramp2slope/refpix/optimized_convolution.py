"""The SIRS functions under jwst's module name (``jwst.refpix.optimized_convolution``), for code
written against it: the kernels from a SIRSKERNEL model and their application to one frame.
The algorithm is :mod:`ramp2slope.refpix.sirs`, which the refpix step uses.
"""
import logging
import os

import numpy as np

from .sirs import load_sirs_coefficients, make_sirs_kernels, sirs_coefficients, sirs_templates

__all__ = ["make_kernels", "get_conv_kernel_coeffs", "apply_conv_kernel"]

log = logging.getLogger(__name__)


def get_conv_kernel_coeffs(sirs_kernel_model, detector):
    """``(gamma, zeta)`` of ``detector`` (any case) from a SIRSKERNEL reference: a
    :class:`~ramp2slope.datamodels.SIRSKernelModel` (or the official one), its tree as a dict,
    or the path of its ASDF file; ``(None, None)`` when the reference has no such detector."""
    if isinstance(sirs_kernel_model, (str, os.PathLike)):
        return load_sirs_coefficients(os.fspath(sirs_kernel_model), detector)
    if isinstance(sirs_kernel_model, dict):
        return sirs_coefficients(sirs_kernel_model, detector)
    # a model: its leaves under dotted names, "<detector>.gamma" and "<detector>.zeta"
    tree = {}
    for name, value in sirs_kernel_model.to_flat_dict().items():
        parts = name.split(".")
        if len(parts) == 2 and parts[1] in ("gamma", "zeta"):
            tree.setdefault(parts[0], {})[parts[1]] = value
    return sirs_coefficients(tree, detector)


def make_kernels(sirs_kernel_model, detector, gaussmooth, halfwidth):
    """``[left, right]`` lists of one real-space kernel per amplifier (see
    :func:`ramp2slope.refpix.sirs.make_sirs_kernels`), or None when the reference has no
    coefficients for ``detector``."""
    gamma, zeta = get_conv_kernel_coeffs(sirs_kernel_model, detector)
    if gamma is None or zeta is None:
        log.info(f"Optimized convolution kernel coefficients NOT found for detector {detector}")
        return None
    left, right = make_sirs_kernels(gamma, zeta, gaussmooth=gaussmooth, halfwidth=halfwidth)
    return [left, right]


def apply_conv_kernel(data, kernels, sigreject=4.0):
    """One frame (ny, nx) in the detector frame, as float64, with each amplifier's SIRS
    template (from the 4 reference columns on each side) subtracted from its columns."""
    data = np.array(data, dtype=np.float64)
    left, right = kernels
    amplifiers = len(left)
    templates = sirs_templates(data[:, :4], data[:, -4:], kernels, sigreject, amplifiers)
    nx = data.shape[-1]
    for amp in range(amplifiers):
        # the official slices: quarters of the frame whatever the number of kernels
        data[:, amp * nx // 4:(amp + 1) * nx // 4] -= templates[:, amp][:, None]
    return data
