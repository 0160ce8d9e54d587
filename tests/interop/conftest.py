"""Fixtures for interop tests against real BIRD, GoBGP and FRR daemons.

Policy: a missing daemon skips the test with the command that installs it, except when
``BGPD_REQUIRE_PEERS=1`` (set by ``.ci/run``), where it fails instead, so CI can never
pass by skipping everything.

Every daemon binds only its own ``127.0.0.x`` address, handed out by the session-wide
``addresses`` allocator, and every peer built by the ``bird`` / ``gobgp`` / ``frr`` factory
fixtures is stopped in teardown even when the test fails.  When a test fails, the
daemons' log tails are printed in the teardown section of the report; set
``BGPD_KEEP_PEER_DIRS=1`` to keep their work dirs (configs, logs) for a post-mortem.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from needs import failed, skip_or_fail

try:  # tests/interop as a package (tests/__init__.py present) or as a rootdir-relative dir
    from . import peers
except ImportError:  # pragma: no cover - depends on how pytest imports this dir
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import peers  # type: ignore[no-redef]

from interop_kit import KEEP_ENV, AddressPool, worker_address  # noqa: E402

BgpPeer = peers.BgpPeer
BirdPeer = peers.BirdPeer
GobgpPeer = peers.GobgpPeer
FrrPeer = peers.FrrPeer
tcp_port_free = peers.tcp_port_free

REQUIRE_ENV = "BGPD_REQUIRE_PEERS"
INSTALL_HINT = "apt-get install bird2 gobgpd frr"


def require(binary: str, package: str) -> str:
    """Return the path of ``binary``; skip (or fail under BGPD_REQUIRE_PEERS=1) if missing."""
    path = peers._find_binary(binary)
    if path is None:
        skip_or_fail(
            f"{binary} not found: install Debian package {package} ({INSTALL_HINT}) "
            f"or set {REQUIRE_ENV}=1 in CI to make this a failure"
        )
    return path  # type: ignore[return-value]


def require_root() -> None:
    """Binding port 179 and TCP-MD5/GTSM need root (or CAP_NET_BIND_SERVICE/NET_ADMIN)."""
    if os.geteuid() != 0:
        skip_or_fail(
            f"interop peers need root (port 179); run as root or set {REQUIRE_ENV}=1 in CI"
        )


def require_peer(cls: type[BgpPeer]) -> None:
    require_root()
    for b in cls.binaries:
        require(b, cls.package)


@pytest.fixture
def require_binary() -> Callable[[str, str], str]:
    """The :func:`require` helper as a fixture: ``require_binary("bird", "bird2")``."""
    return require


# --------------------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def addresses() -> AddressPool:
    """Session-wide allocator: ``addresses()`` returns a fresh 127.0.0.x."""
    return AddressPool(worker_address(10))


# --------------------------------------------------------------------------------------
# Peer factories
# --------------------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.interop)


class PeerFactory:
    """Builds, starts and tracks peers of one class; ``close()`` stops them all."""

    def __init__(self, cls: type[BgpPeer], addresses: AddressPool, test_name: str) -> None:
        self.cls = cls
        self.addresses = addresses
        self.test_name = test_name
        self.peers: list[BgpPeer] = []

    def __call__(
        self,
        *,
        asn: int,
        neighbors: list[dict[str, Any]] | tuple = (),
        routes: list[dict[str, Any]] | tuple = (),
        name: str | None = None,
        address: str | None = None,
        start: bool = True,
        **kwargs: Any,
    ) -> BgpPeer:
        address = address or self.addresses()
        name = name or f"{self.cls.kind}{len(self.peers) + 1}"
        peer = self.cls(
            name=name, address=address, asn=asn, neighbors=neighbors, routes=routes, **kwargs
        )
        self.peers.append(peer)
        if start:
            peer.start()
        return peer

    def close(self, failed: bool) -> None:
        keep = bool(os.environ.get(KEEP_ENV))
        errors = []
        for peer in reversed(self.peers):
            if failed:
                sys.stderr.write(f"\n{peer._log_tail(80)}\n--- config ---\n{peer.config_text()}\n")
            try:
                peer.cleanup(remove_workdir=not keep)
            except Exception as e:  # keep stopping the others
                errors.append(e)
        if keep:
            for peer in self.peers:
                sys.stderr.write(f"kept {peer!r} work dir {peer.workdir}\n")
        if errors:
            raise errors[0]


def _factory(
    cls: type[BgpPeer], request: pytest.FixtureRequest, addresses: AddressPool
) -> Iterator[PeerFactory]:
    require_peer(cls)
    factory = PeerFactory(cls, addresses, request.node.name)
    try:
        yield factory
    finally:
        factory.close(failed(request.node))


@pytest.fixture
def bird(request: pytest.FixtureRequest, addresses: AddressPool) -> Iterator[PeerFactory]:
    """``bird(asn=…, neighbors=[…], routes=[…])`` → a started :class:`BirdPeer`."""
    yield from _factory(BirdPeer, request, addresses)


@pytest.fixture
def gobgp(request: pytest.FixtureRequest, addresses: AddressPool) -> Iterator[PeerFactory]:
    """``gobgp(asn=…, neighbors=[…], routes=[…])`` → a started :class:`GobgpPeer`."""
    yield from _factory(GobgpPeer, request, addresses)


@pytest.fixture
def frr(request: pytest.FixtureRequest, addresses: AddressPool) -> Iterator[PeerFactory]:
    """``frr(asn=…, neighbors=[…], routes=[…])`` → a started :class:`FrrPeer`."""
    yield from _factory(FrrPeer, request, addresses)


@pytest.fixture
def peer_factory(
    request: pytest.FixtureRequest, addresses: AddressPool
) -> Iterator[Callable[[str], PeerFactory]]:
    """``peer_factory("bird")`` → the factory for that daemon (for parametrised tests)."""
    factories: list[PeerFactory] = []

    def get(kind: str) -> PeerFactory:
        cls = peers.PEER_CLASSES[kind]
        require_peer(cls)
        f = PeerFactory(cls, addresses, request.node.name)
        factories.append(f)
        return f

    try:
        yield get
    finally:
        bad = failed(request.node)
        for f in factories:
            f.close(bad)


# --------------------------------------------------------------------------------------
# bgpd itself, as a subprocess
# --------------------------------------------------------------------------------------


@pytest.fixture
def bgpd(request: pytest.FixtureRequest, addresses: AddressPool) -> Iterator[Any]:
    """``bgpd(asn=…, neighbors=[…], networks=[…])`` → a started ``BgpdProcess``
    (tests/interop/bgpd_proc.py): ``bgpd run`` on its own 127.0.0.x, stopped in teardown.

    Imported here, not at the top, so that the harness's own tests keep working while bgpd
    cannot even be imported.
    """
    require_root()
    try:
        from . import bgpd_proc
    except ImportError:  # pragma: no cover - depends on how pytest imports this dir
        import bgpd_proc  # type: ignore[no-redef]

    factory = bgpd_proc.BgpdFactory(addresses, request.node.name)
    try:
        yield factory
    finally:
        factory.close(failed(request.node), keep=bool(os.environ.get(KEEP_ENV)))
