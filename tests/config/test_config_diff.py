"""bgpd.config.diff: what a reload would change."""

import dataclasses

import pytest

from bgpd.config import SESSION_KEYS, ConfigDiff, Neighbor, diff, parse


def config(neighbors=(), **top):
    data = {"router_id": "192.0.2.10", "asn": 64512, "neighbors": list(neighbors)}
    data.update(top)
    return parse(data)


A = {"address": "192.0.2.1", "asn": 65001}
B = {"address": "192.0.2.2", "asn": 65002}
C = {"address": "2001:db8::3", "asn": 65003}


def test_no_change():
    d = diff(config([A, B]), config([B, A]))
    assert d == ConfigDiff()
    assert not d
    assert not d.networks_changed and not d.reset_all


def test_added_and_removed():
    old, new = config([A, B]), config([B, C])
    d = diff(old, new)
    assert d.added == (new.neighbor("2001:db8::3"),)
    assert d.removed == (old.neighbor("192.0.2.1"),)
    assert d.changed == ()
    assert d


def test_address_spelling_does_not_matter():
    d = diff(config([C]), config([{**C, "address": "2001:DB8:0::3"}]))
    assert not d


@pytest.mark.parametrize(
    "change",
    [
        {"asn": 65009},
        {"port": 1179},
        {"passive": True},
        {"source_address": "192.0.2.10"},
        {"hold_time": 30},
        {"keepalive": 10},
        {"password": "secret"},
        {"ttl_security": 1},
        {"multihop": 2},
        {"families": ["ipv4"]},
        {"add_path": {"send": True}},
        {"route_refresh": False},
        {"extended_message": False},
        {"four_octet_as": False},
        {"local_as": 65100},
    ],
)
def test_session_parameter_change(change):
    d = diff(config([A, B]), config([{**A, **change}, B]))
    (ch,) = d.changed
    assert ch.address == "192.0.2.1"
    assert ch.keys == tuple(change)
    assert ch.session
    assert ch.old.address == ch.new.address
    assert not d.added and not d.removed


@pytest.mark.parametrize(
    "change",
    [
        {"description": "tor-1"},
        {"shutdown": True},
        {"connect_retry": 5},
        {"delay_open": 5},
        {"next_hop_self": True},
    ],
)
def test_non_session_change(change):
    (ch,) = diff(config([A]), config([{**A, **change}])).changed
    assert ch.keys == tuple(change)
    assert not ch.session


def test_rr_client_change_is_not_a_session_change():
    ibgp = {"address": "192.0.2.5", "asn": 64512}
    (ch,) = diff(config([ibgp]), config([{**ibgp, "rr_client": True}])).changed
    assert ch.keys == ("rr_client",)
    assert not ch.session


def test_several_keys_in_schema_order():
    (ch,) = diff(config([A]), config([{**A, "description": "x", "port": 1179}])).changed
    assert ch.keys == ("port", "description")
    assert ch.session


def test_inherited_timer_change_shows_on_neighbors():
    d = diff(config([A, {**B, "hold_time": 60}]), config([A, {**B, "hold_time": 60}], hold_time=30))
    assert d.globals_changed == ("hold_time",)
    (ch,) = d.changed
    assert ch.address == "192.0.2.1" and ch.keys == ("hold_time",) and ch.session


def test_networks():
    old = config(networks=["10.0.0.0/24", "10.0.1.0/24"])
    new = config(networks=["10.0.1.0/24", "2001:db8::/64"])
    d = diff(old, new)
    assert d.networks_changed
    assert d.networks_added == ("2001:db8::/64",)
    assert d.networks_removed == ("10.0.0.0/24",)
    assert d.globals_changed == ()
    assert not diff(old, config(networks=["10.0.1.0/24", "10.0.0.0/24"]))


@pytest.mark.parametrize(
    "change, reset_all",
    [
        ({"router_id": "192.0.2.11"}, True),
        ({"asn": 64513}, True),
        ({"listen": [{"address": "192.0.2.10"}]}, False),
        ({"control_socket": "/tmp/x.sock"}, False),
        ({"cluster_id": "10.0.0.1"}, False),
    ],
)
def test_global_changes(change, reset_all):
    d = diff(config([A]), config([A], **change))
    assert d.globals_changed == tuple(change)
    assert d.reset_all is reset_all
    assert d


def test_session_keys_match_the_schema():
    names = {f.name for f in dataclasses.fields(Neighbor)}
    assert names >= SESSION_KEYS
    assert {
        "description",
        "shutdown",
        "connect_retry",
        "delay_open",
        "next_hop_self",
        "rr_client",
    }.isdisjoint(SESSION_KEYS)
    assert {"address", "asn", "password", "families", "add_path", "hold_time"} <= SESSION_KEYS
