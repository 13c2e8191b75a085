"""jwst's ``rscd_sub`` functions on ramp2slope models (the official names and arguments, for code
and tests written against jwst)."""
import logging

from .rscd_step import apply_group_skips, _skipped

__all__ = ["do_correction", "correction_skip_groups"]

log = logging.getLogger("ramp2slope")


def do_correction(output_model, rscd_model):
    """Flag the RSCD-affected first groups of ``output_model`` with the row of ``rscd_model``
    (an :class:`~ramp2slope.datamodels.RSCDModel`) for its READPATT and SUBARRAY."""
    from .reference import RscdRef

    ref = RscdRef.from_table(rscd_model.rscd_group_skip_table, "RSCD model")
    found = ref.lookup(output_model.meta.subarray.name, output_model.meta.exposure.readpatt)
    if found is None:
        return _skipped(output_model, "READPATT, SUBARRAY combination not found in the RSCD "
                                      "reference", "rscd")
    return apply_group_skips(output_model, *found)


def correction_skip_groups(output, group_skip_int1, group_skip_int2p):
    """Flag the first ``group_skip_int1`` groups of integration 1 and ``group_skip_int2p`` of the
    later ones DO_NOT_USE (fewer where too few groups remain or pixels saturate)."""
    return apply_group_skips(output, group_skip_int1, group_skip_int2p)
