"""The route engine driven with plain values and a fake clock (tests/rde/rde_harness.py):
imports, exports, maximum prefixes, back-pressure, the timers. Graceful restart has its own
module (test_graceful.py)."""

import pytest
from rde_harness import Harness
from rib_helpers import IPV4, IPV6, A, P, ip, seq

from bgpd.rde import actions as act
from bgpd.rde.engine import BACKLOG_HIGH
from bgpd.rib.export import SLOW_AFTER
from bgpd.wire import Action, BGPError, Update
from bgpd.wire.constants import CEASE_MAX_PREFIXES, ERR_UPDATE, UPD_MISSING_WELLKNOWN

E1, E2, I1, C1 = "192.0.2.1", "192.0.2.2", "192.0.2.11", "192.0.2.21"
P1, P2, P3 = P("10.0.1.0/24"), P("10.0.2.0/24"), P("10.0.3.0/24")
V1 = P("2001:db8:1::/48")
ROUTE = A(as_path=(seq(65001),), next_hop=ip("192.0.2.1"))


def ebgp_pair(**top):
    h = Harness([{"address": E1, "asn": 65001}, {"address": E2, "asn": 65002}], **top)
    h.up(E1)
    h.up(E2)
    return h


# --- receive: what a batch of UPDATEs does -----------------------------------------------------


def test_receive_per_family_and_withdraw():
    h = ebgp_pair()
    nh6 = ip("2001:db8::1")
    h.announce(E1, IPV4, ROUTE, [P1, P2])
    h.announce(E1, IPV6, A(as_path=(seq(65001),), next_hop=nh6), [V1])
    assert set(h.routes()) == {P1, P2}
    src = h.peers[E1].source
    assert h.routes(IPV6) == {V1: src} and src.adj_in[IPV6][V1].next_hop == nh6
    h.withdraw(E1, IPV4, [P1])
    assert set(h.routes()) == {P2}


def test_receive_withdraws_before_announcing():
    """An UPDATE withdrawing and announcing one prefix leaves it announced (RFC 4271 §4.3
    lets a speaker do both; the announcement wins)."""
    h = ebgp_pair()
    ctx = h.ctx(E1)
    out = h.rde.receive(h.peers[E1], [Update(withdrawn=[P1], attrs=ROUTE, nlri=[P1])], h.now)
    assert out == [] and h.routes() == {P1: h.peers[E1].source}
    assert ctx.ibgp is False


def test_receive_treat_as_withdraw():
    """RFC 7606: an UPDATE with a treat-as-withdraw error withdraws its prefixes."""
    h = ebgp_pair()
    good = A(as_path=(seq(65001),), next_hop=ip("192.0.2.1"), med=5)
    h.rde.receive(h.peers[E1], [Update(attrs=ROUTE, nlri=[P1, P2])], h.now)
    err = BGPError(ERR_UPDATE, UPD_MISSING_WELLKNOWN, b"", Action.WITHDRAW, "test")
    h.rde.receive(h.peers[E1], [Update(attrs=good, nlri=[P1], error=err)], h.now)
    assert h.routes() == {P2: h.peers[E1].source}
    assert h.peers[E1].source.adj_in[IPV4] == {P2: ROUTE}


def test_our_as_in_the_path_is_dropped_unless_allowed():
    h = Harness([{"address": E1, "asn": 65001}, {"address": E2, "asn": 65002, "allow_own_as": 1}])
    h.up(E1)
    h.up(E2)
    looped = A(as_path=(seq(65001, 65000),), next_hop=ip("192.0.2.1"))
    h.announce(E1, IPV4, looped, [P1])
    assert h.routes() == {}
    h.announce(E2, IPV4, looped, [P2])
    assert set(h.routes()) == {P2}


