"""Hostile tests run speakers that decode into the process-wide attribute pool
(``bgpd.wire.DEFAULT_POOL``, whose decode cache holds sets strongly): put it back as it was
after each test, so that the interned sets they created do not outlive them and reach
other tests (which may expect a fresh ``AttrSet`` with an empty cache)."""

import pytest

from bgpd.wire import DEFAULT_POOL


@pytest.fixture(autouse=True)
def _restore_default_pool():
    before = dict(DEFAULT_POOL.by_raw)
    errors = dict(DEFAULT_POOL.by_raw_error)
    yield
    DEFAULT_POOL.by_raw.clear()
    DEFAULT_POOL.by_raw.update(before)
    DEFAULT_POOL.by_raw_error.clear()
    DEFAULT_POOL.by_raw_error.update(errors)
