"""The write path and the timer handle of bgpd.session.peer.PeerSession, with a fake event
loop and transport (no sockets): one write per batch of UPDATEs, the BoRR/EoRR markers of an
enhanced route refresh go out with them, and the single timer handle is kept when a deadline
only moves later."""

import pytest

from bgpd.fsm import SessionSettings, State
from bgpd.session.peer import PeerSession, Transport, _Conn
from bgpd.session.wheel import RATE, TimerWheel
from bgpd.wire import (
    AttrSet,
    Context,
    Keepalive,
    LocalProtocolError,
    Open,
    RouteRefresh,
    pack_announce,
)
from bgpd.wire.capabilities import EnhancedRouteRefresh, FourOctetAS, Multiprotocol
from bgpd.wire.capabilities import RouteRefresh as RRCap
from bgpd.wire.constants import IPV4_UNICAST


class Handle:
    def __init__(self, loop, when, cb) -> None:
        self.loop, self.when, self.cb = loop, when, cb
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        self.loop.now = self.when
        self.cancelled = True  # done: no longer armed
        self.cb()


class Loop:
    def __init__(self) -> None:
        self.now = 100.0
        self.handles: list = []

    def time(self) -> float:
        return self.now

    def call_at(self, when, cb, *args):
        h = Handle(self, when, cb)
        self.handles.append(h)
        return h

    def call_later(self, delay, cb, *args):
        return self.call_at(self.now + delay, cb)

    def call_soon(self, cb, *args):
        return self.call_at(self.now, cb)

    def armed(self) -> list:
        return [h for h in self.handles if not h.cancelled]


class Wire:
    def __init__(self) -> None:
        self.writes: list = []

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 179) if name == "sockname" else default

    def write(self, data) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        pass


class Handler:
    def session_established(self, s) -> None:
        pass

    def session_down(self, s, e) -> None:
        pass

    def updates_received(self, s, u) -> None:
        pass

    def route_refresh_received(self, s, rr) -> None:
        pass

    def session_writable(self, s) -> None:
        pass


def established(keepalive=30.0, loop=None):
    loop = loop or Loop()
    settings = SessionSettings(
        local_as=65000, peer_as=65000, router_id="10.0.0.1", passive=True, hold_time=90
    )
    s = PeerSession(settings, Transport("127.0.0.2"), Handler(), loop=loop, clock=loop.time)
    s.start()
    conn = _Conn(s, s.fsm, outbound=False)
    s.conn = conn
    wire = Wire()
    conn.connection_made(wire)
    caps = (Multiprotocol(1, 1), RRCap(), EnhancedRouteRefresh(), FourOctetAS(65000))
    peer = Open(asn=65000, hold_time=90, router_id="10.0.0.2", capabilities=caps).encode()
    conn.data_received(peer + Keepalive().encode())
    assert s.state is State.ESTABLISHED
    wire.writes.clear()
    return s, loop, wire


def update(i: int) -> bytes:
    attrs = AttrSet(origin=0, as_path=(), next_hop=bytes((192, 0, 2, 1)), local_pref=100)
    prefix = bytes((24, 10, 0, i))
    return pack_announce(IPV4_UNICAST, attrs, [prefix], Context(ibgp=True))[0]


def test_a_batch_is_one_write_and_is_counted():
    s, loop, wire = established()
    msgs = [update(i) for i in range(5)]
    s.send(msgs)
    assert wire.writes == [b"".join(msgs)]
    assert s.fsm.stats.updates_out == 5


def test_enhanced_route_refresh_markers_go_out_with_the_updates():
    """The route engine's BoRR (an action) and EoRR (the group's trailer) reach the session
    through send(), between UPDATEs."""
    s, loop, wire = established()
    borr, eorr = RouteRefresh(1, 1, 1).encode(), RouteRefresh(1, 1, 2).encode()
    s.send([borr])
    s.send([update(1), eorr])
    assert wire.writes == [borr, update(1) + eorr]
    assert s.fsm.stats.messages_out["ROUTE-REFRESH"] == 2 and s.fsm.stats.updates_out == 1


def test_send_refuses_what_is_not_an_update():
    s, loop, wire = established()
    with pytest.raises(LocalProtocolError):
        s.send([Keepalive().encode()])
    assert wire.writes == []


