"""Public names of a package resolved on first use (PEP 562's module ``__getattr__``).

Some packages must not import every module behind their names when they are imported: the
command line describes ``ramp2slope simulate`` without the simulator, asks the batch package
whether its inputs are a batch without its engine, and a batch's client process uses
``stpipe.naming`` without the steps' machinery.
"""
import importlib

__all__ = ["lazy_exports"]


def lazy_exports(package, modules, namespace):
    """``(__getattr__, __dir__)`` for the package named ``package`` whose public names live in
    its submodules, ``modules`` saying where (``{name: submodule}``). A name is imported on its
    first use and stored in ``namespace`` (the package's ``globals()``), so that it is looked up
    once."""
    def __getattr__(name):
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(modules))

    return __getattr__, __dir__
