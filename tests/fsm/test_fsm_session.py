"""Sessions end to end: two speakers back to back, timers, restarts, collisions, shutdown."""

import pytest
from fsm_harness import (
    KEEPALIVE,
    PEER_AS,
    Pair,
    messages,
    notifications,
    of_type,
    peer_open,
    peer_settings,
    settings,
    simple_update,
    to_established,
    to_openconfirm,
    to_opensent,
)

from bgpd.fsm import (
    HOLD_GRACE,
    HOLD_GRACE_MAX,
    OPENSENT_HOLD_TIME,
    Protocol,
    State,
    resolve_collision,
)
from bgpd.fsm import events as ev
from bgpd.wire import Keepalive, LocalProtocolError, Notification, Open, RouteRefresh, Update
from bgpd.wire.capabilities import FourOctetAS, GracefulRestart, Multiprotocol

IPV4, IPV6 = (1, 1), (2, 1)


# --- establishment and negotiation -------------------------------------------------------------


def test_two_speakers_reach_established_with_everything_negotiated():
    pair = Pair(
        settings(local_as=4200000001, peer_as=4200000002, add_path={IPV4: "both", IPV6: "send"}),
        peer_settings(
            local_as=4200000002, peer_as=4200000001, add_path={IPV4: "receive", IPV6: "both"}
        ),
    ).establish()
    a, b = pair.a, pair.b
    na, nb = a.negotiated, b.negotiated
    assert na.families == nb.families == {IPV4, IPV6}
    assert na.four_octet_as and nb.four_octet_as
    assert na.peer_asn == 4200000002 and nb.peer_asn == 4200000001
    assert na.peer_router_id == "10.0.0.2" and nb.peer_router_id == "10.0.0.1"
    assert not na.ibgp and not na.context.ibgp
    # RFC 7911: a sends paths for both families (b receives both); a never receives them
    # (ipv4: b does not send; ipv6: a only sends), so b never sends any.
    assert na.context.add_path_tx == {IPV4, IPV6} and na.context.add_path_rx == frozenset()
    assert nb.context.add_path_rx == {IPV4, IPV6} and nb.context.add_path_tx == frozenset()
    assert na.context.extended_message and nb.context.extended_message
    assert a._framer.max_size == b._framer.max_size == 65535
    assert na.route_refresh and na.enhanced_route_refresh
    assert na.hold_time == 90 and na.keepalive == 30
    # Both saw OpenReceived, then OpenConfirm, then Established, and the events are in order.
    kinds = [type(e).__name__ for e in pair.events[a]]
    assert kinds == [
        "StateChanged",  # Idle -> Connect
        "ConnectRequested",
        "StateChanged",  # Connect -> OpenSent
        "OpenReceived",
        "StateChanged",  # OpenSent -> OpenConfirm
        "StateChanged",  # OpenConfirm -> Established
        "SessionEstablished",
    ]
    assert of_type(pair.events[a], ev.SessionEstablished)[0].negotiated is na
    assert a.stats.established_at == 0.0
    assert a.stats.messages_out["OPEN"] == 1 and a.stats.messages_in["KEEPALIVE"] == 1


def test_add_path_both_directions():
    pair = Pair(
        settings(add_path={IPV4: "both", IPV6: "both"}),
        peer_settings(add_path={IPV4: "both", IPV6: "receive"}),
    ).establish()
    ctx = pair.a.negotiated.context
    assert ctx.add_path_rx == {IPV4} and ctx.add_path_tx == {IPV4, IPV6}
    assert pair.b.negotiated.context.add_path_rx == {IPV4, IPV6}


def test_updates_flow_and_are_counted():
    pair = Pair().establish()
    raw = simple_update(pair.a.negotiated.context)
    assert pair.a.send_update(raw) == []
    pair.pump()
    got = of_type(pair.events[pair.b], ev.UpdateReceived)
    assert len(got) == 1 and got[0].update.nlri == [b"\x18\x0a\x00\x01"]
    assert pair.a.stats.updates_out == 1 and pair.b.stats.updates_in == 1
    assert pair.b.stats.messages_in["UPDATE"] == 1


