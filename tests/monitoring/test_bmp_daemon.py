"""BMP from a running bgpd to a real collector, pmacct's pmbmpd.

A real ``bgpd run`` has eBGP sessions with BIRD 2 and FRR, both announcing IPv4 and IPv6
routes (some prefixes from both, so the Loc-RIB chooses), and streams BMP to pmbmpd. The tests
replay pmbmpd's JSON log (peer_up, peer_down, route_monitor update/withdraw, stats) into
tables and compare them with what bgpd says through its CLI: ``bgpd show neighbors --json``
for the peers, ``bgpd show routes --json`` for each neighbor's paths (pre-policy Adj-RIB-In:
no import policy here, so what bgpd holds is what was received) and for the best paths (the
RFC 9069 Loc-RIB). Then a collector that stops reading (SIGSTOP): BGP goes on at the same
pace, the stream is dropped at its bound, and once the collector reads again it gets a new
connection with a full resync that matches bgpd's tables.
"""

from __future__ import annotations

import ipaddress
import json
import signal
import time

import peers
from mon_helpers import show_json, wait_for

BGPD_AS = 64600
BIRD_AS = 65001
FRR_AS = 65002


def _net(text: str) -> str:
    return str(ipaddress.ip_network(text, strict=False))


def bird_routes(n: int = 6, base: int = 0) -> list[dict]:
    out = []
    for i in range(n):
        out.append(
            {
                "prefix": f"10.61.{base + i}.0/24",
                "next_hop": f"192.0.2.{10 + i % 5}",
                "communities": [f"{BIRD_AS}:{i}"],
                "med": i,
            }
        )
    out.append({"prefix": "10.60.0.0/24", "next_hop": "192.0.2.10", "med": 10})
    out.append({"prefix": "2001:db8:61::/48", "next_hop": "2001:db8::10"})
    return out


FRR_ROUTES = [
    {"prefix": "10.62.0.0/24", "next_hop": "192.0.2.20", "large_communities": ["65002:1:2"]},
    {"prefix": "10.62.1.0/24", "next_hop": "192.0.2.21", "med": 7},
    # also announced by BIRD: one path from each, the Loc-RIB picks (shorter AS path: BIRD)
    {"prefix": "10.60.0.0/24", "next_hop": "192.0.2.20", "as_path_prepend": 2},
    {"prefix": "2001:db8:62::/48", "next_hop": "2001:db8::20"},
]


def topology(bird, frr, bgpd, pmbmpd, addresses, *, bmp_extra=None, bird_routes_=None):
    a_bgpd, a_bird, a_frr = addresses(), addresses(), addresses()
    station = {
        "address": pmbmpd.address,
        "port": pmbmpd.port,
        "local_address": a_bgpd,
        "retry": "500ms",
        "retry_max": "1s",
        "stats_interval": "1s",
        **(bmp_extra or {}),
    }
    b = bird(
        asn=BIRD_AS,
        address=a_bird,
        neighbors=[{"address": a_bgpd, "asn": BGPD_AS}],
        routes=bird_routes() if bird_routes_ is None else bird_routes_,
    )
    f = frr(
        asn=FRR_AS,
        address=a_frr,
        neighbors=[{"address": a_bgpd, "asn": BGPD_AS}],
        routes=FRR_ROUTES,
    )
    allow_loopback_next_hops(f)
    d = bgpd(
        asn=BGPD_AS,
        address=a_bgpd,
        router_id="10.255.60.1",
        neighbors=[{"address": a_bird, "asn": BIRD_AS}, {"address": a_frr, "asn": FRR_AS}],
        networks=["10.63.0.0/24"],
        extra={"bmp": [station]},
    )
    for a in (a_bird, a_frr):
        d.wait_state(a, timeout=60)
    return d, b, f


def allow_loopback_next_hops(f) -> None:
    """FRR refuses a 127/8 NEXT_HOP (bgpd's address here) unless told otherwise (see
    tests/interop/test_sessions.py)."""
    f.vtysh("configure terminal", f"router bgp {f.asn}", "bgp allow-martian-nexthop", "end")


# --- bgpd's view ------------------------------------------------------------------------


def _path_row(p: dict, router_id: str, afi: int) -> tuple:
    nh = p.get("next_hop")
    if nh is None and p.get("from") is None:
        # a local route has no next hop: BMP's Loc-RIB shows our router ID (IPv4) or ::
        nh = router_id if afi == 1 else "::"
    return (
        p.get("as_path") or "",
        nh,
        p.get("med"),
        tuple(sorted(p.get("communities") or ())),
        tuple(sorted(p.get("large_communities") or ())),
    )


def bgpd_tables(d) -> dict:
    """``{"loc" | neighbor: {(afi, prefix): row}}`` from ``bgpd show routes --json``."""
    out: dict = {"loc": {}}
    rid = show_json(d, "show", "summary")["router_id"]
    for n in show_json(d, "show", "neighbors")["neighbors"]:
        if n["state"] == "Established":
            out[n["address"]] = {}
    for r in show_json(d, "show", "routes")["routes"]:
        afi = 2 if r["family"] == "ipv6" else 1
        key = (afi, _net(r["prefix"]))
        for p in r["paths"]:
            if p["best"]:
                out["loc"][key] = _path_row(p, rid, afi)
            if p.get("from") in out:
                out[p["from"]][key] = _path_row(p, rid, afi)
    return out


