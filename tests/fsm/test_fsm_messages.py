"""Received messages: FSM errors (RFC 6608), header errors, UPDATE errors (RFC 7606)."""

import pytest
from fsm_harness import (
    KEEPALIVE,
    notifications,
    of_type,
    peer_open,
    settings,
    simple_update,
    to_established,
    to_openconfirm,
    to_opensent,
)

from bgpd.fsm import Protocol, State
from bgpd.fsm import events as ev
from bgpd.fsm import inputs as inp
from bgpd.wire import Action, BGPError, Notification, RouteRefresh
from bgpd.wire.capabilities import ExtendedMessage, FourOctetAS, Multiprotocol
from bgpd.wire.constants import MARKER

ROUTE_REFRESH = RouteRefresh(1, 1).encode()
UPDATE = simple_update()
OPEN = peer_open()

# AS_PATH with one AS_SEQUENCE of 65002 (four-octet), NEXT_HOP 10.0.0.2.
AS_PATH = b"\x40\x02\x06\x02\x01\x00\x00\xfd\xea"
NEXT_HOP = b"\x40\x03\x04\x0a\x00\x00\x02"
NLRI = b"\x18\x0a\x00\x01"  # 10.0.1.0/24


def _update(attrs: bytes, nlri: bytes = NLRI, withdrawn: bytes = b"") -> bytes:
    body = len(withdrawn).to_bytes(2, "big") + withdrawn
    body += len(attrs).to_bytes(2, "big") + attrs + nlri
    return MARKER + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body


def _in_state(state: State) -> Protocol:
    p = Protocol(settings())
    {State.OPENSENT: to_opensent, State.OPENCONFIRM: to_openconfirm}.get(state, to_established)(p)
    p.data_to_send()
    return p


@pytest.mark.parametrize(
    ("state", "message", "expected"),
    [
        (State.OPENSENT, KEEPALIVE, Notification(5, 1, b"\x04")),
        (State.OPENSENT, UPDATE, Notification(5, 1, b"\x02")),
        (State.OPENSENT, ROUTE_REFRESH, Notification(5, 1, b"\x05")),
        (State.OPENCONFIRM, OPEN, Notification(5, 2, b"\x01")),
        (State.OPENCONFIRM, UPDATE, Notification(5, 2, b"\x02")),
        (State.OPENCONFIRM, ROUTE_REFRESH, Notification(5, 2, b"\x05")),
        (State.ESTABLISHED, OPEN, Notification(5, 3, b"\x01")),
    ],
)
def test_unexpected_message_is_an_fsm_error(state, message, expected):
    p = _in_state(state)
    evs = p.receive_data(message, 1.0)
    # RFC 6608: subcode per state, the unexpected message's type as data.
    assert p.data_to_send() == expected.encode()
    assert p.state is State.IDLE
    [down] = of_type(evs, ev.SessionDown)
    assert down.notification_sent == expected and down.error.code == 5
    assert of_type(evs, ev.CloseRequested)


def test_unexpected_timer_input_in_established_is_an_fsm_error_without_data():
    p = _in_state(State.ESTABLISHED)
    p.dispatch(inp.DelayOpenTimerExpires(), 1.0)
    assert p.data_to_send() == Notification(5, 3, b"").encode()


@pytest.mark.parametrize("state", [State.IDLE, State.CONNECT, State.ACTIVE])
def test_missing_inputs_in_idle_connect_active_are_ignored(state):
    p = Protocol(settings(passive=state is State.ACTIVE))
    if state is not State.IDLE:
        p.start(0)
    assert p.state is state
    p.data_to_send()
    timers = p.timers
    for event in (inp.KeepaliveTimerExpires(), inp.OpenCollisionDump(), inp.KeepAliveMsg()):
        if state is not State.IDLE and isinstance(event, inp.KeepAliveMsg):
            continue  # explicit in Connect/Active (an FSM error once connected)
        assert p.dispatch(event, 1.0) == []
        assert p.state is state and p.timers == timers and p.data_to_send() == b""


def test_malformed_update_resets_the_session():
    p = _in_state(State.ESTABLISHED)
    # withdrawn routes length 255 with nothing behind it
    evs = p.receive_data(MARKER + b"\x00\x17\x02" + b"\x00\xff\x00\x00", 1.0)
    assert p.data_to_send() == Notification(3, 1, b"").encode()
    assert p.state is State.IDLE
    [down] = of_type(evs, ev.SessionDown)
    assert down.error.code == 3 and down.error.subcode == 1 and down.was_established
    assert not of_type(evs, ev.UpdateReceived)


