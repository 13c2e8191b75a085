"""The RSCD reference: its RSCD_GROUP_SKIP table (groups to drop per SUBARRAY and READPATT)."""
from dataclasses import dataclass

import numpy as np

from ..errors import ReferenceFileError
from ..references.loaders import _RefFile

__all__ = ["RscdRef", "load_rscd"]

TABLE = "RSCD_GROUP_SKIP"
#: the first-integration column, absent from references made before it existed
_INT1 = "group_skip1"
#: what jwst's data model puts in place of a missing first-integration column
NO_INT1 = -1


@dataclass
class RscdRef:
    """The table rows as ``(subarray, readpatt, group_skip1, group_skip)``, in file order."""
    path: str
    rows: list

    def lookup(self, subarray, readpatt):
        """``(group_skip1, group_skip)`` of the first row for this SUBARRAY and READPATT (an old
        LRS name SUBPRISM is looked up as SLITLESSPRISM), or None."""
        if subarray is None or readpatt is None:
            return None
        subarray = str(subarray)
        if subarray.upper() == "SUBPRISM":
            subarray = "SLITLESSPRISM"
        for sub, patt, skip1, skip in self.rows:
            # exact comparisons, as jwst's (FITS drops the trailing blanks, not the leading)
            if sub == subarray and patt == str(readpatt):
                return skip1, skip
        return None


    @classmethod
    def from_table(cls, table, path):
        """From the RSCD_GROUP_SKIP table (a FITS table or a structured array)."""
        if table is None or getattr(table.dtype, "names", None) is None:
            raise ReferenceFileError(f"{path}: no {TABLE} table")
        names = {n.lower(): n for n in table.dtype.names}
        missing = [c for c in ("subarray", "readpatt", "group_skip") if c not in names]
        if missing:
            raise ReferenceFileError(f"{path}: the {TABLE} table has no column "
                                     f"{', '.join(missing)}")

        def text(value):
            return value.decode() if isinstance(value, bytes) else str(value)

        try:
            subarrays = [text(v) for v in table[names["subarray"]]]
            readpatts = [text(v) for v in table[names["readpatt"]]]
            skip = [int(v) for v in np.asarray(table[names["group_skip"]])]
            skip1 = ([int(v) for v in np.asarray(table[names[_INT1]])] if _INT1 in names
                     else [NO_INT1] * len(skip))
        except (TypeError, ValueError) as exc:
            raise ReferenceFileError(f"{path}: the {TABLE} table cannot be read "
                                     f"({str(exc).splitlines()[0]})") from None
        return cls(path, list(zip(subarrays, readpatts, skip1, skip)))


def load_rscd(path, model):
    ref = _RefFile(path, "RSCD", model)
    try:
        return RscdRef.from_table(ref.table(TABLE), path)
    finally:
        ref.close()
