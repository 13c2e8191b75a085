"""Header and table edits shared by the striped-readout simulators (superstripes, DHS)."""
from astropy.io import fits

__all__ = ["STRIPE_KEYWORDS", "stripe_primary", "stripe_group_table"]

#: primary keyword -> StripeLayout attribute
STRIPE_KEYWORDS = (("SUBARRAY", "name"), ("SUBSTRT1", "xstart"), ("SUBSTRT2", "ystart"),
                   ("SUBSIZE1", "xsize"), ("SUBSIZE2", "ysize"), ("MSTR_RD1", "reads1"),
                   ("MSTR_SK1", "skips1"), ("MSTR_RD2", "reads2"), ("MSTR_SK2", "skips2"),
                   ("MSTR_RPT", "repeat_stripe"), ("MSTR_ILV", "interleave_reads1"),
                   ("SSTR_STP", "superstripe_step"), ("SSTR_NST", "num_superstripe"))


def stripe_primary(header, layout):
    """A copy of a primary header describing the striped subarray of ``layout``."""
    header = header.copy()
    for keyword, attr in STRIPE_KEYWORDS:
        header[keyword] = getattr(layout, attr)
    return header


def stripe_group_table(hdu, layout):
    """The GROUP table HDU with the striped frame's size."""
    table = hdu.data.copy()
    table["number_of_columns"], table["number_of_rows"] = layout.xsize, layout.ysize
    return fits.BinTableHDU(table, name="GROUP", header=hdu.header)
