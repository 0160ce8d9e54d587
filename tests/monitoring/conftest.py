"""Fixtures of the monitoring tests: a real ``bgpd run`` with MRT and BMP switched on, real
BIRD 2 and FRR peers, pmacct's pmbmpd as the BMP collector, bgpdump and mrtparse as readers.

The daemons come from the harnesses of tests/interop (``bgpd_proc.BgpdProcess``,
``peers.BirdPeer``/``FrrPeer``), the collector from tests/bmp (``bmp_collector.Pmbmpd``), the
MRT readers from tests/mrt (``mrt_readers``). Every daemon binds its own 127.0.N+1.1xx address
(``PYTEST_XDIST_WORKER=gwN``), works in a ``mo-*`` directory of its own and is stopped in
teardown by the PID it was started with, even when the test fails (log tails printed then).
A missing daemon or reader skips the test with the package to install, except under
``BGPD_REQUIRE_PEERS=1``, where it fails.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from needs import failed, skip_or_fail

HERE = Path(__file__).resolve().parent
for d in ("interop", "bmp", "mrt"):
    sys.path.insert(0, str(HERE.parent / d))

import bgpd_proc  # noqa: E402
import peers  # noqa: E402
from bmp_collector import Pmbmpd, free_port  # noqa: E402
from interop_kit import AddressPool, Daemons, worker_address  # noqa: E402

REQUIRE_ENV = "BGPD_REQUIRE_PEERS"


def require_root() -> None:
    if os.geteuid() != 0:
        skip_or_fail("the monitoring tests run daemons on port 179: run them as root")


def require(binary: str, package: str) -> None:
    if peers._find_binary(binary) is None and shutil.which(binary) is None:
        skip_or_fail(f"{binary} not found: apt-get install {package}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.interop)


@pytest.fixture(scope="session")
def addresses() -> AddressPool:
    """127.0.0.100-149 (127.0.N+1.x on gwN): away from tests/interop (.10 up), tests/gr
    (.150 up) and the BMP collectors (.200 up)."""
    third = worker_address(0).rsplit(".", 1)[0]
    return AddressPool(f"{third}.100", f"{third}.149")


@pytest.fixture
def daemons(request: pytest.FixtureRequest) -> Iterator[Daemons]:
    made = Daemons()
    try:
        yield made
    finally:
        made.close(failed(request.node))


def _workdir(kind: str) -> str:
    return tempfile.mkdtemp(prefix=f"mo-{kind}-")


@pytest.fixture
def bgpd(daemons: Daemons, addresses: AddressPool) -> Callable[..., bgpd_proc.BgpdProcess]:
    """``bgpd(asn=, neighbors=[...], extra={...})``: a started ``bgpd run`` subprocess."""
    require_root()

    def make(*, start: bool = True, **kw) -> bgpd_proc.BgpdProcess:
        kw.setdefault("address", addresses())
        kw.setdefault("name", f"bgpd{len(daemons.made) + 1}")
        kw.setdefault("workdir", _workdir("bgpd"))
        p = daemons.add(bgpd_proc.BgpdProcess(**kw))
        if start:
            p.start()
        return p

    return make


def _peer_factory(cls, daemons: Daemons, addresses: AddressPool):
    require_root()
    for b in cls.binaries:
        require(b, cls.package)

    def make(*, start: bool = True, **kw):
        kw.setdefault("address", addresses())
        kw.setdefault("name", f"{cls.kind}{len(daemons.made) + 1}")
        kw.setdefault("workdir", _workdir(cls.kind))
        p = daemons.add(cls(**kw))
        if start:
            p.start()
        return p

    return make


@pytest.fixture
def bird(daemons: Daemons, addresses: AddressPool):
    """``bird(asn=, neighbors=[...], routes=[...])``: a started BIRD 2 (tests/interop)."""
    return _peer_factory(peers.BirdPeer, daemons, addresses)


@pytest.fixture
def frr(daemons: Daemons, addresses: AddressPool):
    """``frr(asn=, neighbors=[...], routes=[...])``: a started FRR bgpd (tests/interop)."""
    return _peer_factory(peers.FrrPeer, daemons, addresses)


class Collector(Pmbmpd):
    """pmbmpd on our own address, stopped with the other daemons."""

    def __repr__(self) -> str:
        return f"<pmbmpd {self.address}:{self.port}>"

    def log_tail(self, lines: int = 60) -> str:
        return f"--- pmbmpd {self.address}:{self.port} ---\n{self.tail()}"


@pytest.fixture
def pmbmpd(daemons: Daemons, addresses: AddressPool) -> Collector:
    """pmacct's pmbmpd logging every BMP message as JSON (tests/bmp/bmp_collector.py)."""
    require("pmbmpd", "pmacct")
    address = addresses()
    d = Collector(Path(_workdir("pmbmpd")), address, free_port(address))
    d.start()
    daemons.add(d)
    return d


@pytest.fixture
def mrt_readers():
    """tests/mrt/mrt_readers.py, after checking both readers are there."""
    require("bgpdump", "bgpdump")
    try:
        import mrtparse  # noqa: F401
    except ImportError:
        skip_or_fail("mrtparse not installed: pip install mrtparse")
    import mrt_readers as readers

    return readers
