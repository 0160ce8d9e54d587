"""Fixtures of the MRT tests: the two readers, skipped (or failed in CI) when absent."""

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


def skip_or_fail(reason: str) -> None:
    if os.environ.get("BGPD_REQUIRE_PEERS", "") not in ("", "0"):
        pytest.fail(f"{reason} (BGPD_REQUIRE_PEERS=1, so this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def need_bgpdump():
    if shutil.which("bgpdump") is None:
        skip_or_fail("bgpdump not found: apt-get install bgpdump")


@pytest.fixture(scope="session")
def need_mrtparse():
    try:
        import mrtparse  # noqa: F401
    except ImportError:
        skip_or_fail("mrtparse not installed: pip install -e '.[test]' (the test extra has it)")
