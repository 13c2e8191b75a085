"""Superstripe and multistripe readouts, as ``jwst.lib.stripe_utils`` has them:
``collate_superstripes`` (a superstripe ramp as an ordinary ramp), ``stripe_read_times``, the
slow-axis row ranges each stripe reads (``generate_substripe_ranges``,
``generate_superstripe_ranges``) and references cut to them (``generate_stripe_reference``,
``stripe_read``), with jwst's signatures and result formats, computed by
:mod:`ramp2slope.references.stripes`."""
import numpy as np

from ..references.stripes import (FULL_SIZE, StripeLayout, stripe_reference, substripe_ranges,
                                  superstripe_ranges)

__all__ = ["collate_superstripes", "stripe_read_times", "generate_substripe_ranges",
           "generate_superstripe_ranges", "generate_stripe_reference", "stripe_read"]

_KEYS = ("full", "subarray", "reference_full", "reference_subarray")


def collate_superstripes(input_model):
    """The ordinary RampModel of the parent frame that a SuperstripeRampModel's stripes make
    (what refpix gives at its end; see ``docs/stripes.md``): integrations of the parent frame,
    INT_TIMES per parent integration and INT_TIMES_STRIPE per stripe, the stripe keywords
    removed, and the read times when the stripes repeat within a frame."""
    from ..refpix.multistripe import collate_model

    return collate_model(input_model)


def stripe_read_times(stripe_ramp):
    """The time of every read of ``stripe_ramp`` (a SuperstripeRampModel or RampModel with its
    stripe keywords) once collated: ``ngroups * nrepeat`` lists of one time per frame of a
    group, in seconds (see :func:`ramp2slope.references.stripes.stripe_read_times`)."""
    from ..references.stripes import StripeLayout, stripe_read_times as read_times

    exposure = stripe_ramp.meta.exposure
    return read_times(StripeLayout.from_model(stripe_ramp), exposure.nframes, exposure.groupgap,
                      exposure.ngroups, exposure.noutputs)


def _to_science_frame(layout, key, span):
    """A detector-frame slow-axis range in the science frame (the axis reversed)."""
    size = FULL_SIZE if "full" in key else layout.slow_size
    return size - span[1], size - span[0]


def _ranges(sci_model, science_frame):
    layout = StripeLayout.from_model(sci_model)
    flip = science_frame and layout.slowaxis < 0

    def convert(key, spans):
        return [_to_science_frame(layout, key, span) if flip else tuple(span) for span in spans]
    return layout, convert


def generate_substripe_ranges(sci_model, science_frame=False):
    """The slow-axis row ranges of a multistripe readout (no superstripes): a dict with keys
    ``full``, ``subarray`` (the science rows in the detector and in the striped array) and
    ``reference_full``, ``reference_subarray`` (the reference rows), each ``{counter: [start,
    stop]}``; detector frame, or with ``science_frame`` the science frame. ValueError when the
    stripe keywords do not describe the array."""
    layout, convert = _ranges(sci_model, science_frame)
    single = StripeLayout(**{**layout.__dict__, "num_superstripe": 0, "superstripe_step": 0})
    if single.reads2 <= 0:
        substripe_ranges(single)    # raises, saying why
    sci_full, sci_sub, ref_full, ref_sub = superstripe_ranges(single)[0]
    out = {}
    for key, spans in zip(_KEYS, (sci_full, sci_sub, ref_full, ref_sub)):
        out[key] = {i: list(span) for i, span in enumerate(convert(key, spans))}
    return out


def generate_superstripe_ranges(sci_model, science_frame=False):
    """The slow-axis row ranges of each stripe of a superstripe readout: a dict with the keys of
    :func:`generate_substripe_ranges`, each ``{stripe: [(start, stop), ...]}``."""
    layout, convert = _ranges(sci_model, science_frame)
    out = {key: {} for key in _KEYS}
    for stripe, spans in enumerate(superstripe_ranges(layout)):
        for key, ranges in zip(_KEYS, spans):
            out[key][stripe] = convert(key, ranges)
    return out


def generate_stripe_reference(ref_array, sci_model):
    """``ref_array`` (science frame, full length along the slow axis) cut to the rows the
    exposure's stripes read: ``(num_superstripe, ny, nx)`` for superstripes (2-D references
    only), the reference's leading axes with the striped array's rows otherwise."""
    return stripe_reference(ref_array, StripeLayout.from_model(sci_model))


def stripe_read(sci_model, ref_model, attribs):
    """A reference model whose arrays ``attribs`` are cut to the science exposure's fast-axis
    subarray and to its stripes (see :func:`generate_stripe_reference`), with the reference's
    metadata: of ``ref_model``'s type, or for superstripes, whose cut has one more axis (the
    stripe) than that type's arrays, a plain ReferenceFileModel, as in jwst."""
    from ..datamodels import ReferenceFileModel

    layout = StripeLayout.from_model(sci_model)
    sub = ref_model.meta.subarray
    fast_start = sub.xstart if abs(layout.fastaxis) == 1 else sub.ystart
    out = ReferenceFileModel() if layout.num_superstripe > 0 else type(ref_model)()
    for name in attribs:
        setattr(out, name, stripe_reference(np.asarray(getattr(ref_model, name)), layout,
                                            fast_start))
    out.update(ref_model)
    return out
