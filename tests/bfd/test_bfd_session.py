"""The session state machine with a fake clock (RFC 5880 §6.8).

Two kinds of tests: a session fed hand-made packets (exact inputs, exact outputs), and two
sessions back to back over the fake wire of bfd_harness.Pair.
"""

import random

import pytest
from bfd_harness import Pair

from bgpd.bfd.auth import Auth
from bgpd.bfd.packet import (
    AUTH_FAILURE,
    NO_SESSION,
    AuthSection,
    AuthType,
    ControlPacket,
    Diag,
    State,
    decode,
    encode,
)
from bgpd.bfd.session import PacketDropped, Session, SessionParams, StateChanged

ADMIN_DOWN, DOWN, INIT, UP = State.ADMIN_DOWN, State.DOWN, State.INIT, State.UP
L, R = 0x1111, 0x2222  # local and remote discriminators of the fed session
FAST = SessionParams(min_tx=300_000, min_rx=300_000, multiplier=3)


def pkt(state, *, my=R, your=L, mult=3, tx=300_000, rx=300_000, **kw) -> ControlPacket:
    """A packet from the remote side as the session would receive it (with ``raw``)."""
    p = ControlPacket(
        state=state,
        my_disc=my,
        your_disc=your,
        detect_mult=mult,
        desired_min_tx=tx,
        required_min_rx=rx,
        **kw,
    )
    return decode(encode(p))


def sent(s: Session) -> list[ControlPacket]:
    return [decode(raw) for raw in s.packets_to_send()]


def changes(events) -> list[tuple[State, State, int]]:
    return [(e.old, e.new, e.diag) for e in events if isinstance(e, StateChanged)]


def bring_up(s: Session, now: float = 0.0) -> None:
    """Down -> Init -> Up, then answer our poll (the 300 ms timers) with a Final."""
    assert changes(s.receive(pkt(DOWN, your=0, tx=1_000_000), now)) == [(DOWN, INIT, 0)]
    assert changes(s.receive(pkt(UP, tx=1_000_000), now)) == [(INIT, UP, 0)]
    assert s.poll_active
    s.receive(pkt(UP, final=True), now)
    assert not s.poll_active
    s.packets_to_send()


# --- the handshake -----------------------------------------------------------------------------


def test_initial_values_and_first_packet():
    s = Session(FAST, L, 10.0, rng=random.Random(1))
    assert s.state == DOWN and s.remote_disc == 0
    assert s.next_deadline() == 10.0  # the first packet goes out at once
    s.handle_timer(10.0)
    (p,) = sent(s)
    assert p == ControlPacket(
        state=DOWN,
        my_disc=L,
        your_disc=0,
        detect_mult=3,
        desired_min_tx=1_000_000,  # not Up: at least one second (§6.8.3)
        required_min_rx=300_000,
    )
    # The next one comes 0.75-1.0 s later.
    assert 10.75 <= s.next_deadline() <= 11.0


def test_three_way_handshake_packet_by_packet():
    # a starts alone (its first packet is lost), b comes at 0.5 s: the RFC 5880 §6.2 sequence.
    pair = Pair(FAST, FAST, start_b=0.5, delay=0.01)
    pair.run_until(0.6)
    a, b = pair.a, pair.b
    assert a.states() == [(DOWN, INIT), (INIT, UP)]
    assert b.states() == [(DOWN, UP)]
    # b's first packet: Down, knowing nothing of a.
    t0, first = b.sent[0]
    assert (t0, first.state, first.your_disc) == (0.5, DOWN, 0)
    # a answers Init at once, with b's discriminator.
    init = [p for t, p in a.sent if p.state == INIT]
    assert init and init[0].your_disc == 0x0B0B0B0B
    # b goes Up on Init and says so at once, with P: its interval drops to 300 ms.
    up = [p for t, p in b.sent if p.state == UP][0]
    assert up.your_disc == 0x0A0A0A0A and up.poll and up.desired_min_tx == 300_000
    assert pair.both_up()
    assert changes(e for _, e in b.events) == [(DOWN, UP, Diag.NONE)]


