"""Adj-RIB-In and Loc-RIB bookkeeping: implicit withdraw, Dest creation and collapse, flush,
ADD-PATH receive, the touched map handed to listeners, stale routes."""

import pytest
from rib_helpers import IPV4, IPV6, A, P, Recorder, ebgp, ibgp, ip, seq

from bgpd.rib import (
    DecisionConfig,
    Dest,
    LocRib,
    Path,
    Rib,
    Route,
    Source,
    best_of,
    candidates_of,
    multipath_of,
)

P1 = P("10.0.1.0/24")
P2 = P("10.0.2.0/24")
P3 = P("10.0.3.0/24")

GOOD = A(as_path=(seq(65001),), next_hop=ip("192.0.2.1"), local_pref=200)
OK = A(as_path=(seq(65001),), next_hop=ip("192.0.2.2"), local_pref=100)
POOR = A(as_path=(seq(65001),), next_hop=ip("192.0.2.3"), local_pref=50)


@pytest.fixture
def loc():
    t = LocRib(IPV4, DecisionConfig())
    t.rec = Recorder()
    t.listeners.append(t.rec)
    return t


def best(loc, p):
    r = loc.route(p)
    return None if r is None else r[0]


def entries(loc) -> dict:
    """The Loc-RIB with each single-candidate entry (a Route) shown as its candidate."""
    return {p: e.cand if type(e) is Route else e for p, e in loc.table.items()}


def single(loc, p):
    """The candidate of a single-candidate entry (a Route shared by its UPDATE's prefixes)."""
    e = loc.table[p]
    assert type(e) is Route
    return e.cand


def attrs_of(loc, p):
    b, _mp, rows = loc.route(p)
    return next(a for c, a, _s in rows if c == b)


# --- single source ----------------------------------------------------------------------------


def test_announce_stores_the_source_itself_as_the_entry(loc):
    s = ibgp("s")
    loc.announce(s, [P1, P2], OK)
    loc.commit()
    assert single(loc, P1) is s and single(loc, P2) is s
    assert loc.table[P1] is loc.table[P2]  # one Route for the UPDATE's prefixes
    assert s.adj_in[IPV4] == {P1: OK, P2: OK}
    assert loc.route(P1) == (s, (s,), [(s, OK, None)])
    assert len(loc) == 2
    assert loc.route(P3) is None


def test_implicit_withdraw_replaces_attributes(loc):
    s = ibgp("s")
    loc.announce(s, [P1], OK)
    loc.commit()
    loc.announce(s, [P1], GOOD)
    touched = loc.commit()
    assert touched == {P1: s}
    assert s.adj_in[IPV4][P1] is GOOD
    assert loc.route(P1) == (s, (s,), [(s, GOOD, None)])


def test_reannounce_with_the_same_set_is_not_a_change(loc):
    s = ibgp("s")
    loc.announce(s, [P1], OK)
    loc.commit()
    n = len(loc.rec.calls)
    loc.announce(s, [P1], OK)
    assert loc.commit() == {}
    assert len(loc.rec.calls) == n


def test_withdraw_of_unknown_prefix_is_harmless(loc):
    s, other = ibgp("s"), ibgp("other")
    loc.announce(other, [P1], OK)
    loc.commit()
    calls = len(loc.rec.calls)
    loc.withdraw(s, [P1, P2])  # s never announced either
    loc.withdraw(other, [P3])
    assert loc.commit() == {}
    assert len(loc.rec.calls) == calls
    assert entries(loc) == {P1: other}
    assert s.adj_in[IPV4] == {}


def test_withdraw_removes_the_prefix(loc):
    s = ibgp("s")
    loc.announce(s, [P1, P2], OK)
    loc.commit()
    loc.withdraw(s, [P1])
    assert loc.commit() == {P1: s}
    assert P1 not in loc.table and single(loc, P2) is s
    assert P1 not in s.adj_in[IPV4]


# --- two sources -------------------------------------------------------------------------------


