"""Export groups: what each member receives, checked by decoding the UPDATE bytes produced.

Members are fakes with ``.source`` (a rib Source) and ``.writable``. Each member has a
:class:`View` that applies the decoded UPDATEs, i.e. the Adj-RIB-In the peer would hold.
"""

import pytest
from rib_helpers import (
    IPV4,
    IPV6,
    A,
    Member,
    P,
    View,
    decode_all,
    ebgp,
    ibgp,
    ip,
    locribs,
    seq,
)

from bgpd.rib import Exporter, Source
from bgpd.wire import Context
from bgpd.wire.constants import MAX_MESSAGE, NO_EXPORT

P1 = P("10.0.1.0/24")
P2 = P("10.0.2.0/24")
P3 = P("10.0.3.0/24")
V1 = P("2001:db8:1::/48")
V2 = P("2001:db8:2::/48")

NH4 = ip("192.0.2.1")
NH6 = ip("2001:db8::1")

# Members decode as iBGP peers (LOCAL_PREF kept), so every set carries a LOCAL_PREF.
R1 = A(as_path=(seq(65001),), next_hop=NH4, local_pref=100)
R2 = A(as_path=(seq(65001, 2),), next_hop=ip("192.0.2.2"), local_pref=100)
BETTER = A(as_path=(seq(65001),), next_hop=ip("192.0.2.9"), local_pref=300)
V6 = A(as_path=(seq(65001),), next_hop=NH6, local_pref=100)


def identity(src, attrs, prefix, fam):
    return attrs


class Harness:
    """Loc-RIBs, an Exporter and one View per member."""

    def __init__(self) -> None:
        self.locs = locribs()
        self.ex = Exporter(self.locs)
        self.views: dict = {}
        self.local = Source("local", "static", index=1)  # not a member of anything

    def member(self, name, *, ibgp_peer=True, index=None, addpath=frozenset()):
        kw = {"addpath": addpath}
        if index is not None:
            kw["index"] = index
        src = ibgp(name, **kw) if ibgp_peer else ebgp(name, **kw)
        return Member(src)

    def join(self, m, key="k", ctx=None, export=identity, families=(IPV4, IPV6), trailer=None):
        ctx = ctx or Context()
        self.views[m] = View(Context(add_path_rx=ctx.add_path_tx, ibgp=True))
        return self.ex.join(m, key, ctx, export, families, trailer)

    def announce(self, src, keys, attrs, fam=IPV4, commit=True):
        self.locs[fam].announce(src, keys, attrs)
        if commit:
            self.commit()

    def withdraw(self, src, keys, fam=IPV4, commit=True):
        self.locs[fam].withdraw(src, keys)
        if commit:
            self.commit()

    def commit(self):
        for t in self.locs.values():
            t.commit()

    def drain(self, budget=20000):
        for v in self.views.values():
            v.clear_log()
        out, more = self.ex.drain(budget)
        for m, msgs in out.items():
            self.views[m].apply(msgs)
        return out, more

    def settle(self):
        for _ in range(100):
            _out, more = self.drain()
            if not more:
                return
        raise AssertionError("export never settles")

    def group(self, m):
        return m.source.group


@pytest.fixture
def h():
    return Harness()


def steady_pair(h, **kw):
    """Two members A and B of one steady group, past their initial table."""
    a, b = h.member("a"), h.member("b")
    h.join(a, **kw)
    h.join(b, **kw)
    h.settle()
    assert h.group(a) is h.group(b)
    assert h.ex.syncing == []
    for v in h.views.values():
        v.clear_log()
    return a, b


# --- initial table ---------------------------------------------------------------------------


def test_initial_sync_then_end_of_rib_per_family(h):
    h.announce(h.local, [P1, P2], R1)
    h.announce(h.local, [V1], V6, IPV6)
    a = h.member("a")
    g = h.join(a)
    assert g in h.ex.syncing and h.ex.has_work()
    out, more = h.drain()
    assert more is False
    v = h.views[a]
    assert v.routes[IPV4] == {P1: R1, P2: R1}
    assert v.routes[IPV6] == {V1: V6}
    assert v.eor == [IPV4, IPV6]
    # End-of-RIB comes last, after the whole table
    assert [op for op, _f, _k in v.log][-2:] == ["EOR", "EOR"]
    assert "EOR" not in [op for op, _f, _k in v.log][:-2]
    # the group became the steady group of its key
    assert h.ex.steady == {"k": g} and h.ex.syncing == []
    assert not h.ex.has_work()


def test_empty_rib_gets_only_end_of_rib(h):
    a = h.member("a")
    h.join(a)
    out, more = h.drain()
    assert not more
    assert h.views[a].eor == [IPV4, IPV6]
    assert h.views[a].messages == 2


def test_end_of_rib_only_for_the_members_families(h):
    h.announce(h.local, [V1], V6, IPV6)
    a = h.member("a")
    h.join(a, families=(IPV4,))
    h.settle()
    assert h.views[a].eor == [IPV4]
    assert h.views[a].routes[IPV6] == {}


def test_custom_trailer(h):
    a = h.member("a")
    h.join(a, trailer=[b"TRAILER"])
    out, _more = h.ex.drain()
    assert out == {a: (b"TRAILER",)}  # a tuple: members of a group share it


def test_end_of_rib_is_sent_once(h):
    a = h.member("a")
    h.join(a)
    h.settle()
    h.announce(h.local, [P1], R1)
    h.drain()
    assert h.views[a].eor == [IPV4, IPV6]
    assert h.views[a].routes[IPV4] == {P1: R1}


def test_end_of_rib_waits_for_the_whole_table(h):
    prefixes = [P(f"10.1.{i}.0/24") for i in range(5)]
    h.announce(h.local, prefixes, R1)
    a = h.member("a")
    h.join(a, families=(IPV4,))
    seen = []
    for _ in range(10):
        _out, more = h.drain(budget=2)
        seen += h.views[a].log
        if not more:
            break
    ops = [op for op, _f, _k in seen]
    assert ops == ["A"] * 5 + ["EOR"]
    assert h.views[a].routes[IPV4] == dict.fromkeys(prefixes, R1)


def test_changes_during_initial_sync_are_not_lost(h):
    prefixes = [P(f"10.1.{i}.0/24") for i in range(4)]
    h.announce(h.local, prefixes, R1)
    a = h.member("a")
    h.join(a, families=(IPV4,))
    h.drain(budget=2)
    h.withdraw(h.local, prefixes[:1] + prefixes[-1:])  # one already sent, one not yet
    h.announce(h.local, [P1], R2)
    h.settle()
    assert h.views[a].routes[IPV4] == {prefixes[1]: R1, prefixes[2]: R1, P1: R2}


