"""Run the official pipeline's own unit tests against ramp2slope.

Each ``test_*.py`` module of this folder names one test file of the installed ``jwst`` package
and a table of expected outcomes. :func:`port` reads that file's source, rewrites its imports so
that the public API under test is ramp2slope's (``jwst.<step>`` -> ``ramp2slope.<step>``, the
JWST data models -> ``ramp2slope.datamodels``, ``jwst.pipeline`` -> ``ramp2slope.pipeline``),
and executes it as a module whose tests pytest then collects. Imports of stcal, astropy and
of stdatamodels modules that are not the JWST data models are left alone, so the suite follows
whatever jwst version is installed.

Helper modules the tests import from jwst's test packages (``jwst.<step>.tests.helpers``,
``jwst.lib.tests.helpers``, a ``conftest.py`` next to the test file) are ported the same way,
so the models they build are ramp2slope's too.

A name the rewritten imports ask of ramp2slope that does not exist (a jwst-internal function
such as ``jwst.dq_init.dq_initialization.do_dqinit``) is bound to an :class:`Unported`
placeholder: the tests that use it fail with :class:`UnportedAPI`, and the module's table
lists them as expected failures with ``raises=UnportedAPI``.
"""
import ast
import importlib
import importlib.abc
import importlib.util
import os
import re
import sys

import pytest

#: the top-level name under which ported jwst test modules live in ``sys.modules``
PREFIX = "_jwst_ported"

#: jwst packages that ramp2slope implements under the same name
PORTED_PACKAGES = (
    "dq_init", "saturation", "superbias", "refpix", "linearity", "dark_current", "jump",
    "ramp_fitting", "ipc", "charge_migration", "persistence", "group_scale", "gain_scale",
    "pipeline", "firstframe", "lastframe", "reset", "rscd", "emicorr", "clean_flicker_noise",
    "picture_frame",
)


class UnportedAPI(AttributeError):
    """A jwst name the ported tests use that ramp2slope does not provide."""


class Unported:
    """Stands for ``module.name`` that ramp2slope does not have; any use raises UnportedAPI."""

    def __init__(self, module, name):
        object.__setattr__(self, "_what", f"{module}.{name}")

    def _fail(self, *args, **kwargs):
        raise UnportedAPI(f"ramp2slope has no {self._what}")

    __call__ = _fail

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        self._fail()

    def __repr__(self):
        return f"<unported {self._what}>"


def jwst_root():
    """The folder of the installed jwst package, or None."""
    spec = importlib.util.find_spec("jwst")
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


_PACKAGES = "|".join(PORTED_PACKAGES)
_REWRITES = [
    # the JWST data models, wherever they are imported from
    (re.compile(r"\bfrom\s+stdatamodels\.jwst\s+import\s+datamodels\b"), "from ramp2slope import datamodels"),
    (re.compile(r"\bstdatamodels\.jwst\.datamodels\b"), "ramp2slope.datamodels"),
    (re.compile(r"\bfrom\s+jwst\s+import\s+datamodels\b"), "from ramp2slope import datamodels"),
    (re.compile(r"(?<![\w.])jwst\.datamodels\b"), "ramp2slope.datamodels"),
    # jwst's test helpers: ported as well
    (re.compile(rf"(?<![\w.])jwst\.((?:{_PACKAGES}|lib)\.tests)\b"), PREFIX + r".\1"),
    # the few jwst.lib functions detector1 users call: ramp2slope.lib has them
    (re.compile(r"(?<![\w.])jwst\.lib\.(reffile_utils|stripe_utils)\b"), r"ramp2slope.lib.\1"),
    (re.compile(r"\bfrom\s+jwst\.lib\s+import\s+(reffile_utils|stripe_utils)\b"),
     r"from ramp2slope.lib import \1"),
    # the steps and the pipeline (module paths, logger names, monkeypatch targets)
    (re.compile(rf"(?<![\w.])jwst\.({_PACKAGES})\b"), r"ramp2slope.\1"),
    # the package logger's level set by name (``caplog.set_level("DEBUG", "jwst")``; stcal's,
    # whose algorithms ramp2slope implements, too)
    (re.compile(r"""(\.set_level\([^()]*?)(["'])(?:jwst|stcal)\2\)"""), r"\1\2ramp2slope\2)"),
]


def rewrite(source):
    """``source`` with the imports of the API under test pointing at ramp2slope."""
    for pattern, replacement in _REWRITES:
        source = pattern.sub(replacement, source)
    return source


