"""Fixtures of the birdctl tests.

``bird_lab`` (session): real BIRD 1.6.8 in a network namespace of its own, peered over a
veth pair with a BIRD 2 in a second namespace (see bc_lab.py), both stopped by PID and both
namespaces deleted at teardown, even when a test fails. Needs root, iproute2, BIRD 2
(``/usr/sbin/bird``, Debian ``bird2``) and BIRD 1.6.8 (the ``bird16`` fixture).
``serve``: our control socket on a snapshot, in a background thread.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bc_lab as lab  # noqa: E402
from bc_helpers import ThreadedServer, query, stop_pid_file, wait_for  # noqa: E402
from needs import skip_or_fail  # noqa: E402

BIRD2 = "/usr/sbin/bird"


@pytest.fixture
def tmp_sock_dir():
    d = tempfile.mkdtemp(prefix="bc-")
    try:
        yield Path(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def serve(tmp_sock_dir):
    """``serve(snapshot_fn, handler=None, clock=..., version=None) -> socket path``."""
    servers: list[ThreadedServer] = []

    def start(snapshot, handler=None, clock=None, version=None, name="bird.ctl") -> str:
        path = str(tmp_sock_dir / name)
        kw = {"clock": clock} if clock else {}
        srv = ThreadedServer(path, snapshot, handler, version=version, **kw)
        srv.__enter__()
        servers.append(srv)
        return path

    try:
        yield start
    finally:
        for s in servers:
            s.__exit__(None, None, None)


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@dataclass
class Lab:
    dir: Path
    sock: Path  # BIRD 1.6.8's control socket
    sock2: Path  # BIRD 2's
    bird16: Path  # directory of BIRD 1.6.8's binaries
    ns_a: str
    ns_b: str


@pytest.fixture(scope="session")
def bird_lab(bird16):
    if os.geteuid() != 0:
        skip_or_fail("the BIRD lab needs root (network namespaces)")
    if shutil.which("ip") is None:
        skip_or_fail("the BIRD lab needs iproute2's ip: apt-get install iproute2")
    if not os.access(BIRD2, os.X_OK):
        skip_or_fail("BIRD 2 not found: apt-get install bird2")
    d = Path(tempfile.mkdtemp(prefix="bc-lab-"))
    tag = f"{os.getpid() % 100000}"
    ns_a, ns_b = f"bca{tag}", f"bcb{tag}"
    made: list[str] = []
    try:
        for ns in (ns_a, ns_b):
            _run("ip", "netns", "add", ns)
            made.append(ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run(
            "ip",
            "-n",
            ns_a,
            "link",
            "add",
            "bcv0",
            "type",
            "veth",
            "peer",
            "name",
            "bcv1",
            "netns",
            ns_b,
        )
        _run("ip", "-n", ns_a, "addr", "add", "192.0.2.1/24", "dev", "bcv0")
        _run("ip", "-n", ns_b, "addr", "add", "192.0.2.2/24", "dev", "bcv1")
        _run("ip", "-n", ns_a, "link", "set", "bcv0", "up")
        _run("ip", "-n", ns_b, "link", "set", "bcv1", "up")
        for prefix, spec in lab.KERNEL_ROUTES:
            _run("ip", "-n", ns_a, "route", "add", prefix, *spec)
    except (subprocess.CalledProcessError, OSError) as e:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)
        skip_or_fail(f"cannot build the lab's namespaces: {e}")
    (d / "bird16.cfg").write_text(lab.BIRD16_CFG)
    (d / "bird2.conf").write_text(lab.BIRD2_CONF)
    try:
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                ns_b,
                BIRD2,
                "-c",
                "bird2.conf",
                "-s",
                "b2.ctl",
                "-P",
                "b2.pid",
            ],
            cwd=d,
            check=True,
            capture_output=True,
            timeout=20,
        )
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                ns_a,
                str(bird16 / "bird"),
                "-R",
                "-c",
                "bird16.cfg",
                "-s",
                "b16.ctl",
                "-P",
                "b16.pid",
            ],
            cwd=d,
            check=True,
            capture_output=True,
            timeout=20,
        )
        the_lab = Lab(d, d / "b16.ctl", d / "b2.ctl", bird16, ns_a, ns_b)

        def ready() -> bool:
            replies = query(the_lab.sock, "show protocols", "show route count")
            est = any(lab.MESH in ln and "Established" in ln for ln in replies[1])
            return est and "10 of 10 routes" in replies[2][-1]

        wait_for(ready, 60, "BIRD 1.6.8 to establish with BIRD 2 and learn its routes")
        yield the_lab
    finally:
        stop_pid_file(d / "b16.pid")
        stop_pid_file(d / "b2.pid")
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)
