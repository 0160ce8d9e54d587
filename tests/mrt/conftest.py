"""Fixtures of the MRT tests: the two readers, skipped (or failed in CI) when absent."""

import shutil
import sys
from pathlib import Path

import pytest
from needs import skip_or_fail

sys.path.insert(0, str(Path(__file__).resolve().parent))


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
