"""The decision process, one test (or a few) per step of ``bgpd.rib.decision.STEPS``.

Every step test goes through the Loc-RIB (``LocRib.announce`` + ``commit`` + ``route``) and
asserts both the winner and the exact step name recorded on the loser. Where it is cheap, the
winner is made *worse* than the loser on every later step, which shows that the step under
test takes precedence over the rest. Each test runs with the candidates announced in both
orders, so the result never depends on arrival order.
"""

import pytest
from rib_helpers import (
    IPV4,
    LOCAL_AS,
    A,
    P,
    aset,
    cseq,
    cset,
    ebgp,
    ibgp,
    ip,
    path,
    seq,
)

from bgpd.rib import PREFERENCE, STEP_NAMES, DecisionConfig, LocRib, Source
from bgpd.rib.decision import MULTIPATH_LEVEL, STEPS

PFX = P("10.0.0.0/24")


@pytest.fixture(params=["forward", "reverse"])
def order(request):
    return request.param


def decide(routes, order="forward", cfg=None, stale=()):
    """Announce ``routes`` ([(source, attrs)] or [((source, path_id), attrs)]) for PFX."""
    loc = LocRib(IPV4, cfg or DecisionConfig())
    if order == "reverse":
        routes = routes[::-1]
    for who, attrs in routes:
        if isinstance(who, tuple):
            src, pid = who
            loc.announce(src, [(pid, PFX)], attrs)
        else:
            loc.announce(who, [PFX], attrs)
    for src in stale:
        # Marked after the announcements (a re-announcement clears the mark) and before the
        # commit that runs the decision.
        src.stale[IPV4] = {PFX}
    loc.commit()
    return loc.route(PFX)


def lost_steps(route) -> dict:
    return {c: step for c, _attrs, step in route[2]}


def check(route, winner, loser, step):
    best, multipath, rows = route
    assert best == winner, f"best is {best!r}, expected {winner!r}"
    assert multipath[0] == winner
    lost = lost_steps(route)
    assert lost[winner] is None
    assert lost[loser] == step, f"{loser!r} lost at {lost[loser]!r}, expected {step!r}"


def attrs_hook(fn):
    """A decision hook built from a function of the attribute set.

    DecisionConfig documents ``nexthop_ok`` / ``igp_cost`` as ``callable(family, attrs)``, but
    the steps call ``hook(candidate)`` (see the xfail tests below). Accept both calling
    conventions so that these tests check the step itself.
    """

    def hook(*args):
        attrs = args[1] if len(args) == 2 else args[0].attrs
        return fn(attrs)

    return hook


def test_steps_are_in_rfc_order():
    assert STEP_NAMES == (
        "preference",
        "nexthop_unreachable",
        "stale",
        "local_pref",
        "locally_originated",
        "as_path_length",
        "origin",
        "med",
        "ebgp_over_ibgp",
        "igp_cost",
        "router_id",
        "cluster_list_length",
        "peer_address",
        "path_id",
    )
    assert tuple(name for name, _ in STEPS) == STEP_NAMES
    assert STEP_NAMES[MULTIPATH_LEVEL] == "igp_cost"


def test_single_candidate_is_its_own_best():
    s = ebgp("e1")
    attrs = A(as_path=(seq(65001),), next_hop=ip("192.0.2.1"))
    best, multipath, rows = decide([(s, attrs)])
    assert best is s
    assert multipath == (s,)
    assert rows == [(s, attrs, None)]


# --- preference (per source kind) -------------------------------------------------------------


def test_preference_defaults():
    assert PREFERENCE["kernel"] == 10
    assert PREFERENCE["bgp"] == 100
    assert PREFERENCE["static"] == 200
    assert PREFERENCE["connected"] == 240
    assert Source("k", "kernel").preference == 10
    assert Source("b", "bgp").preference == 100
    assert Source("s", "static").preference == 200
    assert Source("c", "connected").preference == 240


@pytest.mark.parametrize(
    "worse_kind, better_kind",
    [("kernel", "bgp"), ("bgp", "static"), ("static", "connected"), ("kernel", "connected")],
)
def test_preference_by_source_kind(order, worse_kind, better_kind):
    def make(kind):
        if kind == "bgp":
            return ebgp("bgp"), A(as_path=(seq(65001),), next_hop=ip("192.0.2.1"), local_pref=900)
        return Source(kind, kind, local_as=LOCAL_AS), A(origin=2, next_hop=ip("10.1.1.1"))

    worse, worse_attrs = make(worse_kind)
    better, better_attrs = make(better_kind)
    r = decide([(worse, worse_attrs), (better, better_attrs)], order)
    check(r, better, worse, "preference")


