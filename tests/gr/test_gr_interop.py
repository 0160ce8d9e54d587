"""Graceful restart (RFC 4724) between bgpd and real BIRD 2 and GoBGP speakers, in both
roles, over sessions on 127.0.0.x carrying IPv4 and IPv6 unicast.

* bgpd as the **helper** (receiving speaker): the peer is killed (SIGKILL) and restarted in
  its restarting mode (BIRD ``-R``, ``gobgpd -r``); meanwhile bgpd keeps its routes marked
  stale (``bgpd show routes --json``: ``"stale": true``); after the restart, what the peer
  announces again is fresh, and its End-of-RIB per family sweeps what it did not.
* bgpd as the **restarting speaker**: bgpd is stopped gracefully (SIGTERM, as ``systemctl
  restart``: the restart marker) or killed and started with ``-R``, and started again; the
  peer keeps bgpd's routes meanwhile; bgpd's new OPEN carries the Restart bit (seen in the
  peer's CLI; its first start, a cold start, did not); bgpd defers until the peer's
  End-of-RIB, then sends its routes and End-of-RIB for IPv4 and for IPv6 (seen in BIRD's
  packet trace, in GoBGP's per-family state).
* flushes against a real peer: BIRD back without graceful restart, back without the
  forwarding bit (started without ``-R``), or not back before its restart time.
"""

from __future__ import annotations

import dataclasses
import time

import pytest
from gr_helpers import wait_sync

BGPD_AS = 4200000001
PEER_AS = 65020
GR = {"restart_time": 30, "stale_routes_time": 30, "selection_deferral": 20}
HOLD = {"hold_time": 9, "connect_retry": 1}
NETWORKS = ["10.244.12.0/26", "2001:db8:12::/64"]

KEEP4 = {"prefix": "10.20.1.0/24", "next_hop": "192.0.2.20"}
GONE4 = {"prefix": "10.20.2.0/24", "next_hop": "192.0.2.20"}  # not announced after the restart
KEEP6 = {"prefix": "2001:db8:20::/48", "next_hop": "2001:db8::20"}
GONE6 = {"prefix": "2001:db8:21::/48", "next_hop": "2001:db8::20"}
ALL = [KEEP4, GONE4, KEEP6, GONE6]


def stale_map(d) -> dict[str, list[bool]]:
    """``bgpd show routes --json``: prefix -> the stale marks of its BGP paths."""
    out = d.cli_json("show", "routes")
    routes = out["routes"] if isinstance(out, dict) else out
    return {
        r["prefix"]: [p["stale"] for p in r["paths"]]
        for r in routes
        if any(p.get("source") == "bgp" for p in r["paths"])
    }


def gr_summary(d) -> dict:
    return d.request("show_summary")["graceful_restart"]


def events(d, name: str) -> list[dict]:
    return [e for e in d.log_events() if e.get("event") == name]


def make_bgpd(bgpd, address: str, peer_addr: str, gr=GR, start: bool = True):
    return bgpd(
        asn=BGPD_AS,
        address=address,
        # IPv6 routes over the IPv4 session: our next hop (lo has no global IPv6 address)
        neighbors=[{"address": peer_addr, "asn": PEER_AS, "next_hop_ipv6": "2001:db8::1", **HOLD}],
        networks=NETWORKS,
        extra={"graceful_restart": gr, "connect_retry": 1},
        start=start,
    )


def established_gr_done(d, addr: str) -> bool:
    return (
        d.state(addr) == "Established"
        and not d.request("show_summary")["graceful_restart"]["restarting"]
    )


# --------------------------------------------------------------------------------------
# bgpd as the helper
# --------------------------------------------------------------------------------------


