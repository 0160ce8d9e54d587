"""From a BIRD configuration to bgpd's Config and the BirdExtras beside it."""

from __future__ import annotations

import pytest

from bgpd.bird import Program, load
from bgpd.bird.translate import translate
from bgpd.config import ConfigError


def _tr(goldens, case: str, ipv6: bool = False):
    path = goldens / case / ("bird6.cfg" if ipv6 else "bird.cfg")
    return translate(load(str(path), ipv6=ipv6))


def test_mesh_node(goldens):
    config, x = _tr(goldens, "mesh/ipip-cross-subnet")
    assert (config.router_id, config.asn) == ("10.192.0.2", 64512)
    assert [(n.address, n.asn, n.passive, n.source_address) for n in config.neighbors] == [
        ("10.192.0.3", 64512, True, "10.192.0.2"),
        ("10.192.0.6", 64512, True, "10.192.0.2"),
    ]
    n = config.neighbors[0]
    # BIRD: multihop (64), no TTL security, 240 s hold, keepalive a third, retry 5 s,
    # add paths both ways, extended messages off, IPv4 only
    assert (n.multihop, n.ttl_security, n.hold_time, n.keepalive_time) == (64, None, 240, 80)
    assert n.connect_retry == 5 and n.add_path.mode("ipv4") == "both"
    assert n.families == ("ipv4",) and n.extended_message is False
    assert n.description == "Connection to BGP peer"
    assert config.graceful_restart.restart_time == 120
    assert config.graceful_restart.selection_deferral == 240
    assert config.kernel.protocol == 12 and config.kernel.persist and config.kernel.install
    assert config.multipath == 16
    assert config.host_routes.kernel.prefixes == ("0.0.0.0/0 le 32",)
    assert config.host_routes.connected.interfaces == ("-cali*", "-kube-ipvs*", "*")
    assert [(s.prefix, s.blackhole) for s in config.host_routes.static][:2] == [
        ("10.0.0.0/30", True),
        ("10.1.0.0/24", True),
    ]
    assert [p.name for p in x.protocols] == [
        "static1",
        "kernel1",
        "device1",
        "direct1",
        "Mesh_10_192_0_3",
        "Mesh_10_192_0_6",
    ]
    e = x.neighbor("10.192.0.3")
    assert e.name == "Mesh_10_192_0_3"
    assert isinstance(e.import_filter, Program) and not e.import_filter.export
    assert isinstance(e.export_filter, Program) and e.export_filter.export
    assert (e.connect_delay, e.error_wait, e.gateway, e.preference) == (
        2,
        (5, 30),
        "recursive",
        100,
    )
    assert (
        isinstance(x.kernel_export, Program) and x.kernel_export.name == "calico_kernel_programming"
    )
    assert x.kernel_import is None  # import all
    assert x.kernel_graceful_restart is True
    assert x.preferences == {"kernel": 10, "device": 240, "direct": 240, "static": 200, "bgp": 100}
    assert x.debug["Mesh_10_192_0_3"] == frozenset({"states", "routes", "filters", "events"})


def test_route_reflector(goldens):
    config, x = _tr(goldens, "explicit_peering/route_reflector")
    assert config.cluster_id == "10.0.0.1"
    clients = [n.address for n in config.neighbors if n.rr_client]
    assert clients == ["10.192.0.3", "10.192.0.4"]
    assert x.neighbor("10.192.0.3").rr_cluster_id == "10.0.0.1"


def test_ttl_security(goldens):
    config, _x = _tr(goldens, "ttl_security/explicit_node")
    gtsm = [(n.address, n.ttl_security, n.multihop) for n in config.neighbors if n.ttl_security]
    assert gtsm and all(hops in (1, 2) and mh is None for _a, hops, mh in gtsm)


def test_keep_next_hop_and_local_as(goldens):
    config, _x = _tr(goldens, "explicit_peering/keepnexthop")
    assert any(n.next_hop_self is False for n in config.neighbors)
    config, _x = _tr(goldens, "explicit_peering/local-as")
    locals_ = {n.address: n.local_as for n in config.neighbors}
    assert set(locals_.values()) - {None}
    assert any(n.allow_own_as == 1 for n in config.neighbors)


def test_password_and_restart_time(goldens):
    config, _x = _tr(goldens, "mesh/password/step2")
    assert any(n.password for n in config.neighbors)
    config, x = _tr(goldens, "mesh/restart-time")
    times = {x.neighbors[name].graceful_restart_time for name in x.neighbors}
    assert 10 in times
    # every protocol says 10: the router's time, no neighbor needs its own
    assert config.graceful_restart.restart_time == 10
    assert [n.graceful_restart_time for n in config.neighbors] == [None, None]
    assert not any("graceful restart time" in m for m in x.notes)


