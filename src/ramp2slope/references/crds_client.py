"""Reference files chosen by CRDS, as the official pipeline chooses them.

When neither a step's ``override_<reftype>`` nor a reference folder supplies a type, the
``crds`` client library picks the best reference for the exposure's header in the CRDS context,
exactly as ``jwst`` does (the same call with the same parameters):

* the cache is ``CRDS_PATH`` (crds's own default when unset, as for jwst);
* the context is ``CRDS_CONTEXT``, else the cache's operational context (its
  ``config/jwst/server_config``), else the server's;
* the server is ``CRDS_SERVER_URL``. With everything needed in the cache no connection is
  made; with a reachable server, files missing from the cache are downloaded into it.

The parameters are the exposure's metadata under their data-model names
(``META.INSTRUMENT.DETECTOR``, ``META.SUBARRAY.NAME``, ``META.OBSERVATION.DATE``, ...): the
keywords ramp2slope maps (:mod:`ramp2slope.datamodels.keywords`) and, when the file carries one,
every entry of its ASDF metadata tree, as stdatamodels' ``get_crds_parameters`` gives them.

A context that answers N/A for a type makes the step skip, as in jwst; every other problem (no
cache and no server, a context that does not exist, a file the cache lacks while the server
cannot be reached, a type the context does not know, a corrupt mapping) is one line naming
the setting or file. CRDS's own console messages are kept out of the way while it is asked.
"""
import contextlib
import io
import logging
import os

from ..errors import ReferenceFileError

__all__ = ["crds_parameters", "get_reference_paths", "recommended_names", "cached_reference",
           "context_used", "is_crds_path", "crds_uri", "crds_version", "cache_path"]

log = logging.getLogger("ramp2slope")

NOT_APPLICABLE = "N/A"
OBSERVATORY = "jwst"

# (parameters as a sorted tuple, reftype) -> path or "N/A": asked once per run and process.
_ANSWERS = {}
# the real paths of the files CRDS chose in this process
_CHOSEN = set()


#: crds's cache when no ``CRDS_*`` variable is set (``crds.core.config.CRDS_DEFAULT_CACHE``;
#: the tests check it against crds's own).
CRDS_DEFAULT_CACHE = "/grp/crds/cache"


def cache_path():
    """The CRDS cache folder in use (crds's own rule: ``CRDS_PATH``, else its default, as for
    jwst)."""
    if os.environ.get("CRDS_PATH"):
        return os.path.expanduser(os.environ["CRDS_PATH"])
    if not any(name.startswith("CRDS_") for name in os.environ):
        # nothing set: crds's default, known without importing crds (0.3 s), which a run with
        # its references in a folder and no CRDS at all then never imports
        return CRDS_DEFAULT_CACHE
    _crds()
    from crds.core import config

    return config.get_crds_path()


def _has_cache():
    return os.path.isfile(os.path.join(cache_path(), "config", OBSERVATORY, "server_config"))


def _check_configured():
    if os.environ.get("CRDS_SERVER_URL") or _has_cache():
        return
    raise ReferenceFileError(f"CRDS has no cache at {cache_path()} (set CRDS_PATH) and no "
                             f"server (set CRDS_SERVER_URL)")


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    return value


def _flatten(tree, prefix, out):
    for key, value in tree.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict):
            _flatten(value, name, out)
        elif isinstance(value, (str, int, float, bool)) or hasattr(value, "item"):
            out[name.upper()] = _plain(value)


def crds_parameters(model):
    """The exposure's metadata as CRDS is asked for it: ``{'META.INSTRUMENT.NAME': 'NIRCAM', ...}``.

    The ASDF metadata tree of the input (when it had one) comes first, then every keyword the
    model maps, which win where both say something (stdatamodels reads FITS keywords over the
    tree in the same way).
    """
    params = {}
    tree = getattr(model, "_asdf_meta", None)
    if tree is not None:
        _flatten(tree.meta(), "META", params)
    for key, value in model.meta.to_flat_dict().items():
        if value is not None:
            params[key.upper()] = value
    return params


@contextlib.contextmanager
def _quiet():
    """CRDS prints INFO and ERROR lines of its own, and on some failures a traceback, to the
    console; ramp2slope says what matters in one line instead (what CRDS printed goes to the
    debug log)."""
    crds_log = logging.getLogger("CRDS")
    level = crds_log.level
    crds_log.setLevel(logging.CRITICAL if log.getEffectiveLevel() > logging.DEBUG else level)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed):
            yield
    except SystemExit:
        # crds ends the process (sys.exit(-1)) on what it deems fatal, e.g. a CRDS_PATH without
        # a cache and no server: a failed look-up here, said in one line by the caller
        said = [line for line in printed.getvalue().splitlines() if line.strip()]
        raise ReferenceFileError("CRDS gave up: " + (" ".join(said[0].split()) if said else
                                                     "no reason given")) from None
    finally:
        crds_log.setLevel(level)
        if printed.getvalue().strip():
            log.debug("CRDS printed: %s", printed.getvalue().strip())


