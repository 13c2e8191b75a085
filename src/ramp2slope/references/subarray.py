"""Cutting a reference array down to the science subarray (the official ``get_subarray_model``)."""
from ..errors import ReferenceFileError

FULL_SIZE = 2048
#: rows of a NIRSpec IRS2 full frame (n=16, r=4), the only size jwst lets disagree with SUBSIZE2
IRS2_ROWS = 3200


def subarray_box(header, shape, where):
    """(xstart, ystart, xsize, ysize), 1-based starts, from SUBSTRT/SUBSIZE or the array shape.

    A file without the keywords is taken as full frame if its array is 2048x2048; a SUBSIZE that
    disagrees with the array is replaced by the array size, except SUBSIZE2 = 2048 on the 3200
    rows of a NIRSpec IRS2 array (jwst's exception: such a file still covers the 2048 detector rows).
    """
    ny, nx = shape[-2:]
    values = [header.get(k) for k in ("SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2")]
    if any(v is None for v in values):
        if (ny, nx) == (FULL_SIZE, FULL_SIZE):
            return 1, 1, FULL_SIZE, FULL_SIZE
        raise ReferenceFileError(f"{where}: SUBSTRT1/2 and SUBSIZE1/2 are missing and the "
                                 f"array ({ny}x{nx}) is not full frame")
    xstart, ystart, xsize, ysize = (int(v) for v in values)
    return xstart, ystart, nx, _rows(ysize, ny)


def _rows(ysize, ny):
    """SUBSIZE2, or the array's rows when they disagree, but for IRS2's 2048 of 3200 rows."""
    return ysize if ysize == ny or (ysize == FULL_SIZE and ny == IRS2_ROWS) else ny


def science_box(model):
    """The science exposure's subarray box, from its metadata and its data shape."""
    sub = model.meta.subarray
    ny, nx = model.shape[-2:]
    values = (sub.xstart, sub.ystart, sub.xsize, sub.ysize)
    if any(v is None for v in values):
        if (ny, nx) == (FULL_SIZE, FULL_SIZE):
            return 1, 1, FULL_SIZE, FULL_SIZE
        raise ReferenceFileError(f"{model._path or 'input'}: SUBSTRT1/2 and SUBSIZE1/2 are missing "
                                 f"and the data ({ny}x{nx}) are not full frame")
    xstart, ystart, xsize, ysize = (int(v) for v in values)
    return xstart, ystart, nx, _rows(ysize, ny)


def cutout_slices(ref_shape, ref_box, sci_box, where):
    """The (rows, columns) slices of a reference array that cover the science subarray.

    Raises ReferenceFileError naming the file when the reference does not contain it.
    """
    rx, ry, _, _ = ref_box
    sx, sy, sxsize, sysize = sci_box
    x0, y0 = sx - rx, sy - ry
    ny, nx = ref_shape[-2:]
    if x0 < 0 or y0 < 0 or x0 + sxsize > nx or y0 + sysize > ny:
        raise ReferenceFileError(
            f"{where}: covers columns {rx}-{rx + nx - 1} and rows {ry}-{ry + ny - 1}, which do not "
            f"contain the science subarray (columns {sx}-{sx + sxsize - 1}, rows {sy}-{sy + sysize - 1})")
    return slice(y0, y0 + sysize), slice(x0, x0 + sxsize)


def cutout(array, ref_box, sci_box, where):
    """Slice ``array[..., y, x]`` so that it covers exactly the science subarray.

    Returns the array itself (no copy) when the boxes are equal, otherwise a view.
    """
    if array is None:
        return None
    if tuple(ref_box) == tuple(sci_box):
        return array
    rows, cols = cutout_slices(array.shape, ref_box, sci_box, where)
    return array[..., rows, cols]
