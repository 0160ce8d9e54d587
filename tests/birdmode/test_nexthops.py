"""BIRD's view of BGP next hops in bird mode (birdmode.NextHops), on a Loc-RIB: what the
differential tests found (tests/birddiff) as unit checks.

* BIRD compares IGP metrics before router IDs and merges only equal ones
  (bgp_rte_better, bgp_rte_mergable): a next hop on a connected network has metric 0, one
  reached through a route "unknown" (2^31); so a directly reachable path wins and is not
  merged with a routed one; two routed ones are merged.
* A resolvable path beats an unresolvable one whatever its LOCAL_PREF.
* A change of the host's table that changes an answer makes the routes be decided again.
"""

import ipaddress

from bgpd.kernel import HostState
from bgpd.kernel.netlink import AF_INET, IFF_LOWER_UP, IFF_UP, AddrMsg, LinkMsg, RouteMsg
from bgpd.rib import DecisionConfig, LocRib, Source
from bgpd.rib.table import best_of, multipath_of
from bgpd.speaker.birdmode import IGP_METRIC_UNKNOWN, NextHops
from bgpd.wire import AttrSet, intern
from bgpd.wire import prefix as pfx
from bgpd.wire.constants import IPV4_UNICAST

UP = IFF_UP | IFF_LOWER_UP
LOCAL_AS = 64512


def a(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def p(text: str) -> bytes:
    return pfx.from_network(ipaddress.ip_network(text))


class _Rde:
    """What NextHops reads of the engine: ``rib.loc`` and ``rib.cfg``."""

    def __init__(self, loc: LocRib) -> None:
        self.rib = self
        self.loc = {IPV4_UNICAST: loc}
        self.cfg = loc.cfg


def _setup():
    h = HostState()
    h.set_link(LinkMsg(2, "eth0", UP))
    h.add_addr(AddrMsg(AF_INET, 2, 16, a("10.192.0.2"), a("10.192.0.2"), 0, 0))
    h.add_route(RouteMsg(AF_INET, p("10.50.0.0/16"), 254, 3, 0, 1, 0, ((a("10.192.0.1"), 2),)))
    cfg = DecisionConfig(multipath=16)
    loc = LocRib(IPV4_UNICAST, cfg)
    nh = NextHops(h, _Rde(loc))
    cfg.nexthop_ok = nh.nexthop_ok
    cfg.igp_cost = nh.igp_cost
    return h, loc, nh


def _peer(n: int) -> Source:
    return Source(
        f"p{n}",
        "bgp",
        asn=LOCAL_AS,
        local_as=LOCAL_AS,
        router_id=n,
        address_key=a(f"10.192.0.{n}"),
        index=10 + n,
    )


def _attrs(nh: str, lp: int = 100) -> AttrSet:
    return intern(AttrSet(origin=0, as_path=(), next_hop=a(nh), local_pref=lp))


def test_answers():
    _h, _loc, nh = _setup()
    assert nh.lookup(AF_INET, a("10.192.0.9")) == (True, 0, "eth0")
    assert nh.lookup(AF_INET, a("10.50.0.3")) == (True, IGP_METRIC_UNKNOWN, "eth0")
    assert nh.lookup(AF_INET, a("198.51.100.1")) == (False, IGP_METRIC_UNKNOWN, "")
    assert nh.lookup(AF_INET, a("10.192.0.2"))[0] is False  # our own address


def test_igp_metric_decides_and_splits_ecmp():
    h, loc, nh = _setup()
    x = p("192.168.1.0/26")
    p3, p4, p5 = _peer(3), _peer(4), _peer(5)
    # p5 has the lowest router id... of the routed ones; p3 (higher id) is on the subnet
    loc.announce(p5, [x], _attrs("10.50.0.5"))
    loc.announce(p4, [x], _attrs("10.50.0.4"))
    loc.announce(p3, [x], _attrs("10.192.0.3"))
    loc.commit()
    entry = loc.table[x]
    assert best_of(entry) is p3 and multipath_of(entry) == (p3,)
    lost = {r.cand: step for r, step in entry.lost.items()}
    assert lost[p4] == "igp_cost" and lost[p5] == "igp_cost"

    # p3's next hop now goes through a route too (its subnet is gone): all three routed,
    # equal: merged, once the host change is refreshed
    h.del_addr(AddrMsg(AF_INET, 2, 16, a("10.192.0.2"), a("10.192.0.2"), 0, 0))
    h.add_addr(AddrMsg(AF_INET, 2, 24, a("10.192.1.2"), a("10.192.1.2"), 0, 0))
    h.add_route(RouteMsg(AF_INET, p("10.192.0.0/24"), 254, 3, 0, 1, 0, ((a("10.192.1.1"), 2),)))
    h.add_route(RouteMsg(AF_INET, p("10.50.0.0/16"), 254, 3, 0, 1, 0, ((a("10.192.1.1"), 2),)))
    assert nh.refresh() >= 1
    loc.commit()
    entry = loc.table[x]
    assert set(multipath_of(entry)) == {p3, p4, p5}


def test_unresolvable_loses_whatever_its_local_pref():
    _h, loc, _nh = _setup()
    x = p("192.168.2.0/26")
    p3, p4 = _peer(3), _peer(4)
    loc.announce(p3, [x], _attrs("198.51.100.1", lp=1000))
    loc.announce(p4, [x], _attrs("10.192.0.4", lp=100))
    loc.commit()
    entry = loc.table[x]
    lost = {r.cand: step for r, step in entry.lost.items()}
    assert best_of(entry) is p4 and lost[p3] == "nexthop_unreachable"
