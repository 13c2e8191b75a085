"""CRDS parameter reference files (``pars-<stepclass>``) for an exposure.

The official steps ask CRDS, for the exposure being processed, for a ``pars-jumpstep``,
``pars-detector1pipeline``, ... reference and apply it beneath the user's settings. The look-up
answers a path, or nothing when the context has no such file for the exposure or CRDS cannot be
asked; as in the official pipeline, a failed look-up is not an error (the parameters stay as
they are) and is said in the debug log.

The switch is the official one: ``STPIPE_DISABLE_CRDS_STEPPARS`` (true for "true", "True", "t",
"yes", "y"), or an explicit ``disable`` argument. The look-up goes through
:func:`ramp2slope.references.crds_client.get_reference_paths`, which answers only when CRDS is
set up (a server in ``CRDS_SERVER_URL`` or a cache at ``CRDS_PATH``, by default crds's own
``/grp/crds/cache``): ramp2slope also runs with a folder of reference files and no CRDS at all,
and then must not try to reach the CRDS server on every run (nor import crds).
"""
import logging
import os

from .. import datamodels
from ..errors import Ramp2SlopeError

log = logging.getLogger("ramp2slope")

ENV_DISABLE = "STPIPE_DISABLE_CRDS_STEPPARS"
_TRUTHS = ("true", "True", "t", "yes", "y")


def steppars_disabled(disable=None):
    """Whether CRDS parameter files are off, with the official rules: a true ``disable`` (True,
    or one of the truth strings) turns them off; anything else defers to the environment."""
    if disable:
        if isinstance(disable, bool):
            return True
        if isinstance(disable, str):
            return disable in _TRUTHS
        raise Ramp2SlopeError(f"disable_crds_steppars must be true or false, got {disable!r}")
    return os.environ.get(ENV_DISABLE, "") in _TRUTHS


def metadata_model(dataset):
    """A model with the metadata of ``dataset`` (a path or a model), read without its ramp.

    Returns ``(model, close)``; ``close()`` releases what was opened here.
    """
    if isinstance(dataset, datamodels.DataModel):
        return dataset, lambda: None
    if isinstance(dataset, (list, tuple)):
        if not dataset:
            return None, lambda: None
        return metadata_model(dataset[0])
    if not isinstance(dataset, (str, os.PathLike)):
        return None, lambda: None
    from ..datamodels.lazy import open_ramp_source

    source = open_ramp_source(dataset)
    if source is not None:
        return source.template, source.close
    return datamodels.open(dataset), lambda: None


def find_parameter_references(dataset, reftypes, disable=None):
    """{reftype: path} of the CRDS parameter files for ``dataset`` (types without one left out)."""
    if steppars_disabled(disable):
        log.debug("CRDS parameter reference retrieval disabled (%s)", ", ".join(reftypes))
        return {}
    model, close = metadata_model(dataset)
    if model is None:
        log.debug("no exposure to look up CRDS parameter files for")
        return {}
    try:
        return _lookup(model, list(reftypes))
    finally:
        close()


def _lookup(model, reftypes):
    # One type at a time, as the official steps ask: a context without one of the types (most
    # have no pars-groupscalestep, ...) fails a whole batch.
    from ..references.crds_client import crds_parameters, get_reference_paths

    found = {}
    params = crds_parameters(model)
    for reftype in reftypes:
        try:
            path = get_reference_paths(model, [reftype], params).get(reftype)
        except Ramp2SlopeError as exc:
            log.debug("%s: no parameters found (%s)", reftype.upper(), exc)
            continue
        if not path or path == "N/A":
            log.debug("No %s reference files found.", reftype.upper())
            continue
        found[reftype] = path
    return found
