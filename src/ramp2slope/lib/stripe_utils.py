"""Superstripe and multistripe readouts, as ``jwst.lib.stripe_utils`` has them:
``collate_superstripes`` (a superstripe ramp as an ordinary ramp) and ``stripe_read_times``."""
__all__ = ["collate_superstripes", "stripe_read_times"]


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
