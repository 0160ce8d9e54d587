"""The route API's engine side (bgpd/rde/origins.py) with plain values and a fake clock:
owners, in-place changes, leases as engine deadlines, export policy, identity changes; and
the rise/fall hysteresis of health-checked services (bgpd/rde/health.py)."""

import pytest
from rde_harness import LOCAL_ADDRESS, Harness
from rib_helpers import IPV4, IPV6, A, P, ip, seq

from bgpd.rde.health import DOWN, UNKNOWN, UP, Hysteresis
from bgpd.rde.origins import (
    API,
    SERVICE,
    RouteError,
    RouteSpec,
    parse_owner,
    parse_prefix,
    route_spec,
)

E1, I1 = "192.0.2.1", "192.0.2.11"
P1, P2 = P("10.0.1.0/24"), P("10.0.2.0/24")
V1 = P("2001:db8:1::/48")
NH = ip("192.0.2.99")


def pair(**top):
    """An eBGP and an iBGP neighbor, both up, initial tables drained."""
    h = Harness([{"address": E1, "asn": 65001}, {"address": I1, "asn": 65000}], **top)
    h.up(E1)
    h.up(I1)
    h.drain()
    for v in h.views.values():
        v.clear_log()
    return h


def add(h, owner, prefix, spec=None, fam=IPV4, **kw):
    return h.rde.route_add(owner, fam, prefix, spec or RouteSpec(), h.now, **kw)


def test_add_announces_to_ebgp_and_ibgp():
    h = pair()
    spec = RouteSpec(next_hop=NH, communities=(65000 << 16 | 1,), local_pref=200, med=7)
    assert add(h, "metallb", P1, spec) == "added"
    h.drain()
    e = h.views[E1].routes[IPV4][P1]
    assert e.as_path == (seq(65000),) and e.next_hop == ip(LOCAL_ADDRESS)
    assert e.local_pref is None and e.med == 7 and e.communities == (65000 << 16 | 1,)
    i = h.views[I1].routes[IPV4][P1]
    assert i.as_path == () and i.next_hop == NH and i.local_pref == 200 and i.med == 7
    src = h.routes()[P1]
    assert src.kind == API and src.name == "metallb"


def test_add_without_next_hop_ipv6_over_ipv4_sessions():
    # Our next hop for IPv6 over an IPv4 session is what the daemon finds (an address of the
    # session's interface, or next_hop_ipv6): without one the route is not sent at all (a
    # v4-mapped next hop is installable by nobody); with one, it is the route's next hop.
    h = pair()
    add(h, "kube-vip", V1, fam=IPV6)
    h.drain()
    assert V1 not in h.views[I1].routes[IPV6] and V1 not in h.views[E1].routes[IPV6]
    h.down(I1)
    ours = ip("2001:db8::1")
    h.up(I1, next_hops={IPV6: ours})
    h.drain()
    assert h.views[I1].routes[IPV6][V1].next_hop == ours


def test_add_again_modifies_in_place_one_update_no_withdraw():
    h = pair()
    add(h, "a", P1, RouteSpec(med=1))
    h.drain()
    for v in h.views.values():
        v.clear_log()
    assert add(h, "a", P1, RouteSpec(med=2, communities=(5,))) == "modified"
    h.drain()
    for v in h.views.values():
        assert v.messages == 1 and v.withdrawn() == [] and v.announced() == [P1]
        assert v.routes[IPV4][P1].med == 2
    # the same attributes again: nothing to send
    for v in h.views.values():
        v.clear_log()
    assert add(h, "a", P1, RouteSpec(med=2, communities=(5,))) == "unchanged"
    h.drain()
    assert all(v.messages == 0 for v in h.views.values())


def test_two_owners_never_remove_each_others_routes():
    h = pair()
    add(h, "a", P1, RouteSpec(local_pref=100))
    add(h, "b", P1, RouteSpec(local_pref=300))
    add(h, "b", P2)
    h.drain()
    assert h.views[I1].routes[IPV4][P1].local_pref == 300  # b's is best
    with pytest.raises(RouteError, match=r"owner 'a' has no route 10.0.2.0/24 \(owned by: b\)"):
        h.rde.route_del("a", IPV4, P2)
    for v in h.views.values():
        v.clear_log()
    h.rde.route_del("b", IPV4, P1)  # a's route for P1 takes over
    h.drain()
    assert h.views[I1].routes[IPV4][P1].local_pref == 100
    assert h.views[I1].withdrawn() == [] and h.views[I1].routes[IPV4].keys() == {P1, P2}
    h.views[I1].clear_log()
    h.rde.route_del("b", IPV4, P2)  # b's last route: the owner is gone
    assert h.rde.origins.names(API) == ["a"]
    with pytest.raises(RouteError, match=r"no owner 'b' has routes \(owners with routes: a\)"):
        h.rde.route_del("b", IPV4, P1)
    h.drain()
    assert h.views[I1].withdrawn() == [P2] and h.views[I1].routes[IPV4].keys() == {P1}


