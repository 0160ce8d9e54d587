"""Graceful restart keeps forwarding: a ping every 10 ms across two routers whose routes come
from BGP loses no packet while one router's speaker is killed (SIGKILL) and restarted.

Topology (gr_helpers.Topology): H1 - R1 - R2 - H2 in four namespaces. R1 runs bgpd, R2 runs
bgpd or BIRD; each learns the other's host network over BGP and installs it in its kernel
(bgpd ``kernel: {install: true, persist: true}``, BIRD ``protocol kernel { persist; graceful
restart; }``), graceful restart on both sides. Killed, a speaker's kernel routes stay; the
survivor keeps the killed one's routes as stale (still installed); the restarted one adopts
its routes, which makes its start a restart (bgpd: no marker after ``kill -9``, no ``-R``;
BIRD: ``-R``), defers until the survivor's End-of-RIB, re-announces, and nothing is
removed. The first starts are cold starts.
"""

from __future__ import annotations

import time

import pytest
from gr_helpers import GR, Pinger, RouteMonitor, Topology, wait_sync

R1_NET, R2_NET = "10.1.1.0/24", "10.2.2.0/24"
R1_ROUTE = "10.1.1.0/24 via 10.0.12.1 dev r1 proto bgp"
R2_ROUTE = "10.2.2.0/24 via 10.0.12.2 dev r2 proto bgp"
DOWN_SECONDS = 3.0  # how long the killed speaker stays dead


def bgpd_config(host_if: str) -> dict:
    return {
        "kernel": {"install": True, "persist": True},
        "host_routes": {"connected": {"interfaces": [host_if]}},
        "graceful_restart": GR,
        "connect_retry": 1,
        "hold_time": 9,
    }


def start_r1(bgpd, topo):
    return bgpd(
        ns=topo.r1,
        name="R1",
        address="10.0.12.1",
        asn=65001,
        neighbors=[{"address": "10.0.12.2", "asn": 65002}],
        extra=bgpd_config("h1"),
    )


def gr_done(d) -> bool:
    """bgpd's own restart is over and it waits for no neighbor's."""
    s = d.request("show_summary")["graceful_restart"]
    return not s["restarting"] and not s["neighbors"]


def stale_flags(d, prefix: str) -> list[bool]:
    """``bgpd show routes PREFIX --json``: the stale mark of each path."""
    routes = d.cli_json("show", "routes", prefix)
    routes = routes["routes"] if isinstance(routes, dict) else routes
    return [p["stale"] for r in routes for p in r["paths"] if p.get("source") == "bgp"]


def log_events(d, event: str) -> list[dict]:
    return [e for e in d.log_events() if e.get("event") == event]


def route_changes(mon) -> list[str]:
    """Route events ``ip monitor route`` saw for the two host networks."""
    return [line for line in mon.lines() if R1_NET in line or R2_NET in line]


def converge(topo, r1, r2_ready) -> None:
    wait_sync(lambda: topo.r1.routes(R2_NET) == [R2_ROUTE], 20, what="R1 installs R2's network")
    wait_sync(lambda: topo.r2.routes(R1_NET) == [R1_ROUTE], 20, what="R2 installs R1's network")
    wait_sync(lambda: gr_done(r1), 20, what="R1's graceful restart over")
    wait_sync(r2_ready, 20, what="R2 converged")


