"""Automatic checks: each one passes, fails, or is reported as not run with the reason.

A check function returns ``(ok, measured)`` where ``measured`` is a short text with the numbers
it compared; it raises :class:`NotRun` when an input it needs is missing. Anything else it raises
is reported as a failure (the check could not confirm the requirement), never as a pass.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("ramp2slope")

PASS = "pass"
FAIL = "fail"
NOT_RUN = "not run"


class NotRun(Exception):
    """Raised by a check whose input is missing; the message says why."""


@dataclass
class Check:
    section: str          # section id
    name: str             # what is checked, one line
    requirement: str      # the condition for passing
    status: str           # PASS, FAIL or NOT_RUN
    measured: str         # the numbers, or why it was not run

    @property
    def passed(self):
        return self.status == PASS


def run_check(section, name, requirement, function):
    """Evaluate ``function()`` into a :class:`Check`."""
    try:
        ok, measured = function()
    except NotRun as why:
        return Check(section, name, requirement, NOT_RUN, str(why))
    except Exception as exc:  # a check that crashes has not shown the requirement holds
        log.debug("check %r failed with an exception", name, exc_info=True)
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Check(section, name, requirement, FAIL, f"could not be evaluated: {text}")
    return Check(section, name, requirement, PASS if ok else FAIL, measured)


def fmt(value, digits=4):
    """A compact number: integers as is, floats with ``digits`` significant figures."""
    if value is None:
        return "n/a"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return f"{value:,}"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if value != value:
        return "NaN"
    if value == int(value) and abs(value) < 1e12:
        return f"{int(value):,}"
    return f"{value:.{digits}g}"


def percent(part, whole, digits=3):
    return "n/a" if not whole else f"{100.0 * part / whole:.{digits}g}%"
