"""``collate_superstripes``: a superstripe ramp as an ordinary ramp (as ``jwst.lib``'s)."""
__all__ = ["collate_superstripes"]


def collate_superstripes(input_model):
    """The ordinary RampModel of the parent frame that a SuperstripeRampModel's stripes make
    (what refpix gives at its end; see ``docs/stripes.md``): integrations of the parent frame,
    INT_TIMES per parent integration and INT_TIMES_STRIPE per stripe, the stripe keywords
    removed, and the read times when the stripes repeat within a frame."""
    from ..refpix.multistripe import collate_model

    return collate_model(input_model)
