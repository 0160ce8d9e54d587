"""Real clients against bgpd-bird's socket and against BIRD 1.6.8's, on the lab once its
recovery is over: BIRD 1.6.8's ``birdc``, Debian bird2's ``birdc`` and ``birdcl``, and our
``bgpd-birdcl``. Each prints the same (br_compare.comparable) with the same exit status."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import br_lab as lab
import pytest
from bc_helpers import run_client
from br_compare import bird_transient, comparable
from needs import skip_or_fail

COMMANDS = [
    "show status",
    "show protocols",
    "show protocols all",
    f"show protocols all {lab.MESH}",
    'show protocols "Mesh*"',
    "show protocols nosuch",
    "show route",
    "show route all",
    f"show route protocol {lab.MESH}",
    f"show route export {lab.MESH}",
    "show route export kernel1",
    "show route for 172.16.2.77",
    "show route 172.16.2.0/24 all",
    "show route 1.2.3.0/24",
    "show route where bgp_path ~ [= * 65002 =]",
    "show route count",
    "show memory",
    "configure check",
    "sh pro",
    "sh ro",
    "sh ro ex kernel1",
]
BGPD_BIRDCL = str(Path(sys.executable).parent / "bgpd-birdcl")


def clients(bird16: Path) -> dict[str, list[str]]:
    return {
        "birdc-1.6.8": [str(bird16 / "birdc")],
        "birdc-2": ["/usr/sbin/birdc"],
        "birdcl-2": ["/usr/sbin/birdcl"],
        "bgpd-birdcl": [BGPD_BIRDCL],
    }


@pytest.mark.parametrize("client", ["birdc-1.6.8", "birdc-2", "birdcl-2", "bgpd-birdcl"])
def test_client_prints_the_same(lab_sides, steady, client):
    argv = clients(lab_sides.bird16)[client]
    if not Path(argv[0]).exists():
        skip_or_fail(f"{argv[0]} is not installed")
    diffs = []
    for cmd in COMMANDS:
        for _ in range(10):  # BIRD's transient Idle of the refused peer: asked again
            theirs = run_client([*argv, "-s", str(lab_sides.bird.sock), *cmd.split()])
            if not bird_transient([theirs.stdout.split("\n")]):
                break
            time.sleep(0.1)
        mine = run_client([*argv, "-s", str(lab_sides.bgpd.sock), *cmd.split()])
        a = (theirs.returncode, comparable(theirs.stdout.split("\n")))
        b = (mine.returncode, comparable(mine.stdout.split("\n")))
        if a != b:
            diffs.append((cmd, a, b))
        assert theirs.stdout.startswith("BIRD 1.6.8 ready.\n"), (cmd, theirs.stderr)
        assert mine.stdout.startswith(f"BIRD {lab.CALICO_VERSION} ready.\n"), (cmd, mine.stderr)
    assert diffs == []


def test_liveness_probe(lab_sides, steady):
    """calico-node's bird-live: ``birdcl -s SOCKET show status`` exits 0 and prints output
    starting with ``BIRD``."""
    r = run_client([BGPD_BIRDCL, "-s", str(lab_sides.bgpd.sock), "show", "status"])
    assert r.returncode == 0 and r.stdout.startswith("BIRD")
    r = run_client(["/usr/sbin/birdcl", "-s", str(lab_sides.bgpd.sock), "show", "status"])
    assert r.returncode == 0 and r.stdout.startswith("BIRD")
