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
#: Reference files of the synthetic cache: (instrument, reftype, detector) -> model maker.
def _synthetic_references(folder):
    import numpy as np

    from ramp2slope import datamodels
    from ramp2slope.datamodels import dqflags

    def finish(model, instrument, detector, reftype, shape):
        model.meta.instrument.name = instrument
        model.meta.instrument.detector = detector
        model.meta.reftype = reftype.upper()
        model.meta.subarray.name = "FULL"
        model.meta.subarray.xstart, model.meta.subarray.ystart = 1, 1
        model.meta.subarray.ysize, model.meta.subarray.xsize = shape
        model.meta.author, model.meta.pedigree = "ramp2slope tests", "DUMMY"
        model.meta.useafter = "2000-01-01T00:00:00"
        model.meta.description = "synthetic reference for jwst's ported unit tests"
        path = str(folder / f"jwst_{instrument.lower()}_{reftype}_{detector.lower()}.fits")
        model.save(path)
        return path

    def flat(shape, unusable=False):
        model = datamodels.FlatModel(data=np.ones(shape, np.float32),
                                     dq=np.zeros(shape, np.uint32), err=np.zeros(shape, np.float32))
        if unusable:
            model.dq[:5, :5] = dqflags.pixel["DO_NOT_USE"] | dqflags.pixel["NON_SCIENCE"]
        return model

    def gain(shape):
        return datamodels.GainModel(data=np.full(shape, 4.0, np.float32))

    miri, nir = (1024, 1032), (2048, 2048)
    refs = {
        ("MIRI", "gain", "MIRIMAGE"): (gain(miri), miri),
        ("MIRI", "readnoise", "MIRIMAGE"): (
            datamodels.ReadnoiseModel(data=np.full(miri, 10.0, np.float32)), miri),
        ("MIRI", "flat", "MIRIMAGE"): (flat(miri, unusable=True), miri),
        ("NIRCAM", "flat", "NRCBLONG"): (flat(nir), nir),
        ("NIRCAM", "gain", "NRCB1"): (gain(nir), nir),
        ("NIRCAM", "readnoise", "NRCB1"): (
            datamodels.ReadnoiseModel(data=np.full(nir, 10.0, np.float32)), nir),
        ("NIRISS", "flat", "NIS"): (flat(nir), nir),
        # (NIRSpec's FLAT is N/A, as for detector1 in a real context: only its imap is needed)
        ("NIRSPEC", "gain", "NRS1"): (gain(nir), nir),
    }
    return {key: finish(model, key[0], key[2], key[1], shape)
            for key, (model, shape) in refs.items()}


@pytest.fixture(scope="session")
def _synthetic_crds_root(tmp_path_factory):
    from crds_cache import Entry, build_cache

    folder = tmp_path_factory.mktemp("synthetic_refs")
    entries = [Entry(instrument, reftype, {"META.INSTRUMENT.DETECTOR": detector},
                     "2000-01-01 00:00:00", path)
               for (instrument, reftype, detector), path in _synthetic_references(folder).items()]
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