def _crds():
    try:
        import crds  # noqa: F401
        from crds.core import exceptions
    except ImportError:   # a runtime dependency; only a broken install lacks it
        raise ReferenceFileError("the crds package is not installed: pip install crds") from None
    return crds, exceptions


def _explain(exc, reftypes):
    """One line for a failed CRDS look-up."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    types = "/".join(t.upper() for t in reftypes)
    where = f"CRDS (cache {cache_path()}, context {os.environ.get('CRDS_CONTEXT') or 'operational'})"
    if "Unknown reference type" in text:
        return f"{types}: the CRDS context does not know this reference type ({where})"
    if "Failed" in text and ("connect" in text.lower() or "server" in text.lower()):
        return f"{types}: {where} cannot be reached and the cache cannot answer: {text}"
    return f"{types}: {where}: {text}"


def get_reference_paths(model, reftypes, params=None):
    """``{reftype: path or "N/A"}`` chosen by CRDS for ``model``, fetched into the cache from
    the server when missing there; ReferenceFileError otherwise. ``params``: the model's
    ``crds_parameters`` when the caller has them (they take a thousand header look-ups)."""
    reftypes = [t.lower() for t in reftypes]
    if params is None:
        params = crds_parameters(model)
    key = tuple(sorted((k, str(v)) for k, v in params.items()))
    missing = [t for t in reftypes if (key, t) not in _ANSWERS]
    if missing:
        _check_configured()
        crds, exceptions = _crds()
        try:
            with _quiet():
                answers = crds.getreferences(params, reftypes=missing, observatory=OBSERVATORY)
        except (exceptions.CrdsError, OSError, ValueError, KeyError, SyntaxError) as exc:
            raise ReferenceFileError(_explain(exc, missing)) from None
        for reftype in missing:
            path = str(answers.get(reftype, ""))
            if not path or "N/A" in path.upper():
                path = NOT_APPLICABLE
            elif not os.path.isfile(path):
                raise ReferenceFileError(f"{reftype.upper()}: CRDS chose {os.path.basename(path)}, "
                                         f"which is not in the cache {cache_path()}")
            _ANSWERS[(key, reftype)] = path
            if path != NOT_APPLICABLE:
                _CHOSEN.add(os.path.realpath(path))
    return {t: _ANSWERS[(key, t)] for t in reftypes}


def is_crds_path(path):
    """Whether ``path`` is a reference CRDS chose (its name is then recorded as crds://, as jwst
    records what CRDS chose; a file named as an override keeps its path, as in jwst, even when
    it lies in the CRDS cache). Telling it needs no crds import when CRDS was not asked."""
    if not path or path == NOT_APPLICABLE:
        return False
    return os.path.realpath(path) in _CHOSEN


def crds_uri(path):
    """``crds://<file name>``, how jwst records a reference CRDS chose."""
    return "crds://" + os.path.basename(path)


def context_used():
    """The name of the CRDS context the look-ups use (e.g. ``jwst_1322.pmap``)."""
    _check_configured()
    crds, exceptions = _crds()
    from crds.core import heavy_client

    try:
        with _quiet():
            return heavy_client.get_context_name(OBSERVATORY)
    except (exceptions.CrdsError, OSError, ValueError) as exc:
        raise ReferenceFileError(f"CRDS context: {' '.join(str(exc).split())}") from None


def record_context(model):
    """Write CRDS_CTX and CRDS_VER into ``model`` when CRDS is set up (a cache or a server), as
    jwst writes them into every product whatever the source of its references."""
    if not (os.environ.get("CRDS_CONTEXT") or os.environ.get("CRDS_SERVER_URL")
            or os.environ.get("CRDS_PATH")):
        return
    try:
        context = context_used()
    except ReferenceFileError as exc:   # not an error here: references may all be local
        log.debug("no CRDS context recorded: %s", exc)
        return
    model.meta.ref_file.crds.context_used = context
    model.meta.ref_file.crds.sw_version = crds_version()


def crds_version():
    crds, _ = _crds()
    return crds.__version__


def recommended_names(model, reftypes):
    """``{reftype: file name or "N/A"}`` CRDS chooses for ``model``, without fetching anything
    (for ``ramp2slope refs``, which says where each would come from)."""
    reftypes = [t.lower() for t in reftypes]
    _check_configured()
    crds, exceptions = _crds()
    try:
        with _quiet():
            answers = crds.getrecommendations(crds_parameters(model), reftypes=reftypes,
                                              observatory=OBSERVATORY)
    except (exceptions.CrdsError, OSError, ValueError, KeyError, SyntaxError) as exc:
        raise ReferenceFileError(_explain(exc, reftypes)) from None
    return {t: (NOT_APPLICABLE if "N/A" in str(answers.get(t, "N/A")).upper() else str(answers[t]))
            for t in reftypes}


def cached_reference(name):
    """The path of reference ``name`` in the cache, or None when the cache does not hold it."""
    from crds.core import config

    try:
        path = config.locate_file(name, OBSERVATORY)
    except Exception:   # a name crds cannot place: certainly not cached
        return None
    return path if os.path.isfile(path) else None
