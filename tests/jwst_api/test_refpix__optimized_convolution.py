"""jwst refpix/tests/test_optimized_convolution.py, ported."""
from ._port import internal, port

XFAIL = {
    'test_module_imports': internal('module jwst.refpix.optimized_convolution', 'its tests also need SIRSKernelModel, an ASDF reference model ramp2slope does not have'),
}
SKIP = {
}

globals().update(port("refpix/tests/test_optimized_convolution.py", XFAIL, SKIP))