def test_deleting_the_losing_owners_route_withdraws_nothing():
    """The best path stays: no withdrawal, the same route (export groups keep no
    Adj-RIB-Out, so a touched prefix may be announced again unchanged)."""
    h = pair()
    add(h, "a", P1, RouteSpec(local_pref=100))
    add(h, "b", P1, RouteSpec(local_pref=300))
    h.drain()
    before = {a: v.routes[IPV4][P1] for a, v in h.views.items()}
    for v in h.views.values():
        v.clear_log()
    h.rde.route_del("a", IPV4, P1)
    h.drain()
    for a, v in h.views.items():
        assert v.withdrawn() == [] and v.routes[IPV4][P1] is before[a]


def test_equal_owners_tie_break_on_the_owner_name_whatever_the_order():
    for order in (("zeta", "alpha"), ("alpha", "zeta")):
        h = pair()
        for who in order:
            add(h, who, P1, RouteSpec(med=5))
        best = h.rde.rib.loc[IPV4].route(P1)[0]
        assert best.name == "alpha", order


def test_route_api_routes_win_over_bgp_routes_like_networks():
    h = pair()
    h.announce(E1, IPV4, A(as_path=(seq(65001),), next_hop=ip(E1)), [P1])
    add(h, "a", P1)
    assert h.rde.rib.loc[IPV4].route(P1)[0].kind == API
    h.rde.route_del("a", IPV4, P1)
    assert h.rde.rib.loc[IPV4].route(P1)[0].kind == "bgp"


def test_lease_expires_at_its_deadline_and_renewal_moves_it():
    h = pair()
    t0 = h.now
    assert add(h, "ctl", P1, lease=30.0) == "added"
    assert h.rde.next_deadline() == t0 + 30
    h.drain()
    h.tick(20)
    assert add(h, "ctl", P1, lease=30.0) == "renewed"  # same attributes, lease moved
    assert h.rde.next_deadline() == t0 + 50
    h.tick(29)
    assert P1 in h.routes()
    h.drain()
    for v in h.views.values():
        v.clear_log()
    h.tick(1.5)
    assert P1 not in h.routes() and h.rde.origins.names(API) == []
    h.drain()
    assert h.views[E1].withdrawn() == [P1] and h.views[I1].withdrawn() == [P1]
    assert h.rde.next_deadline() is None


def test_lease_of_one_owner_leaves_the_others_route():
    h = pair()
    add(h, "crashed", P1, RouteSpec(local_pref=300), lease=10.0)
    add(h, "steady", P1, RouteSpec(local_pref=100))
    h.drain()
    h.tick(11)
    assert h.routes()[P1].name == "steady"
    h.drain()
    assert h.views[I1].routes[IPV4][P1].local_pref == 100
    assert h.views[I1].withdrawn() == []


def test_adding_without_a_lease_makes_the_route_permanent():
    h = pair()
    add(h, "ctl", P1, lease=5.0)
    assert add(h, "ctl", P1) == "unchanged"
    assert h.rde.next_deadline() is None
    h.tick(3600)
    assert P1 in h.routes()


def test_a_modified_route_keeps_a_lease_given_again():
    h = pair()
    add(h, "ctl", P1, RouteSpec(med=1), lease=5.0)
    h.tick(4)
    assert add(h, "ctl", P1, RouteSpec(med=2), lease=5.0) == "modified"
    h.tick(4)
    assert P1 in h.routes()
    h.tick(2)
    assert P1 not in h.routes()


def test_export_policy_matches_the_source_kinds():
    policies = {
        "no-api": {
            "default": "accept",
            "terms": [{"match": {"source": "api"}, "action": "reject"}],
        },
        "tag-service": {
            "default": "accept",
            "terms": [{"match": {"source": "service"}, "set": {"med": 77}}],
        },
    }
    h = Harness(
        [
            {"address": E1, "asn": 65001, "export": ["no-api", "tag-service"]},
            {"address": I1, "asn": 65000},
        ],
        policies=policies,
    )
    h.up(E1)
    h.up(I1)
    add(h, "a", P1)
    h.rde.route_add("svc", IPV4, P2, RouteSpec(), h.now, kind=SERVICE)
    h.drain()
    assert set(h.views[E1].routes[IPV4]) == {P2} and h.views[E1].routes[IPV4][P2].med == 77
    assert set(h.views[I1].routes[IPV4]) == {P1, P2}


def test_service_and_api_owners_of_one_name_are_apart():
    h = pair()
    add(h, "web", P1)
    h.rde.route_add("web", IPV4, P1, RouteSpec(med=9), h.now, kind=SERVICE)
    h.rde.route_flush("web", kind=SERVICE)
    assert h.routes()[P1].kind == API
    assert h.rde.origins.names(SERVICE) == []


def test_route_flush_keeps_what_it_is_told_to():
    h = pair()
    for p in (P1, P2):
        h.rde.route_add("svc", IPV4, p, RouteSpec(), h.now, kind=SERVICE)
    h.rde.route_flush("svc", kind=SERVICE, keep=[(IPV4, P2)])
    assert set(h.routes()) == {P2}


