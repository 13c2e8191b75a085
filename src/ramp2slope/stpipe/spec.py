"""Step parameter specifications in the official ``spec`` string format.

A spec is a block of lines ``name = type(default=value, ...)  # help``, as printed by
``print(RefPixStep.spec)``. This module parses such a block into :class:`Parameter` objects and
converts user-given values (often strings from the command line) to the declared type.
"""
import ast
import re
from dataclasses import dataclass

from ..errors import Ramp2SlopeError

_LINE = re.compile(r"^\s*(?P<name>[A-Za-z_]\w*)\s*=\s*(?P<type>[A-Za-z_]\w*)\((?P<args>.*?)\)\s*(#\s*(?P<help>.*))?$")


@dataclass
class Parameter:
    name: str
    type: str
    default: object
    help: str
    options: tuple = ()

    def convert(self, value, owner="step"):
        """``value`` as this parameter's type; strings from a command line are parsed."""
        if value is None:
            return None
        try:
            return _CONVERTERS.get(self.type, _as_string)(value, self)
        except (TypeError, ValueError) as exc:
            raise Ramp2SlopeError(f"{owner}.{self.name}: {exc}") from None


def _literal(text):
    text = text.strip()
    if text in ("None", "none", ""):
        return None
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    if text in ("list()", "[]"):
        return []
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text.strip("'\"")


def _split_args(args):
    """Split ``'a', 'b', default='a'`` at top-level commas."""
    parts, depth, current, quote = [], 0, "", None
    for char in args:
        if quote:
            current += char
            if char == quote:
                quote = None
            continue
        if char in "'\"":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def parse_spec(text):
    """The parameters declared in a spec block, in order."""
    params = []
    for line in (text or "").splitlines():
        if not line.strip() or line.strip().startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ValueError(f"cannot parse spec line: {line!r}")
        default, options = None, []
        for arg in _split_args(match["args"]):
            keyword = re.match(r"^(\w+)\s*=\s*", arg)
            if keyword and keyword.group(1) == "default":
                default = _literal(arg[keyword.end():])
            elif not keyword:
                options.append(_literal(arg))
        params.append(Parameter(match["name"], match["type"], default, (match["help"] or "").strip(),
                                tuple(options)))
    return params


def _as_bool(value, param):
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _as_int(value, param):
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    if isinstance(value, str):
        value = value.strip()
    number = float(value)
    if number != int(number):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(number)


def _as_float(value, param):
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _as_string(value, param):
    if isinstance(value, str) and value.strip() in ("None", "none"):
        return None
    return value if not isinstance(value, str) else value


def _as_option(value, param):
    value = _literal(value) if isinstance(value, str) else value
    if param.options and value not in param.options:
        raise ValueError(f"expected one of {', '.join(repr(o) for o in param.options)}, got {value!r}")
    return value


def _as_list(item):
    def convert(value, param):
        if isinstance(value, str):
            value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
        return [item(v, param) for v in value]
    return convert


def _as_int_or_none(value, param):
    if isinstance(value, str) and value.strip().lower() == "none":
        return None
    return _as_int(value, param)


def _as_float_or_none(value, param):
    if isinstance(value, str) and value.strip().lower() == "none":
        return None
    return _as_float(value, param)


_CONVERTERS = {
    "boolean": _as_bool,
    "integer": _as_int,
    "int": _as_int,
    "float": _as_float,
    "string": _as_string,
    "output_file": _as_string,
    "input_file": _as_string,
    "is_string_or_none": _as_string,
    "option": _as_option,
    "string_list": _as_list(lambda v, p: str(v).strip()),
    "int_list": _as_list(_as_int),
    "float_list": _as_list(_as_float),
    "integer_or_none": _as_int_or_none,
    "float_or_none": _as_float_or_none,
}
