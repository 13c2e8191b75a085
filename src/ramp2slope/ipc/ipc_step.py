"""IPCStep: deconvolve inter-pixel capacitance with the IPC kernel (off in operations)."""
from ..references import load_ipc
from ..stpipe import Step
from .ipc_correction import ipc_correct

__all__ = ["IPCStep"]


class IPCStep(Step):
    """Convolve every group's interior with the IPC deconvolution kernel."""

    class_alias = "ipc"
    ramp_input = True
    cal_step_name = "ipc"
    reference_file_types = ("ipc",)
    spec = ""

    def process(self, model):
        ipc = self.load_reference(model, "ipc", load_ipc)
        if ipc is None:
            return self.skipped(model, "no IPC reference")
        kernel = ipc.kernel
        sub = model.meta.subarray
        ipc_correct(model.data, kernel, xstart=sub.xstart or 1, ystart=sub.ystart or 1,
                    xsize=model.shape[-1], ysize=model.shape[-2])
        return self.complete(model)