def test_timers_after_up_poll_final_then_300ms():
    pair = Pair(FAST, FAST)
    pair.run_until(10.0)
    a, b = pair.a, pair.b
    assert pair.both_up()
    # Each side polled once (its DesiredMinTxInterval fell from 1 s to 300 ms) and answered
    # the other's poll with a Final.
    for side in (a, b):
        polls = [p for _, p in side.sent if p.poll]
        finals = [p for _, p in side.sent if p.final]
        assert polls and finals
        assert all(not (p.poll and p.final) for _, p in side.sent)
        assert side.session.stats.polls == 1
        assert not side.session.poll_active
        assert side.session.tx_interval == pytest.approx(0.3)
        assert side.session.detection_time == pytest.approx(0.9)
    gaps = _gaps(a.sent_between(3.0, 10.0))
    assert all(0.225 - 1e-9 <= g <= 0.3 + 1e-9 for g in gaps), (min(gaps), max(gaps))


def _gaps(records):
    times = [t for t, _ in records]
    return [t2 - t1 for t1, t2 in zip(times, times[1:], strict=False)]


# --- jitter (§6.8.7) -----------------------------------------------------------------------------


@pytest.mark.parametrize("mult, high", [(3, 1.0), (1, 0.9)])
def test_jitter_bounds(mult, high):
    params = SessionParams(min_tx=100_000, min_rx=100_000, multiplier=mult)
    pair = Pair(params, params, seed=7)
    pair.run_until(70.0)
    assert pair.both_up()
    gaps = _gaps(pair.a.sent_between(5.0, 70.0))
    assert len(gaps) > 600
    lo, hi = min(gaps), max(gaps)
    assert lo >= 0.075 - 1e-9 and hi <= 0.1 * high + 1e-9, (lo, hi)
    # Really random over the range, not a constant.
    assert lo < 0.077 and hi > 0.1 * high - 0.002
    assert pair.a.session.stats.flaps == 0


def test_jitter_while_down_uses_the_slow_rate():
    s = Session(FAST, L, 0.0, rng=random.Random(3))
    times = []
    now = 0.0
    for _ in range(200):
        now = s.next_deadline()
        s.handle_timer(now)
        if s.packets_to_send():
            times.append(now)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert 0.75 - 1e-9 <= min(gaps) < 0.76 and 0.99 < max(gaps) <= 1.0 + 1e-9


# --- detection time (§6.8.4) ----------------------------------------------------------------------


def test_detection_time_expiry_takes_up_down_with_diag_1():
    pair = Pair(FAST, FAST)
    pair.run_until(5.0)
    assert pair.both_up()
    last_from_b = max(t for t, _ in pair.b.sent if t <= 5.0)
    pair.b.cut = True
    pair.run_until(7.0)
    (down,) = [e for e in pair.a.changes() if e.new == DOWN]
    assert down.diag == Diag.DETECTION_EXPIRED and down.is_failure
    # Down exactly one detection time (3 x 300 ms) after the last packet arrived.
    assert down.at == pytest.approx(last_from_b + pair.delay + 0.9)
    # The remote is forgotten; b hears a's Down (diag 1) and goes down too, diag 3.
    assert pair.a.session.remote_disc == 0
    b_down = [e for e in pair.b.changes() if e.new == DOWN][0]
    assert b_down.diag == Diag.NEIGHBOR_DOWN and b_down.remote_diag == Diag.DETECTION_EXPIRED
    # The path heals: Up again within a few slow (1 s) intervals.
    pair.b.cut = False
    pair.run_until(10.0)
    assert pair.both_up()
    assert pair.a.session.stats.flaps == 1 and pair.a.session.stats.ups == 2


def test_detection_time_uses_the_slower_of_our_rx_and_their_tx():
    s = Session(FAST, L, 0.0, rng=random.Random(1))
    s.receive(pkt(DOWN, your=0, tx=2_000_000, mult=4), 1.0)
    assert s.detection_time == pytest.approx(8.0)  # 4 x max(300 ms, 2 s)
    assert s.next_deadline() <= 9.0
    s.handle_timer(9.0)
    assert s.remote_disc == 0 and s.state == DOWN  # Down: forgotten, no state change