# --- split horizon ---------------------------------------------------------------------------


def test_member_never_receives_its_own_route(h):
    a, b = steady_pair(h)
    h.announce(a.source, [P1], R1)
    out, _ = h.drain()
    assert a not in out
    assert h.views[b].routes[IPV4] == {P1: R1}
    assert h.views[a].routes[IPV4] == {}


def test_initial_sync_skips_the_members_own_routes(h):
    a = h.member("a")
    h.announce(a.source, [P1], R1)
    h.announce(h.local, [P2], R2)
    h.join(a)
    h.settle()
    assert h.views[a].routes[IPV4] == {P2: R2}


def test_best_moves_between_members(h):
    a, b = steady_pair(h)
    h.announce(a.source, [P1], R1)
    h.drain()
    h.announce(b.source, [P1], BETTER)
    h.drain()
    # A now gets B's route; B gets a withdrawal of the route it had from A.
    assert h.views[a].routes[IPV4] == {P1: BETTER}
    assert h.views[a].withdrawn() == []
    assert h.views[b].routes[IPV4] == {}
    assert h.views[b].withdrawn() == [P1]
    assert h.views[b].announced() == []

    h.withdraw(b.source, [P1])  # and back to A's route
    h.drain()
    assert h.views[a].routes[IPV4] == {}
    assert h.views[a].withdrawn() == [P1]
    assert h.views[b].routes[IPV4] == {P1: R1}


def test_best_moves_from_member_to_outside_source(h):
    a, b = steady_pair(h)
    h.announce(a.source, [P1], R1)
    h.drain()
    h.announce(h.local, [P1], R2)  # static: preference wins
    h.drain()
    assert h.views[a].routes[IPV4] == {P1: R2}
    assert h.views[b].routes[IPV4] == {P1: R2}


def test_best_moves_from_outside_source_to_member(h):
    a, b = steady_pair(h)
    c = ibgp("c")  # a neighbor that is not a member of this group
    h.announce(c, [P1], R1)
    h.drain()
    assert h.views[a].routes[IPV4] == {P1: R1}
    h.announce(a.source, [P1], BETTER)
    h.drain()
    assert h.views[b].routes[IPV4] == {P1: BETTER}
    # A must not keep C's route from us: our best is now A's own, which A is not sent.
    assert h.views[a].routes[IPV4] == {}


def test_withdrawal_of_a_members_route_skips_that_member(h):
    a, b = steady_pair(h)
    h.announce(a.source, [P1], R1)
    h.drain()
    h.withdraw(a.source, [P1])
    out, _ = h.drain()
    assert a not in out
    assert h.views[b].withdrawn() == [P1]
    assert h.views[b].routes[IPV4] == {}


# --- withdrawals and batching ----------------------------------------------------------------


def test_withdrawal_reaches_every_member(h):
    a, b = steady_pair(h)
    h.announce(h.local, [P1, P2], R1)
    h.drain()
    h.withdraw(h.local, [P1])
    out, _ = h.drain()
    for m in (a, b):
        assert h.views[m].withdrawn() == [P1]
        assert h.views[m].routes[IPV4] == {P2: R1}
        assert len(out[m]) == 1


def test_prefix_announced_and_withdrawn_in_one_batch(h):
    a, b = steady_pair(h)
    h.announce(h.local, [P1], R1, commit=False)
    h.withdraw(h.local, [P1], commit=False)
    h.commit()
    h.drain()
    for m in (a, b):
        assert h.views[m].announced() == []
        assert h.views[m].routes[IPV4] == {}


def test_prefix_announced_and_withdrawn_in_one_batch_sends_nothing(h):
    a, b = steady_pair(h)
    h.announce(h.local, [P1], R1, commit=False)
    h.withdraw(h.local, [P1], commit=False)
    h.commit()
    out, _ = h.drain()
    assert out == {}


def test_new_filtered_prefix_sends_nothing(h):
    a = h.member("a")
    h.join(a, export=lambda src, attrs, p, fam: None if attrs is R2 else attrs)
    h.settle()
    h.announce(h.local, [P1], R2)
    out, _ = h.drain()
    assert out == {}


def test_announced_then_withdrawn_between_drains(h):
    a, b = steady_pair(h)
    h.announce(h.local, [P1], R1)
    h.drain()
    h.announce(h.local, [P1], R2, commit=False)
    h.withdraw(h.local, [P1], commit=False)
    h.commit()
    h.drain()
    for m in (a, b):
        assert h.views[m].announced() == []
        assert h.views[m].withdrawn() == [P1]
        assert h.views[m].routes[IPV4] == {}


def test_latest_state_wins(h):
    a, b = steady_pair(h)
    h.announce(h.local, [P1], R1)
    h.announce(h.local, [P1], R2)
    h.announce(h.local, [P1], BETTER)
    h.drain()
    for m in (a, b):
        assert h.views[m].announced() == [P1]
        assert h.views[m].routes[IPV4] == {P1: BETTER}


# --- runs: prefixes new to the Loc-RIB, kept as the UPDATE's list (see rib/export.py) -------


def run_of(h, keys, attrs=R1, src=None):
    """Announce ``keys`` as new prefixes (a run) without committing."""
    src = src or h.local
    loc = h.locs[IPV4]
    before = len(loc.runs)
    h.announce(src, keys, attrs, commit=False)
    assert len(loc.runs) == before + 1, "expected the fast path (a run)"


def test_new_prefixes_become_one_run_and_one_update(h):
    a, b = steady_pair(h)
    keys = [P(f"10.9.{i}.0/24") for i in range(50)]
    run_of(h, keys)
    h.commit()
    g = h.group(a)
    assert g.run_count == 50 and g.pending[IPV4] == {}
    h.drain()
    for m in (a, b):
        assert h.views[m].messages == 1
        assert h.views[m].routes[IPV4] == dict.fromkeys(keys, R1)
    assert g.idle


def test_run_changed_in_the_same_batch_sends_the_latest_state(h):
    a, b = steady_pair(h)
    run_of(h, [P1, P2])
    h.announce(h.local, [P1], R2, commit=False)  # P1 again, other attributes
    h.withdraw(h.local, [P2], commit=False)
    h.commit()
    h.drain()
    for m in (a, b):
        assert h.views[m].routes[IPV4] == {P1: R2}
        assert h.views[m].withdrawn() == []  # P2: nothing before, nothing now
        assert h.views[m].announced() == [P1]


