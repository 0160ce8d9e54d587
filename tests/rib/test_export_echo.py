"""``skip_next_hop_echo`` (BIRD's rule, bgpd/speaker/birdmode.py): an export group whose
context sets it keeps from each member the routes whose outgoing NEXT_HOP is that member's
own address (BIRD 1.6.8's bgp_get_bucket drops them as "Invalid NEXT_HOP attribute"); the
other members still get them. Without the flag, nothing changes."""

from rib_helpers import IPV4, IPV6, A, Member, P, View, ibgp, ip

from bgpd.rib import Exporter, Source
from bgpd.wire import Context
from bgpd.wire.attrs import intern

P1 = P("10.0.1.0/24")
P2 = P("10.0.2.0/24")
V1 = P("2001:db8:1::/48")


class Echo:
    """An export context that sends every route as it is, with BIRD's echo rule."""

    prefix_dependent = True
    skip_next_hop_echo = True

    def __call__(self, src, attrs, prefix, fam):
        return attrs


class Plain(Echo):
    skip_next_hop_echo = False


def _setup(context, addpath=False):
    from rib_helpers import locribs

    locs = locribs()
    ex = Exporter(locs)
    a = Member(ibgp("a", address="10.9.0.1", addpath=frozenset()))
    b = Member(ibgp("b", address="10.9.0.2"))
    c6 = Member(ibgp("c6", address="2001:db8::c"))
    tx = frozenset({IPV4, IPV6}) if addpath else frozenset()
    ctx = Context(add_path_tx=tx)
    views = {}
    for m in (a, b, c6):
        views[m] = View(Context(ibgp=True, add_path_rx=tx))
        ex.join(m, "k", ctx, context, (IPV4, IPV6))
    return locs, ex, (a, b, c6), views


def _drain(ex, views):
    for _ in range(50):
        out, more = ex.drain()
        for m, msgs in out.items():
            views[m].apply(msgs)
        if not more:
            return
    raise AssertionError("no end")


def _held(view, fam) -> dict:
    """prefix -> attrs, path ids left out."""
    return {k[1] if isinstance(k, tuple) else k: v for k, v in view.routes[fam].items()}


def _commit(locs):
    for t in locs.values():
        t.commit()


def test_route_with_a_members_address_as_next_hop_is_kept_from_it():
    for addpath in (False, True):
        locs, ex, (a, b, c6), views = _setup(Echo(), addpath)
        local = Source("local", "static", index=1)
        to_a = A(next_hop=ip("10.9.0.1"), local_pref=100)
        other = A(next_hop=ip("10.9.0.7"), local_pref=100)
        locs[IPV4].announce(local, [P1], to_a)
        locs[IPV4].announce(local, [P2], other)
        v6 = intern(A(next_hop=ip("2001:db8::c") + ip("fe80::c"), local_pref=100))
        locs[IPV6].announce(local, [V1], v6)
        _commit(locs)
        _drain(ex, views)
        assert P1 not in _held(views[a], IPV4) and P2 in _held(views[a], IPV4), addpath
        assert _held(views[b], IPV4) == {P1: to_a, P2: other}, addpath
        # IPv6: the global address of a (global, link-local) pair is the member's
        assert V1 not in _held(views[c6], IPV6) and V1 in _held(views[a], IPV6), addpath

        # the next hop moves away from a: a gets the route; back to a: a gets a withdrawal
        locs[IPV4].announce(local, [P1], other)
        _commit(locs)
        _drain(ex, views)
        assert _held(views[a], IPV4).get(P1) == other, addpath
        locs[IPV4].announce(local, [P1], to_a)
        _commit(locs)
        _drain(ex, views)
        assert P1 not in _held(views[a], IPV4), addpath
        assert _held(views[b], IPV4)[P1] == to_a, addpath


def test_without_the_flag_every_member_gets_it():
    locs, ex, (a, b, _c6), views = _setup(Plain())
    local = Source("local", "static", index=1)
    to_a = A(next_hop=ip("10.9.0.1"), local_pref=100)
    locs[IPV4].announce(local, [P1], to_a)
    _commit(locs)
    _drain(ex, views)
    assert _held(views[a], IPV4) == {P1: to_a} == _held(views[b], IPV4)
