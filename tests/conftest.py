"""Fixtures shared by every test directory.

``bird16``: the directory holding BIRD 1.6.8's ``bird``, ``bird6``, ``birdc`` and ``birdc6``,
the oracle for Calico's fork (Debian's package ``bird``, which conflicts with ``bird2``, so it
is unpacked privately by ``tools/bird16.sh``, never installed).  Missing, it skips with the
command that fetches it, or fails under ``BGPD_REQUIRE_PEERS=1`` (CI).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def must_not_skip() -> bool:
    """True when a test that cannot run must fail instead of skipping (CI)."""
    return os.environ.get("BGPD_REQUIRE_PEERS", "") not in ("", "0")


def skip_or_fail(reason: str) -> None:
    if must_not_skip():
        pytest.fail(f"{reason} (BGPD_REQUIRE_PEERS=1, so this is a failure, not a skip)")
    pytest.skip(reason)


def _bird16_dir() -> Path | None:
    base = Path(os.environ.get("BGPD_BIRD16_DIR", ROOT / ".cache" / "bird16"))
    sbin = base / "usr" / "sbin"
    if (sbin / "bird").is_file():
        return sbin
    try:
        out = subprocess.run(
            [str(ROOT / "tools" / "bird16.sh"), str(base)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return sbin if out.returncode == 0 and (sbin / "bird").is_file() else None


@pytest.fixture(scope="session")
def bird16() -> Path:
    sbin = _bird16_dir()
    if sbin is None:
        skip_or_fail(
            "BIRD 1.6.8 not available: run tools/bird16.sh (needs 'apt-get download bird'), "
            "or set BGPD_BIRD16_DIR to a directory holding usr/sbin/bird"
        )
    return sbin  # type: ignore[return-value]


@pytest.fixture(scope="session")
def shared_corpora() -> Path:
    """``../shared/corpora`` beside the project (never committed into it)."""
    path = SHARED / "corpora"
    if not path.is_dir():
        skip_or_fail(f"{path} is absent: the corpus tests read it from beside the project")
    return path