def test_nothing_is_sent_outside_established():
    s, loop, wire = established()
    s.stop()
    wire.writes.clear()
    s.send([update(1)])
    assert wire.writes == []


def test_timer_handle_is_kept_when_the_deadline_moves_later():
    s, loop, wire = established()
    armed = loop.armed()
    assert len(armed) == 1
    first = armed[0]
    loop.now += 5.0
    s.send([update(1)])  # the keepalive deadline moves 5 s later: no new handle
    s.conn.data_received(Keepalive().encode())  # the hold deadline moves later too
    assert loop.armed() == [first]
    # It fires early: nothing is due, it is armed again at the FSM's deadline.
    first.fire()
    again = loop.armed()
    assert len(again) == 1 and again[0] is not first
    # served at the end of its timer-wheel slot: never early, at most one slot late
    assert s.fsm.next_deadline() <= again[0].when <= s.fsm.next_deadline() + 1 / RATE
    assert wire.writes == [update(1)]  # no KEEPALIVE was due
    # At the deadline the KEEPALIVE goes out.
    again[0].fire()
    assert wire.writes[-1] == Keepalive().encode()


def test_sessions_share_one_timer():
    """Many sessions on one loop: one armed handle, at the earliest deadline's slot."""
    loop = Loop()
    sessions = []
    wires = []
    for i in range(20):
        loop.now = 100.0 + i * 0.5
        s, _loop, w = established(loop=loop)
        sessions.append(s)
        wires.append(w)
    assert len(loop.armed()) == 1
    wheel = sessions[0]._wheel
    assert all(s._wheel is wheel for s in sessions) and len(wheel) == 20
    first = min(s.fsm.next_deadline() for s in sessions)
    (h,) = loop.armed()
    assert first <= h.when <= first + 1 / RATE
    # Serve every deadline for 200 s: each session sends a KEEPALIVE every 30 s, on time
    # (within a slot); its peer's KEEPALIVE every 30 s keeps the hold timer (90 s) away.
    start = loop.now
    sent: dict = {s: [] for s in sessions}
    end = start + 200.0
    peer_ka = {s: s.fsm.timers["hold"] - 90.0 + 30.0 for s in sessions}
    while True:
        (h,) = loop.armed()
        nxt = min(min(peer_ka.values()), h.when)
        if nxt > end:
            break
        if nxt < h.when:
            s = min(peer_ka, key=peer_ka.get)
            loop.now = peer_ka[s]
            s.conn.data_received(Keepalive().encode())
            peer_ka[s] += 30.0
            continue
        due = {s: s.fsm.timers.get("keepalive") for s in sessions}
        before = {s: len(w.writes) for s, w in zip(sessions, wires, strict=True)}
        h.fire()
        for s, w in zip(sessions, wires, strict=True):
            if len(w.writes) > before[s]:
                assert due[s] <= loop.now <= due[s] + 1 / RATE  # never early, one slot late
                sent[s].append(loop.now)
    for s, w in zip(sessions, wires, strict=True):
        assert s.established
        assert w.writes == [Keepalive().encode()] * len(sent[s])
        assert len(sent[s]) >= 6
    sessions[0].close()
    assert len(wheel) == 19


def test_wheel_never_serves_a_deadline_early():
    loop = Loop()
    fired = []

    class Owner:
        def __init__(self, when):
            self.when = when

        def _wheel_fired(self):
            fired.append((self.when, loop.now))

    w = TimerWheel(loop, loop.time)
    for when in (100.001, 100.019, 100.02, 100.5, 101.0):
        w.schedule(Owner(when), TimerWheel.slot_of(when))
    while loop.armed():
        loop.armed()[0].fire()
    assert [f[0] for f in fired] == [100.001, 100.019, 100.02, 100.5, 101.0]
    assert all(when <= at <= when + 1 / RATE + 1e-9 for when, at in fired), fired


def test_wheel_cancellations_leave_nothing_behind():
    loop = Loop()

    class Owner:
        def _wheel_fired(self):
            pass

    w = TimerWheel(loop, loop.time)
    o = Owner()
    for i in range(10_000):  # a deadline moved earlier again and again
        slot = TimerWheel.slot_of(loop.now + 1000.0 - i * 0.05)
        w.schedule(o, slot)
        w.cancel(o, slot)
    assert len(w.slots) == 0 and len(w.heap) <= 64
