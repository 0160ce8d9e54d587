"""bgpd, run as a real process (``bgpd run``), against real BIRD, GoBGP and FRR daemons.

Every test runs once per daemon. Each daemon and bgpd bind their own 127.0.0.x; bgpd uses a
2 s ConnectRetry, the peers retry every 3 s (1 s first delay for BIRD).

What the peers accept, and how the tests deal with it (bgpd's next hop toward a peer is its
own session address, and that is a loopback address here):

* An IPv6 route over an IPv4 session needs an IPv6 next hop of ours: an address of the
  session's interface (none here: lo has only ::1) or the neighbor's ``next_hop_ipv6``; bgpd
  never sends a v4-mapped one (``::ffff:127.0.0.x``, installable by nobody). So the eBGP peer
  P1 gets ``next_hop_ipv6: 2001:db8::1`` from bgpd's config.
* BIRD accepts a 127.0.0.x IPv4 next hop; bgpd's own IPv6 prefixes go to it over a second,
  IPv6 session on ``::1`` (BIRD on its own port, passive; bgpd connects from ``::1``): that is
  also how Calico peers for IPv6.
* FRR 8.4 refuses a 127/8 NEXT_HOP with a NOTIFICATION (3/8, "martian") unless
  ``bgp allow-martian-nexthop`` is set, which the tests do through vtysh before bgpd starts.
* GoBGP 3.10 treats a loopback IPv4 NEXT_HOP as withdrawn ("invalid nexthop address") and has
  no knob for it, so bgpd's own IPv4 prefixes cannot reach it from a 127.0.0.x address; what
  reaches GoBGP over IPv4 here are relayed routes with a real next hop (iBGP: unchanged; eBGP:
  ``next_hop_self: false``) and bgpd's IPv6 prefix with ``next_hop_ipv6``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

try:
    from .bgpd_proc import BgpdError, free_port, tcp_sessions
except ImportError:  # pragma: no cover - depends on how pytest imports this dir
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bgpd_proc import BgpdError, free_port, tcp_sessions  # type: ignore[no-redef]

pytestmark = pytest.mark.interop

KINDS = ["bird", "gobgp", "frr"]
BGPD_AS = 4200000001  # four-octet ASNs on both sides
PEER_AS = 4200000002
NETWORKS = ["10.244.12.0/26", "2001:db8:12::/64"]
OUR_NH6 = "2001:db8::1"  # bgpd's IPv6 next hop toward P1 over the IPv4 session
HOLD = {"hold_time": 3, "keepalive": 1}  # the least RFC 4271 allows: the test waits it out

#: Routes the eBGP peer originates (every attribute the harness can set).
P1_ROUTE4 = {
    "prefix": "10.10.0.0/24",
    "next_hop": "192.0.2.10",
    "communities": ["65010:1", "65010:2"],
    "large_communities": ["4200000002:1:2"],
    "med": 5,
    "as_path_prepend": [4200000099],
}
P1_ROUTE6 = {
    "prefix": "2001:db8:10::/48",
    "next_hop": "2001:db8::10",
    "communities": ["65010:6"],
    "med": 6,
}
#: A route the iBGP peer originates (LOCAL_PREF only exists on iBGP).
P2_ROUTE4 = {
    "prefix": "10.11.0.0/24",
    "next_hop": "192.0.2.11",
    "communities": ["65011:1"],
    "large_communities": ["4200000001:11:1"],
    "local_pref": 200,
    "med": 11,
}


def _one(paths: list[dict]) -> dict:
    assert len(paths) == 1, paths
    return paths[0]


def _same_address(value: str | None, expected: str) -> bool:
    """``value`` is ``expected``, also when written as a v4-mapped IPv6 address."""
    if value is None:
        return False
    ip = ipaddress.ip_address(value)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip == ipaddress.ip_address(expected)


def _allow_loopback_next_hops(peer) -> None:
    """FRR: accept 127/8 next hops (bgpd's own address on loopback), see the module doc."""
    if peer.kind == "frr":
        peer.vtysh(
            "configure terminal", f"router bgp {peer.asn}", "bgp allow-martian-nexthop", "end"
        )


def _start_again(peer) -> None:
    """Start a killed peer again (GoBGP leaves its API socket behind and then refuses to
    start: "bind: address already in use")."""
    if peer.kind == "gobgp":
        peer.api_socket.unlink(missing_ok=True)
    peer.start()
    _allow_loopback_next_hops(peer)


def _wait(predicate, timeout: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not true after {timeout}s")
        time.sleep(step)


# --------------------------------------------------------------------------------------
# The fixture itself
# --------------------------------------------------------------------------------------


def test_bgpd_process_stop_restart_kill(bgpd, addresses):
    """SIGTERM stops bgpd cleanly (exit 0, control socket removed); it starts again with
    the same config; SIGKILL leaves nothing to talk to."""
    a_peer = addresses()
    d = bgpd(asn=BGPD_AS, neighbors=[{"address": a_peer, "asn": PEER_AS}])
    pid = d.pid
    assert d.request("ping")["pid"] == pid
    assert d.neighbor(a_peer)["state"] in ("Connect", "Active")
    assert d.stop() == 0
    assert not d.running and not d.socket_path.exists()
    assert "bgpd stopped" in d.log_text()
    d.restart()
    assert d.pid != pid and list(d.neighbors()) == [a_peer]
    d.kill()
    assert not d.running
    with pytest.raises(BgpdError):
        d.neighbors()


# --------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------

MODES = ("bgpd_active", "bgpd_passive", "both_active")


@pytest.mark.parametrize("kind", KINDS)
def test_ibgp_and_ebgp_establish_from_either_side(
    kind, peer_factory, bgpd, addresses, require_binary
):
    """Six sessions at once: iBGP and eBGP, each with bgpd active (peer passive), bgpd
    passive (peer active) and both active; each ends as exactly one TCP connection, opened
    by the side that was allowed to open it."""
    require_binary("ss", "iproute2")
    make = peer_factory(kind)
    a_bgpd = addresses()
    cases = []
    for ibgp in (True, False):
        for mode in MODES:
            cases.append((ibgp, mode, addresses()))
    peers = {}
    for ibgp, mode, addr in cases:
        asn = BGPD_AS if ibgp else PEER_AS
        peers[addr] = make(
            asn=asn,
            address=addr,
            neighbors=[{"address": a_bgpd, "asn": BGPD_AS, "passive": mode == "bgpd_active"}],
        )
    d = bgpd(
        asn=BGPD_AS,
        address=a_bgpd,
        neighbors=[
            {
                "address": addr,
                "asn": BGPD_AS if ibgp else PEER_AS,
                "passive": mode == "bgpd_passive",
                "description": f"{'ibgp' if ibgp else 'ebgp'} {mode}",
            }
            for ibgp, mode, addr in cases
        ],
    )
    for _ibgp, _mode, addr in cases:
        d.wait_state(addr, timeout=15)
        assert peers[addr].wait_state(a_bgpd, timeout=10) == "Established"
    time.sleep(1.0)  # a collision loser or a late connection would show up now
    for ibgp, mode, addr in cases:
        n = d.neighbor(addr)
        label = n["description"]
        assert n["state"] == "Established", label
        assert n["messages"]["in"]["notification"] == 0, (label, n["messages"])
        assert n["families"] == ["ipv4", "ipv6"], label
        assert n["local_address"] == a_bgpd
        assert n["asn"] == (BGPD_AS if ibgp else PEER_AS), label
        conns = tcp_sessions(a_bgpd, addr)
        assert len(conns) == 1, (label, conns)
        ours, theirs = conns[0]
        if mode == "bgpd_active":
            assert theirs == f"{addr}:179", (label, conns)  # bgpd opened it
        elif mode == "bgpd_passive":
            assert ours == f"{a_bgpd}:179", (label, conns)  # the peer opened it


@pytest.mark.parametrize("higher", ["bgpd", "peer"])
def test_connection_collision_resolved_to_one_session(higher, frr, bgpd, addresses, require_binary):
    """Both sides connect; the connection opened by the higher BGP identifier survives
    (RFC 4271 §6.8) and the session comes up once.

    To make the connections cross for sure, FRR is frozen (SIGSTOP) right after it starts:
    bgpd connects (the kernel completes the handshake) and waits in OpenSent; when FRR is
    thawed past its 3 s connect timer, it both accepts bgpd's connection and opens its own.
    Only FRR does that: BIRD and GoBGP do not open a connection while an incoming one is
    pending, so with them "both active" never collides (see the test above).

    FRR 8.4 sometimes drops the connection it agreed to keep right after Established (its
    log: "peer transfer", "Deleting stub connection", "No AFI/SAFI activated for peer"):
    bgpd then sees "connection closed by peer" and both sides reconnect. That is tolerated;
    what bgpd must never do is lose the kept session by its own doing (sending a
    NOTIFICATION on it, or a KEEPALIVE on the loser that makes the peer keep the other one:
    "received NOTIFICATION Cease: Connection Collision Resolution").
    """
    require_binary("ss", "iproute2")
    a_frr, a_bgpd = addresses(), addresses()
    rid_frr, rid_bgpd = ("10.0.0.1", "10.0.0.2") if higher == "bgpd" else ("10.0.0.2", "10.0.0.1")
    f = frr(
        asn=PEER_AS,
        address=a_frr,
        router_id=rid_frr,
        neighbors=[{"address": a_bgpd, "asn": BGPD_AS}],
    )
    os.kill(f.pid, signal.SIGSTOP)
    try:
        d = bgpd(
            asn=BGPD_AS,
            address=a_bgpd,
            router_id=rid_bgpd,
            neighbors=[{"address": a_frr, "asn": PEER_AS}],
        )
        d.wait_state(a_frr, "OpenSent", timeout=5)
        time.sleep(3.5)
    finally:
        os.kill(f.pid, signal.SIGCONT)
    d.wait_neighbor(a_frr, lambda n: n["state"] == "Established" and n["uptime"] > 1.5, timeout=15)
    assert f.state(a_bgpd) == "Established"
    collisions = [e for e in d.log_events() if e.get("event") == "connection collision"]
    assert collisions, d.log_tail()
    keep = "keep_outbound" if higher == "bgpd" else "keep_inbound"
    assert {e["keep"] for e in collisions} == {keep}
    conns = tcp_sessions(a_bgpd, a_frr)
    assert len(conns) == 1, conns
    ours, theirs = conns[0]
    # bgpd never ended a session it had reported up, and never lost one to the collision.
    # Once FRR dropped the kept connection, both sides race again: FRR may then close one
    # of bgpd's connections in OpenConfirm with its own collision Cease (seen once in eight
    # full runs); that is the new race resolving, not a session bgpd lost.
    reconnected = False
    for e in d.log_events():
        if e.get("event") == "session down":
            assert "notification_sent" not in e, d.log_tail()
            if e["reason"] == "connection closed by peer in Established":
                reconnected = True
                continue
            race = "received NOTIFICATION Cease: Connection Collision Resolution"
            assert reconnected and e["reason"].startswith(race), d.log_tail()
    if not reconnected:  # FRR dropping the kept connection (tolerated) starts a new race
        if higher == "bgpd":
            assert theirs == f"{a_frr}:179"  # bgpd's connection was kept
        else:
            assert ours == f"{a_bgpd}:179"  # FRR's connection was kept


# --------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_routes_cross_both_ways_with_attributes(kind, peer_factory, bgpd, addresses):
    """bgpd (AS 4200000001) between an eBGP peer P1 (AS 4200000002) and an iBGP peer P2.

    Checked through bgpd's ``show routes --json`` (the real CLI) and each peer's own CLI:
    what bgpd learns (AS path, next hop, communities, large communities, MED, LOCAL_PREF),
    what it relays (eBGP -> iBGP: unchanged; iBGP -> eBGP: our AS prepended) and its own
    ``networks``, for IPv4 and IPv6. See the module doc for each daemon's next-hop rules.
    """
    make = peer_factory(kind)
    a_bgpd, a_p1, a_p2 = addresses(), addresses(), addresses()
    p1 = make(
        asn=PEER_AS,
        address=a_p1,
        neighbors=[{"address": a_bgpd, "asn": BGPD_AS}],
        routes=[P1_ROUTE4, P1_ROUTE6],
    )
    p2 = make(
        asn=BGPD_AS,
        address=a_p2,
        neighbors=[{"address": a_bgpd, "asn": BGPD_AS}],
        routes=[P2_ROUTE4],
    )
    for p in (p1, p2):
        _allow_loopback_next_hops(p)
    neighbors = [
        # GoBGP drops a loopback NEXT_HOP: relay with the original next hop instead.
        {
            "address": a_p1,
            "asn": PEER_AS,
            **({"next_hop_self": False} if kind == "gobgp" else {}),
            **({"next_hop_ipv6": OUR_NH6} if kind != "bird" else {}),
        },
        {"address": a_p2, "asn": BGPD_AS},
    ]
    p3 = None
    if kind == "bird":
        # BIRD wants a real IPv6 next hop: bgpd's own IPv6 prefix goes over an IPv6 session.
        port = free_port("::1")
        p3 = make(
            asn=4200000003,
            address="::1",
            port=port,
            router_id="10.255.0.3",
            neighbors=[{"address": "::1", "asn": BGPD_AS, "passive": True, "families": ["ipv6"]}],
            routes=[
                {
                    "prefix": "2001:db8:30::/48",
                    "next_hop": "2001:db8::30",
                    "communities": ["65030:6"],
                }
            ],
        )
        neighbors.append({"address": "::1", "port": port, "asn": 4200000003, "families": ["ipv6"]})
    d = bgpd(asn=BGPD_AS, address=a_bgpd, neighbors=neighbors, networks=NETWORKS)

    # --- what bgpd learned, read with the real CLI: bgpd show routes --json ---------------
    p = _one(d.wait_route("10.10.0.0/24"))
    assert p["from"] == a_p1 and p["best"]
    assert p["as_path"] == [PEER_AS, 4200000099]
    assert p["next_hop"] == "192.0.2.10"
    assert p["communities"] == ["65010:1", "65010:2"]
    assert p["large_communities"] == ["4200000002:1:2"]
    assert p["med"] == 5 and p["origin"] == "igp"
    p = _one(d.wait_route("2001:db8:10::/48"))
    assert p["from"] == a_p1 and p["as_path"] == [PEER_AS]
    assert p["next_hop"] == "2001:db8::10" and p["communities"] == ["65010:6"] and p["med"] == 6
    p = _one(d.wait_route("10.11.0.0/24"))
    assert p["from"] == a_p2 and p["as_path"] == [] and p["local_pref"] == 200
    assert p["next_hop"] == "192.0.2.11" and p["med"] == 11
    assert p["communities"] == ["65011:1"] and p["large_communities"] == ["4200000001:11:1"]

    cli = {r["prefix"]: r for r in d.cli_json("show", "routes")["routes"]}
    api = {r["prefix"]: r for r in d.raw_routes()}
    assert set(cli) == set(api)
    assert {"10.10.0.0/24", "10.11.0.0/24", "2001:db8:10::/48", *NETWORKS} <= set(cli)
    (path,) = cli["10.10.0.0/24"]["paths"]
    assert path["as_path"] == f"{PEER_AS} 4200000099" and path["next_hop"] == "192.0.2.10"
    assert path["communities"] == ["65010:1", "65010:2"] and path["med"] == 5
    for net in NETWORKS:
        (path,) = cli[net]["paths"]
        assert path["source"] == "local" and path["best"] and path["as_path"] == ""

    # --- what the eBGP peer P1 sees (its own CLI) ----------------------------------------
    p = _one(p1.wait_route("10.11.0.0/24"))  # iBGP -> eBGP: our AS prepended
    assert p["from"] == a_bgpd and p["as_path"] == [BGPD_AS]
    assert p["communities"] == ["65011:1"] and p["large_communities"] == ["4200000001:11:1"]
    if kind == "gobgp":
        assert p["next_hop"] == "192.0.2.11"  # next_hop_self: false
    else:
        assert p["next_hop"] == a_bgpd
    if kind != "gobgp":
        p = _one(p1.wait_route("10.244.12.0/26"))
        assert p["as_path"] == [BGPD_AS] and p["next_hop"] == a_bgpd and p["origin"] == "igp"
        assert p["med"] in (None, 0)
    if kind != "bird":
        p = _one(p1.wait_route("2001:db8:12::/64"))
        assert p["as_path"] == [BGPD_AS] and p["origin"] == "igp"
        assert p["next_hop"] == OUR_NH6, p  # next_hop_ipv6 (no v4-mapped next hop)

    # --- what the iBGP peer P2 sees: P1's routes relayed unchanged -----------------------
    p = _one(p2.wait_route("10.10.0.0/24"))
    assert p["from"] == a_bgpd
    assert p["as_path"] == [PEER_AS, 4200000099]
    assert p["next_hop"] == "192.0.2.10"
    assert p["communities"] == ["65010:1", "65010:2"]
    assert p["large_communities"] == ["4200000002:1:2"]
    assert p["med"] == 5 and p["local_pref"] == 100 and p["origin"] == "igp"
    p = _one(p2.wait_route("2001:db8:10::/48"))  # a real IPv6 next hop: every peer takes it
    assert p["next_hop"] == "2001:db8::10" and p["as_path"] == [PEER_AS]
    assert p["communities"] == ["65010:6"] and p["med"] == 6
    if kind != "gobgp":
        p = _one(p2.wait_route("10.244.12.0/26"))
        assert p["as_path"] == [] and p["next_hop"] == a_bgpd and p["local_pref"] == 100
    else:
        adv = d.raw_routes("ipv4", neighbor=a_p2, advertised=True)
        assert "10.244.12.0/26" in {r["prefix"] for r in adv}  # sent; GoBGP drops it

    # --- IPv6 over an IPv6 session (BIRD) ----------------------------------------------
    if p3 is not None:
        p = _one(p3.wait_route("2001:db8:12::/64"))
        assert p["as_path"] == [BGPD_AS] and p["next_hop"] == "::1" and p["origin"] == "igp"
        p = _one(d.wait_route("2001:db8:30::/48"))
        assert p["from"] == "::1" and p["as_path"] == [4200000003]
        assert p["next_hop"] == "2001:db8::30" and p["communities"] == ["65030:6"]

    # --- withdrawals cross too ---------------------------------------------------------
    p1.withdraw("10.10.0.0/24")
    d.wait_no_route("10.10.0.0/24")
    p2.wait_no_route("10.10.0.0/24")

    # --- the control socket through the real CLI: bgpd show neighbors --json -------------
    shown = d.cli_json("show", "neighbors")["neighbors"]
    by_addr = {n["address"]: n for n in shown}
    n = by_addr[a_p1]
    documented = {
        "address", "asn", "state", "router_id", "local_address", "uptime", "since",
        "hold_time", "keepalive", "capabilities", "families", "last_error", "messages",
        "prefixes", "description", "dynamic_from",
    }  # fmt: skip
    assert documented <= set(n), documented - set(n)
    assert n["state"] == "Established" and n["asn"] == PEER_AS
    assert n["router_id"] == p1.router_id and n["local_address"] == a_bgpd
    assert isinstance(n["uptime"], float) and n["uptime"] > 0
    assert n["hold_time"] == 90 and n["keepalive"] == 30
    assert {"multiprotocol", "four-octet-as", "route-refresh"} <= set(n["capabilities"])
    assert n["families"] == ["ipv4", "ipv6"]
    assert n["prefixes"]["received"] == 1  # 2001:db8:10::/48 (10.10.0.0/24 was withdrawn)
    assert n["prefixes"]["accepted"] == 1
    assert n["prefixes"]["advertised"] >= 2
    assert n["messages"]["in"]["update"] >= 1 and n["messages"]["out"]["open"] == 1
    one = d.cli_json("show", "neighbors", a_p2)["neighbors"]
    assert [x["address"] for x in one] == [a_p2] and one[0]["state"] == "Established"


# --------------------------------------------------------------------------------------
# Errors: a wrong AS, a dead peer
# --------------------------------------------------------------------------------------


def _got_bad_peer_as(peer, bgpd_address: str) -> bool:
    """Whether ``peer`` received bgpd's NOTIFICATION 2/2, as the daemon itself tells."""
    if peer.kind == "bird":
        return "Received: Bad peer AS" in peer.log_text()
    if peer.kind == "frr":
        return bool(
            re.search(
                r"received from neighbor \S+ 2/2 \(OPEN Message Error/Bad Peer AS\)",
                peer.log_text(),
            )
        )
    # GoBGP logs no code for a NOTIFICATION in OpenConfirm ("invalid-msg"): count them.
    info = json.loads(peer.gobgp("neighbor", bgpd_address, "-j"))
    return info["state"]["messages"]["received"].get("notification", 0) >= 1


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_peer_as_gets_open_error_others_untouched(kind, peer_factory, bgpd, addresses):
    make = peer_factory(kind)
    a_bgpd, a_good, a_bad = addresses(), addresses(), addresses()
    good = make(asn=PEER_AS, address=a_good, neighbors=[{"address": a_bgpd, "asn": BGPD_AS}])
    _allow_loopback_next_hops(good)
    bad = make(asn=65098, address=a_bad, neighbors=[{"address": a_bgpd, "asn": BGPD_AS}])
    d = bgpd(
        asn=BGPD_AS,
        address=a_bgpd,
        neighbors=[{"address": a_good, "asn": PEER_AS}, {"address": a_bad, "asn": 65099}],
        networks=["10.244.12.0/26"],
    )
    n0 = d.wait_state(a_good)
    t0 = time.monotonic()

    n = d.wait_neighbor(a_bad, lambda n: "Bad Peer AS" in (n["last_error"] or ""), timeout=15)
    assert n["state"] != "Established"
    assert "65098" in n["last_error"] and "65099" in n["last_error"], n["last_error"]
    downs = [
        e for e in d.log_events() if e.get("event") == "session down" and e.get("peer") == a_bad
    ]
    assert downs, d.log_tail()
    assert downs[0]["level"] == "warning"
    assert downs[0]["notification_sent"] == "2/2 OPEN Message Error: Bad Peer AS"
    assert "peer AS 65098, expected 65099" in downs[0]["reason"]
    _wait(lambda: _got_bad_peer_as(bad, a_bgpd), 10, f"{kind} got the 2/2")
    assert bad.state(a_bgpd) != "Established"

    # Let the bad session fail a few more times, then check the good one was never touched.
    time.sleep(2.0)
    g = d.neighbor(a_good)
    elapsed = time.monotonic() - t0
    assert g["state"] == "Established"
    assert g["uptime"] >= n0["uptime"] + elapsed - 0.5, (n0["uptime"], g["uptime"], elapsed)
    assert g["messages"]["in"]["notification"] == 0
    assert g["messages"]["out"]["notification"] == 0
    assert g["messages"]["in"]["open"] == 1 and g["messages"]["out"]["open"] == 1
    assert good.state(a_bgpd) == "Established"
    assert not [
        e for e in d.log_events() if e.get("event") == "session down" and e.get("peer") == a_good
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_hold_timer_expires_on_dead_peer_then_reconnects(kind, peer_factory, bgpd, addresses):
    """Hold time 3, keepalive 1 on both sides.

    A peer killed with SIGKILL does not make bgpd wait for its hold timer: the kernel closes
    the dead process's sockets (FIN). A peer that stops sending without closing anything (a
    hung daemon, a dead host) is what the hold timer is for, so the peer is frozen with
    SIGSTOP until bgpd gives up on it (Hold Timer Expired, 4/0), then killed with SIGKILL and
    started again: bgpd reconnects on its own.
    """
    make = peer_factory(kind)
    a_bgpd, a_peer = addresses(), addresses()
    peer = make(
        asn=PEER_AS, address=a_peer, neighbors=[{"address": a_bgpd, "asn": BGPD_AS, "hold_time": 3}]
    )
    d = bgpd(asn=BGPD_AS, address=a_bgpd, neighbors=[{"address": a_peer, "asn": PEER_AS, **HOLD}])
    n = d.wait_state(a_peer)
    assert n["hold_time"] == 3 and n["keepalive"] == 1

    os.kill(peer.pid, signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        n = d.wait_neighbor(a_peer, lambda n: n["state"] != "Established", timeout=8)
        waited = time.monotonic() - frozen
    finally:
        peer.kill()  # SIGKILL works on a stopped process
    assert 1.5 < waited < 4.5, waited  # 3 s after the last KEEPALIVE it got (every 1 s)
    assert n["last_error"] == "Hold Timer Expired", n
    downs = [e for e in d.log_events() if e.get("event") == "session down"]
    assert downs[-1]["notification_sent"] == "4/0 Hold Timer Expired"

    _start_again(peer)
    n = d.wait_state(a_peer, timeout=15)
    assert n["uptime"] < 15
    assert peer.wait_state(a_bgpd, timeout=5) == "Established"


@pytest.mark.parametrize("kind", KINDS)
def test_killed_peer_noticed_at_once_and_reconnects(kind, peer_factory, bgpd, addresses):
    """SIGKILL: the kernel closes the connection, bgpd drops the session and its routes at
    once (no hold timer wait), and reconnects when the peer is back."""
    make = peer_factory(kind)
    a_bgpd, a_peer = addresses(), addresses()
    peer = make(
        asn=PEER_AS,
        address=a_peer,
        neighbors=[{"address": a_bgpd, "asn": BGPD_AS}],
        routes=[P1_ROUTE4],
    )
    d = bgpd(asn=BGPD_AS, address=a_bgpd, neighbors=[{"address": a_peer, "asn": PEER_AS}])
    d.wait_route("10.10.0.0/24")
    peer.kill()
    killed = time.monotonic()
    n = d.wait_neighbor(a_peer, lambda n: n["state"] != "Established", timeout=5)
    assert time.monotonic() - killed < 2.0  # hold time is 90 s: this was not the hold timer
    assert "connection closed by peer" in n["last_error"], n["last_error"]
    d.wait_no_route("10.10.0.0/24", timeout=2)
    _start_again(peer)
    d.wait_state(a_peer, timeout=15)
    d.wait_route("10.10.0.0/24", timeout=5)