def test_preference_all_kinds_at_once(order):
    k = Source("k", "kernel")
    b = ebgp("b")
    s = Source("s", "static")
    c = Source("c", "connected")
    routes = [
        (k, A(next_hop=ip("10.0.0.1"))),
        (b, A(as_path=(seq(65001),), next_hop=ip("192.0.2.1"))),
        (s, A(next_hop=ip("10.0.0.2"))),
        (c, A()),
    ]
    r = decide(routes, order)
    assert r[0] is c
    assert lost_steps(r) == {c: None, k: "preference", b: "preference", s: "preference"}


def test_preference_of_the_route_overrides_its_source(order):
    """An import filter's ``preference = 200`` (BIRD; Calico gives a BGP route with a high
    LOCAL_PREF 200 so that it beats a local workload route) travels on the attribute set
    and wins over the source's preference; the set stays one set on the wire."""
    kernel = Source("k", "kernel", local_as=LOCAL_AS)
    static = Source("s", "static", local_as=LOCAL_AS)  # 200 by kind
    b = ebgp("b")
    plain = A(as_path=(seq(65001),), next_hop=ip("192.0.2.1"))
    preferred = plain.replace(preference=250)
    assert preferred is not plain and preferred.preference == 250 and plain.preference is None
    r = decide([(static, A(next_hop=ip("10.0.0.2"))), (b, preferred)], order)
    check(r, b, static, "preference")
    demoted = plain.replace(preference=5)  # below the kernel's 10
    r = decide([(kernel, A(next_hop=ip("10.0.0.1"))), (b, demoted)], order)
    check(r, kernel, b, "preference")


def test_preference_override_per_source(order):
    kernel = Source("k", "kernel", preference=250)
    connected = Source("c", "connected")
    r = decide([(kernel, A(next_hop=ip("10.0.0.1"))), (connected, A())], order)
    check(r, kernel, connected, "preference")


# --- next-hop reachability --------------------------------------------------------------------


def test_nexthop_unreachable_loses(order):
    bad_nh = ip("10.9.9.9")
    cfg = DecisionConfig(nexthop_ok=attrs_hook(lambda a: a.next_hop != bad_nh))
    good, bad = ibgp("good"), ibgp("bad")
    r = decide(
        [
            (good, A(next_hop=ip("10.1.1.1"), local_pref=50, origin=2)),
            (bad, A(next_hop=bad_nh, local_pref=200)),
        ],
        order,
        cfg,
    )
    check(r, good, bad, "nexthop_unreachable")


def test_nexthop_hook_absent_means_every_next_hop_is_fine(order):
    a, b = ibgp("a"), ibgp("b")
    r = decide(
        [(a, A(next_hop=ip("10.1.1.1"), local_pref=50)), (b, A(next_hop=ip("10.9.9.9")))],
        order,
    )
    check(r, b, a, "local_pref")


def test_nexthop_hook_documented_signature(order):
    seen = []

    def ok(family, attrs):
        seen.append(family)
        return attrs.next_hop != ip("10.9.9.9")

    good, bad = ibgp("good"), ibgp("bad")
    r = decide(
        [(good, A(next_hop=ip("10.1.1.1"))), (bad, A(next_hop=ip("10.9.9.9"), local_pref=200))],
        order,
        DecisionConfig(nexthop_ok=ok),
    )
    check(r, good, bad, "nexthop_unreachable")
    assert set(seen) == {IPV4}


# --- stale (graceful restart) -----------------------------------------------------------------


def test_stale_loses_to_fresh(order):
    fresh, old = ibgp("fresh"), ibgp("restarting")
    r = decide(
        [
            (fresh, A(next_hop=ip("10.1.1.1"), local_pref=50, origin=2)),
            (old, A(next_hop=ip("10.1.1.2"), local_pref=200)),
        ],
        order,
        stale=[old],
    )
    check(r, fresh, old, "stale")


# --- LOCAL_PREF -------------------------------------------------------------------------------