@pytest.mark.parametrize("killed", ["peer", "self"])
def test_bgpd_pair_forwarding_survives_kill_and_restart(namespaces, bgpd, tmp_path, killed):
    """(a) the peer's bgpd (R2) is killed and restarted; (b) bgpd itself (R1)."""
    topo = Topology.build(namespaces)
    r2 = bgpd(
        ns=topo.r2,
        name="R2",
        address="10.0.12.2",
        asn=65002,
        neighbors=[{"address": "10.0.12.1", "asn": 65001}],
        extra=bgpd_config("h2"),
    )
    r1 = start_r1(bgpd, topo)
    converge(topo, r1, lambda: gr_done(r2))

    victim, survivor = (r2, r1) if killed == "peer" else (r1, r2)
    v_ns, s_ns = (topo.r2, topo.r1) if killed == "peer" else (topo.r1, topo.r2)
    v_net, s_net = (R1_NET, R2_NET) if killed == "peer" else (R2_NET, R1_NET)
    v_route = v_ns.routes(v_net)
    s_route = s_ns.routes(s_net)

    monitors = [RouteMonitor(ns, tmp_path) for ns in (topo.r1, topo.r2)]
    ping = Pinger(topo.h1, "10.2.2.2", tmp_path / "ping.txt")
    try:
        ping.wait_replies(50)
        victim.kill()
        # The survivor keeps the victim's routes, stale, installed; the victim's stay too.
        wait_sync(lambda: stale_flags(survivor, s_net) == [True], 10, what="stale on survivor")
        assert survivor.request("show_summary")["graceful_restart"]["neighbors"]
        time.sleep(DOWN_SECONDS)
        assert v_ns.routes(v_net) == v_route, "the killed speaker's kernel routes must stay"
        assert s_ns.routes(s_net) == s_route, "the survivor keeps the stale routes installed"
        assert stale_flags(survivor, s_net) == [True]

        victim.start()
        wait_sync(lambda: gr_done(victim) and gr_done(survivor), 30, what="both converged")
        wait_sync(lambda: stale_flags(survivor, s_net) == [False], 10, what="stale cleared")
        assert v_ns.routes(v_net) == v_route and s_ns.routes(s_net) == s_route
        time.sleep(1.0)  # the victim's kernel sweep is behind it: still no loss after it
        result = ping.stop()
    finally:
        ping.kill()
        for mon in monitors:
            mon.stop()
    print(f"\nGR data plane, bgpd pair, {killed} killed: {result}")
    assert result.transmitted > (DOWN_SECONDS + 1) / 0.01
    assert result.lost == [], f"lost {len(result.lost)} packets: {result}"
    # The restarted bgpd adopted its route from the kernel; neither kernel saw any change
    # to the routes between the host networks (nothing removed, nothing rewritten).
    adopted = log_events(victim, "kernel: adopted routes from a previous run")
    assert adopted and adopted[-1]["routes"] == 1
    starts = [(e["mode"], e["reason"]) for e in victim.start_events()]
    assert starts == [
        ("cold", "no --graceful-restart, no marker of a graceful stop, no kernel routes of ours"),
        ("restart", "1 kernel routes of a previous run adopted"),
    ]
    for mon in monitors:
        assert route_changes(mon) == [], f"routes changed in {mon.ns.name}"


def test_bgpd_pair_both_killed_and_restarted_together(namespaces, bgpd, tmp_path):
    """Both speakers killed and restarted at once (a node pair rebooting its daemons): each
    comes back restarting (R bit) and, not waiting for the other (RFC 4724 §4.1: the other
    waits for ours), sends its routes at once; the adopted kernel routes must stay until the
    other's routes and End-of-RIB have come (nothing removed, nothing lost)."""
    topo = Topology.build(namespaces)
    r2 = bgpd(
        ns=topo.r2,
        name="R2",
        address="10.0.12.2",
        asn=65002,
        neighbors=[{"address": "10.0.12.1", "asn": 65001}],
        extra=bgpd_config("h2"),
    )
    r1 = start_r1(bgpd, topo)
    converge(topo, r1, lambda: gr_done(r2))

    monitors = [RouteMonitor(ns, tmp_path) for ns in (topo.r1, topo.r2)]
    ping = Pinger(topo.h1, "10.2.2.2", tmp_path / "ping.txt")
    try:
        ping.wait_replies(50)
        r1.kill()
        r2.kill()
        time.sleep(DOWN_SECONDS)
        assert topo.r1.routes(R2_NET) == [R2_ROUTE] and topo.r2.routes(R1_NET) == [R1_ROUTE]
        r2.start()
        r1.start()
        wait_sync(lambda: gr_done(r1) and gr_done(r2), 30, what="both converged")
        for d in (r1, r2):
            wait_sync(
                lambda d=d: log_events(d, "kernel: initial convergence")[1:],
                30,
                what="the kernel sweep after the restart",
            )
        time.sleep(1.0)
        assert topo.r1.routes(R2_NET) == [R2_ROUTE] and topo.r2.routes(R1_NET) == [R1_ROUTE]
        result = ping.stop()
    finally:
        ping.kill()
        for mon in monitors:
            mon.stop()
    for d in (r1, r2):
        assert [e["mode"] for e in d.start_events()] == ["cold", "restart"]
    print(f"\nGR data plane, bgpd pair, both killed: {result}")
    assert result.lost == [], f"lost {len(result.lost)} packets: {result}"
    for mon in monitors:
        assert route_changes(mon) == [], f"routes changed in {mon.ns.name}"


