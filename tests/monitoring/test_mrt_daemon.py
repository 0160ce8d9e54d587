"""MRT from a running bgpd, read back by real parsers: Debian's bgpdump and mrtparse.

A real ``bgpd run`` has eBGP sessions with BIRD 2 and FRR, both announcing IPv4 and IPv6
routes (one prefix from both, so the Loc-RIB chooses), and originates a prefix of its own.

* ``bgpd dump table FILE`` (plain and gzip): both readers' RIB entries equal what
  ``bgpd show routes --json`` shows: every neighbor's path under that neighbor's entry, the
  best path under the Loc-RIB's entry (peer 0.0.0.0, our AS), with AS path, origin, next hop,
  LOCAL_PREF, MED, communities and large communities.
* the update log (``mrt.updates``): while routes flow (initial tables, then announcements
  and withdrawals on both peers), every message is logged; the UPDATEs in the file, counted
  per neighbor and direction by both readers, equal FRR's own counters (``show bgp neighbors
  json``: updatesRecv/updatesSent) and bgpd's; replaying the logged announcements and
  withdrawals gives each neighbor's Adj-RIB-In (``show routes --neighbor N --received``) and
  what bgpd advertised to it; the state changes and the final NOTIFICATIONs are there too.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import re
import subprocess
import time
from pathlib import Path

import bgpd_proc
from mon_helpers import show_json, wait_for
from test_bmp_daemon import BGPD_AS, BIRD_AS, FRR_AS, FRR_ROUTES, allow_loopback_next_hops

BIRD_ROUTES = [
    {
        "prefix": "10.71.0.0/24",
        "next_hop": "192.0.2.10",
        "communities": ["65001:1", "65001:2"],
        "large_communities": ["65001:7:8"],
        "med": 3,
    },
    {"prefix": "10.71.1.0/24", "next_hop": "192.0.2.11", "as_path_prepend": [65100, 65101]},
    {"prefix": "10.71.2.0/24", "next_hop": "192.0.2.12", "origin": "incomplete"},
    {"prefix": "10.60.0.0/24", "next_hop": "192.0.2.10", "med": 10},
    {"prefix": "2001:db8:71::/48", "next_hop": "2001:db8::10", "communities": ["65001:6"]},
]


# bgpd's import from BIRD drops one route: it stays in BIRD's Adj-RIB-In (as received) only
REJECT_71_2 = {
    "default": "accept",
    "terms": [{"match": {"prefix": ["10.71.2.0/24"]}, "action": "reject"}],
}


def topology(bird, frr, bgpd, addresses, extra=None, bird_import=None):
    a_bgpd, a_bird, a_frr = addresses(), addresses(), addresses()
    b = bird(
        asn=BIRD_AS,
        address=a_bird,
        neighbors=[{"address": a_bgpd, "asn": BGPD_AS}],
        routes=BIRD_ROUTES,
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
        router_id="10.255.70.1",
        neighbors=[
            {"address": a_bird, "asn": BIRD_AS, **({"import": bird_import} if bird_import else {})},
            {"address": a_frr, "asn": FRR_AS},
        ],
        networks=["10.73.0.0/24"],
        extra=extra or {},
    )
    for a in (a_bird, a_frr):
        d.wait_state(a, timeout=60)
    d.wait_route("10.71.1.0/24", timeout=30)
    d.wait_route("10.62.1.0/24", timeout=30)
    d.wait_route("2001:db8:62::/48", timeout=30)
    d.wait_route("2001:db8:71::/48", timeout=30)
    return d, b, f


def _origin(o: str | None) -> str:
    return {"igp": "IGP", "egp": "EGP", "incomplete": "INCOMPLETE"}.get(o or "", "")


def expected_rib(d, readers) -> list:
    """The RIB entries both readers should show: the Loc-RIB's best paths from ``bgpd show
    routes --json`` (a local route has no next hop: the dump gives it our router ID, or ::
    for IPv6), each neighbor's Adj-RIB-In from ``show routes --neighbor N --received``
    (accepted and filtered routes)."""
    asn = {n["address"]: n["asn"] for n in show_json(d, "show", "neighbors")["neighbors"]}
    rid = show_json(d, "show", "summary")["router_id"]
    entries = []
    for r in show_json(d, "show", "routes")["routes"]:
        for p in r["paths"]:
            if p["best"]:
                if p.get("next_hop") is None and p.get("from") is None:
                    p["next_hop"] = "::" if r["family"] == "ipv6" else rid
                entries.append((r, p, "0.0.0.0", BGPD_AS))
    for addr, peer_as in asn.items():
        for r in show_json(d, "show", "routes", "--neighbor", addr, "--received")["routes"]:
            for p in r["paths"]:
                entries.append((r, p, addr, peer_as))
    rows = []
    for r, p, ip, peer_as in entries:
        row = readers.Route(
            "rib",
            False,
            ip,
            peer_as,
            r["prefix"],
            p.get("path_id"),
            p.get("as_path") or "",
            _origin(p.get("origin")),
            p.get("next_hop") or "",
            p.get("local_pref") or 0,
            p.get("med") or 0,
            tuple(p.get("communities") or ()),
            tuple(p.get("large_communities") or ()),
        )
        rows.append(readers.norm(row))
    return sorted(rows)


def dump(d, path: Path) -> dict:
    res = d.cli("dump", "table", str(path), "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_table_dump_read_by_bgpdump_and_mrtparse(bird, frr, bgpd, addresses, mrt_readers):
    d, b, f = topology(
        bird,
        frr,
        bgpd,
        addresses,
        extra={"policies": {"no-71-2": REJECT_71_2}},
        bird_import="no-71-2",
    )
    wait_for(
        lambda: (
            show_json(d, "show", "neighbors", b.address)["neighbors"][0]["prefixes"]["received"]
            == 5
        ),
        30,
        "BIRD's five routes",
    )
    want = expected_rib(d, mrt_readers)
    prefixes = {r.prefix for r in want}
    # 8 best paths (10.71.2.0/24 was filtered) + every neighbor path, the filtered one too
    assert len(prefixes) == 9 and len(want) == 8 + 9
    assert [r.peer_ip for r in want if r.prefix == "10.71.2.0/24"] == [b.address]
    assert ("10.73.0.0/24" in prefixes) and any(":" in p for p in prefixes)
    for name in ("rib.mrt", "rib.mrt.gz"):
        path = d.workdir / name
        stats = dump(d, path)
        assert stats["file"] == str(path) and stats["prefixes"] == 9
        assert stats["entries"] == len(want)
        if not name.endswith(".gz"):
            assert path.stat().st_size == stats["bytes"]
        assert not list(d.workdir.glob(f"{name}.tmp*"))  # only the complete file is there
        for reader in (mrt_readers.bgpdump, mrt_readers.mrtparse):
            got = sorted(reader(str(path)))
            assert got == want, (reader.__name__, set(got) ^ set(want))
    # the peer index names the Loc-RIB (0.0.0.0, our AS) and both neighbors by identifier
    from mrtparse import Reader

    first = next(iter(Reader(str(d.workdir / "rib.mrt")))).data
    entries = [(p["peer_ip"], p["peer_bgp_id"], int(p["peer_as"])) for p in first["peer_entries"]]
    assert entries[0] == ("0.0.0.0", "10.255.70.1", BGPD_AS)
    assert set(entries[1:]) == {(b.address, b.router_id, BIRD_AS), (f.address, f.router_id, FRR_AS)}
    assert first["view_name"] == "bgpd"
    # a relative name is taken from the CLI's directory; a missing directory is an error
    res = subprocess.run(
        [*bgpd_proc.bgpd_command(), "dump", "table", "rel.mrt", "-s", str(d.socket_path)],
        cwd=d.workdir,
        env=bgpd_proc._env(),
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0 and (d.workdir / "rel.mrt").exists(), res.stderr
    res = d.cli("dump", "table", "/nonexistent-mo/x.mrt")
    assert res.returncode == 1 and "no directory /nonexistent-mo" in res.stderr
    mon = show_json(d, "show", "monitoring")
    assert mon["dumps"]["count"] == 3 and mon["dumps"]["last"]["prefixes"] == 9


# --- the update log -----------------------------------------------------------------------

MSG_TYPES = {1: "open", 2: "update", 3: "notification", 4: "keepalive", 5: "route_refresh"}


def log_counts(path: str) -> collections.Counter:
    """``(neighbor, "in"|"out", message type)`` -> records, read with mrtparse."""
    from mrtparse import Reader

    n: collections.Counter = collections.Counter()
    for e in Reader(path):
        assert not e.err, e.err_msg
        data = e.data
        t, st = next(iter(data["type"])), next(iter(data["subtype"]))
        if t != 17 or st in (0, 5):
            continue
        way = "out" if st in (6, 7, 10, 11) else "in"
        kind = MSG_TYPES[next(iter(data["bgp_message"]["type"]))]
        n[(data["peer_ip"], way, kind)] += 1
    return n


def bgpdump_counts(path: str) -> collections.Counter:
    """``(neighbor, "in"|"out", message type)`` -> records, from ``bgpdump -H`` (its
    multi-line mode prints every record, also UPDATEs without NLRI such as End-of-RIB)."""
    out = subprocess.run(
        ["bgpdump", "-q", "-H", path], capture_output=True, text=True, check=True
    ).stdout
    names = {"Open": "open", "Update": "update", "Notify": "notification"}
    names.update(Keepalive="keepalive", Route_refresh="route_refresh")
    n: collections.Counter = collections.Counter()
    for block in out.split("\n\n"):
        fields = dict(x.split(": ", 1) for x in block.splitlines() if ": " in x)
        kind = fields.get("TYPE", "").split("/")
        if len(kind) != 3 or not kind[0].startswith("BGP4MP"):
            continue
        if "LOCAL" in kind[1]:
            peer, way = fields["TO"], "out"
        else:
            peer, way = fields["FROM"], "in"
        n[(str(ipaddress.ip_address(peer.split(" AS")[0])), way, names[kind[2]])] += 1
    return n


def replay_log(rows, neighbor: str, sent: bool) -> dict:
    """``{prefix: (as_path, next_hop)}`` left by the logged announcements and withdrawals."""
    table: dict = {}
    for r in rows:
        if r.kind not in ("announce", "withdraw") or r.sent != sent or r.peer_ip != neighbor:
            continue
        if r.kind == "announce":
            table[r.prefix] = (r.as_path, r.next_hop)
        else:
            table.pop(r.prefix, None)
    return table


def bird_route_stats(b, neighbor: str) -> dict:
    """BIRD's route change stats of the session's IPv4 channel:
    ``{("import"|"export", "updates"|"withdraws", "received"|"accepted"): n}``. (Its IPv6
    channel does not count what it refuses while decoding: bgpd's v4-mapped IPv6 next hops
    over this IPv4 session, see tests/interop/test_sessions.py.)"""
    out = b.birdc("show", "protocols", "all", b.protocol_name(neighbor))
    stats: collections.Counter = collections.Counter()
    channel = None
    for line in out.splitlines():
        c = re.match(r"\s*Channel (\S+)", line)
        if c:
            channel = c.group(1)
        m = re.match(r"\s*(Import|Export) (updates|withdraws):\s+(.*)", line)
        if m and channel == "ipv4":
            cols = [int(x) if x.isdigit() else 0 for x in m.group(3).split()]
            stats[(m.group(1).lower(), m.group(2), "received")] += cols[0]
            stats[(m.group(1).lower(), m.group(2), "accepted")] += cols[4]
    return stats


def prefix_counts(rows, neighbor: str) -> collections.Counter:
    """Announced and withdrawn IPv4 prefixes in the log, per direction."""
    n: collections.Counter = collections.Counter()
    for r in rows:
        if r.peer_ip == neighbor and r.kind in ("announce", "withdraw") and ":" not in r.prefix:
            n[("out" if r.sent else "in", r.kind)] += 1
    return n


def frr_stats(f, neighbor: str) -> dict:
    data = json.loads(f.vtysh(f"show bgp neighbors {neighbor} json"))
    return data[neighbor]["messageStats"]


def test_update_log_holds_every_update_exchanged(bird, frr, bgpd, addresses, mrt_readers, tmp_path):
    logdir = tmp_path / "mrtlog"  # pytest's: removed with its old runs
    logdir.mkdir()
    pattern = str(logdir / "sub" / "updates.%Y%m%d.%H%M%S.mrt")
    d, b, f = topology(bird, frr, bgpd, addresses, extra={"mrt": {"updates": pattern, "rotate": 0}})
    # routes flow: more announcements and withdrawals on both sides
    b.announce("10.71.9.0/24", "192.0.2.19", med=9)
    b.withdraw("10.71.1.0/24")
    f.announce("10.62.9.0/24", "192.0.2.29")
    f.withdraw("10.62.1.0/24")
    d.wait_route("10.62.9.0/24", timeout=30)
    d.wait_route("10.71.9.0/24", timeout=30)
    d.wait_no_route("10.62.1.0/24", timeout=30)
    d.wait_no_route("10.71.1.0/24", timeout=30)
    wait_for(lambda: "10.71.9.0/24" in f.routes(), 30, "FRR to get BIRD's new route")

    def counters():
        ns = show_json(d, "show", "neighbors")["neighbors"]
        return frr_stats(f, d.address), {n["address"]: n["messages"] for n in ns}

    def quiet():
        """FRR's counters and bgpd's stand still for a second, and the log is on disk."""
        a = counters()
        time.sleep(1.5)
        b2 = counters()
        return a == b2 and show_json(d, "show", "monitoring")["mrt"]["pending"] == 0 and b2

    frr_msgs, neighbors = wait_for(quiet, 30, "the sessions to go quiet", step=0.5)
    mon = show_json(d, "show", "monitoring")["mrt"]
    (path,) = mon["files"]
    assert Path(path).parent == logdir / "sub" and mon["dropped_records"] == 0
    assert mon["errors"] == 0 and mon["internal_errors"] == 0

    counts = log_counts(path)
    by_addr = neighbors
    for addr, msgs in by_addr.items():
        for way in ("in", "out"):
            assert counts[(addr, way, "update")] == msgs[way]["update"] > 0, (addr, way)
            # OPENs and KEEPALIVEs: also those of a second connection during a collision,
            # which bgpd's per-session counters leave out
            for kind in ("open", "keepalive"):
                assert counts[(addr, way, kind)] >= msgs[way][kind] > 0, (addr, kind)
    # FRR counted the same UPDATEs on its side of the session
    assert counts[(f.address, "in", "update")] == frr_msgs["updatesSent"] > 0
    assert counts[(f.address, "out", "update")] == frr_msgs["updatesRecv"] > 0
    assert counts[(f.address, "in", "open")] == frr_msgs["opensSent"]
    # bgpdump reads the same records
    assert bgpdump_counts(path) == counts
    # BIRD counted the same IPv4 route announcements and withdrawals on its side
    bird_stats = bird_route_stats(b, d.address)
    logged = prefix_counts(mrt_readers.mrtparse(path), b.address)
    assert logged[("in", "announce")] == bird_stats[("export", "updates", "accepted")] > 0
    assert logged[("in", "withdraw")] == bird_stats[("export", "withdraws", "accepted")] > 0
    assert logged[("out", "announce")] == bird_stats[("import", "updates", "received")] > 0
    assert logged[("out", "withdraw")] == bird_stats[("import", "withdraws", "received")] > 0

    # the announcements and withdrawals in the log rebuild each Adj-RIB-In and what bgpd sent
    for reader in (mrt_readers.bgpdump, mrt_readers.mrtparse):
        rows = reader(path)
        for addr in by_addr:
            received = {
                r["prefix"]: (r["paths"][0].get("as_path") or "", r["paths"][0].get("next_hop"))
                for r in show_json(d, "show", "routes", "--neighbor", addr, "--received")["routes"]
            }
            assert replay_log(rows, addr, sent=False) == _canon(received), (reader, addr)
            sent = replay_log(rows, addr, sent=True)
            advertised = show_json(d, "show", "routes", "--neighbor", addr, "--advertised")
            assert set(sent) == {_net(r["prefix"]) for r in advertised["routes"]}, (reader, addr)
        states = [r for r in rows if r.kind == "state"]
        for addr in by_addr:
            assert any(r.peer_ip == addr and r.prefix.endswith("->6") for r in states), states

    # stopping bgpd: the Cease NOTIFICATIONs and the state changes to Idle end the file
    d.stop()
    counts = log_counts(path)
    for addr in by_addr:
        assert counts[(addr, "out", "notification")] == 1, counts
    tail = [r for r in mrt_readers.mrtparse(path) if r.kind == "state"][-2:]
    assert {r.peer_ip for r in tail} == set(by_addr) and all(r.prefix == "6->1" for r in tail)


def _net(text: str) -> str:
    return str(ipaddress.ip_network(text, strict=False))


def _canon(table: dict) -> dict:
    return {
        _net(p): (a, str(ipaddress.ip_address(nh)) if nh else "") for p, (a, nh) in table.items()
    }
