"""The snapshot builder in-process, on a speaker that is not started (no socket, no
kernel): what each command makes of the route table. ``show status`` and ``show
protocols`` never walk it, ``show route PREFIX`` and ``for ADDR`` look one network up, and
only a listing makes every route (bench/bird_ctl.py measures it on a million)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from bgpd.birdctl.engine import BirdCli, Session
from bgpd.kernel import Kernel, KernelSettings
from bgpd.kernel.routes import RTN_BLACKHOLE, HostRoute
from bgpd.speaker import birdstatus
from bgpd.speaker.birdrun import BirdRunSetup, BirdSpeaker, Extras
from bgpd.wire import AttrSet, intern
from bgpd.wire import prefix as pfx
from bgpd.wire.constants import IPV4_UNICAST, ORIGIN_IGP

CFG = """\
router id 192.0.2.1;
protocol device { }
protocol static { route 10.99.0.0/24 blackhole; }
protocol bgp Mesh_192_0_2_2 {
  local as 64512;
  neighbor 192.0.2.2 as 64512;
  import all;
  export all;
}
"""
N = 50_000


@pytest.fixture
def speaker(tmp_path):
    cfg = tmp_path / "bird.cfg"
    cfg.write_text(CFG)
    loop = asyncio.new_event_loop()
    setup = BirdRunSetup(str(cfg), False, Extras(), str(tmp_path / "bird.ctl"))
    sp = BirdSpeaker(setup, loop)
    # the kernel side, not started (no netlink): its static source holds the routes
    sp.kernel = Kernel(sp.rde.rib.loc, KernelSettings())
    src = sp.kernel.host.static
    attrs = intern(AttrSet(origin=ORIGIN_IGP, as_path=()))
    prefixes = []
    for i in range(N):
        net = ipaddress.ip_network(f"10.{i >> 8 & 255}.{i & 255}.0/24")
        p = pfx.from_network(net)
        prefixes.append(p)
        src.routes[IPV4_UNICAST][p] = HostRoute(RTN_BLACKHOLE)
    sp.rde.announce(src, IPV4_UNICAST, prefixes, attrs)
    sp.rde.commit()
    try:
        yield sp
    finally:
        loop.close()


@pytest.fixture
def made(monkeypatch):
    """How many routes the snapshot made (every call of the route maker's function)."""
    count = [0]
    real = birdstatus.ctx_route_maker

    def counting(ctx):
        make = real(ctx)

        def m(*a):
            count[0] += 1
            return make(*a)

        return m

    monkeypatch.setattr(birdstatus, "ctx_route_maker", counting)
    return count


def run(sp, *commands: str) -> list:
    cli = BirdCli(sp.status.snapshot)
    loop = asyncio.new_event_loop()
    try:
        return [loop.run_until_complete(cli.execute(c, Session())) for c in commands]
    finally:
        loop.close()


def test_status_and_protocols_do_not_walk_the_table(speaker, made):
    r = run(speaker, "show status", "show protocols", "show protocols all", "show memory")
    assert r[0][-1] == (13, "Daemon is up and running")
    assert [line for line in r[2] if "Routes:" in line[1]][1] == (
        -1006,
        f"  Routes:         {N} imported, 0 exported, {N} preferred",
    )
    assert made[0] == 0


def test_one_network_is_looked_up(speaker, made):
    r = run(speaker, "show route 10.1.2.0/24", "show route for 10.1.2.77", "show route 1.2.3.0/24")
    assert r[0][0][1].startswith("10.1.2.0/24        blackhole [static1 ")
    assert r[1] == r[0]
    assert r[2] == [(8001, "Network not in table")]
    assert made[0] == 2


def test_a_count_and_a_listing(speaker, made):
    r = run(speaker, "show route count")
    assert r[0] == [(14, f"{N} of {N} routes for {N} networks")]
    assert made[0] == 0  # counted without making them
    r = run(speaker, "show route stats")
    assert r[0][-1] == (14, f"{N} of {N} routes for {N} networks")
    assert made[0] == N
