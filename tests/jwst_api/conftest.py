"""Fixtures the official tests take from jwst's own conftest, and the expected-outcome tables.

Each module here sets ``JWST_API_XFAIL`` and ``JWST_API_SKIP`` (see ``_port.port``); every
entry must match a collected test, so the tables cannot go stale silently.
"""
import logging

import pytest

from ._port import UnportedAPI


class LogWatcher:
    """Records whether ``message`` was logged (formatted) below a logger since it was set."""

    def __init__(self, message, levels):
        self.levels = levels
        self.message = message

    @property
    def message(self):
        return self._message

    @message.setter
    def message(self, value):
        self._message = value
        self.seen = False

    def check(self, record):
        if record.levelno in self.levels and self._message in record.getMessage():
            self.seen = True

    def assert_seen(self):
        assert self.seen, f"{self._message!r} was not logged"
        self.seen = False

    def assert_not_seen(self):
        assert not self.seen, f"{self._message!r} was logged"


class _Handler(logging.Handler):
    def __init__(self, watcher):
        super().__init__(logging.DEBUG)
        self.watcher = watcher

    def emit(self, record):
        self.watcher.check(record)


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}


@pytest.fixture
def log_watcher():
    """jwst's ``log_watcher(log_name, message="", level=None)``.

    ramp2slope logs through the package logger, so the watcher listens to the top-level
    logger of ``log_name`` (``ramp2slope.ramp_fitting.ramp_fit_step`` -> ``ramp2slope``).
    """
    installed = []

    def make(log_name, message="", level=None):
        levels = [level] if isinstance(level, str) else (level or list(_LEVELS))
        watcher = LogWatcher(message, {_LEVELS[name] for name in levels})
        logger = logging.getLogger(log_name.split(".")[0])
        handler = _Handler(watcher)
        old_level = logger.level
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.DEBUG:
            logger.setLevel(logging.DEBUG)
        installed.append((logger, handler, old_level))
        return watcher

    yield make
    for logger, handler, old_level in installed:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def _keys(item):
    names = [item.name, getattr(item, "originalname", item.name)]
    if item.cls is not None:
        names += [f"{item.cls.__name__}::{name}" for name in names]
    return names


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    tables = {}
    for item in items:
        module = item.module
        if module is None or not hasattr(module, "JWST_API_XFAIL"):
            continue
        used = tables.setdefault(module.__name__, (module, set()))[1]
        for key in _keys(item):
            if key in getattr(module, "JWST_API_CRDS", ()):
                # jwst needs a CRDS server for it; ramp2slope runs it on a synthetic cache
                item.add_marker(pytest.mark.jwst_api_crds)
                used.add(key)
                break
        for key in _keys(item):
            if key in module.JWST_API_SKIP:
                item.add_marker(pytest.mark.skip(reason=module.JWST_API_SKIP[key]))
                used.add(key)
                break
            if key in module.JWST_API_XFAIL:
                reason = module.JWST_API_XFAIL[key]
                raises = None
                if isinstance(reason, tuple):
                    reason, raises = reason
                if raises == "unported":
                    raises = UnportedAPI
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True, raises=raises))
                used.add(key)
                break
    stale = []
    for name, (module, used) in tables.items():
        for key in (list(module.JWST_API_XFAIL) + list(module.JWST_API_SKIP)
                    + list(getattr(module, "JWST_API_CRDS", ()))):
            if key not in used:
                stale.append(f"{name}: {key}")
    if stale:
        raise pytest.UsageError("jwst_api tables name tests that were not collected: " + ", ".join(stale))


@pytest.fixture(autouse=True)
def _run_in_tmp_path(tmp_path, monkeypatch):
    """jwst's suite runs every test in its own temporary folder (its ``_jail`` fixture);
    some ported tests save products to the current folder, which must not be the checkout."""
    monkeypatch.chdir(tmp_path)


# -- a synthetic CRDS cache for the tests jwst can only run with a CRDS server ------------------
DET, SUB, READPATT = "META.INSTRUMENT.DETECTOR", "META.SUBARRAY.NAME", "META.EXPOSURE.READPATT"