def test_highest_local_pref_wins(order):
    hi, lo = ibgp("hi"), ebgp("lo")
    r = decide(
        [
            # worse on every later step: longer path, INCOMPLETE, iBGP
            (
                hi,
                A(
                    as_path=(seq(65001, 1, 2, 3),),
                    origin=2,
                    next_hop=ip("10.1.1.1"),
                    local_pref=200,
                ),
            ),
            (lo, A(as_path=(seq(65001),), next_hop=ip("192.0.2.1"), local_pref=100)),
        ],
        order,
    )
    check(r, hi, lo, "local_pref")


@pytest.mark.parametrize("other_lp, missing_wins", [(99, True), (101, False)])
def test_missing_local_pref_counts_as_100(order, other_lp, missing_wins):
    missing, other = ibgp("missing"), ibgp("other")
    r = decide(
        [
            (missing, A(next_hop=ip("10.1.1.1"), origin=1 if missing_wins else 0)),
            (
                other,
                A(next_hop=ip("10.1.1.2"), local_pref=other_lp, origin=0 if missing_wins else 1),
            ),
        ],
        order,
    )
    if missing_wins:
        check(r, missing, other, "local_pref")
    else:
        check(r, other, missing, "local_pref")


def test_missing_local_pref_ties_with_100(order):
    missing, explicit = ibgp("missing"), ibgp("explicit")
    r = decide(
        [
            (missing, A(next_hop=ip("10.1.1.1"), origin=2)),
            (explicit, A(next_hop=ip("10.1.1.2"), local_pref=100, origin=0)),
        ],
        order,
    )
    check(r, explicit, missing, "origin")


# --- locally originated -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["local", "static", "kernel", "connected"])
def test_locally_originated_beats_learned(order, kind):
    # Same preference as BGP, so the preference step ties and this step decides.
    local = Source("net", kind, local_as=LOCAL_AS, preference=100)
    learned = ibgp("learned")
    r = decide(
        [
            (local, A(origin=2, as_path=(seq(1, 2, 3),))),  # worse on every later step
            (learned, A(next_hop=ip("10.1.1.1"))),
        ],
        order,
    )
    check(r, local, learned, "locally_originated")


# --- AS_PATH length ---------------------------------------------------------------------------


def test_shortest_as_path_wins(order):
    short, long = ibgp("short"), ebgp("long")
    r = decide(
        [
            (short, A(as_path=(seq(65001, 7),), origin=2, next_hop=ip("10.1.1.1"))),
            (long, A(as_path=(seq(65001, 7, 8),), next_hop=ip("192.0.2.1"))),
        ],
        order,
    )
    check(r, short, long, "as_path_length")


def test_as_set_counts_one(order):
    with_set, plain = ebgp("set"), ebgp("plain")
    r = decide(
        [
            (
                with_set,
                A(as_path=path(seq(65001), aset(1, 2, 3, 4)), origin=2, next_hop=ip("192.0.2.1")),
            ),
            (plain, A(as_path=(seq(65001, 1, 2),), next_hop=ip("192.0.2.2"))),
        ],
        order,
    )
    check(r, with_set, plain, "as_path_length")


def test_as_set_ties_with_one_as(order):
    with_set, plain = ebgp("set"), ebgp("plain")
    r = decide(
        [
            (
                with_set,
                A(as_path=path(seq(65001), aset(1, 2, 3)), origin=2, next_hop=ip("192.0.2.1")),
            ),
            (plain, A(as_path=(seq(65001, 1),), next_hop=ip("192.0.2.2"))),
        ],
        order,
    )
    check(r, plain, with_set, "origin")


@pytest.mark.parametrize("confed", [cseq(64512, 64513, 64514), cset(64512, 64513)])
def test_confederation_segments_count_zero(order, confed):
    c, plain = ibgp("confed"), ibgp("plain")
    r = decide(
        [
            (c, A(as_path=path(confed, seq(65001)), origin=2, next_hop=ip("10.1.1.1"))),
            (plain, A(as_path=(seq(65001, 1),), next_hop=ip("10.1.1.2"))),
        ],
        order,
    )
    check(r, c, plain, "as_path_length")