def test_two_sources_make_a_dest_and_collapse_back(loc):
    a, b = ibgp("a"), ibgp("b")
    loc.announce(a, [P1], OK)
    loc.announce(b, [P1], GOOD)
    loc.commit()
    entry = loc.table[P1]
    assert type(entry) is Dest
    assert set(candidates_of(entry)) == {a, b}
    assert best_of(entry) is b
    assert set(candidates_of(entry)) == {a, b}
    assert multipath_of(entry) == (b,)

    loc.withdraw(b, [P1])
    loc.commit()
    assert single(loc, P1) is a  # a single candidate again, no Dest
    assert loc.route(P1) == (a, (a,), [(a, OK, None)])


def test_implicit_withdraw_in_a_dest_does_not_duplicate_the_candidate(loc):
    a, b = ibgp("a"), ibgp("b")
    loc.announce(a, [P1], GOOD)
    loc.announce(b, [P1], OK)
    loc.commit()
    loc.announce(a, [P1], POOR)  # a's new attributes replace the old ones
    touched = loc.commit()
    assert touched == {P1: a}
    entry = loc.table[P1]
    assert len(entry.cands) == 2
    assert best(loc, P1) is b
    assert dict((c, s) for c, _a, s in loc.route(P1)[2]) == {a: "local_pref", b: None}


def test_best_switches_when_the_better_path_is_withdrawn(loc):
    a, b, c = ibgp("a"), ibgp("b"), ibgp("c")
    loc.announce(a, [P1], GOOD)
    loc.announce(b, [P1], OK)
    loc.announce(c, [P1], POOR)
    loc.commit()
    assert best(loc, P1) is a
    loc.withdraw(a, [P1])
    assert loc.commit() == {P1: a}
    assert best(loc, P1) is b
    assert type(loc.table[P1]) is Dest
    loc.withdraw(b, [P1])
    assert loc.commit() == {P1: b}
    assert single(loc, P1) is c


def test_candidate_helpers_on_empty_entry():
    assert best_of(None) is None
    assert candidates_of(None) == []
    assert multipath_of(None) == ()


# --- flush -------------------------------------------------------------------------------------


def test_flush_withdraws_everything_of_one_source(loc):
    a, b = ibgp("a"), ibgp("b")
    loc.announce(a, [P1, P2], GOOD)
    loc.announce(b, [P2, P3], OK)
    loc.commit()
    loc.flush(a)
    touched = loc.commit()
    assert touched == {P1: a, P2: a}
    assert a.adj_in[IPV4] == {}
    assert P1 not in loc.table
    assert single(loc, P2) is b and single(loc, P3) is b
    loc.flush(a)  # again: nothing left
    assert loc.commit() == {}


def test_rib_flush_per_family():
    """Receiving goes through the route engine (tests/rde/test_engine.py); this is the
    RIB's own per-family flush."""
    rib = Rib()
    s = ebgp("e")
    v6 = P("2001:db8:1::/48")
    rib.loc[IPV4].announce(s, [P1, P2], OK)
    rib.loc[IPV6].announce(s, [v6], A(as_path=(seq(65001),), next_hop=ip("2001:db8::1")))
    rib.commit()
    rib.flush(s, families=[IPV6])
    rib.commit()
    assert rib.loc[IPV6].table == {} and set(rib.loc[IPV4].table) == {P1, P2}
    rib.flush(s)
    rib.commit()
    assert rib.loc[IPV4].table == {}


# --- ADD-PATH receive --------------------------------------------------------------------------


def test_addpath_paths_are_separate_candidates(loc):
    s = ibgp("s", addpath={IPV4})
    loc.announce(s, [(1, P1), (2, P1), (1, P2)], OK)
    loc.announce(s, [(3, P1)], GOOD)
    loc.commit()
    assert set(s.adj_in[IPV4]) == {(1, P1), (2, P1), (3, P1), (1, P2)}
    entry = loc.table[P1]
    assert type(entry) is Dest
    assert set(candidates_of(entry)) == {Path(s, 1), Path(s, 2), Path(s, 3)}
    assert best(loc, P1) == Path(s, 3)
    # the same path id on another prefix is the same Path object (one per source and id)
    assert single(loc, P2) is s.paths[1]
    assert s.paths[1] in candidates_of(entry)
    lost = {c: step for c, _a, step in loc.route(P1)[2]}
    assert lost == {Path(s, 3): None, Path(s, 1): "local_pref", Path(s, 2): "local_pref"}


