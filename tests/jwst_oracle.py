"""Run the official pipeline offline, as a reference oracle for the tests.

The official ``jwst`` package asks the CRDS server for reference files and step parameters;
none is reachable here. A stub CRDS cache plus explicit ``override_<reftype>`` parameters lets it
run with no network at all. Import this module (conftest does) before anything imports ``jwst``.
"""
import atexit
import os
import shutil
import tempfile

import pytest

_SERVER_CONFIG = (
    "{'observatory': 'jwst', 'operational_context': 'jwst_0000.pmap', "
    "'latest_context': 'jwst_0000.pmap', 'edit_context': 'jwst_0000.pmap', "
    "'last_synced': 'never', 'bad_files_list': [], 'bad_files': '', 'mappings': [], "
    "'force_remote_mode': False, 'crds_version': {'str': 'offline'}}"
)

# Steps that only MIRI runs; left on, the pipeline would try to look up their reference types.
MIRI_ONLY_STEPS = ("emicorr", "rscd", "firstframe", "lastframe", "reset")


def configure_offline_crds():
    """Point CRDS at a stub cache and forbid every network access. Idempotent."""
    if os.environ.get("RAMP2SLOPE_TEST_CRDS_READY"):
        return
    root = tempfile.mkdtemp(prefix="crds_stub_")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    config_dir = os.path.join(root, "config", "jwst")
    os.makedirs(config_dir)
    with open(os.path.join(config_dir, "server_config"), "w") as handle:
        handle.write(_SERVER_CONFIG)
    os.environ.update(
        CRDS_PATH=root,
        CRDS_SERVER_URL="https://jwst-serverless-mode.stsci.edu",
        CRDS_OBSERVATORY="jwst",
        CRDS_CONTEXT="jwst_0000.pmap",
        CRDS_READONLY_CACHE="1",
        STPIPE_DISABLE_CRDS_STEPPARS="True",
        RAMP2SLOPE_TEST_CRDS_READY="1",
    )


def require_jwst():
    """Skip the calling test when the oracle is not installed."""
    return pytest.importorskip("jwst")


def require_stcal():
    return pytest.importorskip("stcal")


def require_stdatamodels():
    return pytest.importorskip("stdatamodels")


# Steps whose products are compared, with their output suffixes.
SAVED_STEPS = ("dq_init", "saturation", "superbias", "refpix", "linearity", "dark_current", "jump")


def reference_overrides(refs, ipc=False):
    """The ``steps`` dict that gives every reference file explicitly (refs: {reftype: path})."""
    steps = {
        "group_scale": {},
        "dq_init": {"override_mask": refs["mask"]},
        "saturation": {"override_saturation": refs["saturation"], "override_superbias": refs["superbias"]},
        "ipc": {"override_ipc": refs.get("ipc", "N/A"), "skip": not ipc},
        "superbias": {"override_superbias": refs["superbias"]},
        "refpix": {"override_refpix": "N/A", "override_sirskernel": "N/A"},
        "linearity": {"override_linearity": refs["linearity"]},
        "dark_current": {"override_dark": refs["dark"]},
        "jump": {"override_gain": refs["gain"], "override_readnoise": refs["readnoise"]},
        "ramp_fit": {"override_gain": refs["gain"], "override_readnoise": refs["readnoise"]},
        "gain_scale": {"override_gain": refs["gain"]},
    }
    return steps


# MIRI: the steps whose products are compared, and the references given explicitly
MIRI_SAVED_STEPS = ("dq_init", "saturation", "lastframe", "reset", "linearity", "rscd",
                    "dark_current", "refpix", "jump")
MIRI_STATUS_KEYWORDS = ("S_DQINIT", "S_MIREMI", "S_SATURA", "S_FRSTFR", "S_LASTFR", "S_RESET",
                        "S_LINEAR", "S_RSCD", "S_DARK", "S_REFPIX", "S_JUMP")


