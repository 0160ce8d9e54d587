"""Many sessions without sockets: demultiplexing, GTSM, drop counters, the deadline heap."""

import random

import pytest

from bgpd.bfd.manager import Manager, SessionKey
from bgpd.bfd.packet import (
    AUTH_FAILURE,
    DROP_REASONS,
    MALFORMED,
    MULTI_HOP_PORT,
    NO_SESSION,
    SINGLE_HOP_PORT,
    TRUNCATED,
    WRONG_TTL,
    WRONG_VERSION,
    AuthSection,
    AuthType,
    ControlPacket,
    Diag,
    State,
    decode,
    encode,
)
from bgpd.bfd.session import SessionParams, StateChanged

P = SessionParams(min_tx=100_000, min_rx=100_000)


def feed(m, raw, src, dst, *, port=SINGLE_HOP_PORT, ttl=255, interface=None, now=0.0):
    return m.datagram_received(
        raw, src=src, dst=dst, port=port, ttl=ttl, interface=interface, now=now
    )


def down_from(my=0x77, your=0, state=State.DOWN, **kw) -> bytes:
    return encode(ControlPacket(state=state, my_disc=my, your_disc=your, **kw))


class Wire:
    """Two managers back to back: everything one sends reaches the other (per key)."""

    def __init__(self, a: Manager, b: Manager, delay: float = 0.001) -> None:
        self.a, self.b, self.delay = a, b, delay
        self.now = 0.0
        self.events = {id(a): [], id(b): []}
        self.inflight: list[tuple[float, Manager, SessionKey, bytes]] = []

    def _pump(self, m: Manager) -> None:
        for key, raw in m.datagrams_to_send():
            self.inflight.append((self.now + self.delay, m, key, raw))

    def run_until(self, t_end: float) -> None:
        while True:
            cands = [x for x in (self.a.next_deadline(), self.b.next_deadline()) if x is not None]
            cands += [t for t, *_ in self.inflight]
            t = min(cands, default=None)
            if t is None or t > t_end:
                self.now = t_end
                return
            self.now = max(self.now, t)
            due = [x for x in self.inflight if x[0] <= self.now]
            self.inflight = [x for x in self.inflight if x[0] > self.now]
            for _, sender, key, raw in due:
                receiver = self.b if sender is self.a else self.a
                ev = feed(receiver, raw, key.local, key.peer, port=key.port, now=self.now)
                self.events[id(receiver)] += ev
                self._pump(receiver)
            for m in (self.a, self.b):
                self.events[id(m)] += m.handle_timer(self.now)
                self._pump(m)


def pair_of_managers(n: int, seed: int = 1):
    a, b = Manager(rng=random.Random(seed)), Manager(rng=random.Random(seed + 1))
    for i in range(n):
        x, y = f"10.1.{i // 200}.{i % 200 + 1}", f"10.2.{i // 200}.{i % 200 + 1}"
        a.add(SessionKey.make(y, x), P, 0.0)
        b.add(SessionKey.make(x, y), P, 0.0)
    return a, b


def test_many_sessions_come_up_and_stay_up():
    a, b = pair_of_managers(100)
    w = Wire(a, b)
    w.run_until(12.0)
    for m in (a, b):
        snap = m.snapshot(w.now)
        assert len(snap["sessions"]) == 100
        assert all(s["state"] == "Up" and s["flaps"] == 0 for s in snap["sessions"])
        assert all(s["tx_interval_ms"] == 100.0 for s in snap["sessions"])
        assert snap["drops"] == dict.fromkeys(DROP_REASONS, 0)
    ups = [e for _, e in w.events[id(a)] if isinstance(e, StateChanged) and e.new == State.UP]
    assert len(ups) == 100


def test_the_heap_is_bounded_and_fires_only_what_is_due():
    a, b = pair_of_managers(50)
    w = Wire(a, b)
    w.run_until(20.0)
    # Each session has at most a couple of live entries: stale ones are popped as they surface.
    assert len(a._heap) <= 3 * 50
    d = a.next_deadline()
    assert d is not None and d >= w.now
    assert a.handle_timer(d - 1e-6) == [] and a.datagrams_to_send() == []