def test_no_detection_before_the_first_packet():
    s = Session(FAST, L, 0.0, rng=random.Random(1))
    for _ in range(20):
        assert changes(s.handle_timer(s.next_deadline())) == []
    assert s.state == DOWN


# --- state table (§6.8.6) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "start, received, end, diag",
    [
        (DOWN, DOWN, INIT, 0),
        (DOWN, INIT, UP, 0),
        (DOWN, UP, DOWN, 0),
        (DOWN, ADMIN_DOWN, DOWN, 0),
        (INIT, DOWN, INIT, 0),
        (INIT, INIT, UP, 0),
        (INIT, UP, UP, 0),
        (INIT, ADMIN_DOWN, DOWN, Diag.NEIGHBOR_DOWN),
        (UP, DOWN, DOWN, Diag.NEIGHBOR_DOWN),
        (UP, INIT, UP, 0),
        (UP, UP, UP, 0),
        (UP, ADMIN_DOWN, DOWN, Diag.NEIGHBOR_DOWN),
    ],
)
def test_state_table(start, received, end, diag):
    s = Session(FAST, L, 0.0, rng=random.Random(1))
    if start in (INIT, UP):
        s.receive(pkt(DOWN, your=0), 0.0)
    if start == UP:
        s.receive(pkt(UP), 0.0)
    assert s.state == start
    your = 0 if received in (DOWN, ADMIN_DOWN) and start == DOWN else L
    s.receive(pkt(received, your=your), 0.1)
    assert s.state == end
    if end != start:
        assert s.local_diag == diag


def test_remote_admin_down_is_not_a_failure():
    s = Session(FAST, L, 0.0, rng=random.Random(1))
    bring_up(s)
    ev = s.receive(pkt(ADMIN_DOWN, diag=Diag.ADMIN_DOWN), 1.0)
    (change,) = ev
    assert (change.old, change.new, change.diag) == (UP, DOWN, Diag.NEIGHBOR_DOWN)
    assert change.remote_state == ADMIN_DOWN and not change.is_failure
    # The packet it sends right away says why.
    (p,) = sent(s)
    assert (p.state, p.diag) == (DOWN, Diag.NEIGHBOR_DOWN)


# --- AdminDown (§6.8.16) -----------------------------------------------------------------------


def test_admin_down_and_up_between_two_sessions():
    pair = Pair(FAST, FAST)
    pair.run_until(3.0)
    assert pair.both_up()
    ev = pair.call(pair.a, "admin_down")
    assert changes(ev) == [(UP, ADMIN_DOWN, Diag.ADMIN_DOWN)] and not ev[0].is_failure
    pair.run_until(8.0)
    # b went Down (diag 3, remote AdminDown: not a failure) and stays Down, not Init.
    assert pair.b.states()[-1] == (UP, DOWN)
    b_down = pair.b.changes()[-1]
    assert b_down.remote_state == ADMIN_DOWN and not b_down.is_failure
    assert pair.b.session.state == DOWN
    # a keeps sending AdminDown at the slow rate, and ignores b's packets.
    late = pair.a.sent_between(4.0, 8.0)
    assert late and all(p.state == ADMIN_DOWN and p.diag == Diag.ADMIN_DOWN for _, p in late)
    assert all(0.75 - 1e-9 <= g <= 1.0 + 1e-9 for g in _gaps(late))
    assert pair.a.session.state == ADMIN_DOWN
    pair.call(pair.a, "admin_up")
    pair.run_until(12.0)
    assert pair.both_up()


def test_admin_down_session_discards_packets():
    s = Session(FAST, L, 0.0, rng=random.Random(1), admin_down=True)
    assert s.state == ADMIN_DOWN and s.local_diag == Diag.ADMIN_DOWN
    assert changes(s.receive(pkt(DOWN, your=0), 0.1)) == []
    assert changes(s.receive(pkt(INIT), 0.2)) == []
    assert s.state == ADMIN_DOWN
    assert changes(s.admin_up(0.3)) == [(ADMIN_DOWN, DOWN, Diag.NONE)]


