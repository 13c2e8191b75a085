"""Step parameter files: the ASDF files of the official pipeline, and its older ``.cfg`` form.

An ASDF parameter file (what ``strun --save-parameters``, ``Step.export_config`` and the CRDS
``pars-*`` references hold) has a tree with ``class`` (the step's fully qualified class name),
``name``, ``parameters`` {name: value} and, for a pipeline, ``steps``: a list of the same
structure, one per sub-step, whose ``name`` is the sub-step's alias. Files from the first
format version keep everything under ``parameters`` (``class``, ``name`` and ``steps`` as a
mapping). The ``.cfg`` form is an INI text: ``key = value`` lines, ``[steps]`` and ``[[alias]]``
sections.

Files are read into a *node*: a dict with optional ``"class"`` and ``"name"`` strings, one
:class:`Setting` per parameter (the value, converted to the parameter's type, and where it came
from) and ``"steps"`` {alias: node}. Values are checked against the step class as the file is
read, so that an error names the file that holds the bad value.
"""
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import Ramp2SlopeError

log = logging.getLogger("ramp2slope")

#: The official class of each ramp2slope step (the names in files written by jwst and in CRDS).
JWST_CLASSES = {
    "Detector1Pipeline": "jwst.pipeline.calwebb_detector1.Detector1Pipeline",
    "GroupScaleStep": "jwst.group_scale.group_scale_step.GroupScaleStep",
    "DQInitStep": "jwst.dq_init.dq_init_step.DQInitStep",
    "SaturationStep": "jwst.saturation.saturation_step.SaturationStep",
    "IPCStep": "jwst.ipc.ipc_step.IPCStep",
    "SuperBiasStep": "jwst.superbias.superbias_step.SuperBiasStep",
    "RefPixStep": "jwst.refpix.refpix_step.RefPixStep",
    "LinearityStep": "jwst.linearity.linearity_step.LinearityStep",
    "DarkCurrentStep": "jwst.dark_current.dark_current_step.DarkCurrentStep",
    "ChargeMigrationStep": "jwst.charge_migration.charge_migration_step.ChargeMigrationStep",
    "JumpStep": "jwst.jump.jump_step.JumpStep",
    "PictureFrameStep": "jwst.picture_frame.picture_frame_step.PictureFrameStep",
    "CleanFlickerNoiseStep": "jwst.clean_flicker_noise.clean_flicker_noise_step.CleanFlickerNoiseStep",
    "PersistenceStep": "jwst.persistence.persistence_step.PersistenceStep",
    "RampFitStep": "jwst.ramp_fitting.ramp_fit_step.RampFitStep",
    "GainScaleStep": "jwst.gain_scale.gain_scale_step.GainScaleStep",
    # MIRI
    "EmiCorrStep": "jwst.emicorr.emicorr_step.EmiCorrStep",
    "RscdStep": "jwst.rscd.rscd_step.RscdStep",
    "FirstFrameStep": "jwst.firstframe.firstframe_step.FirstFrameStep",
    "LastFrameStep": "jwst.lastframe.lastframe_step.LastFrameStep",
    "ResetStep": "jwst.reset.reset_step.ResetStep",
}

#: ramp2slope's own parameters, which the official steps would refuse: files keep them apart,
#: under ``ramp2slope_parameters``, a key the official reader does not look at.
RAMP2SLOPE_ONLY = ("refdir", "threads")
EXTRA_KEY = "ramp2slope_parameters"

#: The placeholders of the official metadata template (a file meant for CRDS fills them in).
_SPECIFY = "<SPECIFY>"


class ParameterFileError(Ramp2SlopeError):
    """A parameter file that cannot be read, or holds a parameter the step does not have."""


@dataclass
class Setting:
    """A parameter value and where it was set (a file's description, or "arguments")."""

    value: object
    source: str


# -- classes -------------------------------------------------------------------------------------
def step_classes():
    """{class name: class} for every ramp2slope step a parameter file can name."""
    from ..pipeline import Detector1Pipeline   # the steps import this package: import late

    classes = {Detector1Pipeline.__name__: Detector1Pipeline}
    for cls in Detector1Pipeline.step_defs.values():
        classes[cls.__name__] = cls
    return classes