def test_two_octet_peer_and_peer_without_mp_capability():
    p = Protocol(settings(families=((1, 1), (2, 1))))
    to_openconfirm(p, caps=())  # a 1990s speaker: no capabilities at all
    n = p.negotiated
    assert n.families == {IPV4}  # RFC 4760: no MP capability means IPv4 unicast
    assert not n.four_octet_as and not n.context.as4
    assert not n.route_refresh and not n.context.extended_message
    assert p._framer.max_size == 4096


def test_no_common_family_keeps_the_session_with_nothing_negotiated():
    # BIRD's behaviour: the session comes up, no family is active.
    p = Protocol(settings(families=((2, 1),)))
    to_established(p, caps=(Multiprotocol(1, 1), FourOctetAS(PEER_AS)))
    assert p.negotiated.families == frozenset()


def test_ibgp_and_dynamic_peer():
    p = Protocol(settings(peer_as=65001))
    to_established(p, asn=65001)
    assert p.negotiated.ibgp and p.negotiated.context.ibgp
    d = Protocol(settings(peer_as=None, passive=True))
    to_established(d, asn=64999)
    assert d.negotiated.peer_asn == 64999 and not d.negotiated.ibgp


def test_graceful_restart_capability_is_kept_for_later():
    gr = GracefulRestart(120, families=((1, 1, True),))
    p = Protocol(settings(graceful_restart=gr))
    assert gr in p.local_open.capabilities
    to_established(p, caps=(gr,))
    assert p.negotiated.graceful_restart == gr
    p.receive_data(Notification(6, 2).encode(), 1.0)
    assert p.state is State.IDLE and p.negotiated.graceful_restart == gr


# --- keepalive and hold timers -----------------------------------------------------------------


def test_keepalives_every_third_of_the_hold_time():
    pair = Pair().establish()
    a = pair.a
    assert a.timers == {"hold": 90.0, "keepalive": 30.0}
    sent_before = a.stats.messages_out["KEEPALIVE"]
    pair.advance(100)
    # KEEPALIVEs at 30, 60, 90 from both: nobody's hold timer fires.
    assert a.stats.messages_out["KEEPALIVE"] - sent_before == 3
    assert a.state is State.ESTABLISHED and pair.b.state is State.ESTABLISHED


def test_hold_time_is_the_smaller_and_keepalive_follows():
    pair = Pair(settings(hold_time=30), peer_settings(hold_time=240)).establish()
    assert pair.a.negotiated.hold_time == pair.b.negotiated.hold_time == 30
    assert pair.a.negotiated.keepalive == 10


def test_configured_keepalive_and_its_cap():
    pair = Pair(settings(keepalive=5), peer_settings(keepalive=60)).establish()
    assert pair.a.negotiated.keepalive == 5
    assert pair.b.negotiated.keepalive == 30  # 60 > 90/3: capped to a third of the hold time
    before = pair.a.stats.messages_out["KEEPALIVE"]
    pair.advance(20)
    assert pair.a.stats.messages_out["KEEPALIVE"] - before == 4


def test_hold_time_zero_means_no_keepalives_and_no_hold_timer():
    pair = Pair(settings(hold_time=0), peer_settings()).establish()
    for p in (pair.a, pair.b):
        assert p.negotiated.hold_time == 0 and p.negotiated.keepalive == 0
        assert p.timers == {} and p.next_deadline() is None
    pair.advance(10_000)
    assert pair.a.stats.messages_out["KEEPALIVE"] == 1  # only the one that confirms the OPEN
    assert pair.a.state is State.ESTABLISHED


