"""Pipelines: ``Detector1Pipeline`` (also as ``pipeline.calwebb_detector1.Detector1Pipeline``)."""
from . import calwebb_detector1
from .calwebb_detector1 import Detector1Pipeline

__all__ = ["Detector1Pipeline", "calwebb_detector1"]