def _helper_sequence(d, peer, restart_peer) -> None:
    """Peer killed: stale; peer restarted without GONE4/GONE6: those swept by End-of-RIB."""
    a = peer.address
    want = {r["prefix"] for r in ALL}
    wait_sync(lambda: set(stale_map(d)) >= want, 20, what="the peer's routes in bgpd")
    wait_sync(lambda: established_gr_done(d, a), 20, what="bgpd's own start-up over")
    assert all(stale_map(d)[p] == [False] for p in want)

    peer.kill()
    wait_sync(lambda: d.state(a) != "Established", 10, what="bgpd sees the peer gone")
    wait_sync(lambda: gr_summary(d)["neighbors"], 5, what="the neighbor restarting")
    s = stale_map(d)
    assert all(s[p] == [True] for p in want), s
    assert gr_summary(d)["neighbors"][a] == {"state": "restarting", "stale_routes": 4}
    assert d.neighbor(a)["graceful_restart"]["state"] == "restarting"
    assert d.request("health")["ready"] is False  # readiness waits for the restart
    time.sleep(2)
    assert all(stale_map(d)[p] == [True] for p in want), "still kept while the peer is away"

    peer.withdraw(GONE4["prefix"])  # only rewrites its config: the peer is not running
    peer.withdraw(GONE6["prefix"])
    restart_peer()
    wait_sync(lambda: not gr_summary(d)["neighbors"], 30, what="the peer's End-of-RIB")
    s = stale_map(d)
    assert s == {KEEP4["prefix"]: [False], KEEP6["prefix"]: [False]}, s
    swept = events(d, "graceful restart: End-of-RIB, stale routes swept")
    assert {e["family"]: e["routes"] for e in swept} == {"ipv4": 1, "ipv6": 1}
    for flush in (
        "graceful restart: timer expired, flushing stale routes",
        "graceful restart: neighbor returned without it, flushing",
        "graceful restart: forwarding state not kept, flushing",
    ):
        assert not events(d, flush), flush
    assert d.request("health")["ready"] is True


def test_bgpd_helper_while_bird_restarts(bird, bgpd, addresses):
    a_bird, a_bgpd = addresses(), addresses()
    b = bird(
        asn=PEER_AS,
        address=a_bird,
        neighbors=[{"address": a_bgpd, "asn": BGPD_AS, "graceful_restart": True, "hold_time": 9}],
        routes=ALL,
    )
    d = make_bgpd(bgpd, a_bgpd, a_bird)

    def restart():
        b.recovery = True  # bird -R: graceful restart recovery, R and F bits
        b.start()

    _helper_sequence(d, b, restart)
    caps = b.show_protocol(a_bgpd)
    assert "Restart recovery" in caps.split("Neighbor capabilities")[0], caps


def test_bgpd_helper_while_gobgp_restarts(gobgp, bgpd, addresses):
    a_gobgp, a_bgpd = addresses(), addresses()
    g = gobgp(
        asn=PEER_AS,
        address=a_gobgp,
        neighbors=[{"address": a_bgpd, "asn": BGPD_AS, "graceful_restart": True, "hold_time": 9}],
        routes=ALL,
    )
    d = make_bgpd(bgpd, a_bgpd, a_gobgp)

    def restart():
        g.restarting = True  # gobgpd -r: the Restart bit
        g.start()

    _helper_sequence(d, g, restart)


# --------------------------------------------------------------------------------------
# bgpd as the restarting speaker
# --------------------------------------------------------------------------------------


