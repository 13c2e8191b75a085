"""The one exception type that reaches users: a clear, one-line message."""


class Ramp2SlopeError(Exception):
    """A problem with the input, a reference file or a parameter, described in one line.

    The command line prints the message and exits with status 2 instead of showing a traceback.
    """


class BadInputError(Ramp2SlopeError):
    """An input or reference file that cannot be used (unreadable, wrong shape, missing keyword)."""


class ReferenceFileError(Ramp2SlopeError):
    """A reference file that is missing, ambiguous or does not match the science exposure."""


class IncompatibleModelError(Ramp2SlopeError, TypeError):
    """A data model of a kind the step cannot take (a raw Level1bModel given to a ramp step);
    a TypeError as well, as the official steps raise."""
