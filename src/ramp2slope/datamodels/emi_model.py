"""EmiModel: the MIRI EMICORR reference, an ASDF tree (see :mod:`.asdf_tree_model`)::

    model = EmiModel()
    model.frequencies = {"Hz10": {"frequency": 10.039216, "phase_amplitudes": wave}}
    model.subarray_cases = {"FULL_FAST": {"rowclocks": 271, "frameclocks": 277504,
                                          "freqs": {"FAST": ["Hz10"]}}}
    model.meta.useafter = "2024-01-01T00:00:00"
    model.save("emicorr.asdf")
    EmiModel("emicorr.asdf").frequencies.Hz10.frequency
"""
from .asdf_tree_model import AsdfTreeModel

__all__ = ["EmiModel"]


class EmiModel(AsdfTreeModel):
    """The EMICORR reference (frequencies, their phase amplitudes, and the subarray cases)."""

    model_type = "EmiModel"
    reftype = "emicorr"
    schema_names = ("frequencies", "subarray_cases")
    default_instrument = "MIRI"

    def validate(self):
        """Raise ValueError when the tree cannot serve as an EMICORR reference."""
        if not isinstance(self._tree.get("frequencies"), dict):
            raise ValueError("EmiModel: 'frequencies' is not a mapping")
        if not isinstance(self._tree.get("subarray_cases"), dict):
            raise ValueError("EmiModel: 'subarray_cases' is not a mapping")
