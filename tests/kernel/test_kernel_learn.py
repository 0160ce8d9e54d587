"""Host routes into the Loc-RIB from parsed netlink messages (no kernel needed)."""

import ipaddress

from bgpd.kernel import (
    HostRoute,
    HostRoutes,
    InterfaceFilter,
    LocRibSink,
    PrefixFilter,
    StaticRoute,
)
from bgpd.kernel.netlink import (
    AF_INET,
    AF_INET6,
    IFF_LOWER_UP,
    IFF_UP,
    RTN_BLACKHOLE,
    RTN_UNICAST,
    RTPROT_KERNEL,
    AddrMsg,
    LinkMsg,
    RouteMsg,
)
from bgpd.kernel.routes import FibSettings
from bgpd.rib import LocRib, best_of
from bgpd.wire import prefix as pfx
from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST

UP = IFF_UP | IFF_LOWER_UP


def a(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def p(text: str) -> bytes:
    return pfx.from_network(ipaddress.ip_network(text))


class StubFib:
    def __init__(self):
        self.external = []
        self.changes = []
        self.touched = []

    def route_changed_externally(self, msg, deleted):
        self.external.append((msg.dst, deleted))

    def resolver_changed(self, flushed=()):
        self.changes.append(set(flushed))

    def host_route_changed(self, af, dst):
        self.touched.append(dst)


def make(**kw):
    locs = {IPV4_UNICAST: LocRib(IPV4_UNICAST), IPV6_UNICAST: LocRib(IPV6_UNICAST)}
    commits = []
    h = HostRoutes(
        LocRibSink(locs, on_commit=lambda: commits.append(1)),
        settings=FibSettings(254, 186, 0),
        **kw,
    )
    h.fib = StubFib()
    return h, locs[IPV4_UNICAST], commits


def learned(h, src, fam=IPV4_UNICAST) -> dict:
    return {pfx.to_str(k, fam[0]): v for k, v in src.routes[fam].items()}


def base(h):
    h.link(LinkMsg(1, "lo", UP))
    h.link(LinkMsg(2, "eth0", UP))
    h.link(LinkMsg(3, "cali12345", UP))
    h.addr(AddrMsg(AF_INET, 1, 8, a("127.0.0.1"), a("127.0.0.1"), 254, 0))
    h.addr(AddrMsg(AF_INET, 2, 24, a("10.0.0.1"), a("10.0.0.1"), 0, 0))
    h.addr(AddrMsg(AF_INET, 3, 32, a("169.254.1.1"), a("169.254.1.1"), 0, 0))
    h.addr(AddrMsg(AF_INET6, 2, 64, a("fe80::1"), a("fe80::1"), 253, 0))
    h.addr(AddrMsg(AF_INET6, 2, 64, a("2001:db8::1"), a("2001:db8::1"), 0, 0))
    h.flush()


def test_connected_follows_globs_scopes_and_link_state():
    h, loc, _ = make(interfaces=InterfaceFilter(["-cali*", "*"]))
    base(h)
    assert learned(h, h.connected) == {"10.0.0.0/24": HostRoute(RTN_UNICAST, None, 2, "eth0", 0)}
    assert learned(h, h.connected, IPV6_UNICAST) == {
        "2001:db8::/64": HostRoute(RTN_UNICAST, None, 2, "eth0", 0)
    }
    assert best_of(loc.table[p("10.0.0.0/24")]) is h.connected
    assert h.connected.interface_of(IPV4_UNICAST, p("10.0.0.0/24")) == "eth0"
    h.link(LinkMsg(2, "eth0", IFF_UP))  # carrier lost
    h.flush()
    assert learned(h, h.connected) == {}
    assert p("10.0.0.0/24") not in loc.table
    h.link(LinkMsg(2, "eth0", UP))
    h.addr(AddrMsg(AF_INET, 2, 24, a("10.0.0.1"), a("10.0.0.1"), 0, 0), deleted=True)
    h.flush()
    assert learned(h, h.connected) == {}
    assert h.fib.changes[-1] == {2}  # an address went: routes through eth0 may be gone


def test_kernel_routes_are_learned_by_prefix_list_not_ours_not_proto_kernel():
    h, loc, commits = make(kernel_prefixes=PrefixFilter(["10.244.0.0/16 le 32"]))
    base(h)
    bh = RouteMsg(AF_INET, p("10.244.12.0/26"), 254, 3, 0, RTN_BLACKHOLE, 0, ())
    pod = RouteMsg(AF_INET, p("10.244.12.5/32"), 254, 80, 253, RTN_UNICAST, 20, ((None, 3),))
    other = RouteMsg(AF_INET, p("192.168.0.0/16"), 254, 3, 0, 1, 0, ((a("10.0.0.254"), 2),))
    kern = RouteMsg(AF_INET, p("10.244.7.0/24"), 254, RTPROT_KERNEL, 253, 1, 0, ((None, 2),))
    ours = RouteMsg(AF_INET, p("10.244.9.0/24"), 254, 186, 0, 1, 0, ((a("10.0.0.2"), 2),))
    elsewhere = RouteMsg(AF_INET, p("10.244.8.0/24"), 100, 3, 0, 1, 0, ((None, 2),))
    for r in (bh, pod, other, kern, ours, elsewhere):
        h.route(r)
    h.flush()
    assert learned(h, h.kernel) == {
        "10.244.12.0/26": HostRoute(RTN_BLACKHOLE, None, 0, None, 0),
        "10.244.12.5/32": HostRoute(RTN_UNICAST, None, 3, "cali12345", 20),
    }
    assert h.fib.external == [(p("10.244.9.0/24"), False)]
    assert h.kernel.interface_of(IPV4_UNICAST, p("10.244.12.5/32")) == "cali12345"
    assert h.kernel.metric_of(IPV4_UNICAST, p("10.244.12.5/32")) == 20
    # the lowest metric of several routes to the prefix is the one learned
    h.route(pod._replace(metric=10, nexthops=((None, 2),)))
    h.flush()
    assert learned(h, h.kernel)["10.244.12.5/32"].interface == "eth0"
    h.route(bh, deleted=True)
    h.flush()
    assert "10.244.12.0/26" not in learned(h, h.kernel)
    assert p("10.244.12.0/26") not in loc.table
    # its interface goes away: the kernel dropped the route silently, so do we
    h.link(LinkMsg(2, "eth0", 0), deleted=True)
    h.flush()
    assert learned(h, h.kernel)["10.244.12.5/32"].interface == "cali12345"
    assert len(commits) >= 4


def test_routes_we_replaced_are_forgotten():
    h, loc, _ = make(kernel_prefixes=PrefixFilter(["10.244.0.0/16 le 32"]))
    base(h)
    h.route(RouteMsg(AF_INET, p("10.244.3.0/24"), 254, 3, 0, 1, 0, ((a("10.0.0.9"), 2),)))
    h.flush()
    assert "10.244.3.0/24" in learned(h, h.kernel)
    h.overwritten([(AF_INET, p("10.244.3.0/24"), 0)])
    assert learned(h, h.kernel) == {}


def test_static_routes_and_their_changes():
    h, loc, _ = make(
        static=[
            StaticRoute("10.244.12.0/26", "blackhole"),
            StaticRoute("192.0.2.1/32", "unicast", "192.0.2.254"),
            StaticRoute("2001:db8:5::/48", "unreachable"),
        ]
    )
    h.load_static()
    assert learned(h, h.static) == {
        "10.244.12.0/26": HostRoute(RTN_BLACKHOLE),
        "192.0.2.1/32": HostRoute(RTN_UNICAST, a("192.0.2.254")),
    }
    assert "2001:db8:5::/48" in learned(h, h.static, IPV6_UNICAST)
    assert best_of(loc.table[p("10.244.12.0/26")]) is h.static
    h.static_routes = h.static_routes[:1]
    h.load_static()
    assert set(learned(h, h.static)) == {"10.244.12.0/26"}
    assert p("192.0.2.1/32") not in loc.table


def test_full_resync_reconciles():
    h, loc, _ = make(
        kernel_prefixes=PrefixFilter(["10.244.0.0/16 le 32"]), interfaces=InterfaceFilter(["*"])
    )
    base(h)
    h.route(RouteMsg(AF_INET, p("10.244.3.0/24"), 254, 3, 0, 1, 0, ((a("10.0.0.9"), 2),)))
    h.flush()
    # after an overrun the dump is the truth: the route and cali12345 are gone
    h.replace_all(
        [LinkMsg(1, "lo", UP), LinkMsg(2, "eth0", UP)],
        [AddrMsg(AF_INET, 2, 24, a("10.0.0.1"), a("10.0.0.1"), 0, 0)],
        [RouteMsg(AF_INET, p("10.244.4.0/24"), 254, 3, 0, 1, 0, ((a("10.0.0.9"), 2),))],
    )
    assert set(learned(h, h.kernel)) == {"10.244.4.0/24"}
    assert set(learned(h, h.connected)) == {"10.0.0.0/24"}
    assert p("10.244.3.0/24") not in loc.table