def test_hold_timer_expiry_sends_4_0_and_goes_idle():
    p = Protocol(settings())
    to_established(p)
    p.data_to_send()
    assert p.next_deadline() == 30.0  # keepalive first
    p.handle_timer(30.0)
    assert messages(p.data_to_send()) == [Keepalive()]
    p.receive_data(KEEPALIVE, 50.0)  # restarts the hold timer: 50 + 90
    assert p.timers["hold"] == 140.0
    p.handle_timer(60.0)
    p.handle_timer(90.0)
    p.data_to_send()
    evs = p.handle_timer(140.0)
    assert p.state is State.IDLE
    assert notifications(p.data_to_send()) == [Notification(4, 0)]
    down = of_type(evs, ev.SessionDown)[0]
    assert down.notification_sent == Notification(4, 0) and down.error.code == 4
    assert down.was_established
    assert of_type(evs, ev.CloseRequested)
    assert p.stats.flaps == 1 and "Hold Timer Expired" in p.last_error


def test_hold_timer_grace_with_unread_input():
    p = Protocol(settings(hold_time=9))
    to_established(p)
    p.data_to_send()
    hold = p.timers["hold"]
    now = hold
    for _ in range(HOLD_GRACE_MAX):
        evs = p.handle_timer(now, unread_input=True)
        assert p.state is State.ESTABLISHED and not of_type(evs, ev.SessionDown)
        assert p.timers["hold"] == now + HOLD_GRACE
        now += HOLD_GRACE
        p.handle_timer(now - 0.5)  # keepalives in between are fine
    assert p.stats.hold_extensions == HOLD_GRACE_MAX
    # The grace is bounded: the next expiry drops the session even with input pending.
    p.handle_timer(now, unread_input=True)
    assert p.state is State.IDLE
    assert notifications(p.data_to_send())[-1] == Notification(4, 0)


def test_hold_timer_grace_resets_when_a_message_arrives():
    p = Protocol(settings(hold_time=9))
    to_established(p)
    p.handle_timer(p.timers["hold"], unread_input=True)
    p.receive_data(KEEPALIVE, 9.5)
    assert p._hold_grace_used == 0 and p.timers["hold"] == 18.5


def test_opensent_uses_the_large_hold_timer():
    p = Protocol(settings())
    to_opensent(p, now=10.0)
    assert p.timers == {"hold": 10.0 + OPENSENT_HOLD_TIME}
    p.handle_timer(10.0 + OPENSENT_HOLD_TIME)
    assert p.state is State.IDLE
    assert notifications(p.data_to_send()) == [Notification(4, 0)]


def test_sending_an_update_restarts_the_keepalive_timer():
    p = Protocol(settings())
    to_established(p)
    p.send_update(simple_update(), now=20.0)
    assert p.timers["keepalive"] == 50.0
    assert p.next_deadline() == 50.0


def test_send_updates_batches_checks_and_counts():
    pair = Pair(a=settings(enhanced_route_refresh=True)).establish()
    ctx = pair.a.negotiated.context
    raw = simple_update(ctx)
    borr = RouteRefresh(1, 1, 1).encode()
    eorr = RouteRefresh(1, 1, 2).encode()
    pair.now = 20.0
    data = pair.a.send_updates([borr, raw, raw, eorr], now=20.0)
    assert data == borr + raw + raw + eorr  # returned to write at once, nothing queued
    assert pair.a.data_to_send() == b""
    assert pair.a.stats.updates_out == 2 and pair.a.stats.messages_out["UPDATE"] == 2
    assert pair.a.stats.messages_out["ROUTE-REFRESH"] == 2
    assert pair.a.timers["keepalive"] == 20.0 + pair.a.negotiated.keepalive
    pair.b.receive_data(data, pair.now)
    assert len(of_type(pair.b.receive_data(b"", pair.now), ev.UpdateReceived)) == 0
    assert pair.b.stats.updates_in == 2 and pair.b.stats.messages_in["ROUTE-REFRESH"] == 2


def test_send_updates_refuses_what_is_not_an_update_that_fits():
    p = Protocol(settings())
    to_established(p)
    p.data_to_send()
    raw = simple_update(p.negotiated.context)
    for bad in ([KEEPALIVE], [raw, KEEPALIVE], [raw + b"\x00" * 4096], [raw[:20]]):
        with pytest.raises(LocalProtocolError):
            p.send_updates(bad)
    assert p.stats.updates_out == 0
    assert p.send_updates([]) == b""


