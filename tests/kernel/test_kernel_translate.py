"""translate() and next-hop resolution, without netlink: host state built from parsed messages."""

import ipaddress

import pytest

from bgpd.kernel import HostRoute, HostSource, HostState, KernelRoute, Unresolved, translate
from bgpd.kernel.netlink import (
    AF_INET,
    AF_INET6,
    IFF_LOWER_UP,
    IFF_UP,
    RTN_BLACKHOLE,
    RTN_UNICAST,
    RTN_UNREACHABLE,
    RTPROT_KERNEL,
    AddrMsg,
    LinkMsg,
    RouteMsg,
)
from bgpd.kernel.routes import FibSettings
from bgpd.rib import DecisionConfig, LocRib, Source, multipath_of
from bgpd.wire import AttrSet, intern
from bgpd.wire import prefix as pfx
from bgpd.wire.constants import AS_SEQUENCE, IPV4_UNICAST, IPV6_UNICAST

UP = IFF_UP | IFF_LOWER_UP
S = FibSettings(table=254, protocol=186, metric=0)


def a(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def p(text: str) -> bytes:
    return pfx.from_network(ipaddress.ip_network(text))


def host() -> HostState:
    """eth0 10.0.0.1/24, eth1 10.1.0.1/24, eth2 down 10.2.0.1/24; kernel routes:
    192.168.0.0/16 via 10.0.0.254 (eth0), 172.16.0.0/12 dev eth1, 203.0.113.0/24 blackhole,
    default via 10.1.0.254; IPv6 2001:db8:1::1/64 on eth0."""
    h = HostState()
    h.set_link(LinkMsg(1, "lo", UP))
    h.set_link(LinkMsg(2, "eth0", UP))
    h.set_link(LinkMsg(3, "eth1", UP))
    h.set_link(LinkMsg(4, "eth2", IFF_UP))  # no carrier
    h.add_addr(AddrMsg(AF_INET, 1, 8, a("127.0.0.1"), a("127.0.0.1"), 254, 0))
    h.add_addr(AddrMsg(AF_INET, 2, 24, a("10.0.0.1"), a("10.0.0.1"), 0, 0))
    h.add_addr(AddrMsg(AF_INET, 3, 24, a("10.1.0.1"), a("10.1.0.1"), 0, 0))
    h.add_addr(AddrMsg(AF_INET, 4, 24, a("10.2.0.1"), a("10.2.0.1"), 0, 0))
    h.add_addr(AddrMsg(AF_INET6, 2, 64, a("2001:db8:1::1"), a("2001:db8:1::1"), 0, 0))
    rk = RTPROT_KERNEL
    for dst, idx in (("10.0.0.0/24", 2), ("10.1.0.0/24", 3), ("10.2.0.0/24", 4)):
        h.add_route(RouteMsg(AF_INET, p(dst), 254, rk, 253, RTN_UNICAST, 0, ((None, idx),)))
    h.add_route(RouteMsg(AF_INET, p("192.168.0.0/16"), 254, 3, 0, 1, 0, ((a("10.0.0.254"), 2),)))
    h.add_route(RouteMsg(AF_INET, p("172.16.0.0/12"), 254, 3, 253, 1, 0, ((None, 3),)))
    h.add_route(RouteMsg(AF_INET, p("203.0.113.0/24"), 254, 3, 0, RTN_BLACKHOLE, 0, ()))
    h.add_route(RouteMsg(AF_INET, p("0.0.0.0/0"), 254, 3, 0, 1, 0, ((a("10.1.0.254"), 3),)))
    return h


def test_resolve_direct_recursive_device_default():
    h = host()
    assert h.resolve(AF_INET, a("10.0.0.7")) == ((a("10.0.0.7"), 2),)
    assert h.resolve(AF_INET, a("192.168.3.4")) == ((a("10.0.0.254"), 2),)
    assert h.resolve(AF_INET, a("172.16.9.9")) == ((a("172.16.9.9"), 3),)
    assert h.resolve(AF_INET, a("198.18.0.1")) == ((a("10.1.0.254"), 3),)  # the default


def test_resolve_refusals_carry_a_reason():
    h = host()
    r = h.resolve(AF_INET, a("203.0.113.5"))
    assert r == Unresolved("next hop 203.0.113.5 is covered by a blackhole route (203.0.113.0/24)")
    assert "local address" in h.resolve(AF_INET, a("10.0.0.1")).reason
    assert "link-local" in h.resolve(AF_INET6, a("fe80::1")).reason
    assert h.resolve(AF_INET6, a("2001:db8:1::9")) == ((a("2001:db8:1::9"), 2),)
    assert h.resolve(AF_INET6, a("2001:db8:2::9")).reason == "no route to next hop 2001:db8:2::9"


def test_resolve_skips_links_without_carrier_and_follows_state_changes():
    h = host()
    # eth2 has no carrier: 10.2.0.5 falls through to the default route
    assert h.resolve(AF_INET, a("10.2.0.5")) == ((a("10.1.0.254"), 3),)
    h.set_link(LinkMsg(4, "eth2", UP))
    assert h.resolve(AF_INET, a("10.2.0.5")) == ((a("10.2.0.5"), 4),)
    assert h.set_link(LinkMsg(4, "eth2", 0)) is True  # administratively down: kernel flushes
    gone = h.del_link(3)
    assert {r.dst for r in gone} == {p("10.1.0.0/24"), p("172.16.0.0/12"), p("0.0.0.0/0")}
    assert "no route" in h.resolve(AF_INET, a("198.18.0.1")).reason


def test_lowest_metric_wins_and_longest_prefix_first():
    h = host()
    h.add_route(RouteMsg(AF_INET, p("192.168.1.0/24"), 254, 3, 0, 1, 200, ((a("10.1.0.9"), 3),)))
    h.add_route(RouteMsg(AF_INET, p("192.168.1.0/24"), 254, 3, 0, 1, 100, ((a("10.1.0.8"), 3),)))
    assert h.resolve(AF_INET, a("192.168.1.1")) == ((a("10.1.0.8"), 3),)
    assert h.resolve(AF_INET, a("192.168.2.1")) == ((a("10.0.0.254"), 2),)
    assert [r.metric for r in h.routes_for(AF_INET, p("192.168.1.0/24"))] == [100, 200]


# --- translate -------------------------------------------------------------------------------


def bgp(name: str, asn: int = 65001) -> Source:
    return Source(name, "bgp", asn=asn, local_as=65000, address_key=a(name))


def attrs(nh: str | bytes | None, path=(65001,)) -> AttrSet:
    hop = a(nh) if isinstance(nh, str) else nh
    return intern(AttrSet(origin=0, as_path=((AS_SEQUENCE, path),), next_hop=hop))


def run(loc: LocRib, prefix: str, h: HostState, deps=None):
    key = p(prefix)
    return translate(loc.family, key, multipath_of(loc.table.get(key)), h, S, deps)


def test_single_path_direct_and_recursive():
    h = host()
    loc = LocRib(IPV4_UNICAST)
    loc.announce(bgp("10.0.0.2"), [p("10.244.1.0/26")], attrs("10.0.0.2"))
    loc.announce(bgp("10.0.0.3"), [p("10.244.2.0/26")], attrs("192.168.7.7"))
    loc.commit()
    deps: list = []
    assert run(loc, "10.244.1.0/26", h, deps) == KernelRoute(
        AF_INET, p("10.244.1.0/26"), RTN_UNICAST, ((a("10.0.0.2"), 2),), 0, 254, 186
    )
    assert deps == [a("10.0.0.2")]
    r = run(loc, "10.244.2.0/26", h)
    assert r.nexthops == ((a("10.0.0.254"), 2),)  # via the kernel route's gateway


def test_ecmp_is_one_multipath_route_sorted_and_deduplicated():
    h = host()
    loc = LocRib(IPV4_UNICAST, DecisionConfig(multipath=4))
    for nh in ("10.1.0.5", "10.0.0.5", "192.168.0.1"):
        loc.announce(bgp(nh), [p("10.9.0.0/16")], attrs(nh))
    loc.announce(bgp("10.0.0.6"), [p("10.9.0.0/16")], attrs("192.168.0.2"))  # same gateway
    loc.commit()
    assert len(multipath_of(loc.table[p("10.9.0.0/16")])) == 4
    r = run(loc, "10.9.0.0/16", h)
    assert r.nexthops == (
        (a("10.0.0.5"), 2),
        (a("10.0.0.254"), 2),
        (a("10.1.0.5"), 3),
    )


def test_partial_ecmp_keeps_the_resolvable_paths():
    h = host()
    loc = LocRib(IPV4_UNICAST, DecisionConfig(multipath=2))
    loc.announce(bgp("10.0.0.5"), [p("10.9.0.0/16")], attrs("10.0.0.5"))
    loc.announce(bgp("10.0.0.6"), [p("10.9.0.0/16")], attrs("203.0.113.1"))  # blackholed
    loc.commit()
    assert run(loc, "10.9.0.0/16", h).nexthops == ((a("10.0.0.5"), 2),)


def test_unresolvable_is_not_installed_with_the_reason():
    h = host()
    h.del_route(RouteMsg(AF_INET, p("0.0.0.0/0"), 254, 3, 0, 1, 0, ()))
    loc = LocRib(IPV4_UNICAST)
    loc.announce(bgp("10.0.0.2"), [p("10.5.0.0/16")], attrs("198.51.100.1"))
    loc.announce(bgp("10.0.0.2"), [p("10.6.0.0/16")], attrs(None))
    loc.commit()
    assert run(loc, "10.5.0.0/16", h) == Unresolved("no route to next hop 198.51.100.1")
    assert run(loc, "10.6.0.0/16", h) == Unresolved("no next hop")


def test_ipv6_next_hops():
    h = host()
    loc = LocRib(IPV6_UNICAST)
    glob, ll = a("2001:db8:1::2"), a("fe80::2")
    loc.announce(bgp("2001:db8:1::2"), [p("2001:db8:99::/48")], attrs(glob + ll))
    loc.announce(bgp("2001:db8:1::3"), [p("2001:db8:98::/48")], attrs("::ffff:10.0.0.2"))
    loc.commit()
    r = run(loc, "2001:db8:99::/48", h)
    assert r.nexthops == ((ll, 2),)  # directly connected: the link-local address, as BIRD
    assert r.metric == 1024  # what the kernel stores for 0
    assert "IPv4 next hop" in run(loc, "2001:db8:98::/48", h).reason


@pytest.mark.parametrize(
    "route, expect",
    [
        (HostRoute(RTN_BLACKHOLE), (RTN_BLACKHOLE, ())),
        (HostRoute(RTN_UNREACHABLE), (RTN_UNREACHABLE, ())),
        (HostRoute(RTN_UNICAST, a("10.0.0.9")), (RTN_UNICAST, ((a("10.0.0.9"), 2),))),
        (HostRoute(RTN_UNICAST, a("192.168.0.9")), (RTN_UNICAST, ((a("10.0.0.254"), 2),))),
        (HostRoute(RTN_UNICAST, None, interface="eth1"), (RTN_UNICAST, ((None, 3),))),
        (
            HostRoute(RTN_UNICAST, a("10.7.0.1"), interface="eth1"),
            (RTN_UNICAST, ((a("10.7.0.1"), 3),)),
        ),
    ],
)
def test_static_routes(route, expect):
    h = host()
    loc = LocRib(IPV4_UNICAST)
    src = HostSource("static", -3)
    src.routes[IPV4_UNICAST][p("10.244.12.0/26")] = route
    loc.announce(src, [p("10.244.12.0/26")], attrs(None, ()))
    loc.commit()
    r = run(loc, "10.244.12.0/26", h)
    assert (r.type, r.nexthops) == expect


def test_static_on_a_missing_interface_is_unresolved():
    h = host()
    loc = LocRib(IPV4_UNICAST)
    src = HostSource("static", -3)
    src.routes[IPV4_UNICAST][p("10.8.0.0/16")] = HostRoute(RTN_UNICAST, None, interface="nope0")
    loc.announce(src, [p("10.8.0.0/16")], attrs(None, ()))
    assert run(loc, "10.8.0.0/16", h) == Unresolved("no interface nope0")


def test_kernel_connected_and_local_routes_are_not_installed():
    h = host()
    loc = LocRib(IPV4_UNICAST)
    for kind in ("kernel", "connected"):
        src = HostSource(kind, -1)
        loc.announce(src, [p(f"10.{len(kind)}.0.0/16")], attrs(None, ()))
    loc.announce(Source("local", "local"), [p("10.99.0.0/16")], attrs(None, ()))
    assert run(loc, "10.6.0.0/16", h) is None
    assert run(loc, "10.9.0.0/16", h) is None
    assert run(loc, "10.99.0.0/16", h) is None
    assert run(loc, "10.100.0.0/16", h) is None  # no route at all


def test_settings_are_applied():
    h = host()
    loc = LocRib(IPV4_UNICAST)
    loc.announce(bgp("10.0.0.2"), [p("10.244.1.0/26")], attrs("10.0.0.2"))
    key = p("10.244.1.0/26")
    r = translate(loc.family, key, multipath_of(loc.table[key]), h, FibSettings(100, 12, 32))
    assert (r.table, r.protocol, r.metric) == (100, 12, 32)
