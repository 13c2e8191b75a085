"""SIRSKernelModel: the SIRSKERNEL reference of refpix's SIRS algorithm, an ASDF tree (see
:mod:`.asdf_tree_model`)."""
from .asdf_tree_model import AsdfTreeModel

__all__ = ["SIRSKernelModel"]


class SIRSKernelModel(AsdfTreeModel):
    """The SIRSKERNEL reference of refpix's SIRS algorithm: per detector (``nrca1``, ``nis``,
    ...) the Fourier coefficients ``gamma`` (left side) and ``zeta`` (right side), one row per
    amplifier::

        model = SIRSKernelModel({"nrcb1": {"gamma": gamma, "zeta": zeta}})
        model.nrcb1.gamma
    """

    model_type = "SIRSKernelModel"
    reftype = "sirskernel"

    def validate(self):
        """Raise ValueError when a detector's entry lacks its gamma or zeta."""
        for name, entry in self._tree.items():
            if name == "meta":
                continue
            if not isinstance(entry, dict) or "gamma" not in entry or "zeta" not in entry:
                raise ValueError(f"SIRSKernelModel: {name!r} needs 'gamma' and 'zeta'")
