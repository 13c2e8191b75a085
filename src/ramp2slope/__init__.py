"""ramp2slope: a fast, memory-lean re-implementation of JWST's calwebb_detector1.

The public API mirrors the official ``jwst`` package so that code written for it runs after
replacing ``jwst`` by ``ramp2slope`` in the imports::

    from ramp2slope.pipeline import calwebb_detector1
    from ramp2slope.jump import JumpStep
    from ramp2slope import datamodels
"""

__version__ = "0.1.0"

import os as _os

# numba's OpenMP threads otherwise spin after every parallel section. The per-integration path
# runs thousands of short sections, and on a machine with anything else running the spinning
# threads steal the cores the work needs (measured on 20 integrations of 256x2048 with one busy
# process alongside: 11.6 s spinning, 9.5 s passive; 6.8 s and 6.5 s on a quiet machine).
# Must be set before numba starts its thread pool; a value the user set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
