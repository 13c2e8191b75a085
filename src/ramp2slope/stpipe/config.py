"""Where a step's parameters come from, with the official precedence.

From lowest to highest: the code's defaults, the CRDS parameter references for the exposure
(for a pipeline: each step's ``pars-<stepclass>`` file, then the pipeline's own
``pars-<pipelineclass>`` file over them), the user's parameter file (``config_file``), then
keyword arguments (the command line). A sub-step's ``config_file`` named in a keyword
argument's ``steps`` section is read beneath that section's other values; one named inside a
file is read last, beneath everything already set for that step, which is what the official
``Pipeline.merge_config`` does.

:class:`ParameterFileSupport` gives :class:`~ramp2slope.stpipe.Step` the official class methods
(``call``, ``build_config``, ``get_config_from_reference``, ``from_config_file``,
``from_config_section``) and ``export_config``/``update_pars``. Only ``call`` and the command
line ask CRDS; ``Step(...)`` and ``from_config_file`` do not, as in the official pipeline. Each
file that set parameters is named in one INFO line of the "ramp2slope" log.
"""
import contextlib
import logging
import os
import sys

from ..errors import Ramp2SlopeError
from .crds_pars import find_parameter_references
from .parfiles import (ParameterFileError, Setting, check_tree, load_node, pars_reftype,
                       read_tree, resolve_class, write_parameter_file)

log = logging.getLogger("ramp2slope")

ARGUMENTS = "arguments"


# -- nodes ----------------------------------------------------------------------------------------
def merge(into, new):
    """Merge node ``new`` over node ``into`` (in place); returns ``into``."""
    for key, value in new.items():
        if key == "steps":
            steps = into.setdefault("steps", {})
            for alias, sub in value.items():
                merge(steps.setdefault(alias, {}), sub)
        else:
            into[key] = value
    return into


def plain(node):
    """A node as the official configuration mapping: {parameter: value, 'steps': {...}}."""
    out = {}
    for key, value in node.items():
        if key == "steps":
            out["steps"] = {alias: plain(sub) for alias, sub in value.items()}
        else:
            out[key] = value.value if isinstance(value, Setting) else value
    return out


def _tree_from_mapping(mapping, is_pipeline, top=True):
    """An official configuration mapping as the raw tree :func:`check_tree` reads."""
    mapping = dict(mapping)
    tree = {"class": mapping.pop("class", None), "name": mapping.pop("name", None), "steps": {}}
    if top:
        mapping.pop("config_file", None)   # the official reader drops it at the top level too
    steps = mapping.pop("steps", None) if is_pipeline else None
    for alias, section in (steps or {}).items():
        if not isinstance(section, dict):
            raise Ramp2SlopeError(f"steps.{alias}: expected a mapping of parameters, got "
                                  f"{section!r}")
        tree["steps"][alias] = _tree_from_mapping(section, False, top=False)
    tree["parameters"] = mapping
    return tree


# -- the sources ----------------------------------------------------------------------------------
def crds_node(cls, dataset, disable=None):
    """The parameters CRDS gives ``cls`` for ``dataset``: a node of Settings."""
    step_defs = getattr(cls, "step_defs", None) or {}
    reftypes = [pars_reftype(step_cls) for step_cls in step_defs.values()] + [pars_reftype(cls)]
    paths = find_parameter_references(dataset, dict.fromkeys(reftypes), disable)
    node = {}
    for alias, step_cls in step_defs.items():
        reftype = pars_reftype(step_cls)
        if reftype in paths:
            sub = _crds_file_node(paths[reftype], step_cls, reftype)
            sub.pop("name", None)
            sub.pop("class", None)
            merge(node.setdefault("steps", {}).setdefault(alias, {}), sub)
    reftype = pars_reftype(cls)
    if reftype in paths:
        merge(node, _crds_file_node(paths[reftype], cls, reftype))
    return node


def _crds_file_node(path, cls, reftype):
    log.debug("%s parameters found: %s", reftype.upper(), path)
    return load_node(path, cls, source=f"{reftype.upper()} {os.path.basename(path)}",
                     where=f"{reftype.upper()} reference {path}")