def test_each_protocol_advertises_its_own_restart_time(tmp_path):
    """BIRD 1.6 puts each protocol's ``graceful restart time`` in its own OPEN (Calico:
    BGPPeer.maxRestartTime beside the mesh's nodeMeshMaxRestartTime): the most common time
    is the router's, the others are the neighbors' own. No N bit (RFC 8538): BIRD 1.6 does
    not know it."""
    path = tmp_path / "bird.cfg"
    path.write_text(
        "router id 192.0.2.1;\nprotocol device {}\n"
        "template bgp t { local as 65001; graceful restart; }\n"
        "protocol bgp Mesh_a from t { neighbor 192.0.2.2 as 65001; }\n"
        "protocol bgp Mesh_b from t { neighbor 192.0.2.3 as 65001; }\n"
        "protocol bgp Global_tor from t { neighbor 192.0.2.254 as 65000;\n"
        "  graceful restart time 10; }\n"
        "protocol bgp Global_slow from t { neighbor 192.0.2.253 as 65000;\n"
        "  graceful restart time 300; }\n"
    )
    config, x = translate(load(str(path)))
    gr = config.graceful_restart
    assert (gr.restart_time, gr.notification) == (120, False)
    own = {n.address: n.graceful_restart_time for n in config.neighbors}
    assert own == {"192.0.2.2": None, "192.0.2.3": None, "192.0.2.254": 10, "192.0.2.253": 300}
    told = {n.address: n.restart_time(gr) for n in config.neighbors}
    assert told == {"192.0.2.2": 120, "192.0.2.3": 120, "192.0.2.254": 10, "192.0.2.253": 300}
    assert not any("graceful restart time" in m for m in x.notes), x.notes


def test_reachable_by_static_via(goldens):
    config, _x = _tr(goldens, "reachable_by/global_peers")
    via = [s for s in config.host_routes.static if s.via]
    assert via and all(s.prefix.endswith("/32") for s in via)


def test_ignored_interfaces(goldens):
    config, _x = _tr(goldens, "ignored_interfaces")
    assert config.host_routes.connected.interfaces == (
        "-iface-1",
        "-iface-2",
        "-cali*",
        "-kube-ipvs*",
        "*",
    )


def test_two_sessions_to_one_address(goldens):
    config, x = _tr(goldens, "explicit_peering/global")
    assert [(n.address, n.port) for n in config.neighbors] == [
        ("10.192.0.1", 150),
        ("10.192.0.3", 150),
    ]
    assert "Global_10_192_0_1_port_166" in x.skipped
    assert x.neighbors["Global_10_192_0_1_port_166"].address == "10.192.0.1"


def test_ipv6(goldens):
    config, x = _tr(goldens, "explicit_peering/global-ipv6", ipv6=True)
    assert config.router_id == "10.192.0.2"  # bird6 keeps the IPv4 router id
    assert all(n.families == ("ipv6",) for n in config.neighbors)
    assert config.host_routes.kernel.prefixes == ("::/0 le 128",)
    assert config.listen[0].address == "::"
    assert x.family == "ipv6"


def test_no_bgp_gives_a_placeholder_asn(tmp_path):
    path = tmp_path / "bird6.cfg"
    path.write_text("router id 10.0.0.1;\nprotocol device {}\nprotocol kernel { learn; }\n")
    config, x = translate(load(str(path), ipv6=True))
    assert config.neighbors == () and config.listen == ()
    assert any("placeholder" in n for n in x.notes)


def test_no_router_id(tmp_path):
    path = tmp_path / "bird.cfg"
    path.write_text("protocol device {}\n")
    with pytest.raises(ConfigError, match="no router id"):
        translate(load(str(path)))
    config, x = translate(load(str(path)), router_id="192.0.2.1")
    assert config.router_id == "192.0.2.1" and x.notes


def test_listen_and_options(tmp_path):
    path = tmp_path / "bird.cfg"
    path.write_text(
        "router id 192.0.2.1;\nlisten bgp address 192.0.2.1 port 1790;\n"
        "graceful restart wait 30;\nprotocol device {}\n"
        "protocol bgp tor { local as 65001; neighbor 192.0.2.254 port 1791 as 65000;\n"
        "  keepalive time 10; hold time 30; next hop self; disabled; add paths rx;\n"
        '  allow local as; password "x"; graceful restart on; graceful restart time 60;\n'
        "  import limit 100 action warn; preference 120; connect delay time 9; }\n"
        'protocol static { route 10.0.0.0/8 via 192.0.2.254; route 10.1.0.0/16 via "eth0";\n'
        "  route 10.2.0.0/16 unreachable; route 10.3.0.0/16 recursive 1.1.1.1; }\n"
        'protocol direct { interface "eth*"; }\n'
    )
    config, x = translate(load(str(path)))
    assert config.listen[0].address == "192.0.2.1" and config.listen[0].port == 1790
    n = config.neighbors[0]
    assert (n.port, n.keepalive, n.hold_time, n.next_hop_self, n.shutdown) == (
        1791,
        10,
        30,
        True,
        True,
    )
    assert n.add_path.mode("ipv4") == "receive" and n.multihop is None  # eBGP: direct
    assert n.allow_own_as == 10 and n.password == "x"
    assert n.max_prefixes.limit == 100 and n.max_prefixes.action == "warn"
    assert config.graceful_restart.restart_time == 60
    assert config.graceful_restart.selection_deferral == 30
    e = x.neighbor("192.0.2.254")
    assert (e.preference, e.connect_delay, e.gateway) == (120, 9, "direct")
    assert e.export_filter == "none" and e.import_filter is None
    static = {s.prefix: s for s in config.host_routes.static}
    assert static["10.0.0.0/8"].via == "192.0.2.254"
    assert static["10.1.0.0/16"].interface == "eth0"
    assert static["10.2.0.0/16"].unreachable
    assert "10.3.0.0/16" not in static and any("recursive" in m for m in x.notes)
    assert config.host_routes.connected.interfaces == ("eth*",)
    assert config.kernel is None
