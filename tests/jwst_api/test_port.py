"""The porting machinery itself (needs no jwst)."""
import pytest

from ._port import Unported, UnportedAPI, port_import, rewrite


@pytest.mark.parametrize("source, expected", [
    ("from stdatamodels.jwst.datamodels import RampModel, dqflags",
     "from ramp2slope.datamodels import RampModel, dqflags"),
    ("from stdatamodels.jwst import datamodels", "from ramp2slope import datamodels"),
    ("from jwst import datamodels", "from ramp2slope import datamodels"),
    ("from jwst.saturation import SaturationStep", "from ramp2slope.saturation import SaturationStep"),
    ("from jwst.pipeline import Detector1Pipeline", "from ramp2slope.pipeline import Detector1Pipeline"),
    ("from jwst.dq_init.tests.helpers import make_rampmodel",
     "from _jwst_ported.dq_init.tests.helpers import make_rampmodel"),
    ("from jwst.lib.tests.helpers import make_superstripe_model",
     "from _jwst_ported.lib.tests.helpers import make_superstripe_model"),
    ('log_watcher("jwst.ramp_fitting.ramp_fit_step")', 'log_watcher("ramp2slope.ramp_fitting.ramp_fit_step")'),
    # the package loggers' levels set by name
    ('caplog.set_level("DEBUG", "jwst")', 'caplog.set_level("DEBUG", "ramp2slope")'),
    ("caplog.set_level('DEBUG', 'stcal')", "caplog.set_level('DEBUG', 'ramp2slope')"),
    ('caplog.set_level("DEBUG", "jwst.jump")', 'caplog.set_level("DEBUG", "ramp2slope.jump")'),
    ('caplog.set_level("DEBUG", "stpipe")', 'caplog.set_level("DEBUG", "stpipe")'),
    # the jwst.lib functions ramp2slope.lib provides
    ("from jwst.lib import reffile_utils", "from ramp2slope.lib import reffile_utils"),
    ("from jwst.lib.stripe_utils import collate_superstripes",
     "from ramp2slope.lib.stripe_utils import collate_superstripes"),
    # what is not the API under test stays jwst's (or stcal's, stdatamodels')
    ("from jwst.lib import pipe_utils", "from jwst.lib import pipe_utils"),
    ("from stcal.ramp_fitting.ramp_fit import ramp_fit", "from stcal.ramp_fitting.ramp_fit import ramp_fit"),
    ("from stdatamodels.validate import ValidationWarning", "from stdatamodels.validate import ValidationWarning"),
])
def test_rewrite(source, expected):
    assert rewrite(source) == expected


def test_missing_names_become_unported_placeholders():
    step, missing = port_import("ramp2slope.superbias", ("SuperBiasStep", "no_such_function"))
    assert step.__name__ == "SuperBiasStep"
    assert isinstance(missing, Unported)
    with pytest.raises(UnportedAPI, match="ramp2slope has no ramp2slope.superbias.no_such_function"):
        missing(1)
    (module_missing,) = port_import("ramp2slope.superbias.no_such_module", ("x",))
    with pytest.raises(UnportedAPI):
        module_missing.attribute
