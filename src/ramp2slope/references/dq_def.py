"""Translating a reference file's own DQ bits to the standard JWST flags through its DQ_DEF table."""
import logging
import numpy as np

from ..datamodels import dqflags

log = logging.getLogger(__name__)


def translate_dq(dq, dq_def, where=""):
    """Return ``dq`` as standard pixel flags.

    Every row of DQ_DEF says "pixels with ``dq & VALUE`` set have the flag named NAME"; names that
    are not standard mnemonics are dropped (with a warning), as the official loader does. Without
    a DQ_DEF table the values are already standard.
    """
    if dq is None:
        return None
    dq = np.asarray(dq, dtype=np.uint32)
    if dq_def is None or len(dq_def) == 0:
        return dq
    names = [(n.decode("ascii", "replace") if isinstance(n, bytes) else str(n)).strip().upper()
             for n in dq_def["NAME"]]
    values = [int(v) for v in dq_def["VALUE"]]
    out = np.zeros_like(dq)
    for name, value in zip(names, values):
        if name not in dqflags.pixel:
            log.warning("%s: DQ_DEF name %r is not a standard flag; ignored", where or "reference", name)
            continue
        standard = dqflags.pixel[name]
        if standard == 0 or value == 0:
            continue
        out |= np.where(dq & np.uint32(value), np.uint32(standard), np.uint32(0))
    return out