# --- pmbmpd's view ------------------------------------------------------------------------


def _comms(text) -> tuple:
    return tuple(sorted(text.split())) if text else ()


def replay(records: list[dict], port: int | None = None) -> tuple[dict, list, list, list]:
    """pmbmpd's log -> (tables, peer ups, peer downs, stats) of one BMP connection (the
    last one when ``port`` is None)."""
    if port is None:
        inits = [r for r in records if r.get("bmp_msg_type") == "init"]
        port = inits[-1]["bmp_router_port"] if inits else None
    tables: dict = {}
    ups, downs, stats = [], [], []
    for r in records:
        if r.get("bmp_router_port") != port:
            continue
        t = r.get("bmp_msg_type")
        who = "loc" if r.get("is_loc") or r.get("peer_type") == 3 else r.get("peer_ip")
        if t == "peer_up":
            ups.append(r)
            tables[who] = {}
        elif t == "peer_down":
            downs.append(r)
            tables.pop(who, None)
        elif t == "stats":
            stats.append(r)
        elif t == "route_monitor":
            key = (r["afi"], _net(r["ip_prefix"]))
            if r["log_type"] == "update":
                tables.setdefault(who, {})[key] = (
                    r.get("as_path", ""),
                    r.get("bgp_nexthop"),
                    r.get("med"),
                    _comms(r.get("comms")),
                    _comms(r.get("lcomms")),
                )
            elif r["log_type"] == "withdraw":
                tables.setdefault(who, {}).pop(key, None)
    return tables, ups, downs, stats


def monitoring(d) -> dict:
    return show_json(d, "show", "monitoring")


def station(d) -> dict:
    (st,) = monitoring(d)["bmp"]["stations"]
    return st


def wait_same_tables(d, pmbmpd, timeout=30.0, port=None):
    """Until pmbmpd's replayed tables equal bgpd's; returns (want, replay)."""
    last: list = []

    def same():
        want = bgpd_tables(d)
        got = replay(pmbmpd.records(), port)
        last[:] = [want, got]
        return got[0] == want and (want, got)

    try:
        return wait_for(same, timeout, "pmbmpd's tables to match bgpd's", step=0.5)
    except AssertionError:
        want, got = last
        raise AssertionError(f"bgpd: {want}\npmbmpd: {got[0]}\n{pmbmpd.tail()}") from None


# --- the tests ----------------------------------------------------------------------------


def test_pmbmpd_sees_bgpd_peers_and_prefixes(bird, frr, bgpd, pmbmpd, addresses):
    d, b, f = topology(bird, frr, bgpd, pmbmpd, addresses)
    d.wait_route("10.62.1.0/24", timeout=30)
    d.wait_route("2001:db8:62::/48", timeout=30)
    d.wait_route("10.61.5.0/24", timeout=30)
    want, (tables, ups, downs, _stats) = wait_same_tables(d, pmbmpd)

    # the tables: both neighbors' routes, IPv4 and IPv6, and the Loc-RIB with our own route
    assert set(want) == {"loc", b.address, f.address}
    assert len(want[b.address]) == 8 and len(want[f.address]) == 4
    assert (1, "10.63.0.0/24") in tables["loc"]  # `networks`: next hop our router ID
    assert tables["loc"][(1, "10.63.0.0/24")][1] == "10.255.60.1"
    assert tables["loc"][(1, "10.60.0.0/24")][0] == str(BIRD_AS)  # the shorter path won
    assert tables[f.address][(1, "10.60.0.0/24")][0] == f"{FRR_AS} {FRR_AS} {FRR_AS}"
    assert tables[b.address][(1, "10.61.3.0/24")][3] == (f"{BIRD_AS}:3",)
    assert tables[f.address][(1, "10.62.0.0/24")][4] == ("65002:1:2",)

    # the peers: pmbmpd's Peer Ups say what `bgpd show neighbors` says
    neighbors = {n["address"]: n for n in show_json(d, "show", "neighbors")["neighbors"]}
    seen = {u["peer_ip"]: u for u in ups if u.get("peer_type") != 3}
    assert set(seen) == set(neighbors)
    for addr, u in seen.items():
        n = neighbors[addr]
        assert u["peer_asn"] == n["asn"]
        assert u["bgp_id"] == n["router_id"]
        assert u["local_ip"] == n["local_address"] == d.address
        assert u["remote_port"] == 179 or u["local_port"] == 179
    loc = [u for u in ups if u.get("peer_type") == 3]
    assert len(loc) == 1 and loc[0]["peer_asn"] == BGPD_AS
    assert not downs

    # live: a withdrawal and a new route at BIRD reach the collector
    b.withdraw("10.61.0.0/24")
    b.announce("10.61.40.0/24", "192.0.2.14", med=40)
    d.wait_route("10.61.40.0/24", timeout=30)
    d.wait_no_route("10.61.0.0/24", timeout=30)
    want, (tables, *_rest) = wait_same_tables(d, pmbmpd)
    assert (1, "10.61.0.0/24") not in tables[b.address]
    assert tables[b.address][(1, "10.61.40.0/24")][2] == 40

    # Statistics Reports: routes in each Adj-RIB-In and in the Loc-RIB
    def counts():
        _t, _u, _d, stats = replay(pmbmpd.records())
        per = {}
        for s in stats:
            who = "loc" if s.get("is_loc") or s.get("peer_type") == 3 else s["peer_ip"]
            if s.get("counter_type") in (7, 8):
                per[who] = s.get("counter_value")
        return per

    per = wait_for(lambda: (c := counts()) and len(c) == 3 and c, 10, "stats reports")
    assert per[b.address] == len(want[b.address]) and per[f.address] == len(want[f.address])
    assert per["loc"] == len(want["loc"])

    # a session going down is a Peer Down; its routes leave the Loc-RIB
    f.stop()
    d.wait_no_route("10.62.0.0/24", timeout=60)
    want, (tables, ups, downs, _stats) = wait_same_tables(d, pmbmpd)
    assert f.address not in tables
    assert [x["peer_ip"] for x in downs] == [f.address]
    mon = monitoring(d)
    assert mon["bmp"]["internal_errors"] == 0
    assert station(d)["drops"] == 0 and station(d)["connects"] == 1