def jwst_class_name(cls):
    """The official fully qualified name of a ramp2slope step class (its own name otherwise)."""
    return JWST_CLASSES.get(cls.__name__, f"{cls.__module__}.{cls.__name__}")


def resolve_class(name, where):
    """The ramp2slope class for a class name in a file: the official one
    (``jwst.jump.jump_step.JumpStep``), ramp2slope's, the bare class name or the step alias."""
    classes = step_classes()
    short = str(name).rsplit(".", 1)[-1]
    package = str(name).split(".", 1)[0] if "." in str(name) else None
    if short in classes and package in (None, "jwst", "ramp2slope"):
        return classes[short]
    for cls in classes.values():
        if name == cls.class_alias:
            return cls
    raise ParameterFileError(f"{where}: class {name!r} is not a step ramp2slope implements "
                             f"(Detector1Pipeline and its steps)")


def pars_reftype(cls):
    """The CRDS reference type of a step's parameter files, as the official Step names it."""
    return f"pars-{cls.__name__.lower()}"


# -- reading -------------------------------------------------------------------------------------
def read_tree(path):
    """The raw contents of a parameter file as ``{"class", "name", "parameters", "steps"}``,
    ``steps`` being {alias: the same}; ASDF (both format versions) or ``.cfg`` text."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ParameterFileError(f"{path}: no such parameter file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(5)
    except OSError as exc:
        raise ParameterFileError(f"{path}: cannot read: {exc.strerror}") from None
    if head == b"#ASDF":
        return _read_asdf(path)
    return _read_cfg(path)


def _read_asdf(path):
    import asdf

    try:
        with asdf.open(path, lazy_load=False, memmap=False) as handle:
            tree = _plain(dict(handle.tree))
    except Exception as exc:  # asdf raises many types for a damaged file; all are one problem
        raise ParameterFileError(f"{path}: not a readable ASDF file ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(tree.get("parameters"), dict):
        raise ParameterFileError(f"{path}: not a step parameter file (the ASDF tree has no "
                                 f"'parameters' mapping)")
    if "class" not in tree and "class" in tree["parameters"]:
        return _legacy_node(tree["parameters"], path)
    return _asdf_node(tree, path, "root")


def _plain(value):
    """ASDF's tagged containers as plain dicts and lists (numpy scalars as Python numbers)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    return value


def _asdf_node(tree, path, where):
    parameters = tree.get("parameters")
    if not isinstance(parameters, dict):
        raise ParameterFileError(f"{path}: {where}: 'parameters' is not a mapping")
    node = {"class": tree.get("class"), "name": tree.get("name"), "parameters": dict(parameters),
            "steps": {}}
    extra = tree.get(EXTRA_KEY)
    if isinstance(extra, dict):
        node["parameters"].update(extra)
    steps = tree.get("steps") or []
    if not isinstance(steps, list):
        raise ParameterFileError(f"{path}: 'steps' is not a list of step entries")
    for entry in steps:
        if not isinstance(entry, dict) or not entry.get("name"):
            raise ParameterFileError(f"{path}: an entry of 'steps' has no 'name'")
        node["steps"][entry["name"]] = _asdf_node(entry, path, f"step {entry['name']}")
    return node


def _legacy_node(parameters, path):
    parameters = dict(parameters)
    node = {"class": parameters.pop("class", None), "name": parameters.pop("name", None),
            "steps": {}}
    steps = parameters.pop("steps", None) or {}
    if not isinstance(steps, dict):
        raise ParameterFileError(f"{path}: 'steps' is not a mapping of step names")
    for alias, section in steps.items():
        if not isinstance(section, dict):
            raise ParameterFileError(f"{path}: steps.{alias} is not a mapping")
        node["steps"][alias] = _legacy_node(section, path)
    node["parameters"] = parameters
    return node


