"""The interop harness proven against real daemons talking to each other (no bgpd).

If these fail, interop failures of bgpd mean nothing: fix the harness first.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

try:
    from . import peers
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import peers  # type: ignore[no-redef]

pytestmark = pytest.mark.interop

BIRD_ROUTE = {
    "prefix": "10.10.0.0/24",
    "next_hop": "192.0.2.10",
    "communities": ["65010:1", "65010:2"],
    "large_communities": ["65010:1:2"],
    "med": 5,
    "as_path_prepend": [65099],
}
BIRD_ROUTE6 = {"prefix": "2001:db8:10::/48", "next_hop": "2001:db8::10", "communities": ["65010:6"]}


def _one(paths: list[dict]) -> dict:
    assert len(paths) == 1, paths
    return paths[0]


def test_address_pool_hands_out_unique_free_loopbacks(addresses):
    got = [addresses() for _ in range(5)]
    assert len(set(got)) == len(got)
    for a in got:
        assert a.startswith("127.") and not a.endswith(".1") and a != "127.0.0.1"
        assert peers.tcp_port_free(a, 179)


def test_missing_daemon_skips_unless_required(require_binary, monkeypatch):
    monkeypatch.delenv("BGPD_REQUIRE_PEERS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install bird2 gobgpd frr"):
        require_binary("no-such-bgp-daemon", "bird2")
    monkeypatch.setenv("BGPD_REQUIRE_PEERS", "1")
    with pytest.raises(pytest.fail.Exception, match="no-such-bgp-daemon"):
        require_binary("no-such-bgp-daemon", "bird2")
    assert require_binary("sh", "dash").endswith("/sh")


def test_config_errors_are_reported_not_silent():
    with pytest.raises(TypeError):
        peers.BirdPeer(
            name="x",
            address="127.0.0.250",
            asn=1,
            neighbors=[{"address": "127.0.0.2", "asn": 2, "bogus": 1}],
        )
    with pytest.raises(peers.UnsupportedFeature):
        peers.GobgpPeer(
            name="x",
            address="127.0.0.250",
            asn=1,
            neighbors=[{"address": "127.0.0.2", "asn": 2, "as4": False}],
        )
    with pytest.raises(ValueError):
        peers.BirdPeer(name="x", address="0.0.0.0", asn=1)


def test_bird_gobgp_ebgp(bird, gobgp, addresses):
    a_bird, a_gobgp = addresses(), addresses()
    b = bird(
        asn=65010,
        address=a_bird,
        neighbors=[{"address": a_gobgp, "asn": 65020}],
        routes=[BIRD_ROUTE, BIRD_ROUTE6],
    )
    g = gobgp(
        asn=65020,
        address=a_gobgp,
        neighbors=[{"address": a_bird, "asn": 65010}],
        routes=[
            {
                "prefix": "10.20.0.0/24",
                "next_hop": "192.0.2.20",
                "communities": ["65020:7"],
                "large_communities": ["65020:7:8"],
                "med": 7,
                "as_path_prepend": 2,
            }
        ],
    )
    assert b.wait_state(a_gobgp) == "Established"
    assert g.wait_state(a_bird) == "Established"

    p = _one(g.wait_route("10.10.0.0/24"))
    assert p["next_hop"] == "192.0.2.10"
    assert p["as_path"] == [65010, 65099]
    assert p["communities"] == ["65010:1", "65010:2"]
    assert p["large_communities"] == ["65010:1:2"]
    assert p["med"] == 5 and p["origin"] == "igp" and p["from"] == a_bird

    p6 = _one(g.wait_route("2001:db8:10::/48"))
    assert p6["next_hop"] == "2001:db8::10" and p6["communities"] == ["65010:6"]

    p = _one(b.wait_route("10.20.0.0/24"))
    assert p["next_hop"] == "192.0.2.20"
    assert p["as_path"] == [65020, 65020, 65020]
    assert p["communities"] == ["65020:7"] and p["large_communities"] == ["65020:7:8"]
    assert p["med"] == 7 and p["from"] == a_gobgp

    # Runtime changes both ways.
    g.announce("10.21.0.0/24", "192.0.2.21", origin="egp", communities=["65020:1"])
    assert _one(b.wait_route("10.21.0.0/24"))["origin"] == "egp"
    g.announce("10.21.0.0/24", "192.0.2.22", communities=["65020:99"])  # replaces it
    p = _one(b.wait_route("10.21.0.0/24", predicate=lambda ps: ps[0]["next_hop"] == "192.0.2.22"))
    assert p["communities"] == ["65020:99"] and p["origin"] == "igp"
    g.withdraw("10.21.0.0/24")
    b.wait_no_route("10.21.0.0/24")
    b.withdraw("10.10.0.0/24")
    g.wait_no_route("10.10.0.0/24")
    assert "2001:db8:10::/48" in g.routes("ipv6")

    assert "session established" in b.log_text()
    assert g.log_text()


def test_bird_frr_ebgp(bird, frr, addresses):
    a_bird, a_frr = addresses(), addresses()
    b = bird(
        asn=65010,
        address=a_bird,
        neighbors=[{"address": a_frr, "asn": 65030}],
        routes=[BIRD_ROUTE, BIRD_ROUTE6],
    )
    f = frr(
        asn=65030,
        address=a_frr,
        neighbors=[{"address": a_bird, "asn": 65010}],
        routes=[
            {
                "prefix": "10.30.0.0/24",
                "next_hop": "192.0.2.30",
                "communities": ["65030:1"],
                "large_communities": ["65030:1:2"],
                "med": 30,
                "as_path_prepend": [65097, 65098],
            },
            {
                "prefix": "2001:db8:30::/48",
                "next_hop": "2001:db8::30",
                "large_communities": ["65030:6:6"],
            },
        ],
    )
    assert f.wait_state(a_bird) == "Established"
    assert b.wait_state(a_frr) == "Established"

    p = _one(f.wait_route("10.10.0.0/24"))
    assert p["next_hop"] == "192.0.2.10"
    assert p["as_path"] == [65010, 65099]
    assert p["communities"] == ["65010:1", "65010:2"]
    assert p["large_communities"] == ["65010:1:2"]
    assert p["med"] == 5 and p["from"] == a_bird

    p6 = _one(f.wait_route("2001:db8:10::/48"))
    assert p6["next_hop"] == "2001:db8::10"

    p = _one(b.wait_route("10.30.0.0/24"))
    assert p["next_hop"] == "192.0.2.30"
    assert p["as_path"] == [65030, 65097, 65098]
    assert p["communities"] == ["65030:1"] and p["large_communities"] == ["65030:1:2"]
    assert p["med"] == 30 and p["from"] == a_frr
    p6 = _one(b.wait_route("2001:db8:30::/48"))
    assert p6["next_hop"] == "2001:db8::30" and p6["large_communities"] == ["65030:6:6"]

    f.announce("10.31.0.0/24", "192.0.2.31", communities=["65030:31"])
    p = _one(b.wait_route("10.31.0.0/24"))
    assert p["next_hop"] == "192.0.2.31" and p["communities"] == ["65030:31"]
    f.announce("10.31.0.0/24", "192.0.2.32", med=3)  # replaces it
    p = _one(b.wait_route("10.31.0.0/24", predicate=lambda ps: ps[0]["next_hop"] == "192.0.2.32"))
    assert p["communities"] == [] and p["med"] == 3
    f.withdraw("10.31.0.0/24")
    b.wait_no_route("10.31.0.0/24")
    assert f.log_text()


def test_frr_route_reflector_with_bird_and_gobgp_clients(bird, gobgp, frr, addresses):
    a_rr, a_bird, a_gobgp = addresses(), addresses(), addresses()
    frr(
        asn=65000,
        address=a_rr,
        router_id="10.0.0.1",
        cluster_id="1.1.1.1",
        neighbors=[
            {"address": a_bird, "asn": 65000, "rr_client": True},
            {"address": a_gobgp, "asn": 65000, "rr_client": True},
        ],
    )
    b = bird(
        asn=65000,
        address=a_bird,
        router_id="10.0.0.2",
        neighbors=[{"address": a_rr, "asn": 65000}],
        routes=[{"prefix": "10.40.0.0/24", "next_hop": "192.0.2.40", "local_pref": 200}],
    )
    g = gobgp(
        asn=65000,
        address=a_gobgp,
        router_id="10.0.0.3",
        neighbors=[{"address": a_rr, "asn": 65000}],
        routes=[{"prefix": "10.41.0.0/24", "next_hop": "192.0.2.41", "local_pref": 300}],
    )
    p = _one(g.wait_route("10.40.0.0/24"))
    assert p["local_pref"] == 200 and p["next_hop"] == "192.0.2.40" and p["as_path"] == []
    assert p["originator_id"] == "10.0.0.2" and p["cluster_list"] == ["1.1.1.1"]
    assert p["from"] == a_rr
    p = _one(b.wait_route("10.41.0.0/24"))
    assert p["local_pref"] == 300 and p["originator_id"] == "10.0.0.3"
    assert p["cluster_list"] == ["1.1.1.1"]


def test_session_options_md5_gtsm_hold_gr_addpath_as2(bird, frr, addresses):
    a_bird, a_frr = addresses(), addresses()
    common = {
        "password": "s3cret",
        "ttl_security": True,
        "hold_time": 9,
        "graceful_restart": True,
        "add_path": "both",
    }
    bird(
        asn=65010,
        address=a_bird,
        neighbors=[{"address": a_frr, "asn": 65030, "passive": True, **common}],
    )
    f = frr(asn=65030, address=a_frr, neighbors=[{"address": a_bird, "asn": 65010, **common}])
    f.wait_state(a_bird)
    info = json.loads(f.vtysh(f"show bgp neighbors {a_bird} json"))[a_bird]
    assert info["bgpTimerHoldTimeMsecs"] == 9000
    caps = info["neighborCapabilities"]
    assert caps["4byteAs"] == "advertisedAndReceived"
    assert caps["addPath"]["ipv4Unicast"]["rxAdvertisedAndReceived"]
    assert caps["addPath"]["ipv4Unicast"]["txAdvertisedAndReceived"]
    assert caps["gracefulRestart"] == "advertisedAndReceived"
    assert info["authenticationEnabled"] == 1  # TCP MD5
    assert info["externalBgpNbrMaxHopsAway"] == 1  # GTSM, 1 hop

    # A two-octet-AS BIRD (enable as4 off) still peers with FRR.
    a_bird2 = addresses()
    f2 = frr(asn=65031, address=addresses(), neighbors=[{"address": a_bird2, "asn": 65011}])
    bird(
        asn=65011, address=a_bird2, neighbors=[{"address": f2.address, "asn": 65031, "as4": False}]
    )
    f2.wait_state(a_bird2)
    info = json.loads(f2.vtysh(f"show bgp neighbors {a_bird2} json"))[a_bird2]
    assert info["neighborCapabilities"]["4byteAs"] == "advertised"


def test_stop_and_kill_only_touch_our_pid(bird, addresses):
    b = bird(asn=65010, neighbors=[{"address": addresses(), "asn": 65011}])
    pid = b.pid
    assert pid and os.path.exists(f"/proc/{pid}")
    b.stop()
    assert not b.running and not os.path.exists(f"/proc/{pid}")
    b.start()
    pid = b.pid
    b.kill()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")
    with pytest.raises(peers.PeerError):
        b.routes()
