"""Fixtures of the bgpd-bird tests.

``lab`` (session): BIRD 1.6.8 and ``bgpd-bird``, both started with ``-R`` on the same
Calico-shaped configuration, each in three network namespaces of its own (``br*``) with an
identical BIRD 2 peer (br_lab.py). Everything is stopped by PID and every namespace deleted
at teardown, even when a test fails. Needs root, iproute2, BIRD 2 (Debian ``bird2``) and
BIRD 1.6.8 (the ``bird16`` fixture, tools/bird16.sh).

``recovery`` and ``steady``: the replies of both daemons to the same commands, taken while
their graceful-restart recovery runs (the passive GR peer holds it for ``graceful restart
wait``) and once it is over.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for _d in (HERE, HERE.parent / "birdctl"):
    if str(_d) not in sys.path:
        sys.path.insert(0, str(_d))

import br_lab as lab  # noqa: E402
from bc_helpers import query, wait_for  # noqa: E402
from br_compare import bird_transient  # noqa: E402
from needs import skip_or_fail  # noqa: E402


@dataclass
class Lab:
    bird: lab.Side  # BIRD 1.6.8
    bgpd: lab.Side  # bgpd-bird
    bird16: Path

    def sides(self):
        return {"bird": self.bird, "bgpd": self.bgpd}


def _after_recovery(item: pytest.Item) -> bool:
    """The test needs ``steady``: both daemons past their recovery (``graceful restart
    wait`` from their start); test_br_calico_parsers asks for it by a ``moment`` param."""
    cs = getattr(item, "callspec", None)
    return "steady" in item.fixturenames or (cs is not None and cs.params.get("moment") == "steady")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests of this directory that need ``steady`` run last in it: the lab's
    ``graceful restart wait`` (30 s from the daemons' start) then runs out while the other
    tests of the directory run, instead of being waited for (27 s). Their order is
    otherwise kept; nothing they check depends on when they run."""
    here = Path(__file__).resolve().parent
    idx = [i for i, it in enumerate(items) if here in Path(it.path).resolve().parents]
    block = [items[i] for i in idx]
    ordered = [it for it in block if not _after_recovery(it)]
    ordered += [it for it in block if _after_recovery(it)]
    for i, it in zip(idx, ordered, strict=True):
        items[i] = it


def _ready(side: lab.Side) -> bool:
    r = query(side.sock, "show protocols", f"show protocols all {lab.MESH}")
    established = any(lab.MESH in ln and "Established" in ln for ln in r[1])
    routes = any("3 imported" in ln for ln in r[2])
    return established and routes


def _recovering(side: lab.Side) -> bool:
    return any(ln.startswith("0024") for ln in query(side.sock, "show status")[1])


@pytest.fixture(scope="session")
def lab_sides(bird16):
    lab.require_lab()
    tag = f"{os.getpid() % 1000}"
    sides = [lab.Side(f"o{tag}", lab.make_dir("br-o-")), lab.Side(f"g{tag}", lab.make_dir("br-g-"))]
    try:
        for s in sides:
            try:
                s.build()
                s.start_peer()
            except Exception as e:  # noqa: BLE001 - reported as the skip reason
                skip_or_fail(f"cannot build the lab: {e}")
        sides[0].start_bird16(bird16)
        sides[1].start_bgpd()
        the_lab = Lab(sides[0], sides[1], bird16)
        for s in sides:
            wait_for(lambda s=s: _ready(s), 30, f"{s.tag}: the mesh peer up with its routes")
        yield the_lab
    finally:
        for s in sides:
            s.close()
        if os.environ.get("BR_KEEP"):
            print("kept", [str(s.dir) for s in sides])
        else:
            for s in sides:
                lab.remove_dir(s.dir)


def capture(the_lab: Lab, commands: list[str]) -> dict:
    """``{"bird": [greeting, reply...], "bgpd": [...]}`` for ``commands``, one connection
    each, BIRD's first (the commands are sent before the greeting is read; none of them
    changes anything, so BIRD's are sent again while it shows a transient state)."""
    for _ in range(10):
        theirs = query(the_lab.bird.sock, *commands)
        if not bird_transient(theirs):
            break
        time.sleep(0.1)
    return {"bird": theirs, "bgpd": query(the_lab.bgpd.sock, *commands)}


@pytest.fixture(scope="session")
def recovery(lab_sides):
    """Both daemons' replies to READ_ONLY while their recovery runs."""
    for s in lab_sides.sides().values():
        assert _recovering(s), f"{s.tag}: the recovery ended before the capture"
    out = capture(lab_sides, lab.READ_ONLY)
    for s in lab_sides.sides().values():
        assert _recovering(s), f"{s.tag}: the recovery ended during the capture"
    return out


@pytest.fixture(scope="session")
def steady(lab_sides, recovery):
    """Both daemons' replies to READ_ONLY once the recovery is over (``graceful restart
    wait`` ran out: the passive peer never came) and the mesh peer has our routes."""
    deadline = time.monotonic() + lab.GR_WAIT + 20
    for s in lab_sides.sides().values():
        wait_for(lambda s=s: not _recovering(s), max(1.0, deadline - time.monotonic()), "end")

    def exported(s) -> bool:
        r = query(s.sock, f"show protocols all {lab.MESH}")[1]
        return any(re.search(r", [1-9]\d* exported", ln) for ln in r)

    for s in lab_sides.sides().values():
        wait_for(lambda s=s: exported(s), 10, f"{s.tag}: our routes exported to the mesh peer")
    time.sleep(2.5)  # a kernel scan of BIRD's (scan time 2) has seen the installed routes
    return capture(lab_sides, lab.READ_ONLY)


@pytest.fixture(scope="session")
def lab6(bird16):
    """The bird6 lab: bird6 1.6.8 and bgpd-bird6 on BIRD6_CFG (no -R), each with a BIRD 2
    IPv6 peer; both replies to READ_ONLY6 once the mesh peer is up with its routes."""
    lab.require_lab()
    tag = f"{os.getpid() % 1000}"
    sides = [
        lab.Side(f"s{tag}", lab.make_dir("br-s-"), lab.BIRD6_CFG, lab.BIRD2_CONF6, v6=True),
        lab.Side(f"t{tag}", lab.make_dir("br-t-"), lab.BIRD6_CFG, lab.BIRD2_CONF6, v6=True),
    ]
    try:
        for s in sides:
            try:
                s.build()
                s.start_peer()
            except Exception as e:  # noqa: BLE001 - reported as the skip reason
                skip_or_fail(f"cannot build the bird6 lab: {e}")
        sides[0].start_bird16(bird16, restart=False)
        sides[1].start_bgpd(restart=False)

        def ready(s) -> bool:
            r = query(s.sock, "show protocols", f"show protocols all {lab.MESH6}")
            up = any(lab.MESH6 in ln and "Established" in ln for ln in r[1])
            return up and any("2 imported" in ln for ln in r[2])

        for s in sides:
            wait_for(lambda s=s: ready(s), 40, f"{s.tag}: the IPv6 mesh peer up with its routes")
        time.sleep(2.5)  # a kernel scan of BIRD's has seen what it installed
        the_lab = Lab(sides[0], sides[1], bird16)
        yield the_lab, capture(the_lab, lab.READ_ONLY6)
    finally:
        for s in sides:
            s.close()
            lab.remove_dir(s.dir)