def test_removed_session_sends_admin_down_and_never_fires_again():
    a, b = pair_of_managers(3)
    w = Wire(a, b)
    w.run_until(5.0)
    key = a.keys()[0]
    a.remove(key)
    ((k, raw),) = a.datagrams_to_send()
    p = decode(raw)
    assert k == key and (p.state, p.diag) == (State.ADMIN_DOWN, Diag.ADMIN_DOWN)
    w.inflight.append((w.now, a, key, raw))
    w.run_until(10.0)
    assert key not in a and len(a) == 2
    # The peer saw AdminDown: Down, not a failure, and no detection-time flap.
    gone = b.session(SessionKey(key.local, key.peer))
    assert gone.state == State.DOWN and gone.stats.last_down_diag == Diag.NEIGHBOR_DOWN
    last = [e for e in w.events[id(b)] if e[0].peer == key.local][-1][1]
    assert last.new == State.DOWN and last.remote_state == State.ADMIN_DOWN
    assert not last.is_failure


# --- demultiplexing (RFC 5880 §6.3, §6.8.6) -----------------------------------------------------


def test_demux_by_address_then_by_discriminator():
    m = Manager(rng=random.Random(1))
    k = SessionKey.make("10.0.0.2", "10.0.0.1")
    s = m.add(k, P, 0.0)
    m.datagrams_to_send()
    (ev,) = feed(m, down_from(my=0x77), "10.0.0.2", "10.0.0.1")
    assert ev[0] == k and ev[1].new == State.INIT
    # Now with our discriminator: found by it.
    (ev,) = feed(m, down_from(my=0x77, your=s.local_disc, state=State.UP), "10.0.0.2", "10.0.0.1")
    assert ev[1].new == State.UP


@pytest.mark.parametrize(
    "src, dst, port, your, why",
    [
        ("10.0.0.9", "10.0.0.1", SINGLE_HOP_PORT, 0, "no single hop session"),
        ("10.0.0.2", "10.0.0.5", SINGLE_HOP_PORT, 0, "no single hop session"),
        ("10.0.0.2", "10.0.0.1", MULTI_HOP_PORT, 0, "no multihop session"),
        ("10.0.0.2", "10.0.0.1", SINGLE_HOP_PORT, 12345, "Your Discriminator 12345"),
        ("10.0.0.9", "10.0.0.1", SINGLE_HOP_PORT, "ours", "belongs to"),
        ("10.0.0.2", "10.0.0.1", MULTI_HOP_PORT, "ours", "belongs to"),
    ],
)
def test_no_session(src, dst, port, your, why):
    m = Manager(rng=random.Random(1))
    s = m.add(SessionKey.make("10.0.0.2", "10.0.0.1"), P, 0.0)
    if your == "ours":
        your = s.local_disc
    state = State.UP if your else State.DOWN
    assert feed(m, down_from(your=your, state=state), src, dst, port=port, ttl=255) == []
    assert m.drops[NO_SESSION] == 1 and why in m.last_drop
    assert s.state == State.DOWN and s.stats.rx == 0


def test_interface_selects_among_sessions_to_the_same_address():
    m = Manager(rng=random.Random(1))
    k1 = SessionKey.make("fe80::2", "fe80::1", interface="eth1")
    k2 = SessionKey.make("fe80::2", "fe80::1", interface="eth2")
    s1, s2 = m.add(k1, P, 0.0), m.add(k2, P, 0.0)
    (ev,) = feed(m, down_from(), "fe80::2", "fe80::1", interface="eth2")
    assert ev[0] == k2 and s2.state == State.INIT and s1.state == State.DOWN
    assert feed(m, down_from(), "fe80::2", "fe80::1", interface="eth9") == []
    assert m.drops[NO_SESSION] == 1
    # A discriminator that arrives on the wrong interface is refused too.
    packet = down_from(your=s1.local_disc, state=State.INIT)
    assert feed(m, packet, "fe80::2", "fe80::1", interface="eth2") == []
    assert m.drops[NO_SESSION] == 2 and s1.state == State.DOWN


# --- GTSM (RFC 5881 §5, RFC 5883 §5) -------------------------------------------------------------


