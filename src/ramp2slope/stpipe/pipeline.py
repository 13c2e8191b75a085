"""The Pipeline base: a step made of named sub-steps, each reachable as an attribute.

``pipe.jump.rejection_threshold = 5`` and ``Pipeline.call(path, steps={'jump': {...}})`` both
configure a sub-step; sub-steps look up ``output_dir``, ``output_file`` and ``refdir`` through
their parent, as in the official pipelines.
"""
from ..errors import Ramp2SlopeError
from .step import Step


class Pipeline(Step):
    """A step that runs other steps. Subclasses define ``step_defs`` {alias: StepClass}."""

    step_defs = {}

    def __init__(self, name=None, parent=None, config_file=None, steps=None, **kwargs):
        super().__init__(name=name, parent=parent, config_file=config_file, **kwargs)
        steps = steps or {}
        unknown = set(steps) - set(self.step_defs)
        if unknown:
            raise Ramp2SlopeError(f"{self.name} has no step named {', '.join(sorted(unknown))}; "
                                  f"steps are {', '.join(self.step_defs)}")
        for alias, cls in self.step_defs.items():
            object.__setattr__(self, alias, cls(name=alias, parent=self, config_file=self.config_file,
                                                **steps.get(alias, {})))

    def __setattr__(self, name, value):
        if name in type(self).step_defs and isinstance(value, Step):
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, value)

    def get_pars(self):
        """The pipeline's parameters, with ``steps``: {alias: that step's parameters}."""
        pars = super().get_pars()
        pars["steps"] = {alias: step.get_pars() for alias, step in self.steps.items()}
        return pars

    @property
    def steps(self):
        """The sub-steps, in execution order."""
        return {alias: getattr(self, alias) for alias in self.step_defs}
