"""Graceful restart in the route engine, with a fake clock: the helper role per peer
(RFC 4724 §4.2, RFC 8538), our own restart (§4.1) and the FIB's wait for the initial
convergence, all as deadlines (bgpd/rde/graceful.py)."""

import pytest
from rde_harness import Harness, gr_cap
from rib_helpers import IPV4, IPV6, A, P, ip, seq

from bgpd.rde import HARD_RESET, graceful_end
from bgpd.rde import actions as act
from bgpd.wire import Notification
from bgpd.wire.constants import CEASE_ADMIN_SHUTDOWN, CEASE_HARD_RESET, ERR_CEASE, ERR_HOLD_TIMER

E1, E2 = "192.0.2.1", "192.0.2.2"
P1, P2 = P("10.0.1.0/24"), P("10.0.2.0/24")
ROUTE = A(as_path=(seq(65001),), next_hop=ip("192.0.2.1"))
GR = {"restart_time": 120, "stale_routes_time": 360, "selection_deferral": 240}


def helper(notification=True):
    h = Harness(
        [{"address": E1, "asn": 65001}, {"address": E2, "asn": 65002}],
        graceful_restart={**GR, "notification": notification},
    )
    h.up(E1, gr=gr_cap(restart_time=120, notification=True))
    h.up(E2)
    h.announce(E1, IPV4, ROUTE, [P1, P2])
    h.drain()
    return h


def stale(h, address=E1):
    return {f: set(v) for f, v in h.peers[address].source.stale.items() if v}


# --- the RFC 8538 table -----------------------------------------------------------------------


def test_hard_reset_table():
    assert (ERR_CEASE, CEASE_HARD_RESET) in HARD_RESET
    assert graceful_end(None, n_bit=False)  # no NOTIFICATION: graceful (RFC 4724)
    assert not graceful_end(Notification(ERR_CEASE, CEASE_ADMIN_SHUTDOWN), n_bit=False)
    assert graceful_end(Notification(ERR_CEASE, CEASE_ADMIN_SHUTDOWN), n_bit=True)
    assert graceful_end(Notification(ERR_HOLD_TIMER, 0), n_bit=True)
    assert not graceful_end(Notification(ERR_CEASE, CEASE_HARD_RESET), n_bit=True)


# --- helper role ------------------------------------------------------------------------------


def test_peer_down_keeps_routes_stale_until_the_restart_timer():
    h = helper()
    assert h.down(E1, was_established=True) == []
    peer = h.peers[E1]
    assert peer.helper.state == "restarting" and set(h.routes()) == {P1, P2}
    assert stale(h) == {IPV4: {P1, P2}}
    assert h.rde.gr_in_progress
    assert h.rde.next_deadline() == pytest.approx(h.now + 120)
    h.tick(119)
    assert set(h.routes()) == {P1, P2}
    h.tick(1)
    assert h.routes() == {} and peer.helper.state is None and not h.rde.gr_in_progress


def test_deliberate_down_and_hard_reset_flush_at_once():
    h = helper()
    h.down(E1, was_established=True, deliberate=True)
    assert h.routes() == {}
    h = helper()
    h.down(E1, was_established=True, notification=Notification(ERR_CEASE, CEASE_HARD_RESET))
    assert h.routes() == {} and h.rde.next_deadline() is None


def test_n_bit_decides_whether_a_notification_is_graceful():
    note = Notification(ERR_HOLD_TIMER, 0)
    h = helper(notification=True)
    h.down(E1, was_established=True, notification=note)
    assert set(h.routes()) == {P1, P2}
    h = helper(notification=False)  # we do not advertise the N bit
    h.down(E1, was_established=True, notification=note)
    assert h.routes() == {}


def test_returned_peer_refreshes_then_end_of_rib_sweeps():
    h = helper()
    h.down(E1, was_established=True)
    h.tick(10)
    h.up(E1, gr=gr_cap(notification=True))
    peer = h.peers[E1]
    assert peer.helper.state == "refreshing"
    assert h.rde.next_deadline() == pytest.approx(h.now + 360)  # stale_routes_time
    h.announce(E1, IPV4, ROUTE, [P1])  # P1 fresh again, P2 not re-announced
    assert stale(h) == {IPV4: {P2}}
    h.eor(E1, IPV4)
    assert set(h.routes()) == {P1} and peer.helper.state is None
    assert h.rde.next_deadline() is None


