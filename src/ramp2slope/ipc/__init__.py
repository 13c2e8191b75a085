"""Inter-pixel capacitance (IPC) correction."""
from .ipc_correction import ipc_correct, ipc_kernel_for_data, ipc_reference_border

__all__ = ["ipc_correct", "ipc_kernel_for_data", "ipc_reference_border"]
from .ipc_step import IPCStep  # noqa: E402
__all__ += ["IPCStep"]