def test_ignore_as_path_length(order):
    short, long = ebgp("short"), ebgp("long")
    r = decide(
        [
            (short, A(as_path=(seq(65001),), origin=2, next_hop=ip("192.0.2.1"))),
            (long, A(as_path=(seq(65001, 1, 2, 3),), origin=0, next_hop=ip("192.0.2.2"))),
        ],
        order,
        DecisionConfig(ignore_as_path_length=True),
    )
    check(r, long, short, "origin")


# --- ORIGIN -----------------------------------------------------------------------------------


@pytest.mark.parametrize("better, worse", [(0, 1), (1, 2), (0, 2)])
def test_lowest_origin_wins(order, better, worse):
    b, w = ibgp("b"), ebgp("w")
    r = decide(
        [
            # same neighbor AS, so MED counts: the winner has the worse MED, and is iBGP
            (b, A(as_path=(seq(65001, 1),), origin=better, med=500, next_hop=ip("10.1.1.1"))),
            (w, A(as_path=(seq(65001, 2),), origin=worse, med=0, next_hop=ip("192.0.2.1"))),
        ],
        order,
    )
    check(r, b, w, "origin")


# --- MED ----------------------------------------------------------------------------------------


def test_lowest_med_from_same_neighbor_as(order):
    lo, hi = ibgp("lo"), ebgp("hi")
    r = decide(
        [
            (lo, A(as_path=(seq(65001, 1),), med=10, next_hop=ip("10.1.1.1"))),  # iBGP: worse later
            (hi, A(as_path=(seq(65001, 2),), med=20, next_hop=ip("192.0.2.1"))),
        ],
        order,
    )
    check(r, lo, hi, "med")


def test_missing_med_is_zero(order):
    missing, some = ebgp("missing"), ebgp("some")
    r = decide(
        [
            (missing, A(as_path=(seq(65001),), next_hop=ip("192.0.2.1"))),
            (some, A(as_path=(seq(65001),), med=1, next_hop=ip("192.0.2.2"))),
        ],
        order,
    )
    check(r, missing, some, "med")


def test_med_ignored_between_different_neighbor_as(order):
    lo_med = ebgp("lo_med", 65001, router_id="10.0.0.9")
    hi_med = ebgp("hi_med", 65002, router_id="10.0.0.1")
    r = decide(
        [
            (lo_med, A(as_path=(seq(65001),), med=10, next_hop=ip("192.0.2.1"))),
            (hi_med, A(as_path=(seq(65002),), med=20, next_hop=ip("192.0.2.2"))),
        ],
        order,
    )
    check(r, hi_med, lo_med, "router_id")


def test_always_compare_med(order):
    lo_med = ebgp("lo_med", 65001, router_id="10.0.0.9")
    hi_med = ebgp("hi_med", 65002, router_id="10.0.0.1")
    r = decide(
        [
            (lo_med, A(as_path=(seq(65001),), med=10, next_hop=ip("192.0.2.1"))),
            (hi_med, A(as_path=(seq(65002),), med=20, next_hop=ip("192.0.2.2"))),
        ],
        order,
        DecisionConfig(always_compare_med=True),
    )
    check(r, lo_med, hi_med, "med")


def test_med_neighbor_as_skips_confederation_segments(order):
    # Both came from AS 65001; one crossed a confederation member on the way.
    via_confed = ibgp("via_confed", router_id="10.0.0.9")
    direct = ibgp("direct", router_id="10.0.0.1")
    r = decide(
        [
            (
                via_confed,
                A(as_path=path(cseq(64512), seq(65001, 1)), med=10, next_hop=ip("10.1.1.1")),
            ),
            (direct, A(as_path=(seq(65001, 2),), med=20, next_hop=ip("10.1.1.2"))),
        ],
        order,
    )
    check(r, via_confed, direct, "med")


def test_med_compared_between_routes_from_our_own_as(order):
    lo_med = ibgp("lo_med", router_id="10.0.0.9")
    hi_med = ibgp("hi_med", router_id="10.0.0.1")
    r = decide(
        [
            (lo_med, A(med=10, next_hop=ip("10.1.1.1"))),
            (hi_med, A(med=20, next_hop=ip("10.1.1.2"))),
        ],
        order,
    )
    check(r, lo_med, hi_med, "med")


# --- eBGP over iBGP ---------------------------------------------------------------------------