def test_invalid_network_field_resets_with_3_10():
    p = _in_state(State.ESTABLISHED)
    p.receive_data(_update(b"\x40\x01\x01\x00" + AS_PATH + NEXT_HOP, nlri=b"\x21\x0a"), 1.0)
    sent = p.data_to_send()
    assert sent[18] == 3 and sent[19:21] == b"\x03\x0a"
    assert p.state is State.IDLE


def test_treat_as_withdraw_keeps_the_session():
    p = _in_state(State.ESTABLISHED)
    # ORIGIN 5 is invalid: RFC 7606 §7.1 treat-as-withdraw, error 3/6 with the attribute.
    bad_origin = b"\x40\x01\x01\x05"
    evs = p.receive_data(_update(bad_origin + AS_PATH + NEXT_HOP), 1.0)
    assert p.state is State.ESTABLISHED and p.data_to_send() == b""
    [err] = of_type(evs, ev.UpdateError)
    [got] = of_type(evs, ev.UpdateReceived)
    assert got.update.error is err.error
    assert (err.error.code, err.error.subcode, err.error.action) == (3, 6, Action.WITHDRAW)
    assert err.error.data == bad_origin
    assert got.update.reach() == [] and got.update.unreach() == [((1, 1), [NLRI])]
    assert evs.index(of_type(evs, ev.UpdateError)[0]) < evs.index(got)
    assert p.stats.updates_in == 1


def test_attribute_discard_keeps_the_routes():
    p = _in_state(State.ESTABLISHED)
    atomic_with_length_1 = b"\x40\x06\x01\x00"
    evs = p.receive_data(
        _update(b"\x40\x01\x01\x00" + AS_PATH + NEXT_HOP + atomic_with_length_1), 1.0
    )
    assert p.state is State.ESTABLISHED
    [got] = of_type(evs, ev.UpdateReceived)
    assert got.update.error.action == Action.DISCARD
    assert got.update.reach()[0][2] == [NLRI]


def test_update_error_raised_by_the_codec_with_a_non_reset_action_still_resets():
    # An attribute overrunning the block after MP_UNREACH_NLRI: the codec raises a
    # treat-as-withdraw error but returns no UPDATE, so there is nothing to withdraw with.
    mp_unreach = b"\x80\x0f\x03\x00\x02\x01"
    overrun = b"\x40\x01\x05\x00"
    p = _in_state(State.ESTABLISHED)
    evs = p.receive_data(_update(mp_unreach + overrun, nlri=b""), 1.0)
    assert p.state is State.IDLE
    [down] = of_type(evs, ev.SessionDown)
    assert (down.error.code, down.error.subcode) == (3, 5)
    assert p.data_to_send() == Notification(3, 5, down.error.data).encode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\x00" * 16 + b"\x00\x13\x04", Notification(1, 1, b"")),  # bad marker
        (MARKER + b"\x00\x14\x04\x00", Notification(1, 2, b"\x00\x14")),  # KEEPALIVE of 20
        (MARKER + b"\x00\x13\x09", Notification(1, 3, b"\x09")),  # type 9
        (MARKER + b"\x10\x01\x02" + b"\x00" * 4078, Notification(1, 2, b"\x10\x01")),  # 4097
    ],
)
def test_header_errors(raw, expected):
    p = _in_state(State.ESTABLISHED)
    evs = p.receive_data(raw, 1.0)
    assert p.data_to_send() == expected.encode()
    assert p.state is State.IDLE and of_type(evs, ev.SessionDown)


def test_messages_before_a_header_error_are_processed():
    p = _in_state(State.ESTABLISHED)
    evs = p.receive_data(UPDATE + b"\x00" * 19, 1.0)
    assert of_type(evs, ev.UpdateReceived) and p.state is State.IDLE


def test_extended_message_allows_large_updates_only_when_negotiated():
    nlri = b"".join(b"\x20\x0a" + i.to_bytes(2, "big") + b"\x01" for i in range(1000))
    big = _update(b"\x40\x01\x01\x00" + AS_PATH + NEXT_HOP, nlri=nlri)
    assert len(big) > 4096
    p = _in_state(State.ESTABLISHED)  # the fake peer did not advertise extended messages
    p.receive_data(big, 1.0)
    assert p.state is State.IDLE and p.data_to_send()[19:21] == b"\x01\x02"
    q = Protocol(settings())
    to_established(q, caps=(Multiprotocol(1, 1), FourOctetAS(65002), ExtendedMessage()))
    assert q.negotiated.context.extended_message
    evs = q.receive_data(big, 1.0)
    assert (
        q.state is State.ESTABLISHED and len(of_type(evs, ev.UpdateReceived)[0].update.nlri) == 1000
    )


