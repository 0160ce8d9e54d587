"""The transition table over every (state, input) pair, exhaustively and with hypothesis
(in the manner of h2's tests/test_state_machines.py).

From each reachable state, any input either follows the table or fails safe: the state is
always a valid State, no exception but the documented LocalProtocolError escapes, timers and
the transport agree with the state, and what is written is a valid stream of BGP messages.
"""

from collections.abc import Callable

import pytest
from fsm_harness import (
    KEEPALIVE,
    PEER_AS,
    of_type,
    peer_open,
    settings,
    simple_update,
    to_established,
    to_openconfirm,
    to_opensent,
)
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from bgpd.fsm import TRANSITIONS, Protocol, State, handler_for
from bgpd.fsm import events as ev
from bgpd.fsm import inputs as inp
from bgpd.wire import (
    BGPError,
    Framer,
    LocalProtocolError,
    Notification,
    Open,
    RouteRefresh,
    decode_message,
)
from bgpd.wire.capabilities import FourOctetAS, Multiprotocol
from bgpd.wire.constants import MARKER

GOOD_OPEN = Open(PEER_AS, 90, "10.0.0.2", (Multiprotocol(1, 1), FourOctetAS(PEER_AS)))
BAD_OPEN = Open(65009, 90, "10.0.0.2", (FourOctetAS(65009),))
UPDATE = decode_message(2, simple_update()[19:])

# One or more concrete instances of every input class.
SAMPLE_INPUTS: list[inp.Input] = [
    inp.ManualStart(),
    inp.ManualStop(),
    inp.ManualStop(4, "reset"),
    inp.ManualStop(3),
    inp.ConnectRetryTimerExpires(),
    inp.HoldTimerExpires(False),
    inp.HoldTimerExpires(True),
    inp.KeepaliveTimerExpires(),
    inp.DelayOpenTimerExpires(),
    inp.IdleHoldTimerExpires(),
    inp.TcpCRAcked(),
    inp.TcpConnectionConfirmed(),
    inp.TcpConnectionFails(),
    inp.BGPOpen(GOOD_OPEN),
    inp.BGPOpen(BAD_OPEN),
    inp.BGPOpen(None),
    inp.BGPHeaderErr(BGPError(1, 1)),
    inp.BGPOpenMsgErr(BGPError(2, 4)),
    inp.OpenCollisionDump(),
    inp.NotifMsgVerErr(Notification(2, 1, b"\x00\x04")),
    inp.NotifMsg(Notification(6, 2)),
    inp.NotifMsg(Notification(3, 1)),
    inp.NotifMsgErr(BGPError(1, 2, b"\x00\x14")),
    inp.KeepAliveMsg(),
    inp.UpdateMsg(UPDATE),
    inp.UpdateMsg(None),
    inp.UpdateMsgErr(BGPError(3, 1)),
    inp.RouteRefreshMsg(RouteRefresh(1, 1)),
    inp.RouteRefreshMsg(None),
    inp.RouteRefreshMsgErr(BGPError(7, 1, b"x")),
]


def _idle_after_error() -> Protocol:
    p = Protocol(settings())
    to_opensent(p)
    p.receive_data(peer_open(asn=1), 0.0)
    assert p.state is State.IDLE and "idle_hold" in p.timers
    return p


def _stopped() -> Protocol:
    p = Protocol(settings())
    p.start(0.0)
    p.stop(0.0)
    return p


def _connected_waiting(passive: bool) -> Callable[[], Protocol]:
    def make() -> Protocol:
        p = Protocol(settings(delay_open=5, passive=passive))
        p.start(0.0)
        p.connection_made(0.0, outbound=not passive)
        assert "delay_open" in p.timers
        return p

    return make


def _started(**kw) -> Callable[[], Protocol]:
    def make() -> Protocol:
        p = Protocol(settings(**kw))
        p.start(0.0)
        return p

    return make


def _after_connect_failure() -> Protocol:
    p = Protocol(settings())
    p.start(0.0)
    p.connection_failed(0.0)
    return p


def _driven(fn, **kw) -> Callable[[], Protocol]:
    def make() -> Protocol:
        p = Protocol(settings(**{k: v for k, v in kw.items() if k == "passive"}))
        fn(p, 0.0, **{k: v for k, v in kw.items() if k != "passive"})
        return p

    return make


