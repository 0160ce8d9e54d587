"""The kernel side for real, inside network namespaces made by the test (never the host's).

The FIB writer and the learner run in this process, on the test's event loop, with their
netlink sockets opened inside the namespace (``KernelSettings(netns=...)``); the result is
read back with ``ip -n NS route``.
"""

import ipaddress

import pytest
from kernel_helpers import wait_for

from bgpd.kernel import Kernel, KernelSettings, StaticRoute
from bgpd.rib import DecisionConfig, Rib, Source
from bgpd.wire import AttrSet, intern
from bgpd.wire import prefix as pfx
from bgpd.wire.constants import AS_SEQUENCE, IPV4_UNICAST, IPV6_UNICAST


def a(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def p(text: str) -> bytes:
    return pfx.from_network(ipaddress.ip_network(text))


def attrs(nh: str) -> AttrSet:
    return intern(AttrSet(origin=0, as_path=((AS_SEQUENCE, (65001,)),), next_hop=a(nh)))


@pytest.fixture
def ns(namespaces):
    """v0 10.0.0.1/24 + 2001:db8::1/64 and v1 10.1.0.1/24, a veth pair inside one namespace;
    a route 192.168.0.0/16 via 10.0.0.254 (another program's, proto boot)."""
    n = namespaces()
    namespaces.veth(n, "v0", None, "v1")
    n.up("v0", "10.0.0.1/24")
    n.up("v1", "10.1.0.1/24")
    n.ip("-6", "addr", "add", "2001:db8::1/64", "dev", "v0", "nodad")
    n.ip("route", "add", "192.168.0.0/16", "via", "10.0.0.254")
    return n


class Speaker:
    """The parts of the speaker the kernel needs: a RIB and two BGP neighbors."""

    def __init__(self, multipath: int = 1) -> None:
        self.rib = Rib(DecisionConfig(multipath=multipath))
        self.p1 = Source("10.0.0.2", "bgp", asn=65001, local_as=65000, address_key=b"\x01")
        self.p2 = Source("10.1.0.2", "bgp", asn=65001, local_as=65000, address_key=b"\x02")

    def announce(self, src, prefixes, nh, fam=IPV4_UNICAST):
        self.rib.loc[fam].announce(src, [p(x) for x in prefixes], attrs(nh))
        self.rib.commit()

    def withdraw(self, src, prefixes, fam=IPV4_UNICAST):
        self.rib.loc[fam].withdraw(src, [p(x) for x in prefixes])
        self.rib.commit()


async def start(sp: Speaker, netns, **kw) -> Kernel:
    k = Kernel(sp.rib.loc, KernelSettings(netns=netns.name, **{"fib": True, **kw}))
    await k.start()
    return k


async def test_routes_from_the_rib_appear_with_our_protocol(ns):
    sp = Speaker(multipath=2)
    k = await start(sp, ns)
    try:
        sp.announce(sp.p1, ["10.244.1.0/26", "10.244.9.0/24"], "10.0.0.2")
        sp.announce(sp.p2, ["10.244.9.0/24"], "10.1.0.2")  # ECMP with the first
        sp.announce(sp.p1, ["10.244.2.0/26"], "192.168.5.5")  # recursive
        sp.announce(sp.p1, ["10.244.3.0/26"], "198.51.100.1")  # unresolvable
        sp.announce(sp.p1, ["2001:db8:99::/48"], "2001:db8::2", IPV6_UNICAST)
        await k.fib.wait_idle(5)
        assert ns.routes("proto", "bgp") == [
            "10.244.1.0/26 via 10.0.0.2 dev v0",
            "10.244.2.0/26 via 10.0.0.254 dev v0",
            "10.244.9.0/24 nexthop via 10.0.0.2 dev v0 weight 1 "
            "nexthop via 10.1.0.2 dev v1 weight 1",
        ]
        assert ns.routes("proto", "186", family="-6") == [
            "2001:db8:99::/48 via 2001:db8::2 dev v0 metric 1024 pref medium"
        ]
        assert k.status(IPV4_UNICAST, p("10.244.3.0/26")) == "no route to next hop 198.51.100.1"
        # withdrawing a path turns the multipath route into a single one, in place
        sp.withdraw(sp.p2, ["10.244.9.0/24"])
        await k.fib.wait_idle(5)
        assert "10.244.9.0/24 via 10.0.0.2 dev v0" in ns.routes("proto", "bgp")
        sp.withdraw(sp.p1, ["10.244.1.0/26", "10.244.2.0/26", "10.244.9.0/24"])
        sp.withdraw(sp.p1, ["2001:db8:99::/48"], IPV6_UNICAST)
        await k.fib.wait_idle(5)
        assert ns.routes("proto", "bgp") == []
        assert ns.routes("proto", "bgp", family="-6") == []
        assert "192.168.0.0/16 via 10.0.0.254 dev v0" in ns.routes()  # not ours: untouched
    finally:
        await k.close()


async def test_next_hops_follow_the_host(ns):
    sp = Speaker()
    k = await start(sp, ns)
    try:
        sp.announce(sp.p1, ["10.244.2.0/26"], "192.168.5.5")
        sp.announce(sp.p1, ["10.244.4.0/26"], "172.16.0.9")
        await k.fib.wait_idle(5)
        assert ns.routes("proto", "bgp") == ["10.244.2.0/26 via 10.0.0.254 dev v0"]
        # a route to 172.16/12 appears: the waiting prefix is installed through it
        ns.ip("route", "add", "172.16.0.0/12", "via", "10.1.0.254")
        await wait_for(lambda: len(ns.routes("proto", "bgp")) == 2, what="recursive install")
        assert "10.244.4.0/26 via 10.1.0.254 dev v1" in ns.routes("proto", "bgp")
        # the covering route moves to another gateway: ours follow
        ns.ip("route", "replace", "192.168.0.0/16", "via", "10.1.0.77")
        await wait_for(
            lambda: "10.244.2.0/26 via 10.1.0.77 dev v1" in ns.routes("proto", "bgp"),
            what="re-resolution",
        )
        # v1 goes down: the kernel flushes routes through it; ours become unresolved
        ns.ip("link", "set", "v1", "down")
        await wait_for(
            lambda: "no route to next hop" in k.status(IPV4_UNICAST, p("10.244.4.0/26")),
            what="unresolved after link down",
        )
        await k.fib.wait_idle(5)
        assert ns.routes("proto", "bgp") == []
        ns.ip("link", "set", "v1", "up")
        ns.ip("route", "replace", "192.168.0.0/16", "via", "10.1.0.77")
        ns.ip("route", "replace", "172.16.0.0/12", "via", "10.1.0.254")
        await wait_for(lambda: len(ns.routes("proto", "bgp")) == 2, what="back after link up")
    finally:
        await k.close()


async def test_learning_blackholes_connected_networks_and_globs(ns):
    sp = Speaker()
    k = await start(
        sp,
        ns,
        fib=False,
        learn_prefixes=("10.244.0.0/16 le 32",),
        interfaces=("-v1", "*"),
        static=(StaticRoute("10.250.0.0/24", "blackhole"),),
    )
    loc = sp.rib.loc[IPV4_UNICAST]
    try:
        assert k.fib is None
        conn = {pfx.to_str(x, 1) for x in k.host.connected.routes[IPV4_UNICAST]}
        assert conn == {"10.0.0.0/24"}  # v1 is excluded by the glob, lo has host scope
        assert {pfx.to_str(x, 2) for x in k.host.connected.routes[IPV6_UNICAST]} == {
            "2001:db8::/64"
        }
        assert p("10.250.0.0/24") in loc.table  # static: in the RIB, nothing to install
        ns.ip("route", "add", "blackhole", "10.244.12.0/26")
        await wait_for(lambda: p("10.244.12.0/26") in loc.table, what="blackhole learned")
        src = loc.table[p("10.244.12.0/26")].source
        assert src.kind == "kernel"
        ns.ip("route", "add", "10.244.12.5/32", "dev", "v1", "metric", "7")
        await wait_for(lambda: p("10.244.12.5/32") in loc.table, what="device route learned")
        r = k.host.kernel.routes[IPV4_UNICAST][p("10.244.12.5/32")]
        assert (r.interface, r.metric) == ("v1", 7)  # excluded from connected, not from kernel
        ns.ip("route", "add", "10.99.0.0/16", "via", "10.0.0.254")  # not in the prefix list
        ns.ip("addr", "add", "10.7.0.1/24", "dev", "v0")
        await wait_for(lambda: p("10.7.0.0/24") in loc.table, what="new address learned")
        assert p("10.99.0.0/16") not in loc.table
        ns.ip("route", "del", "blackhole", "10.244.12.0/26")
        ns.ip("link", "set", "v0", "down")
        await wait_for(
            lambda: p("10.244.12.0/26") not in loc.table and p("10.0.0.0/24") not in loc.table,
            what="withdrawals",
        )
    finally:
        await k.close()


async def test_restart_adopts_and_then_sweeps(ns):
    sp = Speaker()
    k = await start(sp, ns)
    sp.announce(sp.p1, ["10.244.1.0/26", "10.244.2.0/26", "10.244.3.0/26"], "10.0.0.2")
    sp.announce(sp.p1, ["2001:db8:99::/48"], "2001:db8::2", IPV6_UNICAST)
    await k.fib.wait_idle(5)
    await k.close()  # persist: the routes stay
    assert len(ns.routes("proto", "bgp")) == 3
    # a new run whose RIB has only two of them, one with another next hop
    sp2 = Speaker()
    k2 = Kernel(sp2.rib.loc, KernelSettings(fib=True, netns=ns.name, sweep_timeout=30))
    await k2.start()
    try:
        assert k2.fib.stats["adopted"] == 4
        sp2.announce(sp2.p1, ["10.244.1.0/26"], "10.0.0.2")
        sp2.announce(sp2.p1, ["10.244.2.0/26"], "10.0.0.3")
        sp2.announce(sp2.p1, ["2001:db8:99::/48"], "2001:db8::2", IPV6_UNICAST)
        await k2.fib.wait_idle(5)
        assert ns.routes("proto", "bgp") == [
            "10.244.1.0/26 via 10.0.0.2 dev v0",
            "10.244.2.0/26 via 10.0.0.3 dev v0",
            "10.244.3.0/26 via 10.0.0.2 dev v0",  # kept until the initial convergence
        ]
        assert k2.fib.stats["added"] == 1  # the identical routes were not rewritten
        assert k2.status(IPV6_UNICAST, p("2001:db8:99::/48")) == "installed"
        # the route engine decides when (tests/rde/test_graceful.py); the kernel sweeps
        k2.converged("End-of-RIB from every neighbor")
        assert k2.converged_reason == "End-of-RIB from every neighbor"
        await k2.fib.wait_idle(5)
        assert ns.routes("proto", "bgp") == [
            "10.244.1.0/26 via 10.0.0.2 dev v0",
            "10.244.2.0/26 via 10.0.0.3 dev v0",
        ]
    finally:
        await k2.close()


async def test_persist_false_and_protocol_table_metric(ns):
    sp = Speaker()
    k = await start(sp, ns, persist=False, protocol=12, table=100, metric=32)
    sp.announce(sp.p1, ["10.244.1.0/26"], "10.0.0.2")
    await k.fib.wait_idle(5)
    assert ns.routes("table", "100", "proto", "bird") == [
        "10.244.1.0/26 via 10.0.0.2 dev v0 metric 32"
    ]
    await k.close()
    assert ns.routes("table", "100") == []


async def test_routes_deleted_behind_our_back_are_put_back(ns):
    sp = Speaker()
    k = await start(sp, ns)
    try:
        sp.announce(sp.p1, ["10.244.1.0/26"], "10.0.0.2")
        await k.fib.wait_idle(5)
        ns.ip("route", "del", "10.244.1.0/26", "proto", "bgp")
        await wait_for(
            lambda: ns.routes("proto", "bgp") == ["10.244.1.0/26 via 10.0.0.2 dev v0"],
            what="reinstall",
        )
        # a static route of ours: blackhole, installed too
    finally:
        await k.close()


async def test_static_routes_are_installed(ns):
    sp = Speaker()
    k = await start(
        sp,
        ns,
        static=(
            StaticRoute("10.250.0.0/24", "blackhole"),
            StaticRoute("10.251.0.0/24", "unicast", "192.168.1.1"),
            StaticRoute("10.252.0.0/24", "unicast", None, "v1"),
        ),
    )
    try:
        await k.fib.wait_idle(5)
        assert ns.routes("proto", "bgp") == [
            "blackhole 10.250.0.0/24",
            "10.251.0.0/24 via 10.0.0.254 dev v0",
            "10.252.0.0/24 dev v1 scope link",
        ]
    finally:
        await k.close()


async def test_a_netlink_overrun_makes_the_learner_resync(ns, tmp_path):
    import socket

    sp = Speaker()
    k = await start(sp, ns, fib=False, learn_prefixes=("10.128.0.0/9 le 32",))
    loc = sp.rib.loc[IPV4_UNICAST]
    try:
        # a tiny receive buffer, and 3000 routes added while the event loop is not reading
        k.watcher.events.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        batch = tmp_path / "routes.batch"
        batch.write_text(
            "".join(
                f"route add 10.{128 + i // 256}.{i % 256}.0/24 via 10.0.0.9\n" for i in range(3000)
            )
        )
        ns.ip("-batch", str(batch))
        await wait_for(lambda: len(loc) == 3000, timeout=10, what="3000 learned routes")
        assert k.watcher.resyncs >= 1
    finally:
        await k.close()


async def test_onlink_tunnel_next_hops_and_per_route_metric(namespaces):
    """Calico's krt_tunnel: a route installed ``via <BGP next hop> dev tunl0 onlink`` (the
    next hop is not on any connected network), per next hop for ECMP (which Calico's BIRD
    cannot do), with a per-route metric; read back from the kernel as the same route, so a
    second pass writes nothing. This kernel has no ipip link type: a veth named tunl0
    stands in."""
    from bgpd.kernel.netlink import RTNH_F_ONLINK

    n = namespaces()
    namespaces.veth(n, "tunl0", None, "tunl0p")
    n.up("tunl0", "10.0.0.1/32")
    n.up("tunl0p")
    ifx = int(n.ip("-o", "link", "show", "tunl0").split(":")[0])

    def export(fam, prefix, cands, route):
        hops = tuple(sorted((c.attrs_for(fam, prefix).next_hop, ifx, RTNH_F_ONLINK) for c in cands))
        return route._replace(nexthops=hops, metric=1024)

    sp = Speaker(multipath=2)
    k = Kernel(sp.rib.loc, KernelSettings(netns=n.name, fib=True, protocol=12), export=export)
    await k.start()
    try:
        # the next hops resolve through a route (for translate), but the tunnel rewrites them
        n.ip("route", "add", "172.31.0.0/16", "dev", "tunl0")
        sp.announce(sp.p1, ["10.244.1.0/26", "10.244.9.0/26"], "172.31.1.1")
        sp.announce(sp.p2, ["10.244.9.0/26"], "172.31.2.2")  # ECMP
        await k.fib.wait_idle(5)
        assert n.routes("proto", "bird") == [
            "10.244.1.0/26 via 172.31.1.1 dev tunl0 metric 1024 onlink",
            "10.244.9.0/26 metric 1024 nexthop via 172.31.1.1 dev tunl0 weight 1 onlink "
            "nexthop via 172.31.2.2 dev tunl0 weight 1 onlink",
        ]
        added = k.fib.stats["added"]
        await k.fib._resync()  # dump ours again: the routes read back equal what we want
        for fam in k.fib.pending:
            k.fib.pending[fam].update(sp.rib.loc[fam].table)
        k.fib._kick()
        await k.fib.wait_idle(5)
        assert k.fib.stats["added"] == added, "an onlink route read back differed"
    finally:
        await k.close()
