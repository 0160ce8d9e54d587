"""bgpd as a route reflector (RFC 4456) for two BIRD clients and one GoBGP client.

A route from one client reaches the others with ORIGINATOR_ID and CLUSTER_LIST set and the
next hop unchanged; a withdrawal propagates; ADD-PATH delivers two equal paths to a BIRD
client configured with ``add paths rx``. Everything is checked through the clients' own CLIs.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.interop

AS = 64512
CLUSTER = "10.255.0.1"


def _rr_client(address: str, **extra) -> dict:
    return {"address": address, "asn": AS, "rr_client": True, "hold_time": 30, **extra}


@pytest.fixture
def topology(bird, gobgp, bgpd, addresses):
    a_rr, a_c1, a_c2, a_c3 = addresses(), addresses(), addresses(), addresses()
    rr = bgpd(
        asn=AS,
        address=a_rr,
        router_id="10.255.0.10",
        neighbors=[
            _rr_client(a_c1),
            _rr_client(a_c2, add_path={"send": True, "receive": False}),
            _rr_client(a_c3),
        ],
        extra={"cluster_id": CLUSTER},
    )
    c1 = bird(
        asn=AS,
        address=a_c1,
        router_id="10.255.0.21",
        neighbors=[{"address": a_rr, "asn": AS}],
        routes=[
            {"prefix": "10.101.0.0/24", "next_hop": "192.0.2.101", "communities": ["64512:101"]},
            {"prefix": "10.200.0.0/24", "next_hop": "192.0.2.21"},
        ],
    )
    c2 = bird(
        asn=AS,
        address=a_c2,
        router_id="10.255.0.22",
        neighbors=[{"address": a_rr, "asn": AS, "add_path": "rx"}],
    )
    c3 = gobgp(
        asn=AS,
        address=a_c3,
        router_id="10.255.0.23",
        neighbors=[{"address": a_rr, "asn": AS}],
        routes=[{"prefix": "10.200.0.0/24", "next_hop": "192.0.2.23"}],
    )
    for addr in (a_c1, a_c2, a_c3):
        rr.wait_state(addr, timeout=30)
    return rr, c1, c2, c3, a_c1


def test_reflection_to_bird_and_gobgp_clients(topology):
    rr, c1, c2, c3, a_c1 = topology
    for client in (c2, c3):
        paths = client.wait_route("10.101.0.0/24", timeout=30)
        p = paths[0]
        assert p["next_hop"] == "192.0.2.101"  # the reflector never changes NEXT_HOP
        assert p["originator_id"] == "10.255.0.21"  # the originating client's router ID
        assert p["cluster_list"] == [CLUSTER]
        assert "64512:101" in p["communities"]
        assert p["as_path"] == []
        assert p["local_pref"] == 100
    # The reflector itself shows the route as received from c1.
    mine = rr.wait_route("10.101.0.0/24")
    assert any(p.get("from") == a_c1 for p in mine)

    # A withdrawal propagates to every client.
    c1.withdraw("10.101.0.0/24")
    c2.wait_no_route("10.101.0.0/24", timeout=30)
    c3.wait_no_route("10.101.0.0/24", timeout=30)


def test_add_path_delivers_both_equal_paths_to_bird(topology):
    rr, c1, c2, c3, _ = topology

    # c1 (BIRD) and c3 (GoBGP) both announce 10.200.0.0/24 with equal attributes; c2
    # negotiated ADD-PATH receive and gets both, each with the originator's next hop.
    def both():
        paths = c2.routes().get("10.200.0.0/24", [])
        return {p["next_hop"] for p in paths} == {"192.0.2.21", "192.0.2.23"}

    c2.wait_route("10.200.0.0/24", timeout=30, predicate=lambda paths: both())
    hops = {p["next_hop"]: p for p in c2.routes()["10.200.0.0/24"]}
    assert hops["192.0.2.21"]["originator_id"] == "10.255.0.21"
    assert hops["192.0.2.23"]["originator_id"] == "10.255.0.23"
    # GoBGP (no ADD-PATH) gets the reflector's best of the two: c1's (lower router ID), next
    # to its own path.
    c3.wait_route(
        "10.200.0.0/24",
        timeout=30,
        predicate=lambda paths: "192.0.2.21" in {p["next_hop"] for p in paths},
    )
