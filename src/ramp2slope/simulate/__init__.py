"""Synthetic NIRCam exposures, matching reference files and the injected truth.

>>> from ramp2slope.simulate import simulate_exposure, load_truth
>>> result = simulate_exposure("out", subarray="SUB160P", ngroups=5, seed=1)   # doctest: +SKIP
>>> result.uncal, result.refs["dark"], load_truth(result.truth).rate           # doctest: +SKIP

Outputs of :func:`simulate_exposure` (``<root>`` is e.g. ``jw01234001001_01101_00001_nrcblong``):

* ``<root>_uncal.fits``: a Level1bModel: SCI uint16 (nints, ngroups, ny, nx), ZEROFRAME,
  GROUP and INT_TIMES tables, a minimal ASDF extension, and the primary keywords Stage 1 uses.
* ``refs/<root>_<reftype>.fits`` for mask, saturation, superbias, linearity, dark, gain and
  readnoise (see :mod:`ramp2slope.simulate.references`).
* ``<root>_truth.fits``: the injected truth (see :mod:`ramp2slope.simulate.truth`).

The model (see :mod:`ramp2slope.simulate.physics`): a bias with amplifier and odd/even column
structure; per-group amplifier offsets and 1/f row noise in readout order, also on the reference
pixels; dark current with hot and warm pixels; sky and Gaussian sources, a few of them
saturating part way up the ramp; Poisson noise in electrons; cosmic rays; a polynomial
non-linearity that the LINEARITY coefficients undo exactly; per-frame read noise; frame
averaging and skipped frames of the NIRCam read patterns; dead, low-QE and noisy pixels; and
16-bit clipping. Everything is deterministic in the seed.
"""
from .._exports import lazy_exports

# Names resolve on first use, so that the command line can describe ``ramp2slope simulate``
# without importing the simulator (and its kernels) on every run.
_EXPORTS = {
    "READ_PATTERNS": "detector", "SUBARRAY_NAMES": "detector", "frame_time": "detector",
    "geometry": "detector", "SimulationResult": "exposure", "simulate_exposure": "exposure",
    "REFTYPES": "references", "Truth": "truth", "load_truth": "truth",
    "simulate_miri_exposure": "miri", "MIRI_SUBARRAYS": "miri",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