def miri_reference_overrides(refs):
    """The ``steps`` dict giving every reference of a MIRI exposure explicitly (refs: {reftype:
    path}; an ``emicorr`` entry turns the EMI correction on)."""
    emicorr = {"override_emicorr": refs["emicorr"], "skip": False} if "emicorr" in refs else {"skip": True}
    return {
        "group_scale": {},
        "dq_init": {"override_mask": refs["mask"]},
        "emicorr": emicorr,
        "saturation": {"override_saturation": refs["saturation"], "override_superbias": "N/A"},
        "ipc": {"override_ipc": "N/A", "skip": True},
        "superbias": {"override_superbias": "N/A"},
        "refpix": {"override_refpix": "N/A", "override_sirskernel": "N/A"},
        "rscd": {"override_rscd": refs["rscd"]},
        "reset": {"override_reset": refs["reset"]},
        "linearity": {"override_linearity": refs["linearity"]},
        "dark_current": {"override_dark": refs["dark"]},
        "jump": {"override_gain": refs["gain"], "override_readnoise": refs["readnoise"]},
        "ramp_fit": {"override_gain": refs["gain"], "override_readnoise": refs["readnoise"]},
        "gain_scale": {"override_gain": refs["gain"]},
    }


def _miri_steps(refs, steps, save_steps):
    all_steps = miri_reference_overrides(refs)
    for name in save_steps:
        all_steps.setdefault(name, {})["save_results"] = True
    for name, values in (steps or {}).items():
        all_steps.setdefault(name, {}).update(values)
    return all_steps


def run_both_miri(sim, base, steps=None, save_steps=MIRI_SAVED_STEPS, emicorr=False,
                  **pipeline_kwargs):
    """Both pipelines on a simulated MIRI exposure, into ``base/jwst`` and ``base/ours`` (with
    ``emicorr``, the EMI correction on with the simulation's EMICORR reference)."""
    configure_offline_crds()
    from jwst.pipeline import Detector1Pipeline as Official

    from ramp2slope.pipeline import Detector1Pipeline as Ours

    refs = {k: str(v) for k, v in sim.refs.items() if k != "emicorr" or emicorr}
    theirs, ours = base / "jwst", base / "ours"
    for pipeline, folder in ((Official, theirs), (Ours, ours)):
        pipeline.call(str(sim.uncal), steps=_miri_steps(refs, steps, save_steps),
                      output_dir=str(folder), save_results=True, **pipeline_kwargs)
    return theirs, ours


def run_official_detector1(uncal, refs, output_dir, steps=None, save_steps=SAVED_STEPS, **pipeline_kwargs):
    """Run jwst's Detector1Pipeline offline; returns the rate model (None if no slopes)."""
    configure_offline_crds()
    from jwst.pipeline import Detector1Pipeline

    all_steps = reference_overrides(refs)
    for name in MIRI_ONLY_STEPS:
        all_steps[name] = {"skip": True}
    for name in save_steps:
        all_steps.setdefault(name, {})["save_results"] = True
    for name, values in (steps or {}).items():
        all_steps.setdefault(name, {}).update(values)
    return Detector1Pipeline.call(str(uncal), steps=all_steps, output_dir=str(output_dir),
                                  save_results=True, **pipeline_kwargs)


def _our_steps(refs, steps, save_steps):
    all_steps = reference_overrides(refs)
    for name in save_steps:
        all_steps.setdefault(name, {})["save_results"] = True
    for name, values in (steps or {}).items():
        all_steps.setdefault(name, {}).update(values)
    return all_steps


def run_ours_detector1(uncal, refs, output_dir, steps=None, save_steps=SAVED_STEPS, **pipeline_kwargs):
    """Run our Detector1Pipeline with the same explicit reference files and saved products."""
    from ramp2slope.pipeline import Detector1Pipeline

    return Detector1Pipeline.call(str(uncal), steps=_our_steps(refs, steps, save_steps),
                                  output_dir=str(output_dir), save_results=True, **pipeline_kwargs)


def ours_detector1(refs, output_dir, steps=None, save_steps=SAVED_STEPS, **pipeline_kwargs):
    """Our Detector1Pipeline set up as :func:`run_ours_detector1` runs it, not yet run (a test
    may then change how it runs, e.g. not streamed)."""
    from ramp2slope.pipeline import Detector1Pipeline

    return Detector1Pipeline(steps=_our_steps(refs, steps, save_steps), output_dir=str(output_dir),
                             save_results=True, **pipeline_kwargs)


# -- comparing the two pipelines' products ------------------------------------------------------
STATUS_KEYWORDS = ("S_DQINIT", "S_SATURA", "S_SUPERB", "S_REFPIX", "S_LINEAR", "S_DARK", "S_JUMP")


def open_product(folder, root, suffix):
    """``<folder>/<root>_<suffix>.fits``, opened; a missing product fails the test."""
    import os

    from astropy.io import fits

    path = os.path.join(folder, f"{root}_{suffix}.fits")
    assert os.path.exists(path), f"missing product {os.path.basename(path)} in {folder}"
    return fits.open(path)


