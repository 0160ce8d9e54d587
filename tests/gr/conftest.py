"""Fixtures of the graceful-restart tests (RFC 4724, RFC 8538) against real peers and a real
data plane.

The policies are those of tests/kernel/conftest.py and tests/interop/conftest.py:

* tests that use ``namespaces`` (network namespaces the test creates with ``ip netns add`` and
  always deletes) are marked ``kernel``; they never touch the host's own links or tables
  (every command is ``ip -n NS ...`` or ``ip netns exec NS ...``);
* tests that use ``bird``, ``gobgp``, ``ns_bird`` (BIRD in a namespace) or ``bgpd`` outside
  namespaces are marked ``interop``; their daemons bind only their own ``127.0.0.x`` (or live in a namespace) and
  are stopped in teardown even when the test fails (log tails printed then);
* without root, ``ip``, namespaces or a daemon the test is skipped with the reason, except
  under ``BGPD_REQUIRE_PEERS=1``, where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from needs import failed, skip_or_fail

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gr_helpers  # noqa: E402
from gr_helpers import Namespaces, bgpd_proc, peers  # noqa: E402
from interop_kit import AddressPool, Daemons, worker_address  # noqa: E402

REQUIRE_ENV = "BGPD_REQUIRE_PEERS"
INSTALL_HINT = "apt-get install bird2 gobgpd iproute2"


def require_root() -> None:
    if os.geteuid() != 0:
        skip_or_fail("graceful-restart tests need root (port 179, network namespaces)")


def require_binary(*names: str) -> None:
    for name in names:
        if peers._find_binary(name) is None and shutil.which(name) is None:
            skip_or_fail(f"{name} not found ({INSTALL_HINT})")


_netns_probe: str | None | bool = False


def require_netns() -> None:
    global _netns_probe
    require_root()
    require_binary("ip")
    if _netns_probe is False:
        name = f"bgpdgr-probe-{os.getpid()}"
        r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
        if r.returncode != 0:
            _netns_probe = f"cannot create a network namespace: {r.stderr.strip()}"
        else:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            _netns_probe = None
    if _netns_probe:
        skip_or_fail(_netns_probe)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here not in Path(item.path).resolve().parents:
            continue
        names = set(getattr(item, "fixturenames", ()))
        if "namespaces" in names:
            item.add_marker(pytest.mark.kernel)
        # interop: a third-party daemon, or bgpd on 127.0.0.x (bgpd pairs in namespaces are
        # kernel tests only, as in tests/kernel)
        if names & {"bird", "gobgp", "ns_bird"} or ("bgpd" in names and "namespaces" not in names):
            item.add_marker(pytest.mark.interop)


# --------------------------------------------------------------------------------------
# Namespaces
# --------------------------------------------------------------------------------------


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    """A factory of fresh namespaces, all deleted at teardown (even when the test fails)."""
    require_netns()
    made = Namespaces()
    try:
        yield made
    finally:
        made.close()


# --------------------------------------------------------------------------------------
# Daemons
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def addresses() -> AddressPool:
    """127.0.0.150 upward (127.0.N+1.150 on gwN): away from tests/interop's pool."""
    return AddressPool(worker_address(150))


@pytest.fixture
def daemons(request: pytest.FixtureRequest) -> Iterator[Daemons]:
    made = Daemons()
    try:
        yield made
    finally:
        made.close(failed(request.node))


@pytest.fixture
def bird(daemons: Daemons, addresses: AddressPool):
    """``bird(asn=..., neighbors=[...], routes=[...])``: a started GrBirdPeer on 127.0.0.x."""
    require_root()
    require_binary("bird", "birdc")

    def make(*, start: bool = True, **kw) -> gr_helpers.GrBirdPeer:
        kw.setdefault("address", addresses())
        kw.setdefault("name", f"bird{len(daemons.made) + 1}")
        p = daemons.add(gr_helpers.GrBirdPeer(**kw))
        if start:
            p.start()
        return p

    return make


@pytest.fixture
def gobgp(daemons: Daemons, addresses: AddressPool):
    """``gobgp(asn=..., neighbors=[...], routes=[...])``: a started GrGobgpPeer."""
    require_root()
    require_binary("gobgpd", "gobgp")

    def make(*, start: bool = True, **kw) -> gr_helpers.GrGobgpPeer:
        kw.setdefault("address", addresses())
        kw.setdefault("name", f"gobgp{len(daemons.made) + 1}")
        p = daemons.add(gr_helpers.GrGobgpPeer(**kw))
        if start:
            p.start()
        return p

    return make


@pytest.fixture
def bgpd(daemons: Daemons, addresses: AddressPool):
    """``bgpd(asn=..., neighbors=[...], networks=[...], extra={...})``: a started
    GrBgpd on 127.0.0.x (``ns=NS``: an NsBgpd inside that namespace instead)."""
    require_root()

    def make(*, start: bool = True, ns=None, **kw) -> bgpd_proc.BgpdProcess:
        kw.setdefault("name", f"bgpd{len(daemons.made) + 1}")
        if ns is None:
            kw.setdefault("address", addresses())
            p = gr_helpers.GrBgpd(**kw)
        else:
            p = gr_helpers.NsBgpd(ns, **kw)
        daemons.add(p)
        if start:
            p.start()
        return p

    return make


@pytest.fixture
def ns_bird(daemons: Daemons):
    """``ns_bird(NS, address=..., asn=..., neighbors=[...], host_interfaces=[...])``: BIRD
    inside a namespace (NsBird), with a persistent, graceful-restart kernel protocol."""
    require_binary("bird", "birdc")

    def make(ns, *, start: bool = True, **kw) -> gr_helpers.NsBird:
        kw.setdefault("name", f"bird{len(daemons.made) + 1}")
        p = daemons.add(gr_helpers.NsBird(ns, **kw))
        if start:
            p.start()
        return p

    return make
