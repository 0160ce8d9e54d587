"""Fixtures of the BFD tests: namespaces (prefix ``bfdt``), peers, measured times.

The interop tests need root, iproute2, nftables and the peer daemons (bird2, frr). Missing
pieces skip with the reason, or fail under ``BGPD_REQUIRE_PEERS=1`` (CI). Namespaces and
processes are removed in teardown even when the test fails. Detection and recovery times
measured by the tests are listed at the end of the run ("BFD measurements").
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from needs import failed

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bfd_peers  # noqa: E402

MEASUREMENTS: list[tuple[str, str, float]] = []


from bfd_peers import require_netns  # noqa: E402


@pytest.fixture
def link():
    """Two fresh namespaces joined by a veth pair; deleted at teardown."""
    require_netns()
    made = bfd_peers.Link.create()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def procs(request):
    """Register processes (anything with ``close()``); closed at teardown, before ``link``
    is torn down. On failure, their logs are printed."""
    started: list = []
    yield started
    bad = failed(request.node)
    for p in reversed(started):
        if bad:
            for attr in ("log", "tail"):
                if hasattr(p, attr):
                    print(f"--- {type(p).__name__} {attr}:\n{getattr(p, attr)()}")
        p.close()


@pytest.fixture
def measure():
    """``measure(test, what, seconds)``: kept for the summary at the end of the run."""

    def record(test: str, what: str, seconds: float) -> None:
        MEASUREMENTS.append((test, what, seconds))

    return record


def pytest_terminal_summary(terminalreporter):
    if not MEASUREMENTS:
        return
    tr = terminalreporter
    tr.section("BFD measurements (seconds)")
    for test, what, seconds in MEASUREMENTS:
        tr.write_line(f"{test:45s} {what:55s} {seconds:7.3f}")