def test_send_updates_returns_what_was_queued_first():
    p = Protocol(settings())
    to_established(p)
    p.data_to_send()  # the OPEN and KEEPALIVE of the handshake
    p.handle_timer(30.0)  # the keepalive timer: a KEEPALIVE queued
    raw = simple_update(p.negotiated.context)
    assert p.send_updates([raw]) == KEEPALIVE + raw


def test_send_updates_shared_tuple_and_mutated_list():
    """The same tuple to two sessions is checked once and counted for each; a list is never
    remembered (a caller may change it between two sends)."""
    p, q = Protocol(settings()), Protocol(settings())
    for x in (p, q):
        to_established(x)
        x.data_to_send()
    raw = simple_update(p.negotiated.context)
    batch = (raw, raw)
    assert p.send_updates(batch) == q.send_updates(batch) == raw + raw
    assert p.stats.updates_out == q.stats.updates_out == 2
    msgs = [raw]
    assert p.send_updates(msgs) == raw
    msgs.append(raw)
    assert p.send_updates(msgs) == raw + raw
    msgs[0] = KEEPALIVE
    with pytest.raises(LocalProtocolError):
        p.send_updates(msgs)


def test_send_update_outside_established_is_a_local_error():
    p = Protocol(settings())
    to_openconfirm(p)
    with pytest.raises(LocalProtocolError):
        p.send_update(simple_update())
    with pytest.raises(LocalProtocolError):
        p.send_route_refresh(1, 1)


def test_route_refresh_both_ways():
    pair = Pair().establish()
    pair.a.send_route_refresh(2, 1)
    pair.a.send_route_refresh(1, 1, subtype=1)
    pair.pump()
    got = [e.rr for e in of_type(pair.events[pair.b], ev.RouteRefreshReceived)]
    assert got == [RouteRefresh(2, 1, 0), RouteRefresh(1, 1, 1)]
    assert of_type(pair.events[pair.b], ev.RouteRefreshReceived)[0].route_refresh == got[0]
    with pytest.raises(LocalProtocolError):
        pair.a.send_route_refresh(1, 2)  # not negotiated
    # A ROUTE-REFRESH for a family not negotiated is ignored (RFC 2918 §4).
    evs = pair.b.receive_data(RouteRefresh(1, 2).encode(), pair.now)
    assert evs == [] and pair.b.state is State.ESTABLISHED


# --- DelayOpen, passive, connect retry ---------------------------------------------------------


def test_delay_open_waits_for_the_peer_open():
    p = Protocol(settings(delay_open=5))
    p.start(0)
    evs = p.connection_made(1.0, outbound=True)
    assert p.state is State.CONNECT and evs == []
    assert p.data_to_send() == b""  # no OPEN yet
    assert p.timers == {"delay_open": 6.0}
    evs = p.receive_data(peer_open(), 2.0)
    assert p.state is State.OPENCONFIRM
    out = messages(p.data_to_send())
    assert isinstance(out[0], Open) and out[1] == Keepalive()  # ours, then the KEEPALIVE
    assert of_type(evs, ev.OpenReceived)
    assert p.timers == {"hold": 92.0, "keepalive": 32.0}


def test_delay_open_timer_expiry_sends_our_open():
    p = Protocol(settings(delay_open=5, passive=True))
    p.start(0)
    p.connection_made(1.0, outbound=False)
    assert p.state is State.ACTIVE
    p.handle_timer(6.0)
    assert p.state is State.OPENSENT
    assert isinstance(messages(p.data_to_send())[0], Open)
    p.receive_data(peer_open() + KEEPALIVE, 7.0)
    assert p.state is State.ESTABLISHED


def test_delay_open_connection_lost_goes_back_to_active():
    p = Protocol(settings(delay_open=5))
    p.start(0)
    p.connection_made(1.0, outbound=True)
    p.connection_failed(2.0)
    assert p.state is State.ACTIVE and p.timers == {"connect_retry": 32.0}


