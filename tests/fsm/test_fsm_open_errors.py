"""Every OPEN check, with the exact NOTIFICATION (code, subcode, data) that goes on the wire."""

import pytest
from fsm_harness import (
    KEEPALIVE,
    LOCAL_ID,
    PEER_AS,
    of_type,
    peer_open,
    settings,
    to_established,
    to_opensent,
)

from bgpd.fsm import Protocol, State, negotiate
from bgpd.fsm import events as ev
from bgpd.wire import BGPError, Notification, Open
from bgpd.wire.capabilities import (
    EnhancedRouteRefresh,
    FourOctetAS,
    Multiprotocol,
    RouteRefresh,
    encode_capability,
)
from bgpd.wire.constants import AS_TRANS, CAP_ENHANCED_ROUTE_REFRESH, CAP_FOUR_OCTET_AS


def _reject(open_bytes: bytes, **kw) -> tuple[bytes, list]:
    """Feed ``open_bytes`` to a protocol in OpenSent; return what it sent and its events."""
    p = Protocol(settings(**kw))
    to_opensent(p)
    p.data_to_send()  # our OPEN
    evs = p.receive_data(open_bytes, 1.0)
    assert p.state is State.IDLE, evs
    assert of_type(evs, ev.CloseRequested)
    [down] = of_type(evs, ev.SessionDown)
    assert down.notification_sent is not None and down.error is not None
    assert not of_type(evs, ev.OpenReceived)
    return p.data_to_send(), evs


def test_unsupported_version_2_1():
    raw = bytearray(peer_open())
    raw[19] = 3  # version
    sent, _ = _reject(bytes(raw))
    # RFC 4271 §6.2: the data is the largest supported version, two octets.
    assert sent == Notification(2, 1, b"\x00\x04").encode()


def test_bad_peer_as_from_the_four_octet_capability_2_2():
    sent, evs = _reject(peer_open(asn=65009))
    # The AS as received: four octets when the capability carried it (as BIRD does).
    assert sent == Notification(2, 2, (65009).to_bytes(4, "big")).encode()
    assert "65009" in of_type(evs, ev.SessionDown)[0].reason


def test_bad_peer_as_two_octet_speaker_2_2():
    sent, _ = _reject(peer_open(asn=65009, caps=(Multiprotocol(1, 1),)))
    assert sent == Notification(2, 2, (65009).to_bytes(2, "big")).encode()


def test_as_trans_without_capability_cannot_match_a_four_octet_peer_as_2_2():
    opn = peer_open(asn=AS_TRANS, caps=(Multiprotocol(1, 1),))
    sent, _ = _reject(opn, peer_as=4200000002)
    assert sent == Notification(2, 2, AS_TRANS.to_bytes(2, "big")).encode()


def test_four_octet_peer_with_as_trans_in_the_two_octet_field_is_fine():
    p = Protocol(settings(peer_as=4200000002))
    to_established(p, asn=4200000002, caps=(FourOctetAS(4200000002),), my_as_field=AS_TRANS)
    assert p.negotiated.peer_asn == 4200000002


def test_capability_as_wins_over_a_matching_two_octet_field():
    # The 2-octet field says 65002 but the capability says otherwise: the capability counts.
    opn = peer_open(asn=65002, caps=(FourOctetAS(4200000009),), my_as_field=65002)
    sent, _ = _reject(opn)
    assert sent == Notification(2, 2, (4200000009).to_bytes(4, "big")).encode()


def test_any_as_accepted_for_dynamic_peers():
    for kw in ({"peer_as": None}, {"allow_any_as": True}):
        p = Protocol(settings(**kw))
        to_established(p, asn=4200000123, caps=(FourOctetAS(4200000123),))
        assert p.negotiated.peer_asn == 4200000123


def test_bgp_identifier_zero_2_3():
    sent, _ = _reject(peer_open(router_id="0.0.0.0"))
    assert sent == Notification(2, 3, b"").encode()  # the codec's check, no data


def test_ibgp_identifier_equal_to_ours_2_3():
    sent, _ = _reject(peer_open(asn=65001, router_id=LOCAL_ID), peer_as=65001)
    assert sent == Notification(2, 3, bytes((10, 0, 0, 1))).encode()