def test_addpath_implicit_withdraw_is_per_path(loc):
    s = ibgp("s", addpath={IPV4})
    loc.announce(s, [(1, P1), (2, P1)], OK)
    loc.commit()
    loc.announce(s, [(2, P1)], GOOD)
    loc.announce(s, [(1, P1)], POOR)
    loc.commit()
    assert len(loc.table[P1].cands) == 2
    assert best(loc, P1) == Path(s, 2)
    assert s.adj_in[IPV4] == {(1, P1): POOR, (2, P1): GOOD}


def test_addpath_withdraw_one_path_and_collapse(loc):
    s = ibgp("s", addpath={IPV4})
    other = ebgp("other")
    loc.announce(s, [(1, P1), (2, P1)], OK)
    loc.announce(other, [P1], POOR)
    loc.commit()
    loc.withdraw(s, [(2, P1), (9, P1)])  # (9, P1) was never announced
    loc.commit()
    assert set(candidates_of(loc.table[P1])) == {Path(s, 1), other}
    assert best(loc, P1) == Path(s, 1)
    loc.withdraw(s, [(1, P1)])
    loc.commit()
    assert single(loc, P1) is other


def test_addpath_flush(loc):
    s = ibgp("s", addpath={IPV4})
    loc.announce(s, [(1, P1), (2, P1), (1, P2)], OK)
    loc.commit()
    loc.flush(s)
    assert set(loc.commit()) == {P1, P2}
    assert loc.table == {} and s.adj_in[IPV4] == {}


def test_addpath_single_path_is_the_entry(loc):
    s = ibgp("s", addpath={IPV4})
    loc.announce(s, [(5, P1)], OK)
    loc.commit()
    entry = single(loc, P1)
    assert type(entry) is Path and entry == Path(s, 5)
    assert loc.route(P1) == (entry, (entry,), [(entry, OK, None)])


# --- the touched map -------------------------------------------------------------------------


def test_touched_map_holds_the_best_before_the_batch(loc):
    a, b, c = ibgp("a"), ibgp("b"), ibgp("c")
    loc.announce(a, [P1], GOOD)
    loc.announce(b, [P2], OK)
    loc.commit()
    loc.rec.calls.clear()

    # One batch: P1 loses its best and gains another, P2 goes from single to Dest and back,
    # P3 is new.
    loc.withdraw(a, [P1])
    loc.announce(c, [P1], OK)
    loc.announce(c, [P2], GOOD)
    loc.withdraw(b, [P2])
    loc.announce(b, [P3], POOR)
    loc.commit()
    assert loc.rec.calls == [(IPV4, {P1: a, P2: b, P3: None})]
    assert entries(loc) == {P1: c, P2: c, P3: b}


def test_touched_map_records_the_best_of_a_dest_not_the_changed_candidate(loc):
    a, b = ibgp("a"), ibgp("b")
    loc.announce(a, [P1], GOOD)
    loc.announce(b, [P1], OK)
    loc.commit()
    loc.announce(b, [P1], POOR)  # a non-best candidate changes
    assert loc.commit() == {P1: a}


def test_commit_with_nothing_touched_is_a_noop(loc):
    assert loc.commit() == {}
    assert loc.rec.calls == []
    s = ibgp("s")
    loc.announce(s, [P1], OK)
    assert loc.commit() == {P1: None}
    assert loc.commit() == {}
    assert len(loc.rec.calls) == 1


def test_commit_notifies_every_listener_with_the_family(loc):
    other = Recorder()
    loc.listeners.append(other)
    loc.announce(ibgp("s"), [P1], OK)
    loc.commit()
    assert loc.rec.calls == other.calls == [(IPV4, {P1: None})]


# --- stale routes (graceful restart) ---------------------------------------------------------


def test_stale_route_loses_to_a_fresh_one(loc):
    restarting, fresh = ibgp("restarting"), ibgp("fresh")
    loc.announce(restarting, [P1, P2], GOOD)
    loc.commit()
    restarting.stale[IPV4] = set(restarting.adj_in[IPV4])
    loc.announce(fresh, [P1], POOR)
    loc.commit()
    assert best(loc, P1) is fresh
    assert {c: s for c, _a, s in loc.route(P1)[2]}[restarting] == "stale"
    # a stale route alone is still used
    assert best(loc, P2) is restarting