def test_keepalive_before_open_under_delay_open_is_an_fsm_error():
    p = Protocol(settings(delay_open=5))
    p.start(0)
    p.connection_made(1.0, outbound=True)
    p.receive_data(KEEPALIVE, 2.0)
    assert p.state is State.IDLE
    assert notifications(p.data_to_send()) == [Notification(5, 0, b"\x04")]


def test_passive_never_requests_a_connection():
    p = Protocol(settings(passive=True, idle_hold=(1, 2)))
    all_events = p.start(0)
    assert p.state is State.ACTIVE and p.next_deadline() is None
    all_events += p.connection_made(1.0, outbound=False)
    all_events += p.receive_data(b"\x00" * 19, 1.5)  # header error -> Idle -> restart
    now = 1.5
    for _ in range(5):
        d = p.next_deadline()
        if d is None:
            break
        now = d
        all_events += p.handle_timer(now)
    assert p.state is State.ACTIVE
    assert not of_type(all_events, ev.ConnectRequested)


def test_connect_retry_timer():
    p = Protocol(settings(connect_retry=30))
    evs = p.start(0)
    assert of_type(evs, ev.ConnectRequested) and p.timers == {"connect_retry": 30.0}
    # The attempt hangs: at 30 s it is abandoned and a new one starts.
    evs = p.handle_timer(30.0)
    assert [type(e) for e in evs] == [ev.CloseRequested, ev.ConnectRequested]
    assert p.state is State.CONNECT and p.timers == {"connect_retry": 60.0}
    # Refused: Active, and a new attempt when the timer fires again.
    evs = p.connection_failed(31.0)
    assert p.state is State.ACTIVE and p.timers == {"connect_retry": 61.0}
    assert not of_type(evs, ev.CloseRequested)
    evs = p.handle_timer(61.0)
    assert p.state is State.CONNECT and of_type(evs, ev.ConnectRequested)
    assert p.stats.connect_attempts == 3


def test_idle_refuses_connections():
    p = Protocol(settings())
    evs = p.connection_made(0, outbound=False)
    assert evs == [ev.CloseRequested()] and p.state is State.IDLE


def test_second_connection_is_a_local_error():
    p = Protocol(settings())
    to_opensent(p)
    with pytest.raises(LocalProtocolError):
        p.connection_made(1.0, outbound=False)
    assert p.state is State.OPENSENT


# --- idle hold back-off and automatic restart --------------------------------------------------


def _fail_once(p: Protocol, now: float) -> float:
    """Drive p from Connect to a failed session at ``now``; return the idle hold waited."""
    assert p.state is State.CONNECT
    p.connection_made(now, outbound=True)
    p.receive_data(peer_open(asn=1), now)  # bad peer AS
    assert p.state is State.IDLE
    return p.timers["idle_hold"] - now


def test_idle_hold_backs_off_exponentially_and_restarts_by_itself():
    p = Protocol(settings(idle_hold=(5, 120)))
    p.start(0)
    waits = []
    now = 0.0
    for _ in range(8):
        waits.append(_fail_once(p, now))
        now = p.next_deadline()
        evs = p.handle_timer(now)
        # Automatic restart: back to Connect, a new connection requested.
        assert p.state is State.CONNECT and of_type(evs, ev.ConnectRequested)
    assert waits == [5, 10, 20, 40, 80, 120, 120, 120]


def test_idle_hold_is_forgotten_after_a_quiet_period():
    p = Protocol(settings(idle_hold=(5, 120), error_forget=300))
    p.start(0)
    assert _fail_once(p, 0.0) == 5
    p.handle_timer(5.0)
    assert _fail_once(p, 6.0) == 10
    p.handle_timer(16.0)
    assert _fail_once(p, 1000.0) == 5


