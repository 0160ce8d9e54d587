"""Fixtures shared by every test directory.

``slow``: the long scenario tests (whole directories and files, and single tests over about
8 s), marked by path in :func:`pytest_collection_modifyitems`. ``make test`` (and CI) runs
everything; ``make test-fast`` (``pytest -m "not slow"``) leaves them out.

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
from needs import skip_or_fail

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


# The long scenario tests: directories and files (relative to tests/), and single tests
# (``file::name``, or ``file::name[param]`` for one parametrization) over about 8 s.
SLOW_PATHS = (
    "faults/",
    "lab/",
    "birdrun/",
    "birddiff/",
    "gr/test_gr_interop.py",
    "gr/test_gr_dataplane.py",
    "bfd/test_bfd_interop.py",
    "bfd/test_bfd_bgp.py",
)
SLOW_TESTS = frozenset(
    {
        "interop/test_sessions.py::test_ibgp_and_ebgp_establish_from_either_side[gobgp]",
        "hostile/test_hostile_fuzz.py::test_fuzz_short",
        "routeapi/test_routeapi_health_netns.py::test_closed_port_withdrawn_within_fall_intervals",
        "routeapi/test_routeapi_health_netns.py::test_flapping_check_is_damped",
        "routeapi/test_routeapi_bird.py::test_lease_expiry",
        "routeapi/test_routeapi_bird.py::test_bad_input_changes_nothing",
        "monitoring/test_mrt_daemon.py::test_update_log_holds_every_update_exchanged",
    }
)


def _is_slow(item: pytest.Item) -> bool:
    try:
        rel = Path(item.path).resolve().relative_to(ROOT / "tests").as_posix()
    except ValueError:
        return False
    if rel.startswith(SLOW_PATHS):
        return True
    name = item.name  # with its parameters: test_x[gobgp]
    return f"{rel}::{name}" in SLOW_TESTS or f"{rel}::{name.split('[')[0]}" in SLOW_TESTS


def pytest_sessionstart(session: pytest.Session) -> None:
    """Byte-compile bgpd/ (into its ``__pycache__``, ignored by git) before anything starts.

    The suite starts hundreds of Python processes that import bgpd (``bgpd run``,
    ``bgpd-bird``, ``python -m bgpd.bfd``, the CLI, peer rigs). bgpd is installed editable, so
    nothing else compiles it, and with ``PYTHONDONTWRITEBYTECODE=1`` in the environment (as
    on the development VM) no process would keep what it compiled: each start then costs
    about 0.3 s more (0.7 s instead of 0.4 s for ``import bgpd.speaker``). py_compile writes
    whatever that variable says; already compiled and unchanged, this takes 0.1 s."""
    import compileall

    compileall.compile_dir(str(ROOT / "bgpd"), quiet=1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_slow(item):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """Each phase's report on the test's item (``item.rep_setup``, ``rep_call``...), where
    :func:`needs.failed` reads it."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


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
