"""GroupScaleStep: undo the power-of-two divisor of on-board frame averaging."""
from ..stpipe import Step
from .group_scale import group_scale_decision, scale_groups

__all__ = ["GroupScaleStep"]


class GroupScaleStep(Step):
    """Rescale groups when NFRAMES differs from the on-board divisor FRMDIVSR."""

    class_alias = "group_scale"
    ramp_input = True
    cal_step_name = "group_scale"
    spec = ""

    def process(self, model):
        exposure = model.meta.exposure
        decision = group_scale_decision(exposure.nframes, exposure.frame_divisor)
        if not decision.apply:
            return self.skipped(model, decision.reason)
        scale_groups(model.data, decision.factor)
        return self.complete(model)