def test_bgpd_restarts_bird_helps(bird, bgpd, addresses):
    a_bird, a_bgpd = addresses(), addresses()
    b = bird(
        asn=PEER_AS,
        address=a_bird,
        neighbors=[{"address": a_bgpd, "asn": BGPD_AS, "graceful_restart": True, "hold_time": 9}],
        routes=[KEEP4, KEEP6],
    )
    d = make_bgpd(bgpd, a_bgpd, a_bird)
    b.wait_route("10.244.12.0/26")  # BIRD takes bgpd's IPv4 route
    wait_sync(lambda: established_gr_done(d, a_bird), 20, what="bgpd up")
    wait_sync(lambda: b.log_text().count("Got END-OF-RIB") == 2, 10, what="first EoRs")
    # The first start is a cold start: no Restart bit, nothing deferred.
    assert [e["mode"] for e in d.start_events()] == ["cold"]
    caps = b.show_protocol(a_bgpd).split("Neighbor capabilities")[1]
    assert "Graceful restart" in caps and "Restart recovery" not in caps, caps

    d.stop()  # SIGTERM, as `systemctl restart bgpd`: no NOTIFICATION, the restart marker
    assert d.marker_path.exists()
    wait_sync(lambda: b.state(a_bgpd) != "Established", 10, what="BIRD sees bgpd gone")
    info = b.show_protocol(a_bgpd)
    assert "Neighbor graceful restart active" in info, info
    time.sleep(2)
    assert "10.244.12.0/26" in b.routes(), "BIRD keeps bgpd's route while it restarts"

    d.start()
    assert not d.marker_path.exists(), "consumed by the start"
    last = d.start_events()[-1]
    assert last["mode"] == "restart" and last["reason"].startswith("graceful stop "), last
    wait_sync(lambda: b.state(a_bgpd) == "Established", 20, what="session back")
    wait_sync(lambda: established_gr_done(d, a_bird), 30, what="bgpd's restart over")
    done = events(d, "graceful restart: restart complete")
    assert done[-1]["reason"] == "End-of-RIB from every neighbor", done
    # bgpd's OPEN: Restart bit and forwarding preserved for both families (BIRD's view).
    info = b.show_protocol(a_bgpd)
    neighbor_caps = info.split("Neighbor capabilities")[1]
    assert "Restart recovery" in neighbor_caps, info
    assert "AF preserved: ipv4 ipv6" in neighbor_caps, info
    # End-of-RIB for IPv4 and for IPv6 again, after bgpd's deferral: BIRD ends its helper
    # mode only once every graceful-restart channel (ipv4 and ipv6) got its End-of-RIB.
    wait_sync(lambda: "Neighbor graceful restart done" in b.log_text(), 10, what="BIRD done")
    after = b.log_text().split("Neighbor graceful restart detected")[-1]
    assert after.count("Got END-OF-RIB") == 2, after
    assert "graceful restart active" not in b.show_protocol(a_bgpd)
    assert "10.244.12.0/26" in b.routes(), "BIRD never lost bgpd's route"
    assert "removed" not in after.split("Got OPEN")[0]  # nothing flushed while bgpd was away


def _gobgp_after_last_up(g) -> list[str]:
    lines = g.log_text().splitlines()
    ups = [i for i, line in enumerate(lines) if 'msg="Peer Up"' in line]
    return lines[ups[-1] :]


def _index(lines: list[str], *needles: str) -> int:
    for i, line in enumerate(lines):
        if all(n in line for n in needles):
            return i
    raise AssertionError(f"no line with {needles} in:\n" + "\n".join(lines))


def test_bgpd_restarts_gobgp_helps(gobgp, bgpd, addresses):
    a_gobgp, a_bgpd = addresses(), addresses()
    g = gobgp(
        asn=PEER_AS,
        address=a_gobgp,
        neighbors=[{"address": a_bgpd, "asn": BGPD_AS, "graceful_restart": True, "hold_time": 9}],
        routes=[KEEP4, KEEP6],
    )
    d = make_bgpd(bgpd, a_bgpd, a_gobgp)
    g.wait_route("2001:db8:12::/64")  # GoBGP takes the IPv6 route (not a 127/8 next hop)
    wait_sync(lambda: established_gr_done(d, a_gobgp), 20, what="bgpd up")

    def eor_received() -> list:
        j = g.neighbor_json(a_bgpd)
        return [
            bool(a["mp_graceful_restart"]["state"].get("end_of_rib_received"))
            for a in j["afi_safis"]
        ]

    d.kill()  # no marker: the restart is said with -R (as gobgpd -r, bird -R)
    wait_sync(lambda: g.state(a_bgpd) != "Established", 10, what="GoBGP sees bgpd gone")
    assert eor_received() == [False, False]
    time.sleep(2)
    assert "2001:db8:12::/64" in g.routes("ipv6"), "GoBGP keeps bgpd's route while it restarts"

    d.restarting = True
    d.start()
    assert [(e["mode"], e["reason"]) for e in d.start_events()] == [
        ("cold", "no --graceful-restart, no marker of a graceful stop"),
        ("restart", "requested (--graceful-restart)"),
    ]
    wait_sync(lambda: g.state(a_bgpd) == "Established", 20, what="session back")
    wait_sync(lambda: established_gr_done(d, a_gobgp), 30, what="bgpd's restart over")
    done = events(d, "graceful restart: restart complete")
    assert done[-1]["reason"] == "End-of-RIB from every neighbor", done
    # bgpd's OPEN: Restart bit, forwarding state kept for both families (GoBGP's view).
    text = g.gobgp("neighbor", a_bgpd)
    remote = text.split("Remote:")[1]
    assert "restart time 30 sec, restart flag set" in remote, text
    assert "ipv4-unicast, forward flag set" in remote and "ipv6-unicast, forward flag set" in remote
    wait_sync(lambda: eor_received() == [True, True], 10, what="End-of-RIB for both families")
    assert [a["config"]["family"]["afi"] for a in g.neighbor_json(a_bgpd)["afi_safis"]] == [1, 2]
    # Deferral: bgpd sent nothing before GoBGP's End-of-RIB for both families, then its
    # routes, then End-of-RIB for IPv4 and for IPv6.
    lines = _gobgp_after_last_up(g)
    sent_eor4 = _index(lines, 'msg="sent update"', 'attributes="[]" nlri="[]" withdrawals="[]"')
    sent_eor6 = _index(lines, 'msg="sent update"', "MpUnreach(ipv6-unicast): End-of-Rib")
    first_rx = _index(lines, 'msg="received update"')
    got_eor4 = _index(lines, 'msg="EOR received"', "AddressFamily=ipv4-unicast")
    got_eor6 = _index(lines, 'msg="EOR received"', "AddressFamily=ipv6-unicast")
    assert max(sent_eor4, sent_eor6) < first_rx < min(got_eor4, got_eor6), "\n".join(lines)
    assert "2001:db8:12::/64" in g.routes("ipv6")


