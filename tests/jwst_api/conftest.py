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
        for key in list(module.JWST_API_XFAIL) + list(module.JWST_API_SKIP):
            if key not in used:
                stale.append(f"{name}: {key}")
    if stale:
        raise pytest.UsageError("jwst_api tables name tests that were not collected: " + ", ".join(stale))


@pytest.fixture(autouse=True)
def _run_in_tmp_path(tmp_path, monkeypatch):
    """jwst's suite runs every test in its own temporary folder (its ``_jail`` fixture);
    some ported tests save products to the current folder, which must not be the checkout."""
    monkeypatch.chdir(tmp_path)
