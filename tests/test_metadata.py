"""Complete metadata: a flight exposure's headers and ASDF tree reach our products as they reach
jwst's. The jwst wheel ships flight ``_uncal`` files with real headers and a 1-pixel SCI; the
pixels here are simulated (SUB160), the headers, tables and ASDF extension are the flight
file's."""
import glob
import os
import warnings

import numpy as np
import pytest
from astropy.io import fits

pytestmark = pytest.mark.oracle

ROOT = "jw01075001001_03105_00009_nrca2"
#: keywords a run may change: dates and software, the reference names (ours from a folder,
#: jwst's overrides), and the file name
MAY_DIFFER = {"DATE", "CAL_VER", "CAL_VCS", "FILENAME"}
#: the official product's ASDF tree holds the run's log records (cal_logs), ours does not
TREE_ONLY_JWST = {"cal_logs"}


def _flight_file():
    jwst = pytest.importorskip("jwst")
    matches = glob.glob(os.path.join(os.path.dirname(jwst.__file__), "associations", "tests",
                                     "data", "exposures", f"{ROOT}_uncal.fits"))
    if not matches:
        pytest.skip("the jwst wheel's flight exposure is not there")
    return matches[0]


@pytest.fixture(scope="module", params=[1, 2], ids=["1int", "2ints-streamed"])
def products(request, tmp_path_factory):
    from jwst_oracle import run_official_detector1, run_ours_detector1
    from ramp2slope.simulate import simulate_exposure

    nints = request.param
    base = tmp_path_factory.mktemp(f"flight{nints}")
    sim = simulate_exposure(base / "sim", subarray="SUB160", ngroups=4, nints=nints, seed=3,
                            detector="NRCA2", full_frame_refs=False)
    uncal = base / f"{ROOT}_uncal.fits"
    with fits.open(_flight_file()) as flight, fits.open(sim.uncal) as simulated:
        primary = flight[0].copy()
        for key in ("SUBARRAY", "SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2", "NINTS",
                    "NGROUPS", "NFRAMES", "GROUPGAP", "TFRAME", "TGROUP", "READPATT", "FRMDIVSR",
                    "NOUTPUTS", "ZEROFRAM", "FASTAXIS", "SLOWAXIS", "EFFINTTM", "EFFEXPTM"):
            primary.header[key] = simulated[0].header[key]
        sci = fits.ImageHDU(simulated["SCI"].data, header=flight["SCI"].header, name="SCI")
        tables = [h.copy() for h in simulated if h.name in ("ZEROFRAME", "GROUP", "INT_TIMES")]
        fits.HDUList([primary, sci] + tables + [flight["ASDF"].copy()]).writeto(uncal)
    refs = {k: str(v) for k, v in sim.refs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_official_detector1(uncal, refs, base / "jwst", save_steps=("jump",))
    run_ours_detector1(uncal, refs, base / "ours", save_steps=("jump",))
    return base


@pytest.mark.parametrize("suffix", ["rate", "rateints", "jump"])
def test_every_header_keyword_as_jwst(products, suffix):
    name = f"{ROOT}_{suffix}.fits"
    with fits.open(products / "jwst" / name) as theirs, fits.open(products / "ours" / name) as ours:
        assert sorted(h.name for h in ours) == sorted(h.name for h in theirs)
        for hdu in theirs:
            if hdu.name == "ASDF":
                continue
            a, b = hdu.header, ours[hdu.name].header
            keys = {k for k in a if k and not k.startswith("R_")} - MAY_DIFFER
            assert keys - set(b) == set(), f"{hdu.name}: keywords only jwst writes"
            assert {k for k in b if k and not k.startswith("R_")} - MAY_DIFFER - keys == set(), \
                f"{hdu.name}: keywords only we write"
            differ = {k: (a[k], b[k]) for k in keys
                      if k not in ("COMMENT", "HISTORY") and a[k] != b[k]}
            assert not differ, f"{hdu.name}: {differ}"
        # the flight file's SCI keywords (WCS, pointing, times, ephemeris) are in ours
        assert ours["SCI"].header["V2_REF"] == theirs["SCI"].header["V2_REF"]
        assert "S_REGION" in ours["SCI"].header


def _flat(model, prefix):
    return {k: v for k, v in model.to_flat_dict().items() if k.startswith(prefix)}


@pytest.mark.parametrize("suffix", ["rate", "rateints"])
def test_stdatamodels_reads_the_same_metadata(products, suffix):
    from stdatamodels.jwst import datamodels as jdm

    name = f"{ROOT}_{suffix}.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # no validation warning on our product
        ours = jdm.open(products / "ours" / name)
    theirs = jdm.open(products / "jwst" / name)
    assert type(ours) is type(theirs)
    for part in ("wcsinfo", "exposure", "ephemeris", "velocity_aberration", "pointing", "time",
                 "target", "observation", "program", "visit", "instrument", "subarray",
                 "aperture", "dither", "guidestar", "coordinates", "nircam_focus"):
        prefix = f"meta.{part}."
        a, b = _flat(theirs, prefix), _flat(ours, prefix)
        assert a, part
        assert b == a, part
    top = set(theirs.meta.instance) - TREE_ONLY_JWST
    assert top - set(ours.meta.instance) == set()
    np.testing.assert_allclose(ours.data, theirs.data, rtol=1e-5, equal_nan=True)


def test_crds_parameters_include_the_tree(products):
    from stdatamodels.jwst import datamodels as jdm

    from ramp2slope import datamodels
    from ramp2slope.references import crds_client

    uncal = products / f"{ROOT}_uncal.fits"
    ours = crds_client.crds_parameters(datamodels.open(uncal))
    theirs = {k.upper(): v for k, v in jdm.open(uncal).get_crds_parameters().items()
              if k.startswith("meta.")}
    missing = set(theirs) - set(ours)
    assert not missing, sorted(missing)[:10]
    for key in ("META.INSTRUMENT.DETECTOR", "META.INSTRUMENT.FILTER", "META.EXPOSURE.TYPE",
                "META.OBSERVATION.DATE", "META.SUBARRAY.NAME"):
        assert str(ours[key]) == str(theirs[key]), key