def test_reload_keeps_them_and_an_as_change_rebuilds_the_prepend():
    h = pair()
    add(h, "a", P1, RouteSpec(as_path_prepend=2))
    h.rde.reconfigure(policies={})
    assert h.routes()[P1].name == "a"
    assert h.routes()[P1].adj_in[IPV4][P1].as_path == (seq(65000, 65000),)
    for addr in list(h.peers):
        h.rde.remove_peer(h.peers[addr])
    h.rde.reset_identity(router_id=bytes([10, 0, 0, 1]), asn=65100, cluster_id=None)
    h.rde.commit()
    src = h.routes()[P1]
    assert src.local_as == 65100 and src.adj_in[IPV4][P1].as_path == (seq(65100, 65100),)


def test_as_path_prepend_is_for_ebgp():
    """eBGP neighbors get our AS N+1 times; iBGP neighbors an empty path (our own AS in it
    would be a loop to them: BIRD and FRR drop such routes)."""
    h = pair()
    add(h, "a", P1, RouteSpec(as_path_prepend=3))
    h.drain()
    assert h.views[E1].routes[IPV4][P1].as_path == (seq(65000, 65000, 65000, 65000),)
    assert h.views[I1].routes[IPV4][P1].as_path == ()


# --- parsing the control socket's arguments ----------------------------------------------------


def test_parse_prefix():
    assert parse_prefix("10.0.1.0/24") == (IPV4, P1, "10.0.1.0/24")
    assert parse_prefix("2001:db8:1::/48")[:2] == (IPV6, V1)
    assert parse_prefix("192.0.2.7")[2] == "192.0.2.7/32"
    with pytest.raises(
        RouteError, match=r"10.0.1.1/24 has host bits set \(did you mean 10.0.1.0/24\?\)"
    ):
        parse_prefix("10.0.1.1/24")
    with pytest.raises(RouteError, match="is not a prefix"):
        parse_prefix("10.0.1.0/33")
    with pytest.raises(RouteError, match="expected a prefix"):
        parse_prefix(17)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"communities": ["65000:x"]}, r"community '65000:x': '65000:x': 'x' is not a number"),
        ({"communities": ["65000"]}, "is not a community"),
        ({"communities": ["70000:1"]}, "70000 is out of range"),
        ({"large_communities": ["1:2"]}, "is not a large community"),
        ({"next_hop": "2001:db8::1"}, "is not an IPv4 address, as the prefix is"),
        ({"next_hop": "224.0.0.1"}, "not a unicast address"),
        ({"next_hop": "nope"}, "is not an IP address"),
        ({"local_pref": -1}, r"local_pref: -1 is out of range"),
        ({"local_pref": "100"}, "expected an integer"),
        ({"med": True}, "expected an integer"),
        ({"as_path_prepend": 33}, r"as_path_prepend: 33 is out of range \(0..32\)"),
    ],
)
def test_route_spec_refuses(kw, message):
    with pytest.raises(RouteError, match=message):
        route_spec(IPV4, **kw)


def test_route_spec_values():
    s = route_spec(
        IPV4,
        next_hop="192.0.2.99",
        communities=["65000:1", "no-export"],
        large_communities="64512:1:2",
        local_pref=0,
        as_path_prepend=1,
    )
    assert s.next_hop == NH and s.communities == (65000 << 16 | 1, 0xFFFFFF01)
    assert s.large_communities == ((64512, 1, 2),) and s.local_pref == 0
    assert s.to_json()["communities"] == ["65000:1", "65535:65281"]


def test_parse_owner():
    assert parse_owner(None) == "default"
    assert parse_owner("metallb/speaker-1") == "metallb/speaker-1"
    for bad in ("", " x", "-x", "x" * 65, "a b", 5):
        with pytest.raises(RouteError):
            parse_owner(bad)


# --- rise/fall ---------------------------------------------------------------------------------


def run(h: Hysteresis, results: str) -> list:
    """Feed ``1``/``0`` results; the state after each."""
    out = []
    for c in results:
        h.result(c == "1")
        out.append(h.state)
    return out


def test_first_result_decides_at_once():
    h = Hysteresis(3, 2)
    assert h.state == UNKNOWN
    assert h.result(True) == UP
    h2 = Hysteresis(3, 2)
    assert h2.result(False) == DOWN


def test_fall_and_rise_need_results_in_a_row():
    h = Hysteresis(3, 2)
    states = run(h, "1" + "0" + "1" + "00" + "11" + "0" + "111")
    assert states == [UP, UP, UP, UP, DOWN, DOWN, DOWN, DOWN, DOWN, DOWN, UP]
    assert h.changes == 2


def test_flapping_is_damped():
    h = Hysteresis(2, 2)
    states = run(h, "1" + "01" * 20)
    assert set(states) == {UP} and h.changes == 0
    h1 = Hysteresis(1, 1)
    run(h1, "1" + "01" * 20)
    assert h1.changes == 40


def test_retune_keeps_state():
    h = Hysteresis(3, 3)
    run(h, "100")
    h.retune(3, 2)
    assert h.state == UP
    h.result(False)
    assert h.state == DOWN