def test_reannouncement_clears_the_stale_mark(loc):
    restarting, fresh = ibgp("restarting"), ibgp("fresh")
    loc.announce(restarting, [P1, P2], GOOD)
    loc.announce(fresh, [P1], POOR)
    loc.commit()
    restarting.stale[IPV4] = {P1, P2}
    loc.retouch(P1)  # what marking stale must do: re-run the decision
    loc.commit()
    assert best(loc, P1) is fresh
    loc.announce(restarting, [P1], GOOD)
    loc.commit()
    assert restarting.stale[IPV4] == {P2}
    assert best(loc, P1) is restarting


def test_withdraw_clears_the_stale_mark(loc):
    restarting = ibgp("restarting")
    loc.announce(restarting, [P1, P2], GOOD)
    loc.commit()
    restarting.stale[IPV4] = {P1, P2}
    loc.withdraw(restarting, [P1])
    loc.commit()
    assert restarting.stale[IPV4] == {P2}
    # flushing what is still stale (the end of graceful restart) empties it
    loc.withdraw(restarting, list(restarting.stale[IPV4]))
    loc.commit()
    assert restarting.stale[IPV4] == set() and loc.table == {}


def test_addpath_stale_keys_are_path_keys(loc):
    s = ibgp("s", addpath={IPV4})
    fresh = ibgp("fresh")
    loc.announce(s, [(1, P1), (2, P1)], GOOD)
    loc.announce(fresh, [P1], POOR)
    loc.commit()
    s.stale[IPV4] = {(1, P1)}
    loc.retouch(P1)
    loc.commit()
    lost = {c: st for c, _a, st in loc.route(P1)[2]}
    assert best(loc, P1) == Path(s, 2)
    assert lost[Path(s, 1)] == "stale"
    loc.announce(s, [(1, P1)], GOOD)
    loc.commit()
    assert s.stale[IPV4] == set()


def test_addpath_reannouncement_clears_the_stale_mark_and_decides_again(loc):
    """As without ADD-PATH: a stale path announced again with the same attributes is fresh,
    and the decision runs again (it wins back the prefix)."""
    s = ibgp("s", addpath={IPV4})
    fresh = ibgp("fresh")
    loc.announce(s, [(1, P1)], GOOD)
    loc.announce(fresh, [P1], POOR)
    loc.commit()
    s.stale[IPV4] = {(1, P1)}
    loc.retouch(P1)
    loc.commit()
    assert best(loc, P1) is fresh
    loc.announce(s, [(1, P1)], GOOD)
    assert loc.commit() == {P1: fresh}
    assert s.stale[IPV4] == set()
    assert best(loc, P1) == Path(s, 1)


def test_a_stale_route_announced_again_alone_is_touched(loc):
    """A prefix's only route, stale, announced again with the same attributes: touched, with
    or without ADD-PATH (its stale mark is gone: the listeners see it change, e.g. the
    route's time and flags in ``show route``)."""
    plain, paths = ibgp("plain"), ibgp("paths", addpath={IPV4})
    loc.announce(plain, [P1], GOOD)
    loc.announce(paths, [(1, P2)], GOOD)
    loc.commit()
    plain.stale[IPV4] = {P1}
    paths.stale[IPV4] = {(1, P2)}
    loc.announce(plain, [P1], GOOD)
    loc.announce(paths, [(1, P2)], GOOD)
    assert loc.commit() == {P1: plain, P2: Path(paths, 1)}
    assert plain.stale[IPV4] == set() and paths.stale[IPV4] == set()


def test_local_and_bgp_sources_share_a_table(loc):
    static = Source("static", "static")
    peer = ebgp("e")
    loc.announce(peer, [P1], OK)
    loc.announce(static, [P1], A(next_hop=ip("10.1.1.1")))
    loc.commit()
    assert best(loc, P1) is static
    loc.withdraw(static, [P1])
    loc.commit()
    assert single(loc, P1) is peer
