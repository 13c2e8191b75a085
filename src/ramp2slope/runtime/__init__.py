"""How a run uses the machine: threads (:mod:`.threads`), memory (:mod:`.hugepages`,
:mod:`.malloc`), the first-run compilation of the numba kernels (:mod:`.jit_warmup`), and how a
run is stopped from outside (:mod:`.termination`)."""