# --------------------------------------------------------------------------------------
# Flushes against a real peer
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["without-gr", "without-forwarding", "not-back"])
def test_bird_restart_that_keeps_nothing_flushes(bird, bgpd, addresses, how):
    """BIRD killed, then: back with ``graceful restart off`` (no capability), or back without
    ``-R`` (capability without the forwarding bit), or not back within its ``graceful restart
    time`` (3 s): bgpd drops the stale routes at once (at the OPEN, resp. at the timer),
    without waiting for an End-of-RIB."""
    a_bird, a_bgpd = addresses(), addresses()
    b = bird(
        asn=PEER_AS,
        address=a_bird,
        neighbors=[{"address": a_bgpd, "asn": BGPD_AS, "graceful_restart": True, "hold_time": 9}],
        routes=ALL,
        gr_time=3 if how == "not-back" else None,
    )
    d = make_bgpd(bgpd, a_bgpd, a_bird)
    want = {r["prefix"] for r in ALL}
    wait_sync(lambda: set(stale_map(d)) == want, 20, what="BIRD's routes in bgpd")
    wait_sync(lambda: established_gr_done(d, a_bird), 20, what="bgpd's own start-up over")

    b.kill()
    t0 = time.monotonic()
    wait_sync(lambda: gr_summary(d)["neighbors"], 5, what="the neighbor restarting")
    assert all(v == [True] for v in stale_map(d).values())
    if how == "not-back":
        wait_sync(lambda: not stale_map(d), 10, what="the restart timer's flush")
        elapsed = time.monotonic() - t0
        assert 2.5 < elapsed < 6, elapsed  # BIRD's capability said 3 s
        (e,) = events(d, "graceful restart: timer expired, flushing stale routes")
        assert e["timer"] == "restart" and e["routes"] == 4
        assert not gr_summary(d)["neighbors"]
        return

    b.withdraw(GONE4["prefix"])
    b.withdraw(GONE6["prefix"])
    if how == "without-gr":
        (n,) = b.neighbors.values()
        b.neighbors[n.address] = dataclasses.replace(n, graceful_restart=False)
    b.start()  # never with -R: no forwarding state kept
    wait_sync(lambda: d.state(a_bird) == "Established", 20, what="session back")
    wait_sync(lambda: not gr_summary(d)["neighbors"], 10, what="the flush")
    if how == "without-gr":
        (e,) = events(d, "graceful restart: neighbor returned without it, flushing")
        assert e["routes"] == 4
        assert d.neighbor(a_bird)["graceful_restart"]["peer_capable"] is False
    else:
        (e,) = events(d, "graceful restart: forwarding state not kept, flushing")
        assert e["routes"] == 4 and sorted(e["families"]) == ["ipv4", "ipv6"]
    assert not events(d, "graceful restart: End-of-RIB, stale routes swept")
    # What BIRD announces again comes back fresh; the rest stays gone.
    wait_sync(
        lambda: stale_map(d) == {KEEP4["prefix"]: [False], KEEP6["prefix"]: [False]},
        10,
        what="fresh routes only",
    )