def port_import(module, names):
    """The objects ``from module import names`` gives, an :class:`Unported` for each missing one."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if not (exc.name and module.startswith(exc.name)):
            raise   # a missing dependency of a module that exists is a real error
        mod = None
    out = []
    for name in names:
        value = getattr(mod, name, None) if mod is not None else None
        if value is None and mod is not None:
            try:   # a submodule not imported by its package
                value = importlib.import_module(f"{module}.{name}")
            except ModuleNotFoundError:
                value = None
        out.append(value if value is not None else Unported(module, name))
    return out


class _GuardImports(ast.NodeTransformer):
    """``from ramp2slope.x import a, b as c`` -> ``a, c = _port_import('ramp2slope.x', ('a', 'b'))``."""

    def visit_ImportFrom(self, node):
        if node.level or not node.module or not node.module.startswith("ramp2slope"):
            return node
        if any(alias.name == "*" for alias in node.names):
            return node
        targets = ast.Tuple([ast.Name(a.asname or a.name, ast.Store()) for a in node.names], ast.Store())
        call = ast.Call(ast.Name("_port_import", ast.Load()),
                        [ast.Constant(node.module), ast.Tuple([ast.Constant(a.name) for a in node.names], ast.Load())],
                        [])
        return ast.copy_location(ast.Assign([targets], call), node)


class _PortedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``_jwst_ported.<path>`` from jwst's ``<path>.py``, rewritten (see :func:`rewrite`)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != PREFIX and not fullname.startswith(PREFIX + "."):
            return None
        root = jwst_root()
        if root is None:
            return None
        parts = fullname.split(".")[1:]
        base = os.path.join(root, *parts)
        if os.path.isfile(base + ".py"):
            return importlib.util.spec_from_loader(fullname, self, origin=base + ".py")
        if os.path.isdir(base):
            spec = importlib.util.spec_from_loader(fullname, self, origin=None, is_package=True)
            spec.submodule_search_locations = []
            return spec
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        origin = module.__spec__.origin
        if origin is None:   # a package: nothing of jwst's __init__ is needed
            return
        with open(origin, encoding="utf-8") as handle:
            source = rewrite(handle.read())
        tree = ast.fix_missing_locations(_GuardImports().visit(ast.parse(source, origin)))
        module.__file__ = origin
        module.__dict__["_port_import"] = port_import
        exec(compile(tree, origin, "exec"), module.__dict__)


_FINDER = _PortedFinder()


def _install():
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def port(test_file, xfail=None, skip=None, crds=None):
    """The namespace of jwst's ``test_file`` (relative to the jwst package), ported.

    ``xfail``: {test id: reason or (reason, exception)} for tests expected to fail (strict);
    ``skip``: {test id: reason}; ``crds``: {test id: reason} for tests that need references
    from CRDS (jwst fails them offline), run here on a synthetic CRDS cache (see the conftest).
    A test id is a function name (every parametrization) or a pytest item name with its
    parameters (``test_x[1-2]``). The conftest applies the table
    and refuses entries that match no collected test.
    """
    if jwst_root() is None:
        pytest.skip("jwst is not installed", allow_module_level=True)
    _install()
    names = {}
    folder = os.path.dirname(test_file)
    if os.path.isfile(os.path.join(jwst_root(), folder, "conftest.py")):
        conftest = importlib.import_module(".".join([PREFIX] + folder.split("/") + ["conftest"]))
        names.update({k: v for k, v in vars(conftest).items() if not k.startswith("_")})
    dotted = ".".join([PREFIX] + test_file[:-3].split("/"))
    try:
        module = importlib.import_module(dotted)
    except UnportedAPI as exc:
        # the module itself needs what ramp2slope lacks: one test stands for all of its tests
        sys.modules.pop(dotted, None)
        message = str(exc)

        def test_module_imports():
            raise UnportedAPI(message)

        names["test_module_imports"] = test_module_imports
    else:
        names.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    names["JWST_API_XFAIL"] = dict(xfail or {})
    names["JWST_API_SKIP"] = dict(skip or {})
    names["JWST_API_CRDS"] = dict(crds or {})
    names["JWST_API_SOURCE"] = test_file
    return names


#: the reason for skipping a test that fails on jwst itself when no CRDS server answers
CRDS = "asks the CRDS server for reference files: fails on jwst itself offline"

#: the reason for running such a test on the synthetic CRDS cache of the conftest instead
SYNTHETIC_CRDS = "jwst asks a CRDS server: references from a synthetic CRDS cache here"


def internal(name, why="takes stdatamodels models; ramp2slope has no such function"):
    """Expected failure of a test of the jwst-internal ``name`` (raises UnportedAPI)."""
    return (f"jwst-internal {name}: {why}", "unported")


def not_implemented(what):
    return f"not implemented in ramp2slope: {what}"