def _read_cfg(path):
    """The INI form (configobj syntax, the subset step files use)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        if b"\0" in raw:
            raise UnicodeDecodeError("utf-8", raw, 0, 1, "NUL byte")
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ParameterFileError(f"{path}: not a parameter file (neither ASDF nor .cfg text)") from None
    root = {"class": None, "name": None, "parameters": {}, "steps": {}}
    # stack of (depth, section dict); a section's keys go to its "parameters"
    stack = [(0, root)]
    sections = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = _strip_comment(line).strip()
        if not stripped:
            continue
        if stripped.startswith("["):
            depth = len(stripped) - len(stripped.lstrip("["))
            if not stripped.endswith("]" * depth):
                raise ParameterFileError(f"{path}: line {number}: bad section header {stripped!r}")
            name = stripped[depth:-depth].strip()
            while stack and stack[-1][0] >= depth:
                stack.pop()
            if not stack:
                raise ParameterFileError(f"{path}: line {number}: section {name!r} is not nested "
                                         f"in its parent")
            parent = stack[-1][1]
            section = {"class": None, "name": None, "parameters": {}, "steps": {}, "_raw": {}}
            parent.setdefault("_raw", {})[name] = section
            stack.append((depth, section))
            sections.append(section)
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip():
            raise ParameterFileError(f"{path}: line {number}: not a parameter file line "
                                     f"(expected name = value): {stripped[:60]!r}")
        stack[-1][1]["parameters"][key.strip()] = _cfg_value(value.strip())
    return _cfg_node(root, path)


def _strip_comment(line):
    quote = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#":
            return line[:index]
    return line


def _cfg_value(text):
    """A configobj value: quoted text, a comma list, ``None``, or the bare text (typed later)."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text == "None":
        return None
    if "," in text:
        return [_cfg_value(part.strip()) for part in text.split(",") if part.strip()]
    return text


def _cfg_node(section, path):
    parameters = dict(section["parameters"])
    node = {"class": parameters.pop("class", None), "name": parameters.pop("name", None),
            "parameters": parameters, "steps": {}}
    raw = section.get("_raw", {})
    steps = raw.pop("steps", None)
    if raw:
        raise ParameterFileError(f"{path}: section [{next(iter(raw))}] is not a step parameter "
                                 f"section (sub-steps go under [steps])")
    if steps is not None:
        if steps["parameters"]:
            raise ParameterFileError(f"{path}: [steps] holds parameters "
                                     f"({', '.join(steps['parameters'])}); put them in "
                                     f"[[<step>]] sections")
        for alias, sub in steps.get("_raw", {}).items():
            node["steps"][alias] = _cfg_node(sub, path)
    return node


# -- checking against a step class ---------------------------------------------------------------
def load_node(path, cls, source=None, where=None):
    """A parameter file read and checked against ``cls``: a node of :class:`Setting` values.

    Its ``class`` must be ``cls`` (or a subclass); every parameter must be one of the step's,
    with a value of the right type. Sub-steps' ``config_file`` entries are kept, to be read
    once every source is merged (as the official pipeline does).
    """
    path = os.fspath(path)
    source = source or f"config file {path}"
    return check_tree(read_tree(path), cls, source, path, where)