def test_cease_from_the_peer_waits_without_doubling():
    p = Protocol(settings(idle_hold=(5, 120)))
    p.start(0)
    assert _fail_once(p, 0.0) == 5
    p.handle_timer(5.0)
    p.connection_made(6.0, outbound=True)
    p.receive_data(peer_open() + KEEPALIVE, 6.0)
    evs = p.receive_data(Notification.cease(2, "maintenance").encode(), 7.0)
    assert p.state is State.IDLE and p.timers["idle_hold"] == 7.0 + 10
    [nr] = of_type(evs, ev.NotificationReceived)
    assert nr.notification.shutdown_message == "maintenance"
    [down] = of_type(evs, ev.SessionDown)
    assert down.notification_received == nr.notification and down.was_established
    assert "Administrative Shutdown" in down.reason and "maintenance" in down.reason
    # The next error doubles from where it was.
    p.handle_timer(17.0)
    assert _fail_once(p, 18.0) == 10


def test_manual_stop_then_start_resets_the_back_off():
    p = Protocol(settings())
    p.start(0)
    _fail_once(p, 0)
    p.handle_timer(5.0)
    _fail_once(p, 6.0)
    assert p.idle_hold == 20
    p.stop(7.0)
    assert p.state is State.IDLE and p.timers == {} and p.idle_hold == 5
    p.start(8.0)
    assert p.state is State.CONNECT and _fail_once(p, 9.0) == 5


def test_tcp_failure_after_open_goes_idle_with_back_off():
    p = Protocol(settings())
    to_established(p)
    evs = p.connection_failed(3.0)
    assert p.state is State.IDLE and p.timers == {"idle_hold": 8.0}
    assert not of_type(evs, ev.CloseRequested)  # the transport is already gone
    [down] = of_type(evs, ev.SessionDown)
    assert down.was_established and "closed" in down.reason


# --- collisions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "remote", "keep"),
    [
        ("10.0.0.1", "10.0.0.2", "keep_inbound"),
        ("10.0.0.2", "10.0.0.1", "keep_outbound"),
        ("9.255.255.255", "10.0.0.0", "keep_inbound"),  # compared as 32-bit numbers
        ("192.168.0.1", "10.0.0.1", "keep_outbound"),
    ],
)
def test_resolve_collision(local, remote, keep):
    assert resolve_collision(local, remote) == keep


def test_resolve_collision_equal_ids_uses_as_numbers():
    assert resolve_collision("1.1.1.1", "1.1.1.1", 65001, 65002) == "keep_inbound"
    assert resolve_collision("1.1.1.1", "1.1.1.1", 65003, 65002) == "keep_outbound"
    with pytest.raises(ValueError):
        resolve_collision("1.1.1.1", "1.1.1.1")


def _collide(local_id: str, remote_id: str):
    """Both speakers connect at once: each has an outbound and an inbound connection.

    Returns our two protocol objects, the peer's two, and the peer-side pairing (the peer's
    object on the other end of each of ours).
    """
    ours_out = Protocol(settings(router_id=local_id))
    ours_in = Protocol(settings(router_id=local_id, passive=True))
    theirs_out = Protocol(peer_settings(router_id=remote_id, passive=False))
    theirs_in = Protocol(peer_settings(router_id=remote_id))
    for p in (ours_out, ours_in, theirs_out, theirs_in):
        p.start(0)
    ours_out.connection_made(0, outbound=True)
    theirs_in.connection_made(0, outbound=False)
    theirs_out.connection_made(0, outbound=True)
    ours_in.connection_made(0, outbound=False)
    return ours_out, ours_in, theirs_out, theirs_in