def test_ebgp_over_ibgp(order):
    e = ebgp("e", router_id="10.0.0.9")
    i = ibgp("i", router_id="10.0.0.1")
    attrs = dict(as_path=(seq(65001),), next_hop=ip("192.0.2.1"))
    r = decide([(e, A(**attrs)), (i, A(**attrs, local_pref=100))], order)
    check(r, e, i, "ebgp_over_ibgp")


# --- IGP cost -----------------------------------------------------------------------------------


def test_lowest_igp_cost_wins_source_cost(order):
    near = ibgp("near", router_id="10.0.0.9")
    far = ibgp("far", router_id="10.0.0.1")
    near.igp_cost = 10
    far.igp_cost = 20
    r = decide([(near, A(next_hop=ip("10.1.1.1"))), (far, A(next_hop=ip("10.1.1.2")))], order)
    check(r, near, far, "igp_cost")


def test_lowest_igp_cost_wins_hook(order):
    costs = {ip("10.1.1.1"): 5, ip("10.1.1.2"): 3}
    cfg = DecisionConfig(igp_cost=attrs_hook(lambda a: costs[a.next_hop]))
    far = ibgp("far", router_id="10.0.0.1")
    near = ibgp("near", router_id="10.0.0.9")
    far.igp_cost = 0  # the hook replaces the per-source cost
    near.igp_cost = 100
    r = decide([(far, A(next_hop=ip("10.1.1.1"))), (near, A(next_hop=ip("10.1.1.2")))], order, cfg)
    check(r, near, far, "igp_cost")


def test_igp_cost_hook_documented_signature(order):
    costs = {ip("10.1.1.1"): 5, ip("10.1.1.2"): 3}
    far = ibgp("far", router_id="10.0.0.1")
    near = ibgp("near", router_id="10.0.0.9")
    r = decide(
        [(far, A(next_hop=ip("10.1.1.1"))), (near, A(next_hop=ip("10.1.1.2")))],
        order,
        DecisionConfig(igp_cost=lambda family, attrs: costs[attrs.next_hop]),
    )
    check(r, near, far, "igp_cost")


# --- router id / ORIGINATOR_ID ----------------------------------------------------------------


def test_lowest_router_id_wins(order):
    lo = ibgp("lo", router_id="10.0.0.1", address="192.0.2.200")
    hi = ibgp("hi", router_id="10.0.0.2", address="192.0.2.100")
    r = decide(
        [
            (lo, A(next_hop=ip("10.1.1.1"), cluster_list=(ip("1.1.1.1"), ip("2.2.2.2")))),
            (hi, A(next_hop=ip("10.1.1.2"))),
        ],
        order,
    )
    check(r, lo, hi, "router_id")


def test_router_id_compared_as_number_not_text(order):
    lo = ibgp("lo", router_id="9.0.0.1")
    hi = ibgp("hi", router_id="10.0.0.1")
    r = decide([(lo, A(next_hop=ip("10.1.1.1"))), (hi, A(next_hop=ip("10.1.1.2")))], order)
    check(r, lo, hi, "router_id")


def test_originator_id_replaces_router_id(order):
    # RFC 4456 §9: a reflected route is compared by its ORIGINATOR_ID.
    reflected = ibgp("rr", router_id="10.0.0.1")  # lowest router id, but...
    direct = ibgp("direct", router_id="10.0.0.5")
    r = decide(
        [
            (reflected, A(next_hop=ip("10.1.1.1"), originator_id=ip("10.0.0.9"))),
            (direct, A(next_hop=ip("10.1.1.2"))),
        ],
        order,
    )
    check(r, direct, reflected, "router_id")


def test_originator_id_lower_than_router_id(order):
    reflected = ibgp("rr", router_id="10.0.0.9")
    direct = ibgp("direct", router_id="10.0.0.5")
    r = decide(
        [
            (reflected, A(next_hop=ip("10.1.1.1"), originator_id=ip("10.0.0.2"))),
            (direct, A(next_hop=ip("10.1.1.2"))),
        ],
        order,
    )
    check(r, reflected, direct, "router_id")


# --- CLUSTER_LIST length ----------------------------------------------------------------------