def _synthetic_references(folder):
    """Reference files of the synthetic cache: [(instrument, reftype, match, path)].

    Full frames of plausible values, chosen so that the assertions of jwst's tests hold as on
    real references: a saturation level of 60000 DN (jwst's saturation tests ramp a pixel past
    70000 and 68000), a superbias of 12000 DN, a NIRSpec GAIN whose GAINFACT is 2 (gain_scale
    must change the data), no INV_COEFFS in the MIRI LINEARITY (jwst's linearity tests leave
    NFRAMES unset), and an IRS2 REFPIX with the row count jwst's correction insists on.
    """
    import numpy as np
    from astropy.io import fits

    from ramp2slope import datamodels
    from ramp2slope.datamodels import dqflags
    from ramp2slope.emicorr.reference import write_emicorr
    from ramp2slope.simulate.irs2 import write_irs2_refpix

    entries = []

    def finish(model, instrument, detector, reftype, shape, match=None, name=None, subarray="FULL"):
        model.meta.instrument.name = instrument
        model.meta.instrument.detector = detector
        model.meta.reftype = reftype.upper()
        model.meta.subarray.name = subarray
        model.meta.subarray.xstart, model.meta.subarray.ystart = 1, 1
        model.meta.subarray.ysize, model.meta.subarray.xsize = shape
        model.meta.author, model.meta.pedigree = "ramp2slope tests", "DUMMY"
        model.meta.useafter = "2000-01-01T00:00:00"
        model.meta.description = "synthetic reference for jwst's ported unit tests"
        path = str(folder / (name or f"jwst_{instrument.lower()}_{reftype}_{detector.lower()}.fits"))
        model.save(path)
        add(instrument, reftype, match or {DET: detector}, path)

    def add(instrument, reftype, match, path):
        entries.append((instrument, reftype, match, str(path)))

    def flat(shape, unusable=False):
        model = datamodels.FlatModel(data=np.ones(shape, np.float32),
                                     dq=np.zeros(shape, np.uint32), err=np.zeros(shape, np.float32))
        if unusable:
            model.dq[:5, :5] = dqflags.pixel["DO_NOT_USE"] | dqflags.pixel["NON_SCIENCE"]
        return model

    def filled(model_class, shape, value):
        return model_class(data=np.full(shape, value, np.float32))

    def mask(shape):
        return datamodels.MaskModel(dq=np.zeros(shape, np.uint32))

    miri, nir = (1024, 1032), (2048, 2048)
    for instrument, reftype, detector, model, shape in (
            ("MIRI", "gain", "MIRIMAGE", filled(datamodels.GainModel, miri, 4.0), miri),
            ("MIRI", "readnoise", "MIRIMAGE", filled(datamodels.ReadnoiseModel, miri, 10.0), miri),
            ("MIRI", "flat", "MIRIMAGE", flat(miri, unusable=True), miri),
            ("MIRI", "mask", "MIRIMAGE", mask(miri), miri),
            ("MIRI", "saturation", "MIRIMAGE", filled(datamodels.SaturationModel, miri, 60000.0), miri),
            ("MIRI", "linearity", "MIRIMAGE", datamodels.LinearityModel(
                coeffs=np.stack([np.zeros(miri, np.float32), np.ones(miri, np.float32)])), miri),
            ("NIRCAM", "flat", "NRCBLONG", flat(nir), nir),
            ("NIRCAM", "gain", "NRCB1", filled(datamodels.GainModel, nir, 4.0), nir),
            ("NIRCAM", "readnoise", "NRCB1", filled(datamodels.ReadnoiseModel, nir, 10.0), nir),
            ("NIRCAM", "saturation", "NRCA1", filled(datamodels.SaturationModel, nir, 60000.0), nir),
            ("NIRCAM", "superbias", "NRCA1", filled(datamodels.SuperBiasModel, nir, 12000.0), nir),
            ("NIRISS", "flat", "NIS", flat(nir), nir),
            ("NIRISS", "gain", "NIS", filled(datamodels.GainModel, nir, 1.6), nir),
            ("NIRISS", "readnoise", "NIS", filled(datamodels.ReadnoiseModel, nir, 10.0), nir),
            # (NIRSpec's FLAT is N/A, as for detector1 in a real context: only its imap is needed)
            ("NIRSPEC", "gain", "NRS1", filled(datamodels.GainModel, nir, 4.0), nir),
            ("NIRSPEC", "saturation", "NRS1", filled(datamodels.SaturationModel, nir, 60000.0), nir),
            ("FGS", "mask", "GUIDER1", mask(nir), nir)):
        if (instrument, reftype) == ("NIRSPEC", "gain"):
            model.meta.exposure.gain_factor = 2.0
        finish(model, instrument, detector, reftype, shape)

    # MIRI's RESET is made per subarray and read pattern, not cut out of a full frame
    for subarray, shape, nints, ngroups in (("SUB128", (128, 136), 2, 15), ("FULL", miri, 1, 5)):
        model = datamodels.ResetModel(data=np.zeros((nints, ngroups) + shape, np.float32),
                                      err=np.zeros((nints, ngroups) + shape, np.float32),
                                      dq=np.zeros(shape, np.uint32))
        model.meta.exposure.nints, model.meta.exposure.ngroups = nints, ngroups
        finish(model, "MIRI", "MIRIMAGE", "reset", shape,
               match={DET: "MIRIMAGE", SUB: subarray, READPATT: "FASTR1"},
               name=f"jwst_miri_reset_{subarray.lower()}.fits", subarray=subarray)
    # the RSCD's table of groups to skip, for SUB128 read FASTR1 only
    rscd = folder / "jwst_miri_rscd_mirimage.fits"
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="subarray", format="17A", array=["SUB128"]),
        fits.Column(name="readpatt", format="12A", array=["FASTR1"]),
        fits.Column(name="group_skip1", format="J", array=[1]),
        fits.Column(name="group_skip", format="J", array=[4])], name="RSCD_GROUP_SKIP")
    header = fits.Header({"TELESCOP": "JWST", "INSTRUME": "MIRI", "DETECTOR": "MIRIMAGE",
                          "REFTYPE": "RSCD", "DATAMODL": "RSCDModel", "USEAFTER": "2000-01-01T00:00:00",
                          "AUTHOR": "ramp2slope tests", "PEDIGREE": "DUMMY",
                          "DESCRIP": "synthetic reference for jwst's ported unit tests"})
    fits.HDUList([fits.PrimaryHDU(header=header), table]).writeto(rscd)
    add("MIRI", "rscd", {DET: "MIRIMAGE"}, rscd)
    # EMICORR (ASDF): one frequency for the two cases jwst's emicorr tests read
    emicorr = folder / "jwst_miri_emicorr.asdf"
    wave = np.sin(np.linspace(0.0, 2 * np.pi, 500, endpoint=False)).astype(np.float32)
    write_emicorr(str(emicorr), {"Hz10": (10.0, wave)}, {
        "MASK1550": {"rowclocks": 82, "frameclocks": 23968, "freqs": {
            "FAST": ["Hz10"], "SLOW": {"MIRIMAGE": ["Hz10"]}}},
        "FULL_FAST": {"rowclocks": 271, "frameclocks": 277504, "freqs": {"FAST": ["Hz10"]}}},
        "2000-01-01T00:00:00")
    add("MIRI", "emicorr", {DET: "MIRIMAGE"}, emicorr)
    # NIRSpec's IRS2 REFPIX (one per detector) and NIRCam's SIRSKERNEL (ASDF)
    for detector in ("NRS1", "NRS2"):
        refpix = folder / f"jwst_nirspec_refpix_{detector.lower()}.fits"
        header = fits.Header({"TELESCOP": "JWST", "INSTRUME": "NIRSPEC", "DETECTOR": detector,
                              "USEAFTER": "2000-01-01T00:00:00", "AUTHOR": "ramp2slope tests",
                              "PEDIGREE": "DUMMY"})
        write_irs2_refpix(str(refpix), header, seed=1)
        add("NIRSPEC", "refpix", {DET: detector}, refpix)
    import asdf

    sirs = folder / "jwst_nircam_sirskernel.asdf"
    rng = np.random.default_rng(2)
    kernel = (rng.normal(size=(4, 1025)) + 1j * rng.normal(size=(4, 1025))) * 1e-3
    asdf.AsdfFile({"nrcalong": {"gamma": kernel, "zeta": kernel.conj()},
                   "meta": {"reftype": "sirskernel", "instrument": {"name": "NIRCAM"},
                            "useafter": "2000-01-01T00:00:00", "pedigree": "DUMMY",
                            "author": "ramp2slope tests"}}).write_to(str(sirs))
    add("NIRCAM", "sirskernel", {DET: "NRCALONG"}, sirs)
    # NIRISS SOSS: the traces (PASTASOSS, for pupil-wheel positions 245.54-246.04), the
    # background templates (BKG) and the orders' wavelength ranges, as the oracle tests make them
    from test_oracle_clean_flicker_noise import write_pastasoss
    from test_oracle_soss_median_image import write_soss_background, write_wavelength_range

    add("NIRISS", "pastasoss", {DET: "NIS"}, write_pastasoss(folder / "jwst_niriss_pastasoss.asdf"))
    add("NIRISS", "bkg", {DET: "NIS"}, write_soss_background(folder / "jwst_niriss_bkg.fits"))
    add("NIRISS", "wavelengthrange", {DET: "NIS"},
        write_wavelength_range(folder / "jwst_niriss_wavelengthrange.asdf"))
    return entries


@pytest.fixture(scope="session")
def _synthetic_crds_root(tmp_path_factory):
    from crds_cache import Entry, build_cache

    folder = tmp_path_factory.mktemp("synthetic_refs")
    entries = [Entry(instrument, reftype, match, "2000-01-01 00:00:00", path)
               for instrument, reftype, match, path in _synthetic_references(folder)]
    return build_cache(tmp_path_factory.mktemp("synthetic_crds"), entries)


@pytest.fixture(autouse=True)
def _synthetic_crds(request, monkeypatch):
    """Tests marked ``jwst_api_crds`` find their references in the synthetic cache."""
    if request.node.get_closest_marker("jwst_api_crds") is None:
        yield
        return
    from crds_cache import crds_environment, forget_crds_state

    crds_environment(monkeypatch, request.getfixturevalue("_synthetic_crds_root"))
    yield
    monkeypatch.undo()
    forget_crds_state()