def test_control_without_graceful_restart_the_same_kill_loses_packets(namespaces, bgpd, tmp_path):
    """The probe does see a loss: without graceful restart, killing R2's bgpd makes R1
    withdraw R2's network at once, and the ping fails until R2 is back."""
    topo = Topology.build(namespaces)
    plain = {k: v for k, v in bgpd_config("h2").items() if k != "graceful_restart"}
    r2 = bgpd(
        ns=topo.r2,
        name="R2",
        address="10.0.12.2",
        asn=65002,
        neighbors=[{"address": "10.0.12.1", "asn": 65001}],
        extra=plain,
    )
    r1 = bgpd(
        ns=topo.r1,
        name="R1",
        address="10.0.12.1",
        asn=65001,
        neighbors=[{"address": "10.0.12.2", "asn": 65002}],
        extra={k: v for k, v in bgpd_config("h1").items() if k != "graceful_restart"},
    )
    wait_sync(lambda: topo.r1.routes(R2_NET) == [R2_ROUTE], 20, what="R1 installs R2's network")
    wait_sync(lambda: topo.r2.routes(R1_NET) == [R1_ROUTE], 20, what="R2 installs R1's network")
    ping = Pinger(topo.h1, "10.2.2.2", tmp_path / "ping.txt")
    try:
        ping.wait_replies(50)
        r2.kill()
        wait_sync(lambda: not topo.r1.routes(R2_NET), 10, what="R1 withdraws R2's network")
        time.sleep(1.0)
        r2.start()
        wait_sync(lambda: topo.r1.routes(R2_NET) == [R2_ROUTE], 20, what="back")
        ping.wait_replies(ping.replies() + 20)
        result = ping.stop()
    finally:
        ping.kill()
    print(f"\nGR data plane, control without graceful restart: {result}")
    assert len(result.lost) >= 50, result  # at least the second R1 spent without the route
    assert r1.request("show_summary")["graceful_restart"]["enabled"] is False


R1_ROUTE_BIRD = "10.1.1.0/24 via 10.0.12.1 dev r1 proto bird metric 32"
BIRD_PROTO = "n_10_0_12_1"


@pytest.mark.parametrize("killed", ["peer", "self"])
def test_bird_peer_forwarding_survives_kill_and_restart(
    namespaces, bgpd, ns_bird, tmp_path, killed
):
    """R2 is BIRD (kernel protocol with ``persist; graceful restart;``, BGP ``graceful restart
    on``): (a) BIRD is killed and restarted with ``-R`` (graceful restart recovery); (b) bgpd
    itself is killed and restarted, BIRD the helper."""
    topo = Topology.build(namespaces)
    r2 = ns_bird(
        topo.r2,
        name="R2",
        address="10.0.12.2",
        asn=65002,
        neighbors=[{"address": "10.0.12.1", "asn": 65001}],
        host_interfaces=["h2"],
    )
    r1 = start_r1(bgpd, topo)
    wait_sync(lambda: topo.r1.routes(R2_NET) == [R2_ROUTE], 20, what="R1 installs R2's network")
    wait_sync(
        lambda: topo.r2.routes(R1_NET) == [R1_ROUTE_BIRD], 20, what="BIRD installs R1's network"
    )
    wait_sync(lambda: gr_done(r1), 20, what="R1's graceful restart over")

    monitors = [RouteMonitor(ns, tmp_path) for ns in (topo.r1, topo.r2)]
    ping = Pinger(topo.h1, "10.2.2.2", tmp_path / "ping.txt")
    try:
        ping.wait_replies(50)
        if killed == "peer":
            r2.kill()
            wait_sync(lambda: stale_flags(r1, R2_NET) == [True], 10, what="stale on bgpd")
        else:
            r1.kill()
            wait_sync(lambda: r2.state("10.0.12.1") != "Established", 10, what="BIRD sees it")
        time.sleep(DOWN_SECONDS)
        assert topo.r1.routes(R2_NET) == [R2_ROUTE]
        assert topo.r2.routes(R1_NET) == [R1_ROUTE_BIRD]
        if killed == "peer":
            assert stale_flags(r1, R2_NET) == [True]
            r2.recovery = True
            r2.start()
        else:
            assert "10.1.1.0/24" in r2.routes(), "BIRD (helper) keeps bgpd's routes"
            assert "Neighbor graceful restart active" in r2.show_protocol("10.0.12.1")
            r1.start()
        wait_sync(lambda: r2.state("10.0.12.1") == "Established", 30, what="session back")
        wait_sync(lambda: gr_done(r1), 30, what="bgpd's graceful restart over")
        wait_sync(lambda: stale_flags(r1, R2_NET) == [False], 30, what="stale cleared")
        # The restarting side's OPEN carried the Restart bit (BIRD's -R, or bgpd's).
        local, neighbor = r2.show_protocol("10.0.12.1").split("Neighbor capabilities")
        assert "Restart recovery" in (local if killed == "peer" else neighbor)
        if killed == "self":
            wait_sync(lambda: "Neighbor graceful restart done" in r2.log_text(), 10)
        time.sleep(1.0)
        assert topo.r1.routes(R2_NET) == [R2_ROUTE]
        assert topo.r2.routes(R1_NET) == [R1_ROUTE_BIRD]
        result = ping.stop()
    finally:
        ping.kill()
        for mon in monitors:
            mon.stop()
    print(f"\nGR data plane, bgpd and BIRD, {killed} killed: {result}")
    assert result.transmitted > (DOWN_SECONDS + 1) / 0.01
    assert result.lost == [], f"lost {len(result.lost)} packets: {result}"
    for mon in monitors:
        assert route_changes(mon) == [], f"routes changed in {mon.ns.name}"
    swept = log_events(r1, "graceful restart: End-of-RIB, stale routes swept")
    assert [e["routes"] for e in swept] == ([0] if killed == "peer" else [])