def assert_step_products_match(theirs, ours, root, step, keywords=STATUS_KEYWORDS,
                               extensions=("PIXELDQ", "GROUPDQ")):
    """A step's ramp product: GROUPDQ and PIXELDQ identical, SCI within float32 rounding (1e-3
    DN), and the same step statuses."""
    import numpy as np

    with open_product(theirs, root, step) as a, open_product(ours, root, step) as b:
        for ext in extensions:
            np.testing.assert_array_equal(b[ext].data, a[ext].data, err_msg=f"{step} {ext}")
        np.testing.assert_allclose(b["SCI"].data, a["SCI"].data, rtol=0, atol=1e-3,
                                   err_msg=f"{step} SCI")
        for key in keywords:
            assert b[0].header.get(key) == a[0].header.get(key), f"{step} {key}"


def assert_slope_products_match(theirs, ours, root, suffix):
    """``rate`` or ``rateints``: DQ and NaNs identical, 99.99 % of the slopes within 1e-5, the
    variances and ERR within 1e-4 (the Poisson variance also within what the slopes' absolute
    tolerance, 1e-6 DN/s, makes of it)."""
    import numpy as np

    with open_product(theirs, root, suffix) as a, open_product(ours, root, suffix) as b:
        np.testing.assert_array_equal(b["DQ"].data, a["DQ"].data)
        sa, sb = a["SCI"].data, b["SCI"].data
        np.testing.assert_array_equal(np.isnan(sb), np.isnan(sa))
        valid = np.isfinite(sa) & np.isfinite(sb)
        close = np.isclose(sb[valid], sa[valid], rtol=1e-5, atol=1e-6)
        assert close.mean() >= 0.9999, f"{suffix}: {np.count_nonzero(~close)} slopes differ"
        for ext in ("ERR", "VAR_RNOISE"):
            np.testing.assert_allclose(b[ext].data, a[ext].data, rtol=1e-4, atol=1e-10, err_msg=ext)
        # the Poisson variance follows the rate: where a near-zero rate differs by float32
        # rounding (inputs that are not bit-identical, as after IRS2 refpix), its relative
        # difference is large, its absolute one that of the rate times variance per rate
        poisson_a, poisson_b = a["VAR_POISSON"].data, b["VAR_POISSON"].data
        bright = valid & (sa > 1.0)
        per_rate = float(np.median(poisson_a[bright] / sa[bright])) if bright.any() else 0.0
        np.testing.assert_allclose(poisson_b, poisson_a, rtol=1e-4, atol=max(1e-10, 1e-6 * per_rate),
                                   err_msg="VAR_POISSON")
        assert b["SCI"].header["BUNIT"] == "DN/s"
        assert b[0].header["INSTRUME"] == a[0].header["INSTRUME"]


def assert_rate_recovers_truth(sim, folder, tolerance=0.01):
    """Our rate of a simulated exposure: its median ratio to the injected rate, over the
    well-exposed good pixels, within ``tolerance`` of 1."""
    import numpy as np

    from ramp2slope.simulate.truth import load_truth

    truth = load_truth(sim.truth)
    with open_product(folder, sim.root, "rate") as rate:
        good = (rate["DQ"].data == 0) & (truth.badpix == 0) & (truth.rate > 50)
        assert good.sum() > 50
        ratio = np.median(rate["SCI"].data[good] / truth.rate[good])
    assert abs(ratio - 1) < tolerance, ratio


def run_both(sim, base, **kwargs):
    """Both pipelines on a simulated exposure (``sim``: a SimulationResult) with its references,
    into ``base/jwst`` and ``base/ours``; returns those two folders."""
    refs = {k: str(v) for k, v in sim.refs.items()}
    theirs, ours = base / "jwst", base / "ours"
    run_official_detector1(sim.uncal, refs, theirs, **kwargs)
    run_ours_detector1(sim.uncal, refs, ours, **kwargs)
    return theirs, ours


def runs_once(tmp_path_factory, prepare):
    """For a module-scoped fixture: ``run(name)`` runs both pipelines on a case the first time
    it is asked for (``prepare(name, base)`` simulates it in the folder ``base`` and returns
    ``(sim, run_both's options)``) and returns ``(sim, jwst's folder, ours)`` every time."""
    done = {}

    def run(name):
        if name not in done:
            require_jwst()
            base = tmp_path_factory.mktemp(name)
            sim, options = prepare(name, base)
            done[name] = (sim, *run_both(sim, base, **options))
        return done[name]
    return run
