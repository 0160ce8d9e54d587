"""Fixtures for the kernel tests: network namespaces the tests create and always delete.

Tests that touch netlink are marked ``kernel`` and run only inside namespaces made here
(``ip netns add``), never against the host's own tables. They are skipped, with the reason,
when the run is not root, ``ip`` is missing or namespaces cannot be created; under
``BGPD_REQUIRE_PEERS=1`` (CI) they fail instead. The pure tests in this directory (translate,
host state, codec, FIB writer against an in-memory kernel) always run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from needs import skip_or_fail

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kernel_helpers import Namespaces  # noqa: E402

_probe: str | None | bool = False  # False: not probed yet; None: fine; str: why not


def _why_not() -> str | None:
    global _probe
    if _probe is not False:
        return _probe
    if os.geteuid() != 0:
        _probe = "kernel tests need root (network namespaces): run as root"
    elif shutil.which("ip") is None:
        _probe = "kernel tests need iproute2's ip: apt-get install iproute2"
    else:
        name = f"bgpdt-probe-{os.getpid()}"
        r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
        if r.returncode != 0:
            _probe = f"cannot create a network namespace: {r.stderr.strip()}"
        else:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            _probe = None
    return _probe


def require_netns() -> None:
    why = _why_not()
    if why:
        skip_or_fail(why)


@pytest.fixture
def namespaces():
    """A factory of fresh namespaces, all deleted at teardown (even when the test fails)."""
    require_netns()
    made = Namespaces()
    try:
        yield made
    finally:
        made.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that uses real namespaces is a ``kernel`` test."""
    for item in items:
        if "namespaces" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kernel)
