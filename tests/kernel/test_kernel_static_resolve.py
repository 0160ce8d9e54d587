"""Next hops resolve through our own static routes too (HostState.set_static): Calico's
reachableBy writes ``route <peer>/32 via <gateway>`` so that the routes the peer sends,
whose next hop is the peer, go the pinned way (BIRD resolves through its static routes).
:meth:`HostState.reach` says what answered."""

import ipaddress

from bgpd.kernel import HostState
from bgpd.kernel.netlink import (
    AF_INET,
    IFF_LOWER_UP,
    IFF_UP,
    RTN_BLACKHOLE,
    RTN_UNICAST,
    AddrMsg,
    LinkMsg,
    RouteMsg,
)
from bgpd.kernel.routes import Unresolved
from bgpd.wire import prefix as pfx

UP = IFF_UP | IFF_LOWER_UP


def a(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def p(text: str) -> bytes:
    return pfx.from_network(ipaddress.ip_network(text))


def host() -> HostState:
    h = HostState()
    h.set_link(LinkMsg(2, "eth0", UP))
    h.set_link(LinkMsg(3, "tunl0", UP))
    h.add_addr(AddrMsg(AF_INET, 2, 16, a("10.192.0.2"), a("10.192.0.2"), 0, 0))
    h.add_addr(AddrMsg(AF_INET, 2, 16, a("10.224.0.2"), a("10.224.0.2"), 0, 0))
    return h


def test_a_static_via_route_carries_next_hops():
    h = host()
    assert type(h.resolve(AF_INET, a("10.225.0.4"))) is Unresolved
    gen = h.generation
    h.set_static([(AF_INET, p("10.225.0.4/32"), RTN_UNICAST, a("10.224.0.1"), None)])
    assert h.generation > gen
    assert h.reach(AF_INET, a("10.225.0.4")) == (((a("10.224.0.1"), 2),), "static")
    # the same list again changes nothing
    gen = h.generation
    h.set_static([(AF_INET, p("10.225.0.4/32"), RTN_UNICAST, a("10.224.0.1"), None)])
    assert h.generation == gen


def test_longest_prefix_then_connected_static_route():
    h = host()
    # another program's default route, our /8 static, a connected /16
    h.add_route(RouteMsg(AF_INET, p("0.0.0.0/0"), 254, 3, 0, 1, 0, ((a("10.192.0.1"), 2),)))
    h.set_static(
        [
            (AF_INET, p("10.0.0.0/8"), RTN_UNICAST, a("10.224.0.1"), None),
            (AF_INET, p("10.192.0.0/16"), RTN_UNICAST, a("10.224.0.9"), None),
            (AF_INET, p("172.16.0.0/16"), RTN_UNICAST, None, "tunl0"),
            (AF_INET, p("198.51.100.0/24"), RTN_BLACKHOLE, None, None),
        ]
    )
    assert h.reach(AF_INET, a("10.1.2.3")) == (((a("10.224.0.1"), 2),), "static")
    # equal length: the connected network wins (BIRD: direct 240 over static 200)
    assert h.reach(AF_INET, a("10.192.0.3")) == (((a("10.192.0.3"), 2),), "connected")
    assert h.reach(AF_INET, a("8.8.8.8")) == (((a("10.192.0.1"), 2),), "route")
    assert h.reach(AF_INET, a("172.16.0.5")) == (((a("172.16.0.5"), 3),), "static")
    r, how = h.reach(AF_INET, a("198.51.100.7"))
    assert type(r) is Unresolved and "static blackhole" in r.reason and how is None


def test_a_static_gateway_resolves_through_connected_networks_only():
    h = host()
    h.add_route(RouteMsg(AF_INET, p("10.50.0.0/16"), 254, 3, 0, 1, 0, ((a("10.192.0.1"), 2),)))
    # the gateway is behind another route, not a neighbor: the static route carries nothing
    h.set_static([(AF_INET, p("10.225.0.4/32"), RTN_UNICAST, a("10.50.0.1"), None)])
    assert type(h.resolve(AF_INET, a("10.225.0.4"))) is Unresolved
    # a static route's interface that is down: the same
    h.set_static([(AF_INET, p("10.225.0.4/32"), RTN_UNICAST, None, "tunl0")])
    h.set_link(LinkMsg(3, "tunl0", 0))
    assert type(h.resolve(AF_INET, a("10.225.0.4"))) is Unresolved
