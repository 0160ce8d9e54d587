"""Fixtures of the BMP tests: collectors on addresses of our own, and pmbmpd."""

import shutil
import sys
from pathlib import Path

import pytest
from needs import skip_or_fail

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bmp_collector import Collector, Pmbmpd, free_port, own_address  # noqa: E402


@pytest.fixture
async def collector():
    """A Python BMP sink on a fresh 127.0.N.2xx address (not started: call ``start()``)."""
    address = own_address()
    c = Collector(address, free_port(address), rcvbuf=64 * 1024)
    yield c
    await c.stop()


@pytest.fixture
def pmbmpd(tmp_path):
    if shutil.which("pmbmpd") is None:
        skip_or_fail("pmbmpd not found: apt-get install pmacct")
    address = own_address()
    d = Pmbmpd(tmp_path, address, free_port(address))
    d.start()
    yield d
    d.stop()