def test_ebgp_identifier_equal_to_ours_is_allowed():
    # RFC 6286 §2.2: the identifier need only be unique within an AS.
    p = Protocol(settings())
    to_established(p, router_id=LOCAL_ID)
    assert p.negotiated.peer_router_id == LOCAL_ID


@pytest.mark.parametrize("hold", [1, 2])
def test_unacceptable_hold_time_2_6(hold):
    sent, _ = _reject(peer_open(hold_time=hold))
    assert sent == Notification(2, 6, b"").encode()


@pytest.mark.parametrize("hold", [0, 3, 65535])
def test_acceptable_hold_times(hold):
    p = Protocol(settings())
    to_established(p, hold_time=hold)
    assert p.negotiated.hold_time == min(hold, 90)


def test_required_capability_missing_2_7():
    opn = peer_open(caps=(Multiprotocol(1, 1), RouteRefresh()))
    sent, evs = _reject(opn, required_capabilities=(CAP_FOUR_OCTET_AS,))
    # RFC 5492 §3: the capability as it would appear in an OPEN (ours, here).
    data = encode_capability(FourOctetAS(65001))
    assert data == b"\x41\x04\x00\x00\xfd\xe9"
    assert sent == Notification(2, 7, data).encode()
    assert of_type(evs, ev.SessionDown)[0].error.subcode == 7


def test_several_required_capabilities_missing_2_7():
    opn = peer_open(caps=(Multiprotocol(1, 1),))
    sent, _ = _reject(
        opn,
        enhanced_route_refresh=False,  # not advertised by us either: code and empty value
        required_capabilities=(CAP_FOUR_OCTET_AS, CAP_ENHANCED_ROUTE_REFRESH, 128),
    )
    data = encode_capability(FourOctetAS(65001)) + b"\x46\x00" + b"\x80\x00"
    assert sent == Notification(2, 7, data).encode()


def test_required_capabilities_present():
    p = Protocol(settings(required_capabilities=(CAP_FOUR_OCTET_AS, CAP_ENHANCED_ROUTE_REFRESH)))
    to_established(p, caps=(FourOctetAS(PEER_AS), EnhancedRouteRefresh()))


def test_unsupported_optional_parameter_2_4():
    raw = bytearray(peer_open(caps=(Multiprotocol(1, 1),)))
    raw[29] = 1  # optional parameter type 1 (authentication, deprecated)
    sent, _ = _reject(bytes(raw))
    assert sent == Notification(2, 4, b"").encode()


def test_open_with_bad_length_is_a_header_error():
    raw = bytearray(peer_open())
    raw[28] += 1  # optional parameters length one more than present
    sent, evs = _reject(bytes(raw))
    n = Notification(1, 2, len(raw).to_bytes(2, "big"))
    assert sent == n.encode()


def test_open_errors_under_delay_open_send_a_notification_without_open():
    p = Protocol(settings(delay_open=5))
    p.start(0)
    p.connection_made(0, outbound=True)
    p.receive_data(peer_open(asn=65009), 1.0)
    assert p.state is State.IDLE
    assert p.data_to_send() == Notification(2, 2, (65009).to_bytes(4, "big")).encode()


def test_negotiate_is_a_pure_function():
    s = settings(required_capabilities=(CAP_FOUR_OCTET_AS,))
    local = Protocol(s).local_open
    ok = Open(PEER_AS, 90, "10.0.0.2", (FourOctetAS(PEER_AS),))
    n = negotiate(s, local, ok)
    assert n.peer_asn == PEER_AS and n.local_open is local and n.peer_open is ok
    with pytest.raises(BGPError) as e:
        negotiate(s, local, Open(PEER_AS, 90, "10.0.0.2", ()))
    assert (e.value.code, e.value.subcode) == (2, 7)
    # A hand-made OPEN with hold time 1 (the codec never produces one) is refused too.
    with pytest.raises(BGPError) as e:
        negotiate(s, local, Open(PEER_AS, 1, "10.0.0.2", (FourOctetAS(PEER_AS),)))
    assert (e.value.code, e.value.subcode, e.value.data) == (2, 6, b"\x00\x01")


def test_keepalive_does_not_count_as_an_open():
    p = Protocol(settings())
    to_opensent(p)
    p.data_to_send()
    p.receive_data(KEEPALIVE, 1.0)
    assert p.data_to_send() == Notification(5, 1, b"\x04").encode()