def test_reflector_drops_its_own_cluster_and_originator():
    h = Harness(
        [{"address": I1, "asn": 65000}, {"address": C1, "asn": 65000, "rr_client": True}],
        cluster_id="10.9.9.9",
    )
    h.up(I1)
    h.up(C1)
    own_cluster = A(next_hop=ip("192.0.2.11"), local_pref=100, cluster_list=(ip("10.9.9.9"),))
    own_origin = A(next_hop=ip("192.0.2.11"), local_pref=100, originator_id=ip("10.0.0.1"))
    fine = A(next_hop=ip("192.0.2.11"), local_pref=100, cluster_list=(ip("10.8.8.8"),))
    h.announce(I1, IPV4, own_cluster, [P1])
    h.announce(I1, IPV4, own_origin, [P2])
    h.announce(I1, IPV4, fine, [P3])
    assert set(h.routes()) == {P3}
    # Issue 19: what the loop checks drop is still received (BIRD's import keep filtered),
    # counted apart from what was accepted, with the reason.
    peer = h.peers[I1]
    assert peer.received_count() == 3 and peer.accepted_count() == 1
    assert peer.filtered[IPV4] == {P1: own_cluster, P2: own_origin}
    why = h.rde.imports.why_filtered
    assert why(peer, own_cluster, IPV4, P1) == "our cluster ID is in CLUSTER_LIST"
    assert why(peer, own_origin, IPV4, P2) == "ORIGINATOR_ID is our router ID"
    h.announce(I1, IPV4, fine, [P1])  # now acceptable: no longer filtered
    h.withdraw(I1, IPV4, [P2])
    assert peer.filtered[IPV4] == {} and peer.received_count() == 2
    h.announce(I1, IPV4, own_cluster, [P2])
    h.down(I1, was_established=True)
    assert peer.received_count() == 0


def test_import_policy_by_prefix_runs_per_prefix():
    h = Harness(
        [{"address": E1, "asn": 65001, "import": ["only-p2"]}, {"address": E2, "asn": 65002}],
        policies={
            "only-p2": {
                "terms": [{"match": {"prefix": ["10.0.2.0/24"]}, "action": "accept"}],
                "default": "reject",
            }
        },
    )
    h.up(E1)
    h.announce(E1, IPV4, ROUTE, [P1, P2, P3])
    assert set(h.routes()) == {P2}
    peer = h.peers[E1]
    assert set(peer.filtered[IPV4]) == {P1, P3} and peer.received_count() == 3
    assert h.rde.imports.why_filtered(peer, ROUTE, IPV4, P1) == (
        "rejected by import policy only-p2"
    )


# --- export: drain --------------------------------------------------------------------------


def test_drain_exports_with_our_as_and_next_hop():
    h = ebgp_pair()
    h.announce(E1, IPV4, ROUTE, [P1])
    assert h.rde.wants_drain
    h.drain()
    got = h.views[E2].routes[IPV4][P1]
    assert got.as_path == (seq(65000, 65001),) and got.next_hop == ip("192.0.2.254")
    assert P1 not in h.views[E1].routes[IPV4]  # split horizon
    assert not h.rde.wants_drain


def test_policy_rewritten_on_reload_gets_a_new_export_context():
    """A reload that changes a policy's terms (same name) must not reuse the old compiled
    policy's export context and cached results."""
    pol = {"out": {"terms": [{"set": {"med": 10}, "action": "accept"}]}}
    h = Harness(
        [{"address": E1, "asn": 65001}, {"address": E2, "asn": 65002, "export": ["out"]}],
        policies=pol,
    )
    h.up(E1)
    h.up(E2)
    h.announce(E1, IPV4, ROUTE, [P1])
    h.drain()
    assert h.views[E2].routes[IPV4][P1].med == 10
    new = {"out": {"terms": [{"set": {"med": 20}, "action": "accept"}]}}
    h.rde.reconfigure(policies=new)
    peer = h.peers[E2]
    h.rde.update_peer(peer, peer.cfg)
    h.rde.resend(peer)
    h.drain()
    assert h.views[E2].routes[IPV4][P1].med == 20


def test_advertised_counts_and_export_of():
    h = ebgp_pair()
    h.announce(E1, IPV4, ROUTE, [P1, P2])
    h.drain()
    counts = h.rde.advertised_counts()
    assert counts[h.peers[E2]] == 2 and counts[h.peers[E1]] == 0
    assert h.rde.export_of(h.peers[E2], IPV4, P1).as_path == (seq(65000, 65001),)
    assert h.rde.export_of(h.peers[E1], IPV4, P1) is None  # its own route