def test_final_admin_down_when_deleted():
    s = Session(FAST, L, 0.0, rng=random.Random(1))
    assert s.final_admin_down() is None  # nobody to tell
    bring_up(s)
    p = decode(s.final_admin_down())
    assert (p.state, p.diag, p.your_disc) == (ADMIN_DOWN, Diag.ADMIN_DOWN, R)
    assert s.state == UP  # the object itself is unchanged; the manager drops it


# --- poll sequences on timer changes (§6.8.3, §6.5) ------------------------------------------


def test_increasing_tx_waits_for_the_final():
    s = Session(FAST, L, 0.0, rng=random.Random(1))
    bring_up(s)
    s.receive(pkt(UP), 0.5)
    assert s.tx_interval == pytest.approx(0.3)
    s.update_params(SessionParams(min_tx=800_000, min_rx=300_000), 0.5)
    (p,) = sent(s)  # sent at once, with P and the new value
    assert p.poll and not p.final and p.desired_min_tx == 800_000
    assert s.poll_active and s.tx_interval == pytest.approx(0.3)  # not yet
    # Every packet carries P until the Final comes, at the old interval.
    s.handle_timer(s.next_deadline())
    (q,) = sent(s)
    assert q.poll and s.stats.last_tx - 0.5 <= 0.3
    s.receive(pkt(UP, final=True), 0.9)
    assert not s.poll_active and s.tx_interval == pytest.approx(0.8)
    s.handle_timer(s.next_deadline())
    assert not any(q.poll for q in sent(s))


def test_decreasing_rx_keeps_the_old_detection_time_until_the_final():
    s = Session(SessionParams(min_tx=300_000, min_rx=500_000), L, 0.0, rng=random.Random(1))
    bring_up(s)
    s.receive(pkt(UP, tx=100_000), 1.0)
    assert s.detection_time == pytest.approx(1.5)  # 3 x max(500 ms, 100 ms)
    s.update_params(SessionParams(min_tx=300_000, min_rx=100_000), 1.1)
    assert [p.required_min_rx for p in sent(s)] == [100_000]
    assert s.detection_time == pytest.approx(1.5)
    s.receive(pkt(UP, tx=100_000, final=True), 1.2)
    assert s.detection_time == pytest.approx(0.3)


def test_decreasing_tx_and_increasing_rx_apply_at_once():
    s = Session(SessionParams(min_tx=500_000, min_rx=300_000), L, 0.0, rng=random.Random(1))
    bring_up(s)
    s.update_params(SessionParams(min_tx=100_000, min_rx=600_000), 1.0)
    assert s.poll_active
    assert s.tx_interval == pytest.approx(0.3)  # max(100 ms, their 300 ms rx)
    assert s.detection_time == pytest.approx(1.8)  # 3 x 600 ms


def test_poll_is_answered_with_final_at_once():
    s = Session(FAST, L, 0.0, rng=random.Random(1))
    bring_up(s)
    deadline = s.next_deadline()
    s.receive(pkt(UP, poll=True, tx=200_000), 1.0)
    (f,) = sent(s)
    assert f.final and not f.poll and f.state == UP
    assert s.next_deadline() == deadline  # the periodic schedule is untouched


def test_change_during_a_poll_polls_again():
    s = Session(FAST, L, 0.0, rng=random.Random(1))
    bring_up(s)
    s.update_params(SessionParams(min_tx=400_000, min_rx=300_000), 1.0)
    s.update_params(SessionParams(min_tx=700_000, min_rx=300_000), 1.05)
    sent(s)
    s.receive(pkt(UP, final=True), 1.1)  # answers the first poll only
    assert s.poll_active and s.tx_interval == pytest.approx(0.3)
    assert [p.poll for p in sent(s)] == [True]
    s.receive(pkt(UP, final=True), 1.2)
    assert not s.poll_active and s.tx_interval == pytest.approx(0.7)