def test_run_changed_before_it_is_drained(h):
    a, b = steady_pair(h)
    run_of(h, [P1, P2, P3])
    h.commit()
    h.announce(h.local, [P1], R2)  # changed in a later batch, the run still pending
    h.withdraw(h.local, [P2])
    h.drain()
    for m in (a, b):
        assert h.views[m].routes[IPV4] == {P1: R2, P3: R1}
        assert h.views[m].withdrawn() == []
        assert sorted(h.views[m].announced()) == [P1, P3]
    assert h.group(a).idle


def test_pending_withdrawal_then_new_run_of_the_same_prefix(h):
    """A member holds P1; P1 is withdrawn and announced again (a run: it is new to the
    Loc-RIB) before anything was sent; then withdrawn again: the member must lose it."""
    a, b = steady_pair(h)
    h.announce(h.local, [P1, P2], R1)
    h.drain()
    h.withdraw(h.local, [P1])
    run_of(h, [P1], R2)
    h.commit()
    h.withdraw(h.local, [P1])
    h.drain()
    for m in (a, b):
        assert h.views[m].routes[IPV4] == {P2: R1}
        assert h.views[m].withdrawn() == [P1]


def test_pending_withdrawal_then_new_run_sends_the_new_route(h):
    a, b = steady_pair(h)
    h.announce(h.local, [P1], R1)
    h.drain()
    h.withdraw(h.local, [P1])
    run_of(h, [P1, P2], R2)
    h.commit()
    h.drain()
    for m in (a, b):
        assert h.views[m].routes[IPV4] == {P1: R2, P2: R2}


def test_run_drained_in_pieces(h):
    a, b = steady_pair(h)
    keys = [P(f"10.9.{i}.0/24") for i in range(10)]
    run_of(h, keys)
    h.commit()
    h.drain(budget=3)
    h.withdraw(h.local, keys[1:2] + keys[-1:])  # one already sent, one not yet
    h.settle()
    want = dict.fromkeys(keys[:1] + keys[2:-1], R1)
    for m in (a, b):
        assert h.views[m].routes[IPV4] == want


def test_run_from_a_member_skips_that_member(h):
    a, b = steady_pair(h)
    run_of(h, [P1, P2], src=a.source)
    h.commit()
    h.drain()
    assert h.views[a].log == []
    assert h.views[b].routes[IPV4] == {P1: R1, P2: R1}


def test_initial_sync_is_a_run_of_the_table_keys(h):
    keys = [P(f"10.9.{i}.0/24") for i in range(20)]
    h.announce(h.local, keys, R1)
    a = h.member("a")
    g = h.join(a, families=(IPV4,))
    assert g.pending[IPV4] == {} and g.run_count == 20
    h.drain(budget=5)
    h.withdraw(h.local, keys[:1] + keys[-1:])  # one already sent, one not yet
    h.announce(h.local, keys[10:11], R2)  # changed before it was sent
    h.settle()
    want = dict.fromkeys(keys[1:-1], R1)
    want[keys[10]] = R2
    assert h.views[a].routes[IPV4] == want
    assert h.views[a].withdrawn() == [keys[0]]


def test_announcing_nothing_makes_no_run(h):
    a, b = steady_pair(h)
    h.announce(h.local, [], R1)
    assert h.locs[IPV4].runs == [] and h.group(a).idle
    out, more = h.drain()
    assert out == {} and not more


def test_what_is_pending_stays_bounded_by_the_table(h):
    """A member that takes nothing while the whole table changes twice: its runs and pending
    entries are folded so that no more than the table is pending, and it ends with the
    latest state."""
    a, b = steady_pair(h)
    keys = [P(f"10.9.{i}.0/24") for i in range(50)]
    a.writable = False
    run_of(h, keys)
    h.commit()
    g = h.group(a)
    assert g.run_count == 50
    h.announce(h.local, keys, R2)  # the whole table again: 50 pending entries too
    assert g.pending_count() <= len(keys) and g.run_count == 0
    h.announce(h.local, keys, BETTER)
    assert g.pending_count() <= len(keys)
    a.writable = True
    h.settle()
    for m in (a, b):
        assert h.views[m].routes[IPV4] == dict.fromkeys(keys, BETTER)
        assert h.views[m].withdrawn() == []


def _table(n):
    return [P(f"10.{100 + i // 250}.{i % 250}.0/24") for i in range(n)]


N_GONE = 2000  # over export.GONE_RUN_MIN


def test_a_withdrawn_table_waits_as_one_run(h):
    """A member's session goes down with its whole table: the group keeps one run of the
    prefixes (and the source), not an entry per prefix holding its old route; the others
    get every withdrawal, the member nothing."""
    from bgpd.rib.export import GONE_RUN_MIN

    assert N_GONE >= GONE_RUN_MIN
    a, b = steady_pair(h)
    keys = _table(N_GONE)
    h.announce(a.source, keys, R1)
    h.settle()
    h.locs[IPV4].flush(a.source)  # as the speaker does on session down (a stays a member)
    h.commit()
    g = h.group(b)
    assert g.run_count == N_GONE and g.pending[IPV4] == {}
    h.settle()
    assert sorted(h.views[b].withdrawn()) == sorted(keys)
    assert h.views[b].routes[IPV4] == {}
    assert h.views[a].withdrawn() == []  # it never had them
    assert g.idle


def test_a_withdrawn_table_announced_again_before_the_drain_is_sent_once(h):
    """The session comes back with the same table before the withdrawals went out: each
    prefix is announced once (the waiting run is folded, the new run leaves them out)."""
    a, b = steady_pair(h)
    keys = _table(N_GONE)
    h.announce(a.source, keys, R1)
    h.settle()
    h.locs[IPV4].flush(a.source)
    h.commit()
    assert h.group(b).run_count == N_GONE
    h.announce(a.source, keys, R2)  # a run again: new to the Loc-RIB
    h.settle()
    assert sorted(h.views[b].announced()) == sorted(keys)  # once each
    assert h.views[b].withdrawn() == []
    assert h.views[b].routes[IPV4] == dict.fromkeys(keys, R2)


def test_a_withdrawn_table_then_a_refresh_still_withdraws(h):
    """A member asks for its table again (route refresh) while a withdrawn table waits: its
    new group still sends it the withdrawals."""
    a, b = steady_pair(h)
    keys = _table(N_GONE)
    h.announce(h.local, keys[:10], R2)
    h.announce(a.source, keys[10:], R1)
    h.settle()
    h.locs[IPV4].flush(a.source)
    h.commit()
    assert h.group(b).run_count == N_GONE - 10
    refresh(h, b)
    h.settle()
    assert h.views[b].routes[IPV4] == dict.fromkeys(keys[:10], R2)
    assert sorted(h.views[b].withdrawn()) == sorted(keys[10:])


