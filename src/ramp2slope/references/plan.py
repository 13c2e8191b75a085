"""Which reference file each enabled step of a pipeline would use, and where it comes from
(``ramp2slope refs``): a step's override, a reference folder, the CRDS cache, or the CRDS
server (not yet in the cache). With ``sync``, what CRDS chooses is fetched into the cache, so
that a machine with no network can then run the exposures.
"""
import os
from dataclasses import asdict, dataclass

from . import crds_client
from .finder import NOT_APPLICABLE

OVERRIDE, FOLDER, CACHE, SERVER, FETCHED = ("override", "folder", "CRDS cache", "CRDS server",
                                            "CRDS server, fetched into the cache")


@dataclass
class PlannedReference:
    step: str
    reftype: str
    source: str
    file: str          # a path, a CRDS file name not yet cached, or "N/A"

    def as_dict(self):
        return asdict(self)


def _types(step):
    return step.reference_file_types if step.prefetch_types is None else step.prefetch_types


def plan_references(pipe, model, sync=False):
    """A :class:`PlannedReference` for every reference type of every enabled step of ``pipe``."""
    wanted = [(alias, step, reftype) for alias, step in pipe.steps.items() if not step.skip
              for reftype in _types(step)]
    local = {}
    for alias, step, reftype in wanted:
        path = step.resolve_reference(model, reftype, use_crds=False)
        if path is not None:
            source = OVERRIDE if getattr(step, f"override_{reftype}", None) else FOLDER
            local[(alias, reftype)] = (source, path)
    from_crds = sorted({reftype for alias, _, reftype in wanted if (alias, reftype) not in local})
    chosen = {}
    if from_crds:
        names = crds_client.recommended_names(model, from_crds)
        cached = {t: crds_client.cached_reference(n) if n != NOT_APPLICABLE else None
                  for t, n in names.items()}
        if sync:
            paths = crds_client.get_reference_paths(model, from_crds)
            chosen = {t: (FETCHED if cached[t] is None and paths[t] != NOT_APPLICABLE else CACHE,
                          paths[t]) for t in from_crds}
        else:
            chosen = {t: (CACHE, cached[t]) if cached[t] else (SERVER, names[t]) for t in from_crds}
        for t, name in names.items():
            if name == NOT_APPLICABLE:
                chosen[t] = ("CRDS", NOT_APPLICABLE)
    plan = []
    for alias, step, reftype in wanted:
        source, path = local.get((alias, reftype)) or chosen[reftype]
        plan.append(PlannedReference(alias, reftype, source, path))
    return plan


def format_plan(uncal, plan):
    """Lines for a terminal: one per step and reference type."""
    lines = [f"{uncal}:"]
    width = max((len(f"{p.step} {p.reftype.upper()}") for p in plan), default=0)
    for p in plan:
        label = f"{p.step} {p.reftype.upper()}".ljust(width)
        shown = p.file if p.file == NOT_APPLICABLE or p.source == SERVER else os.path.basename(p.file)
        lines.append(f"  {label}  {shown}  ({p.source}{'' if p.source != FOLDER else ': ' + os.path.dirname(p.file)})")
    return lines