# Every state, reached the way real sessions reach it, some in several ways.
REACHABLE: dict[str, Callable[[], Protocol]] = {
    "idle": lambda: Protocol(settings()),
    "idle_after_error": _idle_after_error,
    "idle_stopped": _stopped,
    "connect": _started(),
    "connect_delay_open": _connected_waiting(passive=False),
    "active_passive": _started(passive=True),
    "active_after_failure": _after_connect_failure,
    "active_delay_open": _connected_waiting(passive=True),
    "opensent": _driven(to_opensent),
    "opensent_passive": _driven(to_opensent, passive=True),
    "openconfirm": _driven(to_openconfirm),
    "openconfirm_hold0": _driven(to_openconfirm, hold_time=0),
    "established": _driven(to_established),
    "established_hold0": _driven(to_established, hold_time=0),
}


def _check_stream(data: bytes) -> None:
    """What we write is a sequence of whole, valid BGP messages."""
    framer = Framer(max_size=65535)
    for msg_type, body in framer.feed(data):
        if msg_type != 2:  # our UPDATEs are whatever the caller encoded
            decode_message(msg_type, body)
    assert framer.error is None and not framer.buffer


def check_invariants(p: Protocol, before: State, events: list, data: bytes) -> None:
    state = p.state
    assert isinstance(state, State)
    assert all(isinstance(e, ev.Event) for e in events)
    changes = of_type(events, ev.StateChanged)
    prev = before
    for c in changes:
        assert c.old is prev and c.new is not c.old
        prev = c.new
    assert prev is state
    downs = of_type(events, ev.SessionDown)
    assert len(downs) == sum(1 for c in changes if c.new is State.IDLE)
    if p.settings.passive:
        assert not of_type(events, ev.ConnectRequested)
    timers = p.timers
    if state is State.IDLE:
        assert not p.connected and set(timers) <= {"idle_hold"}
    if "idle_hold" in timers:
        assert state is State.IDLE
    if "connect_retry" in timers:
        assert state in (State.CONNECT, State.ACTIVE) and not p.settings.passive
        assert not p.connected
    if "delay_open" in timers:
        assert state in (State.CONNECT, State.ACTIVE) and p.connected
    if "keepalive" in timers:
        assert state in (State.OPENCONFIRM, State.ESTABLISHED)
    if "hold" in timers:
        assert state in (State.OPENSENT, State.OPENCONFIRM, State.ESTABLISHED)
    if state in (State.OPENSENT, State.OPENCONFIRM, State.ESTABLISHED):
        assert p.connected
    if state is State.OPENSENT:
        assert "hold" in timers  # the large hold timer, whatever will be negotiated
    if state in (State.OPENCONFIRM, State.ESTABLISHED):
        neg = p.negotiated
        assert neg is not None
        assert ("keepalive" in timers) == (neg.hold_time != 0)
        assert ("hold" in timers) == (neg.hold_time != 0)
    deadline = p.next_deadline()
    assert deadline is None or deadline == min(timers.values())
    _check_stream(data)


def test_every_input_class_has_samples():
    assert {type(e) for e in SAMPLE_INPUTS} == set(inp.ALL_INPUTS)
    assert {cls for _state, cls in TRANSITIONS} <= set(inp.ALL_INPUTS)


@pytest.mark.parametrize("event", SAMPLE_INPUTS, ids=repr)
@pytest.mark.parametrize("name", sorted(REACHABLE))
def test_every_state_and_input(name, event):
    p = REACHABLE[name]()
    p.data_to_send()
    before = p.state
    was_connected = p.connected
    handler = handler_for(before, type(event))
    try:
        events = p.dispatch(event, 1.0)
    except LocalProtocolError:
        # Documented: a second connection on a protocol object that has one.
        assert isinstance(event, inp.TcpCRAcked | inp.TcpConnectionConfirmed) and was_connected
        assert p.state is before
        return
    data = p.data_to_send()
    check_invariants(p, before, events, data)
    name = handler.__name__
    if name == "_ignore":
        assert p.state is before and events == [] and data == b""
    elif name.startswith("_fsm_error_"):
        # RFC 6608: the FSM error NOTIFICATION, with the message type as data, and Idle.
        subcode = int(name.rsplit("_", 1)[1])
        assert p.state is State.IDLE
        data_field = bytes((event.msg_type,)) if event.msg_type else b""
        if was_connected:
            assert data.endswith(Notification(5, subcode, data_field).encode())
        assert of_type(events, ev.SessionDown)[0].error.code == 5
    if before in (State.OPENSENT, State.OPENCONFIRM, State.ESTABLISHED):
        if (before, type(event)) not in TRANSITIONS:
            assert name.startswith("_fsm_error_")
    elif (before, type(event)) not in TRANSITIONS:
        assert name == "_ignore"