@pytest.mark.parametrize("ttl", [254, 64, 1, 0, None])
def test_single_hop_needs_ttl_255(ttl):
    m = Manager(rng=random.Random(1))
    s = m.add(SessionKey.make("10.0.0.2", "10.0.0.1"), P, 0.0)
    assert feed(m, down_from(), "10.0.0.2", "10.0.0.1", ttl=ttl) == []
    assert m.drops[WRONG_TTL] == 1 and s.state == State.DOWN


def test_multihop_min_ttl():
    m = Manager(rng=random.Random(1))
    k = SessionKey.make("10.9.0.2", "10.0.0.1", multihop=True)
    s = m.add(k, P, 0.0, min_ttl=250)
    assert feed(m, down_from(), "10.9.0.2", "10.0.0.1", port=MULTI_HOP_PORT, ttl=249) == []
    assert m.drops[WRONG_TTL] == 1 and s.stats.dropped == {WRONG_TTL: 1}
    (ev,) = feed(m, down_from(), "10.9.0.2", "10.0.0.1", port=MULTI_HOP_PORT, ttl=250)
    assert ev[1].new == State.INIT
    # Without a minimum any TTL does (BIRD sends multihop packets with TTL 64).
    k2 = SessionKey.make("10.9.0.3", "10.0.0.1", multihop=True)
    s2 = m.add(k2, P, 0.0)
    feed(m, down_from(my=0x99), "10.9.0.3", "10.0.0.1", port=MULTI_HOP_PORT, ttl=3)
    assert s2.state == State.INIT


# --- every drop reason, on an Up session ---------------------------------------------------------


def test_bad_input_is_counted_and_never_takes_the_session_down():
    a, b = pair_of_managers(1)
    w = Wire(a, b)
    w.run_until(3.0)
    (key,) = a.keys()
    s = a.session(key)
    assert s.state == State.UP
    good = ControlPacket(state=State.DOWN, my_disc=s.remote_disc, your_disc=s.local_disc)
    raw = encode(good)
    cases = [
        (raw[:10], TRUNCATED),
        (raw[:3] + b"\x40" + raw[4:], TRUNCATED),  # Length 64 > 24 octets
        (b"\x40" + raw[1:], WRONG_VERSION),
        (raw[:2] + b"\x00" + raw[3:], MALFORMED),  # Detect Mult 0
        (raw[:1] + bytes([raw[1] | 0x01]) + raw[2:], MALFORMED),  # M bit
        (
            encode(
                ControlPacket(
                    state=State.DOWN,
                    my_disc=s.remote_disc,
                    your_disc=s.local_disc,
                    auth=AuthSection(AuthType.KEYED_SHA1, 1, sequence=1),
                ),
                b"k",
            ),
            AUTH_FAILURE,
        ),
        (down_from(your=s.local_disc ^ 0xFFFF), NO_SESSION),
    ]
    for data, reason in cases:
        before = dict(a.drops)
        assert feed(a, data, key.peer, key.local, now=w.now) == []
        assert a.drops[reason] == before[reason] + 1, (reason, a.last_drop)
    assert feed(a, raw, key.peer, key.local, ttl=64, now=w.now) == []  # a Down, but TTL 64
    assert a.drops[WRONG_TTL] == 1
    w.run_until(6.0)
    assert s.state == State.UP and s.stats.flaps == 0


def test_key_checks():
    with pytest.raises(ValueError, match="families"):
        SessionKey.make("10.0.0.1", "fd00::1")
    with pytest.raises(ValueError, match="interface"):
        SessionKey.make("fe80::1", "fe80::2")
    with pytest.raises(ValueError, match="multihop"):
        SessionKey.make("10.0.0.1", "10.0.0.2", interface="eth0", multihop=True)
    with pytest.raises(ValueError):
        SessionKey.make("10.0.0.300", "10.0.0.2")
    assert SessionKey.make("FD00:0::1", "fd00::2").peer == "fd00::1"
    m = Manager()
    m.add(SessionKey.make("10.0.0.1", "10.0.0.2"), P, 0.0)
    with pytest.raises(ValueError, match="exists"):
        m.add(SessionKey.make("10.0.0.1", "10.0.0.2"), P, 0.0)