def test_returned_without_forwarding_state_flushes():
    h = helper()
    h.down(E1, was_established=True)
    h.up(E1, gr=gr_cap(notification=True, forwarding=False))
    assert h.routes() == {} and h.peers[E1].helper.state is None


def test_returned_without_graceful_restart_flushes():
    h = helper()
    h.down(E1, was_established=True)
    h.up(E1)  # no GR capability this time
    assert h.routes() == {}


def test_stale_routes_timer_flushes_what_was_not_refreshed():
    h = helper()
    h.down(E1, was_established=True)
    h.up(E1, gr=gr_cap(notification=True))
    h.tick(360)
    assert h.routes() == {} and h.peers[E1].helper.state is None


# --- our own restart --------------------------------------------------------------------------


def restarting(**kw):
    h = Harness(
        [{"address": E1, "asn": 65001}, {"address": E2, "asn": 65002}],
        graceful_restart=GR,
        **kw,
    )
    assert h.rde.set_start(True, "test") is True
    assert h.rde.begin_restart(h.now) == []
    return h


def test_restart_defers_export_until_end_of_rib_from_everyone():
    h = restarting()
    h.up(E1, gr=gr_cap())
    h.up(E2, gr=gr_cap())
    h.announce(E1, IPV4, ROUTE, [P1])
    out = h.drain()
    assert not out.messages  # selection deferred
    assert h.eor(E1, IPV4) == [] and h.eor(E1, IPV6) == []  # End-of-RIB per family
    assert h.rde.gr.ours.waiting == {E2}
    assert h.eor(E2, IPV4) == []
    assert h.eor(E2, IPV6) == [act.RestartDone("End-of-RIB from every neighbor")]
    assert not h.rde.restarting and h.rde.wants_drain
    h.drain()
    assert P1 in h.views[E2].routes[IPV4]


def test_restart_ends_with_the_deferral_timer():
    h = restarting()
    h.up(E1, gr=gr_cap())
    assert h.rde.next_deadline() == pytest.approx(h.now + 240)
    assert h.tick(240) == [act.RestartDone("deferral timer")]


def test_peers_without_gr_or_restarting_are_not_waited_for():
    h = restarting()
    h.up(E1)  # no GR: not waited for
    assert h.rde.gr.ours.waiting == {E2}
    out = h.up(E2, gr=gr_cap(restarting=True))  # restarting itself: waits for ours
    assert out == [act.RestartDone("End-of-RIB from every neighbor")]


# --- the FIB's wait ---------------------------------------------------------------------------


def fib_wait():
    h = Harness([{"address": E1, "asn": 65001}, {"address": E2, "asn": 65002}])
    assert h.rde.wait_for_fib(60, h.now) == []
    h.up(E1)
    h.up(E2)
    return h


def test_fib_converges_on_end_of_rib_from_every_expected_neighbor():
    h = fib_wait()
    assert h.eor(E1, IPV4) == []
    assert h.eor(E1, IPV6) == []  # E1 complete, E2 not
    assert h.eor(E2, IPV4) == []
    assert h.eor(E2, IPV6) == [act.FibConverged("End-of-RIB from every neighbor")]
    assert h.rde.next_deadline() is None


def test_fib_converges_after_the_sweep_timeout():
    h = fib_wait()
    h.eor(E1, IPV4)
    assert h.tick(60) == [act.FibConverged("60 s after start")]


def test_fib_with_no_neighbors_converges_at_once():
    h = Harness([])
    assert h.rde.wait_for_fib(60, h.now) == [act.FibConverged("no neighbors to wait for")]


def test_fib_waits_for_a_restarting_neighbor_our_restart_did_not_wait_for():
    h = restarting()
    h.rde.wait_for_fib(600, h.now)
    h.up(E1, gr=gr_cap())
    h.eor(E1, IPV4)
    h.eor(E1, IPV6)
    out = h.up(E2, gr=gr_cap(restarting=True))
    assert out == [act.RestartDone("End-of-RIB from every neighbor")]  # not converged yet
    h.eor(E2, IPV4)
    out = h.eor(E2, IPV6)
    assert act.FibConverged("End-of-RIB from every neighbor") in out