def test_shorter_cluster_list_wins(order):
    # The same client's route reflected over two paths: ORIGINATOR_ID ties the router-id step.
    short = ibgp("rr1", router_id="10.0.0.2", address="192.0.2.200")
    long = ibgp("rr2", router_id="10.0.0.1", address="192.0.2.100")
    orig = ip("10.0.0.50")
    r = decide(
        [
            (short, A(next_hop=ip("10.1.1.1"), originator_id=orig, cluster_list=(ip("1.1.1.1"),))),
            (
                long,
                A(
                    next_hop=ip("10.1.1.1"),
                    originator_id=orig,
                    cluster_list=(ip("2.2.2.2"), ip("1.1.1.1")),
                ),
            ),
        ],
        order,
    )
    check(r, short, long, "cluster_list_length")


# --- neighbor address -------------------------------------------------------------------------


def test_lowest_neighbor_address_wins(order):
    lo = ibgp("lo", router_id="10.0.0.2", address="192.0.2.10")
    hi = ibgp("hi", router_id="10.0.0.1", address="192.0.2.20")
    orig = ip("10.0.0.50")
    cl = (ip("1.1.1.1"),)
    r = decide(
        [
            (lo, A(next_hop=ip("10.1.1.1"), originator_id=orig, cluster_list=cl)),
            (hi, A(next_hop=ip("10.1.1.1"), originator_id=orig, cluster_list=(ip("2.2.2.2"),))),
        ],
        order,
    )
    check(r, lo, hi, "peer_address")


def test_neighbor_address_compared_numerically(order):
    lo = ibgp("lo", router_id="10.0.0.2", address="192.0.2.9")
    hi = ibgp("hi", router_id="10.0.0.1", address="192.0.2.10")
    orig = ip("10.0.0.50")
    r = decide(
        [
            (lo, A(next_hop=ip("10.1.1.1"), originator_id=orig)),
            (hi, A(next_hop=ip("10.1.1.1"), originator_id=orig)),
        ],
        order,
    )
    check(r, lo, hi, "peer_address")


# --- path id (ADD-PATH) -----------------------------------------------------------------------


def test_lowest_path_id_wins(order):
    s = ibgp("addpath", addpath={IPV4})
    attrs = A(next_hop=ip("10.1.1.1"))
    r = decide([((s, 7), attrs), ((s, 3), attrs)], order)
    best = r[0]
    assert best.source is s and best.pid == 3
    loser = next(c for c, _a, _s in r[2] if c.pid == 7)
    check(r, best, loser, "path_id")


# --- several candidates -----------------------------------------------------------------------


def test_each_loser_records_the_step_that_beat_it(order):
    best = ebgp("best", router_id="10.0.0.1")
    by_lp = ibgp("by_lp")
    by_path = ebgp("by_path")
    by_origin = ebgp("by_origin")
    by_rid = ebgp("by_rid", router_id="10.0.0.2")
    base = dict(as_path=(seq(65001),), next_hop=ip("192.0.2.1"))
    r = decide(
        [
            (by_lp, A(**base, local_pref=50)),
            (by_path, A(as_path=(seq(65001, 1),), next_hop=ip("192.0.2.1"))),
            (best, A(**base)),
            (by_origin, A(**{**base, "origin": 1})),
            (by_rid, A(**base)),
        ],
        order,
    )
    assert r[0] is best
    assert lost_steps(r) == {
        best: None,
        by_lp: "local_pref",
        by_path: "as_path_length",
        by_origin: "origin",
        by_rid: "router_id",
    }


# --- ECMP -------------------------------------------------------------------------------------


def ecmp_routes(n, asns=None):
    """``n`` eBGP routes equal up to the IGP-cost step, distinct next hops, increasing rid."""
    out = []
    for i in range(n):
        asn = asns[i] if asns else 65001
        s = ebgp(f"e{i}", asn, router_id=f"10.0.0.{i + 1}")
        out.append((s, A(as_path=(seq(asn, 100),), next_hop=ip(f"192.0.2.{i + 1}"))))
    return out


def test_default_multipath_is_a_single_path(order):
    routes = ecmp_routes(3)
    r = decide(routes, order)
    assert r[1] == (routes[0][0],)


def test_multipath_set_holds_equal_paths_best_first(order):
    routes = ecmp_routes(3)
    r = decide(routes, order, DecisionConfig(multipath=4))
    best = routes[0][0]
    assert r[0] is best
    assert r[1][0] is best
    assert set(r[1]) == {s for s, _a in routes}
    assert len(r[1]) == 3
    # they still lost (at the router id step) for the single best path
    assert lost_steps(r) == {best: None, routes[1][0]: "router_id", routes[2][0]: "router_id"}


