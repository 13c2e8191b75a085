"""ramp2slope: a fast, memory-lean re-implementation of JWST's calwebb_detector1.

The public API mirrors the official ``jwst`` package so that code written for it runs after
replacing ``jwst`` by ``ramp2slope`` in the imports::

    from ramp2slope.pipeline import calwebb_detector1
    from ramp2slope.jump import JumpStep
    from ramp2slope import datamodels
"""

__version__ = "0.1.0"