def _run_collision(local_id, remote_id):
    ours_out, ours_in, theirs_out, theirs_in = _collide(local_id, remote_id)
    links = [(ours_out, theirs_in), (theirs_out, ours_in)]
    events = {p: [] for p in (ours_out, ours_in, theirs_out, theirs_in)}
    for x, y in links:
        events[y] += y.receive_data(x.data_to_send(), 0)
        events[x] += x.receive_data(y.data_to_send(), 0)
    # Each side's binding sees OpenReceived on both connections and resolves.
    for out_p, in_p in ((ours_out, ours_in), (theirs_out, theirs_in)):
        assert of_type(events[out_p], ev.OpenReceived) and of_type(events[in_p], ev.OpenReceived)
        peer_id = of_type(events[out_p], ev.OpenReceived)[0].open.router_id
        keep = resolve_collision(out_p.settings.router_id, peer_id)
        loser = out_p if keep == "keep_inbound" else in_p
        events[loser] += loser.collision_dump(0)
    for _ in range(5):
        for x, y in links:
            events[y] += y.receive_data(x.data_to_send(), 0)
            events[x] += x.receive_data(y.data_to_send(), 0)
    return ours_out, ours_in, theirs_out, theirs_in, events


def test_collision_lower_local_id_keeps_the_inbound_connection():
    ours_out, ours_in, theirs_out, theirs_in, events = _run_collision("10.0.0.1", "10.0.0.2")
    assert ours_in.state is State.ESTABLISHED and theirs_out.state is State.ESTABLISHED
    assert ours_out.state is State.IDLE and theirs_in.state is State.IDLE
    [down] = of_type(events[ours_out], ev.SessionDown)
    assert down.notification_sent == Notification(6, 7)
    assert ours_out.timers == {}  # no back-off, no automatic restart
    # Both ends agree on the loser and each dumps it with Cease 7.
    [their_down] = of_type(events[theirs_in], ev.SessionDown)
    assert their_down.notification_sent == Notification(6, 7)


def test_collision_higher_local_id_keeps_the_outbound_connection():
    ours_out, ours_in, theirs_out, theirs_in, events = _run_collision("10.0.0.9", "10.0.0.2")
    assert ours_out.state is State.ESTABLISHED and theirs_in.state is State.ESTABLISHED
    assert ours_in.state is State.IDLE and theirs_out.state is State.IDLE
    [down] = of_type(events[ours_in], ev.SessionDown)
    assert down.notification_sent == Notification(6, 7)
    assert ours_in.timers == {}


def test_collision_dump_in_opensent():
    p = Protocol(settings())
    to_opensent(p)
    p.data_to_send()
    evs = p.collision_dump(1.0)
    assert p.state is State.IDLE and of_type(evs, ev.CloseRequested)
    assert notifications(p.data_to_send()) == [Notification(6, 7)]
    assert p.timers == {} and p.last_error is None


# --- administrative shutdown -------------------------------------------------------------------


def test_admin_shutdown_sends_cease_with_rfc9003_message():
    pair = Pair().establish()
    evs = pair.a.stop(pair.now, subcode=2, message="upgrade to v2 — back soon")
    sent = notifications(pair.a.data_to_send())
    assert sent == [Notification.cease(2, "upgrade to v2 — back soon")]
    msg = "upgrade to v2 — back soon".encode()
    assert sent[0].data == bytes((len(msg),)) + msg
    assert pair.a.state is State.IDLE and pair.a.timers == {}
    assert [type(e) for e in evs] == [ev.StateChanged, ev.CloseRequested, ev.SessionDown]
    [down] = of_type(evs, ev.SessionDown)
    assert down.notification_sent == sent[0] and down.was_established
    assert pair.a.last_error is None  # a stop is not an error


def test_admin_stop_before_connection_sends_nothing():
    p = Protocol(settings())
    p.start(0)
    evs = p.stop(1.0, message="bye")
    assert p.state is State.IDLE and p.data_to_send() == b""
    assert ev.CloseRequested() in evs  # the connection attempt is abandoned
    assert p.stop(2.0) == []  # stopping twice is harmless
    assert p.handle_timer(1000.0) == [] and p.state is State.IDLE


def test_updates_with_the_peer_as_of_the_settings():
    # The harness's simple UPDATE decodes in a four-octet, eBGP context.
    p = Protocol(settings())
    to_established(p)
    [got] = of_type(p.receive_data(simple_update(), 1.0), ev.UpdateReceived)
    assert isinstance(got.update, Update) and got.update.attrs.first_as() == PEER_AS
