"""How a run uses the machine: threads (:mod:`.threads`), memory (:mod:`.hugepages`,
:mod:`.malloc`), the numba kernels' first-run compilation (:mod:`.jit_warmup`) and their loading
from numba's cache (:mod:`.cache_loading`), and how a run is stopped from outside
(:mod:`.termination`)."""