def arguments_node(cls, kwargs, config_dir=""):
    """Keyword arguments as a node; a ``steps`` section's ``config_file`` is read beneath it."""
    node = {key: Setting(value, ARGUMENTS) for key, value in kwargs.items() if key != "steps"}
    steps = kwargs.get("steps")
    if not steps:
        return node
    if not isinstance(steps, dict):
        raise Ramp2SlopeError(f"steps: expected {{step: {{parameter: value}}}}, got {steps!r}")
    step_defs = getattr(cls, "step_defs", None) or {}
    node["steps"] = {}
    for alias, pars in steps.items():
        if not isinstance(pars, dict):
            raise Ramp2SlopeError(f"steps.{alias}: expected a mapping of parameters, got {pars!r}")
        pars = dict(pars)
        sub = {}
        step_file = pars.pop("config_file", None)
        if step_file and alias in step_defs:
            path = os.path.join(config_dir, os.fspath(step_file))
            sub = load_node(path, step_defs[alias])
            if sub.get("name") not in (None, alias):
                raise ParameterFileError(f"{path}: is the file of step {sub['name']!r}, given "
                                         f"for step {alias!r}")
            sub.pop("name", None)
            sub.pop("class", None)
        merge(sub, {key: Setting(value, ARGUMENTS) for key, value in pars.items()})
        node["steps"][alias] = sub
    return node


def expand_step_files(cls, node, config_file):
    """Read the ``config_file`` of each sub-step section beneath that section (in place)."""
    step_defs = getattr(cls, "step_defs", None) or {}
    base = os.path.dirname(os.fspath(config_file)) if config_file else ""
    for alias, sub in node.get("steps", {}).items():
        setting = sub.pop("config_file", None)
        if setting is None or not setting.value or alias not in step_defs:
            continue
        path = os.path.join(base, os.fspath(setting.value))
        from_file = load_node(path, step_defs[alias])
        from_file.pop("name", None)
        from_file.pop("class", None)
        node["steps"][alias] = merge(from_file, sub)
    return node


def build_node(cls, dataset, config_file=None, disable=None, **kwargs):
    """Every source merged in the official order; returns ``(node, config_file)``."""
    if dataset is not None:
        node = crds_node(cls, dataset, disable)
    else:
        log.debug("%s: no input given, no parameters from CRDS", cls.__name__)
        node = {}
    config_dir = ""
    if config_file is not None:
        config_file = os.fspath(config_file)
        merge(node, load_node(config_file, cls))
        config_dir = os.path.dirname(config_file)
    merge(node, arguments_node(cls, kwargs, config_dir))
    return expand_step_files(cls, node, config_file), config_file


# -- making the step -------------------------------------------------------------------------------
def instantiate(cls, node, name=None, parent=None, config_file=None):
    """The step ``cls`` with the parameters of ``node``; logs which file set which parameter."""
    params = {key: value.value for key, value in node.items() if isinstance(value, Setting)}
    steps = {alias: {key: value.value for key, value in sub.items() if isinstance(value, Setting)}
             for alias, sub in node.get("steps", {}).items()}
    if steps:
        params["steps"] = steps
    step = cls(name=name or node.get("name"), parent=parent, config_file=config_file, **params)
    log_sources(step, node)
    return step


def log_sources(step, node):
    """One INFO line per file that set parameters of ``step``: how many, and those it set away
    from the code's defaults (a saved file repeats every default, which would drown the rest)."""
    defaults = _default_pars(type(step))
    by_source = {}

    def collect(sub, prefix, default):
        for key, value in sub.items():
            if isinstance(value, Setting):
                changed = default is None or default.get(key, _MISSING) != value.value
                entry = by_source.setdefault(value.source, [0, []])
                entry[0] += 1
                if changed:
                    entry[1].append(f"{prefix}{key}={value.value!r}")
        for alias, inner in sub.get("steps", {}).items():
            inner_default = (default or {}).get("steps", {}).get(alias)
            collect(inner, f"{prefix}{alias}.", inner_default)

    collect(node, "", defaults)
    own = pars_reftype(type(step)).upper() + " "

    def rank(source):   # the order of precedence: the last line has the last word
        if source == ARGUMENTS:
            return 3
        if source.startswith("PARS-"):
            return 1 if source.startswith(own) else 0
        return 2

    for source in sorted(by_source, key=rank):
        count, changed = by_source[source]
        level = logging.DEBUG if source == ARGUMENTS else logging.INFO
        what = (f"{len(changed)} away from the defaults: {', '.join(changed)}" if changed
                else "all at their defaults")
        log.log(level, "%s: %s set %d parameter%s, %s", step.name, source, count,
                "" if count == 1 else "s", what)


_MISSING = object()


def _default_pars(cls):
    """The parameters a plain ``cls()`` has, or None when it cannot be made without arguments."""
    try:
        return cls().get_pars()
    except Exception:  # a step that needs arguments: every setting is then reported
        return None


#: The official pipeline's log line format.
LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


