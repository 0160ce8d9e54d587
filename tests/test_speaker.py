"""bgpd speakers talking to each other over real TCP on loopback addresses (no external peers)."""

import asyncio
import itertools
import os
import tempfile

import pytest

from bgpd.config import parse
from bgpd.speaker import Speaker

_ports = itertools.count(20179 + (os.getpid() % 97) * 100)


def _cfg(router_id, asn, address, port, neighbors, networks=(), **top):
    return parse(
        {
            "router_id": router_id,
            "asn": asn,
            "listen": [{"address": address, "port": port}],
            "control_socket": tempfile.mktemp(prefix="bgpd-test-", suffix=".sock"),
            "networks": list(networks),
            "neighbors": neighbors,
            **top,
        }
    )


async def _until(pred, timeout=10.0, step=0.05):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if pred():
            return True
        await asyncio.sleep(step)
    return pred()


def _routes(speaker, family="ipv4"):
    return {
        r["prefix"]: r["paths"] for r in speaker.command("show_routes", family=family)["routes"]
    }


@pytest.fixture
async def speakers():
    started = []

    async def make(cfg):
        s = Speaker(cfg, loop=asyncio.get_running_loop())
        await s.start()
        started.append(s)
        return s

    yield make
    for s in started:
        await s.stop()


async def test_ebgp_session_exchanges_networks(speakers):
    port = next(_ports)
    a = await speakers(
        _cfg(
            "10.0.0.1",
            65001,
            "127.0.0.21",
            port,
            [
                {
                    "address": "127.0.0.22",
                    "asn": 65002,
                    "port": port,
                    "connect_retry": 1,
                    "next_hop_ipv6": "2001:db8::21",
                }
            ],
            networks=["10.1.0.0/24", "2001:db8:1::/48"],
        )
    )
    b = await speakers(
        _cfg(
            "10.0.0.2",
            65002,
            "127.0.0.22",
            port,
            [{"address": "127.0.0.21", "asn": 65001, "port": port, "connect_retry": 1}],
            networks=["10.2.0.0/24"],
        )
    )
    assert await _until(lambda: a.neighbors["127.0.0.22"].session.established)
    assert await _until(lambda: "10.1.0.0/24" in _routes(b) and "10.2.0.0/24" in _routes(a))
    path = _routes(b)["10.1.0.0/24"][0]
    assert path["as_path"] == "65001"
    assert path["next_hop"] == "127.0.0.21"
    assert path["local_pref"] is None
    # IPv6 over an IPv4 session: the configured next hop (lo has no global IPv6 address
    # for bgpd to take, and a v4-mapped one is installable by nobody)
    v6 = _routes(b, "ipv6")["2001:db8:1::/48"][0]
    assert v6["next_hop"] == "2001:db8::21"
    info = b.command("show_neighbors")["neighbors"][0]
    assert info["state"] == "Established"
    assert info["prefixes"]["received"] == 2
    assert info["prefixes"]["advertised"] == 1
    assert "four-octet-as" in info["capabilities"]


async def test_reflector_reflects_between_clients(speakers):
    port = next(_ports)
    rr_addr, c1, c2, c3 = "127.0.0.31", "127.0.0.32", "127.0.0.33", "127.0.0.34"
    client = {"asn": 64512, "port": port, "rr_client": True, "connect_retry": 1, "passive": True}
    rr = await speakers(
        _cfg(
            "10.0.0.31",
            64512,
            rr_addr,
            port,
            [{"address": c, **client} for c in (c1, c2, c3)],
            cluster_id="10.0.0.31",
        )
    )
    clients = []
    for i, addr in enumerate((c1, c2, c3)):
        clients.append(
            await speakers(
                _cfg(
                    f"10.0.0.{40 + i}",
                    64512,
                    addr,
                    port,
                    [{"address": rr_addr, "asn": 64512, "port": port, "connect_retry": 1}],
                    networks=[f"10.{40 + i}.0.0/26"],
                )
            )
        )
    assert await _until(lambda: all(n.session.established for n in rr.neighbors.values()))
    assert await _until(lambda: all(len(_routes(c)) == 3 for c in clients))
    got = _routes(clients[1])["10.40.0.0/26"][0]
    assert got["originator_id"] == "10.0.0.40"
    assert got["cluster_list"] == ["10.0.0.31"]
    assert got["next_hop"] == c1  # unchanged by the reflector
    assert got["local_pref"] == 100
    # Split horizon: the originator does not get its own route back from the reflector.
    own = _routes(clients[0])["10.40.0.0/26"]
    assert [p["source"] for p in own] == ["local"]
    # A withdrawal propagates: stop client 3's session and its route disappears elsewhere.
    clients[2].neighbors[rr_addr].session.stop(message="maintenance")
    assert await _until(lambda: "10.42.0.0/26" not in _routes(clients[0]))
    assert "10.42.0.0/26" not in _routes(rr)


