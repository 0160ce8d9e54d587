"""What a test needs that the machine may lack, and whether a test failed.

A missing daemon, package, privilege or corpus skips the test with the reason, except under
``BGPD_REQUIRE_PEERS=1`` (CI), where it fails. Fixtures that start daemons print their log
tails when the test failed (:func:`failed`; tests/conftest.py records each phase's report).

Every test directory's conftest and helpers import this module: pytest puts tests/ (the
root conftest's directory) on ``sys.path``.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_ENV = "BGPD_REQUIRE_PEERS"


def must_not_skip() -> bool:
    """True when a test that cannot run must fail instead of skipping (CI)."""
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def skip_or_fail(reason: str) -> None:
    if must_not_skip():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1, so this is a failure, not a skip)")
    pytest.skip(reason)


def failed(node: pytest.Item) -> bool:
    """Whether the test's setup or call failed (for a fixture's teardown)."""
    return any(
        getattr(getattr(node, f"rep_{when}", None), "failed", False) for when in ("setup", "call")
    )