def test_remote_min_rx_governs_our_interval():
    s = Session(FAST, L, 0.0, rng=random.Random(1))
    bring_up(s)
    tx_times = []
    now = 0.0
    while now < 20.0:  # the peer sends every 200 ms and wants ours every 1.5 s at most
        now = round(now + 0.2, 6)
        while (d := s.next_deadline()) is not None and d <= now:
            s.handle_timer(d)
            tx_times += [d for _ in sent(s)]
        s.receive(pkt(UP, rx=1_500_000, tx=200_000), now)
        tx_times += [now for _ in sent(s)]
    assert s.tx_interval == pytest.approx(1.5) and s.state == UP
    gaps = [b - a for a, b in zip(tx_times[1:], tx_times[2:], strict=False)]
    assert len(gaps) > 10
    assert all(1.125 - 1e-9 <= g <= 1.5 + 1e-9 for g in gaps), gaps


def test_required_min_rx_zero_stops_periodic_packets():
    s = Session(FAST, L, 0.0, rng=random.Random(1))
    bring_up(s)
    s.receive(pkt(UP, rx=0), 1.0)
    d = s.next_deadline()
    assert d is not None  # the detection time only
    s.handle_timer(d - 0.01)
    assert sent(s) == []


def test_remote_demand_mode_stops_periodic_packets_but_polls_are_answered():
    s = Session(FAST, L, 0.0, rng=random.Random(1))
    bring_up(s)
    s.receive(pkt(UP, demand=True), 1.0)
    s.handle_timer(1.5)  # a packet was due by 1.3; the detection time runs until 1.9
    assert sent(s) == []
    s.receive(pkt(UP, demand=True, poll=True), 1.3)
    assert [p.final for p in sent(s)] == [True]


# --- passive (§6.1) ----------------------------------------------------------------------------


def test_passive_waits_for_the_peer():
    passive = SessionParams(passive=True)
    s = Session(passive, L, 0.0, rng=random.Random(1))
    assert s.next_deadline() is None
    assert s.handle_timer(5.0) == [] and sent(s) == []
    s.receive(pkt(DOWN, your=0), 6.0)
    (p,) = sent(s)
    assert (p.state, p.your_disc) == (INIT, R)
    pair = Pair(SessionParams(), passive)
    pair.run_until(3.0)
    assert pair.both_up()


# --- authentication in the session ---------------------------------------------------------------

KEYS = {
    t: Auth.single(t, 5, "k3y-" + t.name_in_config[:8])
    for t in AuthType  # a secret short enough for every type
}


@pytest.mark.parametrize("atype", list(AuthType), ids=lambda t: t.name_in_config)
def test_authenticated_sessions_come_up_and_stay_up(atype):
    params = SessionParams(min_tx=100_000, min_rx=100_000, auth=KEYS[atype])
    pair = Pair(params, params, seed=3)
    pair.run_until(20.0)
    assert pair.both_up()
    for side in pair.sides():
        st = side.session.stats
        assert st.flaps == 0 and st.dropped == {}
        assert all(p.auth is not None and p.auth.type == atype for _, p in side.sent)
    seqs = [p.auth.sequence for _, p in pair.a.sent]
    if atype.meticulous:
        assert all((b - a) % 2**32 == 1 for a, b in zip(seqs, seqs[1:], strict=False))
    elif atype != AuthType.SIMPLE:
        # Plain keyed: bumped on a content change and about once a second, never backwards.
        steps = [(b - a) % 2**32 for a, b in zip(seqs, seqs[1:], strict=False)]
        assert set(steps) <= {0, 1} and 15 <= sum(steps) <= 40