def test_a_change_of_many_sources_stays_per_prefix(h):
    """Prefixes whose routes came from several sources: the per-prefix entries, as ever."""
    a, b = steady_pair(h)
    keys = _table(N_GONE)
    h.announce(h.local, keys[: N_GONE // 2], R1)
    h.announce(a.source, keys[N_GONE // 2 :], R1)
    h.settle()
    h.withdraw(h.local, keys[: N_GONE // 2], commit=False)
    h.locs[IPV4].flush(a.source)
    h.commit()
    g = h.group(b)
    assert g.run_count == 0 and len(g.pending[IPV4]) == N_GONE
    h.settle()
    assert sorted(h.views[b].withdrawn()) == sorted(keys)


def test_packed_updates_go_with_their_set(h):
    import gc

    a, b = steady_pair(h)
    attrs = A(as_path=(), next_hop=ip("192.0.2.77"), local_pref=100)
    h.announce(h.local, [P1], attrs)
    h.drain()
    g = h.group(a)
    assert len(g.packed) == 1
    h.withdraw(h.local, [P1])
    h.drain()
    h.local.last_route = None  # (the source's last announcement holds the set too)
    del attrs
    gc.collect()
    assert g.packed == {}


def test_touched_map_includes_runs(h):
    loc = h.locs[IPV4]
    h.announce(h.local, [P1], R1)
    run_of(h, [P2, P3])
    h.announce(h.local, [P1], R2, commit=False)
    assert loc.commit() == {P1: h.local, P2: None, P3: None}


def test_listener_without_runs_gets_one_map(h):
    seen = []

    class Plain:
        def rib_changed(self, fam, touched, locrib):
            seen.append(dict(touched))

    h.locs[IPV4].listeners.append(Plain())
    run_of(h, [P1, P2])
    h.announce(h.local, [P1], R2, commit=False)
    h.commit()
    assert seen == [{P1: None, P2: None}]


def test_single_prefix_updates_are_packed_once_per_export_key(h, monkeypatch):
    """Every route with a set of its own (a Calico reflector): members that join later get
    the UPDATEs packed for the first one; a changed route is packed again."""
    import bgpd.rib.export as export

    calls = []
    real = export.pack_announce

    def counting(fam, attrs, items, ctx):
        calls.append(list(items))
        return real(fam, attrs, items, ctx)

    monkeypatch.setattr(export, "pack_announce", counting)
    sets = [A(as_path=(), next_hop=ip(f"192.0.2.{i + 1}"), local_pref=100) for i in range(3)]
    keys = [P(f"10.9.{i}.0/24") for i in range(3)]
    for k, a in zip(keys, sets, strict=True):
        h.announce(h.local, [k], a)
    first = h.member("m0")
    h.join(first, families=(IPV4,))
    h.settle()
    assert len(calls) == 3
    for i in (1, 2):
        m = h.member(f"m{i}")
        h.join(m, families=(IPV4,))
        h.settle()
        assert h.views[m].routes[IPV4] == dict(zip(keys, sets, strict=True))
    assert len(calls) == 3  # nothing packed again
    changed = A(as_path=(), next_hop=ip("192.0.2.99"), local_pref=100)
    h.announce(h.local, keys[:1], changed)
    h.settle()
    late = h.member("late")
    h.join(late, families=(IPV4,))
    h.settle()
    assert h.views[late].routes[IPV4][keys[0]] == changed
    assert calls[3:] == [[keys[0]]]  # the changed route only, once for every member
    monkeypatch.setattr(export, "PACKED_MAX", 1)
    gone = h.member("gone")
    h.join(gone, families=(IPV4,))
    h.settle()
    assert h.views[gone].routes[IPV4] == h.views[late].routes[IPV4]


def test_addpath_single_path_updates_are_packed_once_per_export_key(h, monkeypatch):
    """The same with ADD-PATH (a Calico reflector's Node_ protocols have ``add paths on``):
    a path id and prefix sent with the same set reuse the UPDATE of an earlier member."""
    import bgpd.rib.export as export

    calls = []
    real = export.pack_announce

    def counting(fam, attrs, items, ctx):
        calls.append(list(items))
        return real(fam, attrs, items, ctx)

    monkeypatch.setattr(export, "pack_announce", counting)
    srcs = [ibgp(f"n{i}") for i in range(3)]
    sets = [A(as_path=(), next_hop=ip(f"192.0.2.{i + 1}"), local_pref=100) for i in range(3)]
    keys = [P(f"10.9.{i}.0/24") for i in range(3)]
    for s, k, a in zip(srcs, keys, sets, strict=True):
        h.announce(s, [k], a)
    second = A(as_path=(), next_hop=ip("192.0.2.50"), local_pref=100)
    h.announce(srcs[0], [keys[1]], second)  # a second path for one prefix
    first = h.member("m0")
    h.join(first, ctx=AP, families=(IPV4,))
    h.settle()
    assert len(calls) == 4
    for i in (1, 2):
        m = h.member(f"m{i}")
        h.join(m, ctx=AP, families=(IPV4,))
        h.settle()
        assert h.views[m].routes[IPV4] == h.views[first].routes[IPV4]
    assert len(calls) == 4  # nothing packed again
    changed = A(as_path=(), next_hop=ip("192.0.2.99"), local_pref=100)
    h.announce(srcs[2], keys[2:], changed)
    h.settle()
    assert list(paths(h.views[first], keys[2]).values()) == [changed]
    assert len(calls) == 5


# --- flow control and groups -----------------------------------------------------------------


def test_non_writable_member_pauses_its_whole_group(h):
    a, b = steady_pair(h)
    a.writable = False
    h.announce(h.local, [P1], R1)
    out, more = h.drain()
    assert out == {} and more is True
    assert h.ex.has_work()
    h.announce(h.local, [P2], R1)  # changes keep accumulating as state
    a.writable = True
    out, more = h.drain()
    assert more is False
    for m in (a, b):
        assert h.views[m].routes[IPV4] == {P1: R1, P2: R1}
        assert h.views[m].messages == 1  # both prefixes share one set: one UPDATE


def test_paused_group_does_not_block_other_groups(h):
    a = h.member("a")
    c = h.member("c")
    h.join(a, key="k1")
    h.join(c, key="k2")
    h.settle()
    a.writable = False
    h.announce(h.local, [P1], R1)
    out, more = h.drain()
    assert more is True
    assert list(out) == [c]
    assert h.views[c].routes[IPV4] == {P1: R1}


def test_syncing_group_merges_into_steady_group_once_both_idle(h):
    a = h.member("a")
    g = h.join(a)
    h.settle()
    assert h.ex.steady["k"] is g

    h.announce(h.local, [P1], R1)
    a.writable = False  # the steady group cannot drain: not idle
    b = h.member("b")
    gb = h.join(b)
    out, more = h.drain()
    assert more is True
    assert h.views[b].eor == [IPV4, IPV6]
    assert h.views[b].routes[IPV4] == {P1: R1}
    assert h.group(b) is gb and gb in h.ex.syncing  # not merged: steady group is busy

    h.announce(h.local, [P2], R2)  # both groups see it
    a.writable = True
    h.drain()
    assert h.ex.syncing == []
    assert h.group(b) is g and g.members == [a, b]
    assert h.views[a].routes[IPV4] == {P1: R1, P2: R2}
    assert h.views[b].routes[IPV4] == {P1: R1, P2: R2}
    assert gb not in h.locs[IPV4].listeners

    h.announce(h.local, [P3], R1)
    out, _ = h.drain()
    assert out[a] == out[b]  # one group: the same bytes for both
    assert h.views[b].announced() == [P3]


def test_syncing_group_does_not_merge_before_its_table_is_out(h):
    a = h.member("a")
    h.join(a, families=(IPV4,))
    h.settle()
    h.announce(h.local, [P1, P2, P3], R1)
    h.drain()
    b = h.member("b")
    gb = h.join(b, families=(IPV4,))
    _out, more = h.drain(budget=1)
    assert more is True and h.group(b) is gb
    h.settle()
    assert h.group(b) is h.group(a)
    assert h.views[b].routes[IPV4] == dict.fromkeys([P1, P2, P3], R1)


def test_groups_with_different_keys_stay_apart(h):
    a, b = h.member("a"), h.member("b")
    h.join(a, key="k1")
    h.join(b, key="k2")
    h.settle()
    assert h.group(a) is not h.group(b)
    h.announce(a.source, [P1], R1)
    h.drain()
    assert h.views[b].routes[IPV4] == {P1: R1}
    assert h.views[a].routes[IPV4] == {}


def test_leave(h):
    a, b = steady_pair(h)
    g = h.group(a)
    h.ex.leave(a)
    assert a.source.group is None and g.members == [b]
    h.announce(h.local, [P1], R1)
    out, _ = h.drain()
    assert list(out) == [b]
    h.ex.leave(b)
    assert h.ex.steady == {} and g not in h.locs[IPV4].listeners
    h.ex.leave(b)  # twice is harmless


def test_leave_during_initial_sync(h):
    h.announce(h.local, [P1], R1)
    a = h.member("a")
    g = h.join(a)
    h.ex.leave(a)
    assert h.ex.syncing == [] and g not in h.locs[IPV4].listeners
    assert h.ex.drain() == ({}, False)


def test_leaving_members_route_is_withdrawn_from_the_others(h):
    a, b = steady_pair(h)
    h.announce(a.source, [P1], R1)
    h.drain()
    # what the speaker does on session down: leave, flush, commit
    h.ex.leave(a)
    h.locs[IPV4].flush(a.source)
    h.commit()
    h.drain()
    assert h.views[b].withdrawn() == [P1]
    assert h.views[b].routes[IPV4] == {}


def refresh(h, m, key="k", ctx=None, export=identity, families=(IPV4, IPV6)):
    """What the speaker does on ROUTE-REFRESH: the member gets its whole table again.

    Today that is leave() + join(); a fix may add Exporter.rejoin() carrying the old group's
    pending state over, which is used when present. The member keeps its View (same peer).
    """
    view = h.views[m]
    ctx = ctx or Context()
    rejoin = getattr(h.ex, "rejoin", None)
    if rejoin is not None:
        rejoin(m, key, ctx, export, families)
    else:
        h.ex.leave(m)
        h.join(m, key, ctx, export, families)
    h.views[m] = view


def test_refresh_resends_the_table_and_end_of_rib(h):
    a, b = steady_pair(h)
    h.announce(h.local, [P1, P2], R1)
    h.settle()
    h.views[a].eor.clear()
    refresh(h, a)
    h.settle()
    assert sorted(h.views[a].announced()) == [P1, P2]
    assert h.views[a].eor == [IPV4, IPV6]
    assert h.views[b].log == []
    assert h.group(a) is h.group(b)


def test_rejoin_keeps_withdrawals_pending_in_the_old_group(h):
    a, b = steady_pair(h)
    h.announce(h.local, [P1, P2], R1)
    h.drain()
    a.writable = False  # a slow peer: its group holds the withdrawal below as pending state
    h.withdraw(h.local, [P1])
    view = h.views[a]
    refresh(h, a)
    assert h.views[a] is view
    a.writable = True
    h.settle()
    assert h.views[b].routes[IPV4] == {P2: R1}
    assert h.views[a].routes[IPV4] == {P2: R1}


# --- the export context -------------------------------------------------------------------------------


def test_export_context_receives_source_attrs_prefix_family(h):
    calls = []

    def export(src, attrs, prefix, fam):
        calls.append((src, attrs, prefix, fam))
        return attrs

    a = h.member("a")
    g = h.join(a, export=export)
    assert g.context is export
    h.announce(h.local, [P1], R1)
    h.announce(h.local, [V1], V6, IPV6)
    h.settle()
    assert sorted(calls, key=lambda c: c[3]) == [
        (h.local, R1, P1, IPV4),
        (h.local, V6, V1, IPV6),
    ]


def test_export_context_returning_none_filters(h):
    def no_export(src, attrs, prefix, fam):
        return None if NO_EXPORT in attrs.communities else attrs

    tagged = R1.replace(communities=(NO_EXPORT,))
    h.announce(h.local, [P1], tagged)
    h.announce(h.local, [P2], R1)
    a = h.member("a")
    h.join(a, export=no_export, families=(IPV4,))
    h.settle()
    assert h.views[a].routes[IPV4] == {P2: R1}

    h.announce(h.local, [P2], tagged)  # now filtered: withdrawn
    h.drain()
    assert h.views[a].withdrawn() == [P2]
    assert h.views[a].routes[IPV4] == {}

    h.announce(h.local, [P1], R2)  # no longer filtered: announced
    h.drain()
    assert h.views[a].routes[IPV4] == {P1: R2}


def test_export_context_rewrites_attributes(h):
    nh_self = ip("198.51.100.1")

    def nhs(src, attrs, prefix, fam):
        return attrs.replace(next_hop=nh_self, local_pref=120)

    a = h.member("a")
    h.join(a, export=nhs, families=(IPV4,))
    h.announce(h.local, [P1], BETTER)
    h.settle()
    assert h.views[a].routes[IPV4] == {P1: BETTER.replace(next_hop=nh_self, local_pref=120)}


# --- packing ---------------------------------------------------------------------------------


def test_prefixes_sharing_a_set_share_an_update(h):
    a, b = steady_pair(h)
    many = [P(f"10.2.{i}.0/24") for i in range(50)]
    h.announce(h.local, many, R1)
    h.announce(h.local, [P1, P2], R2)
    out, _ = h.drain()
    for m in (a, b):
        assert len(out[m]) == 2
        updates = decode_all(out[m])
        by_attrs = {u.attrs: set(u.nlri) for u in updates}
        assert by_attrs == {R1: set(many), R2: {P1, P2}}


def test_withdrawals_are_packed_together(h):
    a, b = steady_pair(h)
    many = [P(f"10.2.{i}.0/24") for i in range(50)]
    h.announce(h.local, many, R1)
    h.drain()
    h.withdraw(h.local, many)
    out, _ = h.drain()
    assert len(out[a]) == 1
    assert set(decode_all(out[a])[0].withdrawn) == set(many)


def test_large_batches_are_split_to_the_message_size(h):
    a = h.member("a")
    h.join(a, families=(IPV4,))
    h.settle()
    many = [P(f"10.{i >> 8}.{i & 255}.0/24") for i in range(3000)]  # 12000 octets of NLRI
    h.announce(h.local, many, R1)
    out, _ = h.drain()
    assert 3 <= len(out[a]) <= 4
    assert all(len(m) <= MAX_MESSAGE for m in out[a])
    assert sorted(h.views[a].announced()) == sorted(many)
    h.withdraw(h.local, many)
    out, _ = h.drain()
    assert all(len(m) <= MAX_MESSAGE for m in out[a])
    assert sorted(h.views[a].withdrawn()) == sorted(many)


def test_extended_message_packs_more(h):
    a = h.member("a")
    h.join(a, ctx=Context(extended_message=True), families=(IPV4,))
    h.settle()
    many = [P(f"10.{i >> 8}.{i & 255}.0/24") for i in range(3000)]
    h.announce(h.local, many, R1)
    out, _ = h.drain()
    assert len(out[a]) == 1
    assert len(h.views[a].announced()) == 3000


# --- IPv6 ------------------------------------------------------------------------------------


def test_ipv6_via_mp_reach_and_mp_unreach(h):
    a = h.member("a")
    h.join(a)
    h.settle()
    h.announce(h.local, [V1, V2], V6, IPV6)
    out, _ = h.drain()
    (u,) = decode_all(out[a])
    assert u.nlri == [] and u.withdrawn == []
    assert u.mp_reach is not None and u.mp_reach.family == IPV6
    assert u.mp_reach.next_hop == NH6
    assert set(u.mp_reach.nlri) == {V1, V2}
    assert h.views[a].routes[IPV6] == {V1: V6, V2: V6}

    h.withdraw(h.local, [V1], IPV6)
    out, _ = h.drain()
    (u,) = decode_all(out[a])
    assert u.mp_unreach is not None and u.mp_unreach.family == IPV6
    assert u.mp_unreach.withdrawn == [V1]
    assert h.views[a].routes[IPV6] == {V2: V6}


def test_ipv6_end_of_rib_is_an_empty_mp_unreach(h):
    a = h.member("a")
    h.join(a, families=(IPV6,))
    out, _ = h.drain()
    (u,) = decode_all(out[a])
    assert u.eor() == IPV6


# --- ADD-PATH send ---------------------------------------------------------------------------

AP = Context(add_path_tx=frozenset({IPV4}))


def paths(view, prefix=P1):
    return {pid: attrs for (pid, p), attrs in view.routes[IPV4].items() if p == prefix}


def test_addpath_sends_every_candidate_with_distinct_path_ids(h):
    a = h.member("a")
    h.join(a, ctx=AP, families=(IPV4,))
    h.settle()
    c1, c2, c3 = ibgp("c1"), ibgp("c2"), ebgp("c3")
    h.announce(c1, [P1], R1)
    h.announce(c2, [P1], R2)
    h.announce(c3, [P1], BETTER)
    h.drain()
    got = paths(h.views[a])
    assert sorted(got.values(), key=id) == sorted([R1, R2, BETTER], key=id)
    assert len(got) == 3  # three distinct path ids


def test_addpath_withdraws_the_path_id_of_a_vanished_candidate(h):
    a = h.member("a")
    h.join(a, ctx=AP, families=(IPV4,))
    h.settle()
    c1, c2 = ibgp("c1"), ibgp("c2")
    h.announce(c1, [P1], R1)
    h.announce(c2, [P1], R2)
    h.drain()
    before = paths(h.views[a])
    (pid1,) = [pid for pid, at in before.items() if at is R1]
    h.withdraw(c1, [P1])
    h.drain()
    assert h.views[a].withdrawn() == [(pid1, P1)]
    assert paths(h.views[a]) == {pid: at for pid, at in before.items() if pid != pid1}

    h.withdraw(c2, [P1])
    h.drain()
    assert paths(h.views[a]) == {}


def test_addpath_changed_candidate_keeps_its_path_id(h):
    a = h.member("a")
    h.join(a, ctx=AP, families=(IPV4,))
    h.settle()
    c1 = ibgp("c1")
    h.announce(c1, [P1], R1)
    h.drain()
    (pid,) = paths(h.views[a])
    h.announce(c1, [P1], R2)
    h.drain()
    assert paths(h.views[a]) == {pid: R2}
    assert h.views[a].withdrawn() == []


def test_addpath_received_paths_are_sent_as_separate_paths(h):
    a = h.member("a")
    h.join(a, ctx=AP, families=(IPV4,))
    h.settle()
    s = ibgp("s", addpath={IPV4})
    h.announce(s, [(1, P1), (2, P1)], R1)
    h.announce(s, [(3, P1)], R2)
    h.drain()
    got = paths(h.views[a])
    assert len(got) == 3
    assert sorted(got.values(), key=id) == sorted([R1, R1, R2], key=id)


def test_addpath_large_received_path_ids_stay_distinct(h):
    a = h.member("a")
    h.join(a, ctx=AP, families=(IPV4,))
    h.settle()
    s = ibgp("s", addpath={IPV4})
    h.announce(s, [(1, P1)], R1)
    h.announce(s, [(0x10001, P1)], R2)
    h.drain()
    assert len(paths(h.views[a])) == 2


def test_addpath_split_horizon(h):
    a, b = h.member("a"), h.member("b")
    h.join(a, ctx=AP, families=(IPV4,))
    h.join(b, ctx=AP, families=(IPV4,))
    h.settle()
    c = ibgp("c")
    h.announce(c, [P1], R1)
    h.announce(a.source, [P1], R2)
    h.drain()
    assert sorted(paths(h.views[b]).values(), key=id) == sorted([R1, R2], key=id)
    assert list(paths(h.views[a]).values()) == [R1]
    h.withdraw(a.source, [P1])
    h.drain()
    assert h.views[a].withdrawn() == []  # it never had its own path from us
    assert list(paths(h.views[a]).values()) == [R1]
    assert list(paths(h.views[b]).values()) == [R1]
    assert len(h.views[b].withdrawn()) == 1


def test_addpath_unchanged_paths_are_not_resent(h):
    a = h.member("a")
    h.join(a, ctx=AP, families=(IPV4,))
    h.settle()
    c1, c2 = ibgp("c1"), ibgp("c2")
    h.announce(c1, [P1], R1)
    h.announce(c2, [P1], R2)
    h.drain()
    h.withdraw(c1, [P1])
    out, _ = h.drain()
    assert h.views[a].announced() == []
    assert len(out[a]) == 1  # the withdrawal only


def test_addpath_filtered_candidates_are_not_sent(h):
    def no_export(src, attrs, prefix, fam):
        return None if NO_EXPORT in attrs.communities else attrs

    a = h.member("a")
    h.join(a, ctx=AP, export=no_export, families=(IPV4,))
    h.settle()
    c1, c2 = ibgp("c1"), ibgp("c2")
    h.announce(c1, [P1], R1)
    h.announce(c2, [P1], R2.replace(communities=(NO_EXPORT,)))
    h.drain()
    assert list(paths(h.views[a]).values()) == [R1]
    h.announce(c1, [P1], R1.replace(communities=(NO_EXPORT,)))  # now filtered: withdrawn
    h.drain()
    assert paths(h.views[a]) == {}
    assert len(h.views[a].withdrawn()) == 1


def test_addpath_initial_sync_and_merge(h):
    c1, c2 = ibgp("c1"), ibgp("c2")
    h.announce(c1, [P1], R1)
    h.announce(c2, [P1], R2)
    a = h.member("a")
    h.join(a, ctx=AP, families=(IPV4,))
    h.settle()
    assert len(paths(h.views[a])) == 2 and h.views[a].eor == [IPV4]
    b = h.member("b")
    h.join(b, ctx=AP, families=(IPV4,))
    h.settle()
    assert paths(h.views[b]) == paths(h.views[a])
    assert h.group(a) is h.group(b)


def test_addpath_member_with_routes_merges(h):
    a = h.member("a")
    h.join(a, ctx=AP, families=(IPV4,))
    h.settle()
    b = h.member("b")
    h.announce(b.source, [P1], R1)  # b's routes are in the table before it joins
    h.join(b, ctx=AP, families=(IPV4,))
    h.settle()
    assert paths(h.views[a]) != {} and paths(h.views[b]) == {}
    assert h.group(a) is h.group(b)


def test_addpath_refresh_resends_every_path(h):
    a = h.member("a")
    h.join(a, ctx=AP, families=(IPV4,))
    h.settle()
    c1, c2 = ibgp("c1"), ibgp("c2")
    h.announce(c1, [P1], R1)
    h.announce(c2, [P1], R2)
    h.settle()
    before = paths(h.views[a])
    refresh(h, a, ctx=AP, families=(IPV4,))
    h.settle()
    assert len(h.views[a].announced()) == 2
    assert paths(h.views[a]) == before


def test_addpath_and_plain_families_in_one_group(h):
    a = h.member("a")
    h.join(a, ctx=AP, families=(IPV4, IPV6))
    h.settle()
    c1, c2 = ibgp("c1"), ibgp("c2")
    for c, at in ((c1, V6), (c2, V6.replace(local_pref=300))):
        h.announce(c, [V1], at, IPV6)
    h.drain()
    # IPv6 is not in add_path_tx: only the best path, no path ids
    assert h.views[a].routes[IPV6] == {V1: V6.replace(local_pref=300)}


def test_prefix_dependent_export_is_evaluated_per_prefix(h):
    """Prefixes from one UPDATE share (source, attrs); with a prefix-list export policy the
    drain must not reuse the first prefix's verdict for the rest of the run."""

    def only_p2(src, attrs, prefix, fam):
        return attrs if prefix == P2 else None

    a = h.member("a")
    g = h.join(a, export=only_p2, families=(IPV4,))
    g.prefix_dependent = True
    h.settle()
    h.announce(h.local, [P1, P2, P3], R1)
    h.drain()
    assert h.views[a].routes[IPV4] == {P2: R1}


def test_attr_only_export_reuses_one_verdict_per_run(h):
    calls = []

    def counting(src, attrs, prefix, fam):
        calls.append(prefix)
        return attrs

    a = h.member("a")
    h.join(a, export=counting, families=(IPV4,))
    h.settle()
    calls.clear()
    h.announce(h.local, [P1, P2, P3], R1)
    h.drain()
    assert h.views[a].routes[IPV4] == {P1: R1, P2: R1, P3: R1}
    assert len(calls) == 1  # one export evaluation for the whole run of prefixes


def test_a_member_that_stays_unwritable_leaves_its_group(h):
    """A slow member must not hold up the others: after SLOW_AFTER seconds unwritable it is
    moved to a group of its own with the same pending state, and merges back once idle."""
    from bgpd.rib.export import SLOW_AFTER

    a, b = h.member("a"), h.member("b")
    h.join(a, families=(IPV4,))
    h.join(b, families=(IPV4,))
    h.settle()
    assert h.group(a) is h.group(b)
    b.writable = False
    b.unwritable_since = 100.0
    h.announce(h.local, [P1, P2], R1)
    out, more = h.ex.drain(now=100.0 + SLOW_AFTER / 2)  # not slow yet: everyone waits
    assert more and not any(out.values())
    out, more = h.ex.drain(now=100.0 + SLOW_AFTER + 0.1)
    for m, msgs in out.items():
        h.views[m].apply(msgs)
    assert h.group(a) is not h.group(b)
    assert h.views[a].routes[IPV4] == {P1: R1, P2: R1}
    assert h.views[b].routes[IPV4] == {}
    # b reads again: it gets exactly what it missed, and the groups become one again.
    b.writable = True
    b.unwritable_since = None
    h.settle()
    assert h.views[b].routes[IPV4] == {P1: R1, P2: R1}
    assert h.group(a) is h.group(b)


# --- members that come up while others sync (Exporter.join's fresh groups, ADD-PATH reuse) ---


class Counting:
    """A prefix-dependent export context (as BIRD's filters are: no result is cached on a
    set) that counts its runs and filters one source."""

    prefix_dependent = True

    def __init__(self, drop=None) -> None:
        self.calls: list = []
        self.drop = drop

    def __call__(self, src, attrs, prefix, fam):
        self.calls.append((src.name, prefix))
        return None if src is self.drop else attrs


def test_members_that_join_between_two_drains_share_one_initial_table(h):
    export = Counting()
    h.announce(h.local, [P1, P2], R1)
    a, b, c = h.member("a"), h.member("b"), h.member("c")
    h.announce(c.source, [P3], R2)  # c's own route is in the table before it joins
    for m in (a, b, c):
        h.join(m, export=export, families=(IPV4,))
    assert h.group(a) is h.group(b) is h.group(c) and len(h.ex.syncing) == 1
    h.announce(h.local, [P1], BETTER)  # changed before the first drain: still one export
    h.settle()
    assert sorted(export.calls) == [("c", P3), ("local", P1), ("local", P2)]
    for m in (a, b):
        assert h.views[m].routes[IPV4] == {P1: BETTER, P2: R1, P3: R2}
        assert h.views[m].eor == [IPV4]
    assert h.views[c].routes[IPV4] == {P1: BETTER, P2: R1}  # never its own route
    assert h.views[c].eor == [IPV4]


def test_a_member_joining_after_its_keys_group_sent_something_syncs_apart(h):
    h.announce(h.local, [P1, P2, P3], R1)
    a, b = h.member("a"), h.member("b")
    h.join(a, families=(IPV4,))
    h.drain(budget=1)  # a holds one route now
    h.join(b, families=(IPV4,))
    assert h.group(a) is not h.group(b)
    h.settle()
    for m in (a, b):
        assert h.views[m].routes[IPV4] == dict.fromkeys([P1, P2, P3], R1)
    assert h.views[b].eor == [IPV4] and h.group(a) is h.group(b)


def test_no_fresh_group_is_shared_across_keys_contexts_families_or_encodings(h):
    h.announce(h.local, [P1], R1)
    other = Counting()
    a = h.member("a")
    h.join(a, families=(IPV4,))
    ms = [h.member(n) for n in "bcdef"]
    h.join(ms[0], key="k2", families=(IPV4,))
    h.join(ms[1], export=other, families=(IPV4,))
    h.join(ms[2], families=(IPV4, IPV6))
    h.join(ms[3], ctx=AP, families=(IPV4,))
    h.join(ms[4], ctx=Context(as4=False), families=(IPV4,))
    assert len({id(h.group(m)) for m in [a, *ms]}) == 6
    h.settle()
    for m in [a, *ms]:
        assert {k[1] if isinstance(k, tuple) else k for k in h.views[m].routes[IPV4]} == {P1}


def test_a_member_that_cannot_take_output_keeps_new_members_out_of_its_group(h):
    h.announce(h.local, [P1], R1)
    a, b = h.member("a"), h.member("b")
    h.join(a, families=(IPV4,))
    a.writable = False
    h.join(b, families=(IPV4,))
    assert h.group(a) is not h.group(b)
    h.drain()
    assert h.views[b].routes[IPV4] == {P1: R1}


def test_a_refresh_never_joins_another_members_fresh_group(h):
    """A route refresh or a resync starts from what the member may hold: not shared with
    members that hold nothing (they would get withdrawals of routes they never had)."""
    a = h.member("a")
    h.join(a, families=(IPV4,))
    h.announce(h.local, [P1, P2], R1)
    h.settle()
    b = h.member("b")
    h.join(b, families=(IPV4,))
    h.ex.rejoin(a, "k", Context(), identity, (IPV4,), resync=True)
    assert h.group(a) is not h.group(b)
    c = h.member("c")
    h.join(c, families=(IPV4,))
    assert h.group(c) is h.group(b)  # the fresh group is still there for new members
    h.settle()
    for m in (b, c):
        assert h.views[m].withdrawn() == [] and h.views[m].routes[IPV4] == {P1: R1, P2: R1}
    assert h.views[a].routes[IPV4] == {P1: R1, P2: R1}


def test_addpath_sync_takes_the_steady_groups_results(h):
    """A member that joins an ADD-PATH key whose steady group has nothing pending for a
    prefix gets that group's results for it (a filtered path stays filtered) without an
    export; a prefix still pending there is exported for it."""
    c1, c2, c3 = ibgp("c1"), ibgp("c2"), ibgp("c3")
    export = Counting(drop=c3)
    a = h.member("a")
    h.join(a, ctx=AP, export=export, families=(IPV4,))
    h.settle()
    h.announce(c1, [P1, P2], R1)
    h.announce(c2, [P1], R2)
    h.announce(c3, [P1], BETTER)  # filtered by the export
    h.drain()
    assert len(export.calls) == 4
    export.calls.clear()

    b = h.member("b")
    h.join(b, ctx=AP, export=export, families=(IPV4,))
    h.settle()
    assert export.calls == []
    assert h.views[b].routes[IPV4] == h.views[a].routes[IPV4]
    assert sorted(paths(h.views[b]).values(), key=id) == sorted([R1, R2], key=id)
    assert h.group(a) is h.group(b)

    # the steady group cannot send: P2's change is pending there, P1 is not
    a.writable = b.writable = False
    h.announce(c1, [P2], R2)
    c = h.member("c")
    h.join(c, ctx=AP, export=export, families=(IPV4,))
    h.drain()
    assert export.calls == [("c1", P2)]
    assert paths(h.views[c], P2) and list(paths(h.views[c], P2).values()) == [R2]
    assert sorted(paths(h.views[c]).values(), key=id) == sorted([R1, R2], key=id)
    a.writable = b.writable = True
    h.settle()
    assert h.views[a].routes[IPV4] == h.views[b].routes[IPV4] == h.views[c].routes[IPV4]
    assert h.group(a) is h.group(c)


def test_addpath_reuse_holds_split_horizon_for_the_joining_member(h):
    """The results are the steady group's; what each member is kept from is the new
    group's own: a joining member's own path is not sent back to it."""
    export = Counting()
    a = h.member("a")
    h.join(a, ctx=AP, export=export, families=(IPV4,))
    h.settle()
    b = h.member("b")
    h.announce(b.source, [P1], R1)  # b's path is in the table (and at a) before b joins
    h.drain()
    assert list(paths(h.views[a]).values()) == [R1]
    export.calls.clear()
    h.join(b, ctx=AP, export=export, families=(IPV4,))
    h.settle()
    assert export.calls == [] and paths(h.views[b]) == {}
