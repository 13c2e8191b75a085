"""RscdStep: flag the initial groups of MIRI integrations that the RSCD effect distorts."""
import logging

from ..reset.reset_step import first_integration_of
from ..stpipe import Step
from .reference import load_rscd
from .rscd import combine_counts, flag_rscd, rscd_groups_to_skip

__all__ = ["RscdStep", "apply_group_skips", "merge_counts"]

log = logging.getLogger("ramp2slope")

# meta.rscd attribute (jwst's keywords INT1SKIP, INT1BORS, INT1UGP1 and the INT2* twins)
_RECORDED = (("ngroups_skip", "skip"), ("keep_groups_saturation", "lowered"),
             ("keep_bright_firstgroup", "only_one_group"))


class RscdStep(Step):
    """Set DO_NOT_USE in the first groups of MIRI integrations, as many as the RSCD reference
    gives for the READPATT and SUBARRAY (one number for the first integration, one for the
    others), leaving at least 3 groups and backing off where pixels saturate."""

    class_alias = "rscd"
    ramp_input = True
    cal_step_name = "rscd"
    reference_file_types = ("rscd",)
    spec = ""

    def wanted_references(self, model):
        return self.reference_file_types if _is_miri(model) else ()

    def process(self, model):
        if not _is_miri(model):
            return self._skip(model, "the RSCD correction is only for MIRI data")
        ref = self.load_reference(model, "rscd", load_rscd)
        if ref is None:
            return self._skip(model, "No RSCD reference file found")
        try:
            found = ref.lookup(model.meta.subarray.name, model.meta.exposure.readpatt)
        finally:
            self.release_reference(ref)
        if found is None:
            return self._skip(model, f"READPATT, SUBARRAY combination not found in {ref.path} "
                                     f"(READPATT={model.meta.exposure.readpatt}, "
                                     f"SUBARRAY={model.meta.subarray.name})")
        skip_int1, skip_int2p = found
        if skip_int1 < 0:
            log.warning("%s: the RSCD reference has no value for the first integration (an old "
                        "reference): 1 group is flagged there", self.name)
        return apply_group_skips(model, skip_int1, skip_int2p, self.name)

    def _skip(self, model, reason):
        return _skipped(model, reason, self.name)


def _skipped(model, reason, name):
    log.warning("%s: %s; skipped", name, reason)
    model.meta.cal_step.rscd = "SKIPPED"
    return model


def apply_group_skips(model, skip_int1, skip_int2p, name="rscd"):
    """Flag the first ``skip_int1`` groups of the exposure's first integration and
    ``skip_int2p`` of the others in ``model`` (after the group-count rules), record the counts
    in ``meta.rscd`` and the step status; returns ``model``."""
    first = first_integration_of(model)
    nints = model.meta.exposure.nints
    nints = int(nints) if nints is not None else first + model.shape[0]
    skips = rscd_groups_to_skip(skip_int1, skip_int2p, model.shape[1], nints)
    if skips is None:
        return _skipped(model, f"too few groups ({model.shape[1]}) to apply the correction", name)
    log.info("%s: groups to flag: %d in integration 1, %d in the others", name, *skips)
    int1, int2p = flag_rscd(model.groupdq, model.pixeldq, *skips, nints, first_integration=first)
    for suffix, counts in (("int1", int1), ("int2p", int2p)):
        if counts is None:
            continue
        log.info("%s: %d pixels (%s) keep more groups because they saturate", name,
                 counts.lowered, "integration 1" if suffix == "int1" else "integrations 2+")
        _record(model, suffix, counts)
    # a run one integration at a time combines the later integrations' counts (merge_counts)
    model._rscd_int2p = int2p
    model.meta.cal_step.rscd = "COMPLETE"
    return model


def merge_counts(exposure, integration):
    """Fold the integrations-2+ counts of ``integration`` (a later integration's model, flagged
    on its own) into ``exposure`` (the model of the integrations before it), as flagging them
    all at once records them."""
    theirs = getattr(integration, "_rscd_int2p", None)
    if theirs is None:
        return
    combined = combine_counts(getattr(exposure, "_rscd_int2p", None), theirs)
    exposure._rscd_int2p = combined
    _record(exposure, "int2p", combined)


def _record(model, suffix, counts):
    # recorded where the model has these keywords (see datamodels.keywords)
    node = model.meta.rscd
    if node is None:
        return
    for attr, field in _RECORDED:
        setattr(node, f"{attr}_{suffix}", int(getattr(counts, field)))


def _is_miri(model):
    return str(model.meta.instrument.detector or "").startswith("MIR")