def test_collector_that_stops_reading_never_delays_bgp(bird, frr, bgpd, pmbmpd, addresses):
    """pmbmpd frozen (SIGSTOP) while BIRD announces many routes: bgpd keeps reflecting them
    to FRR as fast as with the collector reading, drops the BMP stream at its bound; thawed,
    pmbmpd gets a new connection and a full resync equal to bgpd's tables."""
    # the least bound bgpd takes: with pmbmpd's fixed 128 KiB receive buffer and a 16 KiB
    # send buffer, the stalled stream (two route monitoring messages per route) overflows it
    bound = 64 * 1024
    bmp = {"buffer": bound, "sndbuf": "16KiB"}
    d, b, f = topology(bird, frr, bgpd, pmbmpd, addresses, bmp_extra=bmp)
    wait_same_tables(d, pmbmpd)
    wait_for(lambda: station(d)["resyncs"] == 1, 10, "the first resync")

    def reflect(batch: int, base: int) -> float:
        """BIRD announces ``batch`` routes; seconds until FRR holds all of them."""
        routes = [
            {"prefix": f"10.{base + i // 250}.{i % 250}.0/24", "next_hop": "192.0.2.33", "med": i}
            for i in range(batch)
        ]
        before = frr_count(f, d.address)
        t0 = time.monotonic()
        b.originated.update({r["prefix"]: peers.Route.from_value(r) for r in routes})
        b._reconfigure()  # one `birdc configure` for the whole batch
        wait_for(
            lambda: frr_count(f, d.address) >= before + batch, 120, "FRR to hold them", step=0.1
        )
        return time.monotonic() - t0

    reading = reflect(3000, 100)  # the collector reads: the reference
    wait_for(lambda: station(d)["resyncing"] is False, 20, "the stream to catch up")
    pmbmpd.signal(signal.SIGSTOP)
    try:
        stalled = reflect(3000, 120)
        st = wait_for(lambda: (s := station(d))["drops"] >= 1 and s, 20, "a drop")
        assert st["peak_buffer"] <= bound
        # bgpd answers at once while the collector is stuck
        t = time.monotonic()
        show_json(d, "show", "summary")
        assert time.monotonic() - t < 2.0
    finally:
        pmbmpd.signal(signal.SIGCONT)
    print(f"reflect 3000 routes: {reading:.2f} s reading, {stalled:.2f} s stalled; {st}")
    # Not slower than with the collector reading (generous: the machine is shared).
    assert stalled < max(3 * reading, reading + 10), (reading, stalled)
    # The collector reads again: a new connection and a full resync that matches bgpd.
    seen: list = []
    try:
        st = wait_for(
            lambda: (
                (s := station(d))
                and not seen.append(s)
                and s["resyncs"] >= 2
                and not s["resyncing"]
                and s
            ),
            60,
            "a resync",
        )
    except AssertionError:
        raise AssertionError(f"no resync: {seen[-1]}\n{pmbmpd.tail()}") from None
    assert st["state"] == "up" and st["connects"] >= 2
    want, (tables, ups, _downs, _stats) = wait_same_tables(d, pmbmpd, timeout=60)
    assert len(want[b.address]) == 8 + 6000
    assert {u["peer_ip"] for u in ups if u.get("peer_type") != 3} == {b.address, f.address}
    assert monitoring(d)["bmp"]["internal_errors"] == 0


def frr_count(f, neighbor: str) -> int:
    """IPv4 prefixes FRR accepted from ``neighbor`` (its summary's pfxRcd)."""
    data = json.loads(f.vtysh("show bgp ipv4 unicast summary json"))
    return int(data.get("peers", {}).get(neighbor, {}).get("pfxRcd", 0))