@pytest.mark.parametrize(
    "a_auth, b_auth",
    [
        (KEYS[AuthType.KEYED_SHA1], None),
        (KEYS[AuthType.KEYED_SHA1], KEYS[AuthType.KEYED_MD5]),
        (KEYS[AuthType.KEYED_SHA1], Auth.single(AuthType.KEYED_SHA1, 5, "other")),
        (KEYS[AuthType.KEYED_SHA1], Auth.single(AuthType.KEYED_SHA1, 6, "k3y-keyed-sh")),
        (KEYS[AuthType.SIMPLE], Auth.single(AuthType.SIMPLE, 5, "wrong")),
    ],
    ids=["one-side", "type", "secret", "key-id", "password"],
)
def test_mismatched_authentication_never_comes_up(a_auth, b_auth):
    pair = Pair(SessionParams(auth=a_auth), SessionParams(auth=b_auth))
    pair.run_until(10.0)
    for side in pair.sides():
        assert side.session.state == DOWN and side.states() == []
        assert side.session.stats.dropped[AUTH_FAILURE] >= 8
        drops = [e for _, e in side.events if isinstance(e, PacketDropped)]
        assert drops and all(d.reason == AUTH_FAILURE for d in drops)


def test_replayed_packet_is_dropped_without_harm():
    params = SessionParams(auth=KEYS[AuthType.METICULOUS_KEYED_SHA1])
    pair = Pair(params, params)
    pair.run_until(3.0)
    assert pair.both_up()
    # Replay an old Down packet of b's: sequence far behind, the session must stay Up.
    old = next(p for _, p in pair.b.sent if p.state == DOWN)
    ev = pair.a.session.receive(old, pair.now)
    assert [type(e) for e in ev] == [PacketDropped] and ev[0].reason == AUTH_FAILURE
    assert "sequence" in ev[0].detail
    assert pair.a.session.state == UP


def test_wrong_your_discriminator_is_dropped():
    s = Session(FAST, L, 0.0, rng=random.Random(1))
    bring_up(s)
    ev = s.receive(pkt(DOWN, your=L + 1), 1.0)
    assert [e.reason for e in ev] == [NO_SESSION]
    assert s.state == UP


def test_unauthenticated_session_drops_authenticated_packet():
    s = Session(FAST, L, 0.0, rng=random.Random(1))
    bring_up(s)
    signed = ControlPacket(state=DOWN, my_disc=R, your_disc=L, auth=AuthSection(AuthType.SIMPLE, 1))
    ev = s.receive(decode(encode(signed, b"x")), 1.0)
    assert [e.reason for e in ev] == [AUTH_FAILURE] and s.state == UP


# --- misuse ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_tx": 0},
        {"min_rx": 2**32},
        {"multiplier": 0},
        {"multiplier": 256},
        {"idle_tx": 999_999},
    ],
)
def test_params_are_checked(kwargs):
    with pytest.raises(ValueError):
        SessionParams(**kwargs)


def test_discriminator_is_checked():
    with pytest.raises(ValueError):
        Session(FAST, 0, 0.0)


def test_snapshot_has_the_show_bfd_fields():
    s = Session(FAST, L, 0.0, rng=random.Random(1))
    bring_up(s, 0.0)
    snap = s.snapshot(2.0)
    assert snap["state"] == "Up" and snap["remote_state"] == "Up"
    assert snap["tx_interval_ms"] == 300.0 and snap["detection_time_ms"] == 900.0
    assert snap["up_for_s"] == 2.0 and snap["flaps"] == 0
    assert snap["remote_discriminator"] == R and snap["local_discriminator"] == L


def test_a_restarted_authenticated_peer_is_accepted_again():
    # The peer restarts with a new random sequence number: once two detection times passed
    # without a valid packet, any sequence is accepted again (RFC 5880 §6.7.1).
    params = SessionParams(auth=KEYS[AuthType.METICULOUS_KEYED_SHA1])
    pair = Pair(params, params, seed=5)
    pair.run_until(3.0)
    assert pair.both_up()
    pair.b.cut = True
    pair.run_until(4.5)
    assert pair.a.session.state == DOWN
    pair.b.session = Session(params, 0x0C0C0C0C, pair.now, rng=random.Random(99))
    pair.b.cut = False
    pair.run_until(10.0)
    assert pair.both_up()
    assert pair.a.session.remote_disc == 0x0C0C0C0C