# --- hypothesis: random walks of public calls and inputs ---------------------------------------

_VALID_MESSAGES = [
    KEEPALIVE,
    peer_open(),
    peer_open(asn=65009),
    peer_open(hold_time=0),
    simple_update(),
    RouteRefresh(1, 1).encode(),
    RouteRefresh(2, 1, 2).encode(),
    Notification(6, 2, b"\x03bye").encode(),
    Notification(4, 0).encode(),
]


def _with_header(msg_type: int, body: bytes) -> bytes:
    return MARKER + (19 + len(body)).to_bytes(2, "big") + bytes((msg_type,)) + body


_bytes = st.one_of(
    st.sampled_from(_VALID_MESSAGES),
    st.binary(max_size=64),
    st.builds(_with_header, st.sampled_from([1, 2, 3, 4, 5]), st.binary(max_size=80)),
    st.builds(
        lambda parts, cut: b"".join(parts)[:cut],
        st.lists(st.sampled_from(_VALID_MESSAGES), max_size=3),
        st.integers(0, 200),
    ),
)

_ops = st.one_of(
    st.tuples(st.just("dispatch"), st.sampled_from(SAMPLE_INPUTS)),
    st.tuples(st.just("receive"), _bytes),
    st.tuples(st.just("timer"), st.booleans()),
    st.tuples(st.just("start")),
    st.tuples(st.just("stop"), st.sampled_from([2, 3, 4]), st.sampled_from(["", "maintenance"])),
    st.tuples(st.just("connect"), st.booleans()),
    st.tuples(st.just("fail")),
    st.tuples(st.just("dump")),
    st.tuples(st.just("send_update")),
    st.tuples(st.just("send_rr"), st.sampled_from([(1, 1, 0), (2, 1, 1), (1, 2, 0)])),
)


def _apply(p: Protocol, op: tuple, now: float) -> list:
    kind = op[0]
    if kind == "dispatch":
        return p.dispatch(op[1], now)
    if kind == "receive":
        return p.receive_data(op[1], now)
    if kind == "timer":
        deadline = p.next_deadline()
        return p.handle_timer(max(now, deadline or now), unread_input=op[1])
    if kind == "start":
        return p.start(now)
    if kind == "stop":
        return p.stop(now, subcode=op[1], message=op[2])
    if kind == "connect":
        return p.connection_made(now, outbound=op[1])
    if kind == "fail":
        return p.connection_failed(now)
    if kind == "dump":
        return p.collision_dump(now)
    if kind == "send_update":
        return p.send_update(simple_update(), now=now)
    if kind == "send_rr":
        afi, safi, subtype = op[1]
        return p.send_route_refresh(afi, safi, subtype, now=now)
    raise AssertionError(op)


@hsettings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    start=st.sampled_from(sorted(REACHABLE)),
    ops=st.lists(st.tuples(_ops, st.floats(0, 100)), max_size=25),
)
def test_random_walks_fail_safe(start, ops):
    p = REACHABLE[start]()
    p.data_to_send()
    now = 1.0
    for op, dt in ops:
        now += dt
        before = p.state
        was_connected = p.connected
        try:
            events = _apply(p, op, now)
        except LocalProtocolError:
            kind = op[0]
            assert p.state is before
            if kind in ("send_update", "send_rr"):
                assert before is not State.ESTABLISHED or kind == "send_rr"
            else:
                assert kind in ("connect", "dispatch") and was_connected
            continue
        check_invariants(p, before, events, p.data_to_send())