def test_multipath_capped_at_n(order):
    routes = ecmp_routes(4)
    r = decide(routes, order, DecisionConfig(multipath=2))
    assert len(r[1]) == 2
    assert r[1][0] is routes[0][0]
    assert set(r[1]) <= {s for s, _a in routes}


def test_multipath_needs_equal_as_path(order):
    routes = ecmp_routes(2, asns=[65001, 65002])
    r = decide(routes, order, DecisionConfig(multipath=4))
    assert r[1] == (routes[0][0],)


def test_multipath_relax_allows_different_as_paths_of_equal_length(order):
    routes = ecmp_routes(2, asns=[65001, 65002])
    r = decide(routes, order, DecisionConfig(multipath=4, multipath_relax=True))
    assert set(r[1]) == {s for s, _a in routes}
    assert r[1][0] is routes[0][0]


def test_multipath_excludes_paths_worse_at_igp_cost_or_before(order):
    routes = ecmp_routes(3)
    routes[1][0].igp_cost = 10  # worse at igp_cost
    s2, a2 = routes[2]
    routes[2] = (s2, a2.replace(origin=1))  # worse at origin
    r = decide(routes, order, DecisionConfig(multipath=4))
    assert r[1] == (routes[0][0],)
    assert lost_steps(r)[routes[1][0]] == "igp_cost"
    assert lost_steps(r)[routes[2][0]] == "origin"


def test_multipath_does_not_duplicate_the_best_next_hop(order):
    routes = ecmp_routes(2)
    s1, a1 = routes[1]
    routes[1] = (s1, a1.replace(next_hop=routes[0][1].next_hop))
    r = decide(routes, order, DecisionConfig(multipath=4))
    assert r[1] == (routes[0][0],)


def test_multipath_does_not_duplicate_any_next_hop(order):
    routes = ecmp_routes(3)
    s2, a2 = routes[2]
    routes[2] = (s2, a2.replace(next_hop=routes[1][1].next_hop))
    r = decide(routes, order, DecisionConfig(multipath=4))
    attrs = {c: a for c, a, _step in r[2]}
    nexthops = [attrs[c].next_hop for c in r[1]]
    assert len(r[1]) == 2
    assert len(set(nexthops)) == len(nexthops)


def test_multipath_follows_withdrawals():
    cfg = DecisionConfig(multipath=4)
    loc = LocRib(IPV4, cfg)
    routes = ecmp_routes(3)
    for s, a in routes:
        loc.announce(s, [PFX], a)
    loc.commit()
    assert len(loc.route(PFX)[1]) == 3
    loc.withdraw(routes[0][0], [PFX])
    loc.commit()
    best, multipath, _rows = loc.route(PFX)
    assert best is routes[1][0]
    assert set(multipath) == {routes[1][0], routes[2][0]}
    loc.withdraw(routes[2][0], [PFX])
    loc.commit()
    assert loc.route(PFX)[:2] == (routes[1][0], (routes[1][0],))


def test_multipath_set_does_not_depend_on_arrival_order():
    """More equal paths than the multipath limit: the next best ones (router ID, then the
    later steps) are used, whatever order they came in, as a clean start would pick them."""

    def routes():
        out = ecmp_routes(6)  # fresh sources: each holds its own Adj-RIB-In
        s4, a4 = out[4]
        out[4] = (s4, a4.replace(next_hop=out[1][1].next_hop))  # a next hop already used
        return out

    for perm in ([0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [3, 5, 1, 4, 0, 2], [2, 4, 5, 3, 0, 1]):
        rs = routes()
        r = decide([rs[k] for k in perm], cfg=DecisionConfig(multipath=3))
        assert r[1] == (rs[0][0], rs[1][0], rs[2][0]), perm
    # the same after paths come and go
    rs = routes()
    loc = LocRib(IPV4, DecisionConfig(multipath=3))
    for s, a in rs[::-1]:
        loc.announce(s, [PFX], a)
        loc.commit()
    loc.withdraw(rs[1][0], [PFX])
    loc.commit()
    assert loc.route(PFX)[1] == (rs[0][0], rs[2][0], rs[3][0])
    loc.announce(rs[1][0], [PFX], rs[1][1])
    loc.commit()
    assert loc.route(PFX)[1] == (rs[0][0], rs[1][0], rs[2][0])