async def test_enhanced_route_refresh_out_frames_the_table_with_borr_and_eorr(speakers):
    """Sending our routes again (``neighbor refresh --direction out``) to a peer with RFC 7313:
    BoRR, the table, EoRR. The BoRR and EoRR went through the UPDATE path, which refused them
    and broke the session."""
    port = next(_ports)
    a = await speakers(
        _cfg(
            "10.0.0.51",
            65051,
            "127.0.0.51",
            port,
            [{"address": "127.0.0.52", "asn": 65052, "port": port, "connect_retry": 1}],
            networks=["10.51.0.0/24"],
        )
    )
    b = await speakers(
        _cfg(
            "10.0.0.52",
            65052,
            "127.0.0.52",
            port,
            [{"address": "127.0.0.51", "asn": 65051, "port": port, "connect_retry": 1}],
        )
    )
    assert await _until(lambda: "10.51.0.0/24" in _routes(b))
    nb = b.neighbors["127.0.0.51"].session
    assert nb.fsm.negotiated.enhanced_route_refresh
    est = nb.fsm.stats.established_at
    before = nb.fsm.stats.messages_in["ROUTE-REFRESH"]
    a.command("neighbor_refresh", address="127.0.0.52", direction="out")
    assert await _until(lambda: nb.fsm.stats.messages_in["ROUTE-REFRESH"] >= before + 2)
    assert nb.established and nb.fsm.stats.established_at == est
    assert "10.51.0.0/24" in _routes(b)


async def test_ipv6_routes_over_an_ipv4_session_without_an_ipv6_next_hop_are_not_sent(speakers):
    """Issue 19: bgpd sent ::ffff:a.b.c.d, which no receiver can install. Without
    next_hop_ipv6 and without a global IPv6 address on the session's interface (lo), the
    IPv6 routes are not sent to an eBGP peer; the IPv4 ones are."""
    port = next(_ports)
    a = await speakers(
        _cfg(
            "10.0.0.61",
            65061,
            "127.0.0.61",
            port,
            [{"address": "127.0.0.62", "asn": 65062, "port": port, "connect_retry": 1}],
            networks=["10.61.0.0/24", "2001:db8:61::/48"],
        )
    )
    b = await speakers(
        _cfg(
            "10.0.0.62",
            65062,
            "127.0.0.62",
            port,
            [{"address": "127.0.0.61", "asn": 65061, "port": port, "connect_retry": 1}],
        )
    )
    assert await _until(lambda: "10.61.0.0/24" in _routes(b))
    await asyncio.sleep(0.3)
    assert _routes(b, "ipv6") == {}
    assert a.rde.peers["127.0.0.62"].next_hops[(2, 1)] is None


async def test_stop_withdraws_nothing_from_the_rib(speakers):
    """A stopping daemon does not withdraw its neighbors' routes from its own RIB one by one
    (they go with the process): the engine is not told of the sessions that end in stop()."""
    port = next(_ports)
    a = await speakers(
        _cfg(
            "10.0.0.1",
            65001,
            "127.0.0.23",
            port,
            [{"address": "127.0.0.24", "asn": 65002, "port": port, "connect_retry": 1}],
        )
    )
    await speakers(  # the neighbor announcing two networks
        _cfg(
            "10.0.0.2",
            65002,
            "127.0.0.24",
            port,
            [{"address": "127.0.0.23", "asn": 65001, "port": port, "connect_retry": 1}],
            networks=["10.2.0.0/24", "10.2.1.0/24"],
        )
    )
    assert await _until(lambda: len(_routes(a)) == 2)
    downs = []
    real = a.rde.peer_down
    a.rde.peer_down = lambda *args, **kw: downs.append(args) or real(*args, **kw)
    await a.stop()
    assert a.closing and downs == []
    assert set(_routes(a)) == {"10.2.0.0/24", "10.2.1.0/24"}