def test_malformed_route_refresh_7_1():
    p = _in_state(State.ESTABLISHED)
    raw = MARKER + b"\x00\x13\x05"  # no AFI/SAFI at all
    p.receive_data(raw, 1.0)
    assert p.data_to_send() == Notification(7, 1, raw).encode()
    assert p.state is State.IDLE


def test_route_refresh_with_unknown_subtype_is_ignored():
    p = _in_state(State.ESTABLISHED)
    assert p.receive_data(RouteRefresh(1, 1, 7).encode(), 1.0) == []
    assert p.state is State.ESTABLISHED


def test_malformed_notification_is_not_answered():
    p = _in_state(State.ESTABLISHED)
    err = BGPError(1, 2, b"\x00\x14")
    evs = p.dispatch(inp.NotifMsgErr(err), 1.0)
    assert p.state is State.IDLE and p.data_to_send() == b""
    assert of_type(evs, ev.CloseRequested)


def test_notification_in_opensent():
    p = _in_state(State.OPENSENT)
    evs = p.receive_data(Notification(2, 2, b"\xfd\xe9").encode(), 1.0)
    assert p.state is State.IDLE and p.data_to_send() == b""
    [nr] = of_type(evs, ev.NotificationReceived)
    [down] = of_type(evs, ev.SessionDown)
    assert down.notification_received == nr.notification == Notification(2, 2, b"\xfd\xe9")
    assert "Bad Peer AS" in down.reason and not down.was_established
    assert p.last_error == down.reason
    assert p.timers == {"idle_hold": 6.0}


def test_version_error_notification_does_not_double_the_idle_hold():
    p = _in_state(State.OPENSENT)
    evs = p.receive_data(Notification(2, 1, b"\x00\x04").encode(), 1.0)
    assert isinstance(of_type(evs, ev.NotificationReceived)[0].notification, Notification)
    assert p.idle_hold == 5


def test_messages_after_the_session_ended_are_ignored():
    p = _in_state(State.ESTABLISHED)
    evs = p.receive_data(Notification(6, 4).encode() + UPDATE + KEEPALIVE, 1.0)
    assert not of_type(evs, ev.UpdateReceived)
    assert p.receive_data(UPDATE, 2.0) == []
    assert p.stats.messages_in["UPDATE"] == 0


def test_byte_at_a_time():
    p = Protocol(settings())
    to_opensent(p)
    data = peer_open() + KEEPALIVE + UPDATE
    events = []
    for i in range(len(data)):
        events += p.receive_data(data[i : i + 1], 1.0)
    assert p.state is State.ESTABLISHED
    assert [type(e) for e in events if not isinstance(e, ev.StateChanged)] == [
        ev.OpenReceived,
        ev.SessionEstablished,
        ev.UpdateReceived,
    ]


def test_open_and_keepalive_in_one_read_then_collision_dump_in_established():
    # The binding only sees OpenReceived after the whole read was processed; the session may
    # already be Established, and collision_dump still works there (RFC 4271 Event 23).
    p = Protocol(settings())
    to_opensent(p)
    p.data_to_send()
    evs = p.receive_data(peer_open() + KEEPALIVE, 1.0)
    assert [type(e) for e in evs if not isinstance(e, ev.StateChanged)] == [
        ev.OpenReceived,
        ev.SessionEstablished,
    ]
    evs = p.collision_dump(1.0)
    assert notifications(p.data_to_send()) == [Notification(6, 7)]
    assert of_type(evs, ev.SessionDown)[0].was_established


def test_large_update_in_the_same_read_as_the_open_that_allows_it():
    # Not what a conforming peer does (it waits for our KEEPALIVE), but the limit raised by the
    # OPEN must apply to the rest of the read, which was framed before the OPEN was processed.
    nlri = b"".join(b"\x20\x0a" + i.to_bytes(2, "big") + b"\x01" for i in range(1000))
    big = _update(b"\x40\x01\x01\x00" + AS_PATH + NEXT_HOP, nlri=nlri)
    p = Protocol(settings())
    to_opensent(p)
    caps = (Multiprotocol(1, 1), FourOctetAS(65002), ExtendedMessage())
    evs = p.receive_data(peer_open(caps=caps) + KEEPALIVE + big + KEEPALIVE, 1.0)
    assert p.state is State.ESTABLISHED
    assert len(of_type(evs, ev.UpdateReceived)[0].update.nlri) == 1000
    assert p.stats.messages_in["KEEPALIVE"] == 2
