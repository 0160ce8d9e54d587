"""SessionSettings validation, our OPEN, and the keepalive interval."""

import pytest
from fsm_harness import settings

from bgpd.fsm import SessionSettings, build_open, keepalive_interval
from bgpd.wire import Open
from bgpd.wire.capabilities import (
    FQDN,
    AddPath,
    EnhancedRouteRefresh,
    ExtendedMessage,
    ExtendedNextHop,
    FourOctetAS,
    GracefulRestart,
    Multiprotocol,
    RouteRefresh,
)
from bgpd.wire.messages import decode_open


def test_our_open_carries_every_enabled_capability():
    gr = GracefulRestart(120, families=((1, 1, False),))
    s = settings(
        local_as=4200000001,
        add_path={(2, 1): "send", (1, 1): "both"},
        extended_next_hop=((1, 1),),
        graceful_restart=gr,
        fqdn="rr1.dc.example.net",
    )
    opn = build_open(s)
    assert opn.asn == 4200000001 and opn.hold_time == 90 and opn.router_id == "10.0.0.1"
    assert opn.capabilities == (
        Multiprotocol(1, 1),
        Multiprotocol(2, 1),
        RouteRefresh(),
        EnhancedRouteRefresh(),
        ExtendedMessage(),
        FourOctetAS(4200000001),
        AddPath(((1, 1, 3), (2, 1, 2))),
        ExtendedNextHop(((1, 1, 2),)),
        gr,
        FQDN("rr1", "dc.example.net"),
    )
    wire = opn.encode()
    back = decode_open(wire[19:])
    assert back.my_as_field == 23456 and back.asn == 4200000001  # AS_TRANS in the 2-octet field
    assert back.capabilities == opn.capabilities


def test_minimal_open():
    s = settings(
        families=((1, 1),),
        route_refresh=False,
        enhanced_route_refresh=False,
        extended_message=False,
        four_octet_as=False,
    )
    assert build_open(s) == Open(65001, 90, "10.0.0.1", (Multiprotocol(1, 1),))


@pytest.mark.parametrize(
    ("configured", "hold", "expected"),
    [
        (None, 90, 30),
        (None, 3, 1),
        (None, 10, 3),
        (5, 90, 5),
        (60, 90, 30),
        (2.5, 9, 2.5),
        (None, 0, 0),
        (10, 0, 0),
    ],
)
def test_keepalive_interval(configured, hold, expected):
    assert keepalive_interval(settings(keepalive=configured), hold) == expected


@pytest.mark.parametrize(
    "bad",
    [
        {"local_as": 0},
        {"local_as": 2**32},
        {"local_as": 70000, "four_octet_as": False},
        {"peer_as": 0},
        {"router_id": "0.0.0.0"},
        {"router_id": "fe80::1"},
        {"hold_time": 1},
        {"hold_time": 2},
        {"hold_time": 65536},
        {"keepalive": 0},
        {"connect_retry": 0},
        {"delay_open": -1},
        {"idle_hold": (10, 5)},
        {"families": ((1, 128),)},
        {"add_path": {(2, 1): "sometimes"}},
        {"families": ((1, 1),), "add_path": {(2, 1): "send"}},
        {"families": ((1, 1),), "extended_next_hop": ((2, 1),)},
        {"required_capabilities": (256,)},
    ],
)
def test_invalid_settings(bad):
    with pytest.raises(ValueError):
        settings(**bad)


def test_lists_from_a_config_loader_are_normalised():
    s = SessionSettings(
        local_as=65001,
        peer_as=None,
        router_id="10.0.0.1",
        families=[[1, 1], [2, 1]],
        idle_hold=[1, 2],
        required_capabilities=[65],
    )
    assert s.families == ((1, 1), (2, 1)) and s.idle_hold == (1, 2)
    assert s.ibgp is None and s.accepts_any_as
    assert settings(peer_as=65001).ibgp is True


@pytest.mark.parametrize(
    "mode, loopback_connection, accepted",
    [
        ("auto", True, True),  # the peer is this host: its 127/8 address is its own
        ("auto", False, False),
        ("accept", False, True),
        ("reject", True, False),
    ],
)
def test_loopback_next_hops_by_connection_and_setting(mode, loopback_connection, accepted):
    """The decoding context accepts loopback next hops (bgpd.wire.nexthop) from a connection
    between two loopback addresses, unless the neighbor's loopback_next_hop says otherwise."""
    from fsm_harness import peer_open

    from bgpd.fsm import Protocol, State

    p = Protocol(settings(loopback_next_hop=mode))
    p.start(0)
    p.connection_made(0, outbound=True, loopback=loopback_connection)
    p.receive_data(peer_open(), 0)
    assert p.state is State.OPENCONFIRM
    assert p.negotiated.context.loopback_next_hop is accepted


def test_loopback_next_hop_setting_is_checked():
    with pytest.raises(ValueError, match="loopback next hop 'yes'"):
        settings(loopback_next_hop="yes")
