"""Translating a reference file's own DQ bits to the standard JWST flags through its DQ_DEF table."""
import logging

import numba
import numpy as np

from ..datamodels import dqflags
from ..errors import ReferenceFileError

log = logging.getLogger(__name__)


def _name(value):
    return (value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)).strip()


def dq_def_rows(dq_def, where=""):
    """The (VALUE, standard flag) pairs of a DQ_DEF table that can set a flag.

    Names that are not standard mnemonics are dropped with a warning, as the official loader
    does (the match is exact, after stripping blanks); rows with a 0 value or mapping to GOOD
    cannot set anything and are left out.
    """
    columns = {str(c).upper(): c for c in (dq_def.dtype.names or ())}
    missing = [c for c in ("VALUE", "NAME") if c not in columns]
    if missing:
        raise ReferenceFileError(f"{where or 'reference'}: the DQ_DEF table has no "
                                 f"{' or '.join(missing)} column, so its DQ bits cannot be read")
    rows = []
    for name, value in zip(dq_def[columns["NAME"]], dq_def[columns["VALUE"]]):
        name = _name(name)
        if name not in dqflags.pixel:
            log.warning("%s: DQ_DEF name %r is not a standard flag; ignored", where or "reference", name)
            continue
        value = int(value) & 0xFFFFFFFF
        standard = int(dqflags.pixel[name]) & 0xFFFFFFFF
        if value and standard:
            rows.append((value, standard))
    return rows


@numba.njit(parallel=True, cache=True)
def _translate(dq, values, standards, out):
    n = dq.shape[0]
    nrows = values.shape[0]
    for i in numba.prange(n):
        d = dq[i]
        r = np.uint32(0)
        if d != 0:
            for k in range(nrows):
                if d & values[k]:
                    r |= standards[k]
        out[i] = r


def translate_dq(dq, dq_def, where="", inplace=False):
    """Return ``dq`` as standard pixel flags (uint32).

    Every row of DQ_DEF says "pixels with ``dq & VALUE`` set have the flag named NAME"; names that
    are not standard mnemonics are dropped (with a warning), as the official loader does. Without
    a DQ_DEF table the values are already standard.

    When every usable row maps a single bit to itself (the usual case) the translation only
    clears the bits no row mentions, in one pass; otherwise one pass looks every row up per
    pixel. ``inplace=True`` allows writing the result into ``dq`` itself when it is a
    contiguous uint32 array (a loader's private buffer).
    """
    if dq is None:
        return None
    dq = np.asarray(dq, dtype=np.uint32)
    if dq_def is None or len(dq_def) == 0:
        return dq
    rows = dq_def_rows(dq_def, where)
    contiguous = dq.flags.c_contiguous
    out = dq if (inplace and contiguous and dq.flags.writeable) else np.empty(dq.shape, np.uint32)
    if all(value == standard and value & (value - 1) == 0 for value, standard in rows):
        mask = 0
        for value, _ in rows:
            mask |= value
        if mask == 0xFFFFFFFF and out is dq:
            return dq
        np.bitwise_and(dq, np.uint32(mask), out=out)
        return out
    values = np.array([v for v, _ in rows], dtype=np.uint32)
    standards = np.array([s for _, s in rows], dtype=np.uint32)
    src = dq if contiguous else np.ascontiguousarray(dq)
    _translate(src.reshape(-1), values, standards, out.reshape(-1))
    return out
