"""Finding the reference file of a given type for a science exposure.

Sources, first hit wins: an explicit path (a step's ``override_<reftype>`` parameter, or "N/A"
to skip the step), then a reference directory (the ``refdir`` parameter, CLI ``--refdir``), then
the directory named by the environment variable ``RAMP2SLOPE_REFDIR``, then CRDS. In a
directory, files are chosen by their primary headers with CRDS's rules
(:mod:`ramp2slope.references.matching`).
"""
import os

from ..errors import ReferenceFileError
from . import crds_client
from .loaders import chosen_by_user
from .matching import choose_in_directory

ENV_REFDIR = "RAMP2SLOPE_REFDIR"
NOT_APPLICABLE = "N/A"

#: Reference types CRDS has no files of for an instrument (its answer is N/A, and the step that
#: asks goes without): so it is for a folder too, with no CRDS to ask.
NOT_FOR_INSTRUMENT = {
    "MIRI": frozenset({"superbias", "refpix", "sirskernel"}),
}


def find_in_directory(reftype, model, directory):
    """The best-matching file of ``reftype`` in ``directory``, or None when there is none
    (the rules: :mod:`ramp2slope.references.matching`)."""
    return choose_in_directory(reftype, model, directory)


def find_reference(reftype, model, override=None, refdir=None, use_crds=True):
    """Resolve the reference file of ``reftype``: a path, or "N/A" when the step must be skipped.

    An override wins, then the folders, then CRDS (:mod:`ramp2slope.references.crds_client`).
    Raises ReferenceFileError naming the reftype and the places searched when none has it.
    With ``use_crds=False``, None when neither an override nor a folder supplies it.
    """
    if override:
        override = os.fspath(override)
        if override.strip().upper() == NOT_APPLICABLE:
            return NOT_APPLICABLE
        if not os.path.isfile(override):
            raise ReferenceFileError(f"override_{reftype}: {override}: no such file")
        chosen_by_user(override)
        return os.path.abspath(override)
    instrument = str(model.meta.instrument.name or "").upper()
    if reftype.lower() in NOT_FOR_INSTRUMENT.get(instrument, ()):
        return NOT_APPLICABLE
    searched = []
    for directory in (refdir, os.environ.get(ENV_REFDIR)):
        if not directory:
            continue
        if not os.path.isdir(directory):
            raise ReferenceFileError(f"reference directory {directory} does not exist")
        searched.append(directory)
        found = find_in_directory(reftype, model, directory)
        if found:
            return os.path.abspath(found)
    if not use_crds:
        return None
    try:
        return crds_client.get_reference_paths(model, [reftype])[reftype]
    except ReferenceFileError as exc:
        where = ", ".join(searched) if searched else (
            f"no folder (give --refdir DIR, set {ENV_REFDIR}, or override_{reftype}=PATH)")
        raise ReferenceFileError(
            f"no {reftype.upper()} reference file for {model.meta.instrument.name}/"
            f"{model.meta.instrument.detector} (subarray {model.meta.subarray.name}, readpatt "
            f"{model.meta.exposure.readpatt}): searched {where}; CRDS: {exc}") from None