@contextlib.contextmanager
def call_logging(configure=True):
    """INFO messages on stderr for the duration of ``Step.call``, as the official ``call`` does.

    The official ``call`` shows each step's progress unless ``configure_log=False``; ``run``
    shows nothing unless the caller configured logging. Nothing is added when the caller has
    already given the ``ramp2slope`` logger (or the root logger) a handler of its own.
    """
    logger = logging.getLogger("ramp2slope")
    if not configure:
        yield
        return
    handler = None
    if not (logger.handlers or logging.getLogger().handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
    # INFO reaches the caller's own handlers too (a root handler, pytest's caplog), as the
    # official call's messages do
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        if handler is not None:
            logger.removeHandler(handler)
        logger.setLevel(level)


class ParameterFileSupport:
    """The official parameter-file API of a step class (mixed into Step)."""

    #: The parameter file this step was made from (relative sub-step files are found beside it).
    config_file = None

    @classmethod
    def get_config_reftype(cls):
        """The CRDS reference type of this step's parameter files (``pars-jumpstep``)."""
        return pars_reftype(cls)

    @classmethod
    def get_config_from_reference(cls, dataset, disable=None):
        """The parameters CRDS has for ``dataset`` (a path or a model), as a mapping
        ``{parameter: value, 'steps': {alias: {...}}}``; empty when disabled or none apply."""
        return plain(crds_node(cls, dataset, disable))

    @classmethod
    def build_config(cls, input, **kwargs):  # noqa: A002  (the official argument name)
        """``(mapping, config_file)``: CRDS, then ``config_file``, then the keyword arguments."""
        node, config_file = build_node(cls, input, **kwargs)
        return plain(node), config_file

    @classmethod
    def call(cls, *args, config_file=None, **kwargs):
        """Make the step from every source of parameters (see the module) and run it on ``args``.

        As in the official Step.call, an existing instance's settings play no part.
        """
        configure_log = kwargs.pop("configure_log", True)
        with call_logging(configure_log):
            node, config_file = build_node(cls, args[0] if args else None, config_file, **kwargs)
            return instantiate(cls, node, config_file=config_file).run(*args)

    @classmethod
    def from_config_file(cls, config_file, parent=None, name=None):
        """The step a parameter file describes (its ``class``, which must be ``cls`` or a
        subclass of it), with the file's parameters; CRDS is not asked."""
        config_file = os.fspath(config_file)
        tree = read_tree(config_file)
        step_cls = cls
        if tree.get("class"):
            step_cls = resolve_class(tree["class"], config_file)
            if not issubclass(step_cls, cls):
                raise ParameterFileError(f"{config_file}: holds parameters for "
                                         f"{step_cls.__name__} ({tree['class']}), not "
                                         f"{cls.__name__}")
        node = check_tree(tree, step_cls, f"config file {config_file}", config_file)
        expand_step_files(step_cls, node, config_file)
        name = name or node.get("name") or os.path.splitext(os.path.basename(config_file))[0]
        return instantiate(step_cls, node, name=name, parent=parent, config_file=config_file)

    @classmethod
    def from_config_section(cls, config, parent=None, name=None, config_file=None):
        """The step made from a configuration mapping (``{parameter: value, 'steps': {...}}``)."""
        is_pipeline = bool(getattr(cls, "step_defs", None))
        tree = _tree_from_mapping(config, is_pipeline)
        node = check_tree(tree, cls, ARGUMENTS, config_file or "configuration")
        expand_step_files(cls, node, config_file)
        return instantiate(cls, node, name=name or node.get("name"), parent=parent,
                           config_file=config_file)

    def export_config(self, filename, include_metadata=False):
        """Write this step's parameters (a pipeline's with its steps') to an ASDF parameter file
        the official pipeline reads; ``include_metadata`` adds the block CRDS requires."""
        return write_parameter_file(self, filename, include_metadata=include_metadata)

    def update_pars(self, parameters):
        """Set the parameters this step has from ``parameters`` (as :meth:`get_pars` gives them;
        ``steps`` goes to the sub-steps); other names are ignored, as officially."""
        own = self.get_pars()
        for key, value in parameters.items():
            if key == "steps" and "steps" in own:
                for alias, pars in value.items():
                    getattr(self, alias).update_pars(pars)
            elif key in own and key != "steps":
                setattr(self, key, value)
            else:
                log.debug("%s: parameter %s is not one of this step's; ignored", self.name, key)


def configure(cls, dataset, config_file=None, disable=None, **kwargs):
    """The step ``cls`` for ``dataset`` with parameters from every source (see the module): what
    the official command line builds before it runs a step."""
    node, config_file = build_node(cls, dataset, config_file, disable, **kwargs)
    return instantiate(cls, node, config_file=config_file)
