"""The validation report: the calwebb_detector1 validation notebook as one HTML file.

>>> from ramp2slope.report import write_report
>>> write_report("products/", truth="sim/<root>_truth.fits")          # doctest: +SKIP
'products/report.html'

Each pipeline step gets a section with the notebook's figures and numbers, ending with automatic
checks that pass or fail with the measured values (or say why they could not be run); a summary
of every check opens the report. See ``docs/report.md``.
"""
from .report import SECTIONS, write_report

__all__ = ["write_report", "SECTIONS"]