def check_tree(tree, cls, source, path, where=None, pipeline=None):
    """A raw tree (see :func:`read_tree`) as a node of Settings for ``cls``."""
    where = where or path
    class_name = tree.get("class")
    if class_name:
        found = resolve_class(class_name, where)
        if not issubclass(found, cls):
            raise ParameterFileError(f"{where}: holds parameters for {found.__name__} "
                                     f"({class_name}), not {cls.__name__}")
    node = {}
    if class_name:
        node["class"] = class_name
    if tree.get("name"):
        node["name"] = tree["name"]
    params = {p.name: p for p in cls.parameters()}
    prefix = f"steps.{pipeline}." if pipeline else ""
    for key, value in tree["parameters"].items():
        if key == "config_file" and pipeline:
            node["config_file"] = Setting(value, source)
            continue
        param = params.get(key)
        if param is None:
            raise ParameterFileError(f"{where}: unknown parameter {prefix}{key} "
                                     f"({cls.__name__} has no parameter {key!r})")
        if key in ("pre_hooks", "post_hooks") and value:
            raise ParameterFileError(f"{where}: {prefix}{key}: ramp2slope does not run hooks")
        try:
            converted = param.convert(value, cls.__name__)
        except Ramp2SlopeError:
            raise ParameterFileError(
                f"{where}: {prefix}{key}: {_type_problem(param, value)}") from None
        if key == "input_dir" and converted == "":
            converted = None   # the official steps write an unset input_dir as ''
        node[key] = Setting(converted, source)
    steps = tree.get("steps") or {}
    if steps:
        step_defs = getattr(cls, "step_defs", None)
        if not step_defs:
            raise ParameterFileError(f"{where}: {cls.__name__} is a single step, the file has "
                                     f"sub-steps ({', '.join(steps)})")
        node["steps"] = {}
        for alias, sub in steps.items():
            if alias not in step_defs:
                raise ParameterFileError(f"{where}: {cls.__name__} has no step {alias!r}")
            node["steps"][alias] = check_tree(sub, step_defs[alias], source, path, where,
                                              pipeline=alias)
    return node


def _type_problem(param, value):
    expected = {"boolean": "true or false", "integer": "an integer", "int": "an integer",
                "float": "a number", "float_or_none": "a number or None",
                "integer_or_none": "an integer or None", "int_list": "a list of integers",
                "float_list": "a list of numbers", "string_list": "a list of strings"}
    if param.type == "option":
        wanted = "one of " + ", ".join(repr(o) for o in param.options)
    else:
        wanted = expected.get(param.type, f"a {param.type}")
    return f"expected {wanted}, got {value!r}"


# -- writing -------------------------------------------------------------------------------------
def export_tree(step):
    """The official parameter-file tree of ``step`` (``class``, ``name``, ``parameters``,
    ``steps``), with ramp2slope's own parameters apart under ``ramp2slope_parameters``."""
    parameters, extra = {}, {}
    for name, value in step.get_pars().items():
        if name == "steps":
            continue
        param = step._params.get(name)
        if param is not None and value is not None:
            value = param.convert(value, step.name)   # a default of 0 for a float is written 0.0
        if name in RAMP2SLOPE_ONLY:
            if value is not None:
                extra[name] = value
        elif name.startswith("override_") and value is None:
            continue   # the official files leave unset overrides out
        elif name == "input_dir" and value is None:
            parameters[name] = ""   # the official steps report an unset input_dir as ''
        else:
            parameters[name] = list(value) if isinstance(value, (list, tuple)) else value
    tree = {"class": jwst_class_name(type(step)), "name": step.name, "parameters": parameters}
    if extra:
        tree[EXTRA_KEY] = extra
    sub_steps = getattr(step, "steps", None)
    if isinstance(sub_steps, dict) and sub_steps:
        tree["steps"] = [export_tree(sub) for sub in sub_steps.values()]
    return tree


def metadata_template(class_name):
    """The metadata block of a file meant for CRDS, with the official placeholders to fill in."""
    now = datetime.now(timezone.utc).replace(microsecond=0).isoformat().removesuffix("+00:00")
    return {"author": _SPECIFY, "date": now,
            "description": f"Parameters for calibration step {class_name}",
            "instrument": {"name": _SPECIFY}, "origin": _SPECIFY, "pedigree": _SPECIFY,
            "reftype": _SPECIFY, "telescope": _SPECIFY, "useafter": _SPECIFY}


def write_parameter_file(step, filename, include_metadata=False):
    """Write ``step``'s parameters as an ASDF parameter file the official pipeline reads."""
    import asdf

    filename = os.fspath(filename)
    tree = export_tree(step)
    if include_metadata:
        tree["meta"] = metadata_template(tree["class"])
    try:
        asdf.AsdfFile(tree).write_to(filename)
    except OSError as exc:
        raise ParameterFileError(f"{filename}: cannot write: {exc.strerror}") from None
    return filename