def test_route_refresh_resends_with_borr_and_eorr():
    h = ebgp_pair()
    h.up(E2, enhanced_route_refresh=True)  # again, now with RFC 7313
    h.announce(E1, IPV4, ROUTE, [P1])
    h.drain()
    from bgpd.wire import RouteRefresh

    out = h.rde.route_refresh(h.peers[E2], RouteRefresh(1, 1, 0), h.now)
    assert [type(a) for a in out] == [act.SendMessages]
    h.views[E2].clear_log()
    drained = h.rde.drain(10**6, h.now)
    msgs = drained.messages[h.peers[E2]]
    assert msgs[-1] == RouteRefresh(1, 1, 2).encode()  # EoRR last
    h.views[E2].apply(msgs[:-1])
    assert P1 in h.views[E2].announced()


# --- maximum prefixes ------------------------------------------------------------------------


def test_max_prefixes_stop_then_restart_after_the_timer():
    h = Harness(
        [
            {
                "address": E1,
                "asn": 65001,
                "max_prefixes": {"limit": 2, "action": "stop", "restart_after": 30},
            }
        ]
    )
    h.up(E1)
    assert h.announce(E1, IPV4, ROUTE, [P1, P2]) == []
    out = h.announce(E1, IPV4, ROUTE, [P3])
    assert len(out) == 1 and isinstance(out[0], act.StopSession)
    assert out[0].subcode == CEASE_MAX_PREFIXES and "limit 2" in out[0].reason
    assert h.rde.next_deadline() == pytest.approx(h.now + 30)
    assert h.tick(29) == []
    assert h.tick(1) == [act.StartSession(h.peers[E1])]


def test_max_prefixes_warn_keeps_the_routes():
    h = Harness([{"address": E1, "asn": 65001, "max_prefixes": {"limit": 1, "action": "warn"}}])
    h.up(E1)
    assert h.announce(E1, IPV4, ROUTE, [P1, P2]) == []
    assert set(h.routes()) == {P1, P2} and h.peers[E1].limit_hit


# --- back-pressure and slow members -----------------------------------------------------------


def test_reading_pauses_above_the_backlog_and_resumes_after_drain():
    h = ebgp_pair()
    n = BACKLOG_HIGH + 1
    prefixes = [bytes((32,)) + i.to_bytes(4, "big") for i in range(0x0A000000, 0x0A000000 + n)]
    out = h.rde.receive(h.peers[E1], [Update(attrs=ROUTE, nlri=prefixes)], h.now)
    assert out == [act.PauseReading(h.peers[E1])]
    drained = h.rde.drain(10**7, h.now)
    assert drained.actions == [act.ResumeReading(h.peers[E1])]


def test_a_member_that_takes_nothing_sets_the_slow_deadline():
    h = ebgp_pair()
    h.drain()
    h.links[E2].writable = False
    h.links[E2].unwritable_since = h.now
    h.announce(E1, IPV4, ROUTE, [P1])
    out = h.rde.drain(1000, h.now)
    assert out.more and not out.messages
    assert h.rde.next_deadline() == pytest.approx(h.now + SLOW_AFTER + 0.1)
    h.tick(SLOW_AFTER + 0.1)
    assert h.rde.wants_drain  # look again: the member may now count as slow


def test_removed_peer_leaves_nothing_behind():
    h = ebgp_pair()
    h.announce(E1, IPV4, ROUTE, [P1])
    h.drain()
    peer = h.peers[E1]
    assert peer.cached_on
    h.rde.remove_peer(peer)
    assert h.routes() == {} and E1 not in h.rde.peers
    assert not peer.cached_on and peer.index not in h.rde.exports.holders
    for k in ROUTE.cache:  # ("imp", index, generation) and (context uid, family, index)
        assert not (k[0] == "imp" and k[1] == peer.index), k
        assert not (len(k) == 3 and isinstance(k[1], tuple) and k[2] == peer.index), k
